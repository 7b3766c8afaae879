/** The arguments every kind's activities take: one object each, so fields can be added safely. */
import type { Json } from './json';
import type { Change, ChangeResult } from './plan';
import type { EffectivePolicy } from './policy';
import type { AccountPart } from './messages';

/**
 * What the engine sends an activity for: the worker marks activities by this role (evidence reads the
 * same role from each activity id), and applies the engine's guards to every change-bearing request.
 */
export type ActivityRole =
  | 'policy'
  | 'target'
  | 'plan'
  | 'snapshot'
  | 'apply'
  | 'rollback'
  | 'verify'
  | 'notify'
  /** An account's run confirming its organization approval (workflows/organization.ts). */
  | 'organization'
  /** Many changes per call (docs/engine.md, "Batches"): the scale path. */
  | 'snapshot-batch'
  | 'apply-batch'
  | 'rollback-batch';

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
  /**
   * Set by the engine: which page of the plan to produce (docs/engine.md, "Plan pages"). A kind that
   * pages starts after `cursor`, stops once its page would pass `budgetBytes`, and returns a
   * `nextCursor`; a kind that does not page ignores it and returns its whole plan.
   */
  page?: PlanPageRequest;
  /** The part of the account this run covers (a kind with a partition activity plans only that range). */
  part?: AccountPart;
}

export interface PlanPageRequest {
  /** 1 for the first page. */
  number: number;
  /** Where the previous page stopped (the kind's own marker, e.g. the last user name); absent on page 1. */
  cursor?: string;
  /** The chained digest of the pages before this one; absent on page 1. */
  previousDigest?: string;
  /** The size the page's JSON should stay under. */
  budgetBytes: number;
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

/**
 * Many changes of one action in one call (docs/engine.md, "Batches"). A snapshot batch returns one
 * snapshot per change it covered; an apply or rollback batch one result per change it finished. A
 * batch may stop early (its result budget, a failed change): the engine sends what it did not cover
 * again, or records it as not started.
 */
export interface BatchRequest extends AccountRef {
  role: 'snapshot-batch' | 'apply-batch' | 'rollback-batch';
  action: string;
  changes: Change[];
  /** apply-batch: per change id, what its snapshot batch handed on (already in history). */
  snapshots?: Record<string, Json>;
  /** rollback-batch: per change id, the result the change was applied with. */
  results?: Record<string, ChangeResult>;
  protectedPrincipals: string[];
  /** The size the batch's result should stay under. */
  budgetBytes: number;
}

export interface SnapshotBatchResult {
  snapshots: {
    changeId: string;
    /** The full record kept in history (null: the resource is already gone). */
    snapshot: Json;
    /** What the apply batch needs of it, when less than the whole snapshot (keeps history small). */
    forApply?: Json;
  }[];
  /** Changes whose snapshot could not be taken (for good): they fail, and nothing of theirs is touched. */
  failed?: ChangeResult[];
}

export interface ApplyBatchResult {
  results: ChangeResult[];
  /** Changes a permanent failure stopped this batch from starting (the run stops and rolls back). */
  notStarted?: string[];
}

export interface VerifyRequest extends AccountRef {
  role: 'verify';
  /** The changes that were applied, with their results (a large run sends them in several pages). */
  applied: { change: Change; result: ChangeResult }[];
  /** 1-based page number when the applied changes come in pages. */
  page?: number;
}

/** A kind's partition activity (KindSpec.partition): how to split one account into parts. */
export interface PartitionRequest extends AccountRef {
  role: 'organization';
  kind: string;
  /** The run's raw parameters (the activity types them with the kind's declarations). */
  params: Record<string, string>;
  /** The most resources (of what the kind changes) one part may take. */
  maxPerPart: number;
}

export interface PartitionResult {
  /** Resources the kind would change, all parts together (as read now; each part plans live). */
  candidates: number;
  /** Name ranges in order; one empty range when the account needs no split. */
  parts: { after?: string; through?: string }[];
}
