/**
 * The trail's log bucket: where it is, and each protection this kind puts on it as one setting with
 * a read, a compliance test, the value to write, and how to write back the value it had before.
 * A setting's value is plain JSON (null: not configured), so it sits in a plan's before/after as is.
 */
import type { S3Client, ServerSideEncryptionRule } from '@aws-sdk/client-s3';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketEncryptionCommand,
  DeleteBucketOwnershipControlsCommand,
  DeleteBucketPolicyCommand,
  DeletePublicAccessBlockCommand,
  GetBucketEncryptionCommand,
  GetBucketLocationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListObjectVersionsCommand,
  PutBucketEncryptionCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
} from '@aws-sdk/client-s3';
import type { BucketLocationConstraint, ObjectOwnership } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { canonicalJson } from '../../common/digest';
import type { Json } from '../../common/json';
import { isAwsError } from '../aws/errors';
import type { PolicyDocument, PolicyStatement } from './bucket-policy';
import { mergeStatements, parsePolicy, policyHoldsStatements, samePolicy } from './bucket-policy';
import { sameKmsKey } from './trail-config';

export type BucketLocation = { exists: false } | { exists: true; region: string };

interface SdkErrorShape {
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

const statusOf = (err: unknown): number | undefined => (err as SdkErrorShape).$metadata?.httpStatusCode;

/**
 * Whether the bucket exists and in which region, as `account` sees it. `ExpectedBucketOwner` makes S3
 * answer 403 for a bucket of another account, so a bucket name taken elsewhere is never treated as ours.
 * A bucket in another region answers 301 with its region in a header when asked at the wrong endpoint.
 */
export async function locateBucket(s3: S3Client, bucket: string, account: string): Promise<BucketLocation> {
  try {
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket, ExpectedBucketOwner: account }));
    if (head.BucketRegion) return { exists: true, region: head.BucketRegion };
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: bucket, ExpectedBucketOwner: account }));
    return { exists: true, region: regionOfLocation(location.LocationConstraint) };
  } catch (err) {
    const status = statusOf(err);
    if (isAwsError(err, 'NotFound', 'NoSuchBucket') || status === 404) return { exists: false };
    if (status === 301) {
      const region = (err as SdkErrorShape).$response?.headers?.['x-amz-bucket-region'];
      if (region) return { exists: true, region };
    }
    if (status === 403) {
      throw ApplicationFailure.create({
        type: 'LogBucketNotOwned',
        nonRetryable: true,
        message: `the S3 bucket ${bucket} exists but account ${account} does not own it or may not read it (HeadBucket answered 403); bucket names are global — choose another bucket name, or give the worker s3:ListBucket on it`,
      });
    }
    throw err;
  }
}

/** GetBucketLocation's answer as a region: none is us-east-1, and the legacy "EU" is eu-west-1. */
export function regionOfLocation(constraint: BucketLocationConstraint | string | undefined): string {
  if (!constraint) return 'us-east-1';
  return constraint === 'EU' ? 'eu-west-1' : constraint;
}

export async function createBucket(s3: S3Client, bucket: string, region: string): Promise<void> {
  // us-east-1 is the one region that refuses a location constraint naming itself.
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ...(region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}) }));
}

/** True when the bucket holds no object, no object version and no delete marker. */
export async function bucketIsEmpty(s3: S3Client, bucket: string, account: string): Promise<boolean> {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1, ExpectedBucketOwner: account }));
  return (listed.Versions ?? []).length === 0 && (listed.DeleteMarkers ?? []).length === 0;
}

export async function deleteBucket(s3: S3Client, bucket: string, account: string): Promise<void> {
  await s3.send(new DeleteBucketCommand({ Bucket: bucket, ExpectedBucketOwner: account }));
}

/** What a setting is compared with: the kind's parameters and the statements its policy needs. */
export interface LogBucketSpec {
  kmsKeyId: string | null;
  statements: PolicyStatement[];
}

export type BucketSettingAction = 'block-public-access' | 'enable-versioning' | 'enforce-bucket-owner' | 'set-default-encryption' | 'put-bucket-policy';

interface Target {
  s3: S3Client;
  bucket: string;
  account: string;
}

export interface BucketSetting {
  action: BucketSettingAction;
  /** The key of the setting's value in a change's before/after. */
  field: string;
  /** What the change does, for the approver. */
  summary: string;
  read(t: Target): Promise<Json>;
  holds(value: Json, spec: LogBucketSpec): boolean;
  /** The value to write: what `holds` accepts, built from the live value where that matters (the policy). */
  target(live: Json, spec: LogBucketSpec): Json;
  write(t: Target, value: Json): Promise<void>;
  /** Whether `before` can be written back exactly. */
  restorable(before: Json): boolean;
  restore(t: Target, before: Json): Promise<void>;
  same(a: Json, b: Json): boolean;
}

/** A read answering "not configured" with one of these errors gives null. */
async function orNull<T>(read: Promise<T>, ...absent: string[]): Promise<T | null> {
  try {
    return await read;
  } catch (err) {
    if (isAwsError(err, ...absent)) return null;
    throw err;
  }
}

/** SDK output as plain JSON (no undefined fields), so it compares and travels through history cleanly. */
const plain = (value: unknown): Json => (value === undefined ? null : (JSON.parse(JSON.stringify(value)) as Json));
const sameJson = (a: Json, b: Json): boolean => canonicalJson(a) === canonicalJson(b);

const ALL_BLOCKED = { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true };

const publicAccessBlock: BucketSetting = {
  action: 'block-public-access',
  field: 'publicAccessBlock',
  summary: 'block public access (all four settings)',
  async read({ s3, bucket, account }) {
    const got = await orNull(s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket, ExpectedBucketOwner: account })), 'NoSuchPublicAccessBlockConfiguration');
    return got ? plain(got.PublicAccessBlockConfiguration) : null;
  },
  holds: (value) => value !== null && typeof value === 'object' && Object.keys(ALL_BLOCKED).every((k) => (value as Record<string, Json>)[k] === true),
  target: () => ALL_BLOCKED,
  async write({ s3, bucket, account }, value) {
    await s3.send(new PutPublicAccessBlockCommand({ Bucket: bucket, ExpectedBucketOwner: account, PublicAccessBlockConfiguration: value as typeof ALL_BLOCKED }));
  },
  restorable: () => true,
  async restore(t, before) {
    if (before === null) await t.s3.send(new DeletePublicAccessBlockCommand({ Bucket: t.bucket, ExpectedBucketOwner: t.account }));
    else await this.write(t, before);
  },
  same: sameJson,
};

const versioning: BucketSetting = {
  action: 'enable-versioning',
  field: 'versioning',
  summary: 'enable versioning',
  async read({ s3, bucket, account }) {
    const got = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket, ExpectedBucketOwner: account }));
    return got.Status ?? null;
  },
  holds: (value) => value === 'Enabled',
  target: () => 'Enabled',
  async write({ s3, bucket, account }, value) {
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, ExpectedBucketOwner: account, VersioningConfiguration: { Status: value as 'Enabled' | 'Suspended' } }));
  },
  // A bucket that never had versioning cannot go back to that state: versioning can only be suspended.
  restorable: (before) => before !== null,
  async restore(t, before) {
    await this.write(t, before);
  },
  same: sameJson,
};

const objectOwnership: BucketSetting = {
  action: 'enforce-bucket-owner',
  field: 'objectOwnership',
  summary: 'enforce bucket-owner object ownership (BucketOwnerEnforced: ACLs disabled)',
  async read({ s3, bucket, account }) {
    const got = await orNull(s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket, ExpectedBucketOwner: account })), 'OwnershipControlsNotFoundError');
    return got?.OwnershipControls?.Rules?.[0]?.ObjectOwnership ?? null;
  },
  holds: (value) => value === 'BucketOwnerEnforced',
  target: () => 'BucketOwnerEnforced',
  async write({ s3, bucket, account }, value) {
    await s3.send(new PutBucketOwnershipControlsCommand({ Bucket: bucket, ExpectedBucketOwner: account, OwnershipControls: { Rules: [{ ObjectOwnership: value as ObjectOwnership }] } }));
  },
  restorable: () => true,
  async restore(t, before) {
    if (before === null) await t.s3.send(new DeleteBucketOwnershipControlsCommand({ Bucket: t.bucket, ExpectedBucketOwner: t.account }));
    else await this.write(t, before);
  },
  same: sameJson,
};

type EncryptionRules = { ApplyServerSideEncryptionByDefault?: { SSEAlgorithm?: string; KMSMasterKeyID?: string }; BucketKeyEnabled?: boolean }[];

/** Rules as S3 reports them back: an unset BucketKeyEnabled is read as false. */
function encryptionRules(value: Json): Json {
  if (!Array.isArray(value)) return value;
  return (value as EncryptionRules).map((rule) => {
    const byDefault = rule.ApplyServerSideEncryptionByDefault;
    return {
      ...(byDefault ? { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: byDefault.SSEAlgorithm ?? null, ...(byDefault.KMSMasterKeyID ? { KMSMasterKeyID: byDefault.KMSMasterKeyID } : {}) } } : {}),
      BucketKeyEnabled: rule.BucketKeyEnabled === true,
    };
  });
}

const defaultEncryption: BucketSetting = {
  action: 'set-default-encryption',
  field: 'defaultEncryption',
  summary: 'set default encryption',
  async read({ s3, bucket, account }) {
    const got = await orNull(s3.send(new GetBucketEncryptionCommand({ Bucket: bucket, ExpectedBucketOwner: account })), 'ServerSideEncryptionConfigurationNotFoundError');
    const rules = got?.ServerSideEncryptionConfiguration?.Rules;
    return rules && rules.length > 0 ? encryptionRules(plain(rules)) : null;
  },
  holds(value, spec) {
    const defaults = ((value ?? []) as EncryptionRules).map((r) => r.ApplyServerSideEncryptionByDefault).filter((d) => d?.SSEAlgorithm);
    // Without a key parameter any default encryption will do: SSE-KMS already in place is kept, never downgraded.
    if (spec.kmsKeyId === null) return defaults.length > 0;
    return defaults.some((d) => d?.SSEAlgorithm === 'aws:kms' && sameKmsKey(d.KMSMasterKeyID ?? null, spec.kmsKeyId));
  },
  target: (_live, spec) =>
    spec.kmsKeyId === null
      ? [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BucketKeyEnabled: false }]
      : // An S3 bucket key cuts the KMS requests CloudTrail's many small log files would otherwise make.
        [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: spec.kmsKeyId }, BucketKeyEnabled: true }],
  async write({ s3, bucket, account }, value) {
    await s3.send(new PutBucketEncryptionCommand({ Bucket: bucket, ExpectedBucketOwner: account, ServerSideEncryptionConfiguration: { Rules: value as ServerSideEncryptionRule[] } }));
  },
  restorable: () => true,
  async restore(t, before) {
    // Without a configuration of its own a bucket gets S3's default (SSE-S3), as it did before.
    if (before === null) await t.s3.send(new DeleteBucketEncryptionCommand({ Bucket: t.bucket, ExpectedBucketOwner: t.account }));
    else await this.write(t, before);
  },
  same: (a, b) => sameJson(encryptionRules(a), encryptionRules(b)),
};

const bucketPolicy: BucketSetting = {
  action: 'put-bucket-policy',
  field: 'policy',
  summary: 'merge the organization-trail statements and a deny of insecure transport into the bucket policy',
  async read({ s3, bucket, account }) {
    const got = await orNull(s3.send(new GetBucketPolicyCommand({ Bucket: bucket, ExpectedBucketOwner: account })), 'NoSuchBucketPolicy');
    return got?.Policy ? parsePolicy(got.Policy) : null;
  },
  holds: (value, spec) => policyHoldsStatements(value as PolicyDocument | null, spec.statements),
  target: (live, spec) => mergeStatements(live as PolicyDocument | null, spec.statements),
  async write({ s3, bucket, account }, value) {
    await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, ExpectedBucketOwner: account, Policy: JSON.stringify(value) }));
  },
  restorable: () => true,
  async restore(t, before) {
    if (before === null) await t.s3.send(new DeleteBucketPolicyCommand({ Bucket: t.bucket, ExpectedBucketOwner: t.account }));
    else await this.write(t, before);
  },
  same: (a, b) => samePolicy(a as PolicyDocument | null, b as PolicyDocument | null),
};

/** The protections in the order they are planned and applied. */
export const BUCKET_SETTINGS: readonly BucketSetting[] = [publicAccessBlock, versioning, objectOwnership, defaultEncryption, bucketPolicy];

export function bucketSetting(action: string): BucketSetting | undefined {
  return BUCKET_SETTINGS.find((s) => s.action === action);
}
