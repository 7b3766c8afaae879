/**
 * A worker killed (SIGKILL) in the middle of an apply batch, then restarted: the run finishes with no
 * error, the retried batch resumes after the users its checkpoint records (activities/batch.ts), and no
 * change is applied twice. The worker runs as `countersign worker` in a child process, reaching moto
 * through the AWS proxy (sandbox/aws-proxy.ts) with 300 ms per call — AWS-like latency, so the kill
 * lands inside the batch — which also counts every mutation that reached AWS twice.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { CreateAccessKeyCommand, CreateUserCommand, GetUserCommand } from '@aws-sdk/client-iam';
import { seedEstate } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { CLI } from '../harness/cli';
import type { AwsProxy } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';

let stack: TestStack;
let proxy: AwsProxy;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  proxy = await startAwsProxy({ upstream: stack.moto.endpoint, latencyMs: 300, seed: 1 });
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  await proxy?.close();
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorkerProcess(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...stack.env, AWS_ENDPOINT_URL: proxy.endpoint, COUNTERSIGN_LOG_LEVEL: 'info' };
    const child = spawn(CLI, ['worker'], { env, stdio: ['ignore', 'ignore', 'pipe'] }); // the bin script, as a user runs it
    workers.push(child);
    let log = '';
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${log}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('"msg":"worker started"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}:\n${log}`)));
  });
}

it('finishes a run whose worker was killed during apply, applying each change once', async () => {
  await stack.moto.reset();
  const estate = await seedEstate(stack.iam, 'w');
  // More idle users make the disable stage long enough to kill the worker inside it.
  const extra = Array.from({ length: 30 }, (_, i) => `w-idle-extra-${i}`);
  for (const user of extra) {
    await stack.iam.send(new CreateUserCommand({ UserName: user }));
    await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }));
  }
  await sleep(3_000);

  let worker = await startWorkerProcess();
  const { workflowId } = await stack.remediations.start({
    kind: 'stale-iam-users',
    account: '123456789012',
    params: { maxIdle: '2s', soak: '2s' },
    requestedBy: 'riley.operator',
    idSuffix: stack.uniqueSuffix(),
  });
  const { plan } = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 60_000 });
  // Nobody's keys are used here, so the seeded 'active' users are idle too.
  const idle = [...estate.idle, ...estate.active, ...extra];
  expect(plan!.changes.filter((c) => c.action === 'delete-user')).toHaveLength(idle.length);
  await stack.remediations.decide(workflowId, { decision: 'approve', approver: 'dana.approver', planDigest: plan!.digest });

  // Kill the worker once the disable batch has checkpointed its first users, while others are in flight.
  proxy.reset();
  const handle = stack.client.workflow.getHandle(workflowId);
  let checkpointed = 0;
  for (const deadline = Date.now() + 60_000; checkpointed === 0; await sleep(50)) {
    if (Date.now() > deadline) throw new Error('the disable batch never checkpointed');
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const batch = pending.find((a) => a.activityId === 'apply-batch:disable-1');
    const details = batch?.heartbeatDetails?.payloads?.[0];
    if (!details?.data) continue;
    const beat = JSON.parse(Buffer.from(details.data).toString()) as { checkpoint?: { done?: unknown[] } };
    checkpointed = beat.checkpoint?.done?.length ?? 0;
  }
  worker.kill('SIGKILL');
  expect(checkpointed).toBeLessThan(idle.length);
  await new Promise((r) => worker.once('exit', r));

  worker = await startWorkerProcess();
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 170_000 });
  expect(final.outcome).toBe('completed');
  expect(final.results.filter((r) => r.status === 'failed')).toEqual([]);
  const ids = final.results.map((r) => r.changeId);
  expect(new Set(ids).size).toBe(ids.length); // each change has exactly one result
  expect(ids.sort()).toEqual(plan!.changes.map((c) => c.id).sort());
  for (const user of idle) {
    await expect(stack.iam.send(new GetUserCommand({ UserName: user }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
  }
  for (const user of [estate.sshKeyHolder, estate.exempt, estate.breakGlass]) {
    await expect(stack.iam.send(new GetUserCommand({ UserName: user }))).resolves.toBeDefined();
  }
  // In history: the kill interrupted work in flight (an attempt > 1 exists), and those retries finished
  // the job without redoing it: every change ends applied, or already-done when the lost attempt had
  // done its AWS work before the worker died.
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  expect(retried.length).toBeGreaterThan(0);
  expect(final.results.every((r) => r.status === 'applied' || r.status === 'already-done')).toBe(true);
  // The retried batch resumed after its checkpoint: only users in flight at the kill (at most the
  // batch's 8 at once) can have had a mutation sent twice, and only an idempotent one (UpdateAccessKey
  // to Inactive, DeleteLoginProfile answered NoSuchEntity).
  const duplicates = proxy.calls().filter((c) => c.duplicate);
  expect(duplicates.length).toBeLessThanOrEqual(8 * 2);
  for (const d of duplicates) expect(['UpdateAccessKey', 'DeleteLoginProfile']).toContain(d.action);

  // SIGTERM is a graceful shutdown: the worker drains and exits 0.
  const exited = new Promise<number | null>((r) => worker.once('exit', (code) => r(code)));
  worker.kill('SIGTERM');
  expect(await exited).toBe(0);
});
