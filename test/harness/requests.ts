/**
 * The requests the engine sends a kind's activities, for unit tests that call those activities
 * directly: the same shape the workflow builds (workflows/lifecycle.ts), with a test policy and a
 * target that is the worker's own account.
 */
import type { Change, ChangeResult } from '../../common/plan';
import type { EffectivePolicy } from '../../common/policy';
import type { ChangeRequest, PlanRequest, RollbackRequest } from '../../common/requests';

export const TEST_REGION = 'us-east-1';

interface Scope {
  workflowId: string;
  account: string;
}

export function planRequestFor<P>(kind: string, params: P, scope: Scope): PlanRequest<P> {
  const { workflowId, account } = scope;
  const worker = `arn:aws:iam::${account}:role/countersign-worker`;
  return {
    role: 'plan',
    kind,
    workflowId,
    account,
    region: TEST_REGION,
    params,
    requestedBy: 'riley.operator',
    policy: { kind, source: 'test', approvers: ['dana'], quorum: 1, approvalTimeout: '1h', protectedPrincipals: [], maxChanges: 200 } satisfies EffectivePolicy,
    target: { account, region: TEST_REGION, workerArn: worker, actingArn: worker, selfPrincipals: [] },
    protectedPrincipals: [],
  };
}

export function applyRequestFor(change: Change, scope: Scope): ChangeRequest {
  return { role: 'apply', ...scope, region: TEST_REGION, change, protectedPrincipals: [] };
}

export function rollbackRequestFor(change: Change, observed: ChangeResult['observed'], scope: Scope): RollbackRequest {
  return {
    role: 'rollback',
    ...scope,
    region: TEST_REGION,
    change,
    result: { changeId: change.id, status: 'applied', at: '2026-01-01T00:00:00Z', observed },
    protectedPrincipals: [],
  };
}
