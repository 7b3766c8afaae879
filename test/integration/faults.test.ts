/**
 * stale-iam-users behind an AWS that throttles 30 % of calls (IAM's `Throttling`, HTTP 400) and answers
 * 10 % with HTTP 503 — a busy real account. The faults come from the AWS proxy (sandbox/aws-proxy.ts)
 * between the worker and moto, injected before the call reaches moto; moto cannot throttle. The worker
 * (`countersign worker` in a child process) makes up to 8 SDK attempts per call (AWS_MAX_ATTEMPTS, the
 * default on real AWS), and its batches resume from their checkpoints when Temporal retries them.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { CreateAccessKeyCommand, CreateLoginProfileCommand, CreateUserCommand, GetUserCommand, TagUserCommand } from '@aws-sdk/client-iam';
import type { AwsProxy } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { CLI } from '../harness/cli';

let stack: TestStack;
let proxy: AwsProxy;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  proxy = await startAwsProxy({ upstream: stack.moto.endpoint, seed: 7 });
});
afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  await proxy?.close();
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorker(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...stack.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '8', COUNTERSIGN_LOG_LEVEL: 'info' };
    const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${log}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      // COUNTERSIGN_TEST_WORKER_LOG=<file> keeps the worker's log for a failure to be read.
      if (process.env.COUNTERSIGN_TEST_WORKER_LOG) appendFileSync(process.env.COUNTERSIGN_TEST_WORKER_LOG, d);
      if (log.includes('"msg":"worker started"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}:\n${log}`)));
  });
}

it('plans, is approved and completes under 30 % throttling and 10 % HTTP 503, removing exactly the idle users', async () => {
  const idle = Array.from({ length: 8 }, (_, i) => `fault-idle-${i}`);
  for (const user of idle) {
    await stack.iam.send(new CreateUserCommand({ UserName: user }));
    await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }));
    await stack.iam.send(new CreateLoginProfileCommand({ UserName: user, Password: 'Sandbox-Passw0rd!' }));
  }
  const kept = ['fault-exempt-0', 'fault-exempt-1'];
  for (const user of kept) {
    await stack.iam.send(new CreateUserCommand({ UserName: user }));
    await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }));
    await stack.iam.send(new TagUserCommand({ UserName: user, Tags: [{ Key: 'countersign:exempt', Value: 'true' }] }));
  }
  await sleep(2_500); // past maxIdle
  proxy.setFaults({ throttle: 0.3, http503: 0.1 });
  worker = await startWorker();

  const { workflowId } = await stack.remediations.start({ kind: 'stale-iam-users', account: '123456789012', params: { maxIdle: '2s', soak: '1s' }, requestedBy: 'riley.operator', idSuffix: stack.uniqueSuffix() });
  const { plan } = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 120_000 }).catch((err: unknown) => {
    // Which calls the faults hit, to read with the failure.
    console.log(JSON.stringify(proxy.stats().byAction), JSON.stringify(proxy.stats().faults));
    throw err;
  });
  expect(plan!.changes.filter((c) => c.action === 'delete-user').map((c) => c.id.split('/')[1]).sort()).toEqual(idle);
  await stack.remediations.decide(workflowId, { decision: 'approve', approver: 'dana.approver', planDigest: plan!.digest });
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 240_000 });
  expect(final.outcomeReason ?? '').toBe('');
  expect(final.outcome).toBe('completed');
  expect(final.verification?.ok).toBe(true);

  proxy.setFaults({});
  for (const user of idle) await expect(stack.iam.send(new GetUserCommand({ UserName: user }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
  for (const user of kept) await expect(stack.iam.send(new GetUserCommand({ UserName: user }))).resolves.toBeDefined();

  // What the run went through, for the record (jest prints it with --verbose).
  const stats = proxy.stats();
  console.log(`faults: ${stats.calls} AWS calls, ${stats.faults.throttle} throttled, ${stats.faults.http503} answered 503, ${stats.duplicateMutations} mutation(s) sent twice`);
  expect(stats.faults.throttle).toBeGreaterThan(20);
  expect(stats.faults.http503).toBeGreaterThan(5);
  // A fault is injected before the call reaches moto, so a retried call was never applied. Only a batch
  // retried after a change failed half-way can send one of that change's calls again, and each of those
  // is idempotent (a deletion repeated answers NoSuchEntity and is not counted).
  for (const call of proxy.calls().filter((c) => c.duplicate)) expect(call.action).toBe('UpdateAccessKey');
}, 420_000);
