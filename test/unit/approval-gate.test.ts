import type { RemediationStatus } from '../../common/messages';
import type { Plan } from '../../common/plan';
import { ApprovalGate, REFUSALS_LISTED } from '../../workflows/approval';

const DIGEST = 'd'.repeat(64);

function awaiting(overrides: Partial<RemediationStatus> = {}): RemediationStatus {
  return {
    kind: 'stale-iam-users',
    workflowId: 'stale-iam-users/123456789012',
    phase: 'awaiting-approval',
    requestedBy: 'riley',
    dryRun: false,
    startedAt: new Date().toISOString(),
    policy: {
      kind: 'stale-iam-users',
      source: 'policy.json',
      approvers: ['dana', 'sam', 'riley'],
      quorum: 2,
      approvalTimeout: '1h',
      protectedPrincipals: [],
      maxChanges: 200,
    },
    plan: { digest: DIGEST } as Plan,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    decisions: [],
    refused: [],
    decisionsReceived: 0,
    progress: { total: 2, applied: 0, leftAlone: 0, skipped: 0, failed: 0, rolledBack: 0 },
    results: [],
    ...overrides,
  };
}

const approve = (approver: string, planDigest = DIGEST) => ({ decision: 'approve', approver, planDigest });

describe('the approval gate', () => {
  it('needs the quorum of distinct approvers', () => {
    const status = awaiting();
    const gate = new ApprovalGate(status);
    gate.receive(approve('dana'));
    expect(gate.approved).toBe(false);
    gate.receive(approve('dana'));
    expect(status.refused.at(-1)).toMatchObject({ reason: 'duplicate', approver: 'dana' });
    expect(gate.approved).toBe(false);
    gate.receive(approve('sam'));
    expect(gate.approved).toBe(true);
    expect(status.decisions.map((d) => d.approver)).toEqual(['dana', 'sam']);
    expect(status.decisionsReceived).toBe(3);
  });

  it('refuses an approval from the requester even when they are a listed approver, and records why', () => {
    const status = awaiting();
    const gate = new ApprovalGate(status);
    gate.receive(approve('riley'));
    expect(status.decisions).toEqual([]);
    expect(status.refused).toEqual([
      expect.objectContaining({ reason: 'requester-cannot-approve', approver: 'riley', seq: 1, message: expect.stringMatching(/separation of duties/) }),
    ]);
  });

  it('treats names that differ only in case as one person, for separation of duties and for quorum', () => {
    const status = awaiting();
    const gate = new ApprovalGate(status);
    gate.receive(approve(' Riley '));
    gate.receive(approve('DANA'));
    gate.receive(approve('dana'));
    expect(status.refused.map((r) => r.reason)).toEqual(['requester-cannot-approve', 'duplicate']);
    expect(gate.approved).toBe(false);
    gate.receive(approve('Sam'));
    expect(gate.approved).toBe(true);
  });

  it('refuses someone outside the policy, another digest, and a malformed payload', () => {
    const status = awaiting();
    const gate = new ApprovalGate(status);
    gate.receive(approve('mallory'));
    gate.receive(approve('dana', 'e'.repeat(64)));
    gate.receive({ decision: 'approve', approver: 'dana' });
    gate.receive('yes');
    expect(status.refused.map((r) => r.reason)).toEqual(['not-an-approver', 'wrong-digest', 'malformed', 'malformed']);
    expect(status.refused[2]?.message).toMatch(/planDigest/);
    expect(gate.approved).toBe(false);
  });

  it('refuses approvals after the window closes', () => {
    const status = awaiting({ expiresAt: new Date(Date.now() - 1).toISOString() });
    const gate = new ApprovalGate(status);
    gate.receive(approve('dana'));
    expect(status.refused[0]).toMatchObject({ reason: 'expired' });
  });

  it('refuses decisions when nothing awaits one (planning, dry run, finished)', () => {
    for (const overrides of [{ phase: 'planning' as const, plan: undefined }, { phase: 'done' as const, outcome: 'planned' as const, dryRun: true }]) {
      const status = awaiting(overrides);
      new ApprovalGate(status).receive(approve('dana'));
      expect(status.refused[0]).toMatchObject({ reason: 'not-awaiting-decision' });
    }
  });

  it('accepts a reject from the requester or an approver, once, also during a soak', () => {
    const status = awaiting({ phase: 'soaking' });
    const gate = new ApprovalGate(status);
    gate.receive({ decision: 'reject', approver: 'mallory', planDigest: DIGEST });
    expect(gate.rejected).toBeUndefined();
    gate.receive({ decision: 'reject', approver: 'riley', planDigest: DIGEST, comment: 'stop' });
    expect(gate.rejected).toMatchObject({ approver: 'riley', comment: 'stop' });
    gate.receive({ decision: 'reject', approver: 'dana', planDigest: DIGEST });
    expect(status.refused.map((r) => r.reason)).toEqual(['not-an-approver', 'duplicate']);
  });

  it('refuses an approval once the plan is being applied', () => {
    const status = awaiting({ phase: 'applying' });
    new ApprovalGate(status).receive(approve('dana'));
    expect(status.refused[0]).toMatchObject({ reason: 'not-awaiting-decision' });
  });

  it('refuses oversized fields, and keeps its state bounded whatever arrives', () => {
    const status = awaiting();
    const gate = new ApprovalGate(status);
    const huge = 'x'.repeat(1_000_000);
    const reply = gate.receive({ decision: 'approve', approver: 'dana', planDigest: DIGEST, comment: huge });
    expect(reply).toMatchObject({ accepted: false, reason: 'malformed', message: 'malformed decision: comment must be at most 2000 characters' });
    gate.receive({ decision: 'approve', approver: huge, planDigest: DIGEST });
    for (let i = 0; i < 500; i++) gate.receive({ decision: 'approve', approver: `outsider-${i}`, planDigest: DIGEST, comment: 'y'.repeat(2_000) });
    expect(status.refused).toHaveLength(REFUSALS_LISTED);
    expect(status.refusedNotListed).toBe(502 - REFUSALS_LISTED);
    // The stored approver of the 1 MB one is clipped; the whole state stays small.
    expect(status.refused[1]?.approver?.length).toBeLessThan(400);
    expect(JSON.stringify(status).length).toBeLessThan(200_000);
    // And a valid approval still counts.
    expect(gate.receive(approve('dana'))).toMatchObject({ accepted: true, approvals: 1, quorum: 2 });
  });
});
