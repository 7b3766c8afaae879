/**
 * What clients and workflows exchange: the workflow input, the `decide` signal, the `status` query.
 * The CLI and the workflows import the same definitions, so names and shapes never drift.
 * This module imports only @temporalio/workflow's message helpers and types.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { KindName } from './kinds';
import type { ChangeResult, Plan, VerifyResult } from './plan';
import type { EffectivePolicy } from './policy';

export interface RemediationInput {
  kind: KindName;
  /** Target account; when absent, the account of the worker's credentials. */
  account?: string;
  params: Record<string, string>;
  /** Who started it (separation of duties: they cannot approve it). */
  requestedBy: string;
  dryRun?: boolean;
}

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
  kind: KindName;
  workflowId: string;
  phase: Phase;
  requestedBy: string;
  dryRun: boolean;
  startedAt: string;
  policy?: EffectivePolicy;
  plan?: Plan;
  /** When the approval gate stops waiting. */
  expiresAt?: string;
  decisions: RecordedDecision[];
  refused: RefusedDecision[];
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

export const decideSignal = defineSignal<[DecideSignal]>('decide');
export const statusQuery = defineQuery<RemediationStatus>('status');

/**
 * Check a decide payload received from outside (it may come from the stock temporal CLI).
 * Returns the decision, or a reason it is malformed.
 */
export function parseDecideSignal(raw: unknown): DecideSignal | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'the payload must be a JSON object';
  const r = raw as Record<string, unknown>;
  if (r.decision !== 'approve' && r.decision !== 'reject') return 'decision must be "approve" or "reject"';
  if (typeof r.approver !== 'string' || r.approver.trim() === '') return 'approver must be a non-empty string';
  if (typeof r.planDigest !== 'string' || !/^[0-9a-f]{64}$/.test(r.planDigest)) {
    return 'planDigest must be the plan\'s 64-character hex SHA-256 digest';
  }
  if (r.comment !== undefined && typeof r.comment !== 'string') return 'comment must be a string';
  const extra = Object.keys(r).filter((k) => !['decision', 'approver', 'planDigest', 'comment'].includes(k));
  if (extra.length > 0) return `unknown field(s): ${extra.join(', ')}`;
  return {
    decision: r.decision,
    approver: r.approver.trim(),
    planDigest: r.planDigest,
    ...(typeof r.comment === 'string' ? { comment: r.comment } : {}),
  };
}

export function workflowIdFor(kind: KindName, account: string, suffix?: string): string {
  return suffix ? `${kind}/${account}/${suffix}` : `${kind}/${account}`;
}
