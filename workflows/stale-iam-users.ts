/**
 * stale-iam-users: credential report → users idle past maxIdle → disable (snapshot first) → soak →
 * re-check → remove every dependent in AWS's order → delete → verify (docs/design.md §2, docs/aws.md §5).
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { RemediationDefinition } from './lifecycle';
import { activity, runRemediation } from './lifecycle';

const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 };

// Reads may page through a large account; they heartbeat per user.
const reads: ActivityOptions = { startToCloseTimeout: '10m', heartbeatTimeout: '2m', retry };
// One user per snapshot or mutation. They heartbeat between AWS calls, so a worker lost mid-change is
// noticed within 30 s and the (idempotent) activity is retried on another worker.
const perChange: ActivityOptions = { startToCloseTimeout: '5m', heartbeatTimeout: '30s', retry };
// Up to a hundred users per batch. Each finished user is checkpointed in the heartbeat, so a retried
// batch resumes after the users already done.
const perBatch: ActivityOptions = { startToCloseTimeout: '30m', heartbeatTimeout: '30s', retry };

export const definition: RemediationDefinition = {
  plan: activity('planStaleIamUserRemoval', reads),
  snapshot: activity('snapshotStaleIamUser', perChange),
  apply: {
    'disable-user': activity('disableStaleIamUser', perChange),
    'delete-user': activity('deleteStaleIamUser', perChange),
  },
  rollback: { 'disable-user': activity('reenableStaleIamUser', perChange) },
  verify: activity('verifyStaleIamUserRemoval', reads),
  // The path runs take: a batch of users per activity (docs/engine.md, "Batches").
  batch: {
    snapshot: activity('snapshotStaleIamUsers', perBatch),
    apply: {
      'disable-user': activity('disableStaleIamUsers', perBatch),
      'delete-user': activity('deleteStaleIamUsers', perBatch),
    },
    rollback: { 'disable-user': activity('reenableStaleIamUsers', perBatch) },
  },
};

export async function removeStaleIamUsers(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, definition);
}
