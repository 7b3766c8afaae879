/**
 * The approval policy (docs/design.md §4): who may approve which kind, how many distinct approvers, how long
 * the gate waits, which principals are never changed, and the largest plan that may be approved.
 * Loaded from COUNTERSIGN_POLICY by an activity at workflow start, so the policy in force is in history.
 */
import { z } from 'zod';
import { tryParseDuration } from './duration';

const perKind = <T extends z.ZodTypeAny>(value: T) => z.record(z.string(), value);

const MAX_APPROVERS = 500;
const MAX_PROTECTED = 1_000;

/** The approval window: long enough for a holiday, short enough that a forgotten plan goes stale. */
const MAX_APPROVAL_TIMEOUT_MS = 90 * 86_400_000;

const duration = z.string().refine((s) => {
  const ms = tryParseDuration(s) ?? 0;
  return ms >= 1_000 && ms <= MAX_APPROVAL_TIMEOUT_MS;
}, {
  message: 'must be a duration between 1s and 90d, such as 7d, 12h or 30s',
});

/** An SNS topic ARN (any partition): the topic's region is taken from it. */
export const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;

/** Where approvers of a kind are told about a run (activities/notify.ts): an SNS topic, a webhook, or both. */
export const notifyChannelsSchema = z
  .object({
    snsTopicArn: z.string().max(1024).regex(SNS_TOPIC_ARN, { error: 'must be an SNS topic ARN, such as arn:aws:sns:us-east-1:123456789012:approvals' }).optional(),
    webhookUrl: z
      .string()
      .max(2048)
      .refine((s) => {
        try {
          const u = new URL(s);
          return u.protocol === 'https:' || u.protocol === 'http:';
        } catch {
          return false;
        }
      }, { error: 'must be an http(s) URL' })
      .optional(),
  })
  .strict();

export type NotifyChannels = z.infer<typeof notifyChannelsSchema>;

const MAX_NOTIFY_KINDS = 100;

export const approvalPolicySchema = z
  .object({
    // Bounded: a policy lists people, and every decision is checked against the list on the workflow's thread.
    approvers: perKind(z.array(z.string().min(1).max(256)).max(MAX_APPROVERS, { error: `at most ${MAX_APPROVERS} approvers per kind` })).default({}),
    quorum: perKind(z.number().int().min(1)).default({ '*': 1 }),
    approvalTimeout: duration.default('7d'),
    protectedPrincipals: z.array(z.string().min(1).max(2048)).max(MAX_PROTECTED, { error: `at most ${MAX_PROTECTED} protected principal patterns` }).default([]),
    maxChanges: z.number().int().min(1).default(200),
    /**
     * How an approver proves who they are, for every kind. `name` (the default, fit for the sandbox):
     * the approver is the name the decision claims. `aws-sts`: each decision carries a signed
     * sts:GetCallerIdentity request bound to the run and plan digest; the worker re-sends it to STS and
     * the ARN STS answers is the approver (approvers are then AWS principal ARNs or patterns).
     */
    identity: z.enum(['name', 'aws-sts'], { error: 'identity must be "name" or "aws-sts"' }).default('name'),
    notify: perKind(notifyChannelsSchema)
      .refine((m) => Object.keys(m).length <= MAX_NOTIFY_KINDS, { error: `at most ${MAX_NOTIFY_KINDS} kinds under notify` })
      .optional(),
  })
  .strict();

export type ApprovalPolicyFile = z.infer<typeof approvalPolicySchema>;

/**
 * Always protected, whatever the file says: the file's list is added to these, never replaces them
 * (fail closed — docs/design.md §5).
 */
export const BUILT_IN_PROTECTED_PRINCIPALS = [
  'arn:aws:iam::*:user/break-glass*',
  'arn:aws:iam::*:role/break-glass*',
  'arn:aws:iam::*:role/OrganizationAccountAccessRole',
  'arn:aws:iam::*:role/aws-service-role/*',
  'arn:aws:iam::*:role/aws-reserved/*',
  'arn:aws:iam::*:role/AWSControlTower*',
  'arn:aws:iam::*:role/aws-controltower-*',
];

/** The policy as it applies to one kind: what the workflow records and enforces. */
export interface EffectivePolicy {
  kind: string;
  source: string;
  approvers: string[];
  quorum: number;
  approvalTimeout: string;
  protectedPrincipals: string[];
  maxChanges: number;
  /** Present only when decisions must carry a proof of AWS identity (absent: name only). */
  identity?: 'aws-sts';
  /** Where approvers are told (absent when the policy has no `notify` for this kind: nothing is sent). */
  notify?: NotifyChannels;
}

/** The first item of each key, in order (linear: a policy may be large). */
function firstOfEach<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function effectivePolicy(file: ApprovalPolicyFile, kind: string, source: string): EffectivePolicy {
  const approvers = file.approvers[kind] ?? file.approvers['*'] ?? [];
  const quorum = file.quorum[kind] ?? file.quorum['*'] ?? 1;
  const channels = file.notify?.[kind] ?? file.notify?.['*'];
  const notify = channels && (channels.snsTopicArn || channels.webhookUrl) ? channels : undefined;
  return {
    kind,
    source,
    // One person, one entry: names compare case-insensitively (as the approval gate does).
    approvers: firstOfEach(approvers, (a) => a.trim().toLowerCase()),
    quorum,
    approvalTimeout: file.approvalTimeout,
    protectedPrincipals: [...new Set([...BUILT_IN_PROTECTED_PRINCIPALS, ...file.protectedPrincipals])],
    maxChanges: file.maxChanges,
    ...(notify ? { notify } : {}),
    // Only when set: a name-only run records the policy it recorded before proofs existed.
    ...(file.identity === 'aws-sts' ? { identity: 'aws-sts' as const } : {}),
  };
}

/**
 * An approver entry a policy requiring `aws-sts` accepts: an IAM user or role ARN, or an assumed-role
 * session ARN; `*` stands for any run of characters (`arn:aws:sts::123456789012:assumed-role/Ops/*`).
 * Role patterns are written without an IAM path (a session's ARN carries none).
 */
const PRINCIPAL_PATTERN = /^arn:(?:aws[a-z-]*|\*):(?:iam::(?:\d{12}|\*):(?:user|role)\/.+|sts::(?:\d{12}|\*):assumed-role\/[^/]+\/.+)$/;

export function isPrincipalPattern(entry: string): boolean {
  return PRINCIPAL_PATTERN.test(entry.trim());
}

/**
 * Whether a verified caller ARN (from sts:GetCallerIdentity) matches a policy approver entry, with
 * principalMatches semantics: a user, role or session pattern matches the ARN itself; a role pattern
 * also matches every session of that role. A plain name never matches a verified ARN.
 */
export function approverMatches(entry: string, callerArn: string): boolean {
  if (!isPrincipalPattern(entry)) return false;
  const pattern = entry.trim();
  return principalMatches(pattern, callerArn) || principalMatches(pattern, iamPrincipalOf(callerArn));
}

/** Parse a policy document; throws an Error whose message names the offending field. */
export function parseApprovalPolicy(text: string, source: string): ApprovalPolicyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`approval policy ${source} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = approvalPolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') || '(top level)' : '(unknown)';
    throw new Error(`approval policy ${source} is invalid at ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const { approvers, quorum, identity } = parsed.data;
  if (identity === 'aws-sts') {
    for (const [kind, list] of Object.entries(approvers)) {
      const bad = list.find((a) => !isPrincipalPattern(a));
      if (bad !== undefined) {
        throw new Error(`approval policy ${source} is invalid at approvers.${kind}: "${bad}" is not an IAM user, role or assumed-role ARN (identity "aws-sts" needs AWS principals)`);
      }
    }
  }
  for (const kind of new Set([...Object.keys(approvers), ...Object.keys(quorum)])) {
    const listed = new Set((approvers[kind] ?? approvers['*'] ?? []).map((a) => a.trim().toLowerCase()));
    const needed = quorum[kind] ?? quorum['*'] ?? 1;
    if (listed.size > 0 && needed > listed.size) {
      throw new Error(`approval policy ${source}: quorum for "${kind}" is ${needed} but only ${listed.size} approver(s) are listed`);
    }
  }
  return parsed.data;
}

/** `arn:aws-us-gov:` and `arn:aws-cn:` compare as `arn:aws:`: a protection holds in every partition. */
function normalisePartition(arn: string): string {
  return arn.replace(/^arn:aws(-[a-z-]+)?:/i, 'arn:aws:');
}

/** `arn:aws:iam::1:user/team/ops/alice` → `arn:aws:iam::1:user/alice` (IAM paths sit between type and name). */
function withoutPath(arn: string): string {
  return arn.replace(/^(arn:[^:]+:iam::[^:]*:(?:user|role|group))\/(?:[^/]+\/)+([^/]+)$/i, '$1/$2');
}

/**
 * Whether a principal ARN matches a protectedPrincipals glob (`*` matches any run of characters).
 * Fail closed: IAM names are case-insensitive, so is the match; a principal under an IAM path matches
 * a pattern written without it (`user/emergency/break-glass-1` is protected by `user/break-glass*`);
 * and every AWS partition is covered.
 */
export function principalMatches(pattern: string, arn: string): boolean {
  const escaped = normalisePartition(pattern)
    .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*');
  const re = new RegExp(`^${escaped}$`, 'i');
  const full = normalisePartition(arn);
  return re.test(full) || re.test(withoutPath(full));
}

/** The first pattern that protects `arn`, if any. */
export function protectingPattern(patterns: readonly string[], arn: string): string | undefined {
  return patterns.find((p) => principalMatches(p, arn));
}

/**
 * The IAM principal behind a caller ARN: an assumed-role session
 * (`arn:aws:sts::1:assumed-role/Role/session`) is its role (`arn:aws:iam::1:role/Role`); a user or
 * role ARN is itself. Protecting the role protects every session of it.
 */
export function iamPrincipalOf(callerArn: string): string {
  const m = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(callerArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : callerArn;
}
