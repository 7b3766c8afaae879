/**
 * scp: the pure parts (the SCP grammar and size, the built-in guardrails, which policy a run asks
 * for) and, against mocked Organizations clients (aws-sdk-client-mock), the strict AWS behaviour the
 * emulator does not have. moto accepts any text as a policy and oversize ones, attaches before the
 * policy type is enabled, accepts duplicate attachments and a sixth SCP on a target, lets any detach
 * succeed (FullAWSAccess and a target's last SCP included), enables the type instantly and never
 * throttles or reports a concurrent modification (docs/aws.md §9). Those paths are only reachable
 * with a mock.
 */
import {
  AccountNotFoundException,
  AttachPolicyCommand,
  ConcurrentModificationException,
  ConstraintViolationException,
  CreatePolicyCommand,
  DeletePolicyCommand,
  DescribeAccountCommand,
  DescribeOrganizationCommand,
  DescribeOrganizationalUnitCommand,
  DescribePolicyCommand,
  DetachPolicyCommand,
  DuplicatePolicyAttachmentException,
  DuplicatePolicyException,
  EnablePolicyTypeCommand,
  ListPoliciesCommand,
  ListPoliciesForTargetCommand,
  ListRootsCommand,
  ListTagsForResourceCommand,
  ListTargetsForPolicyCommand,
  OrganizationalUnitNotFoundException,
  OrganizationsClient,
  PolicyNotAttachedException,
  PolicyTypeAlreadyEnabledException,
  TooManyRequestsException,
} from '@aws-sdk/client-organizations';
import type { PolicySummary, PolicyTypeStatus } from '@aws-sdk/client-organizations';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Logger } from '@temporalio/common';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsClients } from '../../activities/aws/clients';
import { classifyAwsError, toActivityFailure } from '../../activities/aws/errors';
import { CREATED_BY_TAG, versionOf } from '../../activities/organizations/scp-estate';
import { POLICY_TYPE_POLLS, createScpActivities, scpContentSha256 } from '../../activities/scp';
import { GUARDRAILS, GUARDRAIL_NAMES, guardrailDocument } from '../../common/guardrails';
import type { Json, JsonObject } from '../../common/json';
import type { KindParams } from '../../common/kinds';
import { KINDS, ParamError, resolveKindParams } from '../../common/kinds';
import type { Change, ChangeResult } from '../../common/plan';
import type { ChangeRequest, PlanRequest, RollbackRequest } from '../../common/requests';
import { SCP_MAX_CHARS, isConditionOperator, minifiedScp, sameScpContent, scpDocumentProblem, scpDocumentProblems, selectScp } from '../../common/scp-document';
import { applyRequestFor, planRequestFor, rollbackRequestFor } from '../harness/requests';

const deny = (over: JsonObject = {}): JsonObject => ({ Effect: 'Deny', Action: 's3:*', Resource: '*', ...over });
const scpOf = (...statements: Json[]): JsonObject => ({ Version: '2012-10-17', Statement: statements });

describe('the SCP grammar', () => {
  it.each<[string, Json, RegExp]>([
    ['not an object', ['a'], /an SCP is a JSON object \(got an array\)/],
    ['no Version', { Statement: [deny()] }, /Version must be "2012-10-17" \(got nothing\)/],
    ['an old Version', { Version: '2008-10-17', Statement: [deny()] }, /Version must be "2012-10-17" \(got "2008-10-17"\)/],
    ['an unknown top-level element', { Version: '2012-10-17', Id: 'x', Statement: [deny()] }, /has "Id"; an SCP has only Version and Statement/],
    ['no Statement', { Version: '2012-10-17' }, /has no Statement/],
    ['an empty Statement array', scpOf(), /Statement is an empty array/],
    ['a Statement that is a string', { Version: '2012-10-17', Statement: 'deny all' }, /Statement must be an object \(got "deny all"\)/],
    ['a Principal', scpOf(deny({ Principal: '*' })), /Statement\[0\] has a Principal: an SCP applies to every principal/],
    ['a NotPrincipal', scpOf(deny({ NotPrincipal: { AWS: '*' } })), /has a NotPrincipal/],
    ['an unknown statement element', scpOf(deny({ Actions: 's3:*' })), /has the element "Actions", which an SCP statement does not take/],
    ['no Effect', scpOf({ Action: 's3:*', Resource: '*' }), /Statement\[0\]\.Effect must be "Allow" or "Deny" \(got nothing\)/],
    ['a lowercase Effect', scpOf(deny({ Effect: 'deny' })), /Effect must be "Allow" or "Deny" \(got "deny"\)/],
    ['both Action and NotAction', scpOf(deny({ NotAction: 'iam:*' })), /has both Action and NotAction/],
    ['neither Action nor NotAction', scpOf({ Effect: 'Deny', Resource: '*' }), /has neither Action nor NotAction/],
    ['an empty Action array', scpOf(deny({ Action: [] })), /Statement\[0\]\.Action is an empty array/],
    ['an Action that is a number', scpOf(deny({ Action: 3 })), /Action must be a string or an array of strings \(got 3\)/],
    ['an Action without a service', scpOf(deny({ Action: ['s3:GetObject', 'GetObject'] })), /Action holds "GetObject", which is not an action/],
    ['a NotAction with a space', scpOf({ Effect: 'Deny', NotAction: 'iam:Get Role', Resource: '*' }), /NotAction holds "iam:Get Role"/],
    ['both Resource and NotResource', scpOf(deny({ NotResource: 'arn:aws:s3:::b' })), /has both Resource and NotResource/],
    ['a Resource that is no ARN', scpOf(deny({ Resource: 'my-bucket' })), /Resource holds "my-bucket", which is not an ARN or \*/],
    ['a Sid with a hyphen', scpOf(deny({ Sid: 'deny-s3' })), /Sid must be letters and digits only/],
    ['a Sid used twice', scpOf(deny({ Sid: 'A' }), deny({ Sid: 'A' })), /Statement\[1\]\.Sid A is used twice/],
    ['a Condition that is a string', scpOf(deny({ Condition: 'always' })), /Condition must be an object of condition operators/],
    ['an empty Condition', scpOf(deny({ Condition: {} })), /Statement\[0\]\.Condition is empty/],
    ['an unknown condition operator', scpOf(deny({ Condition: { StringMatches: { 'aws:PrincipalArn': 'x' } } })), /uses "StringMatches", which is no IAM condition operator/],
    ['NullIfExists', scpOf(deny({ Condition: { NullIfExists: { 'aws:TagKeys': 'true' } } })), /uses "NullIfExists"/],
    ['an operator with an empty block', scpOf(deny({ Condition: { ArnNotLike: {} } })), /Condition\.ArnNotLike must be a non-empty object/],
    ['a condition value that is an object', scpOf(deny({ Condition: { StringEquals: { 'aws:RequestedRegion': { a: 1 } } } })), /must be a string, number or boolean/],
    ['a statement in the array that is not an object', scpOf(deny(), 'x'), /Statement\[1\] must be an object/],
  ])('refuses a document with %s', (_what, doc, reason) => {
    const problems = scpDocumentProblems(doc);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(reason);
    expect(scpDocumentProblem(doc)).toMatch(/^is not a valid SCP: /);
  });

  it.each<[string, Json]>([
    ['one statement as an object', { Version: '2012-10-17', Statement: deny() }],
    ['Allow with an action list', scpOf({ Sid: 'AllowS3', Effect: 'Allow', Action: ['s3:Get*', 's3:List?ucket'], Resource: '*' })],
    ['Deny with NotAction, NotResource and no Resource', scpOf({ Effect: 'Deny', NotAction: ['iam:*', 'sts:*'], NotResource: ['arn:aws:iam::*:role/x'] }, { Effect: 'Deny', Action: '*' })],
    [
      'qualified condition operators',
      scpOf(
        deny({
          Condition: {
            'ForAnyValue:StringLikeIfExists': { 'aws:TagKeys': ['a*'] },
            ArnNotLike: { 'aws:PrincipalArn': ['arn:aws:iam::*:role/break-glass'] },
            Bool: { 'aws:ViaAWSService': false },
            NumericLessThan: { 's3:max-keys': 10 },
            Null: { 'aws:RequestTag/team': 'true' },
          },
        }),
      ),
    ],
  ])('accepts %s', (_what, doc) => {
    expect(scpDocumentProblems(doc)).toEqual([]);
    expect(scpDocumentProblem(doc)).toBeUndefined();
  });

  it('knows the condition operators with their ForAnyValue:/ForAllValues: and IfExists forms', () => {
    for (const op of ['StringEquals', 'ForAllValues:StringEquals', 'ArnNotLikeIfExists', 'ForAnyValue:DateGreaterThanEqualsIfExists', 'Null', 'IpAddress', 'BinaryEquals']) expect(isConditionOperator(op)).toBe(true);
    for (const op of ['StringMatch', 'stringequals', 'NullIfExists', 'ForSomeValues:StringEquals', 'IfExists']) expect(isConditionOperator(op)).toBe(false);
  });

  it('counts every character of the minified document: 5,120 passes, 5,121 is refused', () => {
    const sized = (chars: number): JsonObject => {
      const base = minifiedScp(scpOf(deny({ Sid: '' }))).length;
      return scpOf(deny({ Sid: 'S'.repeat(chars - base) }));
    };
    expect(minifiedScp(sized(SCP_MAX_CHARS))).toHaveLength(5_120);
    expect(scpDocumentProblems(sized(SCP_MAX_CHARS))).toEqual([]);
    expect(scpDocumentProblems(sized(SCP_MAX_CHARS + 1))).toEqual(["the document is 5,121 characters minified, over AWS's limit of 5,120 for an SCP"]);
  });

  it('compares contents whatever their whitespace and key order', () => {
    expect(sameScpContent('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}', '{ "Statement": [ { "Resource": "*", "Action": "s3:*", "Effect": "Deny" } ],\n "Version": "2012-10-17" }')).toBe(true);
    expect(sameScpContent('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}', '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:Get*","Resource":"*"}]}')).toBe(false);
    expect(sameScpContent('{not json', '{not json')).toBe(true);
  });
});

describe('the policyFile parameter, as the CLI validates it (exit 2)', () => {
  const given = (policyFile: string) => () => resolveKindParams('scp', { policyFile, name: 'p', targets: 'ou-abcd-12345678' });

  it('refuses a file that is not JSON, an oversize one and one that breaks the grammar, naming the parameter', () => {
    expect(given('{"Version": "2012-10-17",')).toThrow(ParamError);
    expect(given('{"Version": "2012-10-17",')).toThrow(/^policyFile is not valid JSON: /);
    const big = JSON.stringify(scpOf(deny({ Sid: 'S'.repeat(5_100) })));
    expect(given(big)).toThrow(/^policyFile is 5,?\d{3} characters minified, over the limit of 5120$/);
    expect(given(JSON.stringify(scpOf(deny({ Principal: { AWS: '*' } }))))).toThrow(/^policyFile is not a valid SCP: Statement\[0\] has a Principal/);
  });

  it('accepts a valid document, indented as people write it', () => {
    const params = resolveKindParams('scp', { policyFile: JSON.stringify(scpOf(deny()), null, 2), name: 'p', targets: 'ou-abcd-12345678' });
    expect(params.policyFile).toEqual(scpOf(deny()));
    expect(params.soak).toBe('1d');
    expect(params.allowRoot).toBe(false);
  });
});

describe('the built-in guardrails', () => {
  it('are exactly the catalogue choice options, in order', () => {
    expect(KINDS.scp.params.guardrail.label.split('|')).toEqual([...GUARDRAIL_NAMES]);
    expect(Object.keys(GUARDRAILS)).toEqual([...GUARDRAIL_NAMES]);
    for (const name of GUARDRAIL_NAMES) expect(KINDS.scp.params.guardrail.schema.safeParse(name).success).toBe(true);
  });

  const breakGlass = ['arn:aws:iam::*:role/break-glass', 'arn:aws:iam::*:role/countersign-remediator'];
  const manyExemptions = Array.from({ length: 12 }, (_, i) => `arn:aws:iam::*:role/automation-${String(i).padStart(2, '0')}*`);

  it.each(GUARDRAIL_NAMES.map((n) => [n]))('%s is a valid SCP under the limit, with and without exemptions', (name) => {
    for (const exempt of [[], breakGlass, manyExemptions]) {
      const doc = guardrailDocument(name, exempt);
      expect(scpDocumentProblems(doc)).toEqual([]);
      expect(minifiedScp(doc).length).toBeLessThanOrEqual(SCP_MAX_CHARS);
      for (const statement of doc.Statement as JsonObject[]) {
        expect(statement).toMatchObject({ Effect: 'Deny', Resource: '*' });
        const condition = statement.Condition as JsonObject | undefined;
        if (exempt.length > 0) expect(condition?.ArnNotLike).toEqual({ 'aws:PrincipalArn': exempt });
        else expect(condition?.ArnNotLike).toBeUndefined();
      }
    }
  });

  it('deny exactly what they promise', () => {
    const actions = (name: (typeof GUARDRAIL_NAMES)[number]) => (guardrailDocument(name).Statement as JsonObject[]).flatMap((s) => s.Action as string | string[]);
    expect(actions('protect-cloudtrail')).toEqual(expect.arrayContaining(['cloudtrail:StopLogging', 'cloudtrail:DeleteTrail', 'cloudtrail:UpdateTrail', 'cloudtrail:PutEventSelectors']));
    expect(actions('deny-leave-organization')).toEqual(['organizations:LeaveOrganization']);
    expect(actions('protect-security-services')).toEqual(expect.arrayContaining(['config:StopConfigurationRecorder', 'guardduty:DeleteDetector', 'securityhub:DisableSecurityHub']));
    expect(actions('protect-s3-public-access-block')).toEqual(['s3:PutAccountPublicAccessBlock']);
    const root = (guardrailDocument('deny-root-user', breakGlass).Statement as JsonObject[])[0]!;
    expect(root).toMatchObject({ Action: '*', Condition: { StringLike: { 'aws:PrincipalArn': ['arn:aws:iam::*:root'] }, ArnNotLike: { 'aws:PrincipalArn': breakGlass } } });
  });

  it('is the same document for the same exemptions, so a second run adopts the policy the first created', () => {
    expect(minifiedScp(guardrailDocument('protect-cloudtrail', breakGlass))).toBe(minifiedScp(guardrailDocument('protect-cloudtrail', [...breakGlass, breakGlass[0]!])));
  });
});

describe('which policy a run asks for', () => {
  const base = { targets: ['ou-abcd-12345678'], exemptPrincipals: [] as string[], allowRoot: false };

  it('takes a built-in under its default name, or a file under the name given', () => {
    expect(selectScp({ ...base, guardrail: 'deny-leave-organization' }).selection).toMatchObject({ policyName: 'countersign-deny-leave-organization', guardrail: 'deny-leave-organization' });
    const file = selectScp({ ...base, policyFile: scpOf(deny()), name: 'deny-s3' }).selection;
    expect(file).toMatchObject({ policyName: 'deny-s3', content: minifiedScp(scpOf(deny())) });
    expect(file?.guardrail).toBeUndefined();
  });

  it.each<[string, Parameters<typeof selectScp>[0], RegExp]>([
    ['both', { ...base, guardrail: 'protect-cloudtrail', policyFile: scpOf(deny()), name: 'p' }, /give guardrail or policyFile, not both/],
    ['neither', { ...base }, /give guardrail=<built-in> or policyFile=<file>/],
    ['a file without a name', { ...base, policyFile: scpOf(deny()) }, /policyFile needs name=<policy name>/],
    ['exemptions with a file', { ...base, policyFile: scpOf(deny()), name: 'p', exemptPrincipals: ['arn:aws:iam::*:role/x'] }, /exemptPrincipals is written into the built-in guardrails only/],
    ['the root without allowRoot', { ...base, guardrail: 'protect-cloudtrail', targets: ['ou-abcd-12345678', 'r-abcd'] }, /r-abcd is the organization root: .*pass allowRoot=true/],
    ['a file that breaks the grammar', { ...base, policyFile: scpOf(deny({ Effect: 'Block' })), name: 'p' }, /policyFile is not a valid SCP: Statement\[0\]\.Effect/],
    [
      'a built-in over the limit once its exemptions are written in',
      { ...base, guardrail: 'protect-security-services', exemptPrincipals: Array.from({ length: 30 }, (_, i) => `arn:aws:iam::123456789012:role/automation/pipeline-number-${i}`) },
      /the built-in guardrail protect-security-services with 30 exemption\(s\) is not a valid SCP: the document is [\d,]+ characters minified, over AWS's limit of 5,120/,
    ],
  ])('refuses %s', (_what, params, reason) => {
    const { selection, problems } = selectScp(params);
    expect(selection).toBeUndefined();
    expect(problems.join('; ')).toMatch(reason);
  });

  it('takes the root with allowRoot', () => {
    expect(selectScp({ ...base, guardrail: 'protect-cloudtrail', targets: ['r-abcd'], allowRoot: true }).problems).toEqual([]);
  });

  it('knows a policy family: the base name, then -v2, -v3 …', () => {
    expect(versionOf('guard', 'guard')).toBe(1);
    expect(versionOf('guard', 'guard-v2')).toBe(2);
    expect(versionOf('guard', 'guard-v17')).toBe(17);
    for (const other of ['guard-v1', 'guard-v', 'guard-vx', 'guard-v2-old', 'guardian', 'other']) expect(versionOf('guard', other)).toBeUndefined();
  });
});

// --- activities against mocked AWS ---

const MGMT = '111111111111';
const MEMBER = '222222222222';
const ORG = 'o-abc123defg';
const ROOT = 'r-ab12';
const OU_A = 'ou-ab12-aaaaaaaa';
const OU_B = 'ou-ab12-bbbbbbbb';
const WORKFLOW = `scp/${MGMT}`;
const arnOf = (kind: string, id: string) => `arn:aws:organizations::${MGMT}:${kind}/${ORG}/${id}`;
const FULL: PolicySummary = { Id: 'p-FullAWSAccess', Arn: arnOf('policy', 'service_control_policy/p-FullAWSAccess'), Name: 'FullAWSAccess', Type: 'SERVICE_CONTROL_POLICY', AwsManaged: true };
const policy = (id: string, name: string): PolicySummary => ({ Id: id, Arn: arnOf('policy', `service_control_policy/${id}`), Name: name, Type: 'SERVICE_CONTROL_POLICY', AwsManaged: false });
const GUARD = 'countersign-protect-cloudtrail';
const CONTENT = minifiedScp(guardrailDocument('protect-cloudtrail'));
const OTHER_CONTENT = minifiedScp(scpOf(deny({ Action: 'cloudtrail:StopLogging' })));

const organizations = mockClient(OrganizationsClient);
const sts = mockClient(STSClient);

/** An SDK-shaped modelled Organizations error. */
const meta = { $metadata: { httpStatusCode: 400 } };

const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** Run an activity as the worker does: in an activity context (attempt number, heartbeats, logger). */
const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A, attempt = 1): Promise<R> => new MockActivityEnvironment({ attempt }, { logger: quiet }).run(fn, arg);

let aws: AwsClients;
const slept: number[] = [];
function activities() {
  aws = new AwsClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' });
  return createScpActivities({ aws, now: () => new Date('2026-01-01T00:00:00Z'), sleep: async (ms) => void slept.push(ms) });
}

type Params = KindParams<'scp'>;
function planRequest(params: Partial<Params> = {}, account = MGMT): PlanRequest<Params> {
  return planRequestFor('scp', { guardrail: 'protect-cloudtrail', targets: [OU_A, OU_B], soak: '1d', exemptPrincipals: [], allowRoot: false, ...params } as Params, { workflowId: WORKFLOW, account });
}

const changeRequest = (change: Change): ChangeRequest => applyRequestFor(change, { workflowId: WORKFLOW, account: MGMT });
const rollbackRequest = (change: Change, observed: ChangeResult['observed']): RollbackRequest => rollbackRequestFor(change, observed, { workflowId: WORKFLOW, account: MGMT });

/** The management account of an all-features organization: OUs A and B holding FullAWSAccess, SCPs in `status` on the root. */
function organization(status?: PolicyTypeStatus): void {
  sts.on(GetCallerIdentityCommand).resolves({ Account: MGMT, Arn: `arn:aws:iam::${MGMT}:role/countersign-worker`, UserId: 'AROA' });
  organizations.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG, Arn: `arn:aws:organizations::${MGMT}:organization/${ORG}`, FeatureSet: 'ALL', MasterAccountId: MGMT } });
  organizations.on(ListRootsCommand).resolves({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), Name: 'Root', PolicyTypes: status ? [{ Type: 'SERVICE_CONTROL_POLICY', Status: status }] : [] }] });
  organizations.on(DescribeOrganizationalUnitCommand, { OrganizationalUnitId: OU_A }).resolves({ OrganizationalUnit: { Id: OU_A, Arn: arnOf('ou', OU_A), Name: 'Sandbox' } });
  organizations.on(DescribeOrganizationalUnitCommand, { OrganizationalUnitId: OU_B }).resolves({ OrganizationalUnit: { Id: OU_B, Arn: arnOf('ou', OU_B), Name: 'Workloads' } });
  organizations.on(ListPoliciesCommand).resolves({ Policies: [FULL] });
  organizations.on(ListPoliciesForTargetCommand).resolves({ Policies: [FULL] });
}

/** The policies of the organization: FullAWSAccess plus these, each with its content. */
function policies(...existing: [PolicySummary, string][]): void {
  organizations.on(ListPoliciesCommand).resolves({ Policies: [FULL, ...existing.map(([p]) => p)] });
  for (const [p, content] of existing) organizations.on(DescribePolicyCommand, { PolicyId: p.Id }).resolves({ Policy: { PolicySummary: p, Content: content } });
}

const onTarget = (target: string, ...attached: PolicySummary[]) => organizations.on(ListPoliciesForTargetCommand, { TargetId: target }).resolves({ Policies: attached });

function attachChange(target = OU_A, name = GUARD, content = CONTENT): Change {
  const fields = { target, targetKind: 'ou', targetName: 'Sandbox' };
  return { id: `attach-policy/${target}`, stage: `wave-1/${target}`, action: 'attach-policy', resource: arnOf('ou', target), summary: 'attach', before: { ...fields, attached: ['FullAWSAccess'] }, after: { ...fields, policy: name, contentSha256: scpContentSha256(content), attached: ['FullAWSAccess', name] }, reversible: true, destructive: false };
}

function detachChange(old: PolicySummary, target = OU_A, replacedBy = `${GUARD}-v2`): Change {
  const fields = { target, targetKind: 'ou', targetName: 'Sandbox', policy: old.Name as string, policyId: old.Id as string };
  return { id: `detach-policy/${target}/${old.Name}`, stage: `wave-1/${target}`, action: 'detach-superseded-policy', resource: arnOf('ou', target), summary: 'detach', before: { ...fields, attached: true }, after: { ...fields, attached: false, replacedBy }, reversible: true, destructive: false };
}

function createChange(name = GUARD, document: JsonObject = guardrailDocument('protect-cloudtrail')): Change {
  return { id: `create-policy/${name}`, stage: 'policy', action: 'create-policy', resource: `arn:aws:organizations::${MGMT}:organization/${ORG}`, summary: 'create', before: { policy: name, exists: false }, after: { policy: name, description: 'd', content: document, contentSha256: scpContentSha256(minifiedScp(document)) }, reversible: true, destructive: false };
}

const enableChange: Change = { id: `enable-policy-type/${ROOT}`, stage: 'policy', action: 'enable-policy-type', resource: arnOf('root', ROOT), summary: 'enable', before: { root: ROOT, scpPolicyType: 'NOT_ENABLED' }, after: { root: ROOT, scpPolicyType: 'ENABLED' }, reversible: false, destructive: false };

const calls = (command: Parameters<typeof organizations.commandCalls>[0]) => organizations.commandCalls(command).map((c) => c.args[0].input);

beforeEach(() => {
  organizations.reset();
  sts.reset();
  slept.length = 0;
});
afterEach(() => aws?.destroy());

describe('planning an SCP rollout', () => {
  it('on a fresh organization: enable SCPs (never undone), create the policy, then one wave per target in order with a soak before each later wave', async () => {
    organization();
    const plan = await run(activities().planScp, planRequest());
    expect(plan.changes.map((c) => c.id)).toEqual([`enable-policy-type/${ROOT}`, `create-policy/${GUARD}`, `attach-policy/${OU_A}`, `attach-policy/${OU_B}`]);
    expect(plan.stages).toEqual([
      expect.objectContaining({ name: 'policy', concurrency: 1 }),
      expect.objectContaining({ name: `wave-1/${OU_A}`, concurrency: 1 }),
      expect.objectContaining({ name: `wave-2/${OU_B}`, soakBefore: '1d', concurrency: 1 }),
    ]);
    expect(plan.stages[1]?.soakBefore).toBeUndefined();
    const [enable, create, attachA] = plan.changes;
    expect(enable).toMatchObject({ reversible: false, resource: arnOf('root', ROOT) });
    expect(create).toMatchObject({ reversible: true, after: { policy: GUARD, content: guardrailDocument('protect-cloudtrail'), contentSha256: scpContentSha256(CONTENT) } });
    expect(attachA).toMatchObject({ resource: arnOf('ou', OU_A), dependsOn: [enable!.id, create!.id], after: { target: OU_A, policy: GUARD } });
    expect(calls(CreatePolicyCommand)).toEqual([]);
  });

  it("tells the approver when a guardrail would bind Countersign's own role in member accounts", async () => {
    organization('ENABLED');
    const bare = await run(activities().planScp, planRequest());
    expect(bare.notes.join('\n')).toMatch(/acts in member accounts as the role OrganizationAccountAccessRole, which protect-cloudtrail restricts too unless exempted .*retire-default-trails/);
    const exempt = await run(activities().planScp, planRequest({ exemptPrincipals: ['arn:aws:iam::*:role/Organization*'] }));
    expect(exempt.notes.join('\n')).not.toMatch(/acts in member accounts/);
  });

  it('refuses a target that would hold more than 5 SCPs after the attach (AWS counts FullAWSAccess; moto has no limit)', async () => {
    organization('ENABLED');
    onTarget(OU_B, FULL, policy('p-1', 'a'), policy('p-2', 'b'), policy('p-3', 'c'), policy('p-4', 'd'));
    const failure = await run(activities().planScp, planRequest()).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'ScpRolloutRefused', nonRetryable: true });
    expect((failure as Error).message).toMatch(/OU ou-ab12-bbbbbbbb \(Workloads\) already has 5 SCPs attached \(FullAWSAccess, a, b, c, d\); AWS allows 5 per target/);
  });

  it('refuses targets that are not in the organization, naming each', async () => {
    organization('ENABLED');
    organizations.on(DescribeOrganizationalUnitCommand, { OrganizationalUnitId: OU_B }).rejects(new OrganizationalUnitNotFoundException({ message: 'no such OU', ...meta }));
    organizations.on(DescribeAccountCommand).rejects(new AccountNotFoundException({ message: 'no such account', ...meta }));
    const failure = (await run(activities().planScp, planRequest({ targets: [OU_A, OU_B, MEMBER, 'r-zz99'], allowRoot: true })).catch((e: unknown) => e)) as Error;
    expect(failure.message).toMatch(/OU ou-ab12-bbbbbbbb is not in this organization/);
    expect(failure.message).toMatch(/account 222222222222 is not in this organization/);
    expect(failure.message).toMatch(/r-zz99 is not this organization's root \(r-ab12\)/);
  });

  it('refuses to run from a member account', async () => {
    organization();
    sts.on(GetCallerIdentityCommand).resolves({ Account: MGMT, Arn: `arn:aws:iam::${MGMT}:role/countersign-worker` });
    organizations.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG, Arn: 'arn', FeatureSet: 'ALL', MasterAccountId: MEMBER } });
    await expect(run(activities().planScp, planRequest())).rejects.toMatchObject({ type: 'NotManagementAccount', nonRetryable: true });
  });

  it('adopts a policy of the family with the same content, and swaps out the other version where it is attached', async () => {
    organization('ENABLED');
    const v1 = policy('p-v1', GUARD);
    const v2 = policy('p-v2', `${GUARD}-v2`);
    policies([v1, OTHER_CONTENT], [v2, JSON.stringify(JSON.parse(CONTENT), null, 2)]);
    onTarget(OU_A, FULL, v1);
    onTarget(OU_B, FULL, v2);
    const plan = await run(activities().planScp, planRequest());
    expect(plan.changes.map((c) => c.id)).toEqual([`attach-policy/${OU_A}`, `detach-policy/${OU_A}/${GUARD}`]);
    expect(plan.changes[1]).toMatchObject({ action: 'detach-superseded-policy', dependsOn: [`attach-policy/${OU_A}`], before: { policyId: 'p-v1' }, after: { replacedBy: `${GUARD}-v2` } });
    expect(plan.stages.map((s) => s.name)).toEqual(['policy', `wave-1/${OU_A}`]);
    expect(plan.leftAlone.map((l) => l.detail)).toEqual(expect.arrayContaining([`${GUARD}-v2 (p-v2) exists with this content and is adopted as it is`, `${GUARD}-v2 is already attached to OU ${OU_B} (Workloads)`]));
  });

  it('plans a new version beside a policy with other content, never an UpdatePolicy, and never detaches FullAWSAccess', async () => {
    organization('ENABLED');
    const v1 = policy('p-v1', GUARD);
    const v3 = policy('p-v3', `${GUARD}-v3`);
    policies([v1, OTHER_CONTENT], [v3, OTHER_CONTENT]);
    onTarget(OU_A, FULL, v1, v3);
    onTarget(OU_B, FULL);
    const plan = await run(activities().planScp, planRequest());
    expect(plan.changes.map((c) => c.id)).toEqual([`create-policy/${GUARD}-v4`, `attach-policy/${OU_A}`, `detach-policy/${OU_A}/${GUARD}`, `detach-policy/${OU_A}/${GUARD}-v3`, `attach-policy/${OU_B}`]);
    expect(plan.changes.some((c) => JSON.stringify(c.before).includes('p-FullAWSAccess'))).toBe(false);
    expect(plan.changes.filter((c) => c.stage === 'policy').map((c) => c.action)).toEqual(['create-policy']);
  });

  it('refuses the root without allowRoot before reading AWS', async () => {
    organization();
    await expect(run(activities().planScp, planRequest({ targets: [ROOT] }))).rejects.toMatchObject({ type: 'InvalidParameters', message: expect.stringMatching(/r-ab12 is the organization root/) });
    expect(organizations.calls()).toHaveLength(0);
  });
});

describe('enabling the SCP policy type', () => {
  it('polls ListRoots through PENDING_ENABLE (normal on AWS; moto enables at once) until ENABLED', async () => {
    organization();
    organizations
      .on(ListRootsCommand)
      .resolvesOnce({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [] }] })
      .resolvesOnce({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [{ Type: 'SERVICE_CONTROL_POLICY', Status: 'PENDING_ENABLE' }] }] })
      .resolvesOnce({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [{ Type: 'SERVICE_CONTROL_POLICY', Status: 'PENDING_ENABLE' }] }] })
      .resolves({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [{ Type: 'SERVICE_CONTROL_POLICY', Status: 'ENABLED' }] }] });
    organizations.on(EnablePolicyTypeCommand).resolves({});
    const outcome = await run(activities().enableScpPolicyType, changeRequest(enableChange));
    expect(outcome).toMatchObject({ status: 'applied', observed: { pendingReads: 2 } });
    expect(calls(EnablePolicyTypeCommand)).toEqual([{ RootId: ROOT, PolicyType: 'SERVICE_CONTROL_POLICY' }]);
    expect(slept).toEqual([1_000, 2_000]);
  });

  it('waits on a type already PENDING_ENABLE without enabling it again, and treats PolicyTypeAlreadyEnabledException as done', async () => {
    organization('PENDING_ENABLE');
    organizations.on(EnablePolicyTypeCommand).rejects(new PolicyTypeAlreadyEnabledException({ message: 'already', ...meta }));
    const failure = (await run(activities().enableScpPolicyType, changeRequest(enableChange)).catch((e: unknown) => e)) as ApplicationFailure;
    expect(failure).toMatchObject({ type: 'PolicyTypeNotYetEnabled', nonRetryable: false });
    expect(calls(EnablePolicyTypeCommand)).toEqual([]);
    expect(calls(ListRootsCommand)).toHaveLength(1 + POLICY_TYPE_POLLS);
    expect(Math.max(...slept)).toBe(10_000);

    organizations.reset();
    organization();
    organizations.on(ListRootsCommand).resolvesOnce({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [] }] }).resolves({ Roots: [{ Id: ROOT, Arn: arnOf('root', ROOT), PolicyTypes: [{ Type: 'SERVICE_CONTROL_POLICY', Status: 'ENABLED' }] }] });
    organizations.on(EnablePolicyTypeCommand).rejects(new PolicyTypeAlreadyEnabledException({ message: 'already', ...meta }));
    await expect(run(activities().enableScpPolicyType, changeRequest(enableChange))).resolves.toMatchObject({ status: 'applied' });
  });

  it('is already done when ENABLED, and has no rollback: disabling would detach every SCP', async () => {
    organization('ENABLED');
    await expect(run(activities().enableScpPolicyType, changeRequest(enableChange))).resolves.toMatchObject({ status: 'already-done' });
    expect(Object.keys(activities())).not.toContain('disableScpPolicyType');
  });
});

describe('creating the policy', () => {
  it('creates it with the minified content and the run tag', async () => {
    organization('ENABLED');
    organizations.on(CreatePolicyCommand).resolves({ Policy: { PolicySummary: policy('p-new', GUARD) } });
    const outcome = await run(activities().createScp, changeRequest(createChange()));
    expect(outcome).toMatchObject({ status: 'applied', observed: { policyId: 'p-new', createdByThisRun: true } });
    expect(calls(CreatePolicyCommand)).toEqual([{ Name: GUARD, Description: 'd', Type: 'SERVICE_CONTROL_POLICY', Content: CONTENT, Tags: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }] }]);
  });

  it('on DuplicatePolicyException looks the policy up by name and compares: same content is done, other content is left alone', async () => {
    organization('ENABLED');
    organizations.on(ListPoliciesCommand).resolvesOnce({ Policies: [FULL] }).resolves({ Policies: [FULL, policy('p-x', GUARD)] });
    organizations.on(CreatePolicyCommand).rejects(new DuplicatePolicyException({ message: 'taken', ...meta }));
    organizations.on(DescribePolicyCommand).resolves({ Policy: { Content: JSON.stringify(JSON.parse(CONTENT), null, 1) } });
    organizations.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }] });
    await expect(run(activities().createScp, changeRequest(createChange()))).resolves.toMatchObject({ status: 'already-done', observed: { policyId: 'p-x', createdByThisRun: true } });

    organizations.on(ListPoliciesCommand).resolvesOnce({ Policies: [FULL] }).resolves({ Policies: [FULL, policy('p-x', GUARD)] });
    organizations.on(DescribePolicyCommand).resolves({ Policy: { Content: OTHER_CONTENT } });
    await expect(run(activities().createScp, changeRequest(createChange()))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/appeared after approval with other content/) });
  });

  it('is deleted on rollback only if this run created it and it is attached nowhere', async () => {
    organization('ENABLED');
    policies([policy('p-new', GUARD), CONTENT]);
    organizations.on(ListTargetsForPolicyCommand).resolves({ Targets: [{ TargetId: OU_A }] });
    await expect(run(activities().deleteCreatedScp, rollbackRequest(createChange(), { policyId: 'p-new', createdByThisRun: true }))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/still attached to ou-ab12-aaaaaaaa/) });
    await expect(run(activities().deleteCreatedScp, rollbackRequest(createChange(), { policyId: 'p-new', createdByThisRun: false }))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/existed before this run/) });
    organizations.on(ListTargetsForPolicyCommand).resolves({ Targets: [] });
    await expect(run(activities().deleteCreatedScp, rollbackRequest(createChange(), { policyId: 'p-new', createdByThisRun: true }))).resolves.toMatchObject({ status: 'applied' });
    expect(calls(DeletePolicyCommand)).toEqual([{ PolicyId: 'p-new' }]);
  });
});

describe('attaching, wave by wave', () => {
  const ours = policy('p-new', GUARD);

  it('attaches, then reads the attachment back from both sides', async () => {
    organization('ENABLED');
    policies([ours, CONTENT]);
    organizations.on(ListPoliciesForTargetCommand, { TargetId: OU_A }).resolvesOnce({ Policies: [FULL] }).resolves({ Policies: [FULL, ours] });
    organizations.on(ListTargetsForPolicyCommand).resolves({ Targets: [{ TargetId: OU_A }] });
    organizations.on(AttachPolicyCommand).resolves({});
    await expect(run(activities().attachScp, changeRequest(attachChange()))).resolves.toMatchObject({ status: 'applied', observed: { policyId: 'p-new', attachedByThisRun: true } });
    expect(calls(AttachPolicyCommand)).toEqual([{ PolicyId: 'p-new', TargetId: OU_A }]);
  });

  it('fails retryably when the attachment is not listed yet after AttachPolicy answered', async () => {
    organization('ENABLED');
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL);
    organizations.on(ListTargetsForPolicyCommand).resolves({ Targets: [] });
    organizations.on(AttachPolicyCommand).resolves({});
    await expect(run(activities().attachScp, changeRequest(attachChange()))).rejects.toMatchObject({ type: 'AttachmentNotVisible', nonRetryable: false });
  });

  it('takes DuplicatePolicyAttachmentException as done: kept on rollback on a first attempt, this run\'s own on a retry (moto accepts duplicates)', async () => {
    organization('ENABLED');
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL);
    organizations.on(AttachPolicyCommand).rejects(new DuplicatePolicyAttachmentException({ message: 'attached', ...meta }));
    await expect(run(activities().attachScp, changeRequest(attachChange()))).resolves.toMatchObject({ status: 'already-done', observed: { attachedByThisRun: false } });
    await expect(run(activities().attachScp, changeRequest(attachChange()), 2)).resolves.toMatchObject({ status: 'already-done', observed: { attachedByThisRun: true } });
  });

  it('refuses a sixth SCP on a target before calling AWS, and explains MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED when AWS refuses it', async () => {
    organization('ENABLED');
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL, policy('p-1', 'a'), policy('p-2', 'b'), policy('p-3', 'c'), policy('p-4', 'd'));
    await expect(run(activities().attachScp, changeRequest(attachChange()))).rejects.toMatchObject({ type: 'MaxPoliciesOnTarget', nonRetryable: true });
    expect(calls(AttachPolicyCommand)).toEqual([]);

    onTarget(OU_A, FULL);
    organizations.on(AttachPolicyCommand).rejects(new ConstraintViolationException({ message: 'too many', Reason: 'MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED', ...meta }));
    await expect(run(activities().attachScp, changeRequest(attachChange()))).rejects.toMatchObject({ type: 'MaxPoliciesOnTarget', nonRetryable: true, message: expect.stringMatching(/MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED/) });
  });

  it('leaves the target alone when the policy no longer has the approved content', async () => {
    organization('ENABLED');
    policies([ours, OTHER_CONTENT]);
    await expect(run(activities().attachScp, changeRequest(attachChange()))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/no longer has the approved content/) });
    expect(calls(AttachPolicyCommand)).toEqual([]);
  });

  it.each([
    ['ConcurrentModificationException', new ConcurrentModificationException({ message: 'busy', ...meta }), 'conflict'],
    ['TooManyRequestsException', new TooManyRequestsException({ message: 'slow down', ...meta }), 'throttle'],
  ])('lets %s through to be retried by Temporal (moto never answers it)', async (_name, error, category) => {
    organization('ENABLED');
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL);
    organizations.on(AttachPolicyCommand).rejects(error);
    const thrown = await run(activities().attachScp, changeRequest(attachChange())).catch((e: unknown) => e);
    expect(classifyAwsError(thrown)).toMatchObject({ category, retryable: true });
    expect(toActivityFailure(thrown)).toMatchObject({ nonRetryable: false, type: `AWS.${error.name}` });
  });

  it('retries an attach refused while the root is still PENDING_ENABLE, and refuses it for good otherwise', async () => {
    organization('PENDING_ENABLE');
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL);
    organizations.on(AttachPolicyCommand).rejects(Object.assign(new Error('not enabled'), { name: 'PolicyTypeNotEnabledException', ...meta }));
    await expect(run(activities().attachScp, changeRequest(attachChange()))).rejects.toMatchObject({ type: 'PolicyTypePendingEnable', nonRetryable: false });
    organization();
    policies([ours, CONTENT]);
    onTarget(OU_A, FULL);
    await expect(run(activities().attachScp, changeRequest(attachChange()))).rejects.toMatchObject({ type: 'PolicyTypeNotEnabled', nonRetryable: true });
  });
});

describe('rolling back', () => {
  const ours = policy('p-new', GUARD);

  it('detaches what this run attached; PolicyNotAttachedException is done (moto never answers it)', async () => {
    organization('ENABLED');
    onTarget(OU_A, FULL, ours);
    organizations.on(DetachPolicyCommand).resolves({});
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-new', attachedByThisRun: true }))).resolves.toMatchObject({ status: 'applied' });
    expect(calls(DetachPolicyCommand)).toEqual([{ PolicyId: 'p-new', TargetId: OU_A }]);
    organizations.on(DetachPolicyCommand).rejects(new PolicyNotAttachedException({ message: 'not attached', ...meta }));
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-new', attachedByThisRun: true }))).resolves.toMatchObject({ status: 'already-done' });
  });

  it('keeps an attachment it did not make', async () => {
    organization('ENABLED');
    onTarget(OU_A, FULL, ours);
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-new', attachedByThisRun: false }))).resolves.toMatchObject({ status: 'left-alone' });
    expect(calls(DetachPolicyCommand)).toEqual([]);
  });

  it('never leaves a target without an SCP: the last one is kept, and MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED is explained, not retried (moto detaches it)', async () => {
    organization('ENABLED');
    onTarget(OU_A, ours);
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-new', attachedByThisRun: true }))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/only SCP on OU/) });
    expect(calls(DetachPolicyCommand)).toEqual([]);

    onTarget(OU_A, FULL, ours);
    organizations.on(DetachPolicyCommand).rejects(new ConstraintViolationException({ message: 'last one', Reason: 'MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED', ...meta }));
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-new', attachedByThisRun: true }))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED/) });
  });

  it('never detaches FullAWSAccess, whatever a change or its result says', async () => {
    organization('ENABLED');
    onTarget(OU_A, FULL, ours);
    organizations.on(DetachPolicyCommand).resolves({});
    await expect(run(activities().detachAttachedScp, rollbackRequest(attachChange(), { policyId: 'p-FullAWSAccess', attachedByThisRun: true }))).resolves.toMatchObject({ status: 'left-alone' });
    await expect(run(activities().detachSupersededScp, changeRequest(detachChange(FULL)))).resolves.toMatchObject({ status: 'left-alone' });
    const managed = { ...policy('p-managed', 'SomeAwsManaged'), AwsManaged: true };
    onTarget(OU_A, FULL, ours, managed);
    await expect(run(activities().detachSupersededScp, changeRequest(detachChange(managed)))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/AWS-managed/) });
    expect(calls(DetachPolicyCommand)).toEqual([]);
  });

  it('swaps an old version out only while the new one is attached, and re-attaches it on rollback', async () => {
    organization('ENABLED');
    const old = policy('p-old', GUARD);
    const v2 = policy('p-v2', `${GUARD}-v2`);
    onTarget(OU_A, FULL, old);
    await expect(run(activities().detachSupersededScp, changeRequest(detachChange(old)))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/is not attached/) });
    onTarget(OU_A, FULL, old, v2);
    organizations.on(DetachPolicyCommand).resolves({});
    const swapped = await run(activities().detachSupersededScp, changeRequest(detachChange(old)));
    expect(swapped).toMatchObject({ status: 'applied', observed: { detachedByThisRun: true } });
    expect(calls(DetachPolicyCommand)).toEqual([{ PolicyId: 'p-old', TargetId: OU_A }]);

    onTarget(OU_A, FULL, v2);
    policies([old, OTHER_CONTENT]);
    organizations.on(AttachPolicyCommand).resolves({});
    await expect(run(activities().reattachSupersededScp, rollbackRequest(detachChange(old), swapped.observed))).resolves.toMatchObject({ status: 'applied' });
    expect(calls(AttachPolicyCommand)).toEqual([{ PolicyId: 'p-old', TargetId: OU_A }]);
    organizations.on(AttachPolicyCommand).rejects(new DuplicatePolicyAttachmentException({ message: 'attached', ...meta }));
    await expect(run(activities().reattachSupersededScp, rollbackRequest(detachChange(old), swapped.observed))).resolves.toMatchObject({ status: 'already-done' });
    await expect(run(activities().reattachSupersededScp, rollbackRequest(detachChange(old), { detachedByThisRun: false }))).resolves.toMatchObject({ status: 'left-alone' });
  });
});
