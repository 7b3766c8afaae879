/**
 * The approval gate (DESIGN §1.3): decisions name a plan digest; the gate refuses — and records why —
 * a decision from the requester, from someone outside the policy, for another digest, after expiry,
 * a duplicate, or one that arrives when nothing awaits a decision. Quorum counts distinct approvers.
 * A reject is accepted from a policy approver or from the requester (withdrawing their own request),
 * while awaiting approval or during apply (it halts the run and rolls back what is reversible).
 */
import type { RecordedDecision, RefusalReason, RemediationStatus } from '../common/messages';
import { parseDecideSignal } from '../common/messages';

/**
 * People's names compare without regard to case or surrounding space: "Dana" and "dana" are one
 * person for separation of duties and for quorum.
 */
export function sameIdentity(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

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

  receive(raw: unknown): void {
    const status = this.status;
    const seq = ++status.decisionsReceived;
    const at = new Date().toISOString();
    const parsed = parseDecideSignal(raw);
    if (typeof parsed === 'string') {
      const r = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
      status.refused.push({
        seq,
        at,
        decision: typeof r.decision === 'string' ? r.decision : undefined,
        approver: typeof r.approver === 'string' ? r.approver : undefined,
        planDigest: typeof r.planDigest === 'string' ? r.planDigest : undefined,
        reason: 'malformed',
        message: `malformed decision: ${parsed}`,
      });
      return;
    }
    const refuse = (reason: RefusalReason, message: string): void => {
      status.refused.push({ seq, at, ...parsed, reason, message });
    };
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
