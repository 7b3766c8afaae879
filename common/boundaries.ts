/**
 * Countersign's built-in permissions boundaries (docs/kinds/permission-boundary.md): pure data, shared
 * by the catalogue (which names the CLI accepts after `builtin:`) and the activities (which create
 * the policy in the target account when it is missing). No imports beyond types: safe everywhere.
 *
 * A boundary only ever narrows what a principal's own policies grant (docs/aws.md §4: effective
 * permissions are the intersection of identity policies, boundary and SCPs), so its Allow of `*` grants
 * nothing by itself; the Deny statements are the control.
 */
import type { JsonObject } from './json';

/** Where built-in boundaries live in an account: `arn:<partition>:iam::<account>:policy/countersign/<name>`. */
export const BUILTIN_BOUNDARY_PATH = '/countersign/';

export interface BoundaryContext {
  partition: string;
  account: string;
}

export interface BuiltinBoundary {
  name: string;
  description: string;
  /** The policy document, which names its own ARN (it protects itself). */
  document(ctx: BoundaryContext): JsonObject;
}

export function builtinBoundaryArn(name: string, ctx: BoundaryContext): string {
  return `arn:${ctx.partition}:iam::${ctx.account}:policy${BUILTIN_BOUNDARY_PATH}${name}`;
}

/**
 * The SOC 2 workload boundary: everything the principal's own policies grant, except
 * - escalating through IAM: making or changing a principal, or its policies, unless the result carries
 *   this same boundary; group policies and memberships; editing managed policies (a new default version
 *   reaches every principal it is attached to); trust policies; credentials for another user;
 * - removing or replacing any boundary, or changing this policy;
 * - Organizations, and switching off or blinding CloudTrail, AWS Config and GuardDuty.
 * iam:PassRole stays allowed (workloads hand roles to EC2, Lambda, ECS); restrict it per role naming.
 */
function workloadBoundary(ctx: BoundaryContext): JsonObject {
  const self = builtinBoundaryArn('countersign-workload-boundary', ctx);
  const iam = (actions: string[]) => actions.map((a) => `iam:${a}`);
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'AllowWhatIdentityPoliciesGrant', Effect: 'Allow', Action: '*', Resource: '*' },
      {
        Sid: 'DenyPrincipalsWithoutThisBoundary',
        Effect: 'Deny',
        Action: iam([
          'CreateUser',
          'CreateRole',
          'PutUserPermissionsBoundary',
          'PutRolePermissionsBoundary',
          'AttachUserPolicy',
          'AttachRolePolicy',
          'PutUserPolicy',
          'PutRolePolicy',
          'DetachUserPolicy',
          'DetachRolePolicy',
          'DeleteUserPolicy',
          'DeleteRolePolicy',
        ]),
        Resource: '*',
        Condition: { StringNotEquals: { 'iam:PermissionsBoundary': self } },
      },
      {
        Sid: 'DenyIamEscalation',
        Effect: 'Deny',
        Action: iam([
          'DeleteUserPermissionsBoundary',
          'DeleteRolePermissionsBoundary',
          'AttachGroupPolicy',
          'PutGroupPolicy',
          'DetachGroupPolicy',
          'DeleteGroupPolicy',
          'AddUserToGroup',
          'CreatePolicyVersion',
          'SetDefaultPolicyVersion',
          'DeletePolicyVersion',
          'UpdateAssumeRolePolicy',
        ]),
        Resource: '*',
      },
      {
        Sid: 'DenyCredentialsForOtherUsers',
        Effect: 'Deny',
        Action: iam([
          'CreateAccessKey',
          'UpdateAccessKey',
          'CreateLoginProfile',
          'UpdateLoginProfile',
          'CreateServiceSpecificCredential',
          'ResetServiceSpecificCredential',
          'UploadSSHPublicKey',
          'UploadSigningCertificate',
        ]),
        NotResource: [`arn:${ctx.partition}:iam::${ctx.account}:user/\${aws:username}`, `arn:${ctx.partition}:iam::${ctx.account}:user/*/\${aws:username}`],
      },
      { Sid: 'ProtectThisBoundary', Effect: 'Deny', Action: iam(['DeletePolicy', 'TagPolicy', 'UntagPolicy']), Resource: self },
      { Sid: 'DenyOrganizations', Effect: 'Deny', Action: 'organizations:*', Resource: '*' },
      {
        Sid: 'DenyCloudTrailTampering',
        Effect: 'Deny',
        Action: [
          'cloudtrail:StopLogging',
          'cloudtrail:DeleteTrail',
          'cloudtrail:UpdateTrail',
          'cloudtrail:PutEventSelectors',
          'cloudtrail:DeleteEventDataStore',
          'cloudtrail:UpdateEventDataStore',
          'cloudtrail:StopEventDataStoreIngestion',
        ],
        Resource: '*',
      },
      {
        Sid: 'DenyConfigTampering',
        Effect: 'Deny',
        Action: [
          'config:StopConfigurationRecorder',
          'config:DeleteConfigurationRecorder',
          'config:PutConfigurationRecorder',
          'config:DeleteDeliveryChannel',
          'config:PutDeliveryChannel',
          'config:DeleteConfigRule',
          'config:DeleteConformancePack',
          'config:DeleteConfigurationAggregator',
          'config:DeleteEvaluationResults',
          'config:DeleteRetentionConfiguration',
        ],
        Resource: '*',
      },
      {
        Sid: 'DenyGuardDutyTampering',
        Effect: 'Deny',
        Action: [
          'guardduty:DeleteDetector',
          'guardduty:UpdateDetector',
          'guardduty:DisassociateFromMasterAccount',
          'guardduty:DisassociateFromAdministratorAccount',
          'guardduty:DisassociateMembers',
          'guardduty:DeleteMembers',
          'guardduty:StopMonitoringMembers',
          'guardduty:CreateFilter',
          'guardduty:UpdateFilter',
          'guardduty:ArchiveFindings',
          'guardduty:CreateIPSet',
          'guardduty:UpdateIPSet',
          'guardduty:DeleteThreatIntelSet',
          'guardduty:UpdateThreatIntelSet',
          'guardduty:DeletePublishingDestination',
          'guardduty:UpdatePublishingDestination',
        ],
        Resource: '*',
      },
    ],
  };
}

export const BUILTIN_BOUNDARIES: Record<string, BuiltinBoundary> = {
  'countersign-workload-boundary': {
    name: 'countersign-workload-boundary',
    description:
      'Countersign SOC 2 workload boundary: everything identity policies grant, except IAM privilege escalation, boundary removal, Organizations, and CloudTrail/Config/GuardDuty tampering',
    document: workloadBoundary,
  },
};

export const BUILTIN_BOUNDARY_NAMES = Object.keys(BUILTIN_BOUNDARIES);

/** `builtin:<name>` → the built-in of that name; undefined for a policy ARN or an unknown name. */
export function builtinBoundaryOf(param: string): BuiltinBoundary | undefined {
  const m = /^builtin:(.+)$/.exec(param);
  return m && Object.prototype.hasOwnProperty.call(BUILTIN_BOUNDARIES, m[1] as string) ? BUILTIN_BOUNDARIES[m[1] as string] : undefined;
}
