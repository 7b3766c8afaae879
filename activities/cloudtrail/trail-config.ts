/**
 * The organization trail's configuration as this kind manages it: what a trail has (from GetTrail),
 * what it should have (from the parameters), where they differ, and the UpdateTrail call that takes
 * one to the other. Pure functions, so the comparison that decides between adopt, update and create
 * is unit-tested.
 *
 * Only the fields below are compared and changed; a trail's SNS topic, event selectors, Insights and
 * tags are its owner's and are never touched.
 */
import type { CreateTrailCommandInput, Trail, UpdateTrailCommandInput } from '@aws-sdk/client-cloudtrail';

export interface TrailConfig {
  [field: string]: string | boolean | null;
  s3BucketName: string;
  s3KeyPrefix: string | null;
  isOrganizationTrail: boolean;
  isMultiRegionTrail: boolean;
  includeGlobalServiceEvents: boolean;
  logFileValidationEnabled: boolean;
  kmsKeyId: string | null;
  cloudWatchLogsLogGroupArn: string | null;
  cloudWatchLogsRoleArn: string | null;
}

export interface TrailParams {
  bucket: string;
  kmsKeyId?: string;
  cloudWatchLogsGroupArn?: string;
  cloudWatchLogsRoleArn?: string;
}

/** What the parameters ask for: an organization trail over every region, validated, delivering to the bucket's root. */
export function desiredTrailConfig(params: TrailParams): TrailConfig {
  return {
    s3BucketName: params.bucket,
    // The bucket policy grants writes under AWSLogs/ at the bucket's root; a key prefix would move them outside it.
    s3KeyPrefix: null,
    isOrganizationTrail: true,
    isMultiRegionTrail: true,
    includeGlobalServiceEvents: true,
    logFileValidationEnabled: true,
    kmsKeyId: params.kmsKeyId ?? null,
    cloudWatchLogsLogGroupArn: params.cloudWatchLogsGroupArn ?? null,
    cloudWatchLogsRoleArn: params.cloudWatchLogsRoleArn ?? null,
  };
}

/** Empty strings and absent fields both mean "not set" (the emulator answers "" where AWS omits the field). */
const orNull = (value: string | undefined | null): string | null => (value ? value : null);

export function trailConfigOf(trail: Trail): TrailConfig {
  return {
    s3BucketName: trail.S3BucketName ?? '',
    s3KeyPrefix: orNull(trail.S3KeyPrefix),
    isOrganizationTrail: trail.IsOrganizationTrail === true,
    isMultiRegionTrail: trail.IsMultiRegionTrail === true,
    // The API's default is true; a trail that does not say is including them.
    includeGlobalServiceEvents: trail.IncludeGlobalServiceEvents !== false,
    logFileValidationEnabled: trail.LogFileValidationEnabled === true,
    kmsKeyId: orNull(trail.KmsKeyId),
    cloudWatchLogsLogGroupArn: orNull(trail.CloudWatchLogsLogGroupArn),
    cloudWatchLogsRoleArn: orNull(trail.CloudWatchLogsRoleArn),
  };
}

/**
 * Whether a KMS key as GetTrail (or GetBucketEncryption) reports it is the key a parameter names.
 * AWS reports the key ARN however the key was given; a key id or alias given as a parameter matches
 * that ARN's `key/<id>` or `alias/<name>` ending. An alias cannot be matched to a key ARN without
 * KMS, so it counts as different (and an update to the same key is planned).
 */
export function sameKmsKey(configured: string | null, wanted: string | null): boolean {
  if (configured === null || wanted === null) return configured === wanted;
  if (configured === wanted) return true;
  if (wanted.startsWith('arn:') || configured.startsWith('alias/')) return false;
  if (wanted.startsWith('alias/')) return configured.startsWith('arn:') && configured.endsWith(`:${wanted}`);
  return configured.startsWith('arn:') && configured.endsWith(`:key/${wanted}`);
}

/** A log group ARN as CloudTrail takes it ends with `:*`; as given by an operator it may not. */
const logGroup = (arn: string | null): string | null => (arn === null ? null : arn.replace(/:\*$/, ''));

function sameField(field: keyof TrailConfig, a: TrailConfig, b: TrailConfig): boolean {
  if (field === 'kmsKeyId') return sameKmsKey(a.kmsKeyId, b.kmsKeyId);
  if (field === 'cloudWatchLogsLogGroupArn') return logGroup(a.cloudWatchLogsLogGroupArn) === logGroup(b.cloudWatchLogsLogGroupArn);
  return a[field] === b[field];
}

const FIELDS: (keyof TrailConfig & string)[] = [
  's3BucketName',
  's3KeyPrefix',
  'isOrganizationTrail',
  'isMultiRegionTrail',
  'includeGlobalServiceEvents',
  'logFileValidationEnabled',
  'kmsKeyId',
  'cloudWatchLogsLogGroupArn',
  'cloudWatchLogsRoleArn',
];

/** The fields where `live` is not what `wanted` asks for (empty: the trail can be adopted as it is). */
export function trailConfigDifferences(live: TrailConfig, wanted: TrailConfig): string[] {
  return FIELDS.filter((field) => !sameField(field, live, wanted));
}

export function sameTrailConfig(live: TrailConfig, wanted: TrailConfig): boolean {
  return trailConfigDifferences(live, wanted).length === 0;
}

export function createTrailInput(name: string, config: TrailConfig, tags: { Key: string; Value: string }[]): CreateTrailCommandInput {
  return {
    Name: name,
    S3BucketName: config.s3BucketName,
    ...(config.s3KeyPrefix ? { S3KeyPrefix: config.s3KeyPrefix } : {}),
    IsOrganizationTrail: config.isOrganizationTrail,
    IsMultiRegionTrail: config.isMultiRegionTrail,
    IncludeGlobalServiceEvents: config.includeGlobalServiceEvents,
    EnableLogFileValidation: config.logFileValidationEnabled,
    ...(config.kmsKeyId ? { KmsKeyId: config.kmsKeyId } : {}),
    ...(config.cloudWatchLogsLogGroupArn ? { CloudWatchLogsLogGroupArn: config.cloudWatchLogsLogGroupArn } : {}),
    ...(config.cloudWatchLogsRoleArn ? { CloudWatchLogsRoleArn: config.cloudWatchLogsRoleArn } : {}),
    TagsList: tags,
  };
}

/**
 * The UpdateTrail call taking a trail from `live` to `target`, naming only what changes. UpdateTrail
 * clears a setting given as an empty string (KMS encryption, the key prefix, CloudWatch Logs). The
 * multi-region flag needs global service events in the same call, and the two CloudWatch Logs fields
 * travel together.
 */
export function updateTrailInput(name: string, live: TrailConfig, target: TrailConfig): UpdateTrailCommandInput {
  const differs = new Set(trailConfigDifferences(live, target));
  const input: UpdateTrailCommandInput = { Name: name };
  if (differs.has('s3BucketName')) input.S3BucketName = target.s3BucketName;
  if (differs.has('s3KeyPrefix')) input.S3KeyPrefix = target.s3KeyPrefix ?? '';
  if (differs.has('isOrganizationTrail')) input.IsOrganizationTrail = target.isOrganizationTrail;
  if (differs.has('isMultiRegionTrail') || differs.has('includeGlobalServiceEvents')) {
    input.IsMultiRegionTrail = target.isMultiRegionTrail;
    input.IncludeGlobalServiceEvents = target.includeGlobalServiceEvents;
  }
  if (differs.has('logFileValidationEnabled')) input.EnableLogFileValidation = target.logFileValidationEnabled;
  if (differs.has('kmsKeyId')) input.KmsKeyId = target.kmsKeyId ?? '';
  if (differs.has('cloudWatchLogsLogGroupArn') || differs.has('cloudWatchLogsRoleArn')) {
    input.CloudWatchLogsLogGroupArn = target.cloudWatchLogsLogGroupArn ?? '';
    input.CloudWatchLogsRoleArn = target.cloudWatchLogsRoleArn ?? '';
  }
  return input;
}
