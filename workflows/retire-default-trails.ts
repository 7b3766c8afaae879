/**
 * retire-default-trails: from the management account, once a healthy organization trail logs →
 * classify every trail of the selected accounts → stop logging on the redundant ones → soak →
 * re-check, snapshot, delete → verify they are gone and the organization trail still logs.
 * A reject during the soak restarts logging on every trail the run stopped; a delete is irreversible.
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { RemediationDefinition } from './lifecycle';
import { activity, runRemediation } from './lifecycle';

const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 };

// The plan reads every trail of every selected account (a handful of calls per trail); it heartbeats per trail.
const reads: ActivityOptions = { startToCloseTimeout: '15m', heartbeatTimeout: '2m', retry };
// One trail per snapshot or mutation: a few reads and one CloudTrail change.
const perChange: ActivityOptions = { startToCloseTimeout: '5m', heartbeatTimeout: '30s', retry };

export const definition: RemediationDefinition = {
  plan: activity('planDefaultTrailRetirement', reads),
  snapshot: activity('snapshotRetiringTrail', perChange),
  apply: {
    'stop-logging': activity('stopRetiringTrailLogging', perChange),
    'delete-trail': activity('deleteRetiringTrail', perChange),
  },
  rollback: { 'stop-logging': activity('restartRetiringTrailLogging', perChange) },
  verify: activity('verifyDefaultTrailRetirement', reads),
};

export async function retireDefaultTrails(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, definition);
}
