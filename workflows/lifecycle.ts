/**
 * The engine every remediation runs (docs/design.md §1): load policy → plan → approval gate → stages with
 * soaks, snapshots and drift re-checks → verify → outcome. A kind supplies its activities through a
 * RemediationDefinition; the engine never changes when a kind is added.
 *
 * Deterministic code only: no I/O, no Node APIs. Every side effect is an activity.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Outcome, Phase, RemediationInput, RemediationStatus } from '../common/messages';
import { decideSignal, decideUpdate, MAX_NOTIFICATIONS, remediationInputSchema, statusQuery } from '../common/messages';
import type { NotifyEvent } from '../common/messages';
import type { NotifyRequest, NotifyResult } from '../activities/notify';
import { KIND_ATTRIBUTE, OUTCOME_ATTRIBUTE, PHASE_ATTRIBUTE } from '../common/search-attributes';
import type { Change, ChangeOutcome, ChangeResult, Plan, Stage, VerifyResult } from '../common/plan';
import type { EffectivePolicy } from '../common/policy';
import { protectingPattern } from '../common/policy';
import type { ActivityRole, ChangeRequest, PlanRequest, RollbackRequest, TargetInfo, TargetRequest, VerifyRequest } from '../common/requests';
import type { Json } from '../common/json';
import { ApprovalGate, sameIdentity } from './approval';
import { durationMs } from './durations';

/** An activity a kind registers, by name, with the timeouts and retries it runs under. */
export interface ActivityRef {
  name: string;
  options: ActivityOptions;
}

/** A catalogue kind's activity: the name is checked against what the worker registers. */
export function activity(name: keyof Activities & string, options: ActivityOptions): ActivityRef {
  return { name, options };
}

/**
 * What a kind gives the engine: its activities by role. The engine calls them, marks each call's
 * activity id with its role (and change), and applies every guarantee around them.
 */
export interface RemediationDefinition {
  plan: ActivityRef;
  /** Full snapshot of a resource before a destructive change (it lands in history). */
  snapshot?: ActivityRef;
  /** One activity per change action. */
  apply: Record<string, ActivityRef>;
  rollback?: Record<string, ActivityRef>;
  verify: ActivityRef;
}

const ENGINE_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
};

/**
 * Approver notifications (activities/notify.ts): each channel has its own 5 s timeout inside, and
 * failures come back as results; a lost worker is retried once, then recorded, never waited on long.
 */
const NOTIFY_ACTIVITY: ActivityRef = {
  name: 'notifyApprovers',
  options: { startToCloseTimeout: '15s', scheduleToCloseTimeout: '30s', retry: { initialInterval: '1s', maximumAttempts: 2 } },
};

/** Reminders go out when this share of the approval window has passed. */
const REMINDERS: readonly [NotifyEvent, number][] = [
  ['reminder-50', 0.5],
  ['reminder-90', 0.9],
];

/** The approve command, worded as cli/render.ts approveHint words it (test/unit/notify.test.ts checks they agree). */
export function approveCommand(status: RemediationStatus): string {
  const quote = (arg: string): string => (/^[\w./:@=,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  const who = status.policy?.approvers.filter((a) => a !== status.requestedBy)[0] ?? 'APPROVER';
  return `countersign approve ${quote(status.workflowId)} --as ${quote(who)} --plan ${status.plan?.digest ?? '?'}`;
}

/**
 * Call an activity under an id that says what it is for — `plan`, `snapshot:<change>`,
 * `apply:<change>`, `rollback:<change>`, `verify` — so evidence is built from these marks and a kind's
 * activity names are its own. Each id is used once per run (Temporal requires pending ids be unique).
 */
function callActivity<R, Q extends { role: ActivityRole } = { role: ActivityRole }>(ref: ActivityRef, role: ActivityRole, request: Q, changeId?: string): Promise<R> {
  const proxy = proxyActivities<Record<string, (arg: unknown) => Promise<R>>>({ ...ref.options, activityId: changeId ? `${role}:${changeId}` : role });
  return (proxy[ref.name] as (arg: unknown) => Promise<R>)(request);
}

/**
 * Reasons a plan cannot be run as given, found before anyone is asked to approve it: a change this
 * kind has no activity for, a destructive change with no snapshot to take first, a dependency on a
 * change that runs later or not at all, a change on a protected principal.
 */
export function planProblems(plan: Plan, def: RemediationDefinition, target: TargetInfo, protectedPrincipals: readonly string[]): string[] {
  const problems: string[] = [];
  if (plan.account !== target.account) problems.push(`the plan is for account ${plan.account}, but the run targets ${target.account}`);
  const stageIndex = new Map(plan.stages.map((s, i) => [s.name, i]));
  if (stageIndex.size !== plan.stages.length) problems.push('two stages share a name');
  const seen = new Map<string, Change>();
  for (const change of plan.changes) {
    if (seen.has(change.id)) problems.push(`two changes share the id ${change.id}`);
    seen.set(change.id, change);
    if (!stageIndex.has(change.stage)) problems.push(`${change.id} names stage "${change.stage}", which the plan does not have`);
    if (!def.apply[change.action]) problems.push(`${change.id}: no activity applies action "${change.action}"`);
    if (change.destructive && !def.snapshot) problems.push(`${change.id} is destructive, and this kind takes no snapshot to keep first`);
    for (const id of change.dependsOn ?? []) {
      const dep = seen.get(id);
      if (!dep) problems.push(`${change.id} depends on ${id}, which is not an earlier change of the plan`);
      else if ((stageIndex.get(dep.stage) ?? 0) > (stageIndex.get(change.stage) ?? 0)) problems.push(`${change.id} depends on ${id}, which runs in a later stage`);
    }
    const pattern = protectingPattern(protectedPrincipals, change.resource);
    if (pattern) problems.push(`${change.id} would change ${change.resource}, which is protected (matches ${pattern})`);
  }
  for (const stage of plan.stages) {
    if (stage.soakBefore !== undefined) {
      try {
        durationMs(stage.soakBefore);
      } catch (err) {
        problems.push(`stage ${stage.name}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

const DEFAULT_CONCURRENCY = 4;

/**
 * Move to a phase; the memo and the CountersignPhase search attribute mirror it, so `countersign list`
 * needs no query per run and filters on the server. The attribute is upserted only on runs started
 * with Countersign's search attributes (the client sets them when the namespace has them): runs of
 * a namespace without them, and runs started before they existed, replay with the memo alone.
 */
function enterPhase(status: RemediationStatus, phase: Phase): void {
  if (status.phase === phase) return;
  status.phase = phase;
  if (phase === 'done') return; // finish() records the phase with the outcome
  upsertMemo({ phase });
  if (workflowInfo().typedSearchAttributes.get(KIND_ATTRIBUTE) !== undefined) upsertSearchAttributes([{ key: PHASE_ATTRIBUTE, value: phase }]);
}

export async function runRemediation(rawInput: RemediationInput, def: RemediationDefinition): Promise<RemediationStatus> {
  const info = workflowInfo();
  const checked = remediationInputSchema.safeParse(rawInput);
  const input: RemediationInput = checked.success
    ? checked.data
    : { kind: String((rawInput as Partial<RemediationInput> | undefined)?.kind ?? 'unknown').slice(0, 64), params: {}, requestedBy: 'unknown' };
  const status: RemediationStatus = {
    kind: input.kind,
    workflowId: info.workflowId,
    phase: 'starting',
    requestedBy: input.requestedBy,
    dryRun: input.dryRun === true,
    startedAt: new Date().toISOString(),
    decisions: [],
    refused: [],
    decisionsReceived: 0,
    progress: { total: 0, applied: 0, leftAlone: 0, skipped: 0, failed: 0, rolledBack: 0 },
    results: [],
  };
  const gate = new ApprovalGate(status);
  // A function, not the getter: TypeScript would otherwise keep a narrowing across awaits.
  const rejection = () => gate.rejected;
  const byWhom = (): string => {
    const r = gate.rejected;
    return r ? `${r.approver}${r.comment ? ` (${r.comment})` : ''}` : 'unknown';
  };
  // Approvers are told only when the policy names where (a policy without `notify` schedules
  // nothing, so older histories replay unchanged). A notification never blocks the gate and never
  // fails the run: its failure is recorded in status.notifications.
  let notice: Omit<NotifyRequest, 'role' | 'event' | 'outcome' | 'reason'> | undefined;
  const notifying: Promise<void>[] = [];
  const notify = (event: NotifyEvent, extra: { outcome?: Outcome; reason?: string } = {}): Promise<void> => {
    if (!notice) return Promise.resolve();
    const record = (results: NotifyResult[]): void => {
      const at = new Date().toISOString();
      const list = (status.notifications ??= []);
      list.push(...results.map((r) => ({ at, event, ...r })));
      if (list.length > MAX_NOTIFICATIONS) list.splice(0, list.length - MAX_NOTIFICATIONS);
    };
    const request: NotifyRequest = { role: 'notify', event, ...notice, ...extra };
    const sent = callActivity<NotifyResult[], NotifyRequest>(NOTIFY_ACTIVITY, 'notify', request, event).then(record, (err: unknown) =>
      record([{ channel: 'activity', ok: false, detail: isCancellation(err) ? 'cancelled' : failureMessage(err) }]),
    );
    notifying.push(sent);
    return sent;
  };
  setHandler(statusQuery, () => status);
  // A decision with a proof of identity is judged once an activity has verified it with STS (the
  // handlers are then async); a name-only decision under a name-only policy is judged at once.
  setHandler(decideSignal, async (decision) => {
    await gate.decide(decision);
  });
  // No validator: a refused decision is still an accepted update, so its refusal is in history.
  setHandler(decideUpdate, async (decision) => gate.decide(decision));

  const finish = async (outcome: Outcome, reason?: string): Promise<RemediationStatus> => {
    // The outcome goes to approvers who were asked (after any notice still under way), even on cancellation.
    if (notice) {
      await CancellationScope.nonCancellable(async () => {
        await Promise.all(notifying);
        await notify('end', { outcome, ...(reason ? { reason } : {}) });
      });
    }
    enterPhase(status, 'done');
    status.outcome = outcome;
    status.outcomeReason = reason;
    status.stage = undefined;
    status.soakUntil = undefined;
    status.finishedAt = new Date().toISOString();
    upsertMemo({ phase: 'done', outcome });
    if (workflowInfo().typedSearchAttributes.get(KIND_ATTRIBUTE) !== undefined) {
      upsertSearchAttributes([
        { key: PHASE_ATTRIBUTE, value: 'done' },
        { key: OUTCOME_ATTRIBUTE, value: outcome },
      ]);
    }
    // A decision still being verified (an approver's proof) is answered before the run closes — refused,
    // since nothing awaits a decision now — rather than dropped with the run.
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    log.info('remediation finished', { workflowId: info.workflowId, kind: input.kind, outcome, reason });
    return status;
  };

  if (!checked.success) {
    const issue = checked.error.issues[0];
    return finish('failed', `invalid workflow input${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}; start runs with \`countersign start\``);
  }

  const appliedResults = new Map<string, ChangeResult>();
  try {
    const policy: EffectivePolicy = await callActivity({ name: 'loadApprovalPolicy', options: ENGINE_ACTIVITY }, 'policy', {
      role: 'policy',
      kind: input.kind,
      dryRun: status.dryRun,
    });
    status.policy = policy;
    const targetRequest: TargetRequest = { role: 'target', kind: input.kind, workflowId: info.workflowId, ...(input.account ? { account: input.account } : {}) };
    const target: TargetInfo = await callActivity({ name: 'resolveTarget', options: ENGINE_ACTIVITY }, 'target', targetRequest);
    status.target = target;
    // The policy's patterns (built-ins included) and the principals the run itself stands on.
    const protectedPrincipals = [...policy.protectedPrincipals, ...target.selfPrincipals];
    const scope = { workflowId: info.workflowId, account: target.account, region: target.region };

    enterPhase(status, 'planning');
    const planRequest: PlanRequest = {
      role: 'plan',
      kind: input.kind,
      ...scope,
      params: input.params,
      requestedBy: input.requestedBy,
      policy,
      target,
      protectedPrincipals,
    };
    const plan: Plan = await callActivity(def.plan, 'plan', planRequest);
    status.plan = plan;
    status.progress.total = plan.changes.length;

    const problems = planProblems(plan, def, target, protectedPrincipals);
    if (problems.length > 0) {
      return finish('failed', `the plan cannot be run as given, so nothing was submitted or changed: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
    }
    if (plan.changes.length === 0) return finish('no-op', 'nothing to change');
    if (status.dryRun) return finish('planned', 'dry run: the plan was not submitted for approval');
    if (plan.changes.length > policy.maxChanges) {
      return finish(
        'failed',
        `the plan has ${plan.changes.length} changes, over the policy's maxChanges of ${policy.maxChanges}; narrow the scope (parameters) or raise maxChanges`,
      );
    }

    // The approval gate. Fail fast when the quorum cannot be met without the requester.
    const eligible = policy.approvers.filter((a) => !sameIdentity(a, input.requestedBy));
    if (eligible.length < policy.quorum) {
      return finish(
        'failed',
        `the policy needs ${policy.quorum} approval(s) but only ${eligible.length} approver(s) other than the requester ${input.requestedBy} are listed in ${policy.source}`,
      );
    }
    const timeoutMs = durationMs(policy.approvalTimeout);
    status.expiresAt = new Date(Date.now() + timeoutMs).toISOString();
    enterPhase(status, 'awaiting-approval');
    const decidedYet = () => gate.approved || rejection() !== undefined;
    let decided: boolean;
    if (!policy.notify) {
      decided = await condition(decidedYet, timeoutMs);
    } else {
      // Told now, and reminded at half and at 90% of the window; the window itself does not move.
      const deadline = Date.now() + timeoutMs;
      notice = { workflowId: info.workflowId, kind: input.kind, account: target.account, digest: plan.digest, changes: plan.changes.length, approveCommand: approveCommand(status), expiresAt: status.expiresAt, channels: policy.notify };
      void notify('awaiting-approval');
      decided = false;
      for (const [event, share] of REMINDERS) {
        decided = await condition(decidedYet, Math.max(1, deadline - Math.round(timeoutMs * (1 - share)) - Date.now()));
        if (decided) break;
        void notify(event);
      }
      if (!decided) decided = await condition(decidedYet, Math.max(1, deadline - Date.now()));
    }
    if (rejection()) {
      return finish('rejected', `rejected by ${byWhom()}`);
    }
    if (!decided) return finish('expired', `no quorum of approvals before ${status.expiresAt}`);

    // Apply, stage by stage.
    const context: StageContext = { plan, def, status, appliedResults, scope, protectedPrincipals };
    for (const stage of plan.stages) {
      if (stage.soakBefore) {
        const soakMs = durationMs(stage.soakBefore);
        enterPhase(status, 'soaking');
        status.stage = stage.name;
        status.soakUntil = new Date(Date.now() + soakMs).toISOString();
        await condition(() => rejection() !== undefined, soakMs);
        status.soakUntil = undefined;
      }
      if (rejection()) {
        await rollBack(context);
        return finish('rolled-back', `halted by ${byWhom()} before stage "${stage.name}"`);
      }
      enterPhase(status, 'applying');
      status.stage = stage.name;
      const failed = await runStage(stage, context, () => rejection() !== undefined);
      if (failed > 0 || rejection()) {
        await rollBack(context);
        if (rejection()) return finish('rolled-back', `halted by ${byWhom()} during stage "${stage.name}"`);
        return finish('failed', `${failed} change(s) failed in stage "${stage.name}"; ${status.progress.rolledBack} reversible change(s) rolled back`);
      }
    }

    enterPhase(status, 'verifying');
    status.stage = undefined;
    const applied = plan.changes
      .filter((c) => appliedResults.has(c.id))
      .map((change) => ({ change, result: appliedResults.get(change.id) as ChangeResult }));
    const verifyRequest: VerifyRequest = { role: 'verify', ...scope, applied };
    status.verification = await callActivity<VerifyResult>(def.verify, 'verify', verifyRequest);
    if (!status.verification.ok) {
      const bad = status.verification.checks.filter((c) => !c.ok).map((c) => `${c.changeId}: ${c.detail}`);
      return finish('failed', `verification failed: ${bad.join('; ')}`);
    }
    return finish('completed');
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        const { plan, target, policy } = status;
        if (plan && target && policy) {
          await rollBack({
            plan,
            def,
            status,
            appliedResults,
            scope: { workflowId: info.workflowId, account: target.account, region: target.region },
            protectedPrincipals: [...policy.protectedPrincipals, ...target.selfPrincipals],
          });
        }
      });
      return finish('cancelled', `the workflow was cancelled; ${status.progress.rolledBack} reversible change(s) rolled back`);
    }
    // An activity that failed for good outside a stage (policy, target, plan, verify): the run fails
    // with the reason in its result, rather than failing the workflow task and looking stuck.
    const message = err instanceof Error ? err.message : String(err);
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    if (err instanceof ApplicationFailure || err instanceof ActivityFailure) {
      return finish('failed', `${message}${cause}`);
    }
    throw err;
  }
}

interface StageContext {
  plan: Plan;
  def: RemediationDefinition;
  status: RemediationStatus;
  appliedResults: Map<string, ChangeResult>;
  scope: { workflowId: string; account: string; region: string };
  protectedPrincipals: string[];
}

/** What a failed change did before it failed, when its activity said so (activities/aws/errors.ts PartialChangeError). */
function partialProgress(err: unknown): Json | undefined {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  if (!(failure instanceof ApplicationFailure)) return undefined;
  const found = (failure.details ?? []).find((d): d is { observed: Json } => typeof d === 'object' && d !== null && 'observed' in d);
  return found?.observed;
}

function failureMessage(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
}

async function runStage(stage: Stage, ctx: StageContext, halted: () => boolean): Promise<number> {
  const { plan, def, status, appliedResults } = ctx;
  const queue = plan.changes.filter((c) => c.stage === stage.name);
  const inStage = new Set(queue.map((c) => c.id));
  const finished = new Set<string>();
  let failed = 0;
  const record = (result: ChangeResult): void => {
    finished.add(result.changeId);
    status.results.push(result);
    const p = status.progress;
    if (result.status === 'applied' || result.status === 'already-done') p.applied++;
    else if (result.status === 'left-alone') p.leftAlone++;
    else if (result.status === 'skipped') p.skipped++;
    else if (result.status === 'failed') p.failed++;
  };
  const runOne = async (change: Change): Promise<void> => {
    // A dependency in this same stage was started earlier (plans list dependencies first) but may still
    // be running on another of the stage's lanes: wait for its result rather than skip.
    const sameStage = (change.dependsOn ?? []).filter((id) => inStage.has(id));
    if (sameStage.length > 0) await condition(() => sameStage.every((id) => finished.has(id)));
    const unmet = (change.dependsOn ?? []).filter((id) => !appliedResults.has(id));
    if (unmet.length > 0) {
      const why = unmet.map((id) => `${id} ${status.results.find((r) => r.changeId === id)?.status ?? 'not applied'}`);
      record({ changeId: change.id, status: 'skipped', at: new Date().toISOString(), detail: `depends on ${why.join(', ')}` });
      return;
    }
    // planProblems() refused plans without these before approval; kept as a fail-closed backstop.
    const apply = def.apply[change.action];
    if (!apply || (change.destructive && !def.snapshot)) {
      failed++;
      record({ changeId: change.id, status: 'failed', at: new Date().toISOString(), detail: !apply ? `no activity applies action "${change.action}"` : 'a destructive change needs a snapshot first, and this kind defines none' });
      return;
    }
    let snapshot: Json | undefined;
    const base = { ...ctx.scope, change, protectedPrincipals: ctx.protectedPrincipals };
    try {
      // The snapshot is an activity result of its own, so it is in history before anything is destroyed.
      if (change.destructive && def.snapshot) {
        const request: ChangeRequest = { role: 'snapshot', ...base };
        snapshot = await callActivity<Json>(def.snapshot, 'snapshot', request, change.id);
      }
      const request: ChangeRequest = { role: 'apply', ...base, ...(snapshot !== undefined ? { snapshot } : {}) };
      const outcome = await callActivity<ChangeOutcome>(apply, 'apply', request, change.id);
      const result: ChangeResult = {
        changeId: change.id,
        status: outcome.status,
        at: new Date().toISOString(),
        ...(outcome.detail !== undefined ? { detail: outcome.detail } : {}),
        ...(snapshot !== undefined ? { snapshotTaken: true } : {}),
        ...(outcome.observed !== undefined ? { observed: outcome.observed } : {}),
      };
      if (outcome.status === 'applied' || outcome.status === 'already-done') appliedResults.set(change.id, result);
      record(result);
    } catch (err) {
      failed++;
      const observed = partialProgress(err);
      record({
        changeId: change.id,
        status: 'failed',
        at: new Date().toISOString(),
        detail: failureMessage(err),
        ...(snapshot !== undefined ? { snapshotTaken: true } : {}),
        ...(observed !== undefined ? { observed } : {}),
      });
    }
  };
  // A change, once started, runs to its end even if the run is cancelled: cancelling an AWS call
  // half-way would leave a change done but unrecorded. Cancellation, halts and failures take effect
  // between changes: after a failure no further change starts (the run is going to roll back, and
  // carrying on would only add changes to undo, or irreversible ones to a failed run).
  const workers = Array.from({ length: Math.max(1, Math.min(stage.concurrency ?? DEFAULT_CONCURRENCY, queue.length)) }, async () => {
    for (let change = queue.shift(); change; change = queue.shift()) {
      if (halted() || failed > 0 || CancellationScope.current().consideredCancelled) {
        const why = failed > 0 && !halted() ? 'not started: a change of this stage failed, so the run stops and rolls back' : 'the run was halted before this change';
        record({ changeId: change.id, status: 'skipped', at: new Date().toISOString(), detail: why });
        continue;
      }
      const next = change;
      await CancellationScope.nonCancellable(() => runOne(next));
    }
  });
  await Promise.all(workers);
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('the run was cancelled during a stage');
  return failed;
}

/**
 * Undo applied changes newest first — in the order they were applied, not the plan's order. A change
 * stays applied when it is irreversible, or when a change applied after it that depends on it is still
 * in place (undoing a disable under a deleted user would be meaningless).
 */
async function rollBack(ctx: StageContext): Promise<void> {
  const byId = new Map(ctx.plan.changes.map((c) => [c.id, c]));
  // appliedResults is a Map: its keys are in the order the changes were applied.
  const newestFirst = [...ctx.appliedResults.keys()].reverse().flatMap((id) => byId.get(id) ?? []);
  if (!newestFirst.some((c) => c.reversible)) return;
  enterPhase(ctx.status, 'rolling-back');
  // A rollback is never abandoned half-way: a cancel arriving now takes effect after it.
  await CancellationScope.nonCancellable(() => undoAll(newestFirst, ctx));
}

async function undoAll(newestFirst: Change[], ctx: StageContext): Promise<void> {
  const { def, status, appliedResults } = ctx;
  const stillApplied = new Set(newestFirst.map((c) => c.id));
  for (const change of newestFirst) {
    const standsOnIt = newestFirst.some((d) => stillApplied.has(d.id) && (d.dependsOn ?? []).includes(change.id));
    if (!change.reversible || standsOnIt) continue;
    const result = appliedResults.get(change.id) as ChangeResult;
    const rollback = def.rollback?.[change.action];
    const at = new Date().toISOString();
    if (!rollback) {
      status.results.push({ changeId: change.id, status: 'rollback-failed', at, detail: `no rollback for action "${change.action}"` });
      continue;
    }
    try {
      const request: RollbackRequest = { role: 'rollback', ...ctx.scope, change, result, protectedPrincipals: ctx.protectedPrincipals };
      const outcome = await callActivity<ChangeOutcome>(rollback, 'rollback', request, change.id);
      const extra = { ...(outcome.detail ? { detail: outcome.detail } : {}), ...(outcome.observed !== undefined ? { observed: outcome.observed } : {}) };
      if (outcome.status === 'left-alone') {
        // The kind chose not to undo it (e.g. a bucket it created now holds objects): it stays applied.
        status.results.push({ changeId: change.id, status: 'rollback-failed', at: new Date().toISOString(), ...extra, detail: `not undone: ${outcome.detail ?? 'the kind left it in place'}` });
        continue;
      }
      status.results.push({ changeId: change.id, status: 'rolled-back', at: new Date().toISOString(), ...extra });
      status.progress.rolledBack++;
      stillApplied.delete(change.id);
    } catch (err) {
      status.results.push({ changeId: change.id, status: 'rollback-failed', at: new Date().toISOString(), detail: failureMessage(err) });
    }
  }
}
