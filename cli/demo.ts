/**
 * `countersign demo` and `countersign dev`: the embedded default. The demo runs every scenario of
 * sandbox/scenarios (one per kind; `--kind K` picks one) end to end in the AWS sandbox: an
 * organization is seeded, the run targets a member account through an assumed role, and each step
 * is said as it happens. `dev --seed` seeds the same organization and estates and leaves them.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatDuration } from '../common/duration';
import type { RemediationStatus } from '../common/messages';
import type { TargetInfo } from '../common/requests';
import { buildEvidence } from '../evidence/record';
import type { Scenario } from '../sandbox/scenarios';
import { SCENARIOS, createScenarioContext, scenarioKinds } from '../sandbox/scenarios';
import type { StaleIamUsersState } from '../sandbox/scenarios/stale-iam-users';
import { keepKeysInUse } from '../sandbox/scenarios/stale-iam-users';
import { startStack } from '../sandbox/stack';
import type { Stack } from '../sandbox/stack';
import { createPino } from '../worker/logger';
import { UsageError } from './errors';
import type { Output } from './output';
import { RemediationClient } from './remediation-client';
import { renderPlan } from './render';

const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const OUTSIDER = 'mallory.contractor';

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function printEnv(stack: Stack, out: Output): void {
  out.note('Use this stack from another shell:');
  for (const [k, v] of Object.entries(stack.env)) out.note(`  export ${k}=${v}`);
  if (stack.temporal.uiUrl) out.note(`Temporal Web UI: ${stack.temporal.uiUrl}`);
}

const paramFlags = (params: Record<string, string>) => Object.entries(params).map(([k, v]) => ` --param ${k}=${v}`).join('');

/** Where a run acted and as whom, in one line. */
function actedThrough(target: TargetInfo | undefined): string {
  if (!target) return 'no target recorded';
  const where = `account ${target.account}${target.accountName ? ` (${target.accountName})` : ''}${target.organizationId ? ` of organization ${target.organizationId}` : ''}`;
  return target.roleArn
    ? `${where}, through ${target.roleArn} as role session ${target.sessionName ?? '?'} (${target.actingArn})`
    : `${where}, as the worker itself (${target.actingArn})`;
}

/** The scenarios to run: all of them, or the one `kind` names (anything else is a usage error). */
function pickScenarios(kind: string | undefined): Scenario[] {
  const kinds = scenarioKinds();
  if (kind === undefined) return kinds.map((k) => SCENARIOS[k] as Scenario);
  const scenario = (SCENARIOS as Record<string, Scenario | undefined>)[kind];
  if (!scenario) throw new UsageError(`no demo for kind "${kind}"; demo kinds: ${kinds.join(', ')}`);
  return [scenario];
}

interface DemoRun {
  kind: string;
  title: string;
  account?: string;
  workflowId?: string;
  outcome?: string;
  target?: TargetInfo;
  checks: string[];
  evidence?: string;
  ok: boolean;
  error?: string;
}

async function runScenario(stack: Stack, scenario: Scenario, heading: string, out: Output): Promise<DemoRun> {
  const say = (line: string) => out.note(line);
  const run: DemoRun = { kind: scenario.kind, title: scenario.title, checks: [], ok: false };
  say(`\n═══ ${heading}: ${scenario.kind} — ${scenario.title}`);
  for (const line of scenario.shows) say(`    ${line}`);
  // Each scenario starts from an empty sandbox: its organization and estate are its own.
  await stack.moto.reset();
  const context = createScenarioContext(stack.moto.endpoint, (line) => say(`   ${line}`));
  try {
    say('\n1. Seeding the AWS sandbox');
    const state = await scenario.seed(context);
    run.account = state.account;

    const client = new RemediationClient(stack.client, stack.taskQueue);
    say(`\n2. ${REQUESTER} starts: countersign start ${scenario.kind} --account ${state.account}${paramFlags(scenario.params)}`);
    const { workflowId } = await client.start({ kind: scenario.kind, account: state.account, params: scenario.params, requestedBy: REQUESTER });
    run.workflowId = workflowId;
    say(`   workflow ${workflowId}`);
    const awaiting = await client.waitFor(workflowId, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 120_000 });
    run.target = awaiting.target;
    if (awaiting.target) say(`   target: ${actedThrough(awaiting.target)}`);
    const plan = awaiting.plan;
    if (awaiting.phase === 'done' || !plan) {
      run.outcome = awaiting.outcome;
      throw new Error(`the run ended before approval: ${awaiting.outcome ?? 'no outcome'}${awaiting.outcomeReason ? ` — ${awaiting.outcomeReason}` : ''}`);
    }
    for (const line of renderPlan(plan)) say(`   ${line}`);

    say('\n3. Decisions on the plan');
    for (const [who, why] of [
      [REQUESTER, 'the requester approves their own run'],
      [OUTSIDER, 'someone outside the approval policy approves'],
    ] as const) {
      const reply = await client.decide(workflowId, { decision: 'approve', approver: who, planDigest: plan.digest });
      say(`   ${why}: ${reply.accepted ? 'ACCEPTED (unexpected)' : `refused — ${reply.refusal.message}`}`);
      if (reply.accepted) throw new Error('a decision that must be refused was accepted');
    }
    const approval = await client.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan.digest, comment: 'reviewed: the plan matches the ticket' });
    if (!approval.accepted) throw new Error(`the demo approval was refused: ${approval.refusal.message}`);
    say(`   ${APPROVER} approves plan ${plan.digest.slice(0, 12)}…: accepted`);

    say(`\n4. Applying (${scenario.applying})`);
    const seen = new Set<string>();
    const final: RemediationStatus = await client.waitFor(workflowId, (s) => s.phase === 'done', {
      timeoutMs: 300_000,
      heartbeatMs: 1_000,
      onChange: (s, prev) => {
        for (const r of s.results) {
          const key = `${r.changeId}:${r.status}`;
          if (!seen.has(key)) {
            seen.add(key);
            say(`     ${r.status.padEnd(12)} ${r.changeId}${r.detail ? ` — ${r.detail}` : ''}`);
          }
        }
        if (!prev || prev.phase !== s.phase || prev.stage !== s.stage) {
          say(`   phase ${s.phase}${s.stage ? ` (stage ${s.stage})` : ''}${s.soakUntil ? `, soaking until ${s.soakUntil}` : ''}`);
        } else if (s.soakUntil) {
          say(`   … soaking, ${formatDuration(Date.parse(s.soakUntil) - Date.now())} left`);
        }
      },
    });
    run.outcome = final.outcome;
    run.target = final.target ?? run.target;
    say(`\n5. Outcome: ${final.outcome}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`);
    for (const c of final.verification?.checks ?? []) say(`   verify ${c.ok ? 'ok' : 'FAILED'} ${c.changeId}: ${c.detail}`);
    say('   checked in AWS:');
    const checks = await scenario.checks(context, state, final);
    run.checks = checks.lines;
    for (const line of checks.lines) say(`     ${line}`);

    const handle = stack.client.workflow.getHandle(workflowId);
    const record = buildEvidence(await handle.fetchHistory(), { namespace: stack.namespace, workflowId, runId: (await handle.describe()).runId });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-demo-'));
    const evidencePath = path.join(dir, 'evidence.json');
    writeFileSync(evidencePath, `${JSON.stringify(record, null, 2)}\n`);
    run.evidence = evidencePath;
    say(`\n6. Evidence from the workflow history (${record.workflow.historyEvents} events): approved by ${record.approvedBy.join(', ')}, plan digest ${record.plan?.digestVerified ? 'verified' : 'NOT verified'}, ${record.refused.length} refusals, ${record.results.filter((r) => r.snapshot !== undefined).length} snapshots`);
    say(`   acted in ${actedThrough(record.target)}`);
    say(`   written to ${evidencePath}  (same as: countersign evidence ${workflowId} --format json)`);
    const sameTarget = record.target?.account === state.account && record.target?.sessionName === final.target?.sessionName;
    if (!sameTarget) say('   FAILED the evidence names another target than the run status');

    run.ok = final.outcome === 'completed' && checks.ok && sameTarget;
    return run;
  } catch (err) {
    run.error = (err as Error).message;
    say(`\n   ${scenario.kind} FAILED: ${run.error}`);
    return run;
  } finally {
    context.close();
  }
}

export async function runDemo(options: { keep: boolean; kind?: string }, out: Output): Promise<number> {
  const scenarios = pickScenarios(options.kind);
  const say = (line: string) => out.note(line);
  say('Countersign demo: a Temporal dev server, an AWS sandbox (moto) with an organization, a worker, and');
  say(`${scenarios.map((s) => s.kind).join(', ')} end to end in a member account. Every step is a Temporal workflow event.`);
  const stack = await startStack({ ui: options.keep, say, logger: createPino(process.env.COUNTERSIGN_LOG_LEVEL ?? 'warn') });
  try {
    const runs: DemoRun[] = [];
    for (const [i, scenario] of scenarios.entries()) runs.push(await runScenario(stack, scenario, `${i + 1} of ${scenarios.length}`, out));
    const ok = runs.every((r) => r.ok);
    out.result({ ok, runs });
    say('');
    for (const r of runs) say(`${r.ok ? 'ok    ' : 'FAILED'} ${r.kind} in account ${r.account ?? '?'}: ${r.outcome ?? r.error ?? 'no outcome'}`);
    say(ok ? 'Demo finished: every plan was approved, applied in its target account, verified, and recorded.' : 'Demo FAILED: see above.');
    if (options.keep) {
      say('\nThe stack keeps running (Ctrl-C to stop). The sandbox holds the last scenario\'s organization.');
      printEnv(stack, out);
      for (const r of runs) {
        if (r.workflowId) say(`Browse the history: ${stack.temporal.uiUrl}/namespaces/${stack.namespace}/workflows/${encodeURIComponent(r.workflowId)}`);
      }
      await untilSignal();
    }
    return ok ? 0 : 1;
  } finally {
    await stack.stop();
  }
}

export async function runDev(options: { seed: boolean }, out: Output): Promise<number> {
  const stack = await startStack({ ui: true, say: (l) => out.note(l) });
  let stopUsingKeys: (() => void) | undefined;
  try {
    let seeded: { organizationId: string; managementAccount: string; accounts: { name: string; id: string; ou?: string }[]; runs: { kind: string; account: string; start: string }[] } | undefined;
    if (options.seed) {
      const context = createScenarioContext(stack.moto.endpoint, (l) => out.note(`  ${l}`));
      try {
        const runs = [];
        for (const kind of scenarioKinds()) {
          const scenario = SCENARIOS[kind] as Scenario;
          out.note(`seeding for ${kind}: ${scenario.title}`);
          const state = await scenario.seed(context);
          runs.push({ kind, account: state.account, start: `countersign start ${kind} --account ${state.account}${paramFlags(scenario.params)}` });
          if (kind === 'stale-iam-users') {
            const { estate } = state as StaleIamUsersState;
            stopUsingKeys = keepKeysInUse(state as StaleIamUsersState, stack.moto.endpoint);
            out.note(`  keeping the keys of ${estate.active.join(', ')} in use (a request every 0.5s) while dev runs, so any maxIdle leaves them alone`);
          }
        }
        const organization = await context.organization();
        seeded = { organizationId: organization.organizationId, managementAccount: organization.managementAccount, accounts: organization.accounts, runs };
        out.note(`organization ${organization.organizationId}, management account ${organization.managementAccount}; member accounts:`);
        for (const a of organization.accounts) out.note(`  ${a.id}  ${a.name}${a.ou ? ` (OU ${a.ou})` : ''}`);
        for (const r of runs) out.note(`try: ${r.start}`);
      } finally {
        context.close();
      }
    }
    printEnv(stack, out);
    out.result({ env: stack.env, ui: stack.temporal.uiUrl, ...(seeded ? { seeded } : {}) });
    out.note('Running until Ctrl-C.');
    await untilSignal();
    return 0;
  } finally {
    stopUsingKeys?.();
    await stack.stop();
  }
}
