/**
 * permission-boundary: the selection, skip and wave rules as pure functions, the built-in boundary's
 * document, and — against aws-sdk-client-mock IAM and STS clients — the activities.
 *
 * Why mocks and not moto here (docs/aws.md §9, §10 #2): moto does not implement
 * PutUserPermissionsBoundary or DeleteUserPermissionsBoundary (HTTP 500), drops a boundary given to
 * CreateUser and never shows one in GetUser, so nothing about users' boundaries — setting, restoring,
 * deleting, drift — can be shown against it. It also accepts PutRolePermissionsBoundary on a
 * service-linked role, where AWS answers UnmodifiableEntityException. Roles are exercised against
 * moto in test/integration/permission-boundary.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreatePolicyCommand,
  DeletePolicyCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteUserPermissionsBoundaryCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetUserCommand,
  IAMClient,
  ListEntitiesForPolicyCommand,
  ListPolicyTagsCommand,
  ListRolesCommand,
  ListUsersCommand,
  NoSuchEntityException,
  PutRolePermissionsBoundaryCommand,
  PutUserPermissionsBoundaryCommand,
  UnmodifiableEntityException,
} from '@aws-sdk/client-iam';
import type { Role, User } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Logger } from '@temporalio/common';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { createActivities } from '../../activities';
import { AwsClients, awsSettingsFromEnv } from '../../activities/aws/clients';
import { classifyAwsError } from '../../activities/aws/errors';
import type { LivePrincipal, PrincipalBoundaryState } from '../../activities/iam/boundary-rules';
import { applyVerdict, matchingSelector, rollbackVerdict, setBoundaryChange, skipBeforeRead, stableOrder, wavesOf } from '../../activities/iam/boundary-rules';
import { CREATED_BY_TAG, createPermissionBoundaryActivities } from '../../activities/permission-boundary';
import { BUILTIN_BOUNDARIES, BUILTIN_BOUNDARY_NAMES, builtinBoundaryArn } from '../../common/boundaries';
import type { KindParams } from '../../common/kinds';
import { ParamError, resolveKindParams } from '../../common/kinds';
import type { Change, ChangeResult, KindPlan } from '../../common/plan';
import { BUILT_IN_PROTECTED_PRINCIPALS } from '../../common/policy';
import type { EffectivePolicy } from '../../common/policy';
import type { ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../../common/requests';

const ACCOUNT = '111111111111';
const WORKER = `arn:aws:iam::${ACCOUNT}:role/countersign-worker`;
const WORKFLOW = `permission-boundary/${ACCOUNT}`;
const BUILTIN = 'builtin:countersign-workload-boundary';
const BUILTIN_ARN = `arn:aws:iam::${ACCOUNT}:policy/countersign/countersign-workload-boundary`;
const OLD = `arn:aws:iam::${ACCOUNT}:policy/legacy-boundary`;
const READ_ONLY = 'arn:aws:iam::aws:policy/ReadOnlyAccess';
const PROTECTED = [...BUILT_IN_PROTECTED_PRINCIPALS, `arn:aws:iam::*:role/ci-*`, WORKER];

const arnOf = (type: 'user' | 'role', name: string, path = '/') => `arn:aws:iam::${ACCOUNT}:${type}${path}${name}`;
const listed = (type: 'user' | 'role', name: string, path = '/') => ({ type, name, path, arn: arnOf(type, name, path), id: `${type === 'user' ? 'AIDA' : 'AROA'}${name.toUpperCase()}` });
const stateOf = (type: 'user' | 'role', name: string, boundaryArn: string | null, path = '/'): PrincipalBoundaryState => ({
  ...listed(type, name, path),
  boundaryArn,
  boundaryVersionId: boundaryArn ? 'v1' : null,
});
const liveOf = (state: PrincipalBoundaryState, over: Partial<LivePrincipal> = {}): LivePrincipal => ({
  type: state.type,
  name: state.name,
  path: state.path,
  arn: state.arn,
  id: state.id,
  boundaryArn: state.boundaryArn,
  ...over,
});

describe('the built-in boundary', () => {
  const ctx = { partition: 'aws', account: ACCOUNT };
  const doc = BUILTIN_BOUNDARIES['countersign-workload-boundary']!.document(ctx) as { Statement: { Sid: string; Effect: string; Action?: string | string[]; Resource?: string; Condition?: unknown }[] };
  const sid = (s: string) => doc.Statement.find((x) => x.Sid === s);

  it('is accepted by the catalogue by exactly its name, and an unknown built-in is refused at the edge', () => {
    for (const name of BUILTIN_BOUNDARY_NAMES) expect(resolveKindParams('permission-boundary', { boundary: `builtin:${name}`, roles: '*' }).boundary).toBe(`builtin:${name}`);
    expect(() => resolveKindParams('permission-boundary', { boundary: 'builtin:admin-ish', roles: '*' })).toThrow(ParamError);
    const typed: KindParams<'permission-boundary'> = resolveKindParams('permission-boundary', { boundary: READ_ONLY, users: '/contractors/,alice', roles: '*' });
    expect(typed).toEqual({ boundary: READ_ONLY, users: ['/contractors/', 'alice'], roles: ['*'], batch: 25, soak: '1d' });
  });

  it('fits a managed policy (6,144 characters without whitespace) and lives under /countersign/ in the account', () => {
    expect(JSON.stringify(doc).replace(/\s/g, '').length).toBeLessThanOrEqual(6_144);
    expect(builtinBoundaryArn('countersign-workload-boundary', ctx)).toBe(BUILTIN_ARN);
    expect(builtinBoundaryArn('countersign-workload-boundary', { partition: 'aws-us-gov', account: ACCOUNT })).toMatch(/^arn:aws-us-gov:iam::/);
  });

  it('is the document docs/kinds/permission-boundary.md shows', () => {
    const text = readFileSync(path.join(__dirname, '..', '..', 'docs', 'kinds', 'permission-boundary.md'), 'utf8');
    const shown = /```json\n([\s\S]*?)\n```/.exec(text)?.[1];
    expect(JSON.parse(shown ?? 'null')).toEqual(BUILTIN_BOUNDARIES['countersign-workload-boundary']!.document({ partition: 'aws', account: '<account>' }));
  });

  it('allows what identity policies grant and denies escalation, boundary removal, Organizations and audit tampering', () => {
    expect(sid('AllowWhatIdentityPoliciesGrant')).toMatchObject({ Effect: 'Allow', Action: '*', Resource: '*' });
    expect(sid('DenyPrincipalsWithoutThisBoundary')).toMatchObject({ Effect: 'Deny', Condition: { StringNotEquals: { 'iam:PermissionsBoundary': BUILTIN_ARN } } });
    expect(sid('DenyPrincipalsWithoutThisBoundary')?.Action).toEqual(expect.arrayContaining(['iam:CreateRole', 'iam:CreateUser', 'iam:PutRolePermissionsBoundary', 'iam:AttachRolePolicy', 'iam:PutUserPolicy']));
    expect(sid('DenyIamEscalation')?.Action).toEqual(expect.arrayContaining(['iam:DeleteUserPermissionsBoundary', 'iam:DeleteRolePermissionsBoundary', 'iam:CreatePolicyVersion', 'iam:AddUserToGroup', 'iam:UpdateAssumeRolePolicy']));
    expect(sid('ProtectThisBoundary')).toMatchObject({ Effect: 'Deny', Resource: BUILTIN_ARN });
    expect(sid('DenyOrganizations')).toMatchObject({ Effect: 'Deny', Action: 'organizations:*' });
    expect(sid('DenyCloudTrailTampering')?.Action).toEqual(expect.arrayContaining(['cloudtrail:StopLogging', 'cloudtrail:DeleteTrail']));
    expect(sid('DenyConfigTampering')?.Action).toEqual(expect.arrayContaining(['config:StopConfigurationRecorder', 'config:DeleteDeliveryChannel']));
    expect(sid('DenyGuardDutyTampering')?.Action).toEqual(expect.arrayContaining(['guardduty:DeleteDetector', 'guardduty:CreateIPSet']));
    expect(doc.Statement.filter((s) => s.Effect === 'Allow')).toHaveLength(1);
  });
});

describe('selection and skip rules', () => {
  it('selects by *, by name ignoring case, and by path prefix', () => {
    const p = { name: 'Deploy-Bot', path: '/teams/data/' };
    expect(matchingSelector(['*'], p)).toBe('*');
    expect(matchingSelector(['deploy-bot'], p)).toBe('deploy-bot');
    expect(matchingSelector(['/teams/'], p)).toBe('/teams/');
    expect(matchingSelector(['/teams/data/'], p)).toBe('/teams/data/');
    expect(matchingSelector(['/teams/ops/', 'other', '/team/'], p)).toBeUndefined();
    expect(matchingSelector([], p)).toBeUndefined();
  });

  const context = { selfPrincipals: [WORKER, `arn:aws:iam::${ACCOUNT}:role/OrganizationAccountAccessRole`], protectedPrincipals: PROTECTED };

  it.each([
    [listed('role', 'AWSServiceRoleForAutoScaling', '/aws-service-role/autoscaling.amazonaws.com/'), 'service-linked'],
    [listed('role', 'AWSReservedSSO_Admin_0123456789abcdef', '/aws-reserved/sso.amazonaws.com/'), 'identity-center'],
    [listed('role', 'AWSControlTowerExecution'), 'control-tower'],
    [listed('role', 'aws-controltower-AdministratorExecutionRole', '/service-role/'), 'control-tower'],
    [listed('role', 'countersign-worker'), 'own-principal'],
    [listed('role', 'OrganizationAccountAccessRole'), 'own-principal'],
    [listed('role', 'ci-deployer', '/pipelines/'), 'protected'],
    [listed('role', 'break-glass-admin'), 'protected'],
    [listed('user', 'break-glass-1', '/emergency/'), 'protected'],
  ])('leaves %o alone as %s', (principal, reason) => {
    expect(skipBeforeRead(principal, context)).toMatchObject({ reason, detail: expect.any(String) });
  });

  it('selects ordinary users and roles, including a user whose path merely looks reserved', () => {
    expect(skipBeforeRead(listed('role', 'app-web', '/apps/'), context)).toBeUndefined();
    expect(skipBeforeRead(listed('user', 'alice'), context)).toBeUndefined();
    expect(skipBeforeRead(listed('user', 'AWSControlTowerFan'), context)).toBeUndefined();
  });

  it('orders users before roles, by name, and cuts waves of `batch` with a soak before every wave after the first', () => {
    const order = stableOrder([listed('role', 'b'), listed('user', 'Zed'), listed('role', 'A'), listed('user', 'amy')]).map((p) => `${p.type}/${p.name}`);
    expect(order).toEqual(['user/amy', 'user/Zed', 'role/A', 'role/b']);
    const waves = wavesOf(['a', 'b', 'c', 'd', 'e'], 2, '2s');
    expect(waves.map((w) => w.items)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(waves.map((w) => w.stage)).toEqual([
      { name: 'wave-1', description: expect.any(String), concurrency: 2 },
      { name: 'wave-2', description: expect.any(String), soakBefore: '2s', concurrency: 2 },
      { name: 'wave-3', description: expect.any(String), soakBefore: '2s', concurrency: 1 },
    ]);
    expect(wavesOf(Array.from({ length: 30 }, (_, i) => i), 25, '1d').map((w) => [w.items.length, w.stage.concurrency])).toEqual([[25, 4], [5, 4]]);
    expect(wavesOf([], 25, '1d')).toEqual([]);
  });

  it('builds a reversible, non-destructive change naming the principal ARN, its previous boundary and the promised one', () => {
    const c = setBoundaryChange(stateOf('role', 'app', OLD), BUILTIN_ARN, 'wave-1', ['create-boundary/countersign-workload-boundary']);
    expect(c).toMatchObject({
      id: 'set-boundary/role/app',
      action: 'set-boundary',
      resource: arnOf('role', 'app'),
      reversible: true,
      destructive: false,
      before: { boundaryArn: OLD, boundaryVersionId: 'v1', id: 'AROAAPP' },
      after: { boundaryArn: BUILTIN_ARN },
      dependsOn: ['create-boundary/countersign-workload-boundary'],
    });
    expect(c.summary).toContain(`replacing ${OLD}`);
  });
});

describe('re-check before a put, and rollback decisions', () => {
  const none = stateOf('user', 'alice', null);
  const old = stateOf('user', 'bob', OLD);

  it('puts only on the approved state, reports a boundary already in place as done, and refuses drift', () => {
    expect(applyVerdict(none, liveOf(none), BUILTIN_ARN)).toEqual({ action: 'put' });
    expect(applyVerdict(old, liveOf(old), BUILTIN_ARN)).toEqual({ action: 'put' });
    expect(applyVerdict(none, liveOf(none, { boundaryArn: BUILTIN_ARN }), BUILTIN_ARN)).toMatchObject({ action: 'already-done' });
    expect(applyVerdict(none, liveOf(none, { boundaryArn: READ_ONLY }), BUILTIN_ARN)).toMatchObject({ action: 'left-alone', detail: expect.stringContaining(`approved none, now ${READ_ONLY}`) });
    expect(applyVerdict(old, liveOf(old, { boundaryArn: null }), BUILTIN_ARN)).toMatchObject({ action: 'left-alone', detail: expect.stringContaining('changed since the plan') });
    expect(applyVerdict(none, liveOf(none, { id: 'AIDANEW' }), BUILTIN_ARN)).toMatchObject({ action: 'left-alone', detail: expect.stringContaining('recreated') });
    expect(applyVerdict(none, null, BUILTIN_ARN)).toMatchObject({ action: 'left-alone', detail: expect.stringContaining('no longer exists') });
  });

  it('restores the previous boundary, deletes one the run added, and keeps one changed since', () => {
    expect(rollbackVerdict(old, liveOf(old, { boundaryArn: BUILTIN_ARN }), BUILTIN_ARN)).toEqual({ action: 'restore', boundaryArn: OLD });
    expect(rollbackVerdict(none, liveOf(none, { boundaryArn: BUILTIN_ARN }), BUILTIN_ARN)).toEqual({ action: 'delete' });
    expect(rollbackVerdict(old, liveOf(old), BUILTIN_ARN)).toMatchObject({ action: 'already-done' });
    expect(rollbackVerdict(none, liveOf(none, { boundaryArn: READ_ONLY }), BUILTIN_ARN)).toMatchObject({ action: 'left-alone', detail: expect.stringContaining('changed again') });
    expect(rollbackVerdict(none, liveOf(none, { id: 'AIDANEW', boundaryArn: BUILTIN_ARN }), BUILTIN_ARN)).toMatchObject({ action: 'left-alone' });
    expect(rollbackVerdict(none, null, BUILTIN_ARN)).toMatchObject({ action: 'already-done' });
  });
});

// --- activities against mocked AWS ---

const iam = mockClient(IAMClient);
const sts = mockClient(STSClient);
const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** Run an activity as the worker does: in an activity context (attempt number, heartbeats, logger). */
const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A, attempt = 1): Promise<R> => new MockActivityEnvironment({ attempt }, { logger: quiet }).run(fn, arg);

let aws: AwsClients;
function settings(emulator?: 'moto') {
  aws?.destroy();
  // Under moto, the settings come from the environment exactly as the worker reads it.
  aws = new AwsClients(
    emulator
      ? awsSettingsFromEnv({ COUNTERSIGN_AWS_EMULATOR: emulator, AWS_REGION: 'us-east-1' })
      : { region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' },
  );
  return aws;
}
const activitiesFor = (emulator?: 'moto') => createPermissionBoundaryActivities({ aws: settings(emulator), now: () => new Date('2026-01-01T00:00:00Z') });
/** The activities as the worker registers them: engine guards, heartbeats, error classification. */
const registeredFor = (emulator?: 'moto') => createActivities({ aws: settings(emulator) });
afterAll(() => aws?.destroy());

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode, requestId: 'req-1', attempts: 1 } });
const noSuchEntity = (what: string) => new NoSuchEntityException({ message: `${what} not found`, ...meta(404) });

type Params = KindParams<'permission-boundary'>;
function planRequest(params: Partial<Params> = {}): PlanRequest<Params> {
  return {
    role: 'plan',
    kind: 'permission-boundary',
    workflowId: WORKFLOW,
    account: ACCOUNT,
    region: 'us-east-1',
    params: { boundary: BUILTIN, users: [], roles: [], batch: 2, soak: '2s', ...params },
    requestedBy: 'riley.operator',
    policy: { kind: 'permission-boundary', source: 'test', approvers: ['dana'], quorum: 1, approvalTimeout: '1h', protectedPrincipals: PROTECTED, maxChanges: 200 } satisfies EffectivePolicy,
    target: { account: ACCOUNT, region: 'us-east-1', workerArn: WORKER, actingArn: WORKER, selfPrincipals: [WORKER] },
    protectedPrincipals: PROTECTED,
  };
}
const changeRequest = (change: Change): ChangeRequest => ({ role: 'apply', workflowId: WORKFLOW, account: ACCOUNT, region: 'us-east-1', change, protectedPrincipals: PROTECTED });
const rollbackRequest = (change: Change, observed?: ChangeResult['observed']): RollbackRequest => ({
  role: 'rollback',
  workflowId: WORKFLOW,
  account: ACCOUNT,
  region: 'us-east-1',
  change,
  result: { changeId: change.id, status: 'applied', at: '2026-01-01T00:00:00Z', ...(observed !== undefined ? { observed } : {}) },
  protectedPrincipals: PROTECTED,
});

const userOf = (s: PrincipalBoundaryState, boundaryArn: string | null = s.boundaryArn): User => ({
  UserName: s.name,
  UserId: s.id,
  Arn: s.arn,
  Path: s.path,
  CreateDate: new Date('2025-01-01T00:00:00Z'),
  ...(boundaryArn ? { PermissionsBoundary: { PermissionsBoundaryType: 'PermissionsBoundaryPolicy', PermissionsBoundaryArn: boundaryArn } } : {}),
});
const roleOf = (s: PrincipalBoundaryState, boundaryArn: string | null = s.boundaryArn): Role => ({
  RoleName: s.name,
  RoleId: s.id,
  Arn: s.arn,
  Path: s.path,
  CreateDate: new Date('2025-01-01T00:00:00Z'),
  ...(boundaryArn ? { PermissionsBoundary: { PermissionsBoundaryType: 'PermissionsBoundaryPolicy', PermissionsBoundaryArn: boundaryArn } } : {}),
});

beforeEach(() => {
  iam.reset();
  sts.reset();
  sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/countersign-worker/i-0abc`, UserId: 'AROA:i-0abc' });
});

describe('planning', () => {
  const alice = stateOf('user', 'alice', null);
  const bob = stateOf('user', 'bob', OLD, '/contractors/');
  const carol = stateOf('user', 'carol', BUILTIN_ARN);
  const web = stateOf('role', 'app-web', null, '/apps/');
  const slr = stateOf('role', 'AWSServiceRoleForAutoScaling', null, '/aws-service-role/autoscaling.amazonaws.com/');
  const sso = stateOf('role', 'AWSReservedSSO_Admin_0123', null, '/aws-reserved/sso.amazonaws.com/');
  const ct = stateOf('role', 'AWSControlTowerExecution', null);
  const worker = stateOf('role', 'countersign-worker', null);
  const ci = stateOf('role', 'ci-deployer', null);

  function estate(): void {
    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).rejects(noSuchEntity('Policy'));
    iam.on(GetPolicyCommand, { PolicyArn: OLD }).resolves({ Policy: { Arn: OLD, DefaultVersionId: 'v3', AttachmentCount: 0 } });
    // Two pages, as AWS pages ListUsers (moto never truncates: the pagination is only testable here).
    iam.on(ListUsersCommand).resolvesOnce({ Users: [userOf(alice, null), userOf(bob, null)], IsTruncated: true, Marker: 'm1' }).resolves({ Users: [userOf(carol, null)], IsTruncated: false });
    iam.on(ListRolesCommand).resolves({ Roles: [roleOf(web, null), roleOf(slr), roleOf(sso), roleOf(ct), roleOf(worker), roleOf(ci)] });
    for (const u of [alice, bob, carol]) iam.on(GetUserCommand, { UserName: u.name }).resolves({ User: userOf(u) });
    iam.on(GetRoleCommand, { RoleName: web.name }).resolves({ Role: roleOf(web) });
  }

  it('plans the built-in boundary first, then waves of the selected principals; lists every skip with its reason', async () => {
    estate();
    const plan: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ users: ['*'], roles: ['*'] }));
    // Both pages were read (the SDK's paginator reuses one input object, so only the last Marker shows).
    expect(iam.commandCalls(ListUsersCommand)).toHaveLength(2);
    expect(iam.commandCalls(ListUsersCommand)[1]?.args[0].input.Marker).toBe('m1');
    expect(plan.stages.map((s) => [s.name, s.soakBefore])).toEqual([
      ['boundary', undefined],
      ['wave-1', undefined],
      ['wave-2', '2s'],
    ]);
    expect(plan.changes.map((c) => [c.id, c.stage])).toEqual([
      ['create-boundary/countersign-workload-boundary', 'boundary'],
      ['set-boundary/user/alice', 'wave-1'],
      ['set-boundary/user/bob', 'wave-1'],
      ['set-boundary/role/app-web', 'wave-2'],
    ]);
    const create = plan.changes[0] as Change;
    expect(create).toMatchObject({ resource: BUILTIN_ARN, reversible: true, destructive: false, before: { exists: false }, after: { name: 'countersign-workload-boundary', path: '/countersign/', arn: BUILTIN_ARN } });
    expect(create.after).toMatchObject({ document: BUILTIN_BOUNDARIES['countersign-workload-boundary']!.document({ partition: 'aws', account: ACCOUNT }) });
    for (const c of plan.changes.slice(1)) expect(c.dependsOn).toEqual([create.id]);
    expect(plan.changes.find((c) => c.id === 'set-boundary/user/bob')).toMatchObject({ before: { boundaryArn: OLD, boundaryVersionId: 'v3', path: '/contractors/' }, after: { boundaryArn: BUILTIN_ARN } });
    // Skipped by rule first (in stable order), then those found already compliant when read.
    expect(plan.leftAlone.map((l) => [l.resource, l.reason])).toEqual([
      [ct.arn, 'control-tower'],
      [sso.arn, 'identity-center'],
      [slr.arn, 'service-linked'],
      [ci.arn, 'protected'],
      [worker.arn, 'own-principal'],
      [carol.arn, 'already-compliant'],
    ]);
    // Only the candidates' boundaries are read: nobody skipped by path or name costs a GetRole.
    expect(iam.commandCalls(GetRoleCommand).map((c) => c.args[0].input.RoleName)).toEqual(['app-web']);
  });

  it('selects by name and path prefix, says which selectors matched nothing, and plans nothing when all are compliant', async () => {
    estate();
    const plan: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ users: ['/contractors/', 'nobody'], roles: ['APP-WEB'], batch: 25 }));
    expect(plan.changes.map((c) => c.id)).toEqual(['create-boundary/countersign-workload-boundary', 'set-boundary/user/bob', 'set-boundary/role/app-web']);
    expect(plan.stages.map((s) => s.name)).toEqual(['boundary', 'wave-1']);
    expect(plan.notes).toEqual(expect.arrayContaining(['selectors that matched nothing: nobody', expect.stringMatching(/^1 user\(s\) and 1 role\(s\) selected/)]));

    iam.reset();
    estate();
    const none: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ users: ['carol'] }));
    expect(none.changes).toEqual([]);
    expect(none.stages).toEqual([]);
    expect(none.leftAlone).toEqual([{ resource: carol.arn, reason: 'already-compliant', detail: expect.any(String) }]);
  });

  it('uses an existing built-in with the same document, and refuses one whose document differs', async () => {
    estate();
    const document = BUILTIN_BOUNDARIES['countersign-workload-boundary']!.document({ partition: 'aws', account: ACCOUNT });
    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).resolves({ Policy: { Arn: BUILTIN_ARN, DefaultVersionId: 'v1' } });
    // AWS returns documents URL-encoded (docs/aws.md §4).
    iam.on(GetPolicyVersionCommand, { PolicyArn: BUILTIN_ARN }).resolves({ PolicyVersion: { Document: encodeURIComponent(JSON.stringify(document, null, 2)), VersionId: 'v1' } });
    const plan: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ users: ['alice'] }));
    expect(plan.changes.map((c) => [c.id, c.dependsOn])).toEqual([['set-boundary/user/alice', undefined]]);
    expect(plan.stages.map((s) => s.name)).toEqual(['wave-1']);

    iam.on(GetPolicyVersionCommand, { PolicyArn: BUILTIN_ARN }).resolves({ PolicyVersion: { Document: encodeURIComponent(JSON.stringify({ Version: '2012-10-17', Statement: [] })), VersionId: 'v1' } });
    await expect(run(activitiesFor().planPermissionBoundaries, planRequest({ users: ['alice'] }))).rejects.toMatchObject({ type: 'BoundaryDiffers', nonRetryable: true });
  });

  it('refuses a boundary policy that does not exist or belongs to another account, and a run selecting nobody', async () => {
    estate();
    iam.on(GetPolicyCommand, { PolicyArn: `arn:aws:iam::${ACCOUNT}:policy/missing` }).rejects(noSuchEntity('Policy'));
    await expect(run(activitiesFor().planPermissionBoundaries, planRequest({ boundary: `arn:aws:iam::${ACCOUNT}:policy/missing`, users: ['*'] }))).rejects.toMatchObject({ type: 'BoundaryNotFound', nonRetryable: true });
    await expect(run(activitiesFor().planPermissionBoundaries, planRequest({ boundary: 'arn:aws:iam::222222222222:policy/theirs', users: ['*'] }))).rejects.toMatchObject({ type: 'BoundaryInOtherAccount' });
    await expect(run(activitiesFor().planPermissionBoundaries, planRequest({ boundary: 'builtin:nope', users: ['*'] }))).rejects.toMatchObject({ type: 'UnknownBuiltinBoundary' });
    await expect(run(activitiesFor().planPermissionBoundaries, planRequest({ users: [], roles: [] }))).rejects.toMatchObject({ type: 'InvalidParameters', nonRetryable: true });
  });

  it('uses an existing policy ARN as it stands, with no creation stage', async () => {
    estate();
    iam.on(GetPolicyCommand, { PolicyArn: READ_ONLY }).resolves({ Policy: { Arn: READ_ONLY, DefaultVersionId: 'v182', IsAttachable: true } });
    const plan: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ boundary: READ_ONLY, users: ['alice', 'bob'], batch: 1 }));
    expect(plan.changes.map((c) => [c.id, c.stage, (c.after as { boundaryArn: string }).boundaryArn])).toEqual([
      ['set-boundary/user/alice', 'wave-1', READ_ONLY],
      ['set-boundary/user/bob', 'wave-2', READ_ONLY],
    ]);
    expect(plan.notes).toEqual(expect.arrayContaining([expect.stringContaining(`${READ_ONLY}, default version v182`)]));
  });
});

describe("users' boundaries (moto has no PutUserPermissionsBoundary or DeleteUserPermissionsBoundary)", () => {
  const alice = stateOf('user', 'alice', null);
  const bob = stateOf('user', 'bob', OLD);
  const setAlice = setBoundaryChange(alice, BUILTIN_ARN, 'wave-1', []);
  const setBob = setBoundaryChange(bob, BUILTIN_ARN, 'wave-1', []);
  const OLD_DOC = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] };

  it('records the previous boundary and its document, puts the new one and reads it back', async () => {
    iam.on(GetUserCommand, { UserName: 'bob' }).resolvesOnce({ User: userOf(bob) }).resolves({ User: userOf(bob, BUILTIN_ARN) });
    iam.on(GetPolicyCommand, { PolicyArn: OLD }).resolves({ Policy: { Arn: OLD, DefaultVersionId: 'v3' } });
    iam.on(GetPolicyVersionCommand, { PolicyArn: OLD, VersionId: 'v3' }).resolves({ PolicyVersion: { Document: encodeURIComponent(JSON.stringify(OLD_DOC)), VersionId: 'v3' } });
    iam.on(PutUserPermissionsBoundaryCommand).resolves({});
    const outcome = await run(activitiesFor().setPermissionsBoundary, changeRequest(setBob));
    expect(outcome).toMatchObject({ status: 'applied', observed: { boundaryArn: BUILTIN_ARN, previousBoundary: { arn: OLD, defaultVersionId: 'v3', document: OLD_DOC } } });
    expect(iam.commandCalls(PutUserPermissionsBoundaryCommand).map((c) => c.args[0].input)).toEqual([{ UserName: 'bob', PermissionsBoundary: BUILTIN_ARN }]);
  });

  it('reports a boundary already in place as done without a put (a retry after a lost completion)', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice, BUILTIN_ARN) });
    const outcome = await run(activitiesFor().setPermissionsBoundary, changeRequest(setAlice));
    expect(outcome).toMatchObject({ status: 'already-done', observed: { previousBoundary: null } });
    expect(iam.commandCalls(PutUserPermissionsBoundaryCommand)).toHaveLength(0);
  });

  it('leaves a principal whose boundary changed since the plan alone, changing nothing (fail closed)', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice, READ_ONLY) });
    const outcome = await run(activitiesFor().setPermissionsBoundary, changeRequest(setAlice));
    expect(outcome).toEqual({ status: 'left-alone', detail: expect.stringContaining(`approved none, now ${READ_ONLY}`) });
    expect(iam.commandCalls(PutUserPermissionsBoundaryCommand)).toHaveLength(0);
  });

  it('refuses a user moved since the plan onto a protected path, before any put', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: { ...userOf(alice), Path: '/x/', Arn: `arn:aws:iam::${ACCOUNT}:user/x/break-glass-alice` } });
    await expect(run(activitiesFor().setPermissionsBoundary, changeRequest(setAlice))).rejects.toMatchObject({ type: 'ProtectedPrincipal', nonRetryable: true });
  });

  it('retries when the new boundary does not read back yet (IAM is eventually consistent)', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice) });
    iam.on(PutUserPermissionsBoundaryCommand).resolves({});
    await expect(run(activitiesFor().setPermissionsBoundary, changeRequest(setAlice))).rejects.toMatchObject({ type: 'BoundaryNotVisibleYet', nonRetryable: false });
  });

  it('rollback puts the previous boundary back', async () => {
    iam.on(GetUserCommand, { UserName: 'bob' }).resolvesOnce({ User: userOf(bob, BUILTIN_ARN) }).resolves({ User: userOf(bob, OLD) });
    iam.on(PutUserPermissionsBoundaryCommand).resolves({});
    const outcome = await run(activitiesFor().restorePermissionsBoundary, rollbackRequest(setBob));
    expect(outcome).toMatchObject({ status: 'applied', detail: `restored the previous boundary ${OLD}` });
    expect(iam.commandCalls(PutUserPermissionsBoundaryCommand).map((c) => c.args[0].input)).toEqual([{ UserName: 'bob', PermissionsBoundary: OLD }]);
    expect(iam.commandCalls(DeleteUserPermissionsBoundaryCommand)).toHaveLength(0);
  });

  it('rollback deletes the boundary the run added when there was none', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolvesOnce({ User: userOf(alice, BUILTIN_ARN) }).resolves({ User: userOf(alice, null) });
    iam.on(DeleteUserPermissionsBoundaryCommand).resolves({});
    const outcome = await run(activitiesFor().restorePermissionsBoundary, rollbackRequest(setAlice));
    expect(outcome).toMatchObject({ status: 'applied', detail: expect.stringContaining('has none, as before') });
    expect(iam.commandCalls(DeleteUserPermissionsBoundaryCommand).map((c) => c.args[0].input)).toEqual([{ UserName: 'alice' }]);
    expect(iam.commandCalls(PutUserPermissionsBoundaryCommand)).toHaveLength(0);
  });

  it('rollback keeps a boundary someone changed after the run set it, and a previous boundary deleted since cannot be put back', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice, READ_ONLY) });
    expect(await run(activitiesFor().restorePermissionsBoundary, rollbackRequest(setAlice))).toMatchObject({ status: 'left-alone', detail: expect.stringContaining('changed again') });
    expect(iam.commandCalls(DeleteUserPermissionsBoundaryCommand)).toHaveLength(0);

    iam.on(GetUserCommand, { UserName: 'bob' }).resolves({ User: userOf(bob, BUILTIN_ARN) });
    iam.on(PutUserPermissionsBoundaryCommand).rejects(noSuchEntity('Policy'));
    await expect(run(activitiesFor().restorePermissionsBoundary, rollbackRequest(setBob))).rejects.toMatchObject({ type: 'PreviousBoundaryMissing', nonRetryable: true });
  });

  it('verifies each applied change by reading the principal back', async () => {
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice, BUILTIN_ARN) });
    iam.on(GetUserCommand, { UserName: 'bob' }).resolves({ User: userOf(bob, OLD) });
    const applied = (change: Change) => ({ change, result: { changeId: change.id, status: 'applied' as const, at: '2026-01-01T00:00:00Z' } });
    const request: VerifyRequest = { role: 'verify', workflowId: WORKFLOW, account: ACCOUNT, region: 'us-east-1', applied: [applied(setAlice), applied(setBob)] };
    const result = await run(activitiesFor().verifyPermissionBoundaries, request);
    expect(result.ok).toBe(false);
    expect(result.checks.map((c) => [c.changeId, c.ok])).toEqual([
      ['set-boundary/user/alice', true],
      ['set-boundary/user/bob', false],
    ]);
  });
});

describe('errors that must not be retried', () => {
  const slr = stateOf('role', 'AWSServiceRoleForSupport', null, '/aws-service-role/support.amazonaws.com/');
  const web = stateOf('role', 'app-web', null);
  const alice = stateOf('user', 'alice', null);

  it('maps UnmodifiableEntityException to a non-retryable failure naming the principal (moto accepts the put)', async () => {
    // A plan from before the path rule, or a role AWS protects that the rules miss: AWS refuses it.
    const change = setBoundaryChange(web, BUILTIN_ARN, 'wave-1', []);
    iam.on(GetRoleCommand, { RoleName: 'app-web' }).resolves({ Role: roleOf(web) });
    iam.on(PutRolePermissionsBoundaryCommand).rejects(new UnmodifiableEntityException({ message: 'Cannot perform the operation on the protected role', ...meta(400) }));
    const err = await registeredFor().setPermissionsBoundary(changeRequest(change)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'AWS.UnmodifiableEntityException', nonRetryable: true, message: expect.stringContaining(`only AWS may modify this role`) });
    expect((err as ApplicationFailure).message).toContain(web.arn);
  });

  it('refuses, before any AWS call, a change on a service-linked role that reached apply anyway (engine guard)', async () => {
    const change = setBoundaryChange(slr, BUILTIN_ARN, 'wave-1', []);
    await expect(registeredFor().setPermissionsBoundary(changeRequest(change))).rejects.toMatchObject({ type: 'ProtectedPrincipal', nonRetryable: true });
    expect(iam.commandCalls(GetRoleCommand)).toHaveLength(0);
  });

  it('fails at once, unretried, when the emulator does not implement the user boundary calls (docs/aws.md §9)', async () => {
    // What the SDK makes of moto's HTML 500 for PutUserPermissionsBoundary (observed against moto 5.2.1).
    const html500 = () =>
      Object.assign(new Error('@aws-sdk XML parse error: mismatched tags <html> and </title>.\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.'), meta(500));
    expect(awsSettingsFromEnv({ COUNTERSIGN_AWS_EMULATOR: 'moto' })).toMatchObject({ emulator: 'moto', maxAttempts: 1 });
    expect(classifyAwsError(html500(), { emulator: 'moto' })).toMatchObject({ category: 'unimplemented', retryable: false });
    expect(classifyAwsError(html500())).toMatchObject({ category: 'transient', retryable: true });

    const change = setBoundaryChange(alice, BUILTIN_ARN, 'wave-1', []);
    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice) });
    iam.on(PutUserPermissionsBoundaryCommand).rejects(html500());
    const underMoto = await registeredFor('moto').setPermissionsBoundary(changeRequest(change)).catch((e: unknown) => e);
    expect(underMoto).toMatchObject({ type: 'AWS.NotImplemented', nonRetryable: true, message: expect.stringContaining('PutUserPermissionsBoundary is not implemented by the moto emulator') });
    // Against AWS the same answer is a transient fault: retried by Temporal.
    const onAws = await registeredFor().setPermissionsBoundary(changeRequest(change)).catch((e: unknown) => e);
    expect(onAws).toMatchObject({ type: 'AWS.Error', nonRetryable: false });

    iam.on(GetUserCommand, { UserName: 'alice' }).resolves({ User: userOf(alice, BUILTIN_ARN) });
    iam.on(DeleteUserPermissionsBoundaryCommand).rejects(html500());
    await expect(registeredFor('moto').restorePermissionsBoundary(rollbackRequest(change))).rejects.toMatchObject({ type: 'AWS.NotImplemented', nonRetryable: true, message: expect.stringContaining('DeleteUserPermissionsBoundary') });
  });

  it('retries "no such policy" for a boundary this run just created while IAM propagates it, then reports it for good', async () => {
    const change = setBoundaryChange(web, BUILTIN_ARN, 'wave-1', ['create-boundary/countersign-workload-boundary']);
    iam.on(GetRoleCommand, { RoleName: 'app-web' }).resolves({ Role: roleOf(web) });
    iam.on(PutRolePermissionsBoundaryCommand).rejects(noSuchEntity('Policy'));
    const activities = activitiesFor();
    await expect(run(activities.setPermissionsBoundary, changeRequest(change), 1)).rejects.toMatchObject({ type: 'BoundaryNotFound', nonRetryable: false });
    await expect(run(activities.setPermissionsBoundary, changeRequest(change), 3)).rejects.toMatchObject({ type: 'BoundaryNotFound', nonRetryable: true });
  });
});

describe('the built-in boundary policy: created when missing, deleted on rollback only if this run made it and nothing uses it', () => {
  async function plannedCreate(): Promise<Change> {
    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).rejects(noSuchEntity('Policy'));
    const web = stateOf('role', 'app-web', null);
    iam.on(ListRolesCommand).resolves({ Roles: [roleOf(web)] });
    iam.on(GetRoleCommand).resolves({ Role: roleOf(web) });
    const plan: KindPlan = await run(activitiesFor().planPermissionBoundaries, planRequest({ roles: ['*'] }));
    return plan.changes[0] as Change;
  }

  it('creates it tagged with the workflow, and adopts it on a retry after a lost completion', async () => {
    const create = await plannedCreate();
    iam.on(CreatePolicyCommand).resolves({ Policy: { Arn: BUILTIN_ARN } });
    expect(await run(activitiesFor().createBuiltinBoundary, changeRequest(create))).toMatchObject({ status: 'applied', observed: { createdByThisRun: true } });
    const input = iam.commandCalls(CreatePolicyCommand)[0]?.args[0].input;
    expect(input).toMatchObject({ PolicyName: 'countersign-workload-boundary', Path: '/countersign/', Tags: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }] });
    expect(JSON.parse(input?.PolicyDocument ?? '{}')).toEqual((create.after as { document: unknown }).document);

    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).resolves({ Policy: { Arn: BUILTIN_ARN, DefaultVersionId: 'v1' } });
    iam.on(ListPolicyTagsCommand).resolves({ Tags: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }] });
    expect(await run(activitiesFor().createBuiltinBoundary, changeRequest(create))).toMatchObject({ status: 'already-done', observed: { createdByThisRun: true } });
    expect(iam.commandCalls(CreatePolicyCommand)).toHaveLength(1);
  });

  it('deletes the policy it created once unused; keeps one in use, and one it did not create', async () => {
    const create = await plannedCreate();
    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).resolves({ Policy: { Arn: BUILTIN_ARN, DefaultVersionId: 'v1', AttachmentCount: 0, PermissionsBoundaryUsageCount: 0 } });
    iam.on(ListEntitiesForPolicyCommand).resolves({ PolicyRoles: [], PolicyUsers: [], PolicyGroups: [] });
    iam.on(DeletePolicyCommand).resolves({});
    expect(await run(activitiesFor().deleteCreatedBoundary, rollbackRequest(create, { createdByThisRun: true }))).toMatchObject({ status: 'applied' });
    expect(iam.commandCalls(DeletePolicyCommand)).toHaveLength(1);

    iam.on(ListEntitiesForPolicyCommand).resolves({ PolicyRoles: [{ RoleName: 'someone-elses' }] });
    expect(await run(activitiesFor().deleteCreatedBoundary, rollbackRequest(create, { createdByThisRun: true }))).toMatchObject({ status: 'left-alone', detail: expect.stringContaining('role someone-elses') });
    iam.on(GetPolicyCommand, { PolicyArn: BUILTIN_ARN }).resolves({ Policy: { Arn: BUILTIN_ARN, DefaultVersionId: 'v1', PermissionsBoundaryUsageCount: 2 } });
    iam.on(ListEntitiesForPolicyCommand).resolves({});
    expect(await run(activitiesFor().deleteCreatedBoundary, rollbackRequest(create, { createdByThisRun: true }))).toMatchObject({ status: 'left-alone', detail: expect.stringContaining('2 boundary use(s)') });

    iam.on(ListPolicyTagsCommand).resolves({ Tags: [] });
    expect(await run(activitiesFor().deleteCreatedBoundary, rollbackRequest(create, { createdByThisRun: false }))).toMatchObject({ status: 'left-alone', detail: expect.stringContaining('existed before this run') });
    expect(iam.commandCalls(DeletePolicyCommand)).toHaveLength(1);
  });

  it('removes a role boundary this run added with DeleteRolePermissionsBoundary, accepting "no such entity" for one already gone', async () => {
    const web = stateOf('role', 'app-web', null);
    const change = setBoundaryChange(web, BUILTIN_ARN, 'wave-1', []);
    iam.on(GetRoleCommand, { RoleName: 'app-web' }).resolvesOnce({ Role: roleOf(web, BUILTIN_ARN) }).resolves({ Role: roleOf(web, null) });
    iam.on(DeleteRolePermissionsBoundaryCommand).rejects(noSuchEntity('Role boundary'));
    expect(await run(activitiesFor().restorePermissionsBoundary, rollbackRequest(change))).toMatchObject({ status: 'applied' });
  });
});
