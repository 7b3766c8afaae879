/**
 * What clients and workflows exchange: the workflow input, the `decide` signal, the `status` query.
 * The CLI and the workflows import the same definitions, so names and shapes never drift.
 * This module imports only @temporalio/workflow's message helpers, zod (the payload schema) and types.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { KindName } from './kinds';
import type { ChangeResult, Plan, VerifyResult } from './plan';
import type { EffectivePolicy } from './policy';
import type { TargetInfo } from './requests';

const DECISION_LIMITS_APPROVER = 256;

export interface RemediationInput {
  /** A catalogue kind (the CLI accepts only those); the engine itself also runs test-only kinds. */
  kind: KindName | (string & {});
  /** Target account; when absent, the account of the worker's credentials. */
  account?: string;
  params: Record<string, string>;
  /** Who started it (separation of duties: they cannot approve it). */
  requestedBy: string;
  dryRun?: boolean;
}

/**
 * The workflow input's schema. The CLI always sends a valid one; a run started some other way (the
 * stock temporal CLI, a script) with a bad input ends `failed` with the reason instead of failing
 * its workflow task forever.
 */
export const remediationInputSchema = z
  .object({
    kind: z.string().min(1).max(64),
    account: z.string().regex(/^\d{12}$/, { error: 'account must be a 12-digit AWS account id' }).optional(),
    params: z.record(z.string(), z.string().max(100_000)).default({}),
    requestedBy: z.string({ error: 'requestedBy must name who requested the run' }).trim().min(1, { error: 'requestedBy must name who requested the run' }).max(DECISION_LIMITS_APPROVER),
    dryRun: z.boolean().optional(),
  })
  .strict();

/** The `decide` signal payload (also sent with `temporal workflow signal --name decide --input '{…}'`). */
export interface DecideSignal {
  decision: 'approve' | 'reject';
  approver: string;
  planDigest: string;
  comment?: string;
}

export type RefusalReason =
  | 'malformed'
  | 'requester-cannot-approve'
  | 'not-an-approver'
  | 'wrong-digest'
  | 'expired'
  | 'duplicate'
  | 'not-awaiting-decision';

export interface RecordedDecision extends DecideSignal {
  /** Order of arrival among all decisions received (accepted and refused). */
  seq: number;
  at: string;
}

export interface RefusedDecision {
  seq: number;
  at: string;
  decision?: string;
  approver?: string;
  planDigest?: string;
  comment?: string;
  reason: RefusalReason;
  message: string;
}

export type Phase =
  | 'starting'
  | 'planning'
  | 'awaiting-approval'
  | 'applying'
  | 'soaking'
  | 'verifying'
  | 'rolling-back'
  | 'done';

export type Outcome = 'completed' | 'no-op' | 'planned' | 'rejected' | 'expired' | 'failed' | 'rolled-back' | 'cancelled';

export interface Progress {
  total: number;
  applied: number;
  leftAlone: number;
  skipped: number;
  failed: number;
  rolledBack: number;
}

export interface RemediationStatus {
  kind: string;
  workflowId: string;
  phase: Phase;
  requestedBy: string;
  dryRun: boolean;
  startedAt: string;
  policy?: EffectivePolicy;
  /** The account the run acts in and how it is reached (assumed role, session name). */
  target?: TargetInfo;
  plan?: Plan;
  /** When the approval gate stops waiting. */
  expiresAt?: string;
  decisions: RecordedDecision[];
  refused: RefusedDecision[];
  /** Refusals beyond the listed ones, counted only (each is still in history as the message that carried it). */
  refusedNotListed?: number;
  /** How many decisions have arrived (accepted + refused): a client waits for this to grow. */
  decisionsReceived: number;
  stage?: string;
  soakUntil?: string;
  progress: Progress;
  results: ChangeResult[];
  verification?: VerifyResult;
  outcome?: Outcome;
  outcomeReason?: string;
  finishedAt?: string;
}

/** The answer of the `decide` update: accepted, or refused with the reason (recorded in history either way). */
export interface DecideReply {
  accepted: boolean;
  seq: number;
  reason?: RefusalReason;
  message?: string;
  /** The run's phase after the decision. */
  phase: Phase;
  /** Approvals counted so far, and the quorum they count towards. */
  approvals: number;
  quorum?: number;
}

export const decideSignal = defineSignal<[DecideSignal]>('decide');
/** The same decision as a Workflow Update: the sender learns at once whether it was accepted. */
export const decideUpdate = defineUpdate<DecideReply, [DecideSignal]>('decide');
export const statusQuery = defineQuery<RemediationStatus>('status');

/** Bounds on what a decision may carry: an outsider cannot grow the run's state, query or result. */
export const DECISION_LIMITS = { approver: DECISION_LIMITS_APPROVER, comment: 2_000 } as const;

/** The `decide` payload's schema: the one check for the signal, the update and the CLI. */
export const decideSchema = z
  .object({
    decision: z.enum(['approve', 'reject'], { error: 'decision must be "approve" or "reject"' }),
    approver: z
      .string({ error: 'approver must be a non-empty string' })
      .trim()
      .min(1, { error: 'approver must be a non-empty string' })
      .max(DECISION_LIMITS.approver, { error: `approver must be at most ${DECISION_LIMITS.approver} characters` }),
    planDigest: z
      .string({ error: "planDigest must be the plan's 64-character hex SHA-256 digest" })
      .regex(/^[0-9a-f]{64}$/, { error: "planDigest must be the plan's 64-character hex SHA-256 digest" }),
    comment: z
      .string({ error: 'comment must be a string' })
      .max(DECISION_LIMITS.comment, { error: `comment must be at most ${DECISION_LIMITS.comment} characters` })
      .optional(),
  })
  .strict();

/**
 * Check a decide payload received from outside (it may come from the stock temporal CLI).
 * Returns the decision, or a one-line reason it is malformed.
 */
export function parseDecideSignal(raw: unknown): DecideSignal | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'the payload must be a JSON object';
  const parsed = decideSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue?.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
  return issue?.message ?? 'invalid decision';
}

export function workflowIdFor(kind: KindName, account: string, suffix?: string): string {
  return suffix ? `${kind}/${account}/${suffix}` : `${kind}/${account}`;
}
