/**
 * Workflow history → the change evidence record (`countersign evidence`). Everything comes from the
 * history itself — the start input, the policy and plan activity results, every decide signal as it
 * arrived, and the final result — so an auditor can re-derive it with `temporal workflow show`.
 */
import type { temporal } from '@temporalio/proto';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { pagesMatch, planDigestMatches } from '../common/digest';
import { isKindName, kindSpec } from '../common/kinds';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { ChangeResult, Plan, PlanPage } from '../common/plan';
import { assemblePlan } from '../common/plan';
import type { ApplyBatchResult, SnapshotBatchResult } from '../common/requests';
import type { EffectivePolicy } from '../common/policy';
import type { ActivityRole, TargetInfo } from '../common/requests';

type History = temporal.api.history.v1.IHistory;
type Payloads = temporal.api.common.v1.IPayloads | null | undefined;

/** A message as the Temporal server recorded it: a `decide` signal, or a `decide` update and its answer. */
export interface MessageEvidence {
  eventId: number;
  at: string;
  via: 'signal' | 'update';
  name: string;
  /** The identity of the client that sent it (as the Temporal server recorded it). */
  sentBy: string;
  payload: unknown;
  /** An update's answer (accepted, or refused with the reason), from its completion event. */
  reply?: unknown;
}

export interface EvidenceRecord {
  evidenceFormat: 'countersign.evidence/v1';
  generatedAt: string;
  workflow: {
    namespace: string;
    workflowId: string;
    runId: string;
    type: string;
    taskQueue: string;
    startedAt: string;
    closedAt?: string;
    historyEvents: number;
    state: 'running' | 'closed';
  };
  kind: string;
  controls: string[];
  requestedBy: string;
  startedBy: string;
  input: RemediationInput | undefined;
  policy: EffectivePolicy | undefined;
  /** The account acted in, and the assumed role and session name when it is not the worker's own. */
  target: TargetInfo | undefined;
  plan: (Plan & { digestVerified: boolean }) | undefined;
  /** Every decision received, in order, whether by signal or by update. */
  messages: MessageEvidence[];
  decisions: RemediationStatus['decisions'];
  refused: RemediationStatus['refused'];
  refusedNotListed?: number;
  approvedBy: string[];
  /** How each accepted decision's approver is known: `verified as <arn>` (STS verified a proof) or `unverified (name only)`. */
  approverIdentity?: { seq: number; approver: string; identity: string }[];
  /** Each change's result, with the snapshot recorded in history before a destructive change. */
  results: (ChangeResult & { snapshot?: unknown })[];
  verification: RemediationStatus['verification'];
  outcome: RemediationStatus['outcome'];
  outcomeReason: string | undefined;
  /** Activity failures recorded in history (each attempt that failed for good). */
  failures: { eventId: number; at: string; activity: string; role?: ActivityRole; changeId?: string; message: string }[];
}

const ROLES: readonly ActivityRole[] = ['policy', 'target', 'plan', 'snapshot', 'apply', 'rollback', 'verify', 'notify', 'snapshot-batch', 'apply-batch', 'rollback-batch'];

/** The engine's mark on an activity id: `plan`, `snapshot:<changeId>`, … (workflows/lifecycle.ts callActivity). */
export function activityRole(activityId: string): { role?: ActivityRole; changeId?: string } {
  const colon = activityId.indexOf(':');
  const role = (colon < 0 ? activityId : activityId.slice(0, colon)) as ActivityRole;
  if (!ROLES.includes(role)) return {};
  return colon < 0 ? { role } : { role, changeId: activityId.slice(colon + 1) };
}

function decode(payloads: Payloads): unknown {
  const first = payloads?.payloads?.[0];
  return first ? defaultPayloadConverter.fromPayload(first) : undefined;
}

function iso(ts: Parameters<typeof tsToMs>[0]): string {
  return new Date(tsToMs(ts)).toISOString();
}

export function buildEvidence(
  history: History,
  meta: { namespace: string; workflowId: string; runId: string },
  options: { now?: Date; /** The status query's answer, for a run still in progress. */ live?: RemediationStatus } = {},
): EvidenceRecord {
  const now = options.now ?? new Date();
  const events = history.events ?? [];
  const scheduled = new Map<number, { name: string; role?: ActivityRole; changeId?: string }>();
  const snapshots = new Map<string, unknown>();
  let input: RemediationInput | undefined;
  let type = '';
  let taskQueue = '';
  let startedAt = '';
  let startedBy = '';
  let closedAt: string | undefined;
  let policy: EffectivePolicy | undefined;
  let target: TargetInfo | undefined;
  const pages: PlanPage[] = [];
  // Results carried by batch activities: a large run's result lists only its newest (docs/engine.md, "Bounds").
  const batchResults: ChangeResult[] = [];
  let final: RemediationStatus | undefined;
  const messages: MessageEvidence[] = [];
  const updates = new Map<number, MessageEvidence>();
  const failures: EvidenceRecord['failures'] = [];

  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const at = iso(e.eventTime);
    if (e.workflowExecutionStartedEventAttributes) {
      const a = e.workflowExecutionStartedEventAttributes;
      input = decode(a.input) as RemediationInput;
      type = a.workflowType?.name ?? '';
      taskQueue = a.taskQueue?.name ?? '';
      startedAt = at;
      startedBy = a.identity ?? '';
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      scheduled.set(id, { name: a.activityType?.name ?? '', ...activityRole(a.activityId ?? '') });
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const activity = scheduled.get(Number(a.scheduledEventId ?? 0));
      const result = decode(a.result);
      // By the role the engine marked on the activity id, never by the kind's activity names.
      if (activity?.role === 'policy') policy = result as EffectivePolicy;
      else if (activity?.role === 'target') target = result as TargetInfo;
      else if (activity?.role === 'plan') pages.push(result as PlanPage);
      else if (activity?.role === 'snapshot' && activity.changeId) snapshots.set(activity.changeId, result);
      else if (activity?.role === 'snapshot-batch') for (const s of (result as SnapshotBatchResult).snapshots ?? []) snapshots.set(s.changeId, s.snapshot);
      else if (activity?.role === 'apply-batch') {
        // The snapshot batch before it is already in history: mark the results it covers, as the run does.
        for (const r of (result as ApplyBatchResult).results ?? []) batchResults.push(snapshots.get(r.changeId) != null ? { ...r, snapshotTaken: true } : r);
      }
      else if (activity?.role === 'rollback-batch') {
        for (const r of (result as ApplyBatchResult).results ?? []) batchResults.push({ ...r, status: r.status === 'applied' || r.status === 'already-done' ? 'rolled-back' : 'rollback-failed' });
      }
    } else if (e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskFailedEventAttributes;
      const activity = scheduled.get(Number(a.scheduledEventId ?? 0));
      failures.push({ eventId: id, at, activity: activity?.name ?? '', ...(activity?.role ? { role: activity.role } : {}), ...(activity?.changeId ? { changeId: activity.changeId } : {}), message: a.failure?.message ?? '' });
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      messages.push({ eventId: id, at, via: 'signal', name: a.signalName ?? '', sentBy: a.identity ?? '', payload: decode(a.input) });
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const request = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      const message: MessageEvidence = { eventId: id, at, via: 'update', name: request?.input?.name ?? '', sentBy: request?.meta?.identity ?? '', payload: decode(request?.input?.args) };
      messages.push(message);
      updates.set(id, message);
    } else if (e.workflowExecutionUpdateCompletedEventAttributes) {
      const a = e.workflowExecutionUpdateCompletedEventAttributes;
      const message = updates.get(Number(a.acceptedEventId ?? 0));
      if (message) message.reply = a.outcome?.success ? decode(a.outcome.success) : { failure: a.outcome?.failure?.message ?? 'failed' };
    } else if (e.workflowExecutionCompletedEventAttributes) {
      final = decode(e.workflowExecutionCompletedEventAttributes.result) as RemediationStatus;
      closedAt = at;
    } else if (
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes ||
      e.workflowExecutionTimedOutEventAttributes ||
      e.workflowExecutionCanceledEventAttributes
    ) {
      closedAt = at;
    }
  }

  const kind = input?.kind ?? '';
  final ??= options.live;
  const plan: Plan | undefined = pages.length > 0 ? assemblePlan(pages) : undefined;
  // A plan of one page is checked as it always was; pages are checked each, and along their chain.
  const digestVerified = plan ? (pages.length === 1 ? planDigestMatches(plan) : pagesMatch(pages, plan.digest)) : false;
  // Every result the run listed, and those only batch activities still carry (the run's result lists
  // the newest when there are many): one row per change and status, the run's own row first.
  const listedResults = final?.results ?? [];
  const seen = new Set(listedResults.map((r) => `${r.changeId}\u0000${r.status}`));
  const fromBatches = final?.resultsNotListed ? batchResults.filter((r) => !seen.has(`${r.changeId}\u0000${r.status}`)) : [];
  const allResults = [...fromBatches, ...listedResults];
  return {
    evidenceFormat: 'countersign.evidence/v1',
    generatedAt: now.toISOString(),
    workflow: { ...meta, type, taskQueue, startedAt, closedAt, historyEvents: events.length, state: closedAt ? 'closed' : 'running' },
    kind,
    controls: isKindName(kind) ? kindSpec(kind).controls : [],
    requestedBy: input?.requestedBy ?? '',
    startedBy,
    input,
    policy,
    target,
    plan: plan ? { ...plan, digestVerified } : undefined,
    messages,
    decisions: final?.decisions ?? [],
    refused: final?.refused ?? [],
    ...(final?.refusedNotListed ? { refusedNotListed: final.refusedNotListed } : {}),
    approvedBy: (final?.decisions ?? []).filter((d) => d.decision === 'approve').map((d) => d.approver),
    approverIdentity: (final?.decisions ?? []).map((d) => ({ seq: d.seq, approver: d.approver, identity: approverIdentity(d) })),
    // The snapshot belongs on the result of the change it preceded (not on a later rollback row), and a
    // null snapshot (the resource was already gone) is not a record of anything.
    results: allResults.map((r) =>
      r.snapshotTaken && snapshots.get(r.changeId) != null ? { ...r, snapshot: snapshots.get(r.changeId) } : r,
    ),
    verification: final?.verification,
    outcome: final?.outcome,
    outcomeReason: final?.outcomeReason,
    failures,
  };
}

/** `verified as <arn>` when the decision's proof was verified with STS, else `unverified (name only)`. */
export function approverIdentity(decision: { verifiedArn?: string }): string {
  return decision.verifiedArn ? `verified as ${decision.verifiedArn}` : 'unverified (name only)';
}
