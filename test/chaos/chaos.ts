/**
 * The chaos suite's driver (`npm run test:chaos`, never part of `npm test`): per kind, runs of its demo
 * scenario (test/harness/scenario-run.ts) with the worker SIGKILLed at randomised points — while it
 * plans, while the plan awaits approval, in a soak, in apply, in rollback (runs rejected during their
 * soak) and in verify — and started again each time, behind an AWS proxy adding latency and some
 * throttling and 503s. Runs go on until the kind has had at least KILLS_PER_KIND kills.
 *
 * Every run must end as an uninterrupted one does: an approved run completed with the scenario's checks
 * passing, a rejected run rolled back to the seeded state; every change with exactly one result; no
 * mutation reaching AWS twice except those the kind lists as idempotent (IDEMPOTENT_DUPLICATES).
 *
 * The randomness is seeded: COUNTERSIGN_CHAOS_SEED, else jest's `--seed` (`npm run test:chaos -- --seed=42`);
 * the seed is printed, and the same seed gives the same kill plans and delays (where a kill lands still
 * depends on timing). COUNTERSIGN_CHAOS_KILLS overrides the kills per kind (e.g. 4 for a quick try).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KindName } from '../../common/kinds';
import { mulberry32 } from '../../sandbox/aws-proxy';
import type { KillPhase, KillRequest, ScenarioRunResult } from '../harness/scenario-run';
import { IDEMPOTENT_DUPLICATES, KILL_PHASES, canRollBack, describeFaults, runScenario, table, unexpectedDuplicates } from '../harness/scenario-run';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

export const KILLS_PER_KIND = Number(process.env.COUNTERSIGN_CHAOS_KILLS) || 20;
/** A bad day, but one where runs still finish in minutes: AWS-like latency, some throttling and 503s. */
export const CHAOS_FAULTS = { throttle: 0.1, http503: 0.05 };
export const CHAOS_LATENCY_MS = 100;
const MAX_RUNS = 12;

export function chaosSeed(): number {
  const fromEnv = process.env.COUNTERSIGN_CHAOS_SEED;
  if (fromEnv !== undefined && fromEnv !== '') return Number(fromEnv) >>> 0;
  return jest.getSeed() >>> 0;
}

/** A kind's own stream of the seed, so one kind's plan does not shift when another's changes. */
function kindSeed(seed: number, kind: string): number {
  let h = seed >>> 0;
  for (const ch of kind) h = (Math.imul(h ^ ch.charCodeAt(0), 16_777_619) + 1) >>> 0;
  return h;
}

/** The summary of a kind's chaos runs, as written for the global teardown's table. */
export interface KindSummary {
  kind: string;
  seed: number;
  runs: { approve: number; reject: number };
  killsByPhase: Record<string, number>;
  missedKills: number;
  faults: { throttle: number; http503: number };
  completions: { completed: number; rolledBack: number; other: number };
  duplicateMutations: number;
  duplicateActions: Record<string, number>;
  unexpectedDuplicates: string[];
  lostChanges: number;
  failures: string[];
  ms: number;
}

/**
 * The kills of one run, in the order they can happen. Each phase is in with some chance, apply twice
 * (before and after a soak); a run without a soak (org-trail) kills in apply more often instead.
 */
function planKills(random: () => number, reject: boolean, hasSoak: boolean): KillRequest[] {
  const delay = (max: number) => Math.floor(random() * max);
  const kills: KillRequest[] = [];
  const maybe = (phase: KillPhase, chance: number, maxDelay: number) => {
    if (random() < chance) kills.push({ phase, delayMs: delay(maxDelay) });
  };
  maybe('plan', 0.6, 400);
  maybe('awaiting-approval', 0.7, 1_000);
  maybe('apply', 0.9, 300);
  if (hasSoak) maybe('soak', 0.9, 800);
  if (reject) {
    maybe('rollback', 1, 300);
  } else {
    maybe('apply', hasSoak ? 0.8 : 0.9, 300);
    if (!hasSoak) maybe('apply', 0.8, 300);
    maybe('verify', 0.7, 300);
  }
  return kills;
}

function problemsOf(run: ScenarioRunResult): string[] {
  const expected = run.decision === 'approve' ? 'completed' : 'rolled-back';
  const problems: string[] = [];
  if (run.outcome !== expected) problems.push(`outcome ${run.outcome ?? 'none'} (expected ${expected})${run.outcomeReason ? `: ${run.outcomeReason}` : ''}`);
  for (const line of run.checks.lines) if (!line.startsWith('ok')) problems.push(`check: ${line}`);
  for (const p of run.accounting.problems) problems.push(`result: ${p}`);
  for (const d of unexpectedDuplicates(run.kind, run.duplicates)) problems.push(`applied twice: ${d} (${run.duplicates[d]}×)`);
  return problems;
}

/** The jest tests of one kind's chaos runs. */
export function chaosSuite(kind: KindName): void {
  let stack: TestStack;
  const summary: KindSummary = {
    kind,
    seed: 0,
    runs: { approve: 0, reject: 0 },
    killsByPhase: Object.fromEntries(KILL_PHASES.map((p) => [p, 0])),
    missedKills: 0,
    faults: { throttle: 0, http503: 0 },
    completions: { completed: 0, rolledBack: 0, other: 0 },
    duplicateMutations: 0,
    duplicateActions: {},
    unexpectedDuplicates: [],
    lostChanges: 0,
    failures: [],
    ms: 0,
  };

  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
  });
  afterAll(async () => {
    await stack?.stop();
    const dir = process.env.COUNTERSIGN_CHAOS_RESULTS;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${kind}.json`), JSON.stringify(summary));
    }
  });

  it(`survives at least ${KILLS_PER_KIND} worker kills, each run ending as an uninterrupted one`, async () => {
    const seed = chaosSeed();
    summary.seed = seed;
    const random = mulberry32(kindSeed(seed, kind));
    const rollback = canRollBack(kind);
    const say = (line: string) => process.stdout.write(`[chaos ${kind}] ${line}\n`);
    say(`seed ${seed} (reproduce with COUNTERSIGN_CHAOS_SEED=${seed} npm run test:chaos); faults ${describeFaults(CHAOS_FAULTS)}, latency ${CHAOS_LATENCY_MS} ms`);
    const started = Date.now();
    let killed = 0;
    for (let n = 0; killed < KILLS_PER_KIND && n < MAX_RUNS; n++) {
      // Every third run is rejected in its soak, when the kind has one to reject in.
      const reject = rollback && n % 3 === 1;
      const kills = planKills(random, reject, rollback);
      say(`run ${n + 1}: ${reject ? 'reject in the soak' : 'approve'}; kills ${kills.map((k) => `${k.phase}+${k.delayMs}ms`).join(', ') || 'none'}`);
      let run: ScenarioRunResult;
      try {
        run = await runScenario(stack, {
          kind,
          faults: CHAOS_FAULTS,
          latencyMs: CHAOS_LATENCY_MS,
          seed: (seed + n) >>> 0,
          decision: reject ? 'reject-in-soak' : 'approve',
          kills,
          // Long enough to kill in, restart and reject; the reject ends it early.
          params: reject ? { soak: '30s' } : undefined,
          timeoutMs: 15 * 60_000,
          log: say,
        });
      } catch (err) {
        summary.failures.push(`run ${n + 1}: ${(err as Error).message.split('\n')[0]}`);
        say(`run ${n + 1} FAILED: ${(err as Error).message}`);
        continue;
      }
      summary.runs[reject ? 'reject' : 'approve']++;
      for (const k of run.kills) {
        if (k.missed) summary.missedKills++;
        else {
          killed++;
          summary.killsByPhase[k.phase] = (summary.killsByPhase[k.phase] ?? 0) + 1;
        }
      }
      summary.faults.throttle += run.stats.faults.throttle;
      summary.faults.http503 += run.stats.faults.http503;
      if (run.outcome === 'completed') summary.completions.completed++;
      else if (run.outcome === 'rolled-back') summary.completions.rolledBack++;
      else summary.completions.other++;
      summary.duplicateMutations += run.stats.duplicateMutations;
      for (const [action, count] of Object.entries(run.duplicates)) summary.duplicateActions[action] = (summary.duplicateActions[action] ?? 0) + count;
      summary.unexpectedDuplicates.push(...unexpectedDuplicates(kind, run.duplicates));
      summary.lostChanges += run.accounting.lost;
      const problems = problemsOf(run);
      for (const p of problems) summary.failures.push(`run ${n + 1} (${run.workflowId}): ${p}`);
      say(`run ${n + 1}: ${run.outcome} in ${Math.round(run.ms / 1000)}s, ${run.kills.filter((k) => !k.missed).length} kill(s), ${run.retriedAttempts} retried attempt(s); ${problems.length ? `PROBLEMS:\n  ${problems.join('\n  ')}` : 'as an uninterrupted run'}`);
    }
    summary.ms = Date.now() - started;
    say(`\n${summaryTable([summary])}\nidempotent duplicates accepted for ${kind}: ${IDEMPOTENT_DUPLICATES[kind]?.map((a) => `${a.action.source} — ${a.why}`).join('; ') || 'none'}\n`);
    expect(summary.failures).toEqual([]);
    expect(killed).toBeGreaterThanOrEqual(KILLS_PER_KIND);
  });
}

const ABBREVIATIONS: Record<string, string> = { plan: 'plan', 'awaiting-approval': 'await', soak: 'soak', apply: 'apply', rollback: 'rollback', verify: 'verify', other: 'other' };

/** The suite's summary: a row per kind. */
export function summaryTable(summaries: KindSummary[]): string {
  return table(
    ['kind', 'runs', 'kill points by phase', 'faults injected', 'completions', 'duplicate mutations', 'lost changes', 'failures'],
    summaries.map((s) => [
      s.kind,
      `${s.runs.approve + s.runs.reject} (${s.runs.approve} approved, ${s.runs.reject} rejected)`,
      `${Object.entries(s.killsByPhase).filter(([, n]) => n > 0).map(([p, n]) => `${ABBREVIATIONS[p] ?? p} ${n}`).join(', ')} (=${Object.values(s.killsByPhase).reduce((a, b) => a + b, 0)}${s.missedKills ? `, ${s.missedKills} missed` : ''})`,
      `throttle ${s.faults.throttle}, 503 ${s.faults.http503}`,
      `${s.completions.completed} completed, ${s.completions.rolledBack} rolled back${s.completions.other ? `, ${s.completions.other} other` : ''}`,
      `${s.duplicateMutations}${s.duplicateMutations ? ` (${Object.entries(s.duplicateActions).map(([a, n]) => `${a} ${n}`).join(', ')})` : ''}${s.unexpectedDuplicates.length ? ` UNEXPECTED ${s.unexpectedDuplicates.join(', ')}` : ''}`,
      s.lostChanges,
      s.failures.length,
    ]),
  );
}
