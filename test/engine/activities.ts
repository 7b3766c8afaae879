/**
 * A synthetic, in-memory remediation kind for testing the engine on its own: no AWS, no moto.
 *
 * The plan is whatever the `scenario` parameter describes; every activity call is recorded, in order,
 * in a SyntheticStore living in the test process, and "resources" are in-memory records that apply
 * and rollback change. The activity names are deliberately unlike stale-iam-users', so a test passing
 * shows the engine (and the evidence built from its history) relies on role marks, not names.
 */
import { ApplicationFailure } from '@temporalio/common';
import { PartialChangeError } from '../../activities/aws/errors';
import type { Json } from '../../common/json';
import type { ParamsOf } from '../../common/params';
import { duration, jsonDocument } from '../../common/params';
import type { Change, ChangeOutcome, KindPlan, LeftAlone, Stage, VerifyResult } from '../../common/plan';
import type { ApplyBatchResult, BatchRequest, ChangeRequest, PlanRequest, RollbackRequest, SnapshotBatchResult, TargetInfo, TargetRequest, VerifyRequest } from '../../common/requests';
import { batchResults, runBatch, snapshotResults } from '../../activities/batch';

export const SYNTHETIC_KIND = 'synthetic';
export const SYNTHETIC_ACCOUNT = '111111111111';
export const SYNTHETIC_WORKER_ARN = `arn:aws:iam::${SYNTHETIC_ACCOUNT}:role/countersign-worker`;

/** The synthetic kind's parameter declarations, as a catalogue kind declares its own (common/params.ts). */
export const SYNTHETIC_PARAMS = {
  scenario: jsonDocument({
    description:
      'the plan to produce: {stages: [{name, soakBefore?, soak?, concurrency?}], changes: [{id, stage, action, resource, reversible?, destructive?, dependsOn?, delayMs?, outcome?}], fail?: [change ids], leftAlone?: [...]}',
  }),
  soak: duration({ default: '1s', max: '1h', description: 'the soak before every stage the scenario marks `soak: true`' }),
};

export type SyntheticParams = ParamsOf<typeof SYNTHETIC_PARAMS>;

/** What a test asks the synthetic plan activity to produce, and how its changes behave when applied. */
export interface SyntheticScenario {
  stages: { name: string; description?: string; soakBefore?: string; /** soak for the `soak` parameter */ soak?: boolean; concurrency?: number }[];
  changes: {
    id: string;
    stage: string;
    action: string;
    resource: string;
    reversible?: boolean;
    destructive?: boolean;
    dependsOn?: string[];
    /** How long applying it takes. */
    delayMs?: number;
    /** What the apply activity reports (default 'applied'). */
    outcome?: 'applied' | 'already-done' | 'left-alone';
  }[];
  /** Ids of changes whose apply fails (non-retryably). */
  fail?: string[];
  /** Resources the kind itself leaves alone (with its reason). */
  leftAlone?: LeftAlone[];
  /**
   * A large plan, generated rather than listed (a scenario document is capped at 100,000 characters):
   * `count` resources, each tagged in stage `first` and removed in stage `second` (after the `soak`
   * parameter), the removal depending on the tag. Planned in pages (PlanRequest.page).
   */
  bulk?: { count: number; fail?: string[] };
}

/** One call of a synthetic activity, as the store saw it. */
export interface StoreEvent {
  seq: number;
  /** Wall-clock milliseconds in the test process. */
  at: number;
  workflowId: string;
  op: 'plan' | 'snapshot' | 'apply-start' | 'apply-end' | 'apply-failed' | 'apply-left-alone' | 'rollback' | 'verify';
  changeId?: string;
  resource?: string;
  /** What the apply activity was handed as the snapshot taken before it (for destructive changes). */
  snapshot?: Json;
}

/** A resource of the in-memory "account": the actions applied to it (rollback pops), and whether it was deleted. */
export interface SyntheticResource {
  actions: string[];
  deleted: boolean;
}

interface RunBehaviour {
  fail: Set<string>;
  delayMs: Map<string, number>;
  outcome: Map<string, 'applied' | 'already-done' | 'left-alone'>;
}

export class SyntheticStore {
  readonly events: StoreEvent[] = [];
  private readonly resources = new Map<string, SyntheticResource>();
  private readonly behaviour = new Map<string, RunBehaviour>();
  private readonly listeners = new Set<() => void>();
  private seq = 0;

  record(event: Omit<StoreEvent, 'seq' | 'at'>): StoreEvent {
    const recorded = { seq: ++this.seq, at: Date.now(), ...event };
    this.events.push(recorded);
    for (const listener of [...this.listeners]) listener();
    return recorded;
  }

  /** Every call made for one run, in order. */
  eventsOf(workflowId: string): StoreEvent[] {
    return this.events.filter((e) => e.workflowId === workflowId);
  }

  /** The resources a run's activities touched (snapshot, apply or rollback), without repeats. */
  touched(workflowId: string): string[] {
    return [...new Set(this.eventsOf(workflowId).filter((e) => e.resource !== undefined && e.op !== 'plan' && e.op !== 'verify').map((e) => e.resource as string))];
  }

  /** A resource of a run, created untouched on first use. */
  resource(workflowId: string, arn: string): SyntheticResource {
    const key = `${workflowId}|${arn}`;
    let r = this.resources.get(key);
    if (!r) {
      r = { actions: [], deleted: false };
      this.resources.set(key, r);
    }
    return r;
  }

  setBehaviour(workflowId: string, scenario: SyntheticScenario): void {
    this.behaviour.set(workflowId, {
      fail: new Set(scenario.fail ?? []),
      delayMs: new Map(scenario.changes.filter((c) => c.delayMs !== undefined).map((c) => [c.id, c.delayMs as number])),
      outcome: new Map(scenario.changes.filter((c) => c.outcome !== undefined).map((c) => [c.id, c.outcome as 'applied' | 'already-done' | 'left-alone'])),
    });
  }

  behaviourOf(workflowId: string): RunBehaviour {
    return this.behaviour.get(workflowId) ?? { fail: new Set(), delayMs: new Map(), outcome: new Map() };
  }

  /** Resolves once an event satisfying `predicate` has been recorded (already, or later). */
  until(predicate: (e: StoreEvent) => boolean, timeoutMs = 60_000): Promise<StoreEvent> {
    const found = this.events.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no store event matched within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (): void => {
        const hit = this.events.find(predicate);
        if (!hit) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(hit);
      };
      this.listeners.add(listener);
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function asScenario(doc: Json): SyntheticScenario {
  const s = doc as unknown as SyntheticScenario;
  if (s && typeof s === 'object' && s.bulk) return { ...s, stages: [], changes: [] };
  if (!s || !Array.isArray(s.stages) || !Array.isArray(s.changes)) {
    throw ApplicationFailure.create({ type: 'InvalidScenario', nonRetryable: true, message: 'the scenario needs "stages" and "changes" arrays' });
  }
  return s;
}

/** The synthetic kind's activities over `store`. Register them with registerActivities (the engine's guards). */
export function createSyntheticActivities(store: SyntheticStore) {
  async function enact(request: ChangeRequest): Promise<ChangeOutcome> {
    const { change, workflowId } = request;
    const behaviour = store.behaviourOf(workflowId);
    store.record({ workflowId, op: 'apply-start', changeId: change.id, resource: change.resource, ...(request.snapshot !== undefined ? { snapshot: request.snapshot } : {}) });
    await sleep(behaviour.delayMs.get(change.id) ?? 0);
    if (behaviour.fail.has(change.id)) {
      store.record({ workflowId, op: 'apply-failed', changeId: change.id, resource: change.resource });
      // Like a real change failing half-way, it reports what it did before failing.
      throw new PartialChangeError(
        ApplicationFailure.create({ type: 'SyntheticFailure', nonRetryable: true, message: `synthetic failure: ${change.id} was told to fail` }),
        { halfDone: change.id },
      );
    }
    const outcome = behaviour.outcome.get(change.id) ?? 'applied';
    if (outcome === 'left-alone') {
      store.record({ workflowId, op: 'apply-left-alone', changeId: change.id, resource: change.resource });
      return { status: 'left-alone', detail: `synthetic: ${change.resource} drifted, left alone` };
    }
    const r = store.resource(workflowId, change.resource);
    if (outcome === 'applied') {
      if (change.destructive) r.deleted = true;
      else r.actions.push(change.action);
    }
    store.record({ workflowId, op: 'apply-end', changeId: change.id, resource: change.resource });
    return { status: outcome, observed: { actions: [...r.actions], deleted: r.deleted } };
  }

  async function undo(workflowId: string, change: Change): Promise<ChangeOutcome> {
    const r = store.resource(workflowId, change.resource);
    const last = r.actions.lastIndexOf(change.action);
    if (last < 0) {
      throw ApplicationFailure.create({ type: 'NothingToUndo', nonRetryable: true, message: `${change.action} was never applied to ${change.resource}` });
    }
    r.actions.splice(last, 1);
    store.record({ workflowId, op: 'rollback', changeId: change.id, resource: change.resource });
    return { status: 'applied', detail: `undid ${change.action}` };
  }

  const scenarioFail = (request: PlanRequest<SyntheticParams>): string[] | undefined => asScenario(request.params.scenario).bulk?.fail;

  /** A generated plan of `count` resources, in pages of at most the request's budget (docs/engine.md, "Plan pages"). */
  function bulkPlan(request: PlanRequest<SyntheticParams>, count: number): KindPlan {
    store.record({ workflowId: request.workflowId, op: 'plan' });
    store.setBehaviour(request.workflowId, { stages: [], changes: [], ...(scenarioFail(request) ? { fail: scenarioFail(request) } : {}) });
    const from = request.page?.cursor !== undefined ? Number(request.page.cursor) + 1 : 0;
    const budget = request.page?.budgetBytes ?? Number.POSITIVE_INFINITY;
    const changes: Change[] = [];
    let bytes = 0;
    let i = from;
    for (; i < count && bytes <= budget; i++) {
      const resource = `arn:aws:iam::${SYNTHETIC_ACCOUNT}:user/bulk/r-${String(i).padStart(6, '0')}`;
      const tag: Change = { id: `tag/r-${i}`, stage: 'first', action: 'tag', resource, summary: `tag ${resource}`, before: { actions: [], deleted: false }, after: { lastAction: 'tag' }, reversible: true, destructive: false };
      const remove: Change = { id: `remove/r-${i}`, stage: 'second', action: 'remove', resource, summary: `remove ${resource}`, before: { actions: ['tag'], deleted: false }, after: { deleted: true }, reversible: false, destructive: true, dependsOn: [tag.id] };
      changes.push(tag, remove);
      bytes += JSON.stringify(tag).length + JSON.stringify(remove).length;
    }
    return {
      createdAt: new Date(0).toISOString(),
      stages: [
        { name: 'first', description: 'tag every resource' },
        { name: 'second', description: 'remove every resource', soakBefore: request.params.soak },
      ],
      changes,
      leftAlone: [],
      notes: [`bulk synthetic plan of ${count} resources`],
      ...(i < count ? { nextCursor: String(i - 1) } : {}),
    };
  }

  return {
    /** plan: the typed scenario becomes the kind's plan. */
    async draftSyntheticPlan(request: PlanRequest<SyntheticParams>): Promise<KindPlan> {
      const scenario = asScenario(request.params.scenario);
      if (scenario.bulk) return bulkPlan(request, scenario.bulk.count);
      store.record({ workflowId: request.workflowId, op: 'plan' });
      store.setBehaviour(request.workflowId, scenario);
      const stages: Stage[] = scenario.stages.map((s) => {
        const soakBefore = s.soakBefore ?? (s.soak ? request.params.soak : undefined);
        return {
          name: s.name,
          description: s.description ?? `synthetic stage ${s.name}`,
          ...(soakBefore !== undefined ? { soakBefore } : {}),
          ...(s.concurrency !== undefined ? { concurrency: s.concurrency } : {}),
        };
      });
      const changes: Change[] = scenario.changes.map((c): Change => ({
        id: c.id,
        stage: c.stage,
        action: c.action,
        resource: c.resource,
        summary: `${c.action} ${c.resource}`,
        before: { actions: [...store.resource(request.workflowId, c.resource).actions], deleted: false },
        after: c.destructive ? { deleted: true } : ({ lastAction: c.action } as Json),
        reversible: c.reversible === true,
        destructive: c.destructive === true,
        ...(c.dependsOn ? { dependsOn: c.dependsOn } : {}),
      }));
      return { createdAt: new Date().toISOString(), stages, changes, leftAlone: scenario.leftAlone ?? [], notes: ['synthetic plan for engine tests'] };
    },

    /** snapshot batch: the state of each resource, before destructive changes. */
    async photographSyntheticBatch(request: BatchRequest): Promise<SnapshotBatchResult> {
      const run = await runBatch(
        request.changes,
        async (change) => {
          const r = store.resource(request.workflowId, change.resource);
          const event = store.record({ workflowId: request.workflowId, op: 'snapshot', changeId: change.id, resource: change.resource });
          return { snapshot: { resource: change.resource, actions: [...r.actions], deleted: r.deleted, photo: event.seq } };
        },
        { concurrency: 8, budgetBytes: request.budgetBytes },
      );
      return snapshotResults(run);
    },

    /** apply batch: each change as enactSyntheticChange would apply it alone. */
    async enactSyntheticBatch(request: BatchRequest): Promise<ApplyBatchResult> {
      const run = await runBatch(
        request.changes,
        (change) => enact({ role: 'apply', workflowId: request.workflowId, account: request.account, region: request.region, change, protectedPrincipals: request.protectedPrincipals, ...(request.snapshots?.[change.id] !== undefined ? { snapshot: request.snapshots[change.id] } : {}) }),
        { concurrency: 8, budgetBytes: request.budgetBytes },
      );
      return batchResults(run);
    },

    /** rollback batch: each change undone as undoSyntheticChange would. */
    async undoSyntheticBatch(request: BatchRequest): Promise<ApplyBatchResult> {
      const run = await runBatch(request.changes, async (change) => undo(request.workflowId, change), { concurrency: 8, budgetBytes: Number.POSITIVE_INFINITY, continueAfterFailure: true });
      return batchResults(run);
    },

    /** snapshot: the full state of the resource, before a destructive change. */
    async photographSyntheticResource(request: ChangeRequest): Promise<Json> {
      const { change } = request;
      const r = store.resource(request.workflowId, change.resource);
      const event = store.record({ workflowId: request.workflowId, op: 'snapshot', changeId: change.id, resource: change.resource });
      return { resource: change.resource, actions: [...r.actions], deleted: r.deleted, photo: event.seq };
    },

    /** apply: any action; destructive ones delete the resource. */
    enactSyntheticChange: (request: ChangeRequest): Promise<ChangeOutcome> => enact(request),

    /** rollback: undo the action applied to the resource. */
    undoSyntheticChange: async (request: RollbackRequest): Promise<ChangeOutcome> => undo(request.workflowId, request.change),

    /** verify: every applied change's promise holds in the store. */
    async confirmSyntheticState(request: VerifyRequest): Promise<VerifyResult> {
      store.record({ workflowId: request.workflowId, op: 'verify' });
      const checks = request.applied.map(({ change, result }) => {
        const r = store.resource(request.workflowId, change.resource);
        const ok = result.status === 'already-done' || (change.destructive ? r.deleted : r.actions.includes(change.action));
        return { changeId: change.id, ok, detail: ok ? 'as promised' : `${change.resource} is ${JSON.stringify(r)}` };
      });
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}

export type SyntheticActivities = ReturnType<typeof createSyntheticActivities>;

/** The fixed target every synthetic run acts in (the engine's own resolveTarget would ask AWS). */
export const SYNTHETIC_TARGET: TargetInfo = {
  account: SYNTHETIC_ACCOUNT,
  region: 'us-east-1',
  workerArn: SYNTHETIC_WORKER_ARN,
  actingArn: SYNTHETIC_WORKER_ARN,
  selfPrincipals: [SYNTHETIC_WORKER_ARN],
};

export async function resolveSyntheticTarget(_request: TargetRequest): Promise<TargetInfo> {
  return { ...SYNTHETIC_TARGET, selfPrincipals: [...SYNTHETIC_TARGET.selfPrincipals] };
}
