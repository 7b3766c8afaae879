/** The plan digest: SHA-256 of canonical JSON (keys sorted, no whitespace). Used by activities and the CLI. */
import { createHash } from 'node:crypto';
import type { Plan, PlanBody } from './plan';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (value === undefined) return 'null';
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN/Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function planDigest(body: PlanBody): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

export function sealPlan(body: PlanBody): Plan {
  return { ...body, digest: planDigest(body) };
}

/** True when the plan's digest matches its body (the evidence check an auditor can re-run). */
export function planDigestMatches(plan: Plan): boolean {
  const { digest, ...body } = plan;
  return planDigest(body) === digest;
}
