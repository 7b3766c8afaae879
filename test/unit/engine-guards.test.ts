/**
 * The engine's guarantees that need no server: the plan checks made before anyone is asked to
 * approve, the removal of changes on protected principals, role session names, and how a target
 * account is resolved. Organizations and STS answers are faked (aws-sdk-client-mock and stubbed
 * identities) because moto cannot produce them: a denied AssumeRole without IAM auth, a suspended
 * account, an organization the worker may not read.
 */
import { DescribeAccountCommand, DescribeOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { mockClient } from 'aws-sdk-client-mock';
import { ApplicationFailure } from '@temporalio/common';
import { AwsClients, roleSessionName } from '../../activities/aws/clients';
import type { AccountClients } from '../../activities/aws/clients';
import { createEngineActivities, withEngineGuards, withoutProtectedChanges } from '../../activities/engine';
import type { Change, KindPlan, Plan, Stage } from '../../common/plan';
import { effectivePolicy, iamPrincipalOf, parseApprovalPolicy } from '../../common/policy';
import type { TargetInfo } from '../../common/requests';
import { duration } from '../../common/params';
import { planDigestMatches } from '../../common/digest';
import { planProblems } from '../../workflows/lifecycle';
import type { RemediationDefinition } from '../../workflows/lifecycle';

const change = (id: string, extra: Partial<Change> = {}): Change => ({
  id,
  stage: 'one',
  action: 'touch',
  resource: `arn:aws:iam::111111111111:user/${id}`,
  summary: id,
  before: null,
  after: null,
  reversible: true,
  destructive: false,
  ...extra,
});

const target: TargetInfo = {
  account: '111111111111',
  region: 'us-east-1',
  workerArn: 'arn:aws:iam::111111111111:role/worker',
  actingArn: 'arn:aws:iam::111111111111:role/worker',
  selfPrincipals: ['arn:aws:iam::111111111111:role/worker'],
};

const ref = (name: string) => ({ name, options: { startToCloseTimeout: '1m' as const } });
const def: RemediationDefinition = { plan: ref('p'), apply: { touch: ref('t') }, verify: ref('v') };

function planOf(changes: Change[], stages: Stage[] = [{ name: 'one', description: '' }, { name: 'two', description: '' }]): Plan {
  return { kind: 'k', account: '111111111111', region: 'us-east-1', params: {}, createdAt: '', stages, changes, leftAlone: [], leftAloneNotListed: 0, notes: [], digest: 'x' };
}

describe('plan checks before approval (planProblems)', () => {
  const protectedPrincipals = [...effectivePolicy(parseApprovalPolicy('{}', 'default'), 'k', 'default').protectedPrincipals, ...target.selfPrincipals];

  it('accepts a sound plan', () => {
    expect(planProblems(planOf([change('a'), change('b', { stage: 'two', dependsOn: ['a'] })]), def, target, protectedPrincipals)).toEqual([]);
  });

  it('names every way a plan cannot run as given', () => {
    const problems = planProblems(
      planOf([
        change('a', { action: 'explode' }),
        change('b', { destructive: true }),
        change('c', { dependsOn: ['d'] }),
        change('d', { stage: 'two' }),
        change('e', { stage: 'three' }),
        change('a'),
        change('f', { resource: 'arn:aws:iam::111111111111:user/break-glass-admin' }),
        change('g', { resource: 'arn:aws:iam::111111111111:role/worker' }),
      ]),
      def,
      target,
      protectedPrincipals,
    );
    expect(problems).toEqual([
      'a: no activity applies action "explode"',
      'b is destructive, and this kind takes no snapshot to keep first',
      'c depends on d, which is not an earlier change of the plan',
      'e names stage "three", which the plan does not have',
      'two changes share the id a',
      'f would change arn:aws:iam::111111111111:user/break-glass-admin, which is protected (matches arn:aws:iam::*:user/break-glass*)',
      'g would change arn:aws:iam::111111111111:role/worker, which is protected (matches arn:aws:iam::111111111111:role/worker)',
    ]);
  });

  it('refuses a plan for another account and an unusable soak', () => {
    const plan = { ...planOf([change('a')], [{ name: 'one', description: '', soakBefore: '99999999999d' }]), account: '222222222222' };
    expect(planProblems(plan, def, target, [])).toEqual([
      'the plan is for account 222222222222, but the run targets 111111111111',
      expect.stringMatching(/^stage one: not a duration between 0s and 3650d/),
    ]);
  });
});

describe('changes on protected principals', () => {
  it('are moved to left alone with the pattern, with every change that depends on them', () => {
    const { kept, refused } = withoutProtectedChanges(
      [
        change('ok'),
        change('bg', { resource: 'arn:aws:iam::111111111111:user/Emergency/BREAK-GLASS-1' }),
        change('after-bg', { dependsOn: ['bg'] }),
        change('after-after', { dependsOn: ['after-bg'] }),
      ],
      ['arn:aws:iam::*:user/break-glass*'],
    );
    expect(kept.map((c) => c.id)).toEqual(['ok']);
    expect(refused).toEqual([
      { resource: 'arn:aws:iam::111111111111:user/Emergency/BREAK-GLASS-1', reason: 'protected', detail: 'matches arn:aws:iam::*:user/break-glass*; the engine removed change bg from the plan' },
      { resource: 'arn:aws:iam::111111111111:user/after-bg', reason: 'protected', detail: 'change after-bg depends on a change the engine refused' },
      { resource: 'arn:aws:iam::111111111111:user/after-after', reason: 'protected', detail: 'change after-after depends on a change the engine refused' },
    ]);
  });
});

describe('the activity guard every registered activity passes through', () => {
  const kinds = { k: { params: { soak: duration({ description: 'wait', default: '1d' }) } } };
  const seen: unknown[] = [];
  const guarded = withEngineGuards(
    {
      async planK(request: { params: unknown }): Promise<KindPlan> {
        seen.push(request.params);
        return { createdAt: 'now', stages: [{ name: 'one', description: '' }], changes: [change('ok'), change('bg', { resource: 'arn:aws:iam::1:user/break-glass' })], leftAlone: [], notes: [] };
      },
      async applyK(_request: unknown): Promise<string> {
        return 'applied';
      },
    },
    { kinds },
  );
  const planRequest = { role: 'plan' as const, kind: 'k', workflowId: 'w', account: '1', region: 'r', requestedBy: 'x', policy: {} as never, target, protectedPrincipals: [] };

  it('types parameters by the kind\'s declarations, strips protected changes and seals the plan', async () => {
    const plan = (await guarded.planK({ ...planRequest, params: { soak: '2h' } } as never)) as unknown as Plan;
    expect(seen).toEqual([{ soak: '2h' }]);
    expect(plan.changes.map((c) => c.id)).toEqual(['ok']);
    expect(plan.leftAlone[0]).toMatchObject({ reason: 'protected' });
    expect(plan).toMatchObject({ kind: 'k', account: '1', params: { soak: '2h' } });
    expect(planDigestMatches(plan)).toBe(true);
  });

  it('fails a bad parameter for good, naming it', async () => {
    await expect(guarded.planK({ ...planRequest, params: { soak: 'banana' } } as never)).rejects.toMatchObject({
      type: 'InvalidParameter',
      nonRetryable: true,
      message: expect.stringContaining('soak must be a duration'),
    });
  });

  it('refuses a change on a protected principal, or one without the protected list, before the kind runs', async () => {
    const bg = change('bg', { resource: 'arn:aws:iam::1:role/OrganizationAccountAccessRole' });
    await expect(guarded.applyK({ role: 'apply', change: bg, protectedPrincipals: [] })).rejects.toMatchObject({ type: 'ProtectedPrincipal', nonRetryable: true });
    await expect(guarded.applyK({ role: 'apply', change: change('ok') })).rejects.toMatchObject({ type: 'ProtectedPrincipalsMissing' });
    await expect(guarded.applyK({ role: 'rollback', change: change('x'), protectedPrincipals: ['arn:aws:iam::*:user/x'] })).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(guarded.applyK({ role: 'apply', change: change('ok'), protectedPrincipals: [] })).resolves.toBe('applied');
  });
});

describe('role session names', () => {
  it('lead back to the workflow id within STS rules (2–64 of [\\w+=,.@-])', () => {
    expect(roleSessionName('stale-iam-users/222222222222')).toBe('countersign.stale-iam-users.222222222222');
    const long = roleSessionName(`stale-iam-users/222222222222/${'x'.repeat(80)}`);
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^countersign\.stale-iam-users\.222222222222\.x+\.[0-9a-f]{8}$/);
    expect(long).not.toBe(roleSessionName(`stale-iam-users/222222222222/${'x'.repeat(81)}`));
    expect(roleSessionName('a b:c/d')).toMatch(/^[\w+=,.@-]+$/);
  });

  it('turn an assumed-role caller into the role it stands on', () => {
    expect(iamPrincipalOf('arn:aws:sts::111111111111:assumed-role/Deployer/session-1')).toBe('arn:aws:iam::111111111111:role/Deployer');
    expect(iamPrincipalOf('arn:aws:iam::111111111111:user/alice')).toBe('arn:aws:iam::111111111111:user/alice');
  });
});

describe('resolving the target account', () => {
  const orgs = mockClient(OrganizationsClient);
  let aws: AwsClients;
  let assumed: { identity: () => Promise<unknown> };

  beforeEach(() => {
    orgs.reset();
    aws = new AwsClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' });
    aws.callerIdentity = async () => ({ account: '111111111111', arn: 'arn:aws:sts::111111111111:assumed-role/Worker/i-1', userId: 'x' });
    assumed = { identity: async () => ({ account: '222222222222', arn: 'arn:aws:sts::222222222222:assumed-role/OrganizationAccountAccessRole/countersign.w', userId: 'y' }) };
    aws.forAccount = async () => ({ access: { account: '222222222222', roleArn: 'arn:aws:iam::222222222222:role/OrganizationAccountAccessRole', sessionName: 'countersign.w' }, identity: () => assumed.identity() }) as unknown as AccountClients;
    orgs.on(DescribeOrganizationCommand).resolves({ Organization: { Id: 'o-abc', MasterAccountId: '111111111111' } });
  });
  afterEach(() => aws.destroy());
  const resolve = (account?: string) => createEngineActivities({ aws }).resolveTarget({ role: 'target', kind: 'k', workflowId: 'w', ...(account ? { account } : {}) });

  it('acts in its own account directly, protecting its own role', async () => {
    const own = await resolve();
    expect(own).toMatchObject({ account: '111111111111', organizationId: 'o-abc', selfPrincipals: ['arn:aws:iam::111111111111:role/Worker'] });
    expect(own).not.toHaveProperty('roleArn');
  });

  it('reaches a member account through the role, and records role and session', async () => {
    orgs.on(DescribeAccountCommand).resolves({ Account: { Id: '222222222222', Name: 'workloads', State: 'ACTIVE' } });
    await expect(resolve('222222222222')).resolves.toMatchObject({
      account: '222222222222',
      accountName: 'workloads',
      roleArn: 'arn:aws:iam::222222222222:role/OrganizationAccountAccessRole',
      sessionName: 'countersign.w',
      selfPrincipals: ['arn:aws:iam::111111111111:role/Worker', 'arn:aws:iam::222222222222:role/OrganizationAccountAccessRole'],
    });
  });

  it('refuses an account outside the organization, a suspended one, and one with no organization', async () => {
    orgs.on(DescribeAccountCommand).rejects(Object.assign(new Error('not found'), { name: 'AccountNotFoundException' }));
    await expect(resolve('333333333333')).rejects.toMatchObject({ type: 'AccountNotInOrganization', message: expect.stringContaining('not in organization o-abc') });
    orgs.on(DescribeAccountCommand).resolves({ Account: { Id: '222222222222', Name: 'old', State: 'SUSPENDED' } });
    await expect(resolve('222222222222')).rejects.toMatchObject({ type: 'AccountNotActive' });
    orgs.on(DescribeOrganizationCommand).rejects(Object.assign(new Error('no org'), { name: 'AWSOrganizationsNotInUseException', $metadata: { httpStatusCode: 400 } }));
    await expect(resolve('222222222222')).rejects.toMatchObject({ type: 'AccountNotInOrganization', message: expect.stringContaining('cannot see an organization') });
  });

  it('fails for good, naming the role, when AssumeRole is denied; retries a throttled one', async () => {
    orgs.on(DescribeAccountCommand).resolves({ Account: { Id: '222222222222', State: 'ACTIVE' } });
    assumed.identity = async () => {
      throw Object.assign(new Error('not authorized to perform sts:AssumeRole'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    };
    await expect(resolve('222222222222')).rejects.toMatchObject({
      type: 'AssumeRoleDenied',
      nonRetryable: true,
      message: expect.stringMatching(/^cannot assume arn:aws:iam::222222222222:role\/OrganizationAccountAccessRole as arn:aws:sts::111111111111:assumed-role\/Worker\/i-1 \(AccessDenied: not authorized/),
    });
    assumed.identity = async () => {
      throw Object.assign(new Error('slow down'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } });
    };
    await expect(resolve('222222222222')).rejects.toMatchObject({ name: 'Throttling' });
  });

  it('refuses a hop that lands in another account', async () => {
    orgs.on(DescribeAccountCommand).resolves({ Account: { Id: '222222222222', State: 'ACTIVE' } });
    assumed.identity = async () => ({ account: '999999999999', arn: 'arn:aws:sts::999999999999:assumed-role/X/y', userId: 'z' });
    await expect(resolve('222222222222')).rejects.toMatchObject({ type: 'WrongAccount' });
  });
});
