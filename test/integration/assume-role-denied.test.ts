/**
 * A member account whose role the worker may not assume: the run ends `failed` naming the role ARN
 * and the reason, before anything is planned or changed. moto enforces IAM only when its
 * authentication is switched on (reference: `POST /moto-api/reset-auth`); then it evaluates the
 * caller's identity policies for sts:AssumeRole, which is what this test denies — the worker runs as
 * an IAM user allowed everything but sts:AssumeRole.
 */
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { CreateAccountCommand, CreateOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

let stack: TestStack;
const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

beforeAll(async () => {
  stack = await startTestStack({ worker: false });
});
afterAll(async () => {
  await stack?.stop();
  process.env.AWS_ACCESS_KEY_ID = saved.id;
  process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
});

it('ends failed with the role ARN and the reason when the role cannot be assumed, changing nothing', async () => {
  const orgs = new OrganizationsClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  await orgs.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  const created = await orgs.send(new CreateAccountCommand({ AccountName: 'workloads', Email: 'workloads@example.com' }));
  const member = created.CreateAccountStatus?.AccountId as string;
  expect(member).toMatch(/^\d{12}$/);
  orgs.destroy();

  // The worker's identity: everything allowed except assuming roles.
  await stack.iam.send(new CreateUserCommand({ UserName: 'countersign-worker' }));
  await stack.iam.send(
    new PutUserPolicyCommand({
      UserName: 'countersign-worker',
      PolicyName: 'all-but-assume-role',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: '*', Resource: '*' },
          { Effect: 'Deny', Action: 'sts:AssumeRole', Resource: '*' },
        ],
      }),
    }),
  );
  const key = (await stack.iam.send(new CreateAccessKeyCommand({ UserName: 'countersign-worker' }))).AccessKey!;
  process.env.AWS_ACCESS_KEY_ID = key.AccessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = key.SecretAccessKey;
  await stack.startWorker();
  // From here on moto checks every request's signature and the caller's policies.
  const res = await fetch(`${stack.moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
  expect(res.ok).toBe(true);

  const { workflowId } = await stack.remediations.start({
    kind: 'stale-iam-users',
    account: member,
    params: { maxIdle: '2s' },
    requestedBy: 'riley.operator',
    idSuffix: stack.uniqueSuffix(),
  });
  const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
  expect(final.outcome).toBe('failed');
  expect(final.outcomeReason).toContain(`cannot assume arn:aws:iam::${member}:role/OrganizationAccountAccessRole`);
  expect(final.outcomeReason).toMatch(/AccessDenied/);
  expect(final.outcomeReason).toContain('COUNTERSIGN_ACCOUNT_ROLE');
  // Nothing was planned, so nothing was asked for or changed.
  expect(final.plan).toBeUndefined();
  expect(final.results).toEqual([]);
});
