/**
 * Workflow history → the change evidence record (`countersign evidence`). Everything comes from the
 * history itself — the start input, the policy and plan activity results, every decide signal as it
 * arrived, and the final result — so an auditor can re-derive it with `temporal workflow show`.
 */
import type { temporal } from '@temporalio/proto';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { planDigestMatches } from '../common/digest';
import { KINDS, isKindName } from '../common/kinds';
import type { RemediationInput, RemediationStatus } from '../common/messages';
import type { ChangeResult, Plan } from '../common/plan';
import type { EffectivePolicy } from '../common/policy';

type History = temporal.api.history.v1.IHistory;
type Payloads = temporal.api.common.v1.IPayloads | null | undefined;

export interface SignalEvidence {
  eventId: number;
  at: string;
  name: string;
  /** The identity of the client that sent it (as the Temporal server recorded it). */
  sentBy: string;
  payload: unknown;
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
  plan: (Plan & { digestVerified: boolean }) | undefined;
  signals: SignalEvidence[];
  decisions: RemediationStatus['decisions'];
  refused: RemediationStatus['refused'];
  approvedBy: string[];
  /** Each change's result, with the snapshot recorded in history before a destructive change. */
  results: (ChangeResult & { snapshot?: unknown })[];
  verification: RemediationStatus['verification'];
  outcome: RemediationStatus['outcome'];
  outcomeReason: string | undefined;
  /** Activity failures recorded in history (each attempt that failed for good). */
  failures: { eventId: number; at: string; activity: string; message: string }[];
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
  const scheduled = new Map<number, { name: string; input: unknown }>();
  const snapshots = new Map<string, unknown>();
  let input: RemediationInput | undefined;
  let type = '';
  let taskQueue = '';
  let startedAt = '';
  let startedBy = '';
  let closedAt: string | undefined;
  let policy: EffectivePolicy | undefined;
  let plan: Plan | undefined;
  let final: RemediationStatus | undefined;
  const signals: SignalEvidence[] = [];
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
      scheduled.set(id, { name: a.activityType?.name ?? '', input: decode(a.input) });
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const activity = scheduled.get(Number(a.scheduledEventId ?? 0));
      const result = decode(a.result);
      if (activity?.name === 'loadApprovalPolicy') policy = result as EffectivePolicy;
      else if (activity?.name.startsWith('plan')) plan = result as Plan;
      else if (activity?.name.startsWith('snapshot')) {
        const changeId = (activity.input as { change?: { id?: string } } | undefined)?.change?.id;
        if (changeId) snapshots.set(changeId, result);
      }
    } else if (e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskFailedEventAttributes;
      failures.push({ eventId: id, at, activity: scheduled.get(Number(a.scheduledEventId ?? 0))?.name ?? '', message: a.failure?.message ?? '' });
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      signals.push({ eventId: id, at, name: a.signalName ?? '', sentBy: a.identity ?? '', payload: decode(a.input) });
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
  return {
    evidenceFormat: 'countersign.evidence/v1',
    generatedAt: now.toISOString(),
    workflow: { ...meta, type, taskQueue, startedAt, closedAt, historyEvents: events.length, state: closedAt ? 'closed' : 'running' },
    kind,
    controls: isKindName(kind) ? KINDS[kind].controls : [],
    requestedBy: input?.requestedBy ?? '',
    startedBy,
    input,
    policy,
    plan: plan ? { ...plan, digestVerified: planDigestMatches(plan) } : undefined,
    signals,
    decisions: final?.decisions ?? [],
    refused: final?.refused ?? [],
    approvedBy: (final?.decisions ?? []).filter((d) => d.decision === 'approve').map((d) => d.approver),
    // The snapshot belongs on the result of the change it preceded (not on a later rollback row), and a
    // null snapshot (the resource was already gone) is not a record of anything.
    results: (final?.results ?? []).map((r) =>
      r.snapshotTaken && snapshots.get(r.changeId) != null ? { ...r, snapshot: snapshots.get(r.changeId) } : r,
    ),
    verification: final?.verification,
    outcome: final?.outcome,
    outcomeReason: final?.outcomeReason,
    failures,
  };
}
