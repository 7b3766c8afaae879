/**
 * The remediation engine on its own (workflows/lifecycle.ts, workflows/approval.ts, activities/engine.ts),
 * on the shared Temporal dev server, with a synthetic in-memory kind (test/engine/): no AWS, no moto.
 * Each run's plan is a scenario passed as a parameter; every activity call lands in an in-memory store,
 * so each test asserts what was (and was not) touched, in which order, next to the run's result and history.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { registerActivities } from '../../activities';
import { createPolicyActivities } from '../../activities/policy';
import { planDigestMatches } from '../../common/digest';
import type { DecideReply, DecideSignal, RemediationInput, RemediationStatus } from '../../common/messages';
import { decideUpdate, statusQuery } from '../../common/messages';
import type { Change } from '../../common/plan';
import type { ChangeRequest, RollbackRequest } from '../../common/requests';
import { buildEvidence } from '../../evidence/record';
import { installLogging } from '../../worker';
import { createPino } from '../../worker/logger';
import type { StoreEvent, SyntheticActivities, SyntheticScenario } from '../engine/activities';
import {
  SYNTHETIC_ACCOUNT,
  SYNTHETIC_KIND,
  SYNTHETIC_PARAMS,
  SYNTHETIC_TARGET,
  SYNTHETIC_WORKER_ARN,
  SyntheticStore,
  createSyntheticActivities,
  resolveSyntheticTarget,
} from '../engine/activities';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const SECURITY = 'sam.security';
const iamUser = (name: string) => `arn:aws:iam::${SYNTHETIC_ACCOUNT}:user/${name}`;
const BREAK_GLASS = iamUser('break-glass-admin');

const MAIN_POLICY = {
  approvers: { '*': [APPROVER, SECURITY] },
  quorum: { '*': 1 },
  approvalTimeout: '10m',
  maxChanges: 200,
};
/** A small plan limit and a short approval window, on its own worker and task queue. */
const STRICT_POLICY = {
  approvers: { '*': [APPROVER, SECURITY] },
  quorum: { '*': 1 },
  approvalTimeout: '3s',
  maxChanges: 3,
};

interface Lane {
  taskQueue: string;
  policyPath: string;
  worker: Worker;
  running: Promise<void>;
}

const store = new SyntheticStore();
/** The activities exactly as the workers register them: with the engine's guards, heartbeats, error classification. */
let guarded: SyntheticActivities;
let nativeConnection: NativeConnection;
let connection: Connection;
let client: Client;
let tmpDir: string;
let main: Lane;
let strict: Lane;
const lanes: Lane[] = [];

async function startLane(name: string, policy: object, workflowBundle: { code: string }): Promise<Lane> {
  const policyPath = path.join(tmpDir, `${name}-policy.json`);
  writeFileSync(policyPath, JSON.stringify(policy));
  const taskQueue = `engine-${name}-${randomUUID()}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle,
    activities: {
      ...createPolicyActivities({ policyPath }),
      resolveTarget: resolveSyntheticTarget,
      ...guarded,
    },
    shutdownGraceTime: '5s',
  });
  const lane = { taskQueue, policyPath, worker, running: worker.run() };
  lanes.push(lane);
  return lane;
}

beforeAll(async () => {
  const address = process.env.COUNTERSIGN_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('the integration global setup did not run (run through jest --selectProjects integration)');
  installLogging(createPino(process.env.COUNTERSIGN_TEST_LOG_LEVEL ?? 'error'));
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '..', 'engine', 'workflows.ts'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never,
  });
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'countersign-engine-'));
  guarded = registerActivities(createSyntheticActivities(store), { kinds: { [SYNTHETIC_KIND]: { params: SYNTHETIC_PARAMS } } });
  nativeConnection = await NativeConnection.connect({ address });
  connection = await Connection.connect({ address });
  client = new Client({ connection, namespace: 'default' });
  main = await startLane('main', MAIN_POLICY, workflowBundle);
  strict = await startLane('strict', STRICT_POLICY, workflowBundle);
});

afterAll(async () => {
  for (const lane of lanes) if (lane.worker.getState() === 'RUNNING') lane.worker.shutdown();
  await Promise.all(lanes.map((l) => l.running));
  await connection?.close();
  await nativeConnection?.close();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Handle = WorkflowHandleWithFirstExecutionRunId<(input: RemediationInput) => Promise<RemediationStatus>>;

async function start(
  lane: Lane,
  scenario: SyntheticScenario | undefined,
  options: { params?: Record<string, string>; dryRun?: boolean; workflowType?: 'syntheticRemediation' | 'syntheticWithoutSnapshot' } = {},
): Promise<Handle> {
  const params = { ...(scenario ? { scenario: JSON.stringify(scenario) } : {}), ...options.params };
  const input: RemediationInput = { kind: SYNTHETIC_KIND, params, requestedBy: REQUESTER, ...(options.dryRun ? { dryRun: true } : {}) };
  return client.workflow.start(options.workflowType ?? 'syntheticRemediation', {
    taskQueue: lane.taskQueue,
    workflowId: `synthetic/${randomUUID()}`,
    args: [input],
  }) as Promise<Handle>;
}

/** Poll the status query until `predicate` holds; fails if the run ends first. */
async function waitForStatus(handle: Handle, predicate: (s: RemediationStatus) => boolean, timeoutMs = 60_000): Promise<RemediationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await handle.query(statusQuery);
    if (predicate(status)) return status;
    if (status.phase === 'done') throw new Error(`${handle.workflowId} ended ${status.outcome} (${status.outcomeReason}) before the awaited state`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${handle.workflowId} (phase ${status.phase})`);
    await sleep(100);
  }
}

const awaitingApproval = (handle: Handle) => waitForStatus(handle, (s) => s.phase === 'awaiting-approval');

function decide(handle: Handle, decision: DecideSignal): Promise<DecideReply> {
  return handle.executeUpdate(decideUpdate, { args: [decision] });
}

async function approve(handle: Handle): Promise<RemediationStatus> {
  const status = await awaitingApproval(handle);
  const reply = await decide(handle, { decision: 'approve', approver: APPROVER, planDigest: status.plan!.digest });
  expect(reply).toMatchObject({ accepted: true });
  return status;
}

/** Changes' ids in the store's order for one run and one kind of call. */
const idsOf = (workflowId: string, op: StoreEvent['op']) => store.eventsOf(workflowId).filter((e) => e.op === op).map((e) => e.changeId);

const eventOf = (workflowId: string, op: StoreEvent['op'], changeId: string): StoreEvent => {
  const e = store.eventsOf(workflowId).find((x) => x.op === op && x.changeId === changeId);
  if (!e) throw new Error(`no ${op} of ${changeId} in the store`);
  return e;
};

const resultOf = (status: RemediationStatus, changeId: string, state?: string) =>
  status.results.filter((r) => r.changeId === changeId && (state === undefined || r.status === state));

async function historyOf(handle: Handle): Promise<HistoryEvent[]> {
  return (await handle.fetchHistory()).events ?? [];
}

/** The event id of the activity scheduled under an engine mark (`apply:c1`, `snapshot:d1`, …), and of its completion. */
function activityEvents(events: HistoryEvent[], activityId: string): { scheduled?: number; completed?: number; type?: string } {
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === activityId);
  if (!scheduled) return {};
  const scheduledId = Number(scheduled.eventId);
  const completed = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1) === scheduledId);
  return { scheduled: scheduledId, completed: completed ? Number(completed.eventId) : undefined, type: scheduled.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined };
}

const scheduledActivityIds = (events: HistoryEvent[]) =>
  events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes?.activityId as string);

const durationToMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(d?.seconds ?? 0) * 1000 + Math.round((d?.nanos ?? 0) / 1e6);

/** A run that never got past planning: the store saw the plan call and nothing else. */
function expectOnlyPlanned(workflowId: string): void {
  expect(store.eventsOf(workflowId).map((e) => e.op)).toEqual(['plan']);
  expect(store.touched(workflowId)).toEqual([]);
}

const change = (id: string, stage: string, extra: Partial<SyntheticScenario['changes'][number]> = {}): SyntheticScenario['changes'][number] => ({
  id,
  stage,
  action: 'tag',
  resource: iamUser(id),
  ...extra,
});

// ---------------------------------------------------------------------------------------------------

describe('the remediation engine, with a synthetic in-memory kind', () => {
  it('runs stages in plan order, each change of a stage ending before the next stage starts, and soaks where a stage asks', async () => {
    // Stage names are not in alphabetical order, and changes are listed interleaved across stages.
    const scenario: SyntheticScenario = {
      stages: [
        { name: 'zeta', concurrency: 2 },
        { name: 'alpha', soak: true },
        { name: 'mid', concurrency: 1 },
      ],
      changes: [
        change('a1', 'alpha', { delayMs: 200 }),
        change('z1', 'zeta', { delayMs: 500 }),
        change('z2', 'zeta', { action: 'restrict', delayMs: 500 }),
        change('m1', 'mid', { action: 'rotate' }),
        change('z3', 'zeta', { delayMs: 500 }),
        change('a2', 'alpha', { action: 'restrict', delayMs: 200 }),
      ],
    };
    const handle = await start(main, scenario, { params: { soak: '2s' } });
    await approve(handle);
    const id = handle.workflowId;

    // Caught in the soak before "alpha": every zeta change has ended, no alpha change has started.
    const soaking = await waitForStatus(handle, (s) => s.phase === 'soaking');
    expect(soaking.stage).toBe('alpha');
    expect(soaking.soakUntil).toBeDefined();
    expect(idsOf(id, 'apply-end').sort()).toEqual(['z1', 'z2', 'z3']);
    expect(idsOf(id, 'apply-start').sort()).toEqual(['z1', 'z2', 'z3']);

    const final = await handle.result();
    expect(final.outcome).toBe('completed');
    expect(final.verification?.ok).toBe(true);

    const stageOf = new Map(scenario.changes.map((c) => [c.id, c.stage]));
    const order = ['zeta', 'alpha', 'mid'];
    const events = store.eventsOf(id).filter((e) => e.op === 'apply-start' || e.op === 'apply-end');
    // A change of a later stage never starts before every change of every earlier stage ended.
    for (const startEvent of events.filter((e) => e.op === 'apply-start')) {
      const stage = order.indexOf(stageOf.get(startEvent.changeId!)!);
      for (const earlier of scenario.changes.filter((c) => order.indexOf(c.stage) < stage)) {
        expect(eventOf(id, 'apply-end', earlier.id).seq).toBeLessThan(startEvent.seq);
      }
    }
    expect(idsOf(id, 'apply-start')).toHaveLength(6);

    // zeta ran two at a time (its concurrency), never more.
    let inFlight = 0;
    let most = 0;
    for (const e of events.filter((x) => stageOf.get(x.changeId!) === 'zeta')) {
      inFlight += e.op === 'apply-start' ? 1 : -1;
      most = Math.max(most, inFlight);
    }
    expect(most).toBe(2);

    // The soak: at least 2 s between the last zeta change's end and the first alpha change's start…
    const lastZeta = Math.max(...['z1', 'z2', 'z3'].map((c) => eventOf(id, 'apply-end', c).at));
    const firstAlpha = Math.min(...['a1', 'a2'].map((c) => eventOf(id, 'apply-start', c).at));
    expect(firstAlpha - lastZeta).toBeGreaterThanOrEqual(1_950);
    // …and in history exactly one 2 s timer, started after zeta's last apply completed and before alpha's first was scheduled.
    const history = await historyOf(handle);
    const soakTimers = history.filter((e) => durationToMs(e.timerStartedEventAttributes?.startToFireTimeout) === 2_000);
    expect(soakTimers).toHaveLength(1);
    const timerAt = Number(soakTimers[0]!.eventId);
    for (const z of ['z1', 'z2', 'z3']) expect(activityEvents(history, `apply:${z}`).completed).toBeLessThan(timerAt);
    for (const a of ['a1', 'a2', 'm1']) expect(activityEvents(history, `apply:${a}`).scheduled).toBeGreaterThan(timerAt);
  });

  it('skips a change whose dependency failed or was left alone, saying why, and still applies one whose dependency applied', async () => {
    const scenario: SyntheticScenario = {
      stages: [
        { name: 'one', concurrency: 1 },
        // Two lanes: "after-broken" is started while the slow "broken" still runs, waits for it, and
        // is then skipped because of it (a change started after the failure would not start at all).
        { name: 'two', concurrency: 2 },
      ],
      changes: [
        change('keep', 'one'),
        change('drifted', 'one', { outcome: 'left-alone' }),
        change('after-keep', 'two', { action: 'restrict', dependsOn: ['keep'] }),
        change('after-drifted', 'two', { action: 'restrict', dependsOn: ['drifted'] }),
        change('broken', 'two', { action: 'rotate', delayMs: 800 }),
        change('after-broken', 'two', { dependsOn: ['broken'] }),
      ],
      fail: ['broken'],
    };
    const handle = await start(main, scenario);
    await approve(handle);
    const final = await handle.result();
    const id = handle.workflowId;

    expect(resultOf(final, 'drifted')).toMatchObject([{ status: 'left-alone' }]);
    expect(resultOf(final, 'broken')).toMatchObject([{ status: 'failed', detail: expect.stringContaining('broken was told to fail') }]);
    expect(resultOf(final, 'after-drifted')).toMatchObject([{ status: 'skipped', detail: 'depends on drifted left-alone' }]);
    expect(resultOf(final, 'after-broken')).toMatchObject([{ status: 'skipped', detail: 'depends on broken failed' }]);
    expect(resultOf(final, 'after-keep')).toMatchObject([{ status: 'applied' }]);
    expect(final.progress).toMatchObject({ applied: 2, leftAlone: 1, skipped: 2, failed: 1 });
    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toMatch(/^1 change\(s\) failed in stage "two"/);

    // The skipped changes were never handed to the kind.
    expect(idsOf(id, 'apply-start').sort()).toEqual(['after-keep', 'broken', 'drifted', 'keep']);
    expect(store.touched(id)).not.toContain(iamUser('after-drifted'));
    expect(store.touched(id)).not.toContain(iamUser('after-broken'));
  });

  it('after a failing change starts nothing more, undoes only the applied reversible changes, newest first, and ends failed with the reason', async () => {
    const scenario: SyntheticScenario = {
      stages: [
        { name: 'one', concurrency: 1 },
        { name: 'two', concurrency: 1 },
        { name: 'three' },
      ],
      changes: [
        change('r1', 'one', { reversible: true }),
        change('i1', 'one', { action: 'rotate' }),
        change('r2', 'one', { action: 'restrict', reversible: true }),
        change('r3', 'two', { reversible: true }),
        change('x', 'two', { action: 'restrict', reversible: true }),
        change('r4', 'two', { action: 'restrict', reversible: true }),
        change('t1', 'three', { reversible: true }),
      ],
      fail: ['x'],
    };
    const handle = await start(main, scenario);
    await approve(handle);
    const final = await handle.result();
    const id = handle.workflowId;

    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toBe('1 change(s) failed in stage "two"; 3 reversible change(s) rolled back');
    // The failed change's result keeps what it reported doing before it failed.
    expect(resultOf(final, 'x')).toMatchObject([{ status: 'failed', detail: 'synthetic failure: x was told to fail', observed: { halfDone: 'x' } }]);
    // After x failed, r4 (next in its stage) was never started.
    expect(resultOf(final, 'r4')).toMatchObject([{ status: 'skipped', detail: expect.stringMatching(/a change of this stage failed/) }]);
    expect(store.touched(id)).not.toContain(iamUser('r4'));
    // Newest first; the irreversible i1 and the failed x are not undone; stage three never ran.
    expect(idsOf(id, 'rollback')).toEqual(['r3', 'r2', 'r1']);
    expect(final.results.filter((r) => r.status === 'rolled-back').map((r) => r.changeId)).toEqual(['r3', 'r2', 'r1']);
    expect(final.progress.rolledBack).toBe(3);
    for (const r of ['r1', 'r2', 'r3']) expect(store.resource(id, iamUser(r)).actions).toEqual([]);
    expect(store.resource(id, iamUser('i1')).actions).toEqual(['rotate']);
    expect(store.touched(id)).not.toContain(iamUser('t1'));
    expect(resultOf(final, 't1')).toEqual([]);
    // The rollbacks are marked in history by role, after the failed apply.
    const history = await historyOf(handle);
    const rollbacks = scheduledActivityIds(history).filter((a) => a.startsWith('rollback:'));
    expect(rollbacks).toEqual(['rollback:r3', 'rollback:r2', 'rollback:r1']);
    expect(verifyScheduled(history)).toBe(false);
  });

  it('halts on a reject during a soak and rolls back what is reversible; later stages never run', async () => {
    const scenario: SyntheticScenario = {
      stages: [{ name: 'one', concurrency: 1 }, { name: 'two', soak: true }],
      changes: [
        change('r1', 'one', { reversible: true }),
        change('r2', 'one', { action: 'restrict', reversible: true }),
        change('i1', 'one', { action: 'rotate' }),
        change('s1', 'two', { reversible: true }),
        change('s2', 'two', { action: 'rotate' }),
      ],
    };
    // A long soak: the reject must cut it short (the run ends long before it would have).
    const handle = await start(main, scenario, { params: { soak: '30s' } });
    const { plan } = await approve(handle);
    const soaking = await waitForStatus(handle, (s) => s.phase === 'soaking');
    expect(soaking.stage).toBe('two');
    const rejectedAt = Date.now();
    const reply = await decide(handle, { decision: 'reject', approver: SECURITY, planDigest: plan!.digest, comment: 'incident open' });
    expect(reply).toMatchObject({ accepted: true });
    const final = await handle.result();
    const id = handle.workflowId;

    expect(Date.now() - rejectedAt).toBeLessThan(15_000);
    expect(final.outcome).toBe('rolled-back');
    expect(final.outcomeReason).toBe('halted by sam.security (incident open) before stage "two"');
    expect(idsOf(id, 'rollback')).toEqual(['r2', 'r1']);
    expect(store.resource(id, iamUser('r1')).actions).toEqual([]);
    expect(store.resource(id, iamUser('i1')).actions).toEqual(['rotate']);
    expect(store.touched(id)).not.toContain(iamUser('s1'));
    expect(store.touched(id)).not.toContain(iamUser('s2'));
    expect(resultOf(final, 's1')).toEqual([]);
    expect(resultOf(final, 's2')).toEqual([]);
    expect(verifyScheduled(await historyOf(handle))).toBe(false);
  });

  it('halts on a reject in the middle of a stage: the change under way finishes, the rest of the stage is skipped, applied reversible ones are rolled back', async () => {
    const ids = ['c1', 'c2', 'c3', 'c4', 'c5'];
    const scenario: SyntheticScenario = {
      stages: [{ name: 'slow', concurrency: 1 }, { name: 'after' }],
      changes: [...ids.map((c) => change(c, 'slow', { reversible: true, delayMs: 1_200 })), change('later', 'after', { reversible: true })],
    };
    const handle = await start(main, scenario);
    const { plan } = await approve(handle);
    const id = handle.workflowId;
    // While c2 is being applied, the requester withdraws the request.
    await store.until((e) => e.workflowId === id && e.op === 'apply-start' && e.changeId === 'c2');
    const reply = await decide(handle, { decision: 'reject', approver: REQUESTER, planDigest: plan!.digest });
    expect(reply).toMatchObject({ accepted: true });
    const final = await handle.result();

    expect(final.outcome).toBe('rolled-back');
    expect(final.outcomeReason).toBe('halted by riley.operator during stage "slow"');
    expect(idsOf(id, 'apply-end')).toEqual(['c1', 'c2']);
    for (const c of ['c3', 'c4', 'c5']) {
      expect(resultOf(final, c)).toMatchObject([{ status: 'skipped', detail: 'the run was halted before this change' }]);
      expect(store.touched(id)).not.toContain(iamUser(c));
    }
    expect(store.touched(id)).not.toContain(iamUser('later'));
    expect(idsOf(id, 'rollback')).toEqual(['c2', 'c1']);
    expect(final.progress).toMatchObject({ applied: 2, skipped: 3, rolledBack: 2 });
    expect(store.resource(id, iamUser('c1')).actions).toEqual([]);
    expect(store.resource(id, iamUser('c2')).actions).toEqual([]);
  });

  it('rolls back what is reversible and ends "cancelled" when the workflow is cancelled during a soak', async () => {
    const scenario: SyntheticScenario = {
      stages: [{ name: 'one', concurrency: 1 }, { name: 'two', soak: true }],
      changes: [change('r1', 'one', { reversible: true }), change('i1', 'one', { action: 'rotate' }), change('s1', 'two', { reversible: true })],
    };
    const handle = await start(main, scenario, { params: { soak: '30s' } });
    await approve(handle);
    await waitForStatus(handle, (s) => s.phase === 'soaking');
    const cancelledAt = Date.now();
    await handle.cancel();
    const final = await handle.result();
    const id = handle.workflowId;

    expect(Date.now() - cancelledAt).toBeLessThan(15_000);
    expect(final.outcome).toBe('cancelled');
    expect(final.outcomeReason).toBe('the workflow was cancelled; 1 reversible change(s) rolled back');
    expect(idsOf(id, 'rollback')).toEqual(['r1']);
    expect(store.resource(id, iamUser('r1')).actions).toEqual([]);
    expect(store.resource(id, iamUser('i1')).actions).toEqual(['rotate']);
    expect(store.touched(id)).not.toContain(iamUser('s1'));
    // The cancellation request is in history, and the run closed with its result.
    const history = await historyOf(handle);
    expect(history.some((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBe(true);
    expect(history.some((e) => e.workflowExecutionCompletedEventAttributes)).toBe(true);
  });

  it('refuses a destructive change before approval in a kind without a snapshot, touching nothing; with a snapshot, the snapshot is in history before the apply', async () => {
    const scenario: SyntheticScenario = {
      stages: [{ name: 'one', concurrency: 1 }],
      changes: [change('n1', 'one'), change('d1', 'one', { action: 'remove', destructive: true })],
    };

    const without = await start(main, scenario, { workflowType: 'syntheticWithoutSnapshot' });
    const refused = await without.result();
    expect(refused.outcome).toBe('failed');
    expect(refused.outcomeReason).toContain('d1 is destructive, and this kind takes no snapshot to keep first');
    expect(refused.outcomeReason).toContain('nothing was submitted or changed');
    expect(refused.expiresAt).toBeUndefined(); // never awaited approval
    expect(refused.results).toEqual([]);
    expectOnlyPlanned(without.workflowId);
    expect(scheduledActivityIds(await historyOf(without))).toEqual(['policy', 'target', 'plan']);

    const withSnapshot = await start(main, scenario);
    await approve(withSnapshot);
    const final = await withSnapshot.result();
    const id = withSnapshot.workflowId;
    expect(final.outcome).toBe('completed');
    expect(store.resource(id, iamUser('d1')).deleted).toBe(true);
    expect(idsOf(id, 'snapshot')).toEqual(['d1']); // only the destructive change is photographed
    expect(resultOf(final, 'd1')).toMatchObject([{ status: 'applied', snapshotTaken: true }]);
    expect(resultOf(final, 'n1')[0]?.snapshotTaken).toBeUndefined();

    const history = await historyOf(withSnapshot);
    const snap = activityEvents(history, 'snapshot:d1');
    const apply = activityEvents(history, 'apply:d1');
    expect(snap.type).toBe('photographSyntheticResource');
    expect(snap.completed).toBeDefined();
    expect(snap.completed!).toBeLessThan(apply.scheduled!);
    // The apply was handed the snapshot, and the evidence puts that same snapshot on d1's result.
    const handed = eventOf(id, 'apply-start', 'd1').snapshot;
    expect(handed).toMatchObject({ resource: iamUser('d1'), deleted: false, photo: eventOf(id, 'snapshot', 'd1').seq });
    const evidence = buildEvidence({ events: history }, { namespace: 'default', workflowId: id, runId: withSnapshot.firstExecutionRunId });
    expect(evidence.results.find((r) => r.changeId === 'd1')?.snapshot).toEqual(handed);
    expect(evidence.results.find((r) => r.changeId === 'n1')?.snapshot).toBeUndefined();
  });

  it("fails a plan over the policy's maxChanges before approval, with no code for it in the kind; a plan at the limit is submitted", async () => {
    const four: SyntheticScenario = {
      stages: [{ name: 'one' }],
      changes: ['m1', 'm2', 'm3', 'm4'].map((c) => change(c, 'one')),
    };
    const tooBig = await start(strict, four);
    const final = await tooBig.result();
    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toMatch(/the plan has 4 changes, over the policy's maxChanges of 3/);
    expect(final.expiresAt).toBeUndefined();
    expect(final.plan?.changes).toHaveLength(4);
    expectOnlyPlanned(tooBig.workflowId);

    // The boundary: three changes reach the approval gate (then the requester withdraws it).
    const atLimit = await start(strict, { ...four, changes: four.changes.slice(0, 3) });
    const awaiting = await awaitingApproval(atLimit);
    await decide(atLimit, { decision: 'reject', approver: REQUESTER, planDigest: awaiting.plan!.digest });
    expect((await atLimit.result()).outcome).toBe('rejected');
    expectOnlyPlanned(atLimit.workflowId);
  });

  it('ends "no-op" for a plan with no changes without asking anyone, and "planned" for a dry run', async () => {
    const empty = await start(main, { stages: [{ name: 'one' }], changes: [] });
    const noop = await empty.result();
    expect(noop.outcome).toBe('no-op');
    expect(noop.outcomeReason).toBe('nothing to change');
    expect(noop.expiresAt).toBeUndefined();
    expect(noop.decisions).toEqual([]);
    expectOnlyPlanned(empty.workflowId);

    const scenario: SyntheticScenario = { stages: [{ name: 'one' }], changes: [change('p1', 'one'), change('p2', 'one', { action: 'remove', destructive: true })] };
    const dry = await start(main, scenario, { dryRun: true });
    const planned = await dry.result();
    expect(planned.outcome).toBe('planned');
    expect(planned.dryRun).toBe(true);
    expect(planned.plan?.changes.map((c) => c.id)).toEqual(['p1', 'p2']);
    expect(planDigestMatches(planned.plan!)).toBe(true);
    expect(planned.expiresAt).toBeUndefined();
    expect(planned.results).toEqual([]);
    expectOnlyPlanned(dry.workflowId);
  });

  it('ends "expired" when no quorum arrives within approvalTimeout, touching nothing, and a late approval is refused', async () => {
    const scenario: SyntheticScenario = { stages: [{ name: 'one' }], changes: [change('e1', 'one', { reversible: true }), change('e2', 'one')] };
    const handle = await start(strict, scenario);
    const awaiting = await awaitingApproval(handle);
    expect(awaiting.policy?.approvalTimeout).toBe('3s');
    const final = await handle.result();
    expect(final.outcome).toBe('expired');
    expect(final.outcomeReason).toBe(`no quorum of approvals before ${awaiting.expiresAt}`);
    expect(Date.parse(final.finishedAt!) - Date.parse(awaiting.startedAt)).toBeGreaterThanOrEqual(3_000);
    expect(final.decisions).toEqual([]);
    expectOnlyPlanned(handle.workflowId);

    // Too late: the run has closed, so the decision cannot be taken, and nothing is applied afterwards.
    const late = decide(handle, { decision: 'approve', approver: APPROVER, planDigest: awaiting.plan!.digest });
    await expect(late).rejects.toThrow(WorkflowNotFoundError);
    await expect(late).rejects.toThrow(/already completed/);
    await sleep(1_000);
    expectOnlyPlanned(handle.workflowId);
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect((await handle.result()).decisions).toEqual([]);
  });

  it('removes changes on protected principals (built-in, the worker itself, and their dependents) from the plan and never touches them; the guarded activities refuse them outright', async () => {
    const scenario: SyntheticScenario = {
      stages: [{ name: 'one', concurrency: 1 }],
      changes: [
        change('ordinary', 'one'),
        change('break-glass', 'one', { action: 'remove', resource: BREAK_GLASS, destructive: true }),
        change('self', 'one', { action: 'restrict', resource: SYNTHETIC_WORKER_ARN, reversible: true }),
        change('after-self', 'one', { dependsOn: ['self'] }),
        change('other', 'one', { action: 'rotate' }),
      ],
    };
    const handle = await start(main, scenario);
    const awaiting = await awaitingApproval(handle);
    const plan = awaiting.plan!;
    expect(plan.changes.map((c) => c.id)).toEqual(['ordinary', 'other']);
    const protectedAlone = plan.leftAlone.filter((l) => l.reason === 'protected');
    expect(protectedAlone.map((l) => l.resource).sort()).toEqual([BREAK_GLASS, SYNTHETIC_WORKER_ARN, iamUser('after-self')].sort());
    expect(protectedAlone.find((l) => l.resource === BREAK_GLASS)?.detail).toContain('matches arn:aws:iam::*:user/break-glass*');
    expect(protectedAlone.find((l) => l.resource === SYNTHETIC_WORKER_ARN)?.detail).toContain(`matches ${SYNTHETIC_WORKER_ARN}`);
    expect(protectedAlone.find((l) => l.resource === iamUser('after-self'))?.detail).toMatch(/depends on a change the engine refused/);
    expect(planDigestMatches(plan)).toBe(true);

    await decide(handle, { decision: 'approve', approver: APPROVER, planDigest: plan.digest });
    const final = await handle.result();
    const id = handle.workflowId;
    expect(final.outcome).toBe('completed');
    expect(store.touched(id).sort()).toEqual([iamUser('ordinary'), iamUser('other')].sort());
    expect(scheduledActivityIds(await historyOf(handle)).filter((a) => /self|break-glass/.test(a))).toEqual([]);

    // Fail closed before every mutation: the guarded activity refuses a protected change whatever the plan says.
    const direct = `direct/${randomUUID()}`;
    const asChange = (resource: string): Change => ({
      id: `restrict/${resource}`,
      stage: 'one',
      action: 'restrict',
      resource,
      summary: 'try it',
      before: null,
      after: null,
      reversible: true,
      destructive: false,
    });
    const request = (resource: string, protectedPrincipals: string[]): ChangeRequest => ({
      role: 'apply',
      workflowId: direct,
      account: SYNTHETIC_ACCOUNT,
      region: 'us-east-1',
      change: asChange(resource),
      protectedPrincipals,
    });
    const refusal = async (p: Promise<unknown>): Promise<ApplicationFailure> => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      return err as ApplicationFailure;
    };
    // Built-in protection holds even when the request lists no patterns at all.
    expect(await refusal(guarded.enactSyntheticChange(request(BREAK_GLASS, [])))).toMatchObject({ type: 'ProtectedPrincipal', nonRetryable: true });
    expect(await refusal(guarded.enactSyntheticChange(request(SYNTHETIC_WORKER_ARN, [SYNTHETIC_WORKER_ARN])))).toMatchObject({ type: 'ProtectedPrincipal' });
    expect(await refusal(guarded.photographSyntheticResource({ ...request(BREAK_GLASS, []), role: 'snapshot' }))).toMatchObject({ type: 'ProtectedPrincipal' });
    const rollback: RollbackRequest = {
      role: 'rollback',
      workflowId: direct,
      account: SYNTHETIC_ACCOUNT,
      region: 'us-east-1',
      change: asChange(SYNTHETIC_WORKER_ARN),
      result: { changeId: 'x', status: 'applied', at: new Date().toISOString() },
      protectedPrincipals: [SYNTHETIC_WORKER_ARN],
    };
    expect(await refusal(guarded.undoSyntheticChange(rollback))).toMatchObject({ type: 'ProtectedPrincipal' });
    // A change request without the run's protected principals is refused too.
    const missing = { ...request(iamUser('ordinary'), []), protectedPrincipals: undefined } as unknown as ChangeRequest;
    expect(await refusal(guarded.enactSyntheticChange(missing))).toMatchObject({ type: 'ProtectedPrincipalsMissing' });
    expect(store.eventsOf(direct)).toEqual([]);
    // The control: the same guarded function applies an unprotected change.
    await expect(guarded.enactSyntheticChange(request(iamUser('ordinary'), [SYNTHETIC_WORKER_ARN]))).resolves.toMatchObject({ status: 'applied' });
    expect(store.touched(direct)).toEqual([iamUser('ordinary')]);
  });

  it('ends "failed" with the reason, instead of a failing workflow task, when started without a requester or with a bad account', async () => {
    for (const [input, reason] of [
      [{ kind: SYNTHETIC_KIND, params: {} }, /invalid workflow input at requestedBy: requestedBy must name who requested the run/],
      [{ kind: SYNTHETIC_KIND, params: {}, requestedBy: 'riley', account: '12' }, /invalid workflow input at account: account must be a 12-digit AWS account id/],
    ] as const) {
      const handle = await client.workflow.start('syntheticRemediation', { taskQueue: main.taskQueue, workflowId: `synthetic/${randomUUID()}`, args: [input as unknown as RemediationInput] });
      const final = (await handle.result()) as RemediationStatus;
      expect(final.outcome).toBe('failed');
      expect(final.outcomeReason).toMatch(reason);
      expect(store.eventsOf(handle.workflowId)).toEqual([]);
    }
  });

  it('fails a run with an invalid or unknown parameter, naming it, before planning touches anything', async () => {
    const scenario: SyntheticScenario = { stages: [{ name: 'one' }], changes: [change('v1', 'one')] };

    const banana = await start(main, scenario, { params: { soak: 'banana' } });
    const bad = await banana.result();
    expect(bad.outcome).toBe('failed');
    expect(bad.outcomeReason).toMatch(/invalid parameter for synthetic: soak must be a duration/);
    expect(bad.outcomeReason).toContain('"banana"');
    expect(bad.plan).toBeUndefined();
    expect(store.eventsOf(banana.workflowId)).toEqual([]);

    const colour = await start(main, scenario, { params: { colour: 'blue' } });
    const unknown = await colour.result();
    expect(unknown.outcome).toBe('failed');
    expect(unknown.outcomeReason).toMatch(/unknown parameter "colour" for synthetic; its parameters are: scenario, soak/);
    expect(store.eventsOf(colour.workflowId)).toEqual([]);

    const notJson = await start(main, undefined, { params: { scenario: '{not json' } });
    const broken = await notJson.result();
    expect(broken.outcome).toBe('failed');
    expect(broken.outcomeReason).toMatch(/scenario is not valid JSON/);
    expect(store.eventsOf(notJson.workflowId)).toEqual([]);

    // The failure is in history as the plan activity's, non-retryable: one attempt.
    const failed = (await historyOf(banana)).filter((e) => e.activityTaskFailedEventAttributes);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type).toBe('InvalidParameter');
  });

  it("answers a requester's approval through the decide update at once with requester-cannot-approve, recorded in history; an approver's approval is accepted", async () => {
    const scenario: SyntheticScenario = { stages: [{ name: 'one' }], changes: [change('u1', 'one', { reversible: true })] };
    const handle = await start(main, scenario);
    const awaiting = await awaitingApproval(handle);
    const digest = awaiting.plan!.digest;

    const own = await decide(handle, { decision: 'approve', approver: 'Riley.Operator ', planDigest: digest });
    expect(own).toMatchObject({ accepted: false, reason: 'requester-cannot-approve', phase: 'awaiting-approval', approvals: 0, quorum: 1 });
    const after = await handle.query(statusQuery);
    expect(after.phase).toBe('awaiting-approval');
    expect(after.decisions).toEqual([]);
    expect(after.refused).toMatchObject([{ seq: own.seq, reason: 'requester-cannot-approve', approver: 'Riley.Operator' }]);
    expect(store.touched(handle.workflowId)).toEqual([]);

    const ok = await decide(handle, { decision: 'approve', approver: SECURITY, planDigest: digest, comment: 'fine' });
    expect(ok).toMatchObject({ accepted: true, approvals: 1, quorum: 1 });
    const final = await handle.result();
    expect(final.outcome).toBe('completed');
    expect(final.decisions).toMatchObject([{ decision: 'approve', approver: SECURITY, comment: 'fine' }]);
    expect(final.refused).toMatchObject([{ reason: 'requester-cannot-approve' }]);

    // In history: both updates accepted by the server, and each answer in its completion event.
    const history = await historyOf(handle);
    const replies = history
      .filter((e) => e.workflowExecutionUpdateCompletedEventAttributes)
      .map((e) => defaultPayloadConverter.fromPayload(e.workflowExecutionUpdateCompletedEventAttributes!.outcome!.success!.payloads![0]!));
    expect(replies).toMatchObject([
      { accepted: false, reason: 'requester-cannot-approve' },
      { accepted: true, approvals: 1 },
    ]);
    // The refused approval came before anything was applied.
    const firstReply = history.find((e) => e.workflowExecutionUpdateCompletedEventAttributes)!;
    expect(Number(firstReply.eventId)).toBeLessThan(activityEvents(history, 'apply:u1').scheduled!);
  });

  it('builds the evidence record by the role marks: policy, target, plan (digest verified) and each snapshot on its change, whatever the activity names', async () => {
    const scenario: SyntheticScenario = {
      stages: [{ name: 'first' }, { name: 'second', concurrency: 1 }],
      changes: [
        change('t1', 'first', { reversible: true }),
        change('d1', 'second', { action: 'remove', destructive: true }),
        change('d2', 'second', { action: 'remove', destructive: true }),
      ],
    };
    const handle = await start(main, scenario);
    const awaiting = await approve(handle);
    const final = await handle.result();
    expect(final.outcome).toBe('completed');
    const id = handle.workflowId;

    const history = await handle.fetchHistory();
    const evidence = buildEvidence(history, { namespace: 'default', workflowId: id, runId: handle.firstExecutionRunId });
    // The activities are the synthetic kind's, named nothing like stale-iam-users'.
    const types = new Set((history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean));
    expect([...types].sort()).toEqual(['confirmSyntheticState', 'draftSyntheticPlan', 'enactSyntheticChange', 'loadApprovalPolicy', 'photographSyntheticResource', 'resolveTarget']);

    expect(evidence.kind).toBe(SYNTHETIC_KIND);
    expect(evidence.policy).toMatchObject({ kind: SYNTHETIC_KIND, approvers: [APPROVER, SECURITY], quorum: 1, source: main.policyPath });
    expect(evidence.target).toEqual(SYNTHETIC_TARGET);
    expect(evidence.plan?.digest).toBe(awaiting.plan!.digest);
    expect(evidence.plan?.digestVerified).toBe(true);
    expect(evidence.plan?.changes.map((c) => c.id)).toEqual(['t1', 'd1', 'd2']);
    expect(evidence.approvedBy).toEqual([APPROVER]);
    expect(evidence.outcome).toBe('completed');
    for (const d of ['d1', 'd2']) {
      const result = evidence.results.find((r) => r.changeId === d);
      expect(result).toMatchObject({ status: 'applied', snapshotTaken: true });
      expect(result?.snapshot).toEqual({ resource: iamUser(d), actions: [], deleted: false, photo: eventOf(id, 'snapshot', d).seq });
    }
    expect(evidence.results.find((r) => r.changeId === 't1')?.snapshot).toBeUndefined();
    expect(evidence.failures).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// ENGINE BUGS found by this suite. These tests describe the documented behaviour and FAIL against the
// current engine; they are left failing on purpose (workflows/lifecycle.ts is not this suite's to edit).

describe('ordering: rollback and same-stage dependencies', () => {
  it('rolls back newest first by the order changes were applied, also when the plan lists changes grouped by resource rather than by stage', async () => {
    // A natural plan shape: each resource's changes together, two reversible stages.
    const scenario: SyntheticScenario = {
      stages: [
        { name: 'one', concurrency: 1 },
        { name: 'two', concurrency: 1 },
      ],
      changes: [
        change('u1-tag', 'one', { resource: iamUser('u1'), reversible: true }),
        change('u1-restrict', 'two', { action: 'restrict', resource: iamUser('u1'), reversible: true }),
        change('u2-tag', 'one', { resource: iamUser('u2'), reversible: true }),
        change('u2-restrict', 'two', { action: 'restrict', resource: iamUser('u2'), reversible: true }),
        change('boom', 'two', { action: 'rotate' }),
      ],
      fail: ['boom'],
    };
    const handle = await start(main, scenario);
    await approve(handle);
    const final = await handle.result();
    const id = handle.workflowId;
    expect(final.outcome).toBe('failed');
    const applied = idsOf(id, 'apply-end');
    expect(applied).toEqual(['u1-tag', 'u2-tag', 'u1-restrict', 'u2-restrict']);
    // Newest first = the reverse of the order they were applied in (not of the plan's list, which would
    // undo u2-tag while the later u1-restrict is still in place).
    expect(idsOf(id, 'rollback')).toEqual([...applied].reverse());
  });

  it('a change depending on an earlier change of the same stage waits for it instead of being skipped when the stage runs changes concurrently', async () => {
    // planProblems() accepts a dependency within the same stage (it refuses only one on a later stage),
    // and stages run 4 changes at once by default.
    const scenario: SyntheticScenario = {
      stages: [{ name: 'one', concurrency: 2 }],
      changes: [change('first', 'one', { delayMs: 500, reversible: true }), change('second', 'one', { action: 'restrict', dependsOn: ['first'] })],
    };
    const handle = await start(main, scenario);
    await approve(handle);
    const final = await handle.result();
    expect(final.outcome).toBe('completed');
    expect(resultOf(final, 'first')).toMatchObject([{ status: 'applied' }]);
    // "second" starts on the other lane while "first" still runs; it must wait, not be skipped as
    // "depends on first not applied" in a run that still ends "completed".
    expect(resultOf(final, 'second')).toMatchObject([{ status: 'applied' }]);
    expect(idsOf(handle.workflowId, 'apply-end')).toEqual(['first', 'second']);
  });
});

function verifyScheduled(events: HistoryEvent[]): boolean {
  return scheduledActivityIds(events).includes('verify');
}
