/**
 * stale-iam-users end to end against real servers: the shared Temporal dev server and a private moto.
 * Users are seeded, left idle past maxIdle=2s, and two users' keys are used just before planning.
 */
import { Worker } from '@temporalio/worker';
import { GetGroupCommand, GetLoginProfileCommand, GetUserCommand, ListAccessKeysCommand, ListVirtualMFADevicesCommand } from '@aws-sdk/client-iam';
import type { RemediationStatus } from '../../common/messages';
import { planDigestMatches } from '../../common/digest';
import { buildEvidence } from '../../evidence/record';
import type { SeededEstate } from '../../sandbox/seed';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const ACCOUNT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freshEstate(): Promise<SeededEstate> {
  await stack.moto.reset();
  const estate = await seedEstate(stack.iam, 't');
  await sleep(3_000); // idle past maxIdle=2s
  await useKeys(estate, stack.moto.endpoint);
  return estate;
}

async function userExists(name: string): Promise<boolean> {
  try {
    await stack.iam.send(new GetUserCommand({ UserName: name }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'NoSuchEntityException') return false;
    throw err;
  }
}

async function startRun(params: Record<string, string>, extra: { dryRun?: boolean } = {}) {
  const { workflowId } = await stack.remediations.start({
    kind: 'stale-iam-users',
    account: ACCOUNT,
    params,
    requestedBy: REQUESTER,
    idSuffix: stack.uniqueSuffix(),
    ...extra,
  });
  return workflowId;
}

const awaitingApproval = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
const finished = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 120_000 });

async function estateUntouched(estate: SeededEstate): Promise<void> {
  for (const user of [...estate.idle, estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass]) {
    expect(await userExists(user)).toBe(true);
  }
  for (const user of estate.idle) {
    const keys = await stack.iam.send(new ListAccessKeysCommand({ UserName: user }));
    expect(keys.AccessKeyMetadata?.map((k) => k.Status)).toEqual(['Active', 'Active']);
    await expect(stack.iam.send(new GetLoginProfileCommand({ UserName: user }))).resolves.toBeDefined();
  }
}

describe('stale-iam-users', () => {
  it('plans exactly the idle users, refuses improper approvals with reasons, removes the users and every dependent once approved', async () => {
    const estate = await freshEstate();
    const id = await startRun({ maxIdle: '2s', soak: '1s' });
    const awaiting = await awaitingApproval(id);
    expect(awaiting.phase).toBe('awaiting-approval');
    const plan = awaiting.plan!;
    expect(planDigestMatches(plan)).toBe(true);

    const deleted = plan.changes.filter((c) => c.action === 'delete-user').map((c) => c.resource.split('/').pop()).sort();
    expect(deleted).toEqual([...estate.idle].sort());
    const reasonOf = (user: string) => plan.leftAlone.find((l) => l.resource.endsWith(`:user/${user}`));
    expect(reasonOf(estate.sshKeyHolder)).toMatchObject({ reason: 'manual-review', review: true });
    expect(reasonOf(estate.exempt)).toMatchObject({ reason: 'exempt' });
    expect(reasonOf(estate.breakGlass)).toMatchObject({ reason: 'protected' });
    for (const user of estate.active) expect(reasonOf(user)).toMatchObject({ reason: 'active' });

    const byRequester = await stack.remediations.decide(id, { decision: 'approve', approver: REQUESTER, planDigest: plan.digest });
    expect(byRequester).toMatchObject({ accepted: false, refusal: { reason: 'requester-cannot-approve' } });
    const byOutsider = await stack.remediations.decide(id, { decision: 'approve', approver: 'mallory', planDigest: plan.digest });
    expect(byOutsider).toMatchObject({ accepted: false, refusal: { reason: 'not-an-approver' } });
    const wrongDigest = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: 'a'.repeat(64) });
    expect(wrongDigest).toMatchObject({ accepted: false, refusal: { reason: 'wrong-digest' } });
    const approved = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan.digest, comment: 'leavers' });
    expect(approved.accepted).toBe(true);

    const final = await finished(id);
    expect(final.outcome).toBe('completed');
    expect(final.verification?.ok).toBe(true);

    // In AWS: the idle users and their dependents are gone, everyone else untouched.
    for (const user of estate.idle) expect(await userExists(user)).toBe(false);
    for (const user of [estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass]) expect(await userExists(user)).toBe(true);
    const group = await stack.iam.send(new GetGroupCommand({ GroupName: estate.group }));
    expect(group.Users?.map((u) => u.UserName)).toEqual([]);
    const mfa = await stack.iam.send(new ListVirtualMFADevicesCommand({}));
    expect((mfa.VirtualMFADevices ?? []).filter((d) => estate.idle.some((u) => d.SerialNumber?.endsWith(`/${u}-mfa`)))).toEqual([]);

    // Each change applied exactly once.
    const applied = final.results.filter((r) => r.status === 'applied').map((r) => r.changeId).sort();
    expect(applied).toEqual(plan.changes.map((c) => c.id).sort());

    // The evidence, from history alone, with each deleted user's snapshot.
    const handle = stack.client.workflow.getHandle(id);
    const evidence = buildEvidence(await handle.fetchHistory(), { namespace: 'default', workflowId: id, runId: (await handle.describe()).runId });
    expect(evidence.approvedBy).toEqual([APPROVER]);
    expect(evidence.plan?.digest).toBe(plan.digest);
    expect(evidence.plan?.digestVerified).toBe(true);
    expect(evidence.refused.map((r) => r.reason)).toEqual(['requester-cannot-approve', 'not-an-approver', 'wrong-digest']);
    // Each decision as the server received it: the CLI client sends the `decide` update, whose answer is in history too.
    expect(evidence.messages).toHaveLength(4);
    expect(evidence.messages.map((m) => m.via)).toEqual(['update', 'update', 'update', 'update']);
    expect(evidence.messages[0]).toMatchObject({ name: 'decide', payload: { approver: REQUESTER }, reply: { accepted: false, reason: 'requester-cannot-approve' } });
    expect(evidence.messages[3]).toMatchObject({ reply: { accepted: true } });
    expect(evidence.target).toMatchObject({ account: ACCOUNT, actingArn: expect.stringContaining(ACCOUNT) });
    expect(evidence.policy?.approvers).toEqual(['dana.approver', 'sam.security']);
    for (const user of estate.idle) {
      const del = evidence.results.find((r) => r.changeId === `delete-user/${user}`);
      expect(del?.snapshot).toMatchObject({
        userName: user,
        groups: [estate.group],
        attachedPolicies: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }],
        inlinePolicies: [{ name: 'read-own-bucket' }],
        mfaDevices: [{ virtual: true }],
      });
    }

    // The history replays deterministically on the current workflow code. The saved histories that
    // test/integration/replay.test.ts replays against future code come from `npm run record:histories`.
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, id);
  });

  it('changes nothing when the plan is rejected', async () => {
    const estate = await freshEstate();
    const id = await startRun({ maxIdle: '2s', soak: '1s' });
    const { plan } = await awaitingApproval(id);
    const reply = await stack.remediations.decide(id, { decision: 'reject', approver: 'sam.security', planDigest: plan!.digest, comment: 'not this week' });
    expect(reply.accepted).toBe(true);
    const final = await finished(id);
    expect(final.outcome).toBe('rejected');
    expect(final.outcomeReason).toContain('not this week');
    expect(final.results).toEqual([]);
    await estateUntouched(estate);
  });

  it('halts during the soak on a reject and re-activates the keys it deactivated', async () => {
    const estate = await freshEstate();
    const id = await startRun({ maxIdle: '2s', soak: '1h' });
    const { plan } = await awaitingApproval(id);
    await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest });
    await stack.remediations.waitFor(id, (s) => s.phase === 'soaking', { timeoutMs: 60_000 });
    for (const user of estate.idle) {
      const keys = await stack.iam.send(new ListAccessKeysCommand({ UserName: user }));
      expect(keys.AccessKeyMetadata?.map((k) => k.Status)).toEqual(['Inactive', 'Inactive']);
    }
    const halt = await stack.remediations.decide(id, { decision: 'reject', approver: REQUESTER, planDigest: plan!.digest, comment: 'a leaver came back' });
    expect(halt.accepted).toBe(true);
    const final = await finished(id);
    expect(final.outcome).toBe('rolled-back');
    expect(final.results.filter((r) => r.status === 'rolled-back')).toHaveLength(3);
    for (const user of estate.idle) {
      expect(await userExists(user)).toBe(true);
      const keys = await stack.iam.send(new ListAccessKeysCommand({ UserName: user }));
      expect(keys.AccessKeyMetadata?.map((k) => k.Status)).toEqual(['Active', 'Active']);
    }
  });

  it('rolls back what is reversible when the workflow is cancelled during the soak', async () => {
    const estate = await freshEstate();
    const id = await startRun({ maxIdle: '2s', soak: '1h' });
    const { plan } = await awaitingApproval(id);
    await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest });
    await stack.remediations.waitFor(id, (s) => s.phase === 'soaking', { timeoutMs: 60_000 });
    await stack.client.workflow.getHandle(id).cancel();
    const final = await finished(id);
    expect(final.outcome).toBe('cancelled');
    expect(final.outcomeReason).toMatch(/3 reversible change\(s\) rolled back/);
    for (const user of estate.idle) {
      const keys = await stack.iam.send(new ListAccessKeysCommand({ UserName: user }));
      expect(keys.AccessKeyMetadata?.map((k) => k.Status)).toEqual(['Active', 'Active']);
    }
  });

  it('leaves alone a user whose key was re-activated, or who was renamed, during the soak, and reports it', async () => {
    const estate = await freshEstate();
    const id = await startRun({ maxIdle: '2s', soak: '4s' });
    const { plan } = await awaitingApproval(id);
    await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest });
    await stack.remediations.waitFor(id, (s) => s.phase === 'soaking', { timeoutMs: 60_000 });
    const comeback = estate.idle[0]!;
    const keys = await stack.iam.send(new ListAccessKeysCommand({ UserName: comeback }));
    const { UpdateAccessKeyCommand, UpdateUserCommand } = await import('@aws-sdk/client-iam');
    await stack.iam.send(new UpdateAccessKeyCommand({ UserName: comeback, AccessKeyId: keys.AccessKeyMetadata![0]!.AccessKeyId!, Status: 'Active' }));
    const renamed = estate.idle[1]!;
    await stack.iam.send(new UpdateUserCommand({ UserName: renamed, NewUserName: `${renamed}-2` }));
    const final = await finished(id);
    expect(final.outcome).toBe('completed');
    const result = final.results.find((r) => r.changeId === `delete-user/${comeback}`);
    expect(result).toMatchObject({ status: 'left-alone' });
    expect(result?.detail).toMatch(/re-activated during the soak/);
    expect(await userExists(comeback)).toBe(true);
    // A user renamed during the soak is not "already deleted": it is left alone and says so.
    const renamedResult = final.results.find((r) => r.changeId === `delete-user/${renamed}`);
    expect(renamedResult).toMatchObject({ status: 'left-alone' });
    expect(renamedResult?.detail).toMatch(new RegExp(`renamed to ${renamed}-2`));
    expect(await userExists(`${renamed}-2`)).toBe(true);
    expect(await userExists(estate.idle[2]!)).toBe(false);
  });

  it('ends expired when no quorum arrives in time, changing nothing', async () => {
    const expiring = await startTestStack({ policy: { approvers: { '*': ['dana.approver'] }, approvalTimeout: '2s' } });
    try {
      await expiring.moto.reset();
      const estate = await seedEstate(expiring.iam, 'x');
      await sleep(3_000);
      const { workflowId } = await expiring.remediations.start({ kind: 'stale-iam-users', account: ACCOUNT, params: { maxIdle: '2s' }, requestedBy: REQUESTER, idSuffix: expiring.uniqueSuffix() });
      const final = await expiring.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
      expect(final.outcome).toBe('expired');
      const late = await expiring.remediations.decide(workflowId, { decision: 'approve', approver: 'dana.approver', planDigest: final.plan!.digest });
      expect(late).toMatchObject({ accepted: false, refusal: { reason: 'expired' } });
      for (const user of estate.idle) expect(await (async () => {
        const k = await expiring.iam.send(new ListAccessKeysCommand({ UserName: user }));
        return k.AccessKeyMetadata?.map((x) => x.Status);
      })()).toEqual(['Active', 'Active']);
    } finally {
      await expiring.stop();
    }
  });

  it('ends "planned" on a dry run and "no-op" when nothing is stale, asking no one', async () => {
    await freshEstate();
    const dry = await startRun({ maxIdle: '2s' }, { dryRun: true });
    const planned: RemediationStatus = await finished(dry);
    expect(planned.outcome).toBe('planned');
    expect(planned.plan?.changes.length).toBe(6);
    const nothing = await startRun({ maxIdle: '3650d' });
    const noop = await finished(nothing);
    expect(noop.outcome).toBe('no-op');
    expect(noop.decisions).toEqual([]);
  });

  it('fails fast, changing nothing, when the plan is over maxChanges or the quorum cannot be met without the requester', async () => {
    const strict = await startTestStack({ policy: { approvers: { '*': ['Riley.Operator'] }, maxChanges: 2 } });
    try {
      const estate = await seedEstate(strict.iam, 's');
      await sleep(3_000);
      const start = (params: Record<string, string>) =>
        strict.remediations.start({ kind: 'stale-iam-users', account: ACCOUNT, params, requestedBy: REQUESTER, idSuffix: strict.uniqueSuffix() });
      const tooBig = await strict.remediations.waitFor((await start({ maxIdle: '2s' })).workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
      expect(tooBig.outcome).toBe('failed');
      expect(tooBig.outcomeReason).toMatch(/over the policy's maxChanges of 2/);
      // One stale user left: within maxChanges, but the only approver is the requester (names compare case-insensitively).
      const others = [...estate.idle.slice(1), ...estate.active].join(',');
      const noQuorum = await strict.remediations.waitFor((await start({ maxIdle: '2s', exempt: others })).workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
      expect(noQuorum.plan?.changes).toHaveLength(2);
      expect(noQuorum.outcome).toBe('failed');
      expect(noQuorum.outcomeReason).toMatch(/needs 1 approval\(s\) but only 0 approver\(s\) other than the requester/);
      for (const user of estate.idle) {
        const keys = await strict.iam.send(new ListAccessKeysCommand({ UserName: user }));
        expect(keys.AccessKeyMetadata?.map((k) => k.Status)).toEqual(['Active', 'Active']);
      }
    } finally {
      await strict.stop();
    }
  });

  it('refuses a second start for the same target while one runs', async () => {
    await freshEstate();
    const suffix = stack.uniqueSuffix();
    const first = await stack.remediations.start({ kind: 'stale-iam-users', account: ACCOUNT, params: { maxIdle: '2s' }, requestedBy: REQUESTER, idSuffix: suffix });
    await expect(
      stack.remediations.start({ kind: 'stale-iam-users', account: ACCOUNT, params: { maxIdle: '2s' }, requestedBy: REQUESTER, idSuffix: suffix }),
    ).rejects.toThrow(/already running/);
    const { plan } = await awaitingApproval(first.workflowId);
    await stack.remediations.decide(first.workflowId, { decision: 'reject', approver: REQUESTER, planDigest: plan!.digest });
    await finished(first.workflowId);
  });
});
