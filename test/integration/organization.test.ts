/**
 * An organization-wide run from the CLI (workflows/organization.ts): three member accounts, one
 * consolidated plan, one approval. The worker may not assume the role in one of them, so that account
 * ends failed with its reason while the other two are cleaned and verified. moto enforces IAM only
 * with its authentication on (`POST /moto-api/reset-auth`, as in assume-role-denied.test.ts): the
 * worker runs as an IAM user allowed everything but sts:AssumeRole into the third account, and each
 * member's OrganizationAccountAccessRole is given an inline policy (moto creates it with none).
 */
import { CreateAccessKeyCommand, CreateUserCommand, ListUsersCommand, PutRolePolicyCommand, PutUserPolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { EvidenceRecord } from '../../evidence/record';
import type { RemediationStatus } from '../../common/messages';
import { organizationDecisionSignal } from '../../common/messages';
import { iamForAccount, seedOrganization } from '../../sandbox/organization';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { runCli } from '../harness/cli';

let stack: TestStack;
let worker: { id: string; secret: string };
let auditor: { id: string; secret: string };
let alpha: string;
const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
});
afterAll(async () => {
  await stack?.stop();
  process.env.AWS_ACCESS_KEY_ID = saved.id;
  process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALLOW_ALL = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });

/** IAM in a member account, as `who` (an access key of the management account) assuming its role. */
async function iamAs(who: { id: string; secret: string }, account: string): Promise<IAMClient> {
  const sts = new STSClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: who.id, secretAccessKey: who.secret } });
  const assumed = (await sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`, RoleSessionName: 'test-check' }))).Credentials!;
  sts.destroy();
  return new IAMClient({
    region: 'us-east-1',
    endpoint: stack.moto.endpoint,
    maxAttempts: 1,
    credentials: { accessKeyId: assumed.AccessKeyId!, secretAccessKey: assumed.SecretAccessKey!, sessionToken: assumed.SessionToken },
  });
}

async function userNames(iam: IAMClient): Promise<string[]> {
  return ((await iam.send(new ListUsersCommand({}))).Users ?? []).map((u) => u.UserName as string).sort();
}

it('cleans an organization with one approval; an account whose role cannot be assumed fails with its reason and stops no other', async () => {
  const org = await seedOrganization(stack.moto.endpoint, {
    ous: ['Workloads', 'Sandbox'],
    accounts: [
      { name: 'alpha', ou: 'Workloads' },
      { name: 'beta', ou: 'Workloads' },
      { name: 'gamma', ou: 'Sandbox' },
    ],
  });
  const [first, beta, gamma] = org.accounts.map((a) => a.id) as [string, string, string];
  alpha = first;
  for (const account of [alpha, beta, gamma]) {
    const iam = iamForAccount(stack.moto.endpoint, account);
    await iam.send(new PutRolePolicyCommand({ RoleName: 'OrganizationAccountAccessRole', PolicyName: 'admin', PolicyDocument: ALLOW_ALL }));
    for (const name of ['idle-1', 'idle-2']) {
      await iam.send(new CreateUserCommand({ UserName: `${name}-${account.slice(-4)}` }));
      await iam.send(new CreateAccessKeyCommand({ UserName: `${name}-${account.slice(-4)}` }));
    }
    iam.destroy();
  }
  // The worker: everything but assuming gamma's roles. An auditor who may look everywhere.
  const keyOf = async (user: string, policy: object): Promise<{ id: string; secret: string }> => {
    await stack.iam.send(new CreateUserCommand({ UserName: user }));
    await stack.iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: JSON.stringify(policy) }));
    const key = (await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
    return { id: key.AccessKeyId!, secret: key.SecretAccessKey! };
  };
  worker = await keyOf('countersign-worker', {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: '*', Resource: '*' },
      { Effect: 'Deny', Action: 'sts:AssumeRole', Resource: `arn:aws:iam::${gamma}:role/*` },
    ],
  });
  auditor = await keyOf('auditor', JSON.parse(ALLOW_ALL) as object);
  process.env.AWS_ACCESS_KEY_ID = worker.id;
  process.env.AWS_SECRET_ACCESS_KEY = worker.secret;
  await stack.startWorker();
  const res = await fetch(`${stack.moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
  expect(res.ok).toBe(true);
  await sleep(2_500); // past maxIdle

  const env = { ...stack.env, AWS_ACCESS_KEY_ID: worker.id, AWS_SECRET_ACCESS_KEY: worker.secret };
  const started = await runCli(
    ['start', 'stale-iam-users', '--accounts', `${org.ous.Workloads},${gamma}`, '--param', 'maxIdle=2s', '--param', 'soak=1s', '--as', 'riley.operator', '--id-suffix', stack.uniqueSuffix(), '--json'],
    env,
  );
  if (started.code !== 0) throw new Error(`countersign start exited ${started.code}:\n${started.stderr}\n${started.stdout}`);
  const { workflowId, status } = JSON.parse(started.stdout) as { workflowId: string; status: RemediationStatus };
  // One consolidated plan: alpha's and beta's plans, by digest; gamma ended before it had one.
  expect(status.phase).toBe('awaiting-approval');
  expect(status.plan!.changes.map((c) => c.id).sort()).toEqual([`account/${alpha}`, `account/${beta}`].sort());
  const byAccount = new Map(status.accounts!.map((a) => [a.account, a]));
  expect(byAccount.get(gamma)).toMatchObject({ phase: 'done', outcome: 'failed' });
  expect(byAccount.get(gamma)!.outcomeReason).toContain(`cannot assume arn:aws:iam::${gamma}:role/OrganizationAccountAccessRole`);
  expect(byAccount.get(alpha)).toMatchObject({ phase: 'planned', changes: 4 });

  const approve = await runCli(['approve', workflowId, '--as', 'dana.approver', '--plan', status.plan!.digest], env);
  expect(approve.code).toBe(0);
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 120_000 });
  expect(final.outcome).toBe('failed');
  expect(final.outcomeReason).toContain('2 of 3 account(s) completed');
  expect(final.outcomeReason).toContain(gamma);
  const outcomes = Object.fromEntries(final.accounts!.map((a) => [a.account, a.outcome]));
  expect(outcomes).toEqual({ [alpha]: 'completed', [beta]: 'completed', [gamma]: 'failed' });
  expect(final.progress.applied).toBe(8);

  // In AWS: alpha's and beta's idle users are gone, gamma's untouched.
  for (const account of [alpha, beta]) expect(await userNames(await iamAs(auditor, account))).toEqual([]);
  expect((await userNames(await iamAs(auditor, gamma))).length).toBe(2);

  // Each account's run records the organization's approval, confirmed; the organization run's evidence
  // verifies the consolidated plan and its approver.
  const child = await stack.remediations.status(`${workflowId}/${alpha}`);
  expect(child.organization).toMatchObject({ parentWorkflowId: workflowId, consolidatedDigest: status.plan!.digest });
  expect(child.decisions.map((d) => d.approver)).toEqual(['dana.approver']);
  const evidence = await runCli(['evidence', workflowId], env);
  expect(evidence.code).toBe(0);
  const record = JSON.parse(evidence.stdout) as EvidenceRecord;
  expect(record.plan).toMatchObject({ digest: status.plan!.digest, digestVerified: true });
  expect(record.approvedBy).toEqual(['dana.approver']);
}, 240_000);

it('takes no forged verdict: an account run confirms its approval with the organization run, and changes nothing without it', async () => {
  const iam = await iamAs(auditor, alpha);
  await iam.send(new CreateUserCommand({ UserName: 'idle-3' }));
  await iam.send(new CreateAccessKeyCommand({ UserName: 'idle-3' }));
  await sleep(2_500);
  const { workflowId } = await stack.remediations.startOrganization({ kind: 'stale-iam-users', accounts: alpha, params: { maxIdle: '2s', soak: '1s' }, requestedBy: 'riley.operator', idSuffix: stack.uniqueSuffix() });
  const awaiting = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 60_000 });
  // Anyone who can reach Temporal can signal the account's run; the signal alone approves nothing.
  const child = `${workflowId}/${alpha}`;
  await stack.client.workflow.getHandle(child).signal(organizationDecisionSignal, { decision: 'approve', digest: awaiting.plan!.digest });
  const forged = await stack.remediations.waitFor(child, (s) => s.phase === 'done', { timeoutMs: 60_000 });
  expect(forged.outcome).toBe('failed');
  expect(forged.outcomeReason).toMatch(/could not be confirmed, so nothing was changed: organization run .* has 0 approval\(s\)/);
  expect(await userNames(iam)).toEqual(['idle-3']);
  // The organization run itself is still the one to decide; rejected, it ends rejected.
  await stack.remediations.decide(workflowId, { decision: 'reject', approver: 'dana.approver', planDigest: awaiting.plan!.digest, comment: 'not now' });
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
  expect(final.outcome).toBe('rejected');
  expect(final.outcomeReason).toContain('rejected by dana.approver (not now)');
  expect(await userNames(iam)).toEqual(['idle-3']);
}, 120_000);

it('splits an account into parts by user name, each its own run, under one approval', async () => {
  const iam = await iamAs(auditor, alpha);
  const users = ['p-a', 'p-b', 'p-c', 'p-d', 'p-e'];
  for (const user of users) {
    await iam.send(new CreateUserCommand({ UserName: user }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
  }
  await sleep(2_500);
  const env = { ...stack.env, AWS_ACCESS_KEY_ID: worker.id, AWS_SECRET_ACCESS_KEY: worker.secret };
  const started = await runCli(['start', 'stale-iam-users', '--accounts', alpha, '--part-size', '2', '--param', 'maxIdle=2s', '--param', 'soak=1s', '--as', 'riley.operator', '--id-suffix', stack.uniqueSuffix(), '--json'], env);
  if (started.code !== 0) throw new Error(`countersign start exited ${started.code}:\n${started.stderr}\n${started.stdout}`);
  const { workflowId, status } = JSON.parse(started.stdout) as { workflowId: string; status: RemediationStatus };
  // idle-3 from the test before is still there: six idle users, parts of two, in name order.
  expect(status.accounts!.map((a) => [a.part?.number, a.part?.of, a.changes])).toEqual([
    [1, 3, 4],
    [2, 3, 4],
    [3, 3, 4],
  ]);
  expect(status.plan!.changes.map((c) => c.id)).toEqual([1, 2, 3].map((k) => `account/${alpha}/part-${k}`));
  const approve = await runCli(['approve', workflowId, '--as', 'dana.approver', '--plan', status.plan!.digest], env);
  expect(approve.code).toBe(0);
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 120_000 });
  expect(final.outcome).toBe('completed');
  expect(final.progress.applied).toBe(12);
  expect(await userNames(iam)).toEqual([]);
}, 180_000);
