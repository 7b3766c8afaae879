/**
 * Typed remediation parameters. A kind declares each parameter once — its schema (zod), its default,
 * a label and a description for `--help` — and its TypeScript type is derived from that declaration.
 * Parameters arrive as strings (`--param key=value`, a params file, the stock temporal CLI); each
 * schema turns that string into the typed value or a one-line reason it cannot.
 */
import { z } from 'zod';
import { formatDuration, tryParseDuration } from './duration';
import type { Json } from './json';

export interface Param<T> {
  /** Parses the parameter's text into its value. */
  schema: z.ZodType<T, string>;
  /** What `--help` shows after `key=`: DURATION, NAMES, IDS, ARN, FILE, … */
  label: string;
  description: string;
  /** The text used when the parameter is absent; a parameter with neither default nor `optional` is required. */
  default?: string;
  optional?: boolean;
  /** The operator gives a path; the CLI reads the file and passes its content (the worker may not see the file). */
  fromFile?: boolean;
}

export type ParamSpecs = Record<string, Param<unknown>>;

/** A parameter that may be absent (no default): its value is `T | undefined`. */
export interface OptionalParam<T> extends Param<T> {
  optional: true;
}

/** `{ maxIdle: string; exempt: string[]; homeRegion: string | undefined; … }` from a kind's parameter declarations. */
export type ParamsOf<P extends ParamSpecs> = {
  [K in keyof P]: P[K] extends OptionalParam<infer T> ? T | undefined : P[K] extends Param<infer T> ? T : never;
};

export class ParamError extends Error {
  override name = 'ParamError';
}

const input = z.string();

/** Bounds every duration parameter gets unless it says otherwise: absurd values are refused at the edge. */
const DEFAULT_MIN = '1s';
const DEFAULT_MAX = '3650d';

export function duration(o: { description: string; default?: string; min?: string; max?: string }): Param<string> {
  const min = tryParseDuration(o.min ?? DEFAULT_MIN) as number;
  const max = tryParseDuration(o.max ?? DEFAULT_MAX) as number;
  return {
    label: 'DURATION',
    description: o.description,
    default: o.default,
    schema: input.transform((value, ctx) => {
      const ms = tryParseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a duration such as 90d, 12h or 2s (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${formatDuration(min)} and ${formatDuration(max)} (got ${value})` });
        return z.NEVER;
      }
      return value.trim();
    }),
  };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A comma-separated list of IAM names (users, roles, trails): order kept, duplicates dropped. */
export function names(o: { description: string; default?: string }): Param<string[]> {
  return {
    label: 'NAMES',
    description: o.description,
    default: o.default ?? '',
    schema: input.transform((value, ctx) => {
      const items = [...new Set(list(value))];
      const bad = items.find((n) => !/^[\w+=,.@-]{1,128}$/.test(n));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not a valid name (letters, digits and +=,.@_- only)` });
        return z.NEVER;
      }
      return items;
    }),
  };
}

const ID_PATTERNS = {
  account: /^\d{12}$/,
  ou: /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/,
  root: /^r-[0-9a-z]{4,32}$/,
} as const;

export type OrgIdKind = keyof typeof ID_PATTERNS;

/**
 * An ordered list of organization target ids (account ids, OU ids, the root id): the order is the
 * operator's (waves roll out in it), so duplicates are refused rather than silently dropped.
 */
export function orgIds(o: { description: string; accepts: OrgIdKind[]; default?: string; allowAll?: boolean }): Param<string[]> {
  const accepted = o.accepts.map((k) => ({ account: 'a 12-digit account id', ou: 'an OU id (ou-…)', root: 'the root id (r-…)' })[k]);
  return {
    label: 'IDS',
    description: o.description,
    default: o.default,
    schema: input.transform((value, ctx) => {
      const items = list(value);
      if (o.allowAll && items.length === 1 && items[0] === 'all') return ['all'];
      if (items.length === 0) {
        ctx.addIssue({ code: 'custom', message: `needs at least one target: ${accepted.join(' or ')}` });
        return z.NEVER;
      }
      const bad = items.find((id) => !o.accepts.some((k) => ID_PATTERNS[k].test(id)));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not a valid target: expected ${accepted.join(' or ')}${o.allowAll ? ', or "all"' : ''}` });
        return z.NEVER;
      }
      const dup = items.find((id, i) => items.indexOf(id) !== i);
      if (dup !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${dup} is listed twice; each target appears once, in rollout order` });
        return z.NEVER;
      }
      return items;
    }),
  };
}

/** The AWS partitions an ARN can name: a made-up one (`arn:aws-mars:…`) is a typo, refused at the edge. */
const PARTITION = 'aws(?:-cn|-us-gov|-iso(?:-[bef])?|-eusc)?';

/**
 * An AWS ARN, optionally of one service (`iam`, `kms`, …) and one resource type: `resource` is the
 * start of the resource part, e.g. `role/` or `log-group:`.
 */
type ArnOptions = { description: string; service?: string; resource?: string };
export function arn(o: ArnOptions & { optional: true }): OptionalParam<string>;
export function arn(o: ArnOptions & { default?: string; optional?: false }): Param<string>;
export function arn(o: ArnOptions & { default?: string; optional?: boolean }): Param<string> {
  const shape = new RegExp(`^arn:${PARTITION}:([a-z0-9-]+):[a-z0-9-]*:(\\d{12}|aws)?:(.+)$`);
  const what = `${o.service ? `${/^[aeiou]/.test(o.service) ? 'an' : 'a'} ${o.service} ARN` : 'an ARN'}${o.resource ? ` of a ${o.resource.replace(/[/:]$/, '')}` : ''}`;
  const example = `arn:aws:${o.service ?? 'iam'}:${o.service === 'iam' || o.service === undefined ? '' : 'us-east-1'}:123456789012:${o.resource ?? ''}…`;
  return {
    label: 'ARN',
    description: o.description,
    default: o.default,
    optional: o.optional,
    schema: input.transform((value, ctx) => {
      const match = shape.exec(value.trim());
      if (!match || (o.service && match[1] !== o.service) || (o.resource && !(match[3] as string).startsWith(o.resource))) {
        ctx.addIssue({ code: 'custom', message: `must be ${what} such as ${example} (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return value.trim();
    }),
  };
}

/** A JSON document read from a file by the CLI (e.g. a policy), at most `maxChars` characters minified. */
type JsonDocumentOptions = { description: string; maxChars?: number; /** Further checks: a one-line reason, or undefined when the document is fine. */ check?: (doc: Json) => string | undefined };
export function jsonDocument(o: JsonDocumentOptions & { optional: true }): OptionalParam<Json>;
export function jsonDocument(o: JsonDocumentOptions & { optional?: false }): Param<Json>;
export function jsonDocument(o: JsonDocumentOptions & { optional?: boolean }): Param<Json> {
  return {
    label: 'FILE',
    description: o.description,
    optional: o.optional,
    fromFile: true,
    schema: input.transform((value, ctx) => {
      let doc: unknown;
      try {
        doc = JSON.parse(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `is not valid JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
        ctx.addIssue({ code: 'custom', message: 'must hold a JSON object' });
        return z.NEVER;
      }
      const size = JSON.stringify(doc).length;
      if (o.maxChars !== undefined && size > o.maxChars) {
        ctx.addIssue({ code: 'custom', message: `is ${size} characters minified, over the limit of ${o.maxChars}` });
        return z.NEVER;
      }
      const problem = o.check?.(doc as Json);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return doc as Json;
    }),
  };
}

/** A single word or name checked against a pattern (bucket names, trail names, regions, key ids). */
type TextOptions = { description: string; label: string; pattern: RegExp; expected: string };
export function text(o: TextOptions & { optional: true }): OptionalParam<string>;
export function text(o: TextOptions & { default?: string; optional?: false }): Param<string>;
export function text(o: TextOptions & { default?: string; optional?: boolean }): Param<string> {
  return {
    label: o.label,
    description: o.description,
    default: o.default,
    optional: o.optional,
    schema: z.string().transform((value, ctx) => {
      const v = value.trim();
      if (!o.pattern.test(v)) {
        ctx.addIssue({ code: 'custom', message: `must be ${o.expected} (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return v;
    }),
  };
}

/** true or false. */
export function flag(o: { description: string; default?: 'true' | 'false' }): Param<boolean> {
  return {
    label: 'true|false',
    description: o.description,
    default: o.default ?? 'false',
    schema: input.transform((value, ctx) => {
      const v = value.trim().toLowerCase();
      if (v !== 'true' && v !== 'false') {
        ctx.addIssue({ code: 'custom', message: `must be true or false (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return v === 'true';
    }),
  };
}

/** A whole number within bounds. */
export function integer(o: { description: string; default?: string; min: number; max: number }): Param<number> {
  return {
    label: 'N',
    description: o.description,
    default: o.default,
    schema: input.transform((value, ctx) => {
      const v = value.trim();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < o.min || n > o.max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${o.min} to ${o.max} (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return n;
    }),
  };
}

/**
 * A comma-separated list of IAM principal ARN patterns (`*` matches anything), e.g.
 * `arn:aws:iam::*:role/break-glass*`: what guardrails exempt and policies protect.
 */
export function arnPatterns(o: { description: string; default?: string }): Param<string[]> {
  const shape = new RegExp(`^arn:(${PARTITION}|\\*):(iam|sts)::(\\d{12}|\\*):(role|user|assumed-role|root|\\*)[\\w+=,.@/*-]*$`);
  return {
    label: 'ARNS',
    description: o.description,
    default: o.default ?? '',
    schema: input.transform((value, ctx) => {
      const items = [...new Set(list(value))];
      const bad = items.find((a) => !shape.test(a));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not an IAM principal ARN pattern such as arn:aws:iam::*:role/break-glass*` });
        return z.NEVER;
      }
      return items;
    }),
  };
}

/**
 * Which IAM users or roles: `*` (all), names, and path prefixes ending in `/` (`/teams/data/`),
 * comma-separated. Empty selects none.
 */
export function principalSelectors(o: { description: string; default?: string }): Param<string[]> {
  return {
    label: 'SELECTORS',
    description: o.description,
    default: o.default ?? '',
    schema: input.transform((value, ctx) => {
      const items = [...new Set(list(value))];
      const bad = items.find((s) => s !== '*' && !/^[\w+=,.@-]{1,128}$/.test(s) && !/^\/([\w+=,.@-]+\/)*$/.test(s));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not "*", a name, or a path prefix such as /teams/data/` });
        return z.NEVER;
      }
      return items;
    }),
  };
}

/** One of a fixed set of words. */
export function choice<const T extends string>(o: { description: string; options: readonly T[]; optional: true }): OptionalParam<T>;
export function choice<const T extends string>(o: { description: string; options: readonly T[]; default?: T; optional?: false }): Param<T>;
export function choice<const T extends string>(o: { description: string; options: readonly T[]; default?: T; optional?: boolean }): Param<T> {
  return {
    label: o.options.join('|'),
    description: o.description,
    default: o.default,
    optional: o.optional,
    schema: input.transform((value, ctx) => {
      const v = value.trim() as T;
      if (!o.options.includes(v)) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${o.options.join(', ')} (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return v;
    }),
  };
}

/** The first C0 or C1 control character, or Unicode line or paragraph separator, in `text`. */
function controlCharacter(text: string): { index: number; code: number } | undefined {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029) return { index, code };
  }
  return undefined;
}

/**
 * Validate parameters against a kind's declarations and fill in defaults. Throws ParamError with a
 * one-line reason naming the parameter (unknown, missing, or the schema's complaint).
 */
export function resolveParams<P extends ParamSpecs>(kind: string, specs: P, given: Record<string, string>): ParamsOf<P> {
  for (const key of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(specs, key)) {
      const known = Object.keys(specs).join(', ') || '(none)';
      throw new ParamError(`unknown parameter ${JSON.stringify(key)} for ${kind}; its parameters are: ${known}`);
    }
  }
  const resolved: Record<string, unknown> = {};
  for (const [key, param] of Object.entries(specs)) {
    const raw = Object.prototype.hasOwnProperty.call(given, key) ? given[key] : param.default;
    if (raw === undefined) {
      if (param.optional) continue;
      throw new ParamError(`${kind} needs the parameter ${key} (${param.description}); pass --param ${key}=${param.label}`);
    }
    if (typeof raw !== 'string') throw new ParamError(`${key} must be given as text (got ${typeof raw})`);
    // One line of text: a newline or other control character is a paste or quoting slip, never part of
    // a name, id or duration (only a document read from a file spans lines).
    const control = param.fromFile ? undefined : controlCharacter(raw);
    if (control) {
      const code = `U+${control.code.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new ParamError(`${key} contains a control character (${code}) at position ${control.index + 1} of ${JSON.stringify(raw)}; give it as one line of printable text`);
    }
    const parsed = param.schema.safeParse(raw);
    if (!parsed.success) throw new ParamError(`${key} ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
    resolved[key] = parsed.data;
  }
  return resolved as ParamsOf<P>;
}
