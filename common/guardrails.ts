/**
 * The built-in SOC 2 guardrails of the `scp` kind (docs/kinds/scp.md): each one a deny-list service
 * control policy whose statements deny a set of actions on every resource (docs/aws.md §3.4).
 *
 * SCPs grant nothing, so a guardrail only ever narrows what member accounts may do, and it relies on
 * `FullAWSAccess` staying attached beside it (docs/aws.md §3.3). The principals the operator exempts
 * (break-glass and remediation roles) are written into every statement as `ArnNotLike
 * aws:PrincipalArn`: a statement whose condition does not hold does not deny.
 *
 * Pure data and one builder; the names must be exactly the catalogue's `guardrail` options
 * (common/kinds.ts), which test/unit/scp.test.ts asserts.
 */
import type { JsonObject } from './json';

export const GUARDRAIL_NAMES = ['protect-cloudtrail', 'deny-leave-organization', 'protect-security-services', 'protect-s3-public-access-block', 'deny-root-user'] as const;

export type GuardrailName = (typeof GUARDRAIL_NAMES)[number];

/** A condition block: operator → condition key → values. */
type Condition = Record<string, Record<string, string[]>>;

interface GuardrailStatement {
  sid: string;
  actions: string[];
  /** A condition of the statement's own (deny-root-user: only the root user); exemptions are added to it. */
  condition?: Condition;
}

export interface Guardrail {
  name: GuardrailName;
  /** One line for the plan and --help. */
  summary: string;
  statements: GuardrailStatement[];
}

export const GUARDRAILS: Record<GuardrailName, Guardrail> = {
  'protect-cloudtrail': {
    name: 'protect-cloudtrail',
    summary: 'member accounts cannot stop, delete or reconfigure CloudTrail trails (CC7.2)',
    statements: [
      {
        sid: 'ProtectCloudTrail',
        actions: ['cloudtrail:StopLogging', 'cloudtrail:DeleteTrail', 'cloudtrail:UpdateTrail', 'cloudtrail:PutEventSelectors', 'cloudtrail:PutInsightSelectors'],
      },
    ],
  },
  'deny-leave-organization': {
    name: 'deny-leave-organization',
    summary: 'member accounts cannot leave the organization, and so cannot shed its guardrails',
    statements: [{ sid: 'DenyLeaveOrganization', actions: ['organizations:LeaveOrganization'] }],
  },
  'protect-security-services': {
    name: 'protect-security-services',
    summary: 'member accounts cannot disable or delete AWS Config, GuardDuty or Security Hub, nor detach from their administrator (CC7.2)',
    statements: [
      {
        sid: 'ProtectConfig',
        actions: ['config:DeleteConfigRule', 'config:DeleteConfigurationRecorder', 'config:DeleteDeliveryChannel', 'config:StopConfigurationRecorder'],
      },
      {
        sid: 'ProtectGuardDuty',
        actions: [
          'guardduty:DeleteDetector',
          'guardduty:UpdateDetector',
          'guardduty:DisassociateFromMasterAccount',
          'guardduty:DisassociateFromAdministratorAccount',
          'guardduty:DeleteMembers',
          'guardduty:DisassociateMembers',
          'guardduty:StopMonitoringMembers',
          'guardduty:CreateFilter',
          'guardduty:UpdateFilter',
          'guardduty:CreateIPSet',
          'guardduty:UpdateIPSet',
          'guardduty:DeletePublishingDestination',
        ],
      },
      {
        sid: 'ProtectSecurityHub',
        actions: [
          'securityhub:DisableSecurityHub',
          'securityhub:DisassociateFromMasterAccount',
          'securityhub:DisassociateFromAdministratorAccount',
          'securityhub:DeleteMembers',
          'securityhub:DisassociateMembers',
          'securityhub:BatchDisableStandards',
        ],
      },
    ],
  },
  'protect-s3-public-access-block': {
    name: 'protect-s3-public-access-block',
    // Account level only: denying s3:PutBucketPublicAccessBlock would also stop anyone *enabling* a
    // bucket's block, every remediation that sets one included (docs/aws.md §3.4).
    summary: "member accounts cannot change or remove their account-level S3 public access block",
    statements: [{ sid: 'ProtectS3AccountPublicAccessBlock', actions: ['s3:PutAccountPublicAccessBlock'] }],
  },
  'deny-root-user': {
    name: 'deny-root-user',
    summary: "member accounts' root users can do nothing (the management account's root is never restricted by an SCP)",
    statements: [{ sid: 'DenyRootUser', actions: ['*'], condition: { StringLike: { 'aws:PrincipalArn': ['arn:aws:iam::*:root'] } } }],
  },
};

export function isGuardrailName(name: string): name is GuardrailName {
  return (GUARDRAIL_NAMES as readonly string[]).includes(name);
}

/**
 * The guardrail's SCP document, with `exemptPrincipals` (IAM ARN patterns) written into every
 * statement's condition. Deterministic: the same guardrail and exemptions give the same document, so
 * a second run finds the policy it created and adopts it.
 */
export function guardrailDocument(name: GuardrailName, exemptPrincipals: readonly string[] = []): JsonObject {
  const exempt = [...new Set(exemptPrincipals)];
  return {
    Version: '2012-10-17',
    Statement: GUARDRAILS[name].statements.map((s) => {
      const condition: Condition = { ...(s.condition ?? {}), ...(exempt.length > 0 ? { ArnNotLike: { 'aws:PrincipalArn': exempt } } : {}) };
      return {
        Sid: s.sid,
        Effect: 'Deny',
        Action: s.actions.length === 1 ? (s.actions[0] as string) : s.actions,
        Resource: '*',
        ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
      };
    }),
  };
}
