/**
 * The catalogue of remediations. Each kind names its workflow type and declares its parameters
 * (common/params.ts), so the CLI validates input at the edge, `--help` teaches from the same
 * declarations, and the plan activity receives typed values. Adding a kind adds one entry here plus
 * `workflows/<kind>.ts` and `activities/<kind>.ts`; the kind name type is derived from this object.
 */
import type { ParamSpecs, ParamsOf } from './params';
import { ParamError, arn, arnPatterns, choice, duration, flag, integer, jsonDocument, names, orgIds, principalSelectors, resolveParams, text } from './params';
import { scpDocumentProblem } from './scp-document';

export interface KindSpec<P extends ParamSpecs = ParamSpecs> {
  workflowType: string;
  summary: string;
  /** SOC 2 criteria the change is evidence for. */
  controls: string[];
  /** Where it runs: any account of the organization, or only the management account. */
  scope: 'account' | 'management';
  params: P;
  /**
   * An activity that splits one account's work into parts by a range of resource names, so an account
   * too large for one run's history runs as several under one approval (docs/engine.md, "Parts").
   */
  partition?: string;
}

/** Keeps each entry's parameter types precise while checking it is a KindSpec. */
function defineKind<P extends ParamSpecs>(spec: KindSpec<P>): KindSpec<P> {
  return spec;
}

export const KINDS = {
  'stale-iam-users': defineKind({
    workflowType: 'removeStaleIamUsers',
    partition: 'partitionStaleIamUsers',
    summary:
      'Disable, soak, then remove IAM users whose every active credential has been idle past maxIdle (credential report).',
    controls: ['CC6.2', 'CC6.3', 'CC8.1'],
    scope: 'account',
    params: {
      maxIdle: duration({ default: '90d', description: 'a credential unused (or, never used, issued) this long ago is idle' }),
      soak: duration({ default: '14d', max: '365d', description: 'how long users stay disabled before they are deleted' }),
      exempt: names({ description: 'comma-separated user names never touched (users tagged countersign:exempt are exempt too)' }),
    },
  }),
  'org-trail': defineKind({
    workflowType: 'createOrgTrail',
    summary:
      'Create (or adopt) the organization CloudTrail trail: trusted access, a protected log bucket with the organization-trail policy, a multi-region trail with log-file validation, logging started and verified.',
    controls: ['CC7.2', 'CC7.3', 'CC8.1'],
    scope: 'management',
    params: {
      bucket: text({
        label: 'BUCKET',
        description: 'the S3 bucket the trail delivers to (created in the home region when missing)',
        pattern: /^(?=.{3,63}$)(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)[a-z0-9](?:[a-z0-9-]|\.(?!\.))*[a-z0-9]$/,
        expected: 'an S3 bucket name: 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit',
      }),
      trailName: text({
        label: 'NAME',
        default: 'org-trail',
        description: 'the trail name',
        pattern: /^(?=.{3,128}$)[A-Za-z0-9](?:[A-Za-z0-9]|[._-](?=[A-Za-z0-9]))*$/,
        expected: 'a trail name: 3–128 letters, digits, ".", "_" or "-", starting and ending with a letter or digit, no two special characters together',
      }),
      homeRegion: text({
        label: 'REGION',
        optional: true,
        description: "the trail's home region (default: the worker's region)",
        pattern: /^[a-z]{2}(-gov)?-[a-z]+-\d$/,
        expected: 'an AWS region such as us-east-1',
      }),
      kmsKeyId: text({
        label: 'KMS-KEY',
        optional: true,
        description: 'encrypt log files with this KMS key (alias/…, key id or ARN, in the bucket\'s region)',
        pattern: /^(alias\/[\w/-]{1,250}|[0-9a-f-]{36}|arn:aws(?:-cn|-us-gov|-iso(?:-[bef])?|-eusc)?:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[\w/-]+)$/,
        expected: 'a KMS key: alias/NAME, a key id, or a key or alias ARN',
      }),
      cloudWatchLogsGroupArn: arn({ service: 'logs', resource: 'log-group:', optional: true, description: 'also deliver to this CloudWatch Logs log group (in the management account)' }),
      cloudWatchLogsRoleArn: arn({ service: 'iam', resource: 'role/', optional: true, description: 'the role CloudTrail assumes to write to that log group' }),
    },
  }),
  'retire-default-trails': defineKind({
    workflowType: 'retireDefaultTrails',
    summary:
      'Once a healthy organization trail logs, stop then delete the trails it makes redundant (duplicates of management events, broken trails); keep every trail with a purpose of its own, with the reason.',
    controls: ['CC7.2', 'CC8.1'],
    scope: 'management',
    params: {
      accounts: orgIds({ accepts: ['account'], allowAll: true, description: 'the accounts whose trails are reviewed: ids, or "all" (the management account and every member)' }),
      soak: duration({ default: '7d', max: '365d', description: 'how long trails stay stopped before they are deleted' }),
      keep: names({ description: 'comma-separated trail names never retired' }),
    },
  }),
  scp: defineKind({
    workflowType: 'applyScp',
    summary:
      'Create (or version) a service control policy — a built-in SOC 2 guardrail or your document — and attach it target by target in waves, with a soak and checks between waves; a reject or failure detaches what the run attached.',
    controls: ['CC6.1', 'CC6.8', 'CC8.1'],
    scope: 'management',
    params: {
      guardrail: choice({
        description: 'a built-in guardrail (give this or policyFile)',
        options: ['protect-cloudtrail', 'deny-leave-organization', 'protect-security-services', 'protect-s3-public-access-block', 'deny-root-user'] as const,
        optional: true,
      }),
      policyFile: jsonDocument({
        optional: true,
        maxChars: 5_120,
        // The SCP grammar (common/scp-document.ts): the emulator accepts any text as a policy, and AWS
        // would refuse a bad one only after approval, at CreatePolicy (docs/aws.md §9).
        check: scpDocumentProblem,
        description: 'your SCP document (give this or guardrail), at most 5,120 characters minified; needs name',
      }),
      name: text({
        label: 'NAME',
        optional: true,
        description: 'the policy name (default: countersign-<guardrail>; required with policyFile)',
        pattern: /^[\w+=,.@-]{1,128}$/,
        expected: 'a policy name: 1–128 letters, digits and +=,.@_-',
      }),
      targets: orgIds({ accepts: ['ou', 'account', 'root'], description: 'OU, account or root ids in rollout order, comma-separated: each is a wave' }),
      soak: duration({ default: '1d', max: '90d', description: 'the wait after each wave before the next' }),
      exemptPrincipals: arnPatterns({ description: 'principal ARN patterns the built-in guardrails never restrict (break-glass, automation roles)' }),
      allowRoot: flag({ description: 'allow attaching to the organization root (refused without it)' }),
    },
  }),
  'permission-boundary': defineKind({
    workflowType: 'applyPermissionBoundaries',
    summary:
      'Set a permissions boundary on the selected IAM users and roles in waves, recording each previous boundary; skips service-linked, SSO-reserved, Control Tower, protected and the run\'s own principals; rollback restores each previous boundary.',
    controls: ['CC6.1', 'CC6.3', 'CC8.1'],
    scope: 'account',
    params: {
      boundary: text({
        label: 'ARN|NAME',
        description:
          'the boundary: a managed policy ARN (AWS managed, or of the target account), or builtin:countersign-workload-boundary, which Countersign creates when missing (common/boundaries.ts)',
        // Built-in names: BUILTIN_BOUNDARIES in common/boundaries.ts (test/unit/permission-boundary.test.ts checks each is accepted here).
        pattern: /^(arn:aws(?:-cn|-us-gov|-iso(?:-[bef])?|-eusc)?:iam::(\d{12}|aws):policy\/[\w+=,.@/-]+|builtin:countersign-workload-boundary)$/,
        expected: 'a managed policy ARN (arn:aws:iam::123456789012:policy/NAME) or builtin:countersign-workload-boundary',
      }),
      users: principalSelectors({ description: 'which users: *, names, or path prefixes such as /contractors/' }),
      roles: principalSelectors({ description: 'which roles: *, names, or path prefixes such as /apps/' }),
      batch: integer({ default: '25', min: 1, max: 500, description: 'principals per wave' }),
      soak: duration({ default: '1d', max: '90d', description: 'the wait after each wave, so a boundary that breaks a workload is seen and rolled back early' }),
    },
  }),
} as const;

export type KindName = keyof typeof KINDS;
export type KindParams<K extends KindName> = ParamsOf<(typeof KINDS)[K]['params']>;

export function isKindName(name: string): name is KindName {
  return Object.prototype.hasOwnProperty.call(KINDS, name);
}

export function kindNames(): KindName[] {
  return Object.keys(KINDS) as KindName[];
}

export function kindSpec(kind: KindName): KindSpec {
  return KINDS[kind] as KindSpec;
}

/** Validate a catalogue kind's parameters and fill in defaults (throws ParamError with a one-line reason). */
export function resolveKindParams<K extends KindName>(kind: K, given: Record<string, string>): KindParams<K> {
  return resolveParams(kind, KINDS[kind].params, given) as KindParams<K>;
}

export { ParamError };
