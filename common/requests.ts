/** The arguments every kind's activities take: one object each, so fields can be added safely. */
import type { Json } from './json';
import type { KindName } from './kinds';
import type { Change, ChangeResult } from './plan';
import type { EffectivePolicy } from './policy';

export interface PlanRequest {
  kind: KindName;
  workflowId: string;
  account?: string;
  params: Record<string, string>;
  requestedBy: string;
  policy: EffectivePolicy;
}

/** Where a plan's changes land: copied from the plan into every change request. */
export interface Target {
  workflowId: string;
  account: string;
  region: string;
}

export interface ChangeRequest extends Target {
  change: Change;
  /** The snapshot taken just before a destructive change (already in history). */
  snapshot?: Json;
  /** Principals the activity must refuse to touch whatever the plan says (fail closed). */
  protectedPrincipals: string[];
}

export interface RollbackRequest extends Target {
  change: Change;
  result: ChangeResult;
}

export interface VerifyRequest extends Target {
  /** The changes that were applied, with their results. */
  applied: { change: Change; result: ChangeResult }[];
}
