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
  /**
   * Set by an organization-wide run on each account's run it starts (workflows/organization.ts): the
   * account's plan is approved as part of the organization's one consolidated plan, not on its own.
   */
  organization?: { parentWorkflowId: string };
  /** Set with `organization`: this run covers one part of its account, by resource name (docs/engine.md, "Parts"). */
  part?: AccountPart;
}

/** One part of an account: resource names after `after` (exclusive) through `through` (inclusive). */
export interface AccountPart {
  number: number;
  of: number;
  after?: string;
  through?: string;
}

/** An organization-wide run's input: one kind, run in every selected account, one approval. */
export interface OrganizationInput {
  kind: KindName | (string & {});
  /** `all`, or comma-separated account ids, OU ids (ou-…) and root ids (r-…). */
  accounts: string;
  params: Record<string, string>;
  requestedBy: string;
  dryRun?: boolean;
  /** Accounts planning, or applying, at once (default 4). */
  concurrency?: number;
  /** Resources per part when a large account is split (default 2,000; docs/engine.md, "Parts"). */
  partSize?: number;
}

export const organizationInputSchema = z
  .object({
    kind: z.string().min(1).max(64),
    accounts: z.string().min(1).max(20_000),
    params: z.record(z.string(), z.string().max(100_000)).default({}),
    requestedBy: z.string().trim().min(1, { error: 'requestedBy must name who requested the run' }).max(256),
    dryRun: z.boolean().optional(),
    concurrency: z.number().int().min(1).max(50).optional(),
    partSize: z.number().int().min(1).max(2_000).optional(),
  })
  .strict();

/** One account of an organization-wide run, as its status shows it. */
export interface AccountRun {
  account: string;
  name?: string;
  /** One part of a large account (docs/engine.md, "Parts"). */
  part?: AccountPart;
  /** The account's own run (its history is that account's evidence). */
  workflowId: string;
  phase: 'waiting' | 'planning' | 'planned' | 'applying' | 'done';
  digest?: string;
  changes?: number;
  outcome?: Outcome;
  outcomeReason?: string;
  progress?: Progress;
}

/** An account's run tells its organization run its plan is ready (or that it ended without one). */
export interface AccountPlanned {
  account: string;
  workflowId: string;
  digest: string;
  changes: number;
  leftAlone: number;
}

/** The organization run tells an account's run the verdict on the consolidated plan. */
export interface OrganizationDecision {
  decision: 'approve' | 'reject';
  /** The consolidated plan's digest. */
  digest?: string;
  reason?: string;
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
    organization: z.object({ parentWorkflowId: z.string().min(1).max(512) }).strict().optional(),
    part: z
      .object({ number: z.number().int().min(1), of: z.number().int().min(1).max(1_000), after: z.string().max(256).optional(), through: z.string().max(256).optional() })
      .strict()
      .optional(),
  })
  .strict();

/**
 * A signed, unsent sts:GetCallerIdentity request: the approver's proof of identity (activities/approver-proof.ts).
 * Its signed headers bind it to one run and plan digest; the worker re-sends it to STS and the ARN
 * STS answers is the approver.
 */
export interface ApproverProof {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The `decide` signal payload (also sent with `temporal workflow signal --name decide --input '{…}'`). */
export interface DecideSignal {
  decision: 'approve' | 'reject';
  /** Who decides; optional only with a proof (the verified ARN is then the approver). */
  approver?: string;
  planDigest: string;
  comment?: string;
  proof?: ApproverProof;
}

export type RefusalReason =
  | 'malformed'
  | 'requester-cannot-approve'
  | 'not-an-approver'
  | 'wrong-digest'
  | 'expired'
  | 'duplicate'
  | 'not-awaiting-decision'
  /** The policy requires a proof of AWS identity and the decision carries none. */
  | 'proof-required'
  /** The proof is malformed, unsigned where it must be signed, for another host, or STS refused its signature. */
  | 'proof-invalid'
  /** The proof is bound to another workflow, run or plan digest. */
  | 'proof-binding'
  /** The proof was signed more than 15 minutes from now. */
  | 'proof-expired'
  /** The proof's signature was already used for a decision of this run. */
  | 'proof-replayed'
  /** STS could not be reached to verify the proof. */
  | 'proof-unverifiable';

export interface RecordedDecision extends Omit<DecideSignal, 'approver' | 'proof'> {
  /** The verified ARN when the decision carried a proof, else the claimed name. */
  approver: string;
  /** The ARN STS answered for the decision's proof; absent: name only, unverified. */
  verifiedArn?: string;
  /** The name the approver also claimed (`--as`), when it differs from the verified ARN. */
  claimedAs?: string;
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
  /** The ARN STS answered, when a proof was verified before the decision was refused. */
  verifiedArn?: string;
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
  /**
   * Change results, newest last. A status answer and the run's result list at most a bounded number
   * (the newest); `resultsNotListed` counts the rest, which the `details` query pages through and
   * history holds (docs/engine.md, "Bounds").
   */
  results: ChangeResult[];
  resultsNotListed?: number;
  verification?: VerifyResult;
  outcome?: Outcome;
  outcomeReason?: string;
  finishedAt?: string;
  /** Approver notifications sent (activities/notify.ts), newest last, at most MAX_NOTIFICATIONS kept. */
  notifications?: NotificationRecord[];
  /** An organization-wide run: every account's run, its plan and outcome. */
  accounts?: AccountRun[];
  /** An account's run of an organization-wide run: the organization run that approves it. */
  organization?: { parentWorkflowId: string; consolidatedDigest?: string };
}

export type NotifyEvent = 'awaiting-approval' | 'reminder-50' | 'reminder-90' | 'end';

/** One notification on one channel: a failure is recorded here and never fails the run. */
export interface NotificationRecord {
  at: string;
  event: NotifyEvent;
  channel: 'sns' | 'webhook' | 'activity';
  ok: boolean;
  detail?: string;
}

export const MAX_NOTIFICATIONS = 20;

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

/** A page of one of a run's lists, however long the list (`countersign status --all`). */
export interface DetailsRequest {
  list: 'changes' | 'left-alone' | 'results' | 'checks';
  offset?: number;
  /** At most 500. */
  limit?: number;
}

export interface DetailsPage {
  list: DetailsRequest['list'];
  total: number;
  offset: number;
  items: unknown[];
}

export const detailsQuery = defineQuery<DetailsPage, [DetailsRequest]>('details');
export const accountPlannedSignal = defineSignal<[AccountPlanned]>('accountPlanned');
export const organizationDecisionSignal = defineSignal<[OrganizationDecision]>('organizationDecision');

/** Bounds on what a decision may carry: an outsider cannot grow the run's state, query or result. */
export const DECISION_LIMITS = { approver: DECISION_LIMITS_APPROVER, comment: 2_000, proofBytes: 8_192 } as const;

/** UTF-8 length without Buffer or TextEncoder (this module also runs in the workflow sandbox). */
function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** A proof, bounded: at most 8 KiB as JSON, at most 32 headers. */
export const approverProofSchema = z
  .object({
    method: z.string().max(16),
    url: z.string().max(2_048),
    headers: z.record(z.string().max(128), z.string().max(4_096)).refine((h) => Object.keys(h).length <= 32, { error: 'proof.headers: at most 32 headers' }),
    body: z.string().max(4_096),
  })
  .strict()
  .refine((p) => utf8Length(JSON.stringify(p)) <= DECISION_LIMITS.proofBytes, { error: `proof must be at most ${DECISION_LIMITS.proofBytes} bytes` });

/** The `decide` payload's schema: the one check for the signal, the update and the CLI. */
export const decideSchema = z
  .object({
    decision: z.enum(['approve', 'reject'], { error: 'decision must be "approve" or "reject"' }),
    approver: z
      .string({ error: 'approver must be a non-empty string' })
      .trim()
      .min(1, { error: 'approver must be a non-empty string' })
      .max(DECISION_LIMITS.approver, { error: `approver must be at most ${DECISION_LIMITS.approver} characters` })
      .optional(),
    planDigest: z
      .string({ error: "planDigest must be the plan's 64-character hex SHA-256 digest" })
      .regex(/^[0-9a-f]{64}$/, { error: "planDigest must be the plan's 64-character hex SHA-256 digest" }),
    comment: z
      .string({ error: 'comment must be a string' })
      .max(DECISION_LIMITS.comment, { error: `comment must be at most ${DECISION_LIMITS.comment} characters` })
      .optional(),
    proof: approverProofSchema.optional(),
  })
  .strict()
  .refine((d) => d.approver !== undefined || d.proof !== undefined, { error: 'approver must be a non-empty string', path: ['approver'] });

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
