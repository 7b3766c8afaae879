/**
 * Every kind behind an AWS that throttles 30 % of calls (each protocol's own throttling answer: IAM's
 * `Throttling`, CloudTrail's `ThrottlingException`, Organizations' `TooManyRequestsException`, S3's
 * `SlowDown`) and answers 10 % with HTTP 503 — a busy real account. The faults come from the AWS proxy
 * (sandbox/aws-proxy.ts) between the worker and moto, injected before the call reaches moto; moto cannot
 * throttle. The worker (`countersign worker` in a child process) makes up to 8 SDK attempts per call
 * (AWS_MAX_ATTEMPTS, the default on real AWS), and its batches resume from their checkpoints when
 * Temporal retries them.
 *
 * A stale-iam-users run on an estate of its own, and each kind's demo scenario (sandbox/scenarios,
 * through test/harness/scenario-run.ts) with its checks in AWS. To keep the file to a few minutes the
 * scenario runs go side by side, each on a stack of its own (moto, proxy, task queue, worker), started
 * before the tests that check them. The summary table is printed at the end.
 */
import { CreateAccessKeyCommand, CreateLoginProfileCommand, CreateUserCommand, GetUserCommand, TagUserCommand } from '@aws-sdk/client-iam';
import type { AwsProxy } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import type { ScenarioRunResult, WorkerProcess } from '../harness/scenario-run';
import { accountResults, describeFaults, faultCounts, runScenario, startWorkerProcess, table, unexpectedDuplicates } from '../harness/scenario-run';
import { scenarioKinds } from '../../sandbox/scenarios';
import type { KindName } from '../../common/kinds';

let stack: TestStack;
let proxy: AwsProxy;
let worker: WorkerProcess | undefined;

/** 30 % of each protocol's throttling answer and 10 % HTTP 503, on every call. */
const FAULTS = { throttle: 0.3, http503: 0.1 };
const rows: (string | number)[][] = [];
const scenarioStacks: TestStack[] = [];
/** Each kind's scenario run, under way from beforeAll; settled, so a failure waits for its test. */
const scenarioRuns = new Map<KindName, Promise<{ run?: ScenarioRunResult; error?: unknown }>>();

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  proxy = await startAwsProxy({ upstream: stack.moto.endpoint, seed: 7 });
  for (const kind of scenarioKinds()) {
    const run = startTestStack({ worker: false }).then((own) => {
      scenarioStacks.push(own);
      return runScenario(own, { kind, faults: FAULTS, seed: 7, timeoutMs: 240_000 });
    });
    scenarioRuns.set(kind, run.then((r) => ({ run: r }), (error: unknown) => ({ error })));
  }
});
afterAll(async () => {
  await worker?.kill();
  await Promise.all(scenarioRuns.values());
  await proxy?.close();
  await stack?.stop();
  for (const own of scenarioStacks) await own.stop();
  process.stdout.write(`\nAWS faults (${describeFaults(FAULTS)} of every call), each kind's run:\n${table(['kind', 'calls', 'faults injected', 'completed', 'duplicate mutations', 'lost changes'], rows)}\n\n`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  proxy.setFaults(FAULTS);
  worker = await startWorkerProcess({ ...stack.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '8' });

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
  const accounting = accountResults(final);
  rows.push(['stale-iam-users (own estate)', stats.calls, faultCounts(stats), final.outcome ?? '-', stats.duplicateMutations, accounting.lost]);
  expect(accounting.problems).toEqual([]);
  await worker.stop();
  worker = undefined;
}, 420_000);

describe.each(scenarioKinds())('%s, its demo scenario', (kind) => {
  it('completes with its checks in AWS passing, each change with one result, nothing applied twice', async () => {
    const { run, error } = await (scenarioRuns.get(kind) as Promise<{ run?: ScenarioRunResult; error?: unknown }>);
    rows.push(run ? [kind, run.stats.calls, faultCounts(run.stats), run.outcome ?? '-', run.stats.duplicateMutations, run.accounting.lost] : [kind, '-', '-', 'error', '-', '-']);
    if (!run) throw error;
    expect(run.checks.lines.filter((l) => !l.startsWith('ok'))).toEqual([]);
    expect(run.outcome).toBe('completed');
    expect(run.accounting.problems).toEqual([]);
    expect(unexpectedDuplicates(kind, run.duplicates)).toEqual([]);
    expect(run.stats.faults.throttle + run.stats.faults.http503).toBeGreaterThan(0);
  }, 300_000);
});
