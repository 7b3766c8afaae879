/**
 * permission-boundary's decisions as pure functions (docs/kinds/permission-boundary.md): which users
 * and roles the selectors pick, which of them are left alone and why, how the changes split into
 * waves, and — at apply and rollback time — what to do given the approved state and the live one.
 * No AWS calls here, so every rule is unit-tested directly (docs/aws.md §10 #2).
 */
import type { Json } from '../../common/json';
import type { Change, Stage } from '../../common/plan';
import { protectingPattern } from '../../common/policy';

export type PrincipalType = 'user' | 'role';

/** A user or role as ListUsers/ListRoles give it (no boundary: only GetUser/GetRole show one, docs/aws.md §4). */
export interface ListedPrincipal {
  type: PrincipalType;
  name: string;
  path: string;
  arn: string;
  /** UserId or RoleId: a principal deleted and recreated under the same name gets a new one. */
  id: string;
}

/** The approved state of a principal: what a set-boundary change's `before` holds. */
export interface PrincipalBoundaryState extends ListedPrincipal {
  /** The boundary in place at plan time, or null. */
  boundaryArn: string | null;
  /** That boundary policy's default version at plan time (null: no boundary, or the policy is gone). */
  boundaryVersionId: string | null;
}

/** What a set-boundary change promises. */
export interface BoundaryTarget {
  type: PrincipalType;
  name: string;
  arn: string;
  boundaryArn: string;
}

export type SkipReason = 'service-linked' | 'identity-center' | 'control-tower' | 'own-principal' | 'protected' | 'already-compliant';

export interface Skip {
  reason: SkipReason;
  detail: string;
}

/**
 * The first selector that picks this principal: `*`, its name (IAM names compare ignoring case), or a
 * path prefix ending in `/` (`/teams/` picks `/teams/data/`). Undefined when none does.
 */
export function matchingSelector(selectors: readonly string[], principal: { name: string; path: string }): string | undefined {
  return selectors.find((s) => {
    if (s === '*') return true;
    if (s.startsWith('/')) return principal.path.startsWith(s);
    return s.toLowerCase() === principal.name.toLowerCase();
  });
}

const CONTROL_TOWER = [/^AWSControlTower/i, /^aws-controltower-/i];

/**
 * Why a selected principal is left alone before its boundary is even read, or undefined when it is a
 * candidate. In this order, so the most specific reason is the one shown:
 * - roles only AWS may change: service-linked roles (path `/aws-service-role/`) and IAM Identity
 *   Center roles (`/aws-reserved/`) — AWS answers UnmodifiableEntityException for both (docs/aws.md §4);
 * - Control Tower's roles, which its own guardrails keep unchanged in member accounts;
 * - the principals this run stands on (the worker, the role it assumed): bounding them could cut the
 *   run off half-way;
 * - principals the approval policy protects (its patterns and the built-ins).
 */
export function skipBeforeRead(principal: ListedPrincipal, context: { selfPrincipals: readonly string[]; protectedPrincipals: readonly string[] }): Skip | undefined {
  if (principal.type === 'role') {
    if (principal.path.startsWith('/aws-service-role/')) {
      return { reason: 'service-linked', detail: 'a service-linked role: only its AWS service may change it (UnmodifiableEntityException)' };
    }
    if (principal.path.startsWith('/aws-reserved/')) {
      return { reason: 'identity-center', detail: 'an IAM Identity Center (SSO) role: only AWS may change it (UnmodifiableEntityException)' };
    }
    if (CONTROL_TOWER.some((re) => re.test(principal.name))) {
      return { reason: 'control-tower', detail: "a Control Tower role: its guardrails deny changes, and changing it drifts the landing zone" };
    }
  }
  const self = protectingPattern(context.selfPrincipals, principal.arn);
  if (self) return { reason: 'own-principal', detail: `the run acts through ${self}; it is never given a boundary by its own run` };
  const pattern = protectingPattern(context.protectedPrincipals, principal.arn);
  if (pattern) return { reason: 'protected', detail: `matches ${pattern}` };
  return undefined;
}

/** Boundary ARNs compare as ARNs: exactly, save the partition-less case IAM never returns. */
export function sameBoundary(a: string | null | undefined, b: string | null | undefined): boolean {
  return (a ?? null) === (b ?? null);
}

/** Users first, then roles; by name ignoring case, then exactly: the order waves are cut in. */
export function stableOrder<T extends { type: PrincipalType; name: string }>(principals: readonly T[]): T[] {
  const rank = (t: PrincipalType) => (t === 'user' ? 0 : 1);
  return [...principals].sort(
    (a, b) => rank(a.type) - rank(b.type) || a.name.toLowerCase().localeCompare(b.name.toLowerCase()) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

export const WAVE_CONCURRENCY = 4;

export function changeIdFor(principal: { type: PrincipalType; name: string }): string {
  return `set-boundary/${principal.type}/${principal.name}`;
}

export function describeBoundary(arn: string | null): string {
  return arn ?? 'none';
}

/** The change that sets `boundaryArn` on one principal, in its wave. */
export function setBoundaryChange(state: PrincipalBoundaryState, boundaryArn: string, stage: string, dependsOn: string[]): Change {
  const after: BoundaryTarget = { type: state.type, name: state.name, arn: state.arn, boundaryArn };
  const was = state.boundaryArn ? `replacing ${state.boundaryArn}${state.boundaryVersionId ? ` (${state.boundaryVersionId})` : ''}` : 'none before';
  return {
    id: changeIdFor(state),
    stage,
    action: 'set-boundary',
    resource: state.arn,
    summary: `set the boundary of ${state.type} ${state.name} to ${boundaryArn} (${was})`,
    before: state as unknown as Json,
    after: after as unknown as Json,
    reversible: true,
    destructive: false,
    ...(dependsOn.length > 0 ? { dependsOn } : {}),
  };
}

/**
 * Cut the changes (already in stable order) into waves of `batch`. Every wave after the first waits
 * `soak` first, so a boundary that breaks a workload shows in the first wave and a reject then rolls
 * back only that wave. Waves run a few changes at once: IAM throttles mutations per account.
 */
export function wavesOf<T>(items: readonly T[], batch: number, soak: string): { stage: Stage; items: T[] }[] {
  const size = Math.max(1, Math.floor(batch));
  const waves: { stage: Stage; items: T[] }[] = [];
  for (let i = 0; i < items.length; i += size) {
    const chunk = items.slice(i, i + size);
    const n = waves.length + 1;
    waves.push({
      stage: {
        name: `wave-${n}`,
        description: `re-check and set the boundary on ${chunk.length} principal(s)${n > 1 ? ', after the previous wave soaked' : ''}`,
        ...(n > 1 ? { soakBefore: soak } : {}),
        concurrency: Math.min(WAVE_CONCURRENCY, chunk.length),
      },
      items: chunk,
    });
  }
  return waves;
}

/** The live principal as GetUser/GetRole answers it. */
export interface LivePrincipal {
  type: PrincipalType;
  name: string;
  path: string;
  arn: string;
  id: string;
  boundaryArn: string | null;
}

export type ApplyVerdict = { action: 'put' } | { action: 'already-done'; detail: string } | { action: 'left-alone'; detail: string };

/**
 * Before a put: the live principal against the approved state. Fail closed: anything but "exactly as
 * approved" or "already as promised" leaves it alone with the reason.
 */
export function applyVerdict(before: PrincipalBoundaryState, live: LivePrincipal | null, target: string): ApplyVerdict {
  if (!live) return { action: 'left-alone', detail: `left alone: ${before.type} ${before.name} no longer exists` };
  if (live.id !== before.id) {
    return { action: 'left-alone', detail: `left alone: ${before.type} ${before.name} was deleted and recreated since the plan (id ${before.id}, now ${live.id})` };
  }
  if (sameBoundary(live.boundaryArn, target)) return { action: 'already-done', detail: `the boundary was already ${target}` };
  if (!sameBoundary(live.boundaryArn, before.boundaryArn)) {
    return {
      action: 'left-alone',
      detail: `left alone: its boundary changed since the plan (approved ${describeBoundary(before.boundaryArn)}, now ${describeBoundary(live.boundaryArn)}); run again to plan from the current state`,
    };
  }
  return { action: 'put' };
}

export type RollbackVerdict =
  | { action: 'restore'; boundaryArn: string }
  | { action: 'delete' }
  | { action: 'already-done'; detail: string }
  | { action: 'left-alone'; detail: string };

/**
 * Undoing a set-boundary: put the previous boundary back, or delete the one this run added when there
 * was none. Only when the live boundary is still the one this run set: a boundary someone changed
 * since is theirs, and is kept.
 */
export function rollbackVerdict(before: PrincipalBoundaryState, live: LivePrincipal | null, target: string): RollbackVerdict {
  if (!live) return { action: 'already-done', detail: `${before.type} ${before.name} no longer exists; nothing to restore` };
  if (live.id !== before.id) return { action: 'left-alone', detail: `${before.type} ${before.name} was deleted and recreated since the plan; the new one is not this run's to change` };
  if (sameBoundary(live.boundaryArn, before.boundaryArn)) return { action: 'already-done', detail: `the boundary is already ${describeBoundary(before.boundaryArn)}, as before the run` };
  if (!sameBoundary(live.boundaryArn, target)) {
    return { action: 'left-alone', detail: `its boundary changed again after this run set it (now ${describeBoundary(live.boundaryArn)}); kept as it is` };
  }
  return before.boundaryArn ? { action: 'restore', boundaryArn: before.boundaryArn } : { action: 'delete' };
}

/** The partition of an ARN (`aws`, `aws-us-gov`, `aws-cn`), `aws` when it cannot be read. */
export function partitionOf(arn: string | undefined): string {
  return /^arn:(aws[a-z-]*):/.exec(arn ?? '')?.[1] ?? 'aws';
}

/** The account of a managed policy ARN: 12 digits, or `aws` for an AWS managed policy. */
export function policyAccountOf(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\//.exec(arn)?.[1];
}
