/**
 * The plan an approver signs (docs/design.md §1.2) and the results of carrying it out.
 * Plans are produced by activities, so they sit in history and replay never re-runs planner code.
 */
import type { Json } from './json';

export interface Change {
  /** Unique within the plan, stable across replays: `<action>/<resource name>`. */
  id: string;
  /** The stage it runs in; stages run in plan order. */
  stage: string;
  /** Which of the kind's apply activities carries it out. */
  action: string;
  /** The ARN of the resource changed. */
  resource: string;
  /** One line for the approver. */
  summary: string;
  /** The approved state. Before anything destructive the activity re-reads and refuses on drift. */
  before: Json;
  /** The state the change promises; verify checks it. */
  after: Json;
  reversible: boolean;
  /** True when it destroys something: a full snapshot goes into history first. */
  destructive: boolean;
  /** Changes that must have been applied first; otherwise this one is skipped. */
  dependsOn?: string[];
}

export interface Stage {
  name: string;
  description: string;
  /** A durable wait before the stage starts (Temporal duration string). */
  soakBefore?: string;
  /** How many of its changes may run at once. */
  concurrency?: number;
  /** Changes per batch when the stage runs in batches (docs/engine.md, "Batches"). */
  batchSize?: number;
}

/** A resource the plan leaves alone, with the reason; findings for humans are flagged `review`. */
export interface LeftAlone {
  resource: string;
  reason: string;
  detail?: string;
  review?: boolean;
}

/** What a kind's plan activity returns; the engine adds the kind, target, parameters and digest. */
export interface KindPlan {
  createdAt: string;
  stages: Stage[];
  changes: Change[];
  leftAlone: LeftAlone[];
  /** Resources left alone but not listed because the list would grow without bound. */
  leftAloneNotListed?: number;
  notes: string[];
  /** A kind that pages (PlanRequest.page) sets this when another page follows: where it starts. */
  nextCursor?: string;
}

export interface PlanBody {
  kind: string;
  account: string;
  region: string;
  /** The parameters as interpreted (typed, defaults filled in). */
  params: Record<string, Json>;
  createdAt: string;
  stages: Stage[];
  changes: Change[];
  leftAlone: LeftAlone[];
  /** Resources left alone but not listed because the list would grow without bound. */
  leftAloneNotListed: number;
  notes: string[];
}

export interface Plan extends PlanBody {
  /**
   * SHA-256 of the canonical JSON of the body: what an approval names. A plan in several pages
   * (docs/engine.md, "Plan pages") names the chained digest of its pages: the first page's digest,
   * then SHA-256 of `<digest so far>:<next page's digest>` for each further page.
   */
  digest: string;
  /** Present when the plan came in more than one page: each page's own digest, in order. */
  pageDigests?: string[];
  /**
   * Set only on the bounded view a status query answers: changes beyond those listed (the `details`
   * query pages through all of them). Never part of a digest.
   */
  changesNotListed?: number;
}

/** One page of a plan as its activity returns it; `digest` is the chained digest up to this page. */
export interface PlanPage extends Plan {
  page: number;
  /** SHA-256 of this page's body alone. */
  pageDigest: string;
  /** Present when another page follows: where it starts. */
  nextCursor?: string;
}

export type ChangeStatus =
  | 'applied'
  | 'already-done'
  | 'left-alone'
  | 'skipped'
  | 'failed'
  | 'rolled-back'
  | 'rollback-failed';

export interface ChangeResult {
  changeId: string;
  status: ChangeStatus;
  at: string;
  detail?: string;
  /** True when a full snapshot was taken into history before this destructive change. */
  snapshotTaken?: boolean;
  /** What the activity observed or did (ids deactivated, dependents removed, …). */
  observed?: Json;
}

/** What an apply or rollback activity reports. */
export interface ChangeOutcome {
  status: 'applied' | 'already-done' | 'left-alone';
  detail?: string;
  observed?: Json;
}

export interface VerifyCheck {
  changeId: string;
  ok: boolean;
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  checks: VerifyCheck[];
  /** On a bounded view: checks not listed (failing checks are listed first). */
  checksNotListed?: number;
}

/** Left-alone entries the assembled plan keeps listed; the rest are counted. */
const LEFT_ALONE_KEPT = 2_000;

/** One plan out of its pages: every change, the pages' digests, the chained digest of the last page (docs/engine.md, "Plan pages"). */
export function assemblePlan(pages: PlanPage[]): Plan {
  const strip = (p: PlanPage): Plan => {
    const { page: _page, pageDigest: _pageDigest, nextCursor: _next, ...plan } = p;
    return plan;
  };
  const first = pages[0] as PlanPage;
  if (pages.length === 1) return strip(first);
  const leftAlone = pages.flatMap((p) => p.leftAlone);
  const notes = [...new Set(pages.flatMap((p) => p.notes))];
  return {
    ...strip(first),
    changes: pages.flatMap((p) => p.changes),
    leftAlone: leftAlone.slice(0, LEFT_ALONE_KEPT),
    leftAloneNotListed: pages.reduce((n, p) => n + p.leftAloneNotListed, 0) + Math.max(0, leftAlone.length - LEFT_ALONE_KEPT),
    notes,
    digest: (pages.at(-1) as PlanPage).digest,
    pageDigests: pages.map((p) => p.pageDigest),
  };
}

