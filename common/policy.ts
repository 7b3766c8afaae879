/**
 * The approval policy (DESIGN §4): who may approve which kind, how many distinct approvers, how long
 * the gate waits, which principals are never changed, and the largest plan that may be approved.
 * Loaded from COUNTERSIGN_POLICY by an activity at workflow start, so the policy in force is in history.
 */
import { z } from 'zod';
import { tryParseDuration } from './duration';
import type { KindName } from './kinds';

const perKind = <T extends z.ZodTypeAny>(value: T) => z.record(z.string(), value);

const duration = z.string().refine((s) => (tryParseDuration(s) ?? 0) > 0, {
  message: 'must be a duration such as 7d, 12h or 30s',
});

export const approvalPolicySchema = z
  .object({
    approvers: perKind(z.array(z.string().min(1))).default({}),
    quorum: perKind(z.number().int().min(1)).default({ '*': 1 }),
    approvalTimeout: duration.default('7d'),
    protectedPrincipals: z.array(z.string().min(1)).default([]),
    maxChanges: z.number().int().min(1).default(200),
  })
  .strict();

export type ApprovalPolicyFile = z.infer<typeof approvalPolicySchema>;

/**
 * Always protected, whatever the file says: the file's list is added to these, never replaces them
 * (fail closed — DESIGN §5).
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
  kind: KindName;
  source: string;
  approvers: string[];
  quorum: number;
  approvalTimeout: string;
  protectedPrincipals: string[];
  maxChanges: number;
}

export function effectivePolicy(file: ApprovalPolicyFile, kind: KindName, source: string): EffectivePolicy {
  const approvers = file.approvers[kind] ?? file.approvers['*'] ?? [];
  const quorum = file.quorum[kind] ?? file.quorum['*'] ?? 1;
  return {
    kind,
    source,
    approvers: [...new Set(approvers)],
    quorum,
    approvalTimeout: file.approvalTimeout,
    protectedPrincipals: [...new Set([...BUILT_IN_PROTECTED_PRINCIPALS, ...file.protectedPrincipals])],
    maxChanges: file.maxChanges,
  };
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
  for (const [kind, quorum] of Object.entries(parsed.data.quorum)) {
    const approvers = parsed.data.approvers[kind] ?? parsed.data.approvers['*'] ?? [];
    if (approvers.length > 0 && quorum > new Set(approvers).size) {
      throw new Error(
        `approval policy ${source}: quorum for "${kind}" is ${quorum} but only ${new Set(approvers).size} approver(s) are listed`,
      );
    }
  }
  return parsed.data;
}

/** Glob match on ARNs: `*` matches any run of characters (the policy's protectedPrincipals form). */
export function arnMatches(pattern: string, arn: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`).test(arn);
}
