/**
 * scp: from the management account, validate the SCP document → enable the SCP policy type on the
 * root if needed → create the policy (or a new version beside an old one, or adopt an identical one)
 * → one wave per target in the operator's order: attach, read back, detach the version it replaces
 * there → soak → next wave → verify (docs/kinds/scp.md). A reject during a soak, or a failure,
 * detaches what the run attached, re-attaches what it swapped out, and deletes the policy it created.
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { RemediationDefinition } from './lifecycle';
import { activity, runRemediation } from './lifecycle';

// Organizations answers concurrent changes to one target with ConcurrentModificationException and
// throttles with TooManyRequestsException; both are retried (activities/aws/errors.ts), from 5 s up.
const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 10 };

// The plan reads the root, each target, the organization's SCPs and each target's: a few calls per target.
const reads: ActivityOptions = { startToCloseTimeout: '5m', heartbeatTimeout: '1m', retry };
// One AWS mutation (and the reads around it) per activity.
const perChange: ActivityOptions = { startToCloseTimeout: '2m', heartbeatTimeout: '30s', retry };
// Enabling the policy type waits within the activity for PENDING_ENABLE to end (about 2 minutes of reads).
const enabling: ActivityOptions = { startToCloseTimeout: '5m', heartbeatTimeout: '30s', retry };

export const definition: RemediationDefinition = {
  plan: activity('planScp', reads),
  apply: {
    'enable-policy-type': activity('enableScpPolicyType', enabling),
    'create-policy': activity('createScp', perChange),
    'attach-policy': activity('attachScp', perChange),
    'detach-superseded-policy': activity('detachSupersededScp', perChange),
  },
  // The policy type has none on purpose: disabling it detaches every SCP of the organization for good.
  rollback: {
    'create-policy': activity('deleteCreatedScp', perChange),
    'attach-policy': activity('detachAttachedScp', perChange),
    'detach-superseded-policy': activity('reattachSupersededScp', perChange),
  },
  verify: activity('verifyScp', reads),
};

export async function applyScp(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, definition);
}
