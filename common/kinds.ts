/**
 * The catalogue of remediations. Each kind names its workflow type and declares its parameters
 * (common/params.ts), so the CLI validates input at the edge, `--help` teaches from the same
 * declarations, and the plan activity receives typed values. Adding a kind adds one entry here plus
 * `workflows/<kind>.ts` and `activities/<kind>.ts`; the kind name type is derived from this object.
 */
import type { ParamSpecs, ParamsOf } from './params';
import { ParamError, arn, duration, names, orgIds, resolveParams, text } from './params';

export interface KindSpec<P extends ParamSpecs = ParamSpecs> {
  workflowType: string;
  summary: string;
  /** SOC 2 criteria the change is evidence for. */
  controls: string[];
  /** Where it runs: any account of the organization, or only the management account. */
  scope: 'account' | 'management';
  params: P;
}

/** Keeps each entry's parameter types precise while checking it is a KindSpec. */
function defineKind<P extends ParamSpecs>(spec: KindSpec<P>): KindSpec<P> {
  return spec;
}

export const KINDS = {
  'stale-iam-users': defineKind({
    workflowType: 'removeStaleIamUsers',
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
        pattern: /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)[a-z0-9](?:[a-z0-9-]|\.(?!\.))*[a-z0-9]$/,
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
        pattern: /^(alias\/[\w/-]{1,250}|[0-9a-f-]{36}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[\w/-]+)$/,
        expected: 'a KMS key: alias/NAME, a key id, or a key or alias ARN',
      }),
      cloudWatchLogsGroupArn: arn({ service: 'logs', optional: true, description: 'also deliver to this CloudWatch Logs log group (in the management account)' }),
      cloudWatchLogsRoleArn: arn({ service: 'iam', optional: true, description: 'the role CloudTrail assumes to write to that log group' }),
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
