/**
 * org-trail: from the management account, check the organization → enable CloudTrail trusted access
 * → create and protect the log bucket, merge the organization-trail policy → create (or adopt, or
 * update) the organization trail → start logging → verify (docs/kinds/org-trail.md).
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { RemediationDefinition } from './lifecycle';
import { activity, runRemediation } from './lifecycle';

// CloudTrail throttles mutations to about one per second: the backoff starts above that.
const retry: RetryPolicy = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 8 };

// The plan reads the organization, the bucket's settings and the trail: a few dozen calls at most.
const reads: ActivityOptions = { startToCloseTimeout: '5m', heartbeatTimeout: '1m', retry };
// One AWS mutation (and the reads around it) per activity.
const perChange: ActivityOptions = { startToCloseTimeout: '2m', heartbeatTimeout: '30s', retry };

export const definition: RemediationDefinition = {
  plan: activity('planOrgTrail', reads),
  apply: {
    'enable-trusted-access': activity('enableCloudTrailTrustedAccess', perChange),
    'create-log-bucket': activity('createLogBucket', perChange),
    'block-public-access': activity('applyLogBucketSetting', perChange),
    'enable-versioning': activity('applyLogBucketSetting', perChange),
    'enforce-bucket-owner': activity('applyLogBucketSetting', perChange),
    'set-default-encryption': activity('applyLogBucketSetting', perChange),
    'put-bucket-policy': activity('applyLogBucketSetting', perChange),
    'create-trail': activity('createOrganizationTrail', perChange),
    'update-trail': activity('updateOrganizationTrail', perChange),
    'start-logging': activity('startOrganizationTrailLogging', perChange),
  },
  // Trusted access has none on purpose: disabling it turns organization trails into single-account trails.
  rollback: {
    'create-log-bucket': activity('deleteCreatedLogBucket', perChange),
    'block-public-access': activity('restoreLogBucketSetting', perChange),
    'enable-versioning': activity('restoreLogBucketSetting', perChange),
    'enforce-bucket-owner': activity('restoreLogBucketSetting', perChange),
    'set-default-encryption': activity('restoreLogBucketSetting', perChange),
    'put-bucket-policy': activity('restoreLogBucketSetting', perChange),
    'create-trail': activity('deleteCreatedOrganizationTrail', perChange),
    'update-trail': activity('restoreOrganizationTrail', perChange),
    'start-logging': activity('stopOrganizationTrailLogging', perChange),
  },
  verify: activity('verifyOrgTrail', reads),
};

export async function createOrgTrail(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, definition);
}
