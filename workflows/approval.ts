/**
 * The approval gate (docs/design.md §1.3): decisions name a plan digest; the gate refuses — and records why —
 * a decision from the requester, from someone outside the policy, for another digest, after expiry,
 * a duplicate, or one that arrives when nothing awaits a decision. Quorum counts distinct approvers.
 * A reject is accepted from a policy approver or from the requester (withdrawing their own request),
 * while awaiting approval or during apply (it halts the run and rolls back what is reversible).
 */
import type { DecideReply, DecideSignal, RecordedDecision, RefusalReason, RefusedDecision, RemediationStatus } from '../common/messages';
import { DECISION_LIMITS, parseDecideSignal } from '../common/messages';

/** A field of a malformed decision, kept only as far as a well-formed one could be: state stays bounded. */
function clipped(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length > max ? `${value.slice(0, max)}… (${value.length} characters)` : value;
}

/**
 * People's names compare without regard to case or surrounding space: "Dana" and "dana" are one
 * person for separation of duties and for quorum.
 */
export function sameIdentity(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * Refusals kept in the run's state (status query, result). Every decision is in history anyway, as
 * the signal or update that carried it; past this many, refusals are counted rather than listed, so
 * nobody can grow the state past Temporal's limits by sending decisions.
 */
export const REFUSALS_LISTED = 50;

export class ApprovalGate {
  /** Keyed by the lower-cased approver name. */
  private readonly approvals = new Map<string, RecordedDecision>();
  private rejection: RecordedDecision | undefined;

  constructor(private readonly status: RemediationStatus) {}

  get approved(): boolean {
    const quorum = this.status.policy?.quorum ?? Number.POSITIVE_INFINITY;
    return this.approvals.size >= quorum;
  }

  get rejected(): RecordedDecision | undefined {
    return this.rejection;
  }

  /** Take a decision (from the signal or the update), record it accepted or refused, and say which. */
  receive(raw: unknown): DecideReply {
    const status = this.status;
    const seq = ++status.decisionsReceived;
    const at = new Date().toISOString();
    const reply = (reason?: RefusalReason, message?: string): DecideReply => ({
      accepted: reason === undefined,
      seq,
      ...(reason ? { reason, message } : {}),
      phase: status.phase,
      approvals: this.approvals.size,
      ...(status.policy ? { quorum: status.policy.quorum } : {}),
    });
    const parsed = parseDecideSignal(raw);
    if (typeof parsed === 'string') {
      const r = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
      const message = `malformed decision: ${parsed}`;
      this.keepRefusal({
        seq,
        at,
        decision: clipped(r.decision, 16),
        approver: clipped(r.approver, DECISION_LIMITS.approver),
        planDigest: clipped(r.planDigest, 64),
        reason: 'malformed',
        message,
      });
      return reply('malformed', message);
    }
    const verdict: { refusal?: { reason: RefusalReason; message: string } } = {};
    this.judge(parsed, seq, at, (reason, message) => {
      this.keepRefusal({ seq, at, ...parsed, reason, message });
      verdict.refusal = { reason, message };
    });
    return verdict.refusal ? reply(verdict.refusal.reason, verdict.refusal.message) : reply();
  }

  private keepRefusal(refusal: RefusedDecision): void {
    if (this.status.refused.length < REFUSALS_LISTED) this.status.refused.push(refusal);
    else this.status.refusedNotListed = (this.status.refusedNotListed ?? 0) + 1;
  }

  private judge(parsed: DecideSignal, seq: number, at: string, refuse: (reason: RefusalReason, message: string) => void): void {
    const status = this.status;
    const { plan, policy } = status;
    const applyingPhases = ['applying', 'soaking'];
    if (!plan || !policy || (status.phase !== 'awaiting-approval' && !applyingPhases.includes(status.phase))) {
      refuse(
        'not-awaiting-decision',
        status.outcome
          ? `the run has ended (${status.outcome}); nothing awaits a decision`
          : `nothing awaits a decision in phase "${status.phase}"${status.dryRun ? ' (a dry run is never approved)' : ''}`,
      );
      return;
    }
    if (parsed.planDigest !== plan.digest) {
      refuse('wrong-digest', `the decision names plan ${parsed.planDigest.slice(0, 12)}… but the plan is ${plan.digest.slice(0, 12)}…; review the current plan and use its digest`);
      return;
    }
    const isApprover = policy.approvers.some((a) => sameIdentity(a, parsed.approver));
    const isRequester = sameIdentity(parsed.approver, status.requestedBy);
    const approverKey = parsed.approver.trim().toLowerCase();
    const expired = status.expiresAt !== undefined && Date.now() >= Date.parse(status.expiresAt);

    if (parsed.decision === 'approve') {
      if (status.phase !== 'awaiting-approval') {
        refuse('not-awaiting-decision', 'the plan is already approved and being applied');
      } else if (expired) {
        refuse('expired', `the approval window closed at ${status.expiresAt}`);
      } else if (isRequester) {
        refuse('requester-cannot-approve', `${parsed.approver} requested this run and cannot approve it (separation of duties); ask another approver`);
      } else if (!isApprover) {
        refuse('not-an-approver', `${parsed.approver} is not an approver for ${status.kind} in ${policy.source}; approvers: ${policy.approvers.join(', ') || '(none)'}`);
      } else if (this.approvals.has(approverKey)) {
        refuse('duplicate', `${parsed.approver} has already approved this plan; quorum needs distinct approvers`);
      } else {
        const accepted = { ...parsed, seq, at };
        this.approvals.set(approverKey, accepted);
        status.decisions.push(accepted);
      }
      return;
    }

    if (!isApprover && !isRequester) {
      refuse('not-an-approver', `${parsed.approver} is neither an approver for ${status.kind} nor the requester, so cannot reject it`);
    } else if (this.rejection) {
      refuse('duplicate', `the run was already rejected by ${this.rejection.approver}`);
    } else if (status.phase === 'awaiting-approval' && expired) {
      refuse('expired', `the approval window closed at ${status.expiresAt}`);
    } else {
      this.rejection = { ...parsed, seq, at };
      status.decisions.push(this.rejection);
    }
  }
}
