/**
 * The Temporal server stopped (by its process id) in the middle of a run and started again on the same
 * port and the same database file: the run resumes and completes, and the worker — `countersign worker`
 * in a child process, started once — reconnects by itself. Once during a soak (a durable timer that
 * comes due while the server is down), once during apply with a batch in flight (the worker reaching
 * moto through the AWS proxy with 300 ms per call, so the batch lasts). This file has a server of its
 * own: the shared one of the global setup keeps its state in memory and serves other files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateAccessKeyCommand, CreateUserCommand, GetUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { RemediationClient } from '../../cli/remediation-client';
import type { RemediationStatus } from '../../common/messages';
import type { AwsProxy } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';
import type { MotoSandbox } from '../../sandbox/moto';
import { startMoto } from '../../sandbox/moto';
import { freePort } from '../../sandbox/processes';
import { seedEstate } from '../../sandbox/seed';
import type { TemporalDevServer } from '../../sandbox/temporal';
import { startTemporalDevServer } from '../../sandbox/temporal';
import { CLIENT_CHANNEL_ARGS } from '../../worker/config';
import type { WorkerProcess } from '../harness/scenario-run';
import { APPROVER, REQUESTER, accountResults, startWorkerProcess } from '../harness/scenario-run';
import { TEST_POLICY } from '../harness/stack';

const ACCOUNT = '123456789012';
const TASK_QUEUE = 'server-restart';
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

let dir: string;
let dbFile: string;
let port: number;
let server: TemporalDevServer | undefined;
let moto: MotoSandbox;
let proxy: AwsProxy;
let iam: IAMClient;
let connection: Connection;
let client: Client;
let remediations: RemediationClient;
let worker: WorkerProcess | undefined;
const restarts: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-server-restart-'));
  dbFile = path.join(dir, 'temporal.db');
  port = await freePort();
  server = await startTemporalDevServer({ dbFile, port });
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.endpoint, seed: 3 });
  iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const policyPath = path.join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify(TEST_POLICY));
  connection = await Connection.connect({ address: server.address, channelArgs: CLIENT_CHANNEL_ARGS });
  client = new Client({ connection, namespace: 'default' });
  remediations = new RemediationClient(client, TASK_QUEUE);
  worker = await startWorkerProcess({
    ...moto.env,
    AWS_ENDPOINT_URL: proxy.endpoint,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'default',
    COUNTERSIGN_TASK_QUEUE: TASK_QUEUE,
    COUNTERSIGN_POLICY: policyPath,
  });
});
afterAll(async () => {
  await worker?.kill();
  iam?.destroy();
  await connection?.close();
  await proxy?.close();
  await moto?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (restarts.length) process.stdout.write(`\nTemporal server restarts:\n${restarts.map((r) => `  ${r}`).join('\n')}\n\n`);
});

/** Stop the server by its process id, wait `downMs`, start it again on the same port and database file. */
async function restartServer(why: string, downMs = 3_000): Promise<void> {
  const started = Date.now();
  await server!.stop();
  server = undefined;
  await sleep(downMs);
  server = await startTemporalDevServer({ dbFile, port });
  if (server.address !== `127.0.0.1:${port}`) throw new Error(`the server came back on ${server.address}, not port ${port}`);
  restarts.push(`${why}: down ${Date.now() - started} ms (pid ${server.process.pid} now)`);
}

/** The run's result once it closes, read through the reconnecting client (transient errors are retried). */
async function finalStatus(workflowId: string, timeoutMs: number): Promise<RemediationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      if (d.status.name !== 'RUNNING') return await remediations.status(workflowId);
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${workflowId} did not finish within ${timeoutMs / 1000}s`);
    await sleep(500);
  }
}

async function startAndApprove(prefix: string, params: Record<string, string>): Promise<{ workflowId: string; changes: number }> {
  const { workflowId } = await remediations.start({ kind: 'stale-iam-users', account: ACCOUNT, params, requestedBy: REQUESTER, idSuffix: prefix });
  const { plan } = await remediations.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 60_000 });
  const reply = await remediations.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest }, 30_000, { sign: false });
  expect(reply.accepted).toBe(true);
  return { workflowId, changes: plan!.changes.length };
}

async function gone(users: string[]): Promise<boolean[]> {
  return Promise.all(users.map((u) => iam.send(new GetUserCommand({ UserName: u })).then(() => false, () => true)));
}

it('resumes a run whose server was stopped during a soak, and completes it', async () => {
  const estate = await seedEstate(iam, 'soak');
  await sleep(2_500); // past maxIdle; nobody uses a key here, so the 'active' users are idle too
  const { workflowId } = await startAndApprove('soak', { maxIdle: '2s', soak: '10s' });
  await remediations.waitFor(workflowId, (s) => s.phase === 'soaking', { timeoutMs: 60_000 });

  await restartServer('during the soak');

  const final = await finalStatus(workflowId, 150_000);
  expect(final.outcomeReason ?? '').toBe('');
  expect(final.outcome).toBe('completed');
  expect(accountResults(final).problems).toEqual([]);
  expect(await gone([...estate.idle, ...estate.active])).toEqual([...estate.idle, ...estate.active].map(() => true));
  expect(await gone([estate.exempt, estate.breakGlass, estate.sshKeyHolder])).toEqual([false, false, false]);
  // The same worker process, never restarted: it reconnected by itself.
  expect(worker!.child.exitCode).toBeNull();
});

it('resumes a run whose server was stopped with an apply batch in flight, applying each change once', async () => {
  await moto.reset();
  const users = Array.from({ length: 30 }, (_, i) => `apply-idle-${String(i).padStart(2, '0')}`);
  for (const user of users) {
    await iam.send(new CreateUserCommand({ UserName: user }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
  }
  await sleep(2_500);
  proxy.setLatency(300);
  const { workflowId, changes } = await startAndApprove('apply', { maxIdle: '2s', soak: '1s' });
  expect(changes).toBe(users.length * 2);
  proxy.reset();

  // Stop the server once the disable batch has checkpointed its first users (or has run for 2 s), while
  // others are in flight.
  const handle = client.workflow.getHandle(workflowId);
  let checkpointed = 0;
  let since: number | undefined;
  for (const deadline = Date.now() + 60_000; checkpointed === 0 && (since === undefined || Date.now() - since < 2_000); await sleep(50)) {
    if (Date.now() > deadline) throw new Error('the disable batch never started');
    const batch = ((await handle.describe()).raw.pendingActivities ?? []).find((a) => a.activityId === 'apply-batch:disable-1' && a.state === STARTED);
    if (!batch) continue;
    since ??= Date.now();
    const details = batch.heartbeatDetails?.payloads?.[0];
    if (!details?.data) continue;
    const beat = JSON.parse(Buffer.from(details.data).toString()) as { checkpoint?: { done?: unknown[] } };
    checkpointed = beat.checkpoint?.done?.length ?? 0;
  }
  expect(checkpointed).toBeLessThan(users.length);
  await restartServer(`during apply, the disable batch in flight (${checkpointed} of ${users.length} users checkpointed)`);

  const final = await finalStatus(workflowId, 170_000);
  proxy.setLatency(0);
  expect(final.outcomeReason ?? '').toBe('');
  expect(final.outcome).toBe('completed');
  expect(accountResults(final).problems).toEqual([]);
  expect(final.results.every((r) => r.status === 'applied' || r.status === 'already-done')).toBe(true);
  expect(await gone(users)).toEqual(users.map(() => true));
  // Only a change in flight when the server went away can have sent a mutation again, and only an
  // idempotent one (UpdateAccessKey to the status the key already has).
  for (const call of proxy.calls().filter((c) => c.duplicate)) expect(call.action).toBe('UpdateAccessKey');
  expect(worker!.child.exitCode).toBeNull();
});
