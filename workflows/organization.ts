/**
 * An organization-wide run (docs/engine.md, "Organization-wide runs"): one kind in every selected
 * account, one consolidated plan, one approval. Each account is its own run — a child workflow
 * running the kind's usual workflow in that account, with its own plan, stages, soaks, re-checks,
 * rollback, verification and history (that account's evidence) — started a few at a time. Each
 * account's run reports its plan; this run seals one plan naming every account's plan digest and asks
 * for one approval of it; then it releases the accounts a few at a time. Each account's run confirms
 * the approval by asking this run, not by trusting the signal. A failure in one account stops no
 * other; a reject halts them all (each rolls back what it can).
 *
 * Deterministic code only, like every workflow.
 */
import type { ActivityOptions, ChildWorkflowHandle } from '@temporalio/workflow';
import {
  ApplicationFailure,
  ActivityFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { KIND_ATTRIBUTE, OUTCOME_ATTRIBUTE, PHASE_ATTRIBUTE } from '../common/search-attributes';
import type { Activities } from '../activities';
import type { PartitionRequest, PartitionResult } from '../common/requests';
import type { AccountPlanned, AccountRun, Outcome, OrganizationDecision, OrganizationInput, RemediationInput, RemediationStatus } from '../common/messages';
import { accountPlannedSignal, decideSignal, decideUpdate, detailsQuery, organizationDecisionSignal, organizationInputSchema, statusQuery } from '../common/messages';
import { KINDS, isKindName } from '../common/kinds';
import type { Json } from '../common/json';
import { ApprovalGate, sameIdentity } from './approval';
import { durationMs } from './durations';
import { boundedView, detailsPage, initialStatus } from './lifecycle';

const ENGINE: ActivityOptions = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
};

const DEFAULT_CONCURRENCY = 4;
/** Users (of what a kind changes) per part of a split account: about 2.6 MiB of plan, under BOUNDS.runPlanBytes. */
const DEFAULT_PART_SIZE = 2_000;

function failureMessage(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
}

export async function organizationRemediation(rawInput: OrganizationInput): Promise<RemediationStatus> {
  const info = workflowInfo();
  const checked = organizationInputSchema.safeParse(rawInput);
  const input = checked.success ? checked.data : { kind: 'unknown', accounts: '', params: {}, requestedBy: 'unknown' };
  const status: RemediationStatus = { ...initialStatus(input, info.workflowId), accounts: [] };
  const accounts = status.accounts as AccountRun[];
  const gate = new ApprovalGate(status);
  let fullPlan: RemediationStatus['plan'];
  setHandler(statusQuery, () => boundedView(status));
  setHandler(detailsQuery, (request) => detailsPage(request, status, fullPlan));
  setHandler(decideSignal, async (decision) => {
    await gate.decide(decision);
  });
  setHandler(decideUpdate, async (decision) => gate.decide(decision));
  const planned = new Map<string, AccountPlanned>();
  setHandler(accountPlannedSignal, (report) => {
    const run = accounts.find((a) => a.account === report?.account && a.workflowId === report?.workflowId);
    if (!run || planned.has(run.workflowId)) return; // only the runs this run started, once each
    planned.set(run.workflowId, report);
    run.phase = 'planned';
    run.digest = String(report.digest).slice(0, 64);
    run.changes = Number(report.changes) || 0;
  });

  // Phase in the memo and, on runs started with Countersign's search attributes, the phase attribute.
  const withAttributes = info.typedSearchAttributes.get(KIND_ATTRIBUTE) !== undefined;
  const phase = (p: RemediationStatus['phase']): void => {
    status.phase = p;
    upsertMemo({ phase: p });
    if (withAttributes) upsertSearchAttributes([{ key: PHASE_ATTRIBUTE, value: p }]);
  };
  const finish = async (outcome: Outcome, reason?: string): Promise<RemediationStatus> => {
    status.phase = 'done';
    status.outcome = outcome;
    status.outcomeReason = reason;
    status.finishedAt = new Date().toISOString();
    upsertMemo({ phase: 'done', outcome });
    if (withAttributes) {
      upsertSearchAttributes([
        { key: PHASE_ATTRIBUTE, value: 'done' },
        { key: OUTCOME_ATTRIBUTE, value: outcome },
      ]);
    }
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    return boundedView(status);
  };

  if (!checked.success) {
    const issue = checked.error.issues[0];
    return finish('failed', `invalid workflow input${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}; start runs with \`countersign start --accounts\``);
  }
  if (!isKindName(input.kind)) return finish('failed', `unknown kind "${input.kind}"`);
  const workflowType = KINDS[input.kind].workflowType;
  const children = new Map<string, { handle: ChildWorkflowHandle<(i: RemediationInput) => Promise<RemediationStatus>>; result: Promise<void> }>();

  try {
    const policy = await proxyActivities<Activities>({ ...ENGINE, activityId: 'policy' }).loadApprovalPolicy({ role: 'policy', kind: input.kind, dryRun: status.dryRun });
    status.policy = policy;
    phase('planning');
    const selection = await proxyActivities<Activities>({ ...ENGINE, activityId: 'target' }).resolveAccounts({ role: 'target', workflowId: info.workflowId, selector: input.accounts });
    const concurrency = input.concurrency ?? DEFAULT_CONCURRENCY;
    // An account too large for one run's history is split into parts by resource name, when the kind
    // can (docs/engine.md, "Parts"); each part is a run of its own under the same one approval.
    const partition = KINDS[input.kind].partition as (keyof Activities & string) | undefined;
    const partsOf = new Map<string, PartitionResult['parts']>();
    if (partition) {
      const queue = [...selection.accounts];
      await Promise.all(
        Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
          for (let a = queue.shift(); a; a = queue.shift()) {
            const account = a.account;
            const split = proxyActivities<Record<string, (r: PartitionRequest) => Promise<PartitionResult>>>({ ...ENGINE, activityId: `partition:${account}` })[partition] as (r: PartitionRequest) => Promise<PartitionResult>;
            // An account that cannot be read (its role cannot be assumed…) gets one run, which fails on
            // its own with the reason, as any account's run does.
            const parts = await split({ role: 'organization', workflowId: info.workflowId, account, region: '', kind: input.kind, params: input.params, maxPerPart: input.partSize ?? DEFAULT_PART_SIZE }).then(
              (r) => r.parts,
              () => [{}],
            );
            partsOf.set(account, parts);
          }
        }),
      );
    }
    for (const a of selection.accounts) {
      const parts = partsOf.get(a.account) ?? [{}];
      parts.forEach((range, i) => {
        const split = parts.length > 1;
        accounts.push({
          account: a.account,
          ...(a.name ? { name: a.name } : {}),
          ...(split ? { part: { number: i + 1, of: parts.length, ...range } } : {}),
          workflowId: split ? `${info.workflowId}/${a.account}/part-${i + 1}` : `${info.workflowId}/${a.account}`,
          phase: 'waiting',
        });
      });
    }

    /** An account's run, started now; its result lands on its AccountRun whenever it ends. */
    const launch = async (run: AccountRun): Promise<void> => {
      run.phase = 'planning';
      const childInput: RemediationInput = {
        kind: input.kind,
        account: run.account,
        params: input.params,
        requestedBy: input.requestedBy,
        ...(input.dryRun ? { dryRun: true } : {}),
        organization: { parentWorkflowId: info.workflowId },
        ...(run.part ? { part: run.part } : {}),
      };
      const handle = await startChild<(i: RemediationInput) => Promise<RemediationStatus>>(workflowType, {
        workflowId: run.workflowId,
        args: [childInput],
        // Cancelling the organization run cancels each account's run, which rolls back what it can.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        memo: { kind: input.kind, requestedBy: input.requestedBy, account: run.account, dryRun: status.dryRun, phase: 'starting', organization: info.workflowId },
      });
      const result = handle.result().then(
        (final) => {
          run.phase = 'done';
          run.outcome = final.outcome;
          run.outcomeReason = final.outcomeReason;
          run.progress = final.progress;
        },
        (err: unknown) => {
          run.phase = 'done';
          run.outcome = isCancellation(err) ? 'cancelled' : 'failed';
          run.outcomeReason = failureMessage(err);
        },
      );
      children.set(run.workflowId, { handle, result });
    };
    const settled = (run: AccountRun) => run.phase === 'planned' || run.phase === 'done';
    /** The verdict, to an account's run; one that has ended meanwhile (expired, failed, cancelled) is past telling. */
    const tell = async (run: AccountRun, decision: OrganizationDecision): Promise<void> => {
      if (run.phase === 'done') return;
      await children.get(run.workflowId)?.handle.signal(organizationDecisionSignal, decision).catch((err: unknown) => {
        if (run.phase !== 'done') log.warn('could not tell an account run the verdict', { account: run.account, error: failureMessage(err) });
      });
    };

    // Plan: a few accounts at a time; each holds once planned, until the verdict.
    for (const run of accounts) {
      await condition(() => accounts.filter((a) => a.phase === 'planning').length < concurrency);
      await launch(run);
    }
    await condition(() => accounts.every(settled));

    const ready = accounts.filter((a) => a.phase === 'planned');
    const ended = accounts.filter((a) => a.phase === 'done');
    if (ready.length === 0) return finish(...rollUp(accounts, status));

    // One plan for all: each account's plan digest, sealed into the digest an approver approves.
    const summaries = ready.map((a) => ({
      account: a.account,
      ...(a.name ? { name: a.name } : {}),
      ...(a.part ? { part: { number: a.part.number, of: a.part.of } } : {}),
      workflowId: a.workflowId,
      digest: a.digest as string,
      changes: a.changes ?? 0,
      leftAlone: planned.get(a.workflowId)?.leftAlone ?? 0,
    }));
    const notes = [
      `${ready.length} account(s) to change, ${ended.length} with nothing to approve (${ended.map((a) => `${a.account}: ${a.outcome}`).slice(0, 20).join(', ')})`,
      ...selection.skipped.map((s) => `${s.account} left out: ${s.reason}`),
    ];
    // Under the activity id `plan`, where evidence finds a run's plan.
    const plan = await proxyActivities<Activities>({ ...ENGINE, activityId: 'plan' }).sealOrganizationPlan({
      role: 'organization',
      kind: input.kind,
      region: '',
      params: input.params as Record<string, Json>,
      organizationId: selection.organizationId,
      managementAccount: selection.managementAccount,
      accounts: summaries,
      notes,
    });
    fullPlan = plan;
    status.plan = plan;
    status.progress.total = summaries.reduce((n, s) => n + s.changes, 0);

    // The gate, as for one account: separation of duties, quorum, the window.
    const eligible = policy.approvers.filter((a) => !sameIdentity(a, input.requestedBy));
    let verdict: { decision: 'approve' } | { decision: 'reject'; reason: string };
    if (eligible.length < policy.quorum) {
      verdict = { decision: 'reject', reason: `the policy needs ${policy.quorum} approval(s) but lists only ${eligible.length} approver(s) other than the requester` };
    } else {
      const timeoutMs = durationMs(policy.approvalTimeout);
      status.expiresAt = new Date(Date.now() + timeoutMs).toISOString();
      phase('awaiting-approval');
      const decided = await condition(() => gate.approved || gate.rejected !== undefined, timeoutMs);
      const rejected = gate.rejected;
      verdict = rejected
        ? { decision: 'reject', reason: `rejected by ${rejected.approver}${rejected.comment ? ` (${rejected.comment})` : ''}` }
        : decided
          ? { decision: 'approve' }
          : { decision: 'reject', reason: `no quorum of approvals before ${status.expiresAt}` };
    }
    if (verdict.decision === 'reject') {
      const reason = verdict.reason;
      await Promise.all(ready.map((a) => tell(a, { decision: 'reject', reason })));
      await Promise.all([...children.values()].map((c) => c.result));
      const outcome: Outcome = gate.rejected ? 'rejected' : eligible.length < policy.quorum ? 'failed' : 'expired';
      return finish(outcome, reason);
    }

    // Released a few at a time; a failure in one account stops no other. A reject from now on halts all.
    phase('applying');
    let halted: string | undefined;
    const halt = (): void => {
      const r = gate.rejected;
      if (!r || halted) return;
      halted = `halted by ${r.approver}${r.comment ? ` (${r.comment})` : ''}`;
      for (const a of accounts) if (a.phase === 'applying' || a.phase === 'planned') void tell(a, { decision: 'reject', reason: halted });
    };
    for (const run of ready) {
      await condition(() => gate.rejected !== undefined || accounts.filter((a) => a.phase === 'applying').length < concurrency);
      halt();
      if (halted) break;
      run.phase = 'applying';
      await tell(run, { decision: 'approve', digest: plan.digest });
    }
    await condition(() => {
      halt();
      return accounts.every((a) => a.phase === 'done');
    });
    await Promise.all([...children.values()].map((c) => c.result));
    return finish(...rollUp(accounts, status, halted));
  } catch (err) {
    if (isCancellation(err)) {
      // Each account's run is cancelled with this one (REQUEST_CANCEL) and rolls back on its own.
      await CancellationScope.nonCancellable(() => Promise.all([...children.values()].map((c) => c.result)));
      return finish('cancelled', 'the organization run was cancelled; each account run rolled back what it could');
    }
    if (err instanceof ApplicationFailure || err instanceof ActivityFailure) return finish('failed', failureMessage(err));
    throw err;
  }
}

/** The organization's outcome from its accounts': completed only when every account completed (or had nothing to do). */
function rollUp(accounts: AccountRun[], status: RemediationStatus, halted?: string): [Outcome, string] {
  const p = status.progress;
  p.applied = p.leftAlone = p.skipped = p.failed = p.rolledBack = 0;
  for (const a of accounts) {
    p.applied += a.progress?.applied ?? 0;
    p.leftAlone += a.progress?.leftAlone ?? 0;
    p.skipped += a.progress?.skipped ?? 0;
    p.failed += a.progress?.failed ?? 0;
    p.rolledBack += a.progress?.rolledBack ?? 0;
  }
  const by = (outcomes: Outcome[]) => accounts.filter((a) => a.outcome !== undefined && outcomes.includes(a.outcome));
  const good = by(status.dryRun ? ['completed', 'no-op', 'planned'] : ['completed', 'no-op']);
  const bad = accounts.filter((a) => !good.includes(a));
  const summary = `${good.length} of ${accounts.length} account(s) completed or had nothing to change`;
  const detail = bad.slice(0, 5).map((a) => `${a.account} ${a.outcome ?? 'unfinished'}${a.outcomeReason ? `: ${a.outcomeReason}` : ''}`).join('; ');
  const more = bad.length > 5 ? `; and ${bad.length - 5} more` : '';
  if (halted) return ['rolled-back', `${halted}; ${summary}${detail ? `; ${detail}${more}` : ''}`];
  if (bad.length === 0 && status.dryRun) return ['planned', `dry run: ${summary}; nothing was submitted for approval`];
  if (bad.length === 0) return [good.some((a) => a.outcome === 'completed') ? 'completed' : 'no-op', summary];
  return ['failed', `${summary}; ${detail}${more}`];
}
