/**
 * permission-boundary end to end against real servers: the shared Temporal dev server and a private
 * moto. Roles only for the changes themselves — moto implements PutRolePermissionsBoundary and
 * DeleteRolePermissionsBoundary but not the user calls (docs/aws.md §9), which the last test shows
 * failing at once, unretried. Users' put/restore/delete are unit-tested with mocked clients
 * (test/unit/permission-boundary.test.ts).
 */
import { CreateRoleCommand, CreateServiceLinkedRoleCommand, CreateUserCommand, GetPolicyCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import { Worker } from '@temporalio/worker';
import { planDigestMatches } from '../../common/digest';
import { builtinBoundaryArn } from '../../common/boundaries';
import type { RemediationStatus } from '../../common/messages';
import { buildEvidence } from '../../evidence/record';
import { createScenarioContext } from '../../sandbox/scenarios';
import { permissionBoundary } from '../../sandbox/scenarios/permission-boundary';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const MANAGEMENT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const BUILTIN = 'builtin:countersign-workload-boundary';
const OLD_BOUNDARY = 'arn:aws:iam::aws:policy/PowerUserAccess';
const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] });

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function boundaryOf(iam: IAMClient, role: string): Promise<string | null> {
  return (await iam.send(new GetRoleCommand({ RoleName: role }))).Role?.PermissionsBoundary?.PermissionsBoundaryArn ?? null;
}

async function policyExists(iam: IAMClient, arn: string): Promise<boolean> {
  try {
    await iam.send(new GetPolicyCommand({ PolicyArn: arn }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'NoSuchEntityException') return false;
    throw err;
  }
}

/** Ordinary roles (name → boundary before the run) and a service-linked role, in the management account. */
async function seedRoles(roles: Record<string, string | null>): Promise<{ slr: { name: string; arn: string } }> {
  await stack.moto.reset();
  for (const [name, boundary] of Object.entries(roles)) {
    await stack.iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST, ...(boundary ? { PermissionsBoundary: boundary } : {}) }));
  }
  const slr = (await stack.iam.send(new CreateServiceLinkedRoleCommand({ AWSServiceName: 'autoscaling.amazonaws.com' }))).Role;
  return { slr: { name: slr?.RoleName ?? '', arn: slr?.Arn ?? '' } };
}

async function startRun(params: Record<string, string>, account = MANAGEMENT): Promise<string> {
  const { workflowId } = await stack.remediations.start({ kind: 'permission-boundary', account, params, requestedBy: REQUESTER, idSuffix: stack.uniqueSuffix() });
  return workflowId;
}

const awaitingApproval = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
const finished = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 120_000 });

async function approve(id: string, status: RemediationStatus): Promise<void> {
  expect(status.phase).toBe('awaiting-approval');
  const reply = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: status.plan!.digest });
  expect(reply.accepted).toBe(true);
}

describe('permission-boundary', () => {
  it('bounds the ordinary roles in waves with a soak between, leaves the service-linked one alone with its reason, and records each previous boundary', async () => {
    const { slr } = await seedRoles({ 'app-web': null, 'app-batch': OLD_BOUNDARY });
    const boundary = builtinBoundaryArn('countersign-workload-boundary', { partition: 'aws', account: MANAGEMENT });
    const id = await startRun({ boundary: BUILTIN, roles: '*', batch: '1', soak: '2s' });
    const awaiting = await awaitingApproval(id);
    const plan = awaiting.plan!;
    expect(planDigestMatches(plan)).toBe(true);
    expect(plan.stages.map((s) => [s.name, s.soakBefore])).toEqual([
      ['boundary', undefined],
      ['wave-1', undefined],
      ['wave-2', '2s'],
    ]);
    expect(plan.changes.map((c) => c.id)).toEqual(['create-boundary/countersign-workload-boundary', 'set-boundary/role/app-batch', 'set-boundary/role/app-web']);
    expect(plan.changes.find((c) => c.id === 'set-boundary/role/app-batch')).toMatchObject({ before: { boundaryArn: OLD_BOUNDARY, boundaryVersionId: expect.stringMatching(/^v\d+$/) }, after: { boundaryArn: boundary } });
    expect(plan.changes.find((c) => c.id === 'set-boundary/role/app-web')).toMatchObject({ before: { boundaryArn: null }, after: { boundaryArn: boundary } });
    expect(plan.leftAlone.find((l) => l.resource === slr.arn)).toMatchObject({ reason: 'service-linked', detail: expect.stringContaining('service-linked') });
    expect(await policyExists(stack.iam, boundary)).toBe(false); // nothing before approval

    await approve(id, awaiting);
    const final = await finished(id);
    expect(final.outcome).toBe('completed');
    expect(final.verification?.ok).toBe(true);
    expect(final.results.map((r) => [r.changeId, r.status])).toEqual(plan.changes.map((c) => [c.id, 'applied']));

    // In AWS: both ordinary roles carry the built-in boundary, which exists; the service-linked role none.
    expect(await policyExists(stack.iam, boundary)).toBe(true);
    expect(await boundaryOf(stack.iam, 'app-web')).toBe(boundary);
    expect(await boundaryOf(stack.iam, 'app-batch')).toBe(boundary);
    expect(await boundaryOf(stack.iam, slr.name)).toBeNull();

    // The previous boundary's document, as it stood just before it was replaced, is in history.
    const batch = final.results.find((r) => r.changeId === 'set-boundary/role/app-batch');
    expect(batch?.observed).toMatchObject({ previousBoundary: { arn: OLD_BOUNDARY, defaultVersionId: expect.any(String), document: { Version: '2012-10-17' } } });
    const handle = stack.client.workflow.getHandle(id);
    const history = await handle.fetchHistory();
    const evidence = buildEvidence(history, { namespace: 'default', workflowId: id, runId: (await handle.describe()).runId });
    expect(evidence.plan?.digestVerified).toBe(true);
    expect(evidence.approvedBy).toEqual([APPROVER]);
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, id);
  });

  it('a reject during the soak leaves each role with exactly its previous boundary, none or the old one, and deletes the boundary it created', async () => {
    await seedRoles({ 'app-batch': OLD_BOUNDARY, 'app-web': null, 'app-worker': null });
    const boundary = builtinBoundaryArn('countersign-workload-boundary', { partition: 'aws', account: MANAGEMENT });
    const id = await startRun({ boundary: BUILTIN, roles: '*', batch: '2', soak: '1h' });
    const awaiting = await awaitingApproval(id);
    expect(awaiting.plan!.stages.map((s) => s.name)).toEqual(['boundary', 'wave-1', 'wave-2']);
    await approve(id, awaiting);
    await stack.remediations.waitFor(id, (s) => s.phase === 'soaking' || s.phase === 'done', { timeoutMs: 60_000 });
    // The first wave is in place; the second waits.
    expect(await boundaryOf(stack.iam, 'app-batch')).toBe(boundary);
    expect(await boundaryOf(stack.iam, 'app-web')).toBe(boundary);
    expect(await boundaryOf(stack.iam, 'app-worker')).toBeNull();

    const halt = await stack.remediations.decide(id, { decision: 'reject', approver: 'sam.security', planDigest: awaiting.plan!.digest, comment: 'the batch job lost S3 access' });
    expect(halt.accepted).toBe(true);
    const final = await finished(id);
    expect(final.outcome).toBe('rolled-back');
    expect(final.outcomeReason).toContain('the batch job lost S3 access');
    const rolledBack = final.results.filter((r) => r.status === 'rolled-back').map((r) => r.changeId);
    // Newest first: the wave's two roles (applied side by side, in either order), then the boundary they depended on.
    expect(rolledBack.slice(0, 2).sort()).toEqual(['set-boundary/role/app-batch', 'set-boundary/role/app-web']);
    expect(rolledBack.slice(2)).toEqual(['create-boundary/countersign-workload-boundary']);
    expect(final.results.find((r) => r.changeId === 'set-boundary/role/app-batch' && r.status === 'rolled-back')?.detail).toContain(`restored the previous boundary ${OLD_BOUNDARY}`);
    expect(final.results.find((r) => r.changeId === 'set-boundary/role/app-web' && r.status === 'rolled-back')?.detail).toContain('has none, as before');

    expect(await boundaryOf(stack.iam, 'app-batch')).toBe(OLD_BOUNDARY);
    expect(await boundaryOf(stack.iam, 'app-web')).toBeNull();
    expect(await boundaryOf(stack.iam, 'app-worker')).toBeNull();
    expect(await policyExists(stack.iam, boundary)).toBe(false);
  });

  it('with users selected, fails at once with the reason where the emulator lacks PutUserPermissionsBoundary, without retrying', async () => {
    await stack.moto.reset();
    await stack.iam.send(new CreateUserCommand({ UserName: 'contractor-1' }));
    const id = await startRun({ boundary: 'arn:aws:iam::aws:policy/ReadOnlyAccess', users: '*' });
    const awaiting = await awaitingApproval(id);
    expect(awaiting.plan!.changes.map((c) => c.id)).toEqual(['set-boundary/user/contractor-1']);
    expect(awaiting.plan!.notes).toEqual(expect.arrayContaining([expect.stringContaining('does not implement PutUserPermissionsBoundary')]));
    const approvedAt = Date.now();
    await approve(id, awaiting);
    const final = await finished(id);
    // The first retry alone would come 5 s later, the tenth minutes later: "at once" is well under that.
    expect(Date.now() - approvedAt).toBeLessThan(5_000);
    expect(final.outcome).toBe('failed');
    const result = final.results.find((r) => r.changeId === 'set-boundary/user/contractor-1');
    expect(result).toMatchObject({ status: 'failed', detail: expect.stringContaining('PutUserPermissionsBoundary is not implemented by the moto emulator') });

    // One attempt in history, and nothing to roll back.
    const history = await stack.client.workflow.getHandle(id).fetchHistory();
    const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityId === 'apply:set-boundary/user/contractor-1');
    expect(scheduled).toHaveLength(1);
    const applyStarted = started.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled[0]?.eventId));
    expect(applyStarted?.activityTaskStartedEventAttributes?.attempt).toBe(1);
    expect(final.progress.rolledBack).toBe(0);
  });

  it('runs in a member account through its assumed role: the demo scenario, its run left alone as the own principal', async () => {
    await stack.moto.reset();
    const context = createScenarioContext(stack.moto.endpoint);
    try {
      const state = await permissionBoundary.seed(context);
      const id = await startRun(permissionBoundary.params, state.account);
      const awaiting = await awaitingApproval(id);
      for (const c of awaiting.plan!.changes) expect(c.resource).toContain(`::${state.member.id}:`);
      await approve(id, awaiting);
      const final = await finished(id);
      const checks = await permissionBoundary.checks(context, state, final);
      expect(checks.lines.filter((l) => !l.startsWith('ok'))).toEqual([]);
      expect(checks.ok).toBe(true);
    } finally {
      context.close();
    }
  });
});
