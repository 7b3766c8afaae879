/**
 * stale-iam-users: credential report → users idle past maxIdle → disable (snapshot first) → soak →
 * re-check → remove every dependent in AWS's order → delete → verify (DESIGN §2, reference/aws.md §5).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import { runRemediation } from './lifecycle';

const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 };

// Reads may page through a large account; they heartbeat per user.
const reads = proxyActivities<Activities>({ startToCloseTimeout: '10m', heartbeatTimeout: '2m', retry });
// One user per snapshot or mutation. They heartbeat between AWS calls, so a worker lost mid-change is
// noticed within 30 s and the (idempotent) activity is retried on another worker.
const perChange = proxyActivities<Activities>({ startToCloseTimeout: '5m', heartbeatTimeout: '30s', retry });

export async function removeStaleIamUsers(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, {
    plan: reads.planStaleIamUserRemoval,
    snapshot: perChange.snapshotStaleIamUser,
    apply: {
      'disable-user': perChange.disableStaleIamUser,
      'delete-user': perChange.deleteStaleIamUser,
    },
    rollback: { 'disable-user': perChange.reenableStaleIamUser },
    verify: reads.verifyStaleIamUserRemoval,
  });
}
