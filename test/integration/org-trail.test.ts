/**
 * org-trail end to end against real servers: the shared Temporal dev server and a private moto, in
 * which the sandbox credentials' account is made the management account of an organization.
 *
 * A failure after approval is forced the way it happens in practice: the worker runs as an IAM user
 * whose policy denies cloudtrail:StartLogging, with moto's IAM enforcement switched on for that run
 * only (it checks identity policies; the test's own credentials are no IAM user, so the test reads
 * AWS only once enforcement is off again). No object is ever written to the log bucket: moto applies
 * a bucket policy's Deny statements to object operations without their conditions.
 */
import { CloudTrailClient, GetTrailCommand, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ListAWSServiceAccessForOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import {
  CreateBucketCommand,
  GetBucketEncryptionCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Worker } from '@temporalio/worker';
import { ORG_TRAIL_SIDS } from '../../activities/cloudtrail/bucket-policy';
import { planDigestMatches } from '../../common/digest';
import type { RemediationStatus } from '../../common/messages';
import type { SeededOrganization } from '../../sandbox/organization';
import { seedOrganization } from '../../sandbox/organization';
import { ownStderr, runCli } from '../harness/cli';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const ACCOUNT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const TRAIL = 'org-trail';
const TRAIL_ARN = `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/${TRAIL}`;

let stack: TestStack;
let s3: S3Client;
let cloudtrail: CloudTrailClient;
let organizations: OrganizationsClient;

beforeAll(async () => {
  stack = await startTestStack();
  const config = { region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  s3 = new S3Client({ ...config, forcePathStyle: true });
  cloudtrail = new CloudTrailClient(config);
  organizations = new OrganizationsClient(config);
});
afterAll(async () => {
  s3?.destroy();
  cloudtrail?.destroy();
  organizations?.destroy();
  await stack?.stop();
});

async function freshOrganization(): Promise<SeededOrganization> {
  await stack.moto.reset();
  return seedOrganization(stack.moto.endpoint, { ous: ['Workloads'], accounts: [{ name: 'workloads-prod', ou: 'Workloads' }] });
}

async function startRun(params: Record<string, string>): Promise<string> {
  const { workflowId } = await stack.remediations.start({ kind: 'org-trail', account: ACCOUNT, params, requestedBy: REQUESTER, idSuffix: stack.uniqueSuffix() });
  return workflowId;
}

const awaitingApproval = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
const finished = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 120_000 });

async function approveAndFinish(id: string): Promise<RemediationStatus> {
  const { plan, phase } = await awaitingApproval(id);
  expect(phase).toBe('awaiting-approval');
  const reply = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest });
  expect(reply.accepted).toBe(true);
  return finished(id);
}

async function bucketExists(bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'NotFound') return false;
    throw err;
  }
}

async function trailExists(): Promise<boolean> {
  try {
    await cloudtrail.send(new GetTrailCommand({ Name: TRAIL_ARN }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'TrailNotFoundException') return false;
    throw err;
  }
}

/** A setting S3 reports as "not configured" reads as null. */
async function orNull<T>(read: Promise<T>): Promise<T | null> {
  return read.catch((err: Error) => {
    if (/NoSuch|NotFound/.test(err.name)) return null;
    throw err;
  });
}

async function bucketPolicy(bucket: string): Promise<{ Statement: { Sid?: string }[] } | null> {
  const got = await orNull(s3.send(new GetBucketPolicyCommand({ Bucket: bucket })));
  return got?.Policy ? (JSON.parse(got.Policy) as { Statement: { Sid?: string }[] }) : null;
}

const FOREIGN = (bucket: string) => ({ Sid: 'AllowAuditorsRead', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::333333333333:role/Auditor' }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` });

/** A bucket that existed before the run: versioned, with a policy of someone else's. */
async function existingBucket(bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [FOREIGN(bucket)] }) }));
}

/**
 * Run `body` with the worker acting as an IAM user whose policy allows everything but `denied`, and
 * moto enforcing IAM meanwhile; the worker is back on the sandbox credentials afterwards.
 */
async function withWorkerDenied(denied: string, body: () => Promise<void>): Promise<void> {
  const user = `countersign-worker-${stack.uniqueSuffix()}`;
  await stack.iam.send(new CreateUserCommand({ UserName: user }));
  await stack.iam.send(
    new PutUserPolicyCommand({
      UserName: user,
      PolicyName: 'worker',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: denied, Resource: '*' }] }),
    }),
  );
  const key = (await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  const enforce = async (count: string) => {
    const res = await fetch(`${stack.moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: count });
    expect(res.ok).toBe(true);
  };
  await stack.stopWorker();
  process.env.AWS_ACCESS_KEY_ID = key.AccessKeyId!;
  process.env.AWS_SECRET_ACCESS_KEY = key.SecretAccessKey!;
  try {
    await stack.startWorker();
    await enforce('0');
    await body();
  } finally {
    await enforce('inf');
    await stack.stopWorker();
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    await stack.startWorker();
  }
}

describe('org-trail', () => {
  it('plans trusted access, the bucket with each protection and its policy, the trail and logging; once approved the organization trail logs; a second run plans nothing', async () => {
    const org = await freshOrganization();
    const bucket = `org-logs-${stack.uniqueSuffix()}`;
    const id = await startRun({ bucket });
    const { plan } = await awaitingApproval(id);
    expect(planDigestMatches(plan!)).toBe(true);
    expect(plan!.changes.map((c) => c.id)).toEqual([
      'enable-trusted-access/cloudtrail.amazonaws.com',
      `create-log-bucket/${bucket}`,
      `block-public-access/${bucket}`,
      `enable-versioning/${bucket}`,
      `enforce-bucket-owner/${bucket}`,
      `set-default-encryption/${bucket}`,
      `put-bucket-policy/${bucket}`,
      `create-trail/${TRAIL}`,
      `start-logging/${TRAIL}`,
    ]);
    const trusted = plan!.changes[0]!;
    expect(trusted).toMatchObject({ reversible: false, resource: expect.stringContaining(org.organizationId) });
    const policy = plan!.changes.find((c) => c.action === 'put-bucket-policy')!;
    expect(policy.after).toMatchObject({ policy: { Statement: expect.arrayContaining([expect.objectContaining({ Resource: `arn:aws:s3:::${bucket}/AWSLogs/${org.organizationId}/*` })]) } });
    expect(plan!.notes.join('\n')).toMatch(/delegated administrator/);

    const reply = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: plan!.digest });
    expect(reply.accepted).toBe(true);
    const final = await finished(id);
    expect(final.outcome).toBe('completed');
    expect(final.verification?.ok).toBe(true);
    expect(final.results.filter((r) => r.status === 'applied').map((r) => r.changeId)).toEqual(plan!.changes.map((c) => c.id));

    // In AWS: an organization trail over every region, validated, logging.
    expect((await cloudtrail.send(new GetTrailStatusCommand({ Name: TRAIL_ARN }))).IsLogging).toBe(true);
    expect((await cloudtrail.send(new GetTrailCommand({ Name: TRAIL_ARN }))).Trail).toMatchObject({
      S3BucketName: bucket,
      IsOrganizationTrail: true,
      IsMultiRegionTrail: true,
      IncludeGlobalServiceEvents: true,
      LogFileValidationEnabled: true,
    });
    const access = await organizations.send(new ListAWSServiceAccessForOrganizationCommand({}));
    expect(access.EnabledServicePrincipals?.map((p) => p.ServicePrincipal)).toContain('cloudtrail.amazonaws.com');
    // The bucket: public access blocked, versioned, bucket-owner enforced, encrypted, with the organization statements.
    expect((await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }))).PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true });
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
    expect((await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }))).OwnershipControls?.Rules?.[0]?.ObjectOwnership).toBe('BucketOwnerEnforced');
    expect((await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }))).ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm).toBe('AES256');
    expect((await bucketPolicy(bucket))?.Statement.map((s) => s.Sid)).toEqual(Object.values(ORG_TRAIL_SIDS));

    // The history replays deterministically on the current workflow code.
    const history = await stack.client.workflow.getHandle(id).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, id);

    // A second run finds everything in place.
    const again = await finished(await startRun({ bucket }));
    expect(again.outcome).toBe('no-op');
    expect(again.plan?.changes).toEqual([]);
    expect(again.plan?.leftAlone.every((l) => l.reason === 'already-compliant')).toBe(true);
    expect(again.plan?.leftAlone.map((l) => l.detail)).toEqual(expect.arrayContaining(['the trail exists with this configuration and is adopted as it is', 'the trail is already logging']));
  });

  it("merges the organization statements into an existing bucket's policy, keeping its foreign statement, and leaves what is compliant alone", async () => {
    await freshOrganization();
    const bucket = `org-logs-${stack.uniqueSuffix()}`;
    await existingBucket(bucket);
    const id = await startRun({ bucket });
    const { plan } = await awaitingApproval(id);
    expect(plan!.changes.map((c) => c.action)).toEqual(['enable-trusted-access', 'block-public-access', 'enforce-bucket-owner', 'set-default-encryption', 'put-bucket-policy', 'create-trail', 'start-logging']);
    const policy = plan!.changes.find((c) => c.action === 'put-bucket-policy')!;
    expect(policy).toMatchObject({ reversible: true, before: { policy: { Statement: [FOREIGN(bucket)] } } });
    expect((policy.after as { policy: { Statement: unknown[] } }).policy.Statement[0]).toEqual(FOREIGN(bucket));
    expect(plan!.leftAlone).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'already-compliant', detail: 'versioning: already compliant' })]));

    const final = await approveAndFinish(id);
    expect(final.outcome).toBe('completed');
    expect((await bucketPolicy(bucket))?.Statement.map((s) => s.Sid)).toEqual(['AllowAuditorsRead', ...Object.values(ORG_TRAIL_SIDS)]);
    expect((await cloudtrail.send(new GetTrailStatusCommand({ Name: TRAIL_ARN }))).IsLogging).toBe(true);
  });

  it('undoes what it created when a change fails after approval: the trail and the empty bucket it created are gone; trusted access stays', async () => {
    await freshOrganization();
    const bucket = `org-logs-${stack.uniqueSuffix()}`;
    let final: RemediationStatus | undefined;
    await withWorkerDenied('cloudtrail:StartLogging', async () => {
      final = await approveAndFinish(await startRun({ bucket }));
    });
    expect(final!.outcome).toBe('failed');
    expect(final!.outcomeReason).toMatch(/1 change\(s\) failed in stage "trail"/);
    const status = (id: string) => final!.results.filter((r) => r.changeId === id).map((r) => r.status);
    expect(status(`start-logging/${TRAIL}`)).toEqual(['failed']);
    expect(status(`create-trail/${TRAIL}`)).toEqual(['applied', 'rolled-back']);
    expect(status(`create-log-bucket/${bucket}`)).toEqual(['applied', 'rolled-back']);
    expect(status('enable-trusted-access/cloudtrail.amazonaws.com')).toEqual(['applied']);

    expect(await trailExists()).toBe(false);
    expect(await bucketExists(bucket)).toBe(false);
    const access = await organizations.send(new ListAWSServiceAccessForOrganizationCommand({}));
    expect(access.EnabledServicePrincipals?.map((p) => p.ServicePrincipal)).toContain('cloudtrail.amazonaws.com');
  });

  it('writes an existing bucket back as it was when a change fails after approval, and deletes only the trail it created', async () => {
    await freshOrganization();
    const bucket = `org-logs-${stack.uniqueSuffix()}`;
    await existingBucket(bucket);
    let final: RemediationStatus | undefined;
    await withWorkerDenied('cloudtrail:StartLogging', async () => {
      final = await approveAndFinish(await startRun({ bucket }));
    });
    expect(final!.outcome).toBe('failed');
    expect(final!.results.filter((r) => r.status === 'rolled-back').map((r) => r.changeId)).toEqual([
      `create-trail/${TRAIL}`,
      `put-bucket-policy/${bucket}`,
      `set-default-encryption/${bucket}`,
      `enforce-bucket-owner/${bucket}`,
      `block-public-access/${bucket}`,
    ]);

    expect(await trailExists()).toBe(false);
    expect(await bucketExists(bucket)).toBe(true);
    expect(await bucketPolicy(bucket)).toEqual({ Version: '2012-10-17', Statement: [FOREIGN(bucket)] });
    expect(await orNull(s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket })))).toBeNull();
    expect(await orNull(s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket })))).toBeNull();
    expect(await orNull(s3.send(new GetBucketEncryptionCommand({ Bucket: bucket })))).toBeNull();
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
  });

  it('exits 2 from `countersign start` without the bucket, starting nothing', async () => {
    const suffix = stack.uniqueSuffix();
    const result = await runCli(['start', 'org-trail', '--id-suffix', suffix], stack.env);
    expect(result.code).toBe(2);
    const lines = ownStderr(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/org-trail needs the parameter bucket .*--param bucket=BUCKET/);
    expect(result.stdout).toBe('');
    await expect(stack.client.workflow.getHandle(`org-trail/${ACCOUNT}/${suffix}`).describe()).rejects.toThrow();
  });
});
