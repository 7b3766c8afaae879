/**
 * permission-boundary: select users and roles → leave alone what only AWS may change, the run's own and
 * protected principals, and those already compliant → (create the built-in boundary) → waves of
 * `batch` principals, a soak before each wave after the first → re-check, record, put, read back →
 * verify; rollback puts each previous boundary back, or removes the one this run added
 * (docs/kinds/permission-boundary.md, docs/aws.md §4).
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { RemediationDefinition } from './lifecycle';
import { activity, runRemediation } from './lifecycle';

const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 };

// The plan lists every user and role and reads each selected one: it heartbeats per principal.
const reads: ActivityOptions = { startToCloseTimeout: '10m', heartbeatTimeout: '2m', retry };
// One principal (or the boundary policy) per activity: a read, one mutation, a read back.
const perChange: ActivityOptions = { startToCloseTimeout: '2m', heartbeatTimeout: '30s', retry };

export const definition: RemediationDefinition = {
  plan: activity('planPermissionBoundaries', reads),
  apply: {
    'create-boundary': activity('createBuiltinBoundary', perChange),
    'set-boundary': activity('setPermissionsBoundary', perChange),
  },
  rollback: {
    'create-boundary': activity('deleteCreatedBoundary', perChange),
    'set-boundary': activity('restorePermissionsBoundary', perChange),
  },
  verify: activity('verifyPermissionBoundaries', reads),
};

export async function applyPermissionBoundaries(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, definition);
}
