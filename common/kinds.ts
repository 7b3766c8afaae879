/**
 * The catalogue of remediations: each kind names its workflow type and its parameters, so the CLI
 * can validate input at the edge and teach in --help. Adding a kind adds an entry here plus
 * `workflows/<kind>.ts` and `activities/<kind>.ts`.
 */
import { tryParseDuration } from './duration';

export type KindName = 'stale-iam-users';

export type ParamType = 'duration' | 'names';

export interface ParamSpec {
  type: ParamType;
  description: string;
  default: string;
}

export interface KindSpec {
  name: KindName;
  workflowType: string;
  summary: string;
  /** SOC 2 criteria the change is evidence for. */
  controls: string[];
  params: Record<string, ParamSpec>;
}

export const KINDS: Record<KindName, KindSpec> = {
  'stale-iam-users': {
    name: 'stale-iam-users',
    workflowType: 'removeStaleIamUsers',
    summary:
      'Disable, soak, then remove IAM users whose every active credential has been idle past maxIdle (credential report).',
    controls: ['CC6.2', 'CC6.3', 'CC8.1'],
    params: {
      maxIdle: { type: 'duration', default: '90d', description: 'a credential unused (or, never used, issued) this long ago is idle' },
      soak: { type: 'duration', default: '14d', description: 'how long users stay disabled before they are deleted' },
      exempt: { type: 'names', default: '', description: 'comma-separated user names never touched (users tagged countersign:exempt are exempt too)' },
    },
  },
};

export function isKindName(name: string): name is KindName {
  return Object.prototype.hasOwnProperty.call(KINDS, name);
}

export class ParamError extends Error {
  override name = 'ParamError';
}

/**
 * Validate a kind's parameters and fill in defaults. Throws ParamError with a one-line reason
 * (unknown parameter, bad duration, …).
 */
export function resolveParams(kind: KindName, given: Record<string, string>): Record<string, string> {
  const spec = KINDS[kind];
  const resolved: Record<string, string> = {};
  for (const key of Object.keys(given)) {
    if (!(key in spec.params)) {
      const known = Object.keys(spec.params).join(', ');
      throw new ParamError(`unknown parameter "${key}" for ${kind}; its parameters are: ${known}`);
    }
  }
  for (const [key, param] of Object.entries(spec.params)) {
    const value = (given[key] ?? param.default).trim();
    if (param.type === 'duration') {
      const ms = tryParseDuration(value);
      if (ms === undefined || ms <= 0) {
        throw new ParamError(`${key} must be a positive duration such as 90d, 12h or 2s (got ${JSON.stringify(value)})`);
      }
    } else if (param.type === 'names') {
      const bad = splitNames(value).find((n) => !/^[\w+=.@-]{1,64}$/.test(n));
      if (bad !== undefined) throw new ParamError(`${key}: ${JSON.stringify(bad)} is not a valid IAM name`);
    }
    resolved[key] = value;
  }
  return resolved;
}

export function splitNames(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
