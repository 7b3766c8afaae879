/**
 * The log bucket's policy for an organization trail, and how it is merged into a policy the bucket
 * already has. Pure functions: the plan shows the document before and after, apply writes exactly
 * the approved "after", rollback writes back the "before".
 *
 * CloudTrail checks the bucket ACL, then writes log files under `AWSLogs/<management account>/` (the
 * trail's own events, and everything if it is ever turned back into a single-account trail) and
 * `AWSLogs/<organization id>/` (every member's events). Each grant is tied to this trail through
 * `aws:SourceArn`, so no other trail (in any account) can write into the bucket through it. The trail
 * ARN is known before the trail exists, so the policy goes in first: CreateTrail refuses a bucket whose
 * policy does not let it write.
 */
import { canonicalJson } from '../../common/digest';
import type { Json, JsonObject } from '../../common/json';

export interface PolicyStatement extends JsonObject {
  Effect: string;
}

export interface PolicyDocument extends JsonObject {
  Version: string;
  Statement: PolicyStatement[];
}

/** The statement ids this kind owns in a bucket policy; every other statement is someone else's and is kept as it is. */
export const ORG_TRAIL_SIDS = {
  aclCheck: 'CountersignOrgTrailAclCheck',
  managementWrite: 'CountersignOrgTrailManagementWrite',
  organizationWrite: 'CountersignOrgTrailOrganizationWrite',
  denyInsecureTransport: 'CountersignDenyInsecureTransport',
} as const;

const SOURCE_ARN = 'aws:SourceArn';

export interface OrgTrailPolicyInput {
  partition: string;
  bucket: string;
  managementAccount: string;
  organizationId: string;
  trailArn: string;
}

/** The statements an organization trail needs on its log bucket, plus a deny of plain-HTTP access. */
export function orgTrailStatements(o: OrgTrailPolicyInput): PolicyStatement[] {
  const bucketArn = `arn:${o.partition}:s3:::${o.bucket}`;
  const cloudtrail = { Service: 'cloudtrail.amazonaws.com' };
  const write = (sid: string, prefix: string): PolicyStatement => ({
    Sid: sid,
    Effect: 'Allow',
    Principal: cloudtrail,
    Action: 's3:PutObject',
    Resource: `${bucketArn}/AWSLogs/${prefix}/*`,
    Condition: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', [SOURCE_ARN]: o.trailArn } },
  });
  return [
    {
      Sid: ORG_TRAIL_SIDS.aclCheck,
      Effect: 'Allow',
      Principal: cloudtrail,
      Action: 's3:GetBucketAcl',
      Resource: bucketArn,
      Condition: { StringEquals: { [SOURCE_ARN]: o.trailArn } },
    },
    write(ORG_TRAIL_SIDS.managementWrite, o.managementAccount),
    write(ORG_TRAIL_SIDS.organizationWrite, o.organizationId),
    {
      Sid: ORG_TRAIL_SIDS.denyInsecureTransport,
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: [bucketArn, `${bucketArn}/*`],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    },
  ];
}

export class PolicyParseError extends Error {
  override name = 'PolicyParseError';
}

/** A bucket policy as S3 returns it (text), as a document whose Statement is always an array. */
export function parsePolicy(text: string): PolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PolicyParseError(`the bucket policy is not valid JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new PolicyParseError('the bucket policy is not a JSON object');
  const { Statement, Version, ...rest } = doc as JsonObject;
  const statements = Statement === undefined ? [] : Array.isArray(Statement) ? Statement : [Statement];
  for (const s of statements) {
    if (!s || typeof s !== 'object' || Array.isArray(s) || typeof (s as JsonObject).Effect !== 'string') {
      throw new PolicyParseError('the bucket policy has a statement without an Effect');
    }
  }
  return { ...rest, Version: typeof Version === 'string' ? Version : '2012-10-17', Statement: statements as PolicyStatement[] };
}

/** The trail ARNs a statement's `aws:SourceArn` condition names (StringEquals), in order. */
function sourceArns(statement: PolicyStatement): string[] {
  const equals = (statement.Condition as JsonObject | undefined)?.StringEquals as JsonObject | undefined;
  const value = equals?.[SOURCE_ARN];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Our statement, keeping every trail the bucket's statement of the same Sid already names: one bucket
 * can serve several organization trails, and each must stay listed in `aws:SourceArn`.
 */
function withKeptSourceArns(ours: PolicyStatement, existing: PolicyStatement | undefined): PolicyStatement {
  const wanted = sourceArns(ours);
  if (!existing || wanted.length === 0) return ours;
  const union = [...sourceArns(existing)];
  for (const arn of wanted) if (!union.includes(arn)) union.push(arn);
  if (union.length === wanted.length) return ours;
  const condition = ours.Condition as JsonObject;
  return { ...ours, Condition: { ...condition, StringEquals: { ...(condition.StringEquals as JsonObject), [SOURCE_ARN]: union } } };
}

/**
 * Merge our statements into the bucket's policy: a statement with one of our Sids is replaced in
 * place (keeping the trails it already names), the others are appended; every other statement is
 * kept untouched and in order. Merging twice gives the same document.
 */
export function mergeStatements(existing: PolicyDocument | null, ours: PolicyStatement[]): PolicyDocument {
  const base: PolicyDocument = existing ?? { Version: '2012-10-17', Statement: [] };
  const bySid = new Map(ours.map((s) => [s.Sid as string, s]));
  const placed = new Set<string>();
  const statements = base.Statement.map((statement) => {
    const sid = typeof statement.Sid === 'string' ? statement.Sid : undefined;
    const mine = sid !== undefined ? bySid.get(sid) : undefined;
    if (!mine || placed.has(sid as string)) return statement;
    placed.add(sid as string);
    return withKeptSourceArns(mine, statement);
  });
  for (const statement of ours) if (!placed.has(statement.Sid as string)) statements.push(statement);
  return { ...base, Statement: statements };
}

/** JSON with one-element arrays read as their element: IAM treats `"Action": ["x"]` and `"Action": "x"` alike. */
function normalised(value: Json): Json {
  if (Array.isArray(value)) {
    const items = value.map(normalised);
    return items.length === 1 ? (items[0] as Json) : items;
  }
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalised(v)]));
  return value;
}

/** Same policy, whatever the key order or the one-element-array spelling. */
export function samePolicy(a: PolicyDocument | null, b: PolicyDocument | null): boolean {
  if (a === null || b === null) return a === b;
  return canonicalJson(normalised(a)) === canonicalJson(normalised(b));
}

/** True when the policy already holds our statements as the merge would write them. */
export function policyHoldsStatements(existing: PolicyDocument | null, ours: PolicyStatement[]): boolean {
  return existing !== null && samePolicy(mergeStatements(existing, ours), existing);
}
