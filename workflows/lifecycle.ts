/**
 * The engine every remediation runs (DESIGN §1): load policy → plan → approval gate → stages with
 * soaks, snapshots and drift re-checks → verify → outcome. A kind supplies its activities through a
 * RemediationDefinition; the engine never changes when a kind is added.
 *
 * Deterministic code only: no I/O, no Node APIs. Every side effect is an activity.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Outcome, Phase, RemediationInput, RemediationStatus } from '../common/messages';
import { decideSignal, statusQuery } from '../common/messages';
import type { Change, ChangeOutcome, ChangeResult, Plan, Stage, VerifyResult } from '../common/plan';
import type { ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../common/requests';
import type { Json } from '../common/json';
import { ApprovalGate, sameIdentity } from './approval';
import { durationMs } from './durations';

export interface RemediationDefinition {
  plan(request: PlanRequest): Promise<Plan>;
  /** Full snapshot of a resource before a destructive change (it lands in history). */
  snapshot?(request: ChangeRequest): Promise<Json>;
  apply: Record<string, (request: ChangeRequest) => Promise<ChangeOutcome>>;
  rollback?: Record<string, (request: RollbackRequest) => Promise<ChangeOutcome>>;
  verify(request: VerifyRequest): Promise<VerifyResult>;
}

const { loadApprovalPolicy } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
});

const DEFAULT_CONCURRENCY = 4;

/** Move to a phase; the memo mirrors it so `countersign list` needs no query per run. */
function enterPhase(status: RemediationStatus, phase: Phase): void {
  if (status.phase === phase) return;
  status.phase = phase;
  if (phase !== 'done') upsertMemo({ phase });
}

export async function runRemediation(input: RemediationInput, def: RemediationDefinition): Promise<RemediationStatus> {
  const info = workflowInfo();
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
  setHandler(statusQuery, () => status);
  setHandler(decideSignal, (decision) => gate.receive(decision));

  const finish = (outcome: Outcome, reason?: string): RemediationStatus => {
    enterPhase(status, 'done');
    status.outcome = outcome;
    status.outcomeReason = reason;
    status.stage = undefined;
    status.soakUntil = undefined;
    status.finishedAt = new Date().toISOString();
    upsertMemo({ phase: 'done', outcome });
    log.info('remediation finished', { workflowId: info.workflowId, kind: input.kind, outcome, reason });
    return status;
  };

  const appliedResults = new Map<string, ChangeResult>();
  try {
    status.policy = await loadApprovalPolicy({ kind: input.kind, dryRun: status.dryRun });
    enterPhase(status, 'planning');
    const plan = await def.plan({
      kind: input.kind,
      workflowId: info.workflowId,
      account: input.account,
      params: input.params,
      requestedBy: input.requestedBy,
      policy: status.policy,
    });
    status.plan = plan;
    status.progress.total = plan.changes.length;

    if (plan.changes.length === 0) return finish('no-op', 'nothing to change');
    if (status.dryRun) return finish('planned', 'dry run: the plan was not submitted for approval');
    if (plan.changes.length > status.policy.maxChanges) {
      return finish(
        'failed',
        `the plan has ${plan.changes.length} changes, over the policy's maxChanges of ${status.policy.maxChanges}; narrow the scope (parameters) or raise maxChanges`,
      );
    }

    // The approval gate. Fail fast when the quorum cannot be met without the requester.
    const eligible = status.policy.approvers.filter((a) => !sameIdentity(a, input.requestedBy));
    if (eligible.length < status.policy.quorum) {
      return finish(
        'failed',
        `the policy needs ${status.policy.quorum} approval(s) but only ${eligible.length} approver(s) other than the requester ${input.requestedBy} are listed in ${status.policy.source}`,
      );
    }
    const timeoutMs = durationMs(status.policy.approvalTimeout);
    status.expiresAt = new Date(Date.now() + timeoutMs).toISOString();
    enterPhase(status, 'awaiting-approval');
    const decided = await condition(() => gate.approved || rejection() !== undefined, timeoutMs);
    if (rejection()) {
      return finish('rejected', `rejected by ${byWhom()}`);
    }
    if (!decided) return finish('expired', `no quorum of approvals before ${status.expiresAt}`);

    // Apply, stage by stage.
    const target = { workflowId: info.workflowId, account: plan.account, region: plan.region };
    const protectedPrincipals = status.policy.protectedPrincipals;
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
        await rollBack(plan, def, status, appliedResults, target);
        return finish('rolled-back', `halted by ${byWhom()} before stage "${stage.name}"`);
      }
      enterPhase(status, 'applying');
      status.stage = stage.name;
      const failed = await runStage(stage, plan, def, status, appliedResults, { ...target, protectedPrincipals }, () => rejection() !== undefined);
      if (failed > 0 || rejection()) {
        await rollBack(plan, def, status, appliedResults, target);
        if (rejection()) return finish('rolled-back', `halted by ${byWhom()} during stage "${stage.name}"`);
        return finish('failed', `${failed} change(s) failed in stage "${stage.name}"; ${status.progress.rolledBack} reversible change(s) rolled back`);
      }
    }

    enterPhase(status, 'verifying');
    status.stage = undefined;
    const applied = plan.changes
      .filter((c) => appliedResults.has(c.id))
      .map((change) => ({ change, result: appliedResults.get(change.id) as ChangeResult }));
    status.verification = await def.verify({ ...target, applied });
    if (!status.verification.ok) {
      const bad = status.verification.checks.filter((c) => !c.ok).map((c) => `${c.changeId}: ${c.detail}`);
      return finish('failed', `verification failed: ${bad.join('; ')}`);
    }
    return finish('completed');
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        const plan = status.plan;
        if (plan) await rollBack(plan, def, status, appliedResults, { workflowId: info.workflowId, account: plan.account, region: plan.region });
      });
      return finish('cancelled', `the workflow was cancelled; ${status.progress.rolledBack} reversible change(s) rolled back`);
    }
    // An activity that failed for good outside a stage (policy, plan, verify): the run fails with the
    // reason in its result, rather than failing the workflow task and looking stuck.
    const message = err instanceof Error ? err.message : String(err);
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    if (err instanceof ApplicationFailure || err instanceof ActivityFailure) {
      return finish('failed', `${message}${cause}`);
    }
    throw err;
  }
}

async function runStage(
  stage: Stage,
  plan: Plan,
  def: RemediationDefinition,
  status: RemediationStatus,
  appliedResults: Map<string, ChangeResult>,
  target: Omit<ChangeRequest, 'change'>,
  halted: () => boolean,
): Promise<number> {
  const queue = plan.changes.filter((c) => c.stage === stage.name);
  let failed = 0;
  const record = (result: ChangeResult): void => {
    status.results.push(result);
    const p = status.progress;
    if (result.status === 'applied' || result.status === 'already-done') p.applied++;
    else if (result.status === 'left-alone') p.leftAlone++;
    else if (result.status === 'skipped') p.skipped++;
    else if (result.status === 'failed') p.failed++;
  };
  const runOne = async (change: Change): Promise<void> => {
    const unmet = (change.dependsOn ?? []).filter((id) => !appliedResults.has(id));
    if (unmet.length > 0) {
      const why = unmet.map((id) => `${id} ${status.results.find((r) => r.changeId === id)?.status ?? 'not applied'}`);
      record({ changeId: change.id, status: 'skipped', at: new Date().toISOString(), detail: `depends on ${why.join(', ')}` });
      return;
    }
    const apply = def.apply[change.action];
    if (!apply) {
      failed++;
      record({ changeId: change.id, status: 'failed', at: new Date().toISOString(), detail: `no activity applies action "${change.action}"` });
      return;
    }
    if (change.destructive && !def.snapshot) {
      failed++;
      record({ changeId: change.id, status: 'failed', at: new Date().toISOString(), detail: 'a destructive change needs a snapshot first, and this kind defines none' });
      return;
    }
    let snapshot: Json | undefined;
    try {
      // The snapshot is an activity result of its own, so it is in history before anything is destroyed.
      if (change.destructive && def.snapshot) snapshot = await def.snapshot({ ...target, change });
      const outcome = await apply({ ...target, change, ...(snapshot !== undefined ? { snapshot } : {}) });
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
      const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      record({ changeId: change.id, status: 'failed', at: new Date().toISOString(), detail: message, ...(snapshot !== undefined ? { snapshotTaken: true } : {}) });
    }
  };
  // A change, once started, runs to its end even if the run is cancelled: cancelling an AWS call
  // half-way would leave a change done but unrecorded. Cancellation and halts take effect between changes.
  const workers = Array.from({ length: Math.max(1, Math.min(stage.concurrency ?? DEFAULT_CONCURRENCY, queue.length)) }, async () => {
    for (let change = queue.shift(); change; change = queue.shift()) {
      if (halted() || CancellationScope.current().consideredCancelled) {
        record({ changeId: change.id, status: 'skipped', at: new Date().toISOString(), detail: 'the run was halted before this change' });
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
 * Undo, newest first, every applied reversible change that no applied change depends on
 * (undoing a disable under a deleted user would be meaningless).
 */
async function rollBack(
  plan: Plan,
  def: RemediationDefinition,
  status: RemediationStatus,
  appliedResults: Map<string, ChangeResult>,
  target: { workflowId: string; account: string; region: string },
): Promise<void> {
  const dependedOn = new Set(
    plan.changes.filter((c) => appliedResults.has(c.id)).flatMap((c) => c.dependsOn ?? []),
  );
  const undo = plan.changes
    .filter((c) => c.reversible && appliedResults.has(c.id) && !dependedOn.has(c.id))
    .reverse();
  if (undo.length === 0) return;
  enterPhase(status, 'rolling-back');
  // A rollback is never abandoned half-way: a cancel arriving now takes effect after it.
  await CancellationScope.nonCancellable(() => undoAll(undo, def, status, appliedResults, target));
}

async function undoAll(
  undo: Change[],
  def: RemediationDefinition,
  status: RemediationStatus,
  appliedResults: Map<string, ChangeResult>,
  target: { workflowId: string; account: string; region: string },
): Promise<void> {
  for (const change of undo) {
    const result = appliedResults.get(change.id) as ChangeResult;
    const rollback = def.rollback?.[change.action];
    const at = new Date().toISOString();
    if (!rollback) {
      status.results.push({ changeId: change.id, status: 'rollback-failed', at, detail: `no rollback for action "${change.action}"` });
      continue;
    }
    try {
      const outcome = await rollback({ ...target, change, result });
      status.results.push({ changeId: change.id, status: 'rolled-back', at: new Date().toISOString(), ...(outcome.detail ? { detail: outcome.detail } : {}), ...(outcome.observed !== undefined ? { observed: outcome.observed } : {}) });
      status.progress.rolledBack++;
    } catch (err) {
      const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      status.results.push({ changeId: change.id, status: 'rollback-failed', at: new Date().toISOString(), detail: message });
    }
  }
}
