/**
 * CloudTrail's and Organizations' refusals around an organization trail, turned into failures that
 * say what is wrong and what to do. Each keeps the `AWS.<name>` type of every other classified AWS
 * error (activities/aws/errors.ts), so only the message changes.
 *
 * Two refusals can be passing states right after this run changed something: CloudTrail may read a
 * bucket policy or a just-created role before IAM and S3 have propagated them. Those are retried by
 * Temporal a few times before they are final; every other one is final at once.
 */
import { ApplicationFailure } from '@temporalio/common';
import { awsErrorName } from '../aws/errors';

export interface TrailErrorContext {
  account: string;
  bucket: string;
  trailName: string;
  homeRegion: string;
  /** The activity's attempt (1 for the first). */
  attempt: number;
}

/** Attempts for a refusal that may only be propagation delay, before it is reported as final. */
export const PROPAGATION_ATTEMPTS = 4;

const PROPAGATING = new Set(['InsufficientS3BucketPolicyException', 'InvalidCloudWatchLogsRoleArnException', 'InsufficientEncryptionPolicyException']);

function advice(name: string, c: TrailErrorContext): string | undefined {
  switch (name) {
    case 'InsufficientS3BucketPolicyException':
      return `CloudTrail may not write to the bucket ${c.bucket}: its policy must let cloudtrail.amazonaws.com call s3:GetBucketAcl and s3:PutObject under AWSLogs/${c.account}/ and AWSLogs/<organization id>/ for this trail's ARN; run the remediation again to plan the bucket policy (it may have changed after approval)`;
    case 'NotOrganizationMasterAccountException':
    case 'NotOrganizationManagementAccountException':
      return `account ${c.account} is not its organization's management account, and only the management account may create or change an organization trail; run with the management account's credentials (a CloudTrail delegated administrator is not supported by this remediation)`;
    case 'OrganizationNotInAllFeaturesModeException':
      return "the organization has only consolidated-billing features; enable all features (`aws organizations enable-all-features`, then every member account accepts) and run again";
    case 'OrganizationsNotInUseException':
    case 'AWSOrganizationsNotInUseException':
      return `account ${c.account} is in no organization; an organization trail needs one with all features (\`aws organizations create-organization --feature-set ALL\`)`;
    case 'CloudTrailAccessNotEnabledException':
      return 'trusted access for cloudtrail.amazonaws.com is not enabled in the organization; run the remediation again (its plan enables it), or `aws organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com`';
    case 'InsufficientDependencyServiceAccessPermissionException':
    case 'NoManagementAccountSLRExistsException':
      return 'CloudTrail could not set up its service-linked role: the worker needs iam:GetRole and iam:CreateServiceLinkedRole, and the management account needs the AWSServiceRoleForOrganizations role';
    case 'MaximumNumberOfTrailsExceededException':
      return `account ${c.account} already has 5 trails in ${c.homeRegion}, the limit; retire one (the retire-default-trails remediation) and run again`;
    case 'InvalidHomeRegionException':
      return `the trail ${c.trailName} is homed in another region than ${c.homeRegion}; pass homeRegion=<its region>`;
    case 'S3BucketDoesNotExistException':
      return `the bucket ${c.bucket} does not exist (deleted after approval?); run the remediation again to plan it`;
    case 'KmsKeyNotFoundException':
    case 'InvalidKmsKeyIdException':
    case 'KmsException':
      return `CloudTrail cannot use the KMS key: it must exist, be enabled, and be in the bucket ${c.bucket}'s region`;
    case 'InsufficientEncryptionPolicyException':
      return "the KMS key's policy must let cloudtrail.amazonaws.com call kms:GenerateDataKey* (for this account's trails) and kms:DescribeKey";
    case 'InvalidCloudWatchLogsLogGroupArnException':
    case 'InvalidCloudWatchLogsRoleArnException':
    case 'CloudWatchLogsDeliveryUnavailableException':
      return "CloudTrail cannot deliver to the CloudWatch Logs log group: the group and role must be in the management account, the role must trust cloudtrail.amazonaws.com and allow logs:CreateLogStream and logs:PutLogEvents on the group's streams, including the o-<organization id>_* ones";
    case 'TrailNotFoundException':
      return `the trail ${c.trailName} does not exist in ${c.homeRegion} (deleted after approval?)`;
    default:
      return undefined;
  }
}

/**
 * The failure to throw for a CloudTrail or Organizations error met while acting on the trail, or
 * undefined when it is none of those this file knows (the generic classification applies).
 */
export function explainTrailError(err: unknown, context: TrailErrorContext): ApplicationFailure | undefined {
  const name = awsErrorName(err);
  const what = advice(name, context);
  if (!what) return undefined;
  const mayPropagate = PROPAGATING.has(name) && context.attempt < PROPAGATION_ATTEMPTS;
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({
    type: `AWS.${name}`,
    message: `${name}: ${what} (AWS said: ${message})`,
    nonRetryable: !mayPropagate,
    details: [{ category: mayPropagate ? 'propagating' : 'permanent', attempt: context.attempt }],
    cause: err instanceof Error ? err : undefined,
  });
}
