/** The plan digest: SHA-256 of canonical JSON (keys sorted, no whitespace). Used by activities and the CLI. */
import { createHash } from 'node:crypto';
import type { Plan, PlanBody, PlanPage } from './plan';

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

/** The digest of a plan in pages, after one more page (docs/engine.md, "Plan pages"). */
export function chainDigest(previous: string, pageDigest: string): string {
  return createHash('sha256').update(`${previous}:${pageDigest}`).digest('hex');
}

/**
 * Seal one page of a plan: its own digest, and the chained digest so far. The first page's chained
 * digest is its own, so a plan of one page has exactly the digest a plan without pages has.
 */
export function sealPage(body: PlanBody, page: number, previousDigest: string | undefined, nextCursor: string | undefined): PlanPage {
  const pageDigest = planDigest(body);
  return {
    ...body,
    digest: previousDigest === undefined ? pageDigest : chainDigest(previousDigest, pageDigest),
    page,
    pageDigest,
    ...(nextCursor !== undefined ? { nextCursor } : {}),
  };
}

/** True when every page's body matches its digest and the pages chain to `digest` (evidence). */
export function pagesMatch(pages: PlanPage[], digest: string): boolean {
  let chained: string | undefined;
  for (const page of pages) {
    const { digest: _chained, page: _n, pageDigest, nextCursor: _next, pageDigests: _all, changesNotListed: _view, ...body } = page;
    if (planDigest(body) !== pageDigest) return false;
    chained = chained === undefined ? pageDigest : chainDigest(chained, pageDigest);
    if (chained !== page.digest) return false;
  }
  return chained === digest;
}

/** True when the plan's digest matches its body (the evidence check an auditor can re-run). */
export function planDigestMatches(plan: Plan): boolean {
  // A page's own fields and a status view's counts are not part of the body the digest covers.
  const { digest, pageDigests: _pages, changesNotListed: _view, ...rest } = plan;
  const { page: _page, pageDigest: _pageDigest, nextCursor: _next, ...body } = rest as Plan & Partial<PlanPage>;
  return planDigest(body) === digest;
}
