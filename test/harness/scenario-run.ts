/**
 * One kind's demo scenario (sandbox/scenarios) run end to end against a test stack, the way an
 * operator's worker would meet a bad day: the worker is `countersign worker` in a child process, its
 * AWS endpoint an AWS proxy (sandbox/aws-proxy.ts) in front of the stack's moto that can throttle, fail
 * and slow calls, and the worker can be SIGKILLed at named points of the run and started again.
 *
 * A run: reset moto (each scenario seeds its own organization, as `countersign demo` does), seed the
 * scenario, start the proxy and the worker, start the run, approve its plan (or reject it during the
 * first soak, so it rolls back), wait for the end, then check AWS: the scenario's own checks for an
 * approved run, the seeded state restored for a rolled-back one. It returns what the proxy saw
 * (faults injected, calls, mutations that reached AWS twice and which) and whether every planned
 * change has exactly one result.
 *
 * Kill points are found from the workflow's description, which needs no worker: its pending
 * activities (the engine's activity ids, docs/engine.md: `plan`, `plan:page-k`, `snapshot:<change>`,
 * `apply:<change>`, `snapshot-batch:…`, `apply-batch:…`, `rollback:<change>`, `rollback-batch:…`,
 * `verify`, `verify:page-k`) and the phase the workflow keeps in its memo.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { IAMClient } from '@aws-sdk/client-iam';
import {
  GetPolicyCommand,
  GetRoleCommand,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListMFADevicesCommand,
  ListUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import { ListPoliciesCommand, ListPoliciesForTargetCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { temporal } from '@temporalio/proto';
import { builtinBoundaryArn } from '../../common/boundaries';
import type { KindName } from '../../common/kinds';
import type { DecideSignal, RemediationStatus } from '../../common/messages';
import { decideUpdate } from '../../common/messages';
import type { AwsProxy, AwsProxyStats, FaultRates } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';
import { stopProcess } from '../../sandbox/processes';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from '../../sandbox/scenarios';
import { SCENARIOS, createScenarioContext } from '../../sandbox/scenarios';
import type { PermissionBoundaryState } from '../../sandbox/scenarios/permission-boundary';
import type { RetireDefaultTrailsState } from '../../sandbox/scenarios/retire-default-trails';
import { trailState } from '../../sandbox/scenarios/retire-default-trails';
import type { ScpState } from '../../sandbox/scenarios/scp';
import type { StaleIamUsersState } from '../../sandbox/scenarios/stale-iam-users';
import { keepKeysInUse } from '../../sandbox/scenarios/stale-iam-users';
import { CLI } from './cli';
import type { TestStack } from './stack';

export const REQUESTER = 'riley.operator';
export const APPROVER = 'dana.approver';

/** Where in a run the worker can be killed. */
export type KillPhase = 'plan' | 'awaiting-approval' | 'soak' | 'apply' | 'rollback' | 'verify';
export const KILL_PHASES: readonly KillPhase[] = ['plan', 'awaiting-approval', 'soak', 'apply', 'rollback', 'verify'];

export interface KillRequest {
  phase: KillPhase;
  /** How long after the phase is seen the worker is killed (the run may have moved on by then). */
  delayMs?: number;
}

export interface KillRecord {
  requested: KillPhase;
  /** What the run was doing when the worker died: an activity of that phase in flight, else the workflow's phase. */
  phase: KillPhase | 'other';
  /** The workflow's phase (its memo) at the kill. */
  workflowPhase: string;
  /** Activity attempts (`<id>#<attempt>`) started, and not orphaned by an earlier kill, at the kill. */
  inFlight: string[];
  /** The requested phase never came (the run passed it, or it has none): no kill. */
  missed?: boolean;
  /** From the run's start. */
  atMs?: number;
}

export interface ScenarioRunOptions {
  kind: KindName;
  faults?: FaultRates;
  latencyMs?: number;
  /** The proxy's fault seed. */
  seed?: number;
  /** `reject-in-soak`: reject during the first soak, so the run rolls back what it applied. */
  decision?: 'approve' | 'reject-in-soak';
  /** In the order they will happen; each waits for its phase, kills the worker and starts another. */
  kills?: KillRequest[];
  /** Overrides of the scenario's parameters (a longer soak for a rollback run). */
  params?: Record<string, string>;
  timeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface ResultAccounting {
  ok: boolean;
  /** Changes without their one result (or with more than one, or results for no change), with why. */
  problems: string[];
  /** Planned changes with no result where one was due. */
  lost: number;
  /** Changes with more than one result of the same kind (apply, rollback). */
  doubled: number;
}

export interface ScenarioRunResult {
  kind: KindName;
  workflowId: string;
  decision: 'approve' | 'reject-in-soak';
  outcome?: string;
  outcomeReason?: string;
  final: RemediationStatus;
  /** The scenario's checks (approved run) or the seeded state restored (rolled-back run). */
  checks: ScenarioChecks;
  stats: AwsProxyStats;
  /** Mutations that succeeded in AWS twice with the same parameters, by `service:action`. */
  duplicates: Record<string, number>;
  accounting: ResultAccounting;
  kills: KillRecord[];
  /** Activity attempts after the first, from history (lost workers and retried failures). */
  retriedAttempts: number;
  ms: number;
}

// ---------------------------------------------------------------------------------------------------
// The worker, as a child process

export interface WorkerProcess {
  child: ChildProcess;
  /** The last part of its log, for a failure to show. */
  log(): string;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `countersign worker` with `env`, resolved once it logs "worker started". COUNTERSIGN_TEST_WORKER_LOG=<file>
 * appends its log there, to be read after a failure. COUNTERSIGN_TEST_WORKER_CLI names another compiled
 * CLI to run (the chaos suite runs a copy of dist/ taken at its start, test/chaos/global-setup.ts).
 */
export function startWorkerProcess(env: Record<string, string | undefined>): Promise<WorkerProcess> {
  return new Promise((resolve, reject) => {
    // The bin script itself, as a user runs it (its first line starts node with the worker's memory settings).
    const other = process.env.COUNTERSIGN_TEST_WORKER_CLI;
    const child = spawn(other ? process.execPath : CLI, other ? [other, 'worker'] : ['worker'], { env: { ...process.env, ...env, COUNTERSIGN_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not start within 60 s:\n${log}`));
    }, 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-20_000);
      if (process.env.COUNTERSIGN_TEST_WORKER_LOG) appendFileSync(process.env.COUNTERSIGN_TEST_WORKER_LOG, d);
      if (!started && log.includes('"msg":"worker started"')) {
        started = true;
        clearTimeout(timer);
        resolve(worker);
      }
    });
    child.on('exit', (code, signal) => {
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`the worker exited ${code ?? signal} before it started:\n${log}`));
    });
    const exited = () => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    const worker: WorkerProcess = {
      child,
      log: () => log,
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited();
      },
      stop: () => stopProcess(child),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Where the run is, from its description

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** The activity ids of each phase, as the engine names them (docs/engine.md). */
const ACTIVITY_IDS: Partial<Record<KillPhase, RegExp>> = {
  plan: /^plan(:|$)/,
  apply: /^(snapshot|apply)(-batch)?:/,
  rollback: /^rollback(-batch)?:/,
  verify: /^verify(:|$)/,
};

/** The workflow's phases in the order a run goes through them (soaking and applying alternate). */
const PHASE_ORDER: Record<string, number> = { starting: 0, planning: 1, 'awaiting-approval': 2, applying: 3, soaking: 3, 'rolling-back': 4, verifying: 5, done: 6 };
/** Past this phase, a kill of that phase can no longer come. */
const LAST_CHANCE: Record<KillPhase, number> = { plan: 1, 'awaiting-approval': 2, soak: 3, apply: 3, rollback: 4, verify: 5 };
const OF_WORKFLOW_PHASE: Record<string, KillPhase> = { planning: 'plan', 'awaiting-approval': 'awaiting-approval', soaking: 'soak', applying: 'apply', 'rolling-back': 'rollback', verifying: 'verify' };

interface Seen {
  running: boolean;
  phase: string;
  /** Activities started and not finished, as `<activity id>#<attempt>`. */
  started: string[];
}

const idOf = (attempt: string) => attempt.slice(0, attempt.lastIndexOf('#'));

async function look(stack: TestStack, workflowId: string): Promise<Seen> {
  const d = await stack.client.workflow.getHandle(workflowId).describe();
  const phase = typeof d.memo?.phase === 'string' ? d.memo.phase : 'starting';
  const started = (d.raw.pendingActivities ?? []).filter((a) => a.state === STARTED).map((a) => `${a.activityId ?? ''}#${a.attempt ?? 1}`);
  return { running: d.status.name === 'RUNNING', phase: d.status.name === 'RUNNING' ? phase : 'done', started };
}

/**
 * Whether the run is in `phase`. An activity phase needs an attempt in flight that no earlier kill
 * already orphaned (`spent`): the server shows a dead worker's attempt as started until its heartbeat
 * times out, and killing the new worker then would interrupt nothing.
 */
function matches(phase: KillPhase, seen: Seen, spent: ReadonlySet<string> = new Set()): boolean {
  const ids = ACTIVITY_IDS[phase];
  if (ids) return seen.started.some((a) => !spent.has(a) && ids.test(idOf(a)));
  return seen.phase === (phase === 'soak' ? 'soaking' : phase);
}

function classify(seen: Seen, spent: ReadonlySet<string>): KillPhase | 'other' {
  for (const phase of ['rollback', 'verify', 'apply', 'plan'] as const) if (matches(phase, seen, spent)) return phase;
  return OF_WORKFLOW_PHASE[seen.phase] ?? 'other';
}

/** Poll until `phase` is seen (true) or can no longer come (false). */
async function waitForPhase(stack: TestStack, workflowId: string, phase: KillPhase, deadline: number, spent: ReadonlySet<string>): Promise<boolean> {
  for (;;) {
    const seen = await look(stack, workflowId);
    if (matches(phase, seen, spent)) return true;
    if (!seen.running || (PHASE_ORDER[seen.phase] ?? 0) > LAST_CHANCE[phase] || Date.now() > deadline) return false;
    await sleep(50);
  }
}

async function waitForWorkflowPhase(stack: TestStack, workflowId: string, ok: (phase: string) => boolean, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await look(stack, workflowId);
    if (ok(seen.phase) || !seen.running) return seen.phase;
    if (Date.now() > deadline) throw new Error(`${workflowId} stayed in phase ${seen.phase} for ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

/**
 * The status query, retried: just after a worker was killed and replaced, the query can fail while the
 * server still routes the workflow's tasks to the dead worker's sticky queue.
 */
async function statusOf(stack: TestStack, workflowId: string, timeoutMs = 60_000): Promise<RemediationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await stack.remediations.status(workflowId);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/**
 * A decision through the `decide` update itself (the CLI's client also queries the status after it,
 * which a just-replaced worker may not answer yet), retried on errors; a retried decision the workflow
 * had already taken is refused as a duplicate, which is the same as accepted here.
 */
async function decide(stack: TestStack, workflowId: string, decision: DecideSignal, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await stack.client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [decision] });
      if (reply.accepted || (attempt > 1 && reply.reason === 'duplicate')) return;
      throw new Error(`the ${decision.decision} was refused: ${reply.reason ?? ''} ${reply.message ?? ''}`);
    } catch (err) {
      if ((err as Error).message.startsWith(`the ${decision.decision} was refused`) || Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

/** The run's result once it has closed: waits on the description (no worker needed), then reads the result. */
async function finalStatus(stack: TestStack, workflowId: string, timeoutMs: number): Promise<RemediationStatus> {
  await waitForWorkflowPhase(stack, workflowId, (p) => p === 'done', timeoutMs);
  return statusOf(stack, workflowId);
}

// ---------------------------------------------------------------------------------------------------
// Nothing lost

const APPLY_STATUSES = new Set(['applied', 'already-done', 'left-alone', 'skipped', 'failed']);
const ROLLBACK_STATUSES = new Set(['rolled-back', 'rollback-failed']);

/**
 * Whether every planned change has exactly one result: one apply result in every stage the run
 * reached (all of them, for a completed run), none for a change of a stage it never reached, at most
 * one rollback result, and one for each reversible change a rolled-back run had applied (unless an
 * applied irreversible change depends on it, which keeps it in place — docs/engine.md).
 */
export function accountResults(final: RemediationStatus): ResultAccounting {
  const problems: string[] = [];
  const plan = final.plan;
  if (final.resultsNotListed) problems.push(`${final.resultsNotListed} results not listed in the status; cannot account for them`);
  if (!plan) return { ok: problems.length === 0, problems, lost: 0, doubled: 0 };
  const applied = new Map<string, string[]>();
  const rolled = new Map<string, string[]>();
  const planned = new Set(plan.changes.map((c) => c.id));
  for (const r of final.results) {
    if (!planned.has(r.changeId)) problems.push(`a result for ${r.changeId}, which is not in the plan`);
    const into = APPLY_STATUSES.has(r.status) ? applied : ROLLBACK_STATUSES.has(r.status) ? rolled : undefined;
    if (!into) problems.push(`${r.changeId}: unknown result status ${r.status}`);
    else into.set(r.changeId, [...(into.get(r.changeId) ?? []), r.status]);
  }
  const reached = new Set(plan.changes.filter((c) => applied.has(c.id)).map((c) => c.stage));
  const inPlace = new Set(plan.changes.filter((c) => ['applied', 'already-done'].includes(applied.get(c.id)?.[0] ?? '') && rolled.get(c.id)?.[0] !== 'rolled-back').map((c) => c.id));
  let lost = 0;
  let doubled = 0;
  for (const change of plan.changes) {
    const a = applied.get(change.id) ?? [];
    const r = rolled.get(change.id) ?? [];
    if (a.length > 1 || r.length > 1) {
      doubled++;
      problems.push(`${change.id}: ${[...a, ...r].join(', ')}`);
    }
    if (a.length === 0 && (final.outcome === 'completed' || reached.has(change.stage))) {
      lost++;
      problems.push(`${change.id}: no result (stage ${change.stage})`);
    }
    if (final.outcome === 'completed' && r.length > 0) problems.push(`${change.id}: rolled back in a completed run (${r.join(', ')})`);
    const wasApplied = a[0] === 'applied' || a[0] === 'already-done';
    const heldBy = plan.changes.some((d) => (d.dependsOn ?? []).includes(change.id) && !d.reversible && inPlace.has(d.id));
    if (final.outcome === 'rolled-back' && wasApplied && change.reversible && !heldBy && r.length === 0) {
      lost++;
      problems.push(`${change.id}: applied and reversible, but no rollback result`);
    }
  }
  return { ok: problems.length === 0, problems, lost, doubled };
}

// ---------------------------------------------------------------------------------------------------
// Mutations that reached AWS twice

export interface IdempotentAction {
  /** `service:action` as the proxy names it; S3 is `s3:METHOD /path`. */
  action: RegExp;
  why: string;
}

/**
 * Per kind, the mutations that may reach AWS twice with the same parameters — a retry after a lost
 * worker or a failed attempt — because sending them again changes nothing. Any other mutation seen
 * twice is a change applied twice. Mutations that fail when repeated (CreateUser, DeleteUser,
 * DeleteLoginProfile, CreateTrail, DeleteTrail, CreatePolicy, AttachPolicy, DetachPolicy, …) answer
 * an error the second time and are never counted (the proxy counts 2xx answers only). STS calls (a
 * restarted worker assumes a member role again) are not mutations at all (sandbox/aws-proxy.ts).
 */
export const IDEMPOTENT_DUPLICATES: Record<string, IdempotentAction[]> = {
  'stale-iam-users': [
    { action: /^iam:UpdateAccessKey$/, why: 'setting a key to the status it already has (Inactive on disable, Active on re-enable) is a no-op' },
  ],
  'retire-default-trails': [
    { action: /^cloudtrail:(StopLogging|StartLogging)$/, why: 'stopping a stopped trail, or starting a logging one, leaves it as it is' },
  ],
  'permission-boundary': [
    { action: /^iam:(PutRolePermissionsBoundary|DeleteRolePermissionsBoundary)$/, why: 'putting the boundary a role already has (or removing one it no longer has) leaves the role as it is' },
  ],
  scp: [],
  'org-trail': [
    { action: /^organizations:EnableAWSServiceAccess$/, why: 'enabling trusted access that is enabled changes nothing' },
    { action: /^s3:PUT \//, why: "the bucket settings (public access block, versioning, ownership, encryption, policy) are whole-value PUTs: the same value again leaves the bucket as it is" },
    { action: /^cloudtrail:(StartLogging|StopLogging|UpdateTrail)$/, why: 'starting a logging trail, or updating a trail to the settings it has, leaves it as it is' },
  ],
};

/** Duplicates that are not in the kind's idempotent list: mutations applied twice. */
export function unexpectedDuplicates(kind: string, duplicates: Record<string, number>): string[] {
  const allowed = IDEMPOTENT_DUPLICATES[kind] ?? [];
  return Object.keys(duplicates).filter((action) => !allowed.some((a) => a.action.test(action)));
}

// ---------------------------------------------------------------------------------------------------
// The seeded state, for a rolled-back run to be compared with

/**
 * What a rollback must put back, per kind, read from AWS. Left out, on purpose: what the kind
 * documents it does not undo — a console password deleted on disable (AWS keeps no copy; the
 * rollback says an administrator must set a new one), SCPs enabled on the root (never disabled: that
 * would detach every SCP of the organization), CloudTrail trusted access (org-trail has no soak to
 * reject in, so no rollback run here).
 */
const FINGERPRINTS: Partial<Record<KindName, (context: ScenarioContext, state: ScenarioState) => Promise<unknown>>> = {
  async 'stale-iam-users'(context, s) {
    const state = s as StaleIamUsersState;
    const iam = context.iam(state.member.id);
    const users = [...state.estate.idle, state.estate.sshKeyHolder, ...state.estate.active, state.estate.exempt, state.estate.breakGlass];
    const of = async (user: string) => ({
      keys: ((await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => `${k.AccessKeyId}:${k.Status}`).sort(),
      mfa: ((await iam.send(new ListMFADevicesCommand({ UserName: user }))).MFADevices ?? []).map((m) => m.SerialNumber).sort(),
      groups: ((await iam.send(new ListGroupsForUserCommand({ UserName: user }))).Groups ?? []).map((g) => g.GroupName).sort(),
      inline: ((await iam.send(new ListUserPoliciesCommand({ UserName: user }))).PolicyNames ?? []).sort(),
      attached: ((await iam.send(new ListAttachedUserPoliciesCommand({ UserName: user }))).AttachedPolicies ?? []).map((p) => p.PolicyArn).sort(),
    });
    const management = context.iam(state.organization.managementAccount);
    return {
      member: Object.fromEntries(await Promise.all(users.map(async (u) => [u, await of(u)]))),
      management: Object.fromEntries(await Promise.all(state.managementIdle.map(async (u) => [u, ((await management.send(new ListAccessKeysCommand({ UserName: u }))).AccessKeyMetadata ?? []).map((k) => k.Status)]))),
    };
  },
  async 'retire-default-trails'(context, s) {
    const state = s as RetireDefaultTrailsState;
    return Object.fromEntries(await Promise.all(state.trails.map(async (t) => [`${t.name}@${t.account}`, (await trailState(context, t)) ?? 'gone'])));
  },
  async 'permission-boundary'(context, s) {
    const state = s as PermissionBoundaryState;
    const iam = context.iam(state.member.id);
    const boundaryOf = async (i: IAMClient, role: string) => (await i.send(new GetRoleCommand({ RoleName: role })).catch(() => undefined))?.Role?.PermissionsBoundary?.PermissionsBoundaryArn ?? 'none';
    const builtin = builtinBoundaryArn('countersign-workload-boundary', { partition: 'aws', account: state.member.id });
    return {
      roles: Object.fromEntries(await Promise.all([...state.workloads.map((w) => w.name), state.serviceLinked.name].map(async (r) => [r, await boundaryOf(iam, r)]))),
      builtinBoundary: await iam.send(new GetPolicyCommand({ PolicyArn: builtin })).then(() => 'exists', () => 'absent'),
      management: await boundaryOf(context.iam(state.organization.managementAccount), state.managementRole),
    };
  },
  async scp(context, s) {
    const state = s as ScpState;
    const orgs = new OrganizationsClient(context.clientConfig(state.account));
    try {
      const attached = async (target: string) => ((await orgs.send(new ListPoliciesForTargetCommand({ TargetId: target, Filter: 'SERVICE_CONTROL_POLICY' }))).Policies ?? []).map((p) => p.Name).sort();
      return {
        policies: ((await orgs.send(new ListPoliciesCommand({ Filter: 'SERVICE_CONTROL_POLICY' }))).Policies ?? []).map((p) => p.Name).sort(),
        ...Object.fromEntries(await Promise.all(Object.entries(state.organization.ous).map(async ([name, id]) => [name, await attached(id)]))),
      };
    } finally {
      orgs.destroy();
    }
  },
};

export function canRollBack(kind: KindName): boolean {
  return FINGERPRINTS[kind] !== undefined;
}

function restoredChecks(final: RemediationStatus, before: unknown, after: unknown): ScenarioChecks {
  const a = JSON.stringify(before);
  const b = JSON.stringify(after);
  const lines = [
    `${final.outcome === 'rolled-back' ? 'ok    ' : 'FAILED'} outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`,
    `${a === b ? 'ok    ' : 'FAILED'} the seeded state is restored${a === b ? '' : `: before ${a}\n  after ${b}`}`,
  ];
  return { ok: final.outcome === 'rolled-back' && a === b, lines };
}

// ---------------------------------------------------------------------------------------------------
// A run

function countDuplicates(proxy: AwsProxy): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of proxy.calls()) if (c.duplicate) out[`${c.service}:${c.action}`] = (out[`${c.service}:${c.action}`] ?? 0) + 1;
  return out;
}

/** Run `options.kind`'s demo scenario against `stack` (started with `worker: false`); see the file's comment. */
export async function runScenario(stack: TestStack, options: ScenarioRunOptions): Promise<ScenarioRunResult> {
  const scenario = SCENARIOS[options.kind] as Scenario | undefined;
  if (!scenario) throw new Error(`no demo scenario for kind ${options.kind}`);
  const decision = options.decision ?? 'approve';
  const fingerprint = FINGERPRINTS[options.kind];
  if (decision === 'reject-in-soak' && !fingerprint) throw new Error(`${options.kind}: no rollback run (its plan has no soak to reject in)`);
  const say = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 600_000;

  await stack.moto.reset();
  const context = createScenarioContext(stack.moto.endpoint);
  const proxy = await startAwsProxy({ upstream: stack.moto.endpoint, faults: options.faults, latencyMs: options.latencyMs, seed: options.seed });
  const env = { ...stack.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '8' };
  let worker: WorkerProcess | undefined;
  let stopUsingKeys: (() => void) | undefined;
  const kills: KillRecord[] = [];
  try {
    const state = await scenario.seed(context);
    // The scenario's active users used their keys once, at seeding; a run planned later than maxIdle (2s)
    // after that — a slow AWS, a worker killed while planning — would find them idle. As
    // `countersign dev --seed` does, keep them in use for the whole run.
    if (options.kind === 'stale-iam-users') stopUsingKeys = keepKeysInUse(state as StaleIamUsersState, stack.moto.endpoint);
    const before = decision === 'reject-in-soak' && fingerprint ? await fingerprint(context, state) : undefined;
    worker = await startWorkerProcess(env);
    const started = Date.now();
    // The scp scenario's parameters are known once it has seeded (its targets are the OUs it created).
    const params = { ...scenario.params, ...options.params };
    const { workflowId } = await stack.remediations.start({ kind: options.kind, account: state.account, params, requestedBy: REQUESTER, idSuffix: stack.uniqueSuffix() });
    const handle = stack.client.workflow.getHandle(workflowId);
    say(`${options.kind}: ${workflowId} started (${decision})`);
    const deadline = started + timeoutMs;

    /** Attempts in flight at an earlier kill: orphaned, so not in flight in any worker. */
    const spent = new Set<string>();
    const killAt = async (request: KillRequest): Promise<void> => {
      const came = await waitForPhase(stack, workflowId, request.phase, deadline, spent);
      if (!came) {
        const seen = await look(stack, workflowId);
        kills.push({ requested: request.phase, phase: classify(seen, spent), workflowPhase: seen.phase, inFlight: seen.started, missed: true });
        say(`${options.kind}: no ${request.phase} to kill in (now ${seen.phase})`);
        return;
      }
      if (request.delayMs) await sleep(request.delayMs);
      const seen = await look(stack, workflowId);
      await worker!.kill();
      const record: KillRecord = { requested: request.phase, phase: classify(seen, spent), workflowPhase: seen.phase, inFlight: seen.started.filter((a) => !spent.has(a)), atMs: Date.now() - started };
      for (const a of seen.started) spent.add(a);
      kills.push(record);
      say(`${options.kind}: SIGKILL at ${record.atMs} ms in ${record.phase} (asked ${request.phase}; in flight: ${record.inFlight.join(', ') || 'nothing'})`);
      worker = await startWorkerProcess(env);
    };

    const queue = [...(options.kills ?? [])];
    const take = (phases: KillPhase[]) => {
      const out: KillRequest[] = [];
      while (queue[0] && phases.includes(queue[0].phase)) out.push(queue.shift() as KillRequest);
      return out;
    };
    for (const k of take(['plan', 'awaiting-approval'])) await killAt(k);

    const reached = await waitForWorkflowPhase(stack, workflowId, (p) => (PHASE_ORDER[p] ?? 0) >= 2, timeoutMs);
    if (reached === 'awaiting-approval') {
      const { plan } = await statusOf(stack, workflowId);
      if (!plan) throw new Error(`${workflowId} awaits approval without a plan`);
      say(`${options.kind}: plan ${plan.digest.slice(0, 12)}… with ${plan.changes.length} change(s); approving`);
      await decide(stack, workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan.digest, comment: 'scenario run' });

      let rejected = decision !== 'reject-in-soak';
      const rejectInSoak = async () => {
        if (rejected) return;
        rejected = true;
        const phase = await waitForWorkflowPhase(stack, workflowId, (p) => p === 'soaking' || (PHASE_ORDER[p] ?? 0) >= 4, timeoutMs);
        if (phase !== 'soaking') throw new Error(`${workflowId} never soaked (now ${phase}): nothing to reject in`);
        await decide(stack, workflowId, { decision: 'reject', approver: APPROVER, planDigest: plan.digest, comment: 'halt: scenario rollback run' });
        say(`${options.kind}: rejected during the soak`);
      };
      for (let k = queue.shift(); k; k = queue.shift()) {
        if (k.phase === 'rollback' || k.phase === 'verify') await rejectInSoak();
        await killAt(k);
      }
      await rejectInSoak();
    }

    const final = await finalStatus(stack, workflowId, Math.max(10_000, deadline - Date.now()));
    const ms = Date.now() - started;
    const checks = decision === 'reject-in-soak' && fingerprint ? restoredChecks(final, before, await fingerprint(context, state)) : await scenario.checks(context, state, final);
    const history = await handle.fetchHistory();
    const retriedAttempts = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
    const result: ScenarioRunResult = {
      kind: options.kind,
      workflowId,
      decision,
      outcome: final.outcome,
      outcomeReason: final.outcomeReason,
      final,
      checks,
      stats: proxy.stats(),
      duplicates: countDuplicates(proxy),
      accounting: accountResults(final),
      kills,
      retriedAttempts,
      ms,
    };
    say(`${options.kind}: ${final.outcome} in ${ms} ms; checks ${checks.ok ? 'ok' : 'FAILED'}; ${result.stats.calls} calls; duplicates ${JSON.stringify(result.duplicates)}`);
    return result;
  } catch (err) {
    if (worker) (err as Error).message += `\n--- worker log (tail) ---\n${worker.log().slice(-4_000)}`;
    throw err;
  } finally {
    stopUsingKeys?.();
    await worker?.stop();
    await proxy.close();
    context.close();
  }
}

/** `0.30` → `30%`. */
const pct = (n: number) => `${Math.round(n * 100)}%`;

/** A fixed-width table for the test output, each row a line. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** `throttle 30%, http503 10%` for a summary's title. */
export function describeFaults(faults: FaultRates): string {
  return Object.entries(faults)
    .filter(([k, v]) => k !== 'slowMs' && typeof v === 'number' && v > 0)
    .map(([k, v]) => `${k} ${pct(v as number)}`)
    .join(', ');
}

/** Faults injected in a run, `throttle 41, http503 12`. */
export function faultCounts(stats: AwsProxyStats): string {
  const parts = Object.entries(stats.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return parts.join(', ') || 'none';
}
