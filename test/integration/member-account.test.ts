/**
 * Remediations in a member account of an AWS organization, against the shared Temporal dev server and
 * a private moto: the sandbox credentials' account (123456789012) is the management account, the
 * worker reaches a member account by assuming OrganizationAccountAccessRole there, and an account
 * outside the organization is refused by the CLI (exit 2, nothing started) and by the worker (the
 * run fails before planning).
 */
import { CreateAccessKeyCommand, CreateLoginProfileCommand, CreateUserCommand, GetGroupCommand, GetUserCommand, ListAccessKeysCommand, ListVirtualMFADevicesCommand } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import { ListAccountsForParentCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { WorkflowNotFoundError } from '@temporalio/client';
import { buildEvidence } from '../../evidence/record';
import type { SeededOrganization } from '../../sandbox/organization';
import { accountNamed, iamForAccount, seedOrganization } from '../../sandbox/organization';
import { createScenarioContext } from '../../sandbox/scenarios';
import { staleIamUsers } from '../../sandbox/scenarios/stale-iam-users';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { ownStderr, runCli } from '../harness/cli';

const MANAGEMENT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const ROLE = 'OrganizationAccountAccessRole';
const SPEC = {
  ous: ['Workloads', 'Sandbox'],
  accounts: [
    { name: 'workloads-prod', ou: 'Workloads' },
    { name: 'sandbox-dev', ou: 'Sandbox' },
  ],
};

let stack: TestStack;
const clients: IAMClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memberIam(account: string): IAMClient {
  const client = iamForAccount(stack.moto.endpoint, account);
  clients.push(client);
  return client;
}

async function userExists(iam: IAMClient, name: string): Promise<boolean> {
  try {
    await iam.send(new GetUserCommand({ UserName: name }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'NoSuchEntityException') return false;
    throw err;
  }
}

async function keyStatuses(iam: IAMClient, name: string): Promise<string[]> {
  const keys = await iam.send(new ListAccessKeysCommand({ UserName: name }));
  return (keys.AccessKeyMetadata ?? []).map((k) => k.Status ?? '');
}

/** A fresh sandbox with the organization of SPEC. */
async function freshOrganization(): Promise<SeededOrganization> {
  await stack.moto.reset();
  return seedOrganization(stack.moto.endpoint, SPEC);
}

describe('remediation in a member account of the organization', () => {
  it('seeds an organization with OUs and member accounts, each reachable through its OrganizationAccountAccessRole', async () => {
    const org = await freshOrganization();
    expect(org.organizationId).toMatch(/^o-[a-z0-9]+$/);
    expect(org.managementAccount).toBe(MANAGEMENT);
    expect(Object.keys(org.ous).sort()).toEqual(['Sandbox', 'Workloads']);
    expect(org.accounts.map((a) => [a.name, a.ou])).toEqual([
      ['workloads-prod', 'Workloads'],
      ['sandbox-dev', 'Sandbox'],
    ]);
    for (const a of org.accounts) expect(a.id).toMatch(/^\d{12}$/);
    expect(new Set([MANAGEMENT, ...org.accounts.map((a) => a.id)]).size).toBe(3);

    const orgs = new OrganizationsClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    try {
      for (const a of org.accounts) {
        const inOu = await orgs.send(new ListAccountsForParentCommand({ ParentId: org.ous[a.ou!] }));
        expect(inOu.Accounts?.map((x) => x.Id)).toEqual([a.id]);
      }
      const inRoot = await orgs.send(new ListAccountsForParentCommand({ ParentId: org.rootId }));
      expect(inRoot.Accounts?.map((x) => x.Id)).toEqual([MANAGEMENT]);
    } finally {
      orgs.destroy();
    }

    // A user created through the member's role lives in the member account only.
    const member = accountNamed(org, 'workloads-prod');
    const iam = memberIam(member.id);
    const created = await iam.send(new CreateUserCommand({ UserName: 'only-in-member' }));
    expect(created.User?.Arn).toBe(`arn:aws:iam::${member.id}:user/only-in-member`);
    expect(await userExists(stack.iam, 'only-in-member')).toBe(false);
    expect(await userExists(memberIam(accountNamed(org, 'sandbox-dev').id), 'only-in-member')).toBe(false);
  });

  it('removes the idle users of a member account, through the assumed role, and nothing in the management account', async () => {
    await stack.moto.reset();
    // The demo's own scenario seeds the sandbox: an organization, the estate in workloads-prod, idle users in the management account.
    const context = createScenarioContext(stack.moto.endpoint);
    try {
      const state = await staleIamUsers.seed(context);
      const { member, estate, managementIdle, organization } = state;
      expect(state.account).toBe(member.id);
      expect(member.id).not.toBe(MANAGEMENT);
      const iam = memberIam(member.id);
      for (const user of managementIdle) expect(await keyStatuses(stack.iam, user)).toEqual(['Active']);

      const { workflowId: id } = await stack.remediations.start({
        kind: 'stale-iam-users',
        account: member.id,
        params: { maxIdle: '2s', soak: '1s' },
        requestedBy: REQUESTER,
        idSuffix: stack.uniqueSuffix(),
      });
      expect(id).toContain(`/${member.id}/`);
      const awaiting = await stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
      expect(awaiting.phase).toBe('awaiting-approval');
      const plan = awaiting.plan!;
      expect(plan.account).toBe(member.id);
      const deleted = plan.changes.filter((c) => c.action === 'delete-user').map((c) => c.resource).sort();
      expect(deleted).toEqual(estate.idle.map((u) => `arn:aws:iam::${member.id}:user/${u}`).sort());
      for (const c of plan.changes) expect(c.resource).toContain(`::${member.id}:`);
      for (const l of plan.leftAlone) expect(l.resource).not.toContain(`::${MANAGEMENT}:`);
      expect(plan.leftAlone.find((l) => l.resource === `arn:aws:iam::${member.id}:user/${estate.breakGlass}`)).toMatchObject({ reason: 'protected' });

      const approved = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan.digest });
      expect(approved.accepted).toBe(true);
      const final = await stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 120_000 });
      expect(final.outcome).toBe('completed');
      expect(final.verification?.ok).toBe(true);

      // In the member account: the idle users and their dependents gone, everyone else there.
      for (const user of estate.idle) expect(await userExists(iam, user)).toBe(false);
      for (const user of [estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass]) expect(await userExists(iam, user)).toBe(true);
      expect((await iam.send(new GetGroupCommand({ GroupName: estate.group }))).Users).toEqual([]);
      const mfa = (await iam.send(new ListVirtualMFADevicesCommand({}))).VirtualMFADevices ?? [];
      expect(mfa.filter((d) => estate.idle.some((u) => d.SerialNumber?.endsWith(`/${u}-mfa`)))).toEqual([]);
      // In the management account: its idle users untouched.
      for (const user of managementIdle) expect(await keyStatuses(stack.iam, user)).toEqual(['Active']);

      // The run says where it acted and as whom; so does the evidence, from history alone.
      const target = {
        account: member.id,
        accountName: 'workloads-prod',
        organizationId: organization.organizationId,
        roleArn: `arn:aws:iam::${member.id}:role/${ROLE}`,
        sessionName: expect.stringMatching(/^countersign\./),
      };
      expect(final.target).toMatchObject(target);
      expect(final.target?.actingArn).toBe(`arn:aws:sts::${member.id}:assumed-role/${ROLE}/${final.target?.sessionName}`);
      expect(final.target?.workerArn).toContain(`::${MANAGEMENT}:`);
      const handle = stack.client.workflow.getHandle(id);
      const evidence = buildEvidence(await handle.fetchHistory(), { namespace: 'default', workflowId: id, runId: (await handle.describe()).runId });
      expect(evidence.target).toMatchObject({ ...target, sessionName: final.target?.sessionName, actingArn: final.target?.actingArn });
      expect(evidence.approvedBy).toEqual([APPROVER]);

      // The demo's checks agree.
      const checks = await staleIamUsers.checks(context, state, final);
      expect(checks.lines.filter((l) => !l.startsWith('ok'))).toEqual([]);
      expect(checks.ok).toBe(true);
    } finally {
      context.close();
    }
  });

  it('the CLI refuses an account outside the organization or a malformed id (exit 2, nothing started) and dry-runs a member account', async () => {
    const org = await freshOrganization();
    const member = accountNamed(org, 'workloads-prod');

    for (const [account, reason] of [
      ['999999999999', new RegExp(`account 999999999999 is not in organization ${org.organizationId}`)],
      ['12345', /--account must be a 12-digit AWS account id \(got "12345"\)/],
    ] as const) {
      const suffix = stack.uniqueSuffix();
      const result = await runCli(['start', 'stale-iam-users', '--account', account, '--param', 'maxIdle=2s', '--id-suffix', suffix], stack.env);
      expect(result.code).toBe(2);
      const lines = ownStderr(result.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(reason);
      expect(result.stdout).toBe('');
      await expect(stack.client.workflow.getHandle(`stale-iam-users/${account}/${suffix}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }

    const estate = await seedEstate(memberIam(member.id), 'dry');
    await sleep(3_000); // idle past maxIdle=2s
    await useKeys(estate, stack.moto.endpoint);
    const suffix = stack.uniqueSuffix();
    const dry = await runCli(['start', 'stale-iam-users', '--account', member.id, '--param', 'maxIdle=2s', '--dry-run', '--as', REQUESTER, '--id-suffix', suffix, '--json'], stack.env);
    expect(ownStderr(dry.stderr).filter((l) => /^countersign:/.test(l))).toEqual([]);
    expect(dry.code).toBe(0);
    const doc = JSON.parse(dry.stdout) as { workflowId: string; status: { outcome: string; target: { account: string; roleArn: string }; plan: { account: string; changes: { action: string; resource: string }[] } } };
    expect(doc.workflowId).toBe(`stale-iam-users/${member.id}/${suffix}`);
    expect(doc.status.outcome).toBe('planned');
    expect(doc.status.target).toMatchObject({ account: member.id, roleArn: `arn:aws:iam::${member.id}:role/${ROLE}` });
    expect(doc.status.plan.account).toBe(member.id);
    const planned = doc.status.plan.changes.filter((c) => c.action === 'delete-user').map((c) => c.resource).sort();
    expect(planned).toEqual(estate.idle.map((u) => `arn:aws:iam::${member.id}:user/${u}`).sort());
  });

  it('fails a run started for an account outside the organization before planning, changing nothing', async () => {
    const org = await freshOrganization();
    // An idle user in the management account: a run that fell back to the worker's own account would plan it.
    await stack.iam.send(new CreateUserCommand({ UserName: 'mgmt-idle' }));
    await stack.iam.send(new CreateLoginProfileCommand({ UserName: 'mgmt-idle', Password: 'Seeded-Passw0rd!x' }));
    await stack.iam.send(new CreateAccessKeyCommand({ UserName: 'mgmt-idle' }));
    await sleep(3_000);

    const { workflowId } = await stack.remediations.start({
      kind: 'stale-iam-users',
      account: '999999999999',
      params: { maxIdle: '2s', soak: '1s' },
      requestedBy: REQUESTER,
      idSuffix: stack.uniqueSuffix(),
    });
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toMatch(new RegExp(`account 999999999999 is not in organization ${org.organizationId}`));
    expect(final.plan).toBeUndefined();
    expect(final.target).toBeUndefined();
    expect(final.results).toEqual([]);
    expect(await keyStatuses(stack.iam, 'mgmt-idle')).toEqual(['Active']);
  });
});
