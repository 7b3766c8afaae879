/**
 * org-trail activities: check the organization, plan trusted access, the log bucket and its
 * protections, the trail and its logging; apply each change with one AWS mutation; undo what this
 * run did; verify (docs/kinds/org-trail.md).
 *
 * Undo follows one rule: an activity undoes only what its apply reported doing itself (`observed`),
 * and only while the resource is still as that apply left it. What existed before the run — a bucket,
 * a trail, logging already on — is never removed; a setting this run changed on an existing bucket or
 * trail is written back to its approved before-state.
 */
import type { CloudTrailClient, Trail } from '@aws-sdk/client-cloudtrail';
import {
  CreateTrailCommand,
  DeleteTrailCommand,
  DescribeTrailsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  ListTagsCommand,
  StartLoggingCommand,
  StopLoggingCommand,
  UpdateTrailCommand,
} from '@aws-sdk/client-cloudtrail';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import { DescribeOrganizationCommand, EnableAWSServiceAccessCommand, paginateListAWSServiceAccessForOrganization } from '@aws-sdk/client-organizations';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Json, JsonObject } from '../common/json';
import type { KindParams } from '../common/kinds';
import { KINDS } from '../common/kinds';
import type { Change, ChangeOutcome, KindPlan, LeftAlone, VerifyCheck, VerifyResult } from '../common/plan';
import type { AccountRef, ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../common/requests';
import type { AccountClients, AwsClients } from './aws/clients';
import { awsErrorName, isAwsError } from './aws/errors';
import { orgTrailStatements } from './cloudtrail/bucket-policy';
import type { BucketSetting, LogBucketSpec } from './cloudtrail/log-bucket';
import { BUCKET_SETTINGS, bucketIsEmpty, bucketSetting, createBucket, deleteBucket, locateBucket } from './cloudtrail/log-bucket';
import type { TrailConfig } from './cloudtrail/trail-config';
import { createTrailInput, desiredTrailConfig, sameTrailConfig, trailConfigDifferences, trailConfigOf, updateTrailInput } from './cloudtrail/trail-config';
import type { TrailErrorContext } from './cloudtrail/trail-errors';
import { explainTrailError } from './cloudtrail/trail-errors';
import { keepAlive } from './heartbeat';

export const CLOUDTRAIL_PRINCIPAL = 'cloudtrail.amazonaws.com';
/** The tag a trail this kind creates carries: the workflow that created it, so a retried create or a rollback knows it. */
export const CREATED_BY_TAG = 'countersign:created-by';

export interface OrgTrailDeps {
  aws: AwsClients;
  now?: () => Date;
}

type Params = KindParams<'org-trail'>;

/** A refusal a human must resolve: the run ends failed with this message, nothing changed. */
function precondition(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

function invalidPlan(change: Change, what: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidPlan', nonRetryable: true, message: `change ${change.id} ${what}` });
}

const partitionOf = (arn: string): string => arn.split(':')[1] || 'aws';

/** The attempt of the running activity (1 outside one, e.g. in unit tests). */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

// --- what changes carry in before/after (plain JSON in history) ---

interface TrailRef extends JsonObject {
  trail: string;
  arn: string;
  homeRegion: string;
}

interface BucketRef extends JsonObject {
  bucket: string;
  region: string;
}

function field<T extends Json>(change: Change, side: 'before' | 'after', key: string): T | undefined {
  const doc = change[side];
  return doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc[key] as T | undefined) : undefined;
}

function trailRefOf(change: Change): TrailRef {
  const ref = change.after as Partial<TrailRef> | null;
  if (!ref || typeof ref.trail !== 'string' || typeof ref.arn !== 'string' || typeof ref.homeRegion !== 'string') throw invalidPlan(change, 'names no trail');
  return { trail: ref.trail, arn: ref.arn, homeRegion: ref.homeRegion };
}

function bucketRefOf(change: Change): BucketRef {
  const ref = change.after as Partial<BucketRef> | null;
  if (!ref || typeof ref.bucket !== 'string' || typeof ref.region !== 'string') throw invalidPlan(change, 'names no bucket');
  return { bucket: ref.bucket, region: ref.region };
}

function configOf(change: Change, side: 'before' | 'after'): TrailConfig {
  const config = field<TrailConfig>(change, side, 'config');
  if (!config) throw invalidPlan(change, `has no trail configuration ${side}`);
  return config;
}

const observedOf = (result: { observed?: Json }): JsonObject => (result.observed && typeof result.observed === 'object' && !Array.isArray(result.observed) ? result.observed : {});

// --- reads shared by plan, apply, rollback and verify ---

async function getTrail(ct: CloudTrailClient, arn: string): Promise<Trail | null> {
  try {
    return (await ct.send(new GetTrailCommand({ Name: arn }))).Trail ?? null;
  } catch (err) {
    if (isAwsError(err, 'TrailNotFoundException')) return null;
    throw err;
  }
}

async function trailTaggedBy(ct: CloudTrailClient, arn: string, workflowId: string): Promise<boolean> {
  const listed = await ct.send(new ListTagsCommand({ ResourceIdList: [arn] }));
  return (listed.ResourceTagList ?? []).some((r) => (r.TagsList ?? []).some((t) => t.Key === CREATED_BY_TAG && t.Value === workflowId));
}

async function trustedAccessEnabled(orgs: OrganizationsClient): Promise<boolean> {
  for await (const page of paginateListAWSServiceAccessForOrganization({ client: orgs }, {})) {
    if ((page.EnabledServicePrincipals ?? []).some((p) => p.ServicePrincipal === CLOUDTRAIL_PRINCIPAL)) return true;
  }
  return false;
}

interface OrganizationFacts {
  id: string;
  arn: string;
  managementAccount: string;
}

/** The organization the account is in, refusing unless it has all features and the account is its management account. */
async function organizationOf(orgs: OrganizationsClient, account: string): Promise<OrganizationFacts> {
  let org;
  try {
    org = (await orgs.send(new DescribeOrganizationCommand({}))).Organization;
  } catch (err) {
    if (isAwsError(err, 'AWSOrganizationsNotInUseException')) {
      throw precondition('NotInOrganization', `account ${account} is in no AWS organization; an organization trail needs one with all features: \`aws organizations create-organization --feature-set ALL\` from the account that is to be the management account`);
    }
    if (isAwsError(err, 'AccessDeniedException', 'AccessDenied')) {
      throw precondition('OrganizationNotReadable', `account ${account} may not describe its organization (${awsErrorName(err)}); run with the management account's credentials, which need organizations:DescribeOrganization`);
    }
    throw err;
  }
  if (!org?.Id || !org.MasterAccountId || !org.Arn) throw precondition('OrganizationNotReadable', 'DescribeOrganization answered without the organization id, ARN or management account');
  if (org.FeatureSet !== 'ALL') {
    throw precondition(
      'OrganizationNotAllFeatures',
      `organization ${org.Id} has only consolidated-billing features (FeatureSet ${org.FeatureSet ?? 'unknown'}); organization trails need all features: \`aws organizations enable-all-features\` from the management account ${org.MasterAccountId}, then every member account accepts the handshake`,
    );
  }
  if (org.MasterAccountId !== account) {
    throw precondition(
      'NotManagementAccount',
      `account ${account} is a member of organization ${org.Id}, whose management account is ${org.MasterAccountId}; only the management account creates the organization trail here — run the worker with the management account's credentials (or --account ${org.MasterAccountId}). AWS also lets a CloudTrail delegated administrator create one, which this remediation does not support (the AWS emulator used to test it cannot register one)`,
    );
  }
  return { id: org.Id, arn: org.Arn, managementAccount: org.MasterAccountId };
}

/** The parameters that must agree with each other and with the account, checked before anything is read. */
function checkParams(params: Params, account: string): void {
  const group = params.cloudWatchLogsGroupArn;
  const role = params.cloudWatchLogsRoleArn;
  if ((group === undefined) !== (role === undefined)) {
    throw precondition('InvalidParameters', 'cloudWatchLogsGroupArn and cloudWatchLogsRoleArn go together: CloudTrail delivers to a log group by assuming the role; give both or neither');
  }
  for (const [name, arn] of [['cloudWatchLogsGroupArn', group], ['cloudWatchLogsRoleArn', role]] as const) {
    const owner = arn?.split(':')[4];
    if (arn !== undefined && owner !== account) {
      throw precondition('InvalidParameters', `${name} ${arn} is in account ${owner || '(none)'}; the log group and the role must be in the management account ${account}`);
    }
  }
}

const leftAloneCompliant = (resource: string, detail: string): LeftAlone => ({ resource, reason: 'already-compliant', detail });

export function createOrgTrailActivities(deps: OrgTrailDeps) {
  const { aws } = deps;
  const now = deps.now ?? (() => new Date());
  const clientsOf = (ref: AccountRef): Promise<AccountClients> => aws.forAccount(ref);
  /**
   * StartLogging, StopLogging and DeleteTrail take the trail's ARN on AWS (a name resolves only in
   * the caller's own account and region). The emulator looks these three up by name only: an ARN
   * answers HTTP 500 (start, stop) or is silently ignored (delete). So the name is passed there.
   */
  const byNameOrArn = (ref: TrailRef): string => (aws.settings.emulator === 'moto' ? ref.trail : ref.arn);
  const errorContext = (request: AccountRef, ref: TrailRef, bucket: string): TrailErrorContext => ({
    account: request.account,
    bucket,
    trailName: ref.trail,
    homeRegion: ref.homeRegion,
    attempt: currentAttempt(),
  });
  /** A CloudTrail call whose refusals are explained (trail-errors.ts); anything else is classified as usual. */
  async function explained<R>(call: Promise<R>, context: TrailErrorContext): Promise<R> {
    try {
      return await call;
    } catch (err) {
      throw explainTrailError(err, context) ?? err;
    }
  }

  return {
    async planOrgTrail(request: PlanRequest<Params>): Promise<KindPlan> {
      const { params, account } = request;
      const homeRegion = params.homeRegion ?? request.region;
      checkParams(params, account);
      const clients = await clientsOf(request);
      const partition = partitionOf((await clients.identity()).arn);
      const org = await organizationOf(clients.organizations(), account);
      const trailArn = `arn:${partition}:cloudtrail:${homeRegion}:${account}:trail/${params.trailName}`;
      const bucketArn = `arn:${partition}:s3:::${params.bucket}`;
      const changes: Change[] = [];
      const leftAlone: LeftAlone[] = [];
      const notes: string[] = [
        `organization ${org.id} (all features); management account ${account}; trail ${trailArn}, delivering to s3://${params.bucket}`,
        'runs only from the management account: a CloudTrail delegated administrator would also be allowed by AWS, and is not supported here',
      ];

      // 1. Trusted access. Never undone: disabling it turns every organization trail back into a
      //    trail of the management account alone.
      keepAlive({ reading: 'trusted access' });
      const trustedChange = `enable-trusted-access/${CLOUDTRAIL_PRINCIPAL}`;
      if (await trustedAccessEnabled(clients.organizations())) {
        leftAlone.push(leftAloneCompliant(org.arn, `trusted access for ${CLOUDTRAIL_PRINCIPAL} is already enabled`));
      } else {
        changes.push({
          id: trustedChange,
          stage: 'organization',
          action: 'enable-trusted-access',
          resource: org.arn,
          summary: `enable trusted access for ${CLOUDTRAIL_PRINCIPAL} in organization ${org.id} (EnableAWSServiceAccess); never undone, as disabling it would turn organization trails into single-account trails`,
          before: { servicePrincipal: CLOUDTRAIL_PRINCIPAL, enabled: false },
          after: { servicePrincipal: CLOUDTRAIL_PRINCIPAL, enabled: true },
          reversible: false,
          destructive: false,
        });
      }

      // 2. The log bucket and its protections.
      keepAlive({ reading: params.bucket });
      const location = await locateBucket(clients.s3(homeRegion), params.bucket, account);
      const bucketRegion = location.exists ? location.region : homeRegion;
      const spec: LogBucketSpec = {
        kmsKeyId: params.kmsKeyId ?? null,
        statements: orgTrailStatements({ partition, bucket: params.bucket, managementAccount: account, organizationId: org.id, trailArn }),
      };
      const bucketRef: BucketRef = { bucket: params.bucket, region: bucketRegion };
      const createBucketId = `create-log-bucket/${params.bucket}`;
      if (!location.exists) {
        changes.push({
          id: createBucketId,
          stage: 'log-bucket',
          action: 'create-log-bucket',
          resource: bucketArn,
          summary: `create the S3 bucket ${params.bucket} in ${bucketRegion}; undone (deleted) only while it is still empty`,
          before: { bucket: params.bucket, exists: false },
          after: { ...bucketRef, exists: true },
          reversible: true,
          destructive: false,
        });
      } else {
        leftAlone.push(leftAloneCompliant(bucketArn, `the bucket exists (in ${bucketRegion}) and is kept`));
        if (bucketRegion !== homeRegion) notes.push(`the bucket is in ${bucketRegion}, the trail's home region is ${homeRegion}: CloudTrail delivers across regions; a KMS key must be in the bucket's region`);
      }
      const bucketS3 = clients.s3(bucketRegion);
      let policyChange: string | undefined;
      for (const setting of BUCKET_SETTINGS) {
        const id = `${setting.action}/${params.bucket}`;
        if (!location.exists) {
          const target = setting.target(null, spec);
          changes.push({
            id,
            stage: 'log-bucket',
            action: setting.action,
            resource: bucketArn,
            summary: `${settingSummary(setting, spec)} on the new bucket ${params.bucket}`,
            before: { ...bucketRef, newBucket: true },
            after: { ...bucketRef, [setting.field]: target },
            reversible: true,
            destructive: false,
            dependsOn: [createBucketId],
          });
          if (setting.action === 'put-bucket-policy') policyChange = id;
          continue;
        }
        keepAlive({ reading: `${params.bucket} ${setting.field}` });
        const live = await setting.read({ s3: bucketS3, bucket: params.bucket, account });
        if (setting.holds(live, spec)) {
          leftAlone.push(leftAloneCompliant(bucketArn, `${setting.field}: already compliant`));
          continue;
        }
        const reversible = setting.restorable(live);
        changes.push({
          id,
          stage: 'log-bucket',
          action: setting.action,
          resource: bucketArn,
          summary: `${settingSummary(setting, spec)} on the existing bucket ${params.bucket}${reversible ? '; undone by writing back the value before' : '; not undone: the bucket never had versioning, and it can only be suspended, never removed'}`,
          before: { ...bucketRef, [setting.field]: live },
          after: { ...bucketRef, [setting.field]: setting.target(live, spec) },
          reversible,
          destructive: false,
        });
        if (setting.action === 'put-bucket-policy') policyChange = id;
      }

      // 3. The trail. An existing one of the same name is adopted when configured as asked, updated otherwise.
      keepAlive({ reading: trailArn });
      const ct = clients.cloudtrail(homeRegion);
      const desired = desiredTrailConfig(params);
      const trailRef: TrailRef = { trail: params.trailName, arn: trailArn, homeRegion };
      const described = (await ct.send(new DescribeTrailsCommand({ includeShadowTrails: true }))).trailList ?? [];
      const elsewhere = described.find((t) => t.Name === params.trailName && t.HomeRegion && t.HomeRegion !== homeRegion && t.TrailARN?.split(':')[4] === account);
      const existing = await getTrail(ct, trailArn);
      if (!existing && elsewhere) {
        throw precondition(
          'TrailNameTaken',
          `a multi-region trail named ${params.trailName} already exists with home region ${elsewhere.HomeRegion} (${elsewhere.TrailARN}); pass homeRegion=${elsewhere.HomeRegion} to adopt or update it, or another trailName`,
        );
      }
      const otherOrgTrails = described.filter((t) => t.IsOrganizationTrail && t.TrailARN !== trailArn).map((t) => t.TrailARN);
      if (otherOrgTrails.length > 0) notes.push(`other organization trails already exist: ${otherOrgTrails.join(', ')} (each records every account's management events again, at extra cost)`);
      const trailDeps = [...(changes.some((c) => c.id === trustedChange) ? [trustedChange] : []), ...(location.exists ? [] : [createBucketId]), ...(policyChange ? [policyChange] : [])];
      let trailChange: string | undefined;
      let logging = false;
      if (!existing) {
        trailChange = `create-trail/${params.trailName}`;
        changes.push({
          id: trailChange,
          stage: 'trail',
          action: 'create-trail',
          resource: trailArn,
          summary: `create the organization trail ${params.trailName} in ${homeRegion}: every region, global service events, log-file validation${desired.kmsKeyId ? `, SSE-KMS with ${desired.kmsKeyId}` : ''}${desired.cloudWatchLogsLogGroupArn ? ', CloudWatch Logs delivery' : ''}; undone (deleted) on rollback`,
          before: { trail: params.trailName, exists: false },
          after: { ...trailRef, config: desired },
          reversible: true,
          destructive: false,
          ...(trailDeps.length ? { dependsOn: trailDeps } : {}),
        });
      } else {
        const live = trailConfigOf(existing);
        const differences = trailConfigDifferences(live, desired);
        if (differences.length === 0) {
          leftAlone.push(leftAloneCompliant(trailArn, 'the trail exists with this configuration and is adopted as it is'));
        } else {
          trailChange = `update-trail/${params.trailName}`;
          changes.push({
            id: trailChange,
            stage: 'trail',
            action: 'update-trail',
            resource: trailArn,
            summary: `update the existing trail ${params.trailName} (UpdateTrail): ${differences.join(', ')}; undone by writing back its configuration before`,
            before: { ...trailRef, config: live },
            after: { ...trailRef, config: desired },
            reversible: true,
            destructive: false,
            ...(trailDeps.length ? { dependsOn: trailDeps } : {}),
          });
        }
        keepAlive({ reading: `${trailArn} status` });
        const status = await ct.send(new GetTrailStatusCommand({ Name: trailArn }));
        logging = status.IsLogging === true;
        if (status.LatestDeliveryError) notes.push(`the trail reports a delivery error: ${status.LatestDeliveryError}`);
        if (logging) leftAlone.push(leftAloneCompliant(trailArn, 'the trail is already logging'));
      }
      if (!logging) {
        changes.push({
          id: `start-logging/${params.trailName}`,
          stage: 'trail',
          action: 'start-logging',
          resource: trailArn,
          summary: `start logging on ${params.trailName} (a trail records nothing until then); undone (stopped) only if this run started it`,
          before: { ...trailRef, isLogging: false },
          after: { ...trailRef, isLogging: true },
          reversible: true,
          destructive: false,
          ...(trailChange ? { dependsOn: [trailChange] } : {}),
        });
      }
      if (params.kmsKeyId?.startsWith('alias/')) notes.push('kmsKeyId is an alias: AWS reports the key ARN, so pass the key ARN or id for a run on a compliant estate to plan nothing');
      if (aws.settings.emulator) notes.push(`AWS is the ${aws.settings.emulator} emulator at ${aws.settings.endpoint ?? 'the default endpoint'}`);

      log.info('planned organization trail', { workflowId: request.workflowId, account, changes: changes.length, leftAlone: leftAlone.length });
      return {
        createdAt: now().toISOString(),
        stages: [
          { name: 'organization', description: `trusted access for ${CLOUDTRAIL_PRINCIPAL}`, concurrency: 1 },
          // One at a time: S3 refuses concurrent configuration changes to one bucket (OperationAborted).
          { name: 'log-bucket', description: 'create the log bucket if missing, protect it, merge the organization-trail policy', concurrency: 1 },
          // CloudTrail allows about one mutating call per second per account and region.
          { name: 'trail', description: 'create or update the organization trail, start logging', concurrency: 1 },
        ],
        changes,
        leftAlone,
        notes: [...notes, `controls: ${KINDS['org-trail'].controls.join(', ')}`],
      };
    },

    async enableCloudTrailTrustedAccess(request: ChangeRequest): Promise<ChangeOutcome> {
      const orgs = (await clientsOf(request)).organizations();
      if (await trustedAccessEnabled(orgs)) return { status: 'already-done', detail: `trusted access for ${CLOUDTRAIL_PRINCIPAL} was already enabled` };
      await orgs.send(new EnableAWSServiceAccessCommand({ ServicePrincipal: CLOUDTRAIL_PRINCIPAL }));
      log.info('enabled trusted access', { workflowId: request.workflowId, change: request.change.id });
      return { status: 'applied', detail: `enabled trusted access for ${CLOUDTRAIL_PRINCIPAL}` };
    },

    async createLogBucket(request: ChangeRequest): Promise<ChangeOutcome> {
      const { bucket, region } = bucketRefOf(request.change);
      const s3 = (await clientsOf(request)).s3(region);
      // Asked first, so a retry after a create whose answer was lost, or a bucket made by someone else
      // since approval, is reported as existing — and never deleted by a rollback.
      const location = await locateBucket(s3, bucket, request.account);
      if (location.exists) return { status: 'already-done', detail: `the bucket already existed (in ${location.region}); it is kept on rollback`, observed: { createdByThisRun: false } };
      try {
        await createBucket(s3, bucket, region);
      } catch (err) {
        if (isAwsError(err, 'BucketAlreadyOwnedByYou')) return { status: 'already-done', detail: 'the bucket already existed; it is kept on rollback', observed: { createdByThisRun: false } };
        if (isAwsError(err, 'BucketAlreadyExists')) {
          throw ApplicationFailure.create({ type: 'AWS.BucketAlreadyExists', nonRetryable: true, message: `the bucket name ${bucket} was taken by another AWS account after approval; run again with another bucket name` });
        }
        throw err;
      }
      log.info('created log bucket', { workflowId: request.workflowId, change: request.change.id, bucket, region });
      return { status: 'applied', detail: `created ${bucket} in ${region}`, observed: { createdByThisRun: true } };
    },

    async deleteCreatedLogBucket(request: RollbackRequest): Promise<ChangeOutcome> {
      const { bucket, region } = bucketRefOf(request.change);
      if (observedOf(request.result).createdByThisRun !== true) return { status: 'left-alone', detail: 'the bucket existed before this run created anything; kept' };
      const s3 = (await clientsOf(request)).s3(region);
      const location = await locateBucket(s3, bucket, request.account);
      if (!location.exists) return { status: 'already-done', detail: 'the bucket is already gone' };
      if (!(await bucketIsEmpty(s3, bucket, request.account))) return { status: 'left-alone', detail: 'the bucket this run created already holds objects; kept so no log is lost — delete it by hand if it is not wanted' };
      await deleteBucket(s3, bucket, request.account);
      log.info('deleted the log bucket this run created', { workflowId: request.workflowId, change: request.change.id, bucket });
      return { status: 'applied', detail: `deleted the empty bucket ${bucket} this run created` };
    },

    async applyLogBucketSetting(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change } = request;
      const setting = settingOf(change);
      const { bucket, region } = bucketRefOf(change);
      const target = { s3: (await clientsOf(request)).s3(region), bucket, account: request.account };
      const wanted = field<Json>(change, 'after', setting.field) ?? null;
      let live: Json;
      try {
        live = await setting.read(target);
      } catch (err) {
        if (isAwsError(err, 'NoSuchBucket')) return { status: 'left-alone', detail: `left alone: the bucket ${bucket} no longer exists` };
        throw err;
      }
      if (setting.same(live, wanted)) return { status: 'already-done', detail: `${setting.field} was already as approved`, observed: { changed: false } };
      // An existing bucket's setting must still be what the approver saw: the rollback writes that back.
      if (field<boolean>(change, 'before', 'newBucket') !== true && !setting.same(live, field<Json>(change, 'before', setting.field) ?? null)) {
        return { status: 'left-alone', detail: `left alone: ${setting.field} changed after approval (now ${JSON.stringify(live)}); run again to plan from the current state` };
      }
      await setting.write(target, wanted);
      log.info('changed log bucket setting', { workflowId: request.workflowId, change: change.id, setting: setting.field });
      return { status: 'applied', detail: `${setting.field} set`, observed: { changed: true, before: live } };
    },

    async restoreLogBucketSetting(request: RollbackRequest): Promise<ChangeOutcome> {
      const { change } = request;
      const setting = settingOf(change);
      if (field<boolean>(change, 'before', 'newBucket') === true) {
        return { status: 'already-done', detail: 'set on the bucket this run created: goes with the bucket when its creation is undone (kept, protected, if the bucket is kept)' };
      }
      if (observedOf(request.result).changed !== true) return { status: 'left-alone', detail: `${setting.field} was already so before this run; kept` };
      const before = field<Json>(change, 'before', setting.field) ?? null;
      if (!setting.restorable(before)) return { status: 'left-alone', detail: `${setting.field} cannot be written back to ${JSON.stringify(before)}; kept` };
      const { bucket, region } = bucketRefOf(change);
      const target = { s3: (await clientsOf(request)).s3(region), bucket, account: request.account };
      let live: Json;
      try {
        live = await setting.read(target);
      } catch (err) {
        if (isAwsError(err, 'NoSuchBucket')) return { status: 'left-alone', detail: `the bucket ${bucket} no longer exists` };
        throw err;
      }
      if (setting.same(live, before)) return { status: 'already-done', detail: `${setting.field} is already as before` };
      if (!setting.same(live, field<Json>(change, 'after', setting.field) ?? null)) {
        return { status: 'left-alone', detail: `${setting.field} changed again after this run set it (now ${JSON.stringify(live)}); kept as it is` };
      }
      await setting.restore(target, before);
      log.info('restored log bucket setting', { workflowId: request.workflowId, change: change.id, setting: setting.field });
      return { status: 'applied', detail: `${setting.field} written back to its value before the run` };
    },

    async createOrganizationTrail(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change } = request;
      const ref = trailRefOf(change);
      const desired = configOf(change, 'after');
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      const context = errorContext(request, ref, desired.s3BucketName);
      /** A trail of this name already there: ours from an earlier attempt, or one to adopt when configured as approved. */
      const adoptOrRefuse = async (existing: Trail): Promise<ChangeOutcome> => {
        const createdByThisRun = await trailTaggedBy(ct, ref.arn, request.workflowId);
        const differences = trailConfigDifferences(trailConfigOf(existing), desired);
        if (differences.length === 0) {
          return { status: 'already-done', detail: createdByThisRun ? 'created by an earlier attempt of this run' : 'a trail of this name and configuration already existed: adopted, and kept on rollback', observed: { createdByThisRun } };
        }
        return {
          status: 'left-alone',
          detail: `left alone: a trail named ${ref.trail} appeared after approval with another configuration (${differences.join(', ')}); run again to plan an update showing its before and after`,
        };
      };
      // Asked first: the emulator's CreateTrail silently replaces a trail of the same name, where AWS
      // refuses with TrailAlreadyExistsException (handled below for a trail created in between).
      const existing = await getTrail(ct, ref.arn);
      if (existing) return adoptOrRefuse(existing);
      try {
        await explained(ct.send(new CreateTrailCommand(createTrailInput(ref.trail, desired, [{ Key: CREATED_BY_TAG, Value: request.workflowId }]))), context);
      } catch (err) {
        if (isAwsError(err, 'TrailAlreadyExistsException')) {
          const found = await getTrail(ct, ref.arn);
          if (found) return adoptOrRefuse(found);
        }
        throw err;
      }
      log.info('created organization trail', { workflowId: request.workflowId, change: change.id, trail: ref.arn });
      return { status: 'applied', detail: `created ${ref.arn}`, observed: { createdByThisRun: true } };
    },

    async deleteCreatedOrganizationTrail(request: RollbackRequest): Promise<ChangeOutcome> {
      const ref = trailRefOf(request.change);
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      const existing = await getTrail(ct, ref.arn);
      if (!existing) return { status: 'already-done', detail: 'the trail is already gone' };
      const ours = observedOf(request.result).createdByThisRun === true || (await trailTaggedBy(ct, ref.arn, request.workflowId));
      if (!ours) return { status: 'left-alone', detail: 'the trail existed before this run; kept' };
      await explained(ct.send(new DeleteTrailCommand({ Name: byNameOrArn(ref) })), errorContext(request, ref, existing.S3BucketName ?? ''));
      if (await getTrail(ct, ref.arn)) {
        // Retried by Temporal: a delete that answered success must not be reported done while the trail is there.
        throw ApplicationFailure.create({ type: 'TrailStillExists', message: `DeleteTrail answered success but ${ref.arn} still exists` });
      }
      log.info('deleted the trail this run created', { workflowId: request.workflowId, change: request.change.id, trail: ref.arn });
      return { status: 'applied', detail: `deleted ${ref.arn}, which this run created` };
    },

    async updateOrganizationTrail(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change } = request;
      const ref = trailRefOf(change);
      const [before, after] = [configOf(change, 'before'), configOf(change, 'after')];
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      const existing = await getTrail(ct, ref.arn);
      if (!existing) return { status: 'left-alone', detail: `left alone: the trail ${ref.arn} no longer exists; run again to plan its creation` };
      const live = trailConfigOf(existing);
      if (sameTrailConfig(live, after)) return { status: 'already-done', detail: 'the trail was already configured as approved', observed: { changed: false } };
      if (!sameTrailConfig(live, before)) {
        return { status: 'left-alone', detail: `left alone: the trail changed after approval (${trailConfigDifferences(live, before).join(', ')}); run again to plan from its current configuration` };
      }
      await explained(ct.send(new UpdateTrailCommand(updateTrailInput(ref.arn, live, after))), errorContext(request, ref, after.s3BucketName));
      log.info('updated organization trail', { workflowId: request.workflowId, change: change.id, trail: ref.arn });
      return { status: 'applied', detail: `updated ${trailConfigDifferences(live, after).join(', ')}`, observed: { changed: true } };
    },

    async restoreOrganizationTrail(request: RollbackRequest): Promise<ChangeOutcome> {
      const { change } = request;
      const ref = trailRefOf(change);
      if (observedOf(request.result).changed !== true) return { status: 'left-alone', detail: 'the trail was already configured so before this run; kept' };
      const [before, after] = [configOf(change, 'before'), configOf(change, 'after')];
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      const existing = await getTrail(ct, ref.arn);
      if (!existing) return { status: 'left-alone', detail: 'the trail no longer exists' };
      const live = trailConfigOf(existing);
      if (sameTrailConfig(live, before)) return { status: 'already-done', detail: 'the trail is already configured as before' };
      if (!sameTrailConfig(live, after)) return { status: 'left-alone', detail: `the trail changed again after this run updated it (${trailConfigDifferences(live, after).join(', ')}); kept as it is` };
      await explained(ct.send(new UpdateTrailCommand(updateTrailInput(ref.arn, live, before))), errorContext(request, ref, before.s3BucketName));
      log.info('restored organization trail configuration', { workflowId: request.workflowId, change: change.id, trail: ref.arn });
      return { status: 'applied', detail: 'wrote back the configuration the trail had before the run' };
    },

    async startOrganizationTrailLogging(request: ChangeRequest): Promise<ChangeOutcome> {
      const ref = trailRefOf(request.change);
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      const context = errorContext(request, ref, '');
      const status = await explained(ct.send(new GetTrailStatusCommand({ Name: ref.arn })), context);
      if (status.IsLogging) return { status: 'already-done', detail: 'the trail was already logging; kept logging on rollback', observed: { startedByThisRun: false } };
      await explained(ct.send(new StartLoggingCommand({ Name: byNameOrArn(ref) })), context);
      log.info('started logging', { workflowId: request.workflowId, change: request.change.id, trail: ref.arn });
      return { status: 'applied', detail: `started logging on ${ref.arn}`, observed: { startedByThisRun: true } };
    },

    async stopOrganizationTrailLogging(request: RollbackRequest): Promise<ChangeOutcome> {
      const ref = trailRefOf(request.change);
      if (observedOf(request.result).startedByThisRun !== true) return { status: 'left-alone', detail: 'the trail was logging before this run; kept logging' };
      const ct = (await clientsOf(request)).cloudtrail(ref.homeRegion);
      if (!(await getTrail(ct, ref.arn))) return { status: 'already-done', detail: 'the trail is gone' };
      const status = await ct.send(new GetTrailStatusCommand({ Name: ref.arn }));
      if (!status.IsLogging) return { status: 'already-done', detail: 'the trail is not logging' };
      await explained(ct.send(new StopLoggingCommand({ Name: byNameOrArn(ref) })), errorContext(request, ref, ''));
      log.info('stopped logging this run started', { workflowId: request.workflowId, change: request.change.id, trail: ref.arn });
      return { status: 'applied', detail: `stopped the logging this run started on ${ref.arn}` };
    },

    async verifyOrgTrail(request: VerifyRequest): Promise<VerifyResult> {
      const clients = await clientsOf(request);
      const checks: VerifyCheck[] = [];
      for (const { change } of request.applied) {
        keepAlive({ verifying: change.id });
        checks.push({ changeId: change.id, ...(await verifyChange(clients, request.account, change)) });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}

function settingOf(change: Change): BucketSetting {
  const setting = bucketSetting(change.action);
  if (!setting) throw invalidPlan(change, `has action ${change.action}, which is no log bucket setting`);
  return setting;
}

function settingSummary(setting: BucketSetting, spec: LogBucketSpec): string {
  if (setting.action === 'set-default-encryption') return spec.kmsKeyId ? `set default encryption to SSE-KMS with ${spec.kmsKeyId}` : 'set default encryption to SSE-S3';
  return setting.summary;
}

/** Whether what the change promised holds now. */
async function verifyChange(clients: AccountClients, account: string, change: Change): Promise<{ ok: boolean; detail: string }> {
  switch (change.action) {
    case 'enable-trusted-access': {
      const ok = await trustedAccessEnabled(clients.organizations());
      return { ok, detail: ok ? `trusted access for ${CLOUDTRAIL_PRINCIPAL} is enabled` : `trusted access for ${CLOUDTRAIL_PRINCIPAL} is not enabled` };
    }
    case 'create-log-bucket': {
      const { bucket, region } = bucketRefOf(change);
      const location = await locateBucket(clients.s3(region), bucket, account);
      return { ok: location.exists, detail: location.exists ? `${bucket} exists in ${location.region}` : `${bucket} does not exist` };
    }
    case 'create-trail':
    case 'update-trail': {
      const ref = trailRefOf(change);
      const trail = await getTrail(clients.cloudtrail(ref.homeRegion), ref.arn);
      if (!trail) return { ok: false, detail: `${ref.arn} does not exist` };
      const differences = trailConfigDifferences(trailConfigOf(trail), configOf(change, 'after'));
      return { ok: differences.length === 0, detail: differences.length === 0 ? 'organization trail, every region, global service events, log-file validation: as approved' : `differs from the approved configuration: ${differences.join(', ')}` };
    }
    case 'start-logging': {
      const ref = trailRefOf(change);
      const status = await clients.cloudtrail(ref.homeRegion).send(new GetTrailStatusCommand({ Name: ref.arn }));
      const errors = [
        status.LatestDeliveryError && `delivery error ${status.LatestDeliveryError}`,
        status.LatestDigestDeliveryError && `digest delivery error ${status.LatestDigestDeliveryError}`,
        status.LatestCloudWatchLogsDeliveryError && `CloudWatch Logs delivery error ${status.LatestCloudWatchLogsDeliveryError}`,
      ].filter(Boolean);
      if (!status.IsLogging) return { ok: false, detail: 'the trail is not logging' };
      return { ok: errors.length === 0, detail: errors.length ? errors.join('; ') : `logging${status.LatestDeliveryTime ? `, last delivery ${status.LatestDeliveryTime.toISOString()}` : ', no delivery yet (the first arrives within about 15 minutes)'}` };
    }
    default: {
      const setting = settingOf(change);
      const { bucket, region } = bucketRefOf(change);
      const live = await setting.read({ s3: clients.s3(region), bucket, account });
      const ok = setting.same(live, field<Json>(change, 'after', setting.field) ?? null);
      return { ok, detail: ok ? `${setting.field} as approved` : `${setting.field} is ${JSON.stringify(live)}, not as approved` };
    }
  }
}
