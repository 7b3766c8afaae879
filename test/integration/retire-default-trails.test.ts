/**
 * retire-default-trails against a private moto and the shared Temporal dev server, run from the
 * management account over the whole sandbox organization (management account + 2 members, reached
 * through OrganizationAccountAccessRole). The estate is the demo scenario's
 * (sandbox/scenarios/retire-default-trails.ts): an organization trail logging in the management account
 * beside a management-events trail, a data-events trail, a trail never started, a trail whose bucket
 * was deleted, a Control Tower trail and a kept one; each member a trail of its own, sandbox-dev also a
 * CloudWatch Logs trail.
 *
 * What moto cannot show (members seeing the organization trail, delivery errors, Insights errors,
 * home-region refusals) is covered by test/unit/retire-default-trails.test.ts.
 */
import { buildEvidence } from '../../evidence/record';
import type { RemediationStatus } from '../../common/messages';
import type { ScenarioContext } from '../../sandbox/scenarios';
import { createScenarioContext } from '../../sandbox/scenarios';
import type { RetireDefaultTrailsState, SeededTrail } from '../../sandbox/scenarios/retire-default-trails';
import { retireDefaultTrails, seedTrailEstate, trailState } from '../../sandbox/scenarios/retire-default-trails';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const MANAGEMENT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';

let stack: TestStack;
let context: (ScenarioContext & { close(): void }) | undefined;

beforeAll(async () => {
  stack = await startTestStack();
});
afterEach(() => {
  context?.close();
  context = undefined;
});
afterAll(async () => {
  await stack?.stop();
});

/** A fresh sandbox holding the scenario's organization and trails. */
async function freshEstate(options: { organizationTrail?: boolean } = {}): Promise<{ context: ScenarioContext; state: RetireDefaultTrailsState }> {
  await stack.moto.reset();
  context = createScenarioContext(stack.moto.endpoint);
  return { context, state: await seedTrailEstate(context, options) };
}

async function start(params: Record<string, string>): Promise<string> {
  // The kind runs against the management account: the sandbox credentials' own account.
  const { workflowId } = await stack.remediations.start({ kind: 'retire-default-trails', account: MANAGEMENT, params, requestedBy: REQUESTER, idSuffix: stack.uniqueSuffix() });
  return workflowId;
}

async function awaitingApproval(workflowId: string): Promise<RemediationStatus> {
  const status = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 90_000 });
  expect(status.outcomeReason).toBeUndefined();
  expect(status.phase).toBe('awaiting-approval');
  return status;
}

/** Every seeded trail's state in AWS now (undefined: GetTrail finds it no more). */
async function trailsNow(ctx: ScenarioContext, trails: SeededTrail[]): Promise<Record<string, { logging: boolean } | undefined>> {
  const now: Record<string, { logging: boolean } | undefined> = {};
  for (const t of trails) now[`${t.account}/${t.name}`] = await trailState(ctx, t);
  return now;
}

const asSeeded = (trails: SeededTrail[]) => Object.fromEntries(trails.map((t) => [`${t.account}/${t.name}`, { logging: t.logging }]));

describe('retire-default-trails across the organization', () => {
  it('classifies every trail of the three accounts, then stops, soaks and deletes only the duplicate and broken ones, with their snapshots in the evidence', async () => {
    const { context: ctx, state } = await freshEstate();
    const [prod, dev] = state.organization.accounts.map((a) => a.id) as [string, string];
    expect(state.account).toBe(MANAGEMENT);
    const workflowId = await start({ accounts: 'all', soak: '2s', keep: 'audit-copy' });
    expect(workflowId).toContain(`retire-default-trails/${MANAGEMENT}/`);
    const { plan } = await awaitingApproval(workflowId);
    if (!plan) throw new Error('no plan');

    const arn = (account: string, name: string) => `arn:aws:cloudtrail:us-east-1:${account}:trail/${name}`;
    expect(plan.stages).toEqual([
      expect.objectContaining({ name: 'stop', concurrency: 1 }),
      expect.objectContaining({ name: 'delete', concurrency: 1, soakBefore: '2s' }),
    ]);
    expect(plan.changes.map((c) => [c.id, c.resource, c.dependsOn ?? []])).toEqual([
      [`stop-logging/${MANAGEMENT}/management-events`, arn(MANAGEMENT, 'management-events'), []],
      [`stop-logging/${MANAGEMENT}/orphaned-trail`, arn(MANAGEMENT, 'orphaned-trail'), []],
      [`stop-logging/${prod}/local-trail`, arn(prod, 'local-trail'), []],
      [`stop-logging/${dev}/local-trail`, arn(dev, 'local-trail'), []],
      [`delete-trail/${MANAGEMENT}/management-events`, arn(MANAGEMENT, 'management-events'), [`stop-logging/${MANAGEMENT}/management-events`]],
      // Never started: nothing to stop, deleted after the soak without a dependency.
      [`delete-trail/${MANAGEMENT}/stopped-trail`, arn(MANAGEMENT, 'stopped-trail'), []],
      [`delete-trail/${MANAGEMENT}/orphaned-trail`, arn(MANAGEMENT, 'orphaned-trail'), [`stop-logging/${MANAGEMENT}/orphaned-trail`]],
      [`delete-trail/${prod}/local-trail`, arn(prod, 'local-trail'), [`stop-logging/${prod}/local-trail`]],
      [`delete-trail/${dev}/local-trail`, arn(dev, 'local-trail'), [`stop-logging/${dev}/local-trail`]],
    ]);
    const why = Object.fromEntries(plan.changes.filter((c) => c.action === 'delete-trail').map((c) => [c.id, (c.before as { why: string }).why]));
    expect(why).toEqual({
      [`delete-trail/${MANAGEMENT}/management-events`]: `records read and write management events in every region, which the organization trail org-trail already records for account ${MANAGEMENT}`,
      [`delete-trail/${MANAGEMENT}/stopped-trail`]: 'not logging',
      [`delete-trail/${MANAGEMENT}/orphaned-trail`]: `its bucket countersign-retired-bucket-${MANAGEMENT} no longer exists`,
      [`delete-trail/${prod}/local-trail`]: `records read and write management events in every region, which the organization trail org-trail already records for account ${prod}`,
      [`delete-trail/${dev}/local-trail`]: `records read and write management events in every region, which the organization trail org-trail already records for account ${dev}`,
    });
    for (const c of plan.changes.filter((x) => x.action === 'delete-trail')) expect(c.summary).toMatch(/IRREVERSIBLE/);
    expect(plan.leftAlone.map((l) => [l.resource, l.reason])).toEqual([
      [arn(MANAGEMENT, 'org-trail'), 'organization-trail'],
      [arn(MANAGEMENT, 's3-data-events'), 'distinct-purpose'],
      [arn(MANAGEMENT, 'aws-controltower-BaselineCloudTrail'), 'control-tower'],
      [arn(MANAGEMENT, 'audit-copy'), 'kept-by-parameter'],
      [arn(dev, 'alarms-trail'), 'distinct-purpose'],
    ]);
    expect(plan.leftAlone.find((l) => l.resource === arn(MANAGEMENT, 's3-data-events'))?.detail).toBe('data events (AWS::S3::Object)');
    expect(plan.leftAlone.find((l) => l.resource === arn(dev, 'alarms-trail'))?.detail).toMatch(/^CloudWatch Logs delivery to arn:aws:logs:/);
    expect(plan.notes.join('\n')).toMatch(/deleting a trail is IRREVERSIBLE/);

    expect((await stack.remediations.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan.digest })).accepted).toBe(true);
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 120_000 });
    expect(final.outcomeReason).toBeUndefined();
    expect(final.outcome).toBe('completed');
    expect(final.results.map((r) => [r.changeId, r.status])).toEqual(plan.changes.map((c) => [c.id, 'applied']));
    expect(final.verification).toEqual({ ok: true, checks: expect.arrayContaining([expect.objectContaining({ changeId: 'organization-trail', ok: true })]) });

    // In AWS: the retired trails gone from their accounts, every other trail as it was.
    const now = await trailsNow(ctx, state.trails);
    for (const t of state.trails) expect([`${t.account}/${t.name}`, now[`${t.account}/${t.name}`]]).toEqual([`${t.account}/${t.name}`, t.expected === 'retired' ? undefined : { logging: t.logging }]);

    // The evidence, from history alone, holds each deleted trail's snapshot.
    const handle = stack.client.workflow.getHandle(workflowId);
    const evidence = buildEvidence(await handle.fetchHistory(), { namespace: 'default', workflowId, runId: (await handle.describe()).runId });
    const snapshots = evidence.results.filter((r) => r.snapshot !== undefined);
    expect(snapshots.map((r) => r.changeId).sort()).toEqual(plan.changes.filter((c) => c.action === 'delete-trail').map((c) => c.id).sort());
    const local = snapshots.find((r) => r.changeId === `delete-trail/${dev}/local-trail`)?.snapshot;
    expect(local).toMatchObject({
      account: dev,
      arn: arn(dev, 'local-trail'),
      homeRegion: 'us-east-1',
      isLogging: false,
      capturedBy: expect.stringMatching(`^arn:aws:sts::${dev}:assumed-role/OrganizationAccountAccessRole/countersign\\.`),
      trail: { Name: 'local-trail', S3BucketName: state.bucket, S3KeyPrefix: dev, IsMultiRegionTrail: true, IncludeGlobalServiceEvents: true, LogFileValidationEnabled: true, IsOrganizationTrail: false },
      eventSelectorKind: 'default',
      insightSelectors: [],
      tags: [{ Key: 'seeded-by', Value: 'countersign-sandbox' }],
    });

    // The demo's checks agree.
    const checks = await retireDefaultTrails.checks(ctx, state, final);
    expect(checks.lines.filter((l) => !l.startsWith('ok'))).toEqual([]);
  });

  it('a reject during the soak restarts logging on every trail the run stopped, and deletes nothing', async () => {
    const { context: ctx, state } = await freshEstate();
    const workflowId = await start({ accounts: 'all', soak: '10m', keep: 'audit-copy' });
    const { plan } = await awaitingApproval(workflowId);
    if (!plan) throw new Error('no plan');
    expect((await stack.remediations.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan.digest })).accepted).toBe(true);
    const soaking = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'soaking', { timeoutMs: 90_000 });
    expect(soaking.stage).toBe('delete');
    // Stopped, for now: the duplicates and the logging broken trail.
    const during = await trailsNow(ctx, state.trails);
    for (const t of state.trails.filter((x) => x.expected === 'retired')) expect(during[`${t.account}/${t.name}`]).toEqual({ logging: false });

    const rejected = await stack.remediations.decide(workflowId, { decision: 'reject', approver: 'sam.security', planDigest: plan.digest, comment: 'the SIEM still reads local-trail' });
    expect(rejected.accepted).toBe(true);
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 90_000 });
    expect(final.outcome).toBe('rolled-back');
    expect(final.outcomeReason).toMatch(/halted by sam.security/);
    const stops = plan.changes.filter((c) => c.action === 'stop-logging').map((c) => c.id);
    expect(final.results.filter((r) => r.status === 'rolled-back').map((r) => r.changeId).sort()).toEqual([...stops].sort());
    expect(final.results.some((r) => r.changeId.startsWith('delete-trail/'))).toBe(false);
    expect(await trailsNow(ctx, state.trails)).toEqual(asSeeded(state.trails));
  });

  it('without an organization trail the run fails with the reason, before anything is changed', async () => {
    const { context: ctx, state } = await freshEstate({ organizationTrail: false });
    const workflowId = await start({ accounts: 'all', soak: '2s' });
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 90_000 });
    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toMatch(`no healthy organization trail logs in the management account ${MANAGEMENT}`);
    expect(final.outcomeReason).toMatch(/no trail of the management account is an organization trail/);
    expect(final.outcomeReason).toMatch(/countersign start org-trail/);
    expect(final.plan).toBeUndefined();
    expect(final.results).toEqual([]);
    expect(await trailsNow(ctx, state.trails)).toEqual(asSeeded(state.trails));
  });

  it('fails the plan for an account that is not in the organization', async () => {
    const { context: ctx, state } = await freshEstate();
    const workflowId = await start({ accounts: `${state.organization.accounts[0]?.id},999999999999` });
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 90_000 });
    expect(final.outcome).toBe('failed');
    expect(final.outcomeReason).toMatch(`account 999999999999 is not in organization ${state.organization.organizationId}`);
    expect(final.plan).toBeUndefined();
    expect(await trailsNow(ctx, state.trails)).toEqual(asSeeded(state.trails));
  });
});
