/**
 * The approval gate (docs/design.md §1.3): decisions name a plan digest; the gate refuses — and records why —
 * a decision from the requester, from someone outside the policy, for another digest, after expiry,
 * a duplicate, or one that arrives when nothing awaits a decision. Quorum counts distinct approvers.
 * A reject is accepted from a policy approver or from the requester (withdrawing their own request),
 * while awaiting approval or during apply (it halts the run and rolls back what is reversible).
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ProofBinding, ProofVerdict, VerifyProofRequest } from '../activities/approver-proof';
import type { ApproverProof, DecideReply, DecideSignal, RecordedDecision, RefusalReason, RefusedDecision, RemediationStatus } from '../common/messages';
import { DECISION_LIMITS, parseDecideSignal } from '../common/messages';
import { approverMatches, iamPrincipalOf } from '../common/policy';

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

/**
 * Signatures of verified proofs kept to refuse a proof used twice. A proof is accepted only within
 * 15 minutes of its signing, so a signature older than 20 minutes is dropped; past this many in that
 * window, further proofs are refused until older ones age out (state stays bounded, fail closed).
 */
export const USED_PROOFS_KEPT = 1_000;
const USED_PROOF_HORIZON_MS = 20 * 60_000;

/** Re-sends a proof to STS (the `verifyApproverProof` activity in a workflow; a stub in unit tests). */
export type ProofVerifier = (request: VerifyProofRequest, seq: number) => Promise<ProofVerdict>;

/** The workflow's verifier: one activity per proof, under an id that says which decision it is for. */
const verifyWithActivity: ProofVerifier = (request, seq) => {
  const { verifyApproverProof } = proxyActivities<{ verifyApproverProof(r: VerifyProofRequest): Promise<ProofVerdict> }>({
    activityId: `approver-proof:${seq}`,
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
  });
  return verifyApproverProof(request);
};

const thisRun = (): Omit<ProofBinding, 'planDigest'> => {
  const info = workflowInfo();
  return { workflowId: info.workflowId, runId: info.runId };
};

/**
 * Whether a verified caller is the requester (separation of duties by principal): the same IAM
 * principal as a requester named by ARN (any session of the same role counts as that role), or —
 * fail closed — a user or session whose name is the requester's plain name.
 */
export function isRequesterPrincipal(callerArn: string, requestedBy: string): boolean {
  const requester = requestedBy.trim();
  if (/^arn:/i.test(requester)) return sameIdentity(iamPrincipalOf(requester), iamPrincipalOf(callerArn)) || sameIdentity(requester, callerArn);
  return sameIdentity(callerArn.split('/').pop() ?? '', requester);
}

type Refuse = (reason: RefusalReason, message: string) => void;

export class ApprovalGate {
  /** Keyed by the lower-cased approver name. */
  private readonly approvals = new Map<string, RecordedDecision>();
  private rejection: RecordedDecision | undefined;
  /** SHA-256 of each verified proof's signature → when it was signed (ms). */
  private readonly usedProofs = new Map<string, number>();

  constructor(
    private readonly status: RemediationStatus,
    private readonly verify: ProofVerifier = verifyWithActivity,
    private readonly run: () => Omit<ProofBinding, 'planDigest'> = thisRun,
  ) {}

  get approved(): boolean {
    const quorum = this.status.policy?.quorum ?? Number.POSITIVE_INFINITY;
    return this.approvals.size >= quorum;
  }

  get rejected(): RecordedDecision | undefined {
    return this.rejection;
  }

  /**
   * The handlers' entry point. A name-only decision under a name-only policy is judged at once
   * (synchronously: no command is added to the history of such runs). A decision carrying a proof, or
   * any decision when the policy requires one, is judged after its proof is verified.
   */
  decide(raw: unknown): DecideReply | Promise<DecideReply> {
    const hasProof = !!raw && typeof raw === 'object' && (raw as { proof?: unknown }).proof !== undefined;
    if (!hasProof && this.status.policy?.identity !== 'aws-sts') return this.receive(raw);
    return this.receiveWithProof(raw);
  }

  /** Take a name-only decision, record it accepted or refused, and say which. */
  receive(raw: unknown): DecideReply {
    const taken = this.take(raw);
    if ('refused' in taken) return taken.refused;
    const { parsed, seq, at, reply } = taken;
    const verdict: { refusal?: { reason: RefusalReason; message: string } } = {};
    const refuse: Refuse = (reason, message) => {
      this.keepRefusal(refusalOf(parsed, seq, at, reason, message));
      verdict.refusal = { reason, message };
    };
    if (parsed.proof !== undefined) refuse('proof-unverifiable', 'a decision with a proof must be verified first');
    else if (this.status.policy?.identity === 'aws-sts' && !this.stateRefusal(parsed, refuse)) refuse('proof-required', proofRequiredMessage(this.status.policy.source));
    else this.judge(parsed, seq, at, refuse);
    return verdict.refusal ? reply(verdict.refusal.reason, verdict.refusal.message) : reply();
  }

  /** Take a decision whose approver must be proven: verify its proof, then judge it as the verified ARN. */
  private async receiveWithProof(raw: unknown): Promise<DecideReply> {
    const taken = this.take(raw);
    if ('refused' in taken) return taken.refused;
    const { parsed, seq, at, reply } = taken;
    const proven: { arn?: string } = {};
    const verdict: { refusal?: { reason: RefusalReason; message: string } } = {};
    const refuse: Refuse = (reason, message) => {
      this.keepRefusal({ ...refusalOf(parsed, seq, at, reason, message), ...(proven.arn ? { verifiedArn: proven.arn } : {}) });
      verdict.refusal = { reason, message };
    };
    const done = () => (verdict.refusal ? reply(verdict.refusal.reason, verdict.refusal.message) : reply());
    // What needs no proof is refused before STS is asked anything.
    if (this.stateRefusal(parsed, refuse)) return done();
    if (!parsed.proof) {
      refuse('proof-required', proofRequiredMessage(this.status.policy?.source ?? 'the policy'));
      return done();
    }
    const checked = await this.verifyProof(parsed.proof, parsed.planDigest, seq);
    if (!checked.ok) {
      refuse(checked.reason, checked.message);
      return done();
    }
    proven.arn = checked.arn;
    this.pruneUsedProofs();
    if (this.usedProofs.has(checked.signatureSha256)) {
      refuse('proof-replayed', `this proof (signed by ${checked.arn}) was already used for a decision of this run; sign a new one`);
      return done();
    }
    if (this.usedProofs.size >= USED_PROOFS_KEPT) {
      refuse('proof-unverifiable', `more than ${USED_PROOFS_KEPT} proofs were used in the last 20 minutes; try again later`);
      return done();
    }
    this.usedProofs.set(checked.signatureSha256, Date.parse(checked.signedAt));
    // The state may have moved while STS answered: judge afresh, as the verified principal.
    this.judge(parsed, seq, at, refuse, checked.arn);
    return done();
  }

  private async verifyProof(proof: ApproverProof, planDigest: string, seq: number): Promise<ProofVerdict | { ok: false; reason: RefusalReason; message: string }> {
    try {
      return await this.verify({ proof, binding: { ...this.run(), planDigest } }, seq);
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      return { ok: false, reason: 'proof-unverifiable', message: `the proof could not be verified with STS: ${cause.slice(0, 500)}` };
    }
  }

  private pruneUsedProofs(): void {
    const horizon = Date.now() - USED_PROOF_HORIZON_MS;
    for (const [hash, signedAt] of this.usedProofs) if (signedAt < horizon) this.usedProofs.delete(hash);
  }

  /** Number the decision and parse it; a malformed one is refused and recorded here. */
  private take(raw: unknown):
    | { refused: DecideReply }
    | { parsed: DecideSignal; seq: number; at: string; reply: (reason?: RefusalReason, message?: string) => DecideReply } {
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
      return { refused: reply('malformed', message) };
    }
    return { parsed, seq, at, reply };
  }

  private keepRefusal(refusal: RefusedDecision): void {
    if (this.status.refused.length < REFUSALS_LISTED) this.status.refused.push(refusal);
    else this.status.refusedNotListed = (this.status.refusedNotListed ?? 0) + 1;
  }

  /** Refusals that do not depend on who decides: nothing awaits a decision, or another digest. */
  private stateRefusal(parsed: DecideSignal, refuse: Refuse): boolean {
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
      return true;
    }
    if (parsed.planDigest !== plan.digest) {
      refuse('wrong-digest', `the decision names plan ${parsed.planDigest.slice(0, 12)}… but the plan is ${plan.digest.slice(0, 12)}…; review the current plan and use its digest`);
      return true;
    }
    return false;
  }

  /**
   * The rules, for a decision by `verifiedArn` (a proof was verified) or by its claimed name. A verified
   * principal matches ARN entries of the policy only, is the requester when it is the requester's
   * principal, and counts once per IAM principal towards quorum (sessions of one role are one approver).
   */
  private judge(parsed: DecideSignal, seq: number, at: string, refuse: Refuse, verifiedArn?: string): void {
    const status = this.status;
    if (this.stateRefusal(parsed, refuse)) return;
    const policy = status.policy as NonNullable<RemediationStatus['policy']>;
    const approver = verifiedArn ?? parsed.approver ?? '';
    const isApprover = verifiedArn ? policy.approvers.some((a) => approverMatches(a, verifiedArn)) : policy.approvers.some((a) => sameIdentity(a, approver));
    const isRequester = verifiedArn ? isRequesterPrincipal(verifiedArn, status.requestedBy) : sameIdentity(approver, status.requestedBy);
    const approverKey = (verifiedArn ? iamPrincipalOf(verifiedArn) : approver).trim().toLowerCase();
    const expired = status.expiresAt !== undefined && Date.now() >= Date.parse(status.expiresAt);
    const record = (): RecordedDecision => ({
      decision: parsed.decision,
      approver,
      planDigest: parsed.planDigest,
      ...(parsed.comment !== undefined ? { comment: parsed.comment } : {}),
      ...(verifiedArn ? { verifiedArn } : {}),
      ...(verifiedArn && parsed.approver && !sameIdentity(parsed.approver, verifiedArn) ? { claimedAs: parsed.approver } : {}),
      seq,
      at,
    });

    if (parsed.decision === 'approve') {
      if (status.phase !== 'awaiting-approval') {
        refuse('not-awaiting-decision', 'the plan is already approved and being applied');
      } else if (expired) {
        refuse('expired', `the approval window closed at ${status.expiresAt}`);
      } else if (isRequester) {
        refuse('requester-cannot-approve', `${approver} requested this run and cannot approve it (separation of duties); ask another approver`);
      } else if (!isApprover) {
        refuse('not-an-approver', `${approver} is not an approver for ${status.kind} in ${policy.source}; approvers: ${policy.approvers.join(', ') || '(none)'}`);
      } else if (this.approvals.has(approverKey)) {
        refuse('duplicate', `${approver} has already approved this plan; quorum needs distinct approvers`);
      } else {
        const accepted = record();
        this.approvals.set(approverKey, accepted);
        status.decisions.push(accepted);
      }
      return;
    }

    if (!isApprover && !isRequester) {
      refuse('not-an-approver', `${approver} is neither an approver for ${status.kind} nor the requester, so cannot reject it`);
    } else if (this.rejection) {
      refuse('duplicate', `the run was already rejected by ${this.rejection.approver}`);
    } else if (status.phase === 'awaiting-approval' && expired) {
      refuse('expired', `the approval window closed at ${status.expiresAt}`);
    } else {
      this.rejection = record();
      status.decisions.push(this.rejection);
    }
  }
}

function proofRequiredMessage(source: string): string {
  return `${source} requires approvers to prove their AWS identity: decide with \`countersign approve|reject --sign\` (a signed sts:GetCallerIdentity proof), not a name`;
}

/** A refused decision as kept in state: never its proof (it is in history, as the message that carried it). */
function refusalOf(parsed: DecideSignal, seq: number, at: string, reason: RefusalReason, message: string): RefusedDecision {
  return {
    seq,
    at,
    decision: parsed.decision,
    ...(parsed.approver !== undefined ? { approver: parsed.approver } : {}),
    planDigest: parsed.planDigest,
    ...(parsed.comment !== undefined ? { comment: parsed.comment } : {}),
    reason,
    message,
  };
}
