/** The arguments every kind's activities take: one object each, so fields can be added safely. */
import type { Json } from './json';
import type { Change, ChangeResult } from './plan';
import type { EffectivePolicy } from './policy';

/**
 * What the engine sends an activity for: the worker marks activities by this role (evidence reads the
 * same role from each activity id), and applies the engine's guards to every change-bearing request.
 */
export type ActivityRole = 'policy' | 'target' | 'plan' | 'snapshot' | 'apply' | 'rollback' | 'verify' | 'notify';

/** The account a run acts in, and how the worker reaches it (resolved once, at the start, into history). */
export interface TargetInfo {
  account: string;
  region: string;
  accountName?: string;
  organizationId?: string;
  managementAccount?: string;
  /** The worker's own principal (its base credentials). */
  workerArn: string;
  /** Who acts in the target account: the worker itself, or the assumed-role session. */
  actingArn: string;
  /** Set when the account is reached by assuming a role. */
  roleArn?: string;
  sessionName?: string;
  /** IAM ARNs of the principals the run itself depends on: never changed, whatever a plan says. */
  selfPrincipals: string[];
}

/** How an activity reaches the account: enough to rebuild the same clients on any worker. */
export interface AccountRef {
  workflowId: string;
  account: string;
  region: string;
}

export interface TargetRequest {
  role: 'target';
  kind: string;
  workflowId: string;
  /** The requested account; absent = the worker's own. */
  account?: string;
}

export interface PlanRequest<P = Record<string, unknown>> extends AccountRef {
  role: 'plan';
  kind: string;
  /** Typed and defaulted by the engine before the kind sees them (the raw strings are in the workflow input). */
  params: P;
  requestedBy: string;
  policy: EffectivePolicy;
  target: TargetInfo;
  /** Policy patterns plus the run's own principals: a kind lists matches as left alone. */
  protectedPrincipals: string[];
}

export interface ChangeRequest extends AccountRef {
  role: 'snapshot' | 'apply';
  change: Change;
  /** The snapshot taken just before a destructive change (already in history). */
  snapshot?: Json;
  /** Principals the activity must refuse to touch whatever the plan says (fail closed). */
  protectedPrincipals: string[];
}

export interface RollbackRequest extends AccountRef {
  role: 'rollback';
  change: Change;
  result: ChangeResult;
  protectedPrincipals: string[];
}

export interface VerifyRequest extends AccountRef {
  role: 'verify';
  /** The changes that were applied, with their results. */
  applied: { change: Change; result: ChangeResult }[];
}
