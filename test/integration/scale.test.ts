/**
 * The engine at scale (docs/engine.md, "Plan pages", "Batches", "Bounds"), with the synthetic
 * in-memory kind (test/engine/) so thousands of changes take seconds: a plan too large for one payload
 * comes in pages whose digests chain into the one approved; stages run in batches; every status answer,
 * history payload and result stays under 512 KiB and the history under 10,000 events; the `details`
 * query pages through every change; evidence rebuilds all of it from history. The same engine on moto
 * at 1,000 and more users is `npm run bench:scale` (figures in the README).
 */
import { randomUUID } from 'node:crypto';
import { CLIENT_CHANNEL_ARGS } from '../../worker/config';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { registerActivities } from '../../activities';
import { createPolicyActivities } from '../../activities/policy';
import type { DetailsPage, RemediationInput, RemediationStatus } from '../../common/messages';
import { decideUpdate, detailsQuery, statusQuery } from '../../common/messages';
import type { Change } from '../../common/plan';
import { buildEvidence } from '../../evidence/record';
import { installLogging } from '../../worker';
import { createPino } from '../../worker/logger';
import type { SyntheticScenario } from '../engine/activities';
import { SYNTHETIC_KIND, SYNTHETIC_PARAMS, SyntheticStore, createSyntheticActivities, resolveSyntheticTarget } from '../engine/activities';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Handle = WorkflowHandleWithFirstExecutionRunId<(input: RemediationInput) => Promise<RemediationStatus>>;

const LIMIT = 512 * 1024;
const APPROVER = 'dana.approver';
const store = new SyntheticStore();
let nativeConnection: NativeConnection;
let connection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let tmpDir: string;

beforeAll(async () => {
  const address = process.env.COUNTERSIGN_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('the integration global setup did not run (run through jest --selectProjects integration)');
  installLogging(createPino(process.env.COUNTERSIGN_TEST_LOG_LEVEL ?? 'error'));
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'countersign-scale-'));
  const policyPath = path.join(tmpDir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ approvers: { '*': [APPROVER] }, quorum: { '*': 1 }, approvalTimeout: '10m', maxChanges: 20_000 }));
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '..', 'engine', 'workflows.ts'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never,
  });
  nativeConnection = await NativeConnection.connect({ address });
  connection = await Connection.connect({ address, channelArgs: CLIENT_CHANNEL_ARGS });
  client = new Client({ connection, namespace: 'default' });
  taskQueue = `scale-${randomUUID()}`;
  worker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle,
    activities: {
      ...createPolicyActivities({ policyPath }),
      resolveTarget: resolveSyntheticTarget,
      ...registerActivities(createSyntheticActivities(store), { kinds: { [SYNTHETIC_KIND]: { params: SYNTHETIC_PARAMS } } }),
    },
    shutdownGraceTime: '5s',
  });
  running = worker.run();
});

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await connection?.close();
  await nativeConnection?.close();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

function start(bulk: NonNullable<SyntheticScenario['bulk']>, soak = '1s'): Promise<Handle> {
  const input: RemediationInput = { kind: SYNTHETIC_KIND, params: { scenario: JSON.stringify({ bulk }), soak }, requestedBy: 'riley.operator' };
  return client.workflow.start('syntheticInBatches', { taskQueue, workflowId: `scale/${randomUUID()}`, args: [input] }) as Promise<Handle>;
}

/** Poll the status query (checking every answer's size) until `predicate` holds. */
async function waitFor(handle: Handle, predicate: (s: RemediationStatus) => boolean, timeoutMs = 240_000): Promise<RemediationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await handle.query(statusQuery);
    expect(bytes(status)).toBeLessThan(LIMIT);
    if (predicate(status)) return status;
    if (status.phase === 'done') throw new Error(`${handle.workflowId} ended ${status.outcome} (${status.outcomeReason}) before the awaited state`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${handle.workflowId} (phase ${status.phase})`);
    await sleep(250);
  }
}

/** Every item of one of the run's lists, through the `details` query's pages. */
async function allOf(handle: Handle, list: 'changes' | 'results'): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let offset = 0; ; ) {
    const page: DetailsPage = await handle.query(detailsQuery, { list, offset });
    expect(bytes(page)).toBeLessThan(LIMIT);
    items.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return items;
  }
}

/** The largest payload of any event: every `payloads` list found in it, summed per list. */
function largestPayload(events: HistoryEvent[]): number {
  let largest = 0;
  const walk = (value: unknown): void => {
    if (!value || typeof value !== 'object') return;
    const payloads = (value as { payloads?: { data?: Uint8Array | null }[] }).payloads;
    if (Array.isArray(payloads)) largest = Math.max(largest, payloads.reduce((n, p) => n + (p.data?.length ?? 0), 0));
    for (const v of Object.values(value)) if (v && typeof v === 'object' && !(v instanceof Uint8Array)) walk(v);
  };
  for (const e of events) walk(e);
  return largest;
}

describe('the engine at scale (synthetic kind, batches and plan pages)', () => {
  it('carries 10,000 changes: plan in pages under one digest, bounded answers, batches, bounded history, complete evidence', async () => {
    const count = 5_000;
    const handle = await start({ count });
    const awaiting = await waitFor(handle, (s) => s.phase === 'awaiting-approval');
    const plan = awaiting.plan!;
    // The status lists the first changes and counts the rest; the plan came in pages chained into one digest.
    expect(plan.changes).toHaveLength(200);
    expect(plan.changesNotListed).toBe(2 * count - 200);
    expect(plan.pageDigests!.length).toBeGreaterThan(1);
    expect(awaiting.progress.total).toBe(2 * count);
    const changes = (await allOf(handle, 'changes')) as Change[];
    expect(new Set(changes.map((c) => c.id)).size).toBe(2 * count);

    const reply = await handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver: APPROVER, planDigest: plan.digest }] });
    expect(reply).toMatchObject({ accepted: true });
    // The status answers throughout, bounded, while batches run.
    const applying = await waitFor(handle, (s) => s.progress.applied > 0);
    expect(applying.results.length).toBeLessThanOrEqual(200);
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'completed', progress: { total: 2 * count, applied: 2 * count, failed: 0 } });
    expect(bytes(result)).toBeLessThan(LIMIT);
    expect(result.resultsNotListed).toBe(2 * count - 200);
    expect(result.verification).toMatchObject({ ok: true, checksNotListed: 2 * count - 200 });
    expect((await allOf(handle, 'results')).length).toBe(2 * count);

    // Every resource tagged once and removed once, each removal after its snapshot.
    const events = store.eventsOf(handle.workflowId);
    expect(events.filter((e) => e.op === 'apply-end' && e.changeId?.startsWith('tag/'))).toHaveLength(count);
    expect(events.filter((e) => e.op === 'apply-end' && e.changeId?.startsWith('remove/'))).toHaveLength(count);
    const snapshotSeq = new Map(events.filter((e) => e.op === 'snapshot').map((e) => [e.changeId, e.seq]));
    for (const e of events.filter((x) => x.op === 'apply-start' && x.changeId?.startsWith('remove/'))) expect(snapshotSeq.get(e.changeId)).toBeLessThan(e.seq);

    // History: far under 10,000 events, and no payload over 512 KiB.
    const history = await handle.fetchHistory();
    const historyEvents = history.events ?? [];
    expect(historyEvents.length).toBeLessThan(2_000);
    expect(largestPayload(historyEvents)).toBeLessThan(LIMIT);

    // Evidence from history alone: the pages check out against the approved digest, every result is there.
    const evidence = buildEvidence(history, { namespace: 'default', workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
    expect(evidence.plan).toMatchObject({ digest: plan.digest, digestVerified: true });
    expect(evidence.plan!.changes).toHaveLength(2 * count);
    const applied = evidence.results.filter((r) => r.status === 'applied');
    expect(new Set(applied.map((r) => r.changeId)).size).toBe(2 * count);
    expect(evidence.results.filter((r) => r.snapshot !== undefined)).toHaveLength(count);
  }, 600_000);

  it('rolls back every applied change in batches when rejected during the soak', async () => {
    const count = 1_000;
    const handle = await start({ count }, '1h');
    const awaiting = await waitFor(handle, (s) => s.phase === 'awaiting-approval');
    await handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver: APPROVER, planDigest: awaiting.plan!.digest }] });
    await waitFor(handle, (s) => s.phase === 'soaking');
    await handle.executeUpdate(decideUpdate, { args: [{ decision: 'reject', approver: APPROVER, planDigest: awaiting.plan!.digest, comment: 'halt' }] });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'rolled-back', progress: { applied: count, rolledBack: count } });
    const events = store.eventsOf(handle.workflowId);
    expect(events.filter((e) => e.op === 'rollback')).toHaveLength(count);
    expect(events.filter((e) => e.op === 'apply-start' && e.changeId?.startsWith('remove/'))).toHaveLength(0);
    const history = (await handle.fetchHistory()).events ?? [];
    const rollbackBatches = history.filter((e) => e.activityTaskScheduledEventAttributes?.activityId?.startsWith('rollback-batch:'));
    expect(rollbackBatches.length).toBe(count / 100);
  }, 300_000);

  it('stops at the first change that fails for good, starts no further batch, and rolls back what was applied', async () => {
    const count = 600;
    const handle = await start({ count, fail: ['tag/r-250'] });
    const awaiting = await waitFor(handle, (s) => s.phase === 'awaiting-approval');
    await handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver: APPROVER, planDigest: awaiting.plan!.digest }] });
    const result = await handle.result();
    expect(result.outcome).toBe('failed');
    expect(result.outcomeReason).toMatch(/1 change\(s\) failed in stage "first"/);
    const events = store.eventsOf(handle.workflowId);
    const tagged = events.filter((e) => e.op === 'apply-end').length;
    // Batches of 100, two at a time: the failing batch and the one beside it ran; no later batch started.
    expect(tagged).toBeLessThan(400);
    expect(events.filter((e) => e.op === 'rollback')).toHaveLength(tagged);
    expect(result.progress.failed).toBe(1);
    // Every change of the first stage has its result; the second stage never started.
    expect(result.progress.applied + result.progress.skipped + result.progress.failed).toBe(count);
    expect(events.filter((e) => e.op === 'apply-start' && e.changeId?.startsWith('remove/'))).toHaveLength(0);
  }, 300_000);
});
