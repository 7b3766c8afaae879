/**
 * org-trail: the pure parts (the bucket policy merge, the trail configuration comparison, the error
 * explanations) and, against mocked AWS clients, the strict AWS behaviour the emulator does not have:
 * its Organizations and CloudTrail accept an organization trail without trusted access, without the
 * management account, without all features and without a bucket policy; its CreateTrail replaces a
 * trail of the same name instead of refusing; its StartLogging cannot take an ARN. Those paths are
 * only reachable with a mock.
 */
import {
  CloudTrailClient,
  CreateTrailCommand,
  DeleteTrailCommand,
  DescribeTrailsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  ListTagsCommand,
  StartLoggingCommand,
  UpdateTrailCommand,
} from '@aws-sdk/client-cloudtrail';
import type { Trail } from '@aws-sdk/client-cloudtrail';
import { DescribeOrganizationCommand, EnableAWSServiceAccessCommand, ListAWSServiceAccessForOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { GetBucketEncryptionCommand, GetBucketOwnershipControlsCommand, GetBucketPolicyCommand, GetBucketVersioningCommand, GetPublicAccessBlockCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsClients } from '../../activities/aws/clients';
import { ORG_TRAIL_SIDS, mergeStatements, orgTrailStatements, parsePolicy, policyHoldsStatements, samePolicy } from '../../activities/cloudtrail/bucket-policy';
import type { PolicyDocument } from '../../activities/cloudtrail/bucket-policy';
import { locateBucket } from '../../activities/cloudtrail/log-bucket';
import { desiredTrailConfig, sameKmsKey, trailConfigDifferences, trailConfigOf, updateTrailInput } from '../../activities/cloudtrail/trail-config';
import { PROPAGATION_ATTEMPTS, explainTrailError } from '../../activities/cloudtrail/trail-errors';
import { CREATED_BY_TAG, createOrgTrailActivities } from '../../activities/org-trail';
import type { KindParams } from '../../common/kinds';
import type { Change, ChangeResult, KindPlan } from '../../common/plan';
import type { ChangeRequest, PlanRequest, RollbackRequest } from '../../common/requests';
import { applyRequestFor, planRequestFor, rollbackRequestFor } from '../harness/requests';

const MGMT = '111111111111';
const MEMBER = '222222222222';
const ORG = 'o-abc123defg';
const ORG_ARN = `arn:aws:organizations::${MGMT}:organization/${ORG}`;
const TRAIL_ARN = `arn:aws:cloudtrail:us-east-1:${MGMT}:trail/org-trail`;
const OTHER_TRAIL_ARN = `arn:aws:cloudtrail:us-east-1:${MGMT}:trail/security-trail`;
const BUCKET = 'acme-org-trail-logs';
const WORKFLOW = `org-trail/${MGMT}`;

const statements = (trailArn = TRAIL_ARN) => orgTrailStatements({ partition: 'aws', bucket: BUCKET, managementAccount: MGMT, organizationId: ORG, trailArn });

const FOREIGN = { Sid: 'AllowAuditorsRead', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::333333333333:role/Auditor' }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/*` };

describe('the organization-trail bucket policy', () => {
  it('grants CloudTrail the ACL check and writes under both the management account and the organization, only for this trail, and denies plain HTTP', () => {
    const [acl, mgmtWrite, orgWrite, deny] = statements();
    expect(acl).toMatchObject({ Action: 's3:GetBucketAcl', Resource: `arn:aws:s3:::${BUCKET}`, Condition: { StringEquals: { 'aws:SourceArn': TRAIL_ARN } } });
    for (const [write, prefix] of [[mgmtWrite, MGMT], [orgWrite, ORG]] as const) {
      expect(write).toMatchObject({
        Effect: 'Allow',
        Principal: { Service: 'cloudtrail.amazonaws.com' },
        Action: 's3:PutObject',
        Resource: `arn:aws:s3:::${BUCKET}/AWSLogs/${prefix}/*`,
        Condition: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': TRAIL_ARN } },
      });
    }
    expect(deny).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
  });

  it('merges into an existing policy keeping every foreign statement, in order, and is idempotent', () => {
    const existing = parsePolicy(JSON.stringify({ Version: '2012-10-17', Id: 'keep-me', Statement: FOREIGN }));
    const merged = mergeStatements(existing, statements());
    expect(merged.Id).toBe('keep-me');
    expect(merged.Statement[0]).toEqual(FOREIGN);
    expect(merged.Statement.map((s) => s.Sid)).toEqual(['AllowAuditorsRead', ...Object.values(ORG_TRAIL_SIDS)]);
    expect(mergeStatements(merged, statements())).toEqual(merged);
    expect(policyHoldsStatements(existing, statements())).toBe(false);
    expect(policyHoldsStatements(merged, statements())).toBe(true);
    expect(policyHoldsStatements(null, statements())).toBe(false);
    expect(mergeStatements(null, statements()).Statement).toHaveLength(4);
  });

  it('replaces a statement of ours by Sid in place, keeping the other trails it names', () => {
    const stale = { ...statements(OTHER_TRAIL_ARN)[0]!, Resource: 'arn:aws:s3:::somewhere-else' };
    const existing: PolicyDocument = { Version: '2012-10-17', Statement: [stale, FOREIGN] };
    const merged = mergeStatements(existing, statements());
    expect(merged.Statement.map((s) => s.Sid)).toEqual([ORG_TRAIL_SIDS.aclCheck, 'AllowAuditorsRead', ORG_TRAIL_SIDS.managementWrite, ORG_TRAIL_SIDS.organizationWrite, ORG_TRAIL_SIDS.denyInsecureTransport]);
    expect(merged.Statement[0]).toMatchObject({ Resource: `arn:aws:s3:::${BUCKET}`, Condition: { StringEquals: { 'aws:SourceArn': [OTHER_TRAIL_ARN, TRAIL_ARN] } } });
    expect(mergeStatements(merged, statements())).toEqual(merged);
  });

  it('compares policies whatever the key order or one-element-array spelling', () => {
    const a = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: 'x', Principal: '*' }] }));
    const b = parsePolicy(JSON.stringify({ Statement: [{ Principal: '*', Resource: ['x'], Action: 's3:GetObject', Effect: 'Allow' }], Version: '2012-10-17' }));
    expect(samePolicy(a, b)).toBe(true);
    expect(samePolicy(a, null)).toBe(false);
    expect(() => parsePolicy('{not json')).toThrow(/not valid JSON/);
  });
});

describe('the trail configuration', () => {
  const desired = desiredTrailConfig({ bucket: BUCKET });

  it('asks for an organization trail over every region, with global events and log-file validation', () => {
    expect(desired).toMatchObject({ isOrganizationTrail: true, isMultiRegionTrail: true, includeGlobalServiceEvents: true, logFileValidationEnabled: true, kmsKeyId: null, s3KeyPrefix: null });
    expect(trailConfigDifferences(trailConfigOf(trailOf()), desired)).toEqual([]);
    // The emulator answers "" where AWS omits a field.
    expect(trailConfigDifferences(trailConfigOf(trailOf({ KmsKeyId: '', CloudWatchLogsRoleArn: '' })), desired)).toEqual([]);
  });

  it('names each field that differs', () => {
    const single = trailConfigOf(trailOf({ IsOrganizationTrail: false, IsMultiRegionTrail: false, LogFileValidationEnabled: false, S3BucketName: 'old', S3KeyPrefix: 'p' }));
    expect(trailConfigDifferences(single, desired)).toEqual(['s3BucketName', 's3KeyPrefix', 'isOrganizationTrail', 'isMultiRegionTrail', 'logFileValidationEnabled']);
  });

  it('matches a KMS key given as an id, an alias or an ARN to the key ARN AWS reports only when it can tell', () => {
    const keyArn = 'arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(sameKmsKey(keyArn, keyArn)).toBe(true);
    expect(sameKmsKey(keyArn, '1234abcd-12ab-34cd-56ef-1234567890ab')).toBe(true);
    expect(sameKmsKey(keyArn, 'alias/logs')).toBe(false);
    expect(sameKmsKey('arn:aws:kms:us-east-1:111111111111:alias/logs', 'alias/logs')).toBe(true);
    expect(sameKmsKey(null, 'alias/logs')).toBe(false);
    expect(sameKmsKey(null, null)).toBe(true);
  });

  it('updates only what differs, clears with empty strings, and keeps multi-region and global events together', () => {
    const live = trailConfigOf(trailOf({ IsMultiRegionTrail: false, KmsKeyId: 'arn:aws:kms:us-east-1:111111111111:key/k', S3KeyPrefix: 'old' }));
    expect(updateTrailInput(TRAIL_ARN, live, desired)).toEqual({ Name: TRAIL_ARN, S3KeyPrefix: '', IsMultiRegionTrail: true, IncludeGlobalServiceEvents: true, KmsKeyId: '' });
    expect(updateTrailInput(TRAIL_ARN, desired, live)).toEqual({ Name: TRAIL_ARN, S3KeyPrefix: 'old', IsMultiRegionTrail: false, IncludeGlobalServiceEvents: true, KmsKeyId: 'arn:aws:kms:us-east-1:111111111111:key/k' });
    const withLogs = desiredTrailConfig({ bucket: BUCKET, cloudWatchLogsGroupArn: 'arn:aws:logs:us-east-1:111111111111:log-group:trail', cloudWatchLogsRoleArn: 'arn:aws:iam::111111111111:role/ct' });
    expect(trailConfigDifferences({ ...withLogs, cloudWatchLogsLogGroupArn: 'arn:aws:logs:us-east-1:111111111111:log-group:trail:*' }, withLogs)).toEqual([]);
    expect(updateTrailInput(TRAIL_ARN, withLogs, desired)).toEqual({ Name: TRAIL_ARN, CloudWatchLogsLogGroupArn: '', CloudWatchLogsRoleArn: '' });
  });
});

/** An SDK-shaped AWS error. */
const awsError = (name: string, status = 400, extra: object = {}) => Object.assign(new Error(`${name} from AWS`), { name, $metadata: { httpStatusCode: status }, ...extra });
const context = (attempt = 1) => ({ account: MGMT, bucket: BUCKET, trailName: 'org-trail', homeRegion: 'us-east-1', attempt });

describe('CloudTrail refusals', () => {
  it('retries a bucket policy refusal a few times (the policy may still be propagating), then reports it for good', () => {
    const early = explainTrailError(awsError('InsufficientS3BucketPolicyException'), context(1));
    expect(early).toMatchObject({ type: 'AWS.InsufficientS3BucketPolicyException', nonRetryable: false });
    const final = explainTrailError(awsError('InsufficientS3BucketPolicyException'), context(PROPAGATION_ATTEMPTS));
    expect(final).toMatchObject({ nonRetryable: true, message: expect.stringContaining(`AWSLogs/${MGMT}/ and AWSLogs/<organization id>/`) });
  });

  it('leaves errors it does not know to the generic classification', () => {
    expect(explainTrailError(awsError('ThrottlingException'), context())).toBeUndefined();
  });
});

// --- activities against mocked AWS ---

const cloudtrail = mockClient(CloudTrailClient);
const s3 = mockClient(S3Client);
const organizations = mockClient(OrganizationsClient);
const sts = mockClient(STSClient);

const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** Run an activity as the worker does: in an activity context (attempt number, heartbeats, logger). */
const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A, attempt = 1): Promise<R> => new MockActivityEnvironment({ attempt }, { logger: quiet }).run(fn, arg);

let aws: AwsClients;
function activitiesFor(emulator?: 'moto') {
  aws = new AwsClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole', ...(emulator ? { emulator } : {}) });
  return createOrgTrailActivities({ aws, now: () => new Date('2026-01-01T00:00:00Z') });
}

type Params = KindParams<'org-trail'>;
function planRequest(account = MGMT, params: Partial<Params> = {}): PlanRequest<Params> {
  return planRequestFor('org-trail', { bucket: BUCKET, trailName: 'org-trail', ...params } as Params, { workflowId: WORKFLOW, account });
}

const changeRequest = (change: Change): ChangeRequest => applyRequestFor(change, { workflowId: WORKFLOW, account: MGMT });
const rollbackRequest = (change: Change, observed: ChangeResult['observed']): RollbackRequest => rollbackRequestFor(change, observed, { workflowId: WORKFLOW, account: MGMT });

/** A management account of an all-features organization with nothing in place yet. */
function freshOrganization(): void {
  sts.on(GetCallerIdentityCommand).resolves({ Account: MGMT, Arn: `arn:aws:iam::${MGMT}:role/countersign-worker`, UserId: 'AROA' });
  organizations.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG, Arn: ORG_ARN, FeatureSet: 'ALL', MasterAccountId: MGMT } });
  organizations.on(ListAWSServiceAccessForOrganizationCommand).resolves({ EnabledServicePrincipals: [{ ServicePrincipal: 'sso.amazonaws.com' }] });
  s3.on(HeadBucketCommand).rejects(awsError('NotFound', 404));
  cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
  cloudtrail.on(GetTrailCommand).rejects(awsError('TrailNotFoundException'));
}

/** A trail as CloudTrail describes it, configured as org-trail wants (a declaration: used above it too). */
function trailOf(over: Partial<Trail> = {}): Trail {
  return {
    Name: 'org-trail',
    TrailARN: TRAIL_ARN,
    HomeRegion: 'us-east-1',
    S3BucketName: BUCKET,
    IsOrganizationTrail: true,
    IsMultiRegionTrail: true,
    IncludeGlobalServiceEvents: true,
    LogFileValidationEnabled: true,
    ...over,
  };
}

/** The bucket exists with every protection and the merged policy in place. */
function compliantBucket(policy: PolicyDocument = mergeStatements({ Version: '2012-10-17', Statement: [FOREIGN] }, statements())): void {
  s3.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' });
  s3.on(GetPublicAccessBlockCommand).resolves({ PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } });
  s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
  s3.on(GetBucketOwnershipControlsCommand).resolves({ OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] } });
  s3.on(GetBucketEncryptionCommand).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } });
  s3.on(GetBucketPolicyCommand).resolves({ Policy: JSON.stringify(policy) });
}

beforeEach(() => {
  for (const mock of [cloudtrail, s3, organizations, sts]) mock.reset();
});
afterEach(() => aws?.destroy());

describe('planning the organization trail', () => {
  it('plans trusted access (never undone), the bucket with each protection and the policy, the trail and logging on a fresh organization', async () => {
    freshOrganization();
    const plan = await run(activitiesFor().planOrgTrail, planRequest());
    expect(plan.changes.map((c) => c.id)).toEqual([
      'enable-trusted-access/cloudtrail.amazonaws.com',
      `create-log-bucket/${BUCKET}`,
      `block-public-access/${BUCKET}`,
      `enable-versioning/${BUCKET}`,
      `enforce-bucket-owner/${BUCKET}`,
      `set-default-encryption/${BUCKET}`,
      `put-bucket-policy/${BUCKET}`,
      'create-trail/org-trail',
      'start-logging/org-trail',
    ]);
    const byId = (id: string) => plan.changes.find((c) => c.id === id) as Change;
    expect(byId('enable-trusted-access/cloudtrail.amazonaws.com')).toMatchObject({ resource: ORG_ARN, reversible: false, stage: 'organization' });
    expect(byId(`put-bucket-policy/${BUCKET}`).after).toMatchObject({ policy: { Statement: statements() } });
    expect(byId('create-trail/org-trail')).toMatchObject({
      resource: TRAIL_ARN,
      reversible: true,
      dependsOn: ['enable-trusted-access/cloudtrail.amazonaws.com', `create-log-bucket/${BUCKET}`, `put-bucket-policy/${BUCKET}`],
      after: { config: { isOrganizationTrail: true, isMultiRegionTrail: true, logFileValidationEnabled: true } },
    });
    expect(plan.changes.filter((c) => c.id !== 'enable-trusted-access/cloudtrail.amazonaws.com').every((c) => c.reversible)).toBe(true);
    expect(plan.stages.find((s) => s.name === 'trail')?.concurrency).toBe(1);
  });

  it('plans nothing on a compliant estate, listing each part as already compliant', async () => {
    freshOrganization();
    organizations.on(ListAWSServiceAccessForOrganizationCommand).resolves({ EnabledServicePrincipals: [{ ServicePrincipal: 'cloudtrail.amazonaws.com' }] });
    compliantBucket();
    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf() });
    cloudtrail.on(GetTrailStatusCommand).resolves({ IsLogging: true });
    const plan = await run(activitiesFor().planOrgTrail, planRequest());
    expect(plan.changes).toEqual([]);
    expect(plan.leftAlone.every((l) => l.reason === 'already-compliant')).toBe(true);
    expect(plan.leftAlone).toHaveLength(9);
  });

  it('plans an update with before and after for an existing trail of another configuration, and the policy merged into the existing one', async () => {
    freshOrganization();
    compliantBucket({ Version: '2012-10-17', Statement: [FOREIGN] });
    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf({ IsOrganizationTrail: false, LogFileValidationEnabled: false }) });
    cloudtrail.on(GetTrailStatusCommand).resolves({ IsLogging: true });
    const plan: KindPlan = await run(activitiesFor().planOrgTrail, planRequest());
    const update = plan.changes.find((c) => c.id === 'update-trail/org-trail');
    expect(update).toMatchObject({ action: 'update-trail', reversible: true, before: { config: { isOrganizationTrail: false } }, after: { config: { isOrganizationTrail: true } } });
    expect(update?.summary).toMatch(/isOrganizationTrail, logFileValidationEnabled/);
    const policy = plan.changes.find((c) => c.id === `put-bucket-policy/${BUCKET}`);
    expect(policy).toMatchObject({ reversible: true, before: { policy: { Statement: [FOREIGN] } }, after: { policy: { Statement: [FOREIGN, ...statements()] } } });
    expect(plan.changes.some((c) => c.action === 'start-logging')).toBe(false);
  });

  it('marks turning on versioning of a never-versioned existing bucket as not undoable', async () => {
    freshOrganization();
    compliantBucket();
    s3.on(GetBucketVersioningCommand).resolves({});
    const plan = await run(activitiesFor().planOrgTrail, planRequest());
    expect(plan.changes.find((c) => c.action === 'enable-versioning')).toMatchObject({ reversible: false, before: { versioning: null }, after: { versioning: 'Enabled' } });
  });

  it('refuses, naming what to do, outside an all-features organization, from a member account, and with no organization', async () => {
    freshOrganization();
    const activities = activitiesFor();
    organizations.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG, Arn: ORG_ARN, FeatureSet: 'CONSOLIDATED_BILLING', MasterAccountId: MGMT } });
    await expect(run(activities.planOrgTrail, planRequest())).rejects.toMatchObject({ type: 'OrganizationNotAllFeatures', nonRetryable: true, message: expect.stringContaining('enable-all-features') });

    organizations.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG, Arn: ORG_ARN, FeatureSet: 'ALL', MasterAccountId: MGMT } });
    sts.on(GetCallerIdentityCommand).resolves({ Account: MEMBER, Arn: `arn:aws:iam::${MEMBER}:role/countersign-worker` });
    await expect(run(activitiesFor().planOrgTrail, planRequest(MEMBER))).rejects.toMatchObject({
      type: 'NotManagementAccount',
      message: expect.stringMatching(new RegExp(`management account is ${MGMT}.*delegated administrator`)),
    });

    organizations.on(DescribeOrganizationCommand).rejects(awsError('AWSOrganizationsNotInUseException'));
    await expect(run(activitiesFor().planOrgTrail, planRequest(MEMBER))).rejects.toMatchObject({ type: 'NotInOrganization', message: expect.stringContaining('create-organization --feature-set ALL') });
  });

  it('refuses CloudWatch Logs parameters given half, or in another account', async () => {
    freshOrganization();
    const activities = activitiesFor();
    await expect(run(activities.planOrgTrail, planRequest(MGMT, { cloudWatchLogsGroupArn: `arn:aws:logs:us-east-1:${MGMT}:log-group:trail:*` }))).rejects.toMatchObject({ type: 'InvalidParameters', message: expect.stringContaining('go together') });
    await expect(
      run(activities.planOrgTrail, planRequest(MGMT, { cloudWatchLogsGroupArn: `arn:aws:logs:us-east-1:${MEMBER}:log-group:trail:*`, cloudWatchLogsRoleArn: `arn:aws:iam::${MGMT}:role/ct` })),
    ).rejects.toMatchObject({ message: expect.stringContaining(`in account ${MEMBER}`) });
  });

  it('refuses a trail name held by a multi-region trail homed in another region', async () => {
    freshOrganization();
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [{ Name: 'org-trail', HomeRegion: 'eu-west-1', TrailARN: `arn:aws:cloudtrail:eu-west-1:${MGMT}:trail/org-trail`, IsMultiRegionTrail: true }] });
    await expect(run(activitiesFor().planOrgTrail, planRequest())).rejects.toMatchObject({ type: 'TrailNameTaken', message: expect.stringContaining('homeRegion=eu-west-1') });
  });
});

describe('finding the log bucket', () => {
  it('reads the region of a bucket in another region from the redirect, and refuses a bucket of another account', async () => {
    const client = new S3Client({ region: 'us-east-1' });
    s3.on(HeadBucketCommand).rejects(awsError('301', 301, { $response: { headers: { 'x-amz-bucket-region': 'eu-west-1' } } }));
    await expect(locateBucket(client, BUCKET, MGMT)).resolves.toEqual({ exists: true, region: 'eu-west-1' });
    s3.on(HeadBucketCommand).rejects(awsError('Forbidden', 403));
    await expect(locateBucket(client, BUCKET, MGMT)).rejects.toMatchObject({ type: 'LogBucketNotOwned', nonRetryable: true });
    expect(s3.commandCalls(HeadBucketCommand)[0]?.args[0].input).toMatchObject({ ExpectedBucketOwner: MGMT });
    client.destroy();
  });
});

describe('creating, updating and starting the trail on AWS', () => {
  async function plannedChange(id: string): Promise<Change> {
    freshOrganization();
    const plan = await run(activitiesFor().planOrgTrail, planRequest());
    cloudtrail.reset();
    return plan.changes.find((c) => c.id === id) as Change;
  }

  it('maps CloudTrail refusals at CreateTrail to failures that say what to do', async () => {
    const change = await plannedChange('create-trail/org-trail');
    const activities = activitiesFor();
    cloudtrail.on(GetTrailCommand).rejects(awsError('TrailNotFoundException'));
    const cases: [string, RegExp][] = [
      ['InsufficientS3BucketPolicyException', /policy must let cloudtrail.amazonaws.com/],
      ['NotOrganizationMasterAccountException', /not its organization's management account/],
      ['OrganizationNotInAllFeaturesModeException', /enable-all-features/],
      ['CloudTrailAccessNotEnabledException', /enable-aws-service-access --service-principal cloudtrail.amazonaws.com/],
    ];
    for (const [name, advice] of cases) {
      cloudtrail.on(CreateTrailCommand).rejects(awsError(name));
      await expect(run(activities.createOrganizationTrail, changeRequest(change), PROPAGATION_ATTEMPTS)).rejects.toMatchObject({ type: `AWS.${name}`, nonRetryable: true, message: expect.stringMatching(advice) });
    }
  });

  it('on TrailAlreadyExistsException compares the trail: adopts one configured as approved, leaves another alone', async () => {
    const change = await plannedChange('create-trail/org-trail');
    const activities = activitiesFor();
    /** AWS: GetTrail finds nothing, then CreateTrail meets a trail created in between. */
    const createdInBetween = (trail: Trail) => {
      cloudtrail.reset();
      cloudtrail.on(GetTrailCommand).rejectsOnce(awsError('TrailNotFoundException')).resolves({ Trail: trail });
      cloudtrail.on(CreateTrailCommand).rejects(awsError('TrailAlreadyExistsException'));
      cloudtrail.on(ListTagsCommand).resolves({ ResourceTagList: [{ ResourceId: TRAIL_ARN, TagsList: [] }] });
    };
    createdInBetween(trailOf());
    await expect(run(activities.createOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'already-done', observed: { createdByThisRun: false } });
    expect(cloudtrail.commandCalls(CreateTrailCommand)).toHaveLength(1);

    createdInBetween(trailOf({ IsOrganizationTrail: false }));
    await expect(run(activities.createOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringContaining('isOrganizationTrail') });
    expect(cloudtrail.commandCalls(CreateTrailCommand)).toHaveLength(1);
    expect(cloudtrail.commandCalls(UpdateTrailCommand)).toHaveLength(0);

    // A retry of this run's own create finds its trail by the tag, so the rollback still deletes it.
    cloudtrail.reset();
    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf() });
    cloudtrail.on(ListTagsCommand).resolves({ ResourceTagList: [{ ResourceId: TRAIL_ARN, TagsList: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }] }] });
    await expect(run(activities.createOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'already-done', observed: { createdByThisRun: true } });
  });

  it('creates the trail tagged with the workflow, and deletes it on rollback by ARN', async () => {
    const change = await plannedChange('create-trail/org-trail');
    const activities = activitiesFor();
    cloudtrail.on(GetTrailCommand).rejectsOnce(awsError('TrailNotFoundException')).resolves({ Trail: trailOf() });
    cloudtrail.on(CreateTrailCommand).resolves({});
    await expect(run(activities.createOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'applied', observed: { createdByThisRun: true } });
    expect(cloudtrail.commandCalls(CreateTrailCommand)[0]?.args[0].input).toMatchObject({
      Name: 'org-trail',
      IsOrganizationTrail: true,
      IsMultiRegionTrail: true,
      EnableLogFileValidation: true,
      TagsList: [{ Key: CREATED_BY_TAG, Value: WORKFLOW }],
    });
    cloudtrail.reset();
    cloudtrail.on(GetTrailCommand).resolvesOnce({ Trail: trailOf() }).rejects(awsError('TrailNotFoundException'));
    cloudtrail.on(DeleteTrailCommand).resolves({});
    await expect(run(activities.deleteCreatedOrganizationTrail, rollbackRequest(change, { createdByThisRun: true }))).resolves.toMatchObject({ status: 'applied' });
    expect(cloudtrail.commandCalls(DeleteTrailCommand)[0]?.args[0].input.Name).toBe(TRAIL_ARN);
  });

  it('never deletes on rollback a trail this run did not create', async () => {
    const change = await plannedChange('create-trail/org-trail');
    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf() });
    cloudtrail.on(ListTagsCommand).resolves({ ResourceTagList: [{ ResourceId: TRAIL_ARN, TagsList: [{ Key: CREATED_BY_TAG, Value: 'org-trail/another-run' }] }] });
    await expect(run(activitiesFor().deleteCreatedOrganizationTrail, rollbackRequest(change, { createdByThisRun: false }))).resolves.toMatchObject({ status: 'left-alone' });
    expect(cloudtrail.commandCalls(DeleteTrailCommand)).toHaveLength(0);
  });

  it('starts logging by ARN on AWS (a name resolves only in the caller\'s own account and region), and by name on the emulator', async () => {
    const change = await plannedChange('start-logging/org-trail');
    cloudtrail.on(GetTrailStatusCommand).resolves({ IsLogging: false });
    cloudtrail.on(StartLoggingCommand).resolves({});
    await expect(run(activitiesFor().startOrganizationTrailLogging, changeRequest(change))).resolves.toMatchObject({ status: 'applied', observed: { startedByThisRun: true } });
    expect(cloudtrail.commandCalls(StartLoggingCommand)[0]?.args[0].input.Name).toBe(TRAIL_ARN);
    cloudtrail.resetHistory();
    await run(activitiesFor('moto').startOrganizationTrailLogging, changeRequest(change));
    expect(cloudtrail.commandCalls(StartLoggingCommand)[0]?.args[0].input.Name).toBe('org-trail');
  });

  it('updates an existing trail only from the approved configuration, and writes it back on rollback', async () => {
    freshOrganization();
    compliantBucket();
    const before = trailOf({ IsOrganizationTrail: false, LogFileValidationEnabled: false });
    cloudtrail.on(GetTrailCommand).resolves({ Trail: before });
    cloudtrail.on(GetTrailStatusCommand).resolves({ IsLogging: true });
    const activities = activitiesFor();
    const plan = await run(activities.planOrgTrail, planRequest());
    const change = plan.changes.find((c) => c.id === 'update-trail/org-trail') as Change;
    cloudtrail.on(UpdateTrailCommand).resolves({});
    await expect(run(activities.updateOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'applied' });
    expect(cloudtrail.commandCalls(UpdateTrailCommand)[0]?.args[0].input).toEqual({ Name: TRAIL_ARN, IsOrganizationTrail: true, EnableLogFileValidation: true });

    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf({ IsOrganizationTrail: false, LogFileValidationEnabled: true }) });
    await expect(run(activities.updateOrganizationTrail, changeRequest(change))).resolves.toMatchObject({ status: 'left-alone', detail: expect.stringContaining('changed after approval') });

    cloudtrail.resetHistory();
    cloudtrail.on(GetTrailCommand).resolves({ Trail: trailOf() });
    await expect(run(activities.restoreOrganizationTrail, rollbackRequest(change, { changed: true }))).resolves.toMatchObject({ status: 'applied' });
    expect(cloudtrail.commandCalls(UpdateTrailCommand)[0]?.args[0].input).toEqual({ Name: TRAIL_ARN, IsOrganizationTrail: false, EnableLogFileValidation: false });
  });

  it('enables trusted access once, and reports it done when it already is', async () => {
    freshOrganization();
    const activities = activitiesFor();
    const plan = await run(activities.planOrgTrail, planRequest());
    const change = plan.changes[0] as Change;
    organizations.on(EnableAWSServiceAccessCommand).resolves({});
    await expect(run(activities.enableCloudTrailTrustedAccess, changeRequest(change))).resolves.toMatchObject({ status: 'applied' });
    organizations.on(ListAWSServiceAccessForOrganizationCommand).resolves({ EnabledServicePrincipals: [{ ServicePrincipal: 'cloudtrail.amazonaws.com' }] });
    await expect(run(activities.enableCloudTrailTrustedAccess, changeRequest(change))).resolves.toMatchObject({ status: 'already-done' });
    expect(organizations.commandCalls(EnableAWSServiceAccessCommand)).toHaveLength(1);
  });
});
