/**
 * The catalogue of remediations. Each kind names its workflow type and declares its parameters
 * (common/params.ts), so the CLI validates input at the edge, `--help` teaches from the same
 * declarations, and the plan activity receives typed values. Adding a kind adds one entry here plus
 * `workflows/<kind>.ts` and `activities/<kind>.ts`; the kind name type is derived from this object.
 */
import type { ParamSpecs, ParamsOf } from './params';
import { ParamError, duration, names, resolveParams } from './params';

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
