/**
 * Records the saved histories that test/integration/replay.test.ts replays against the current
 * workflow code: one real run of every kind of the catalogue (common/kinds.ts) for every outcome of
 * RECORDED_OUTCOMES, plus one organization-wide run, each written to test/replay/<kind>-<outcome>.json
 * (`organization-completed.json`) in the JSON of `temporal workflow show --output json`.
 *
 *   npm run record:histories                                      # all of them
 *   npm run record:histories -- --kind scp                        # every outcome of one kind
 *   npm run record:histories -- --kind scp --outcome rolled-back  # one
 *
 * It starts the embedded stack (sandbox/stack.ts) with a policy file of its own, and for each run
 * resets the sandbox, seeds the kind's demo scenario (sandbox/scenarios) and drives the outcome:
 *
 * - completed:   the requester's and an outsider's approvals are refused, the demo approver approves;
 * - rejected:    an approver rejects the plan;
 * - expired:     nobody decides within the policy's approvalTimeout (a few seconds for this run);
 * - rolled-back: approved, then halted by a reject after the first changes were applied (during a
 *                long soak, or — for a kind without soaks — while an AWS call of a later stage is held);
 * - failed:      approved, and AWS then answers AccessDenied to a call of a later stage (as an SCP or a
 *                narrower role would), so the engine rolls back what it applied.
 *
 * The denials and holds come from the AWS proxy (sandbox/aws-proxy.ts) between the worker and moto
 * (only the worker uses it): its deny and hold rules.
 * Each written history is replayed once before the next run starts.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';
import { RemediationClient } from '../cli/remediation-client';
import type { KindName } from '../common/kinds';
import { KINDS } from '../common/kinds';
import type { Outcome, RemediationStatus } from '../common/messages';
import { workflowIdFor } from '../common/messages';
import type { Plan } from '../common/plan';
import { selectWorkflowSource, WORKFLOW_BUNDLER_OPTIONS } from '../worker/config';
import { createPino } from '../worker/logger';
import type { AwsProxy, CallMatcher } from './aws-proxy';
import { startAwsProxy } from './aws-proxy';
import type { Scenario, ScenarioState } from './scenarios';
import { SCENARIOS, createScenarioContext } from './scenarios';
import type { Stack } from './stack';
import { DEMO_POLICY_PATH, startStack } from './stack';
import { PROJECT_ROOT } from './toolchain';

/** The outcomes every kind has a saved history of. */
export const RECORDED_OUTCOMES = ['completed', 'rejected', 'expired', 'rolled-back', 'failed'] as const satisfies readonly Outcome[];
export type RecordedOutcome = (typeof RECORDED_OUTCOMES)[number];

/** The organization-wide workflow's fixture goes by this name instead of a kind's. */
export const ORGANIZATION = 'organization';
/** The kind the organization-wide run is recorded with. */
const ORGANIZATION_KIND: KindName = 'stale-iam-users';

export const REPLAY_DIR = path.join(PROJECT_ROOT, 'test', 'replay');

export function fixtureName(kind: string, outcome: string): string {
  return `${kind}-${outcome}.json`;
}

/**
 * The workflow id a fixture was recorded under (histories do not carry it, and the organization run
 * derives its children's ids from its own): `<kind>/<account>/<outcome>`, the account being
 * `organization` for an organization-wide run.
 */
export function recordedWorkflowId(kind: string, account: string, outcome: string): string {
  return workflowIdFor(kind as KindName, account, outcome); // as RemediationClient names runs started with idSuffix = outcome
}

const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const SECOND_APPROVER = 'sam.security';
const OUTSIDER = 'mallory.contractor';
/** The approval window of the `expired` runs (the policy's lower bound is 1s). */
const SHORT_APPROVAL_TIMEOUT = '3s';
/** A soak long enough to be halted in. */
const LONG_SOAK = '1h';
/** Fixtures past this size are reported: a fixture should hold a small estate. */
const LARGE_FIXTURE_BYTES = 200 * 1024;

const callIs = (name: string): CallMatcher => (call) => `${call.service}:${call.action}` === name;

/** The changes of the plan's last stage (the one a failure or a halt should fall in). */
function lastStageChanges(plan: Plan) {
  const last = plan.stages[plan.stages.length - 1]?.name;
  return plan.changes.filter((c) => c.stage === last);
}

// ---------------------------------------------------------------------------------------------------
// How each kind reaches the outcomes that need something to have been applied.

interface KindDriver {
  /**
   * How a run is halted after its first changes are applied: a reject during a soak this long, or —
   * for a kind without soaks — a reject while this AWS call (`service:Action`, of a later stage) is held.
   */
  halt: { soak: string } | { holdCall: string };
  /** The calls AWS denies for good in the `failed` run, chosen from the plan: a later stage's, so earlier changes are rolled back. */
  deny(plan: Plan): { what: string; matches: CallMatcher };
}

/** One entry per kind of the catalogue: a kind added without one fails to compile here. */
const DRIVERS: Record<KindName, KindDriver> = {
  'stale-iam-users': {
    halt: { soak: LONG_SOAK },
    // The disable stage deactivates keys; the delete stage's first removal is DeleteAccessKey.
    deny: () => ({ what: 'iam:DeleteAccessKey', matches: callIs('iam:DeleteAccessKey') }),
  },
  'org-trail': {
    halt: { holdCall: 'cloudtrail:CreateTrail' },
    deny: () => ({ what: 'cloudtrail:StartLogging', matches: callIs('cloudtrail:StartLogging') }),
  },
  'retire-default-trails': {
    halt: { soak: LONG_SOAK },
    deny: () => ({ what: 'cloudtrail:DeleteTrail', matches: callIs('cloudtrail:DeleteTrail') }),
  },
  'permission-boundary': {
    halt: { soak: LONG_SOAK },
    deny(plan) {
      const roles = new Set(lastStageChanges(plan).map((c) => c.resource.split('/').pop()));
      return {
        what: `iam:PutRolePermissionsBoundary on ${[...roles].join(', ')}`,
        matches: (call, input) => callIs('iam:PutRolePermissionsBoundary')(call, input) && roles.has(String(input.RoleName)),
      };
    },
  },
  scp: {
    halt: { soak: LONG_SOAK },
    deny(plan) {
      const targets = new Set(lastStageChanges(plan).filter((c) => c.action === 'attach-policy').map((c) => c.id.slice(c.id.indexOf('/') + 1)));
      return {
        what: `organizations:AttachPolicy to ${[...targets].join(', ')}`,
        matches: (call, input) => callIs('organizations:AttachPolicy')(call, input) && targets.has(String(input.TargetId)),
      };
    },
  },
};

// ---------------------------------------------------------------------------------------------------
// Recording

interface Recorder {
  stack: Stack;
  gate: AwsProxy;
  client: RemediationClient;
  policyPath: string;
  say(line: string): void;
}

function writePolicy(policyPath: string, approvalTimeout: string): void {
  const demo = JSON.parse(readFileSync(DEMO_POLICY_PATH, 'utf8')) as Record<string, unknown>;
  writeFileSync(policyPath, `${JSON.stringify({ ...demo, approvalTimeout }, null, 2)}\n`);
}

async function decide(r: Recorder, workflowId: string, decision: 'approve' | 'reject', approver: string, plan: Plan, comment?: string): Promise<void> {
  const reply = await r.client.decide(workflowId, { decision, approver, planDigest: plan.digest, ...(comment ? { comment } : {}) });
  if (!reply.accepted) throw new Error(`${approver}'s ${decision} was refused: ${reply.refusal.message}`);
  r.say(`    ${approver} ${decision === 'approve' ? 'approves' : 'rejects'}: accepted`);
}

const awaitingApproval = (r: Recorder, workflowId: string) => r.client.waitFor(workflowId, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 180_000 });
const finished = (r: Recorder, workflowId: string) => r.client.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 300_000 });

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Drive the run from its plan to `outcome`; returns its final status. */
async function drive(r: Recorder, kind: KindName, outcome: RecordedOutcome, workflowId: string, plan: Plan): Promise<RemediationStatus> {
  const driver = DRIVERS[kind];
  switch (outcome) {
    case 'completed':
      for (const who of [REQUESTER, OUTSIDER]) {
        const reply = await r.client.decide(workflowId, { decision: 'approve', approver: who, planDigest: plan.digest });
        if (reply.accepted) throw new Error(`${who}'s approval was accepted; it must be refused`);
        r.say(`    ${who} approves: refused (${reply.refusal.reason})`);
      }
      await decide(r, workflowId, 'approve', APPROVER, plan, 'reviewed: the plan matches the ticket');
      return finished(r, workflowId);
    case 'rejected':
      await decide(r, workflowId, 'reject', SECOND_APPROVER, plan, 'not this week');
      return finished(r, workflowId);
    case 'expired':
      r.say(`    nobody decides; the approval window (${SHORT_APPROVAL_TIMEOUT}) closes`);
      return finished(r, workflowId);
    case 'rolled-back': {
      if ('soak' in driver.halt) {
        await decide(r, workflowId, 'approve', APPROVER, plan);
        const soaking = await r.client.waitFor(workflowId, (s) => s.phase === 'soaking', { timeoutMs: 180_000 });
        r.say(`    soaking before stage ${soaking.stage ?? '?'} after ${soaking.progress.applied} applied change(s)`);
        await decide(r, workflowId, 'reject', REQUESTER, plan, 'halt: a workload broke');
        return finished(r, workflowId);
      }
      const held = r.gate.hold(callIs(driver.halt.holdCall));
      try {
        await decide(r, workflowId, 'approve', APPROVER, plan);
        await withTimeout(held.reached, 180_000, `the run to call ${driver.halt.holdCall}`);
        r.say(`    ${driver.halt.holdCall} is held while the run is halted`);
        await decide(r, workflowId, 'reject', REQUESTER, plan, 'halt: a workload broke');
      } finally {
        held.release();
      }
      return finished(r, workflowId);
    }
    case 'failed': {
      const denied = driver.deny(plan);
      r.gate.deny(denied.matches);
      r.say(`    AWS denies ${denied.what} from now on`);
      await decide(r, workflowId, 'approve', APPROVER, plan);
      return finished(r, workflowId);
    }
  }
}

/** The params of the run: the scenario's (read after seeding: some are known only then), with a long soak for a halt. */
function paramsFor(kind: KindName, scenario: Scenario, outcome: RecordedOutcome): Record<string, string> {
  const halt = DRIVERS[kind].halt;
  return outcome === 'rolled-back' && 'soak' in halt ? { ...scenario.params, soak: halt.soak } : { ...scenario.params };
}

async function saveHistory(r: Recorder, workflowId: string, file: string): Promise<void> {
  const history = await r.stack.client.workflow.getHandle(workflowId).fetchHistory();
  // The check the replay test makes, before the file is kept.
  const source = selectWorkflowSource(path.join(__dirname, '..', 'workflows'));
  const code = source.kind === 'prebuilt' ? { workflowBundle: { codePath: source.codePath } } : { workflowsPath: source.workflowsPath, bundlerOptions: WORKFLOW_BUNDLER_OPTIONS };
  await Worker.runReplayHistory(code, history, workflowId);
  const target = path.join(REPLAY_DIR, file);
  writeFileSync(target, `${historyToJSON(history)}\n`);
  const bytes = statSync(target).size;
  r.say(`  wrote test/replay/${file}: ${history.events?.length ?? 0} events, ${Math.round(bytes / 1024)} KiB${bytes > LARGE_FIXTURE_BYTES ? ' — LARGER than 200 KiB: shrink the estate' : ''}`);
}

/** Reset the sandbox and seed the scenario of `kind`. */
async function seeded(r: Recorder, kind: KindName): Promise<{ scenario: Scenario; state: ScenarioState; close(): void }> {
  const scenario = SCENARIOS[kind];
  if (!scenario) throw new Error(`kind ${kind} has no demo scenario: add sandbox/scenarios/${kind}.ts (its seed is what its histories are recorded on)`);
  await r.stack.moto.reset();
  const context = createScenarioContext(r.stack.moto.endpoint, (line) => r.say(`    seed: ${line}`));
  try {
    return { scenario, state: await scenario.seed(context), close: () => context.close() };
  } catch (err) {
    context.close();
    throw err;
  }
}

async function recordKind(r: Recorder, kind: KindName, outcome: RecordedOutcome): Promise<void> {
  r.say(`\n${kind} → ${outcome}`);
  writePolicy(r.policyPath, outcome === 'expired' ? SHORT_APPROVAL_TIMEOUT : '1h');
  r.gate.clearRules();
  const { scenario, state, close } = await seeded(r, kind);
  try {
    const params = paramsFor(kind, scenario, outcome);
    const workflowId = recordedWorkflowId(kind, state.account, outcome);
    await r.client.start({ kind, account: state.account, params, requestedBy: REQUESTER, idSuffix: outcome });
    r.say(`  started ${workflowId} (${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(' ')})`);
    const awaiting = await awaitingApproval(r, workflowId);
    if (awaiting.phase === 'done' || !awaiting.plan) throw new Error(`the run ended before approval: ${awaiting.outcome ?? '?'} — ${awaiting.outcomeReason ?? ''}`);
    r.say(`    plan ${awaiting.plan.digest.slice(0, 12)}…: ${awaiting.plan.changes.length} change(s) in stages ${awaiting.plan.stages.map((s) => s.name).join(', ')}`);
    const final = await drive(r, kind, outcome, workflowId, awaiting.plan);
    r.say(`  outcome ${final.outcome ?? '?'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`);
    if (final.outcome !== outcome) throw new Error(`${workflowId} ended ${final.outcome ?? 'without an outcome'}, not ${outcome}`);
    if (outcome === 'rolled-back' || outcome === 'failed') {
      const rolledBack = final.results.filter((x) => x.status === 'rolled-back').length;
      r.say(`    ${final.progress.applied} applied, ${final.progress.failed} failed, ${rolledBack} rolled back`);
      if (rolledBack === 0) throw new Error(`${workflowId} ended ${outcome} without rolling anything back; the fixture would not exercise rollback`);
    }
    await saveHistory(r, workflowId, fixtureName(kind, outcome));
  } finally {
    r.gate.clearRules();
    close();
  }
}

async function recordOrganization(r: Recorder): Promise<void> {
  const outcome: RecordedOutcome = 'completed';
  r.say(`\n${ORGANIZATION} (${ORGANIZATION_KIND}) → ${outcome}`);
  writePolicy(r.policyPath, '1h');
  r.gate.clearRules();
  const { scenario, state, close } = await seeded(r, ORGANIZATION_KIND);
  try {
    const workflowId = recordedWorkflowId(ORGANIZATION_KIND, ORGANIZATION, outcome);
    await r.client.startOrganization({ kind: ORGANIZATION_KIND, accounts: state.account, params: { ...scenario.params }, requestedBy: REQUESTER, idSuffix: outcome });
    r.say(`  started ${workflowId} over account ${state.account}`);
    const awaiting = await awaitingApproval(r, workflowId);
    if (awaiting.phase === 'done' || !awaiting.plan) throw new Error(`the run ended before approval: ${awaiting.outcome ?? '?'} — ${awaiting.outcomeReason ?? ''}`);
    r.say(`    consolidated plan ${awaiting.plan.digest.slice(0, 12)}…: ${awaiting.plan.changes.map((c) => c.id).join(', ')}`);
    await decide(r, workflowId, 'approve', APPROVER, awaiting.plan);
    const final = await finished(r, workflowId);
    r.say(`  outcome ${final.outcome ?? '?'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`);
    if (final.outcome !== outcome) throw new Error(`${workflowId} ended ${final.outcome ?? 'without an outcome'}, not ${outcome}`);
    await saveHistory(r, workflowId, fixtureName(ORGANIZATION, outcome));
  } finally {
    close();
  }
}

interface Selection {
  kinds: (KindName | typeof ORGANIZATION)[];
  outcomes: RecordedOutcome[];
}

function parseArgs(argv: string[]): Selection {
  const kinds = Object.keys(KINDS) as KindName[];
  const names = [...kinds, ORGANIZATION];
  const program = new Command('record-histories')
    .description('Record the workflow histories test/integration/replay.test.ts replays (test/replay/<kind>-<outcome>.json).')
    .option('--kind <kind>', `one kind (${names.join(', ')})`, (v: string) => {
      if (!names.includes(v)) throw new InvalidArgumentError(`not a kind; one of ${names.join(', ')}`);
      return v;
    })
    .option('--outcome <outcome>', `one outcome (${RECORDED_OUTCOMES.join(', ')})`, (v: string) => {
      if (!(RECORDED_OUTCOMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`not a recorded outcome; one of ${RECORDED_OUTCOMES.join(', ')}`);
      return v;
    })
    .allowExcessArguments(false)
    .parse(argv);
  const options = program.opts<{ kind?: KindName | typeof ORGANIZATION; outcome?: RecordedOutcome }>();
  return {
    kinds: options.kind ? [options.kind] : names as Selection['kinds'],
    outcomes: options.outcome ? [options.outcome] : [...RECORDED_OUTCOMES],
  };
}

async function main(): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as in the CLI: the pinned SDK supports Node 20
  const selection = parseArgs(process.argv);
  const runs = selection.kinds.flatMap((kind) => (kind === ORGANIZATION ? selection.outcomes.filter((o) => o === 'completed') : selection.outcomes).map((outcome) => ({ kind, outcome })));
  if (runs.length === 0) {
    process.stderr.write(`record-histories: nothing to record (${ORGANIZATION} is recorded completed only)\n`);
    return 2;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const policyPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'countersign-record-')), 'policy.json');
  writePolicy(policyPath, '1h');
  let gate: AwsProxy | undefined;
  say(`Recording ${runs.length} histor${runs.length === 1 ? 'y' : 'ies'} into ${path.relative(process.cwd(), REPLAY_DIR) || REPLAY_DIR}`);
  let stack: Stack | undefined;
  const failures: string[] = [];
  try {
    stack = await startStack({
      policyPath,
      taskQueue: 'countersign-record',
      say,
      logger: createPino(process.env.COUNTERSIGN_LOG_LEVEL ?? 'error'),
      workerAwsEndpoint: async (moto) => {
        gate = await startAwsProxy({ upstream: moto.endpoint });
        return gate.endpoint;
      },
    });
    const r: Recorder = { stack, gate: gate!, client: new RemediationClient(stack.client, stack.taskQueue), policyPath, say };
    for (const { kind, outcome } of runs) {
      try {
        if (kind === ORGANIZATION) await recordOrganization(r);
        else await recordKind(r, kind, outcome);
      } catch (err) {
        failures.push(`${kind}-${outcome}: ${(err as Error).message}`);
        say(`  FAILED ${kind}-${outcome}: ${(err as Error).message}`);
      }
    }
  } finally {
    await stack?.stop();
    await gate?.close();
  }
  say('');
  say(failures.length === 0 ? `Recorded ${runs.length} histor${runs.length === 1 ? 'y' : 'ies'}.` : `${failures.length} of ${runs.length} not recorded:\n  ${failures.join('\n  ')}`);
  return failures.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`record-histories: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
