/**
 * A worker killed (SIGKILL) in the middle of apply, then restarted: the run finishes with no error
 * and no change applied twice. The worker runs as `countersign worker` in a child process.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { CreateAccessKeyCommand, CreateUserCommand, GetUserCommand } from '@aws-sdk/client-iam';
import { seedEstate } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { CLI } from '../harness/cli';

let stack: TestStack;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorkerProcess(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'worker'], { env: { ...process.env, ...stack.env, COUNTERSIGN_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
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
  const extra = Array.from({ length: 12 }, (_, i) => `w-idle-extra-${i}`);
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

  // Kill the worker as soon as the first change has been applied, while others are in flight.
  const during = await stack.remediations.waitFor(workflowId, (s) => s.results.length > 0, { timeoutMs: 60_000 });
  worker.kill('SIGKILL');
  expect(during.phase).toBe('applying');
  expect(during.results.length).toBeLessThan(plan!.changes.length);
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

  // SIGTERM is a graceful shutdown: the worker drains and exits 0.
  const exited = new Promise<number | null>((r) => worker.once('exit', (code) => r(code)));
  worker.kill('SIGTERM');
  expect(await exited).toBe(0);
});
