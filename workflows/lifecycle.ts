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
  getExternalWorkflowHandle,
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
import { accountPlannedSignal, decideSignal, decideUpdate, detailsQuery, MAX_NOTIFICATIONS, organizationDecisionSignal, remediationInputSchema, statusQuery } from '../common/messages';
import type { DetailsPage, DetailsRequest, OrganizationDecision, RecordedDecision } from '../common/messages';
import type { ApprovalConfirmation, ConfirmApprovalRequest } from '../activities/organization-run';
import type { NotifyEvent } from '../common/messages';
import type { NotifyRequest, NotifyResult } from '../activities/notify';
import { KIND_ATTRIBUTE, OUTCOME_ATTRIBUTE, PHASE_ATTRIBUTE } from '../common/search-attributes';
import type { Change, ChangeOutcome, ChangeResult, Plan, PlanPage, Stage, VerifyResult } from '../common/plan';
import { assemblePlan } from '../common/plan';
import type { EffectivePolicy } from '../common/policy';
import { protectingPattern } from '../common/policy';
import type {
  ActivityRole,
  ApplyBatchResult,
  BatchRequest,
  ChangeRequest,
  PlanRequest,
  RollbackRequest,
  SnapshotBatchResult,
  TargetInfo,
  TargetRequest,
  VerifyRequest,
} from '../common/requests';
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
  /**
   * Activities that carry many changes per call (docs/engine.md, "Batches"): a stage whose every
   * change has a batch apply activity runs in batches — a snapshot batch, then an apply batch — so
   * history grows per batch, not per change. Rollback batches likewise.
   */
  batch?: {
    snapshot?: ActivityRef;
    apply: Record<string, ActivityRef>;
    rollback?: Record<string, ActivityRef>;
  };
}

/**
 * Payload budgets (docs/engine.md, "Bounds"). Temporal refuses a payload over 2 MiB and warns past
 * 512 KiB; Countersign keeps every payload it builds — plan pages, batch inputs and results, verify
 * pages, the status answer, the result — under 512 KiB whatever the plan's size.
 */
export const BOUNDS = {
  /** A plan page's JSON (a page may pass it by the last change it took). */
  planPageBytes: 320 * 1024,
  /**
   * A batch's changes, and its result. An apply batch carries its changes and what the snapshot batch
   * handed on, each under this: together well under 512 KiB.
   */
  batchBytes: 160 * 1024,
  /** One change (a change larger than this cannot be carried and is refused at planning). */
  changeBytes: 64 * 1024,
  /** Changes per batch, unless the stage says otherwise. */
  batchSize: 100,
  /** Plan pages: beyond this the plan is refused at planning (split the scope). */
  maxPlanPages: 200,
  /**
   * The plan JSON one run carries to the end. History holds a change about ten times over (the plan,
   * its snapshot and apply batches, their results, verification): 3 MiB of plan is about 30 MiB of
   * history, under Temporal's 50 MiB limit. An organization-wide run splits a larger account into parts.
   */
  runPlanBytes: 3 * 1024 * 1024,
  /** Items a status answer lists (changes, left alone, results, checks); the `details` query pages through the rest. */
  listed: 200,
  /** Items per `details` page. */
  detailsPage: 500,
} as const;

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
    const bytes = JSON.stringify(change).length;
    if (bytes > BOUNDS.changeBytes) problems.push(`${change.id} is ${bytes} bytes of JSON, more than one change can carry (${BOUNDS.changeBytes})`);
  }
  if (def.batch) {
    problems.push(...batchProblems(plan, def));
    if (plan.changes.some((c) => c.destructive && def.batch?.apply[c.action]) && !def.batch.snapshot) problems.push('destructive changes run in batches, and this kind takes no batch snapshot to keep first');
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

/** A run's status before anything has happened (a remediation's, or an organization-wide run's). */
export function initialStatus(input: { kind: string; requestedBy: string; dryRun?: boolean }, workflowId: string): RemediationStatus {
  return {
    kind: input.kind,
    workflowId,
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
}

export async function runRemediation(rawInput: RemediationInput, def: RemediationDefinition): Promise<RemediationStatus> {
  const info = workflowInfo();
  const checked = remediationInputSchema.safeParse(rawInput);
  const input: RemediationInput = checked.success
    ? checked.data
    : { kind: String((rawInput as Partial<RemediationInput> | undefined)?.kind ?? 'unknown').slice(0, 64), params: {}, requestedBy: 'unknown' };
  const status = initialStatus(input, info.workflowId);
  const gate = new ApprovalGate(status);
  // An account's run of an organization-wide run: the organization run's verdict on the consolidated
  // plan (confirmed by an activity before anything is applied), and a halt it relays.
  let orgDecision: OrganizationDecision | undefined;
  let orgRejection: RecordedDecision | undefined;
  setHandler(organizationDecisionSignal, (decision) => {
    if (!input.organization || (orgDecision?.decision === 'reject')) return;
    if (decision?.decision !== 'approve' && decision?.decision !== 'reject') return;
    orgDecision = { decision: decision.decision, ...(typeof decision.digest === 'string' ? { digest: decision.digest.slice(0, 64) } : {}), ...(typeof decision.reason === 'string' ? { reason: decision.reason.slice(0, 500) } : {}) };
    if (orgDecision.decision === 'reject') {
      orgRejection = { decision: 'reject', approver: `organization run ${input.organization.parentWorkflowId}`, planDigest: status.plan?.digest ?? '', seq: 0, at: new Date().toISOString(), ...(orgDecision.reason ? { comment: orgDecision.reason } : {}) };
    }
  });
  // A function, not the getter: TypeScript would otherwise keep a narrowing across awaits.
  const rejection = () => gate.rejected ?? orgRejection;
  const byWhom = (): string => {
    const r = rejection();
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
  // Every answer is bounded whatever the run's size: the newest results, the first changes; the
  // `details` query pages through the rest (docs/engine.md, "Bounds").
  let fullPlan: Plan | undefined;
  setHandler(statusQuery, () => boundedView(status));
  setHandler(detailsQuery, (request) => detailsPage(request, status, fullPlan));
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
    return boundedView(status);
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
      ...(input.part ? { part: input.part } : {}),
    };
    // The plan in pages, each under the payload budget, their digests chained into the one an
    // approver approves (docs/engine.md, "Plan pages"). A kind that does not page returns one.
    const pages: PlanPage[] = [];
    for (let cursor: string | undefined, number = 1; number === 1 || cursor !== undefined; number++) {
      if (number > BOUNDS.maxPlanPages) {
        return finish('failed', `the plan needs more than ${BOUNDS.maxPlanPages} pages, more than one run can carry; nothing was submitted or changed — narrow the scope (parameters), or split the account across runs`);
      }
      const previous = pages.at(-1);
      const page: PlanPage = await callActivity(
        def.plan,
        'plan',
        { ...planRequest, page: { number, budgetBytes: BOUNDS.planPageBytes, ...(cursor !== undefined ? { cursor } : {}), ...(previous ? { previousDigest: previous.digest } : {}) } },
        number === 1 ? undefined : `page-${number}`,
      );
      pages.push(page);
      cursor = page.nextCursor;
      const planned = pages.reduce((n, p) => n + p.changes.length, 0);
      if (cursor !== undefined && planned > policy.maxChanges && !status.dryRun) {
        return finish('failed', `the plan has more than ${policy.maxChanges} changes (${planned} in its first ${pages.length} pages), over the policy's maxChanges; narrow the scope (parameters) or raise maxChanges in ${policy.source}`);
      }
    }
    const plan = assemblePlan(pages);
    fullPlan = plan;
    status.plan = plan;
    status.progress.total = plan.changes.length;

    const problems = [...pageProblems(pages), ...planProblems(plan, def, target, protectedPrincipals)];
    if (problems.length > 0) {
      return finish('failed', `the plan cannot be run as given, so nothing was submitted or changed: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
    }
    if (plan.changes.length === 0) return finish('no-op', 'nothing to change');
    if (status.dryRun) return finish('planned', 'dry run: the plan was not submitted for approval');
    // A run's history holds its plan several times over (snapshots, batches, verification): past
    // BOUNDS.runPlanBytes of plan it could not finish within Temporal's history limit. Refused now,
    // with the way to run it, before anything changes.
    const planBytes = JSON.stringify(plan.changes).length;
    if (planBytes > BOUNDS.runPlanBytes) {
      return finish(
        'failed',
        `the plan's ${plan.changes.length} changes (${Math.round(planBytes / 1048576)} MiB) are more than one run can carry to the end; nothing was submitted or changed — run it with \`countersign start ${input.kind} --accounts ${target.account}\`, which splits the account into parts under one approval, or narrow the scope (parameters)`,
      );
    }
    if (plan.changes.length > policy.maxChanges) {
      return finish(
        'failed',
        `the plan has ${plan.changes.length} changes, over the policy's maxChanges of ${policy.maxChanges}; narrow the scope (parameters) or raise maxChanges in ${policy.source}`,
      );
    }

    if (input.organization) {
      // Approved as part of the organization's consolidated plan: report this plan, wait for the verdict,
      // then confirm it with the organization run itself before changing anything.
      const parentWorkflowId = input.organization.parentWorkflowId;
      status.organization = { parentWorkflowId };
      const timeoutMs = durationMs(policy.approvalTimeout);
      status.expiresAt = new Date(Date.now() + timeoutMs).toISOString();
      enterPhase(status, 'awaiting-approval');
      await getExternalWorkflowHandle(parentWorkflowId).signal(accountPlannedSignal, {
        account: target.account,
        workflowId: info.workflowId,
        digest: plan.digest,
        changes: plan.changes.length,
        leftAlone: plan.leftAlone.length + plan.leftAloneNotListed,
      });
      // The organization run waits its own approval window, then says so; an hour's grace beyond it.
      const decided = await condition(() => orgDecision !== undefined || gate.approved || rejection() !== undefined, timeoutMs + 3_600_000);
      if (rejection()) return finish('rejected', `rejected by ${byWhom()}`);
      if (!decided) return finish('expired', `no verdict from organization run ${parentWorkflowId} before ${status.expiresAt}`);
      if (orgDecision?.decision === 'approve') {
        const request: ConfirmApprovalRequest = { role: 'organization', parentWorkflowId, account: target.account, ...(input.part ? { part: input.part.number } : {}), digest: plan.digest };
        const confirmed = await callActivity<ApprovalConfirmation, ConfirmApprovalRequest>({ name: 'confirmOrganizationApproval', options: ENGINE_ACTIVITY }, 'organization', request);
        if (!confirmed.ok) return finish('failed', `the organization approval could not be confirmed, so nothing was changed: ${confirmed.reason}`);
        status.organization.consolidatedDigest = confirmed.consolidatedDigest;
        status.decisions.push(...confirmed.decisions.slice(0, 20));
      }
    } else {
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
    }

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
      const failed = batchedStage(stage, plan, def)
        ? await runBatchedStage(stage, context, () => rejection() !== undefined)
        : await runStage(stage, context, () => rejection() !== undefined);
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
    // In pages under the payload budget; a small run's one page is the `verify` activity it always was.
    const verifyPages = pagesOf(applied, BOUNDS.batchBytes, Number.MAX_SAFE_INTEGER);
    const verification: VerifyResult = { ok: true, checks: [] };
    for (const [i, page] of verifyPages.entries()) {
      const verifyRequest: VerifyRequest = { role: 'verify', ...scope, applied: page, ...(verifyPages.length > 1 ? { page: i + 1 } : {}) };
      const part = await callActivity<VerifyResult>(def.verify, 'verify', verifyRequest, i === 0 ? undefined : `page-${i + 1}`);
      verification.ok &&= part.ok;
      verification.checks.push(...part.checks);
    }
    status.verification = verification;
    if (!status.verification.ok) {
      const bad = status.verification.checks.filter((c) => !c.ok).map((c) => `${c.changeId}: ${c.detail}`);
      return finish('failed', `verification failed: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? `; and ${bad.length - 5} more` : ''}`);
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

/** A change's result, into the status and its progress counts. */
function recordResult(status: RemediationStatus, result: ChangeResult): void {
  status.results.push(result);
  const p = status.progress;
  if (result.status === 'applied' || result.status === 'already-done') p.applied++;
  else if (result.status === 'left-alone') p.leftAlone++;
  else if (result.status === 'skipped') p.skipped++;
  else if (result.status === 'failed') p.failed++;
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
    recordResult(status, result);
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
  // Who depends on whom, once: a run of thousands of changes must not compare every pair.
  const dependents = new Map<string, string[]>();
  for (const d of newestFirst) for (const id of d.dependsOn ?? []) dependents.set(id, [...(dependents.get(id) ?? []), d.id]);
  const standsOn = (change: Change): boolean => (dependents.get(change.id) ?? []).some((id) => stillApplied.has(id));
  const batchRollback = def.batch?.rollback;
  for (let i = 0; i < newestFirst.length; i++) {
    const change = newestFirst[i] as Change;
    if (!change.reversible || standsOn(change)) continue;
    const batchRef = batchRollback?.[change.action];
    if (batchRef) {
      // This change and the next ones of the same action (still newest first), in one rollback batch.
      const batch: Change[] = [change];
      let bytes = JSON.stringify(change).length;
      while (i + 1 < newestFirst.length && batch.length < BOUNDS.batchSize) {
        const next = newestFirst[i + 1] as Change;
        if (next.action !== change.action || bytes > BOUNDS.batchBytes) break;
        i++;
        if (!next.reversible || standsOn(next)) continue;
        batch.push(next);
        bytes += JSON.stringify(next).length;
      }
      await undoBatch(batch, batchRef, ctx, stillApplied);
      continue;
    }
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

// ---------------------------------------------------------------------------------------------
// Scale: plan pages, bounded answers, batches (docs/engine.md, "Plan pages", "Bounds", "Batches")
// ---------------------------------------------------------------------------------------------

/** Pages that do not belong to one plan: another kind, account or set of stages than the first page. */
function pageProblems(pages: PlanPage[]): string[] {
  const first = pages[0];
  if (!first) return [];
  const stages = JSON.stringify(first.stages);
  return pages
    .slice(1)
    .filter((p) => p.kind !== first.kind || p.account !== first.account || JSON.stringify(p.stages) !== stages)
    .map((p) => `plan page ${p.page} does not continue page 1 (another kind, account or set of stages)`);
}

/** Items in consecutive pages, each under `bytes` of JSON and `count` items (an item larger than `bytes` goes alone). */
export function pagesOf<T>(items: T[], bytes: number, count: number): T[][] {
  const pages: T[][] = [];
  let page: T[] = [];
  let size = 0;
  for (const item of items) {
    const itemSize = JSON.stringify(item).length;
    if (page.length > 0 && (size + itemSize > bytes || page.length >= count)) {
      pages.push(page);
      page = [];
      size = 0;
    }
    page.push(item);
    size += itemSize;
  }
  if (page.length > 0) pages.push(page);
  return pages;
}

function listed<T>(items: T[]): T[] {
  return items.length > BOUNDS.listed ? items.slice(0, BOUNDS.listed) : items;
}

/**
 * The status a query answers and a run returns: bounded whatever the run's size. The first changes
 * and left-alone entries, the newest results, failing checks first; counts for the rest.
 */
export function boundedView(status: RemediationStatus): RemediationStatus {
  const view: RemediationStatus = { ...status };
  const plan = status.plan;
  if (plan && (plan.changes.length > BOUNDS.listed || plan.leftAlone.length > BOUNDS.listed)) {
    view.plan = {
      ...plan,
      changes: listed(plan.changes),
      ...(plan.changes.length > BOUNDS.listed ? { changesNotListed: plan.changes.length - BOUNDS.listed } : {}),
      leftAlone: listed(plan.leftAlone),
      leftAloneNotListed: plan.leftAloneNotListed + Math.max(0, plan.leftAlone.length - BOUNDS.listed),
    };
  }
  if (status.results.length > BOUNDS.listed) {
    view.results = status.results.slice(-BOUNDS.listed);
    view.resultsNotListed = status.results.length - BOUNDS.listed;
  }
  const verification = status.verification;
  if (verification && verification.checks.length > BOUNDS.listed) {
    const failing = verification.checks.filter((c) => !c.ok);
    const checks = [...failing, ...verification.checks.filter((c) => c.ok)].slice(0, BOUNDS.listed);
    view.verification = { ok: verification.ok, checks, checksNotListed: verification.checks.length - checks.length };
  }
  return view;
}

/** A page of one of the run's lists (the `details` query). */
export function detailsPage(request: DetailsRequest, status: RemediationStatus, plan: Plan | undefined): DetailsPage {
  const lists: Record<DetailsRequest['list'], unknown[]> = {
    changes: plan?.changes ?? [],
    'left-alone': plan?.leftAlone ?? [],
    results: status.results,
    checks: status.verification?.checks ?? [],
  };
  const all = lists[request.list] ?? [];
  const offset = Math.max(0, Math.floor(Number(request.offset ?? 0)) || 0);
  const limit = Math.min(BOUNDS.detailsPage, Math.max(1, Math.floor(Number(request.limit ?? BOUNDS.detailsPage)) || BOUNDS.detailsPage));
  return { list: request.list, total: all.length, offset, items: all.slice(offset, offset + limit) };
}

/** A stage runs in batches when the kind has a batch apply activity for every action in it. */
function batchedStage(stage: Stage, plan: Plan, def: RemediationDefinition): boolean {
  const apply = def.batch?.apply;
  if (!apply) return false;
  const changes = plan.changes.filter((c) => c.stage === stage.name);
  return changes.length > 0 && changes.every((c) => apply[c.action] !== undefined);
}

/** Problems only batched stages have: a dependency inside the stage (batches run side by side). */
export function batchProblems(plan: Plan, def: RemediationDefinition): string[] {
  const problems: string[] = [];
  for (const stage of plan.stages) {
    if (!batchedStage(stage, plan, def)) continue;
    const inStage = new Set(plan.changes.filter((c) => c.stage === stage.name).map((c) => c.id));
    for (const change of plan.changes) {
      if (change.stage !== stage.name) continue;
      const dep = (change.dependsOn ?? []).find((id) => inStage.has(id));
      if (dep) problems.push(`${change.id} depends on ${dep} in the same stage "${stage.name}", which runs in batches`);
    }
  }
  return problems;
}

/** What an apply batch had finished before it failed for good (activities/batch.ts puts it on the failure). */
function batchCheckpoint(err: unknown): { changeId: string; value: ChangeOutcome }[] {
  const observed = partialProgress(err) as { done?: { changeId: string; value: ChangeOutcome }[] } | undefined;
  return Array.isArray(observed?.done) ? observed.done : [];
}

/**
 * A stage in batches: per batch one snapshot batch (into history before anything is destroyed) and one
 * apply batch. Batches of one action, under BOUNDS.batchBytes and the stage's batch size; a batch
 * that stops early (its result budget) leaves the rest for the next. After a failure no batch starts.
 */
async function runBatchedStage(stage: Stage, ctx: StageContext, halted: () => boolean): Promise<number> {
  const { plan, def, status, appliedResults } = ctx;
  const batchDef = def.batch as NonNullable<RemediationDefinition['batch']>;
  const queue = plan.changes.filter((c) => c.stage === stage.name);
  const size = stage.batchSize ?? BOUNDS.batchSize;
  let failed = 0;
  let sequence = 0;
  const record = (result: ChangeResult): void => recordResult(status, result);
  const now = () => new Date().toISOString();
  const take = (): Change[] => {
    const batch: Change[] = [];
    let bytes = 0;
    while (queue.length > 0 && batch.length < size) {
      const next = queue[0] as Change;
      const nextBytes = JSON.stringify(next).length;
      if (batch.length > 0 && (next.action !== (batch[0] as Change).action || bytes + nextBytes > BOUNDS.batchBytes)) break;
      batch.push(next);
      bytes += nextBytes;
      queue.shift();
    }
    return batch;
  };
  const runOne = async (batch: Change[]): Promise<void> => {
    const action = (batch[0] as Change).action;
    const id = `${stage.name}-${++sequence}`;
    const ready: Change[] = [];
    for (const change of batch) {
      const unmet = (change.dependsOn ?? []).filter((d) => !appliedResults.has(d));
      if (unmet.length === 0) ready.push(change);
      else record({ changeId: change.id, status: 'skipped', at: now(), detail: `depends on ${unmet.map((d) => `${d} ${status.results.find((r) => r.changeId === d)?.status ?? 'not applied'}`).join(', ')}` });
    }
    if (ready.length === 0) return;
    const base = { ...ctx.scope, action, protectedPrincipals: ctx.protectedPrincipals, budgetBytes: BOUNDS.batchBytes };
    let covered = ready;
    const snapshots: Record<string, Json> = {};
    try {
      const destructive = ready.filter((c) => c.destructive);
      if (destructive.length > 0) {
        // planProblems() refused destructive changes without a snapshot activity before approval.
        const snapshotRef = batchDef.snapshot as ActivityRef;
        const request: BatchRequest = { role: 'snapshot-batch', ...base, changes: destructive };
        const taken = await callActivity<SnapshotBatchResult, BatchRequest>(snapshotRef, 'snapshot-batch', request, id);
        for (const s of taken.snapshots) snapshots[s.changeId] = s.forApply ?? s.snapshot;
        const unsnapped = new Set<string>();
        for (const f of taken.failed ?? []) {
          unsnapped.add(f.changeId);
          failed++;
          record({ ...f, detail: `no snapshot could be taken, so nothing was changed: ${f.detail ?? 'failed'}` });
        }
        // Snapshots past the result budget: those changes go in a later batch.
        const missed = destructive.filter((c) => !(c.id in snapshots) && !unsnapped.has(c.id));
        if (unsnapped.size > 0) {
          for (const c of ready) if (!unsnapped.has(c.id)) record({ changeId: c.id, status: 'skipped', at: now(), detail: 'not started: a change of this stage failed, so the run stops and rolls back' });
          return;
        }
        queue.unshift(...missed);
        covered = ready.filter((c) => !missed.includes(c) && !unsnapped.has(c.id));
      }
      const request: BatchRequest = { role: 'apply-batch', ...base, changes: covered, snapshots };
      const out = await callActivity<ApplyBatchResult, BatchRequest>(batchDef.apply[action] as ActivityRef, 'apply-batch', request, id);
      const finished = new Set<string>();
      for (const r of out.results) {
        finished.add(r.changeId);
        const result: ChangeResult = { ...r, ...(r.changeId in snapshots ? { snapshotTaken: true } : {}) };
        if (r.status === 'applied' || r.status === 'already-done') appliedResults.set(r.changeId, result);
        if (r.status === 'failed') failed++;
        record(result);
      }
      const notStarted = new Set(out.notStarted ?? []);
      for (const change of covered) {
        if (finished.has(change.id)) continue;
        if (notStarted.has(change.id)) record({ changeId: change.id, status: 'skipped', at: now(), detail: 'not started: a change of this stage failed, so the run stops and rolls back' });
        else queue.unshift(change); // past the batch's result budget: in the next batch
      }
    } catch (err) {
      // The batch failed as a whole (its retries spent): what it had finished is on the failure.
      const done = new Map(batchCheckpoint(err).map((d) => [d.changeId, d.value]));
      const message = failureMessage(err);
      for (const change of covered) {
        const outcome = done.get(change.id);
        const snapshotTaken = change.id in snapshots ? { snapshotTaken: true } : {};
        if (outcome && (outcome.status === 'applied' || outcome.status === 'already-done' || outcome.status === 'left-alone')) {
          const result: ChangeResult = { changeId: change.id, status: outcome.status, at: now(), ...snapshotTaken, ...(outcome.detail ? { detail: outcome.detail } : {}), ...(outcome.observed !== undefined ? { observed: outcome.observed } : {}) };
          if (outcome.status !== 'left-alone') appliedResults.set(change.id, result);
          record(result);
        } else {
          failed++;
          record({ changeId: change.id, status: 'failed', at: now(), detail: `the batch failed: ${message}`, ...snapshotTaken });
        }
      }
    }
  };
  // Two batches at a time: each runs several changes at once inside, under the worker's per-account AWS limits.
  const lanes = Math.max(1, Math.min(2, Math.ceil(queue.length / size)));
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let batch = take(); batch.length > 0; batch = take()) {
        if (halted() || failed > 0 || CancellationScope.current().consideredCancelled) {
          const why = failed > 0 && !halted() ? 'not started: a change of this stage failed, so the run stops and rolls back' : 'the run was halted before this change';
          for (const change of [...batch, ...queue.splice(0)]) record({ changeId: change.id, status: 'skipped', at: now(), detail: why });
          return;
        }
        const next = batch;
        await CancellationScope.nonCancellable(() => runOne(next));
      }
    }),
  );
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('the run was cancelled during a stage');
  return failed;
}

/** Undo a batch of applied changes of one action; each change's result is recorded as for one change. */
async function undoBatch(batch: Change[], ref: ActivityRef, ctx: StageContext, stillApplied: Set<string>): Promise<void> {
  const { status, appliedResults } = ctx;
  const results: Record<string, ChangeResult> = {};
  for (const change of batch) results[change.id] = appliedResults.get(change.id) as ChangeResult;
  const request: BatchRequest = {
    role: 'rollback-batch',
    ...ctx.scope,
    action: (batch[0] as Change).action,
    changes: batch,
    results,
    protectedPrincipals: ctx.protectedPrincipals,
    budgetBytes: BOUNDS.batchBytes,
  };
  const rolledBack = (result: ChangeResult): void => {
    if (result.status === 'rolled-back') {
      status.progress.rolledBack++;
      stillApplied.delete(result.changeId);
    }
    status.results.push(result);
  };
  try {
    const out = await callActivity<ApplyBatchResult, BatchRequest>(ref, 'rollback-batch', request, `${(batch[0] as Change).id}+${batch.length}`);
    const byId = new Map(out.results.map((r) => [r.changeId, r]));
    for (const change of batch) {
      const r = byId.get(change.id);
      const at = new Date().toISOString();
      if (!r) rolledBack({ changeId: change.id, status: 'rollback-failed', at, detail: 'not undone: the rollback batch did not reach it' });
      else if (r.status === 'applied' || r.status === 'already-done') rolledBack({ ...r, status: 'rolled-back' });
      else if (r.status === 'left-alone') rolledBack({ ...r, status: 'rollback-failed', detail: `not undone: ${r.detail ?? 'the kind left it in place'}` });
      else rolledBack({ ...r, status: 'rollback-failed' });
    }
  } catch (err) {
    const done = new Map(batchCheckpoint(err).map((d) => [d.changeId, d.value]));
    for (const change of batch) {
      const outcome = done.get(change.id);
      const at = new Date().toISOString();
      if (outcome && outcome.status !== 'left-alone') rolledBack({ changeId: change.id, status: 'rolled-back', at, ...(outcome.detail ? { detail: outcome.detail } : {}), ...(outcome.observed !== undefined ? { observed: outcome.observed } : {}) });
      else rolledBack({ changeId: change.id, status: 'rollback-failed', at, detail: failureMessage(err) });
    }
  }
}
