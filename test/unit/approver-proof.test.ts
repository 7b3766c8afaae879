/**
 * Proven approver identity without a network: the proof's binding, age and destination checks, STS's
 * answer read (including a refused signature — moto never checks signatures, so that case lives here),
 * the gate's replay set and rules on the verified ARN, and the schema's bounds.
 */
import type { ApproverProof, RemediationStatus } from '../../common/messages';
import { DECISION_LIMITS, parseDecideSignal } from '../../common/messages';
import type { Plan } from '../../common/plan';
import { approverMatches, effectivePolicy, parseApprovalPolicy } from '../../common/policy';
import type { ProofBinding, ProofVerdict, VerifyProofRequest } from '../../activities/approver-proof';
import { BINDING_HEADERS, checkProof, createApproverProofActivities, proofDestination, signApproverProof, signatureSha256 } from '../../activities/approver-proof';
import { ApprovalGate, isRequesterPrincipal, USED_PROOFS_KEPT } from '../../workflows/approval';

const DIGEST = 'd'.repeat(64);
const BINDING: ProofBinding = { workflowId: 'stale-iam-users/123456789012/x', runId: 'run-1', planDigest: DIGEST };
const DANA = 'arn:aws:iam::123456789012:user/dana';
const KEYS = { accessKeyId: 'AKIAEXAMPLEDANA', secretAccessKey: 'secret' };

const sign = (binding: ProofBinding = BINDING, extra: { systemClockOffset?: number; endpoint?: string } = {}) =>
  signApproverProof(binding, { region: 'us-east-1', credentials: KEYS, ...extra });

describe('signing a proof', () => {
  it('signs, never sends, a GetCallerIdentity request whose signed headers bind the run and digest', async () => {
    const proof = await sign();
    expect(proof.method).toBe('POST');
    expect(proof.url).toBe('https://sts.us-east-1.amazonaws.com/');
    expect(proof.body).toBe('Action=GetCallerIdentity&Version=2011-06-15');
    const signed = /SignedHeaders=([^,]+)/.exec(proof.headers.authorization ?? '')?.[1]?.split(';') ?? [];
    for (const h of [...Object.values(BINDING_HEADERS), 'host', 'x-amz-date']) expect(signed).toContain(h);
    expect(proof.headers[BINDING_HEADERS.runId]).toBe('run-1');
    expect(proof.headers['user-agent']).toBeUndefined(); // unsigned headers are left out
    expect(JSON.stringify(proof).length).toBeLessThan(DECISION_LIMITS.proofBytes);
  });
});

describe('checking a proof', () => {
  const now = () => new Date();
  it('accepts a fresh proof for this run and digest', async () => {
    const checked = checkProof(await sign(), BINDING, now(), {});
    expect(checked).toMatchObject({ ok: true });
  });

  it('refuses a proof bound to another run, workflow or digest', async () => {
    const proof = await sign();
    expect(checkProof(proof, { ...BINDING, runId: 'run-2' }, now(), {})).toMatchObject({ ok: false, reason: 'proof-binding' });
    expect(checkProof(proof, { ...BINDING, workflowId: 'other' }, now(), {})).toMatchObject({ ok: false, reason: 'proof-binding' });
    expect(checkProof(proof, { ...BINDING, planDigest: 'e'.repeat(64) }, now(), {})).toMatchObject({ ok: false, reason: 'proof-binding' });
  });

  it('refuses a binding header that is missing or not signed', async () => {
    const proof = await sign();
    const without = { ...proof, headers: { ...proof.headers } };
    delete without.headers[BINDING_HEADERS.planDigest];
    expect(checkProof(without, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-binding' });
    const unsigned: ApproverProof = {
      ...proof,
      headers: { ...proof.headers, authorization: (proof.headers.authorization ?? '').replace(`;${BINDING_HEADERS.runId}`, '') },
    };
    expect(checkProof(unsigned, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-binding', message: expect.stringMatching(/not signed/) });
  });

  it('refuses a proof signed more than 15 minutes ago (or ahead)', async () => {
    const old = await sign(BINDING, { systemClockOffset: -20 * 60_000 });
    expect(checkProof(old, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-expired' });
    const ahead = await sign(BINDING, { systemClockOffset: 20 * 60_000 });
    expect(checkProof(ahead, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-expired' });
    const recent = await sign(BINDING, { systemClockOffset: -10 * 60_000 });
    expect(checkProof(recent, BINDING, now(), {})).toMatchObject({ ok: true });
  });

  it('refuses anything but an exact GetCallerIdentity POST', async () => {
    const proof = await sign();
    expect(checkProof({ ...proof, body: 'Action=AssumeRole&Version=2011-06-15' }, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-invalid' });
    expect(checkProof({ ...proof, method: 'GET' }, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-invalid' });
    expect(checkProof({ ...proof, headers: { ...proof.headers, authorization: 'Basic x' } }, BINDING, now(), {})).toMatchObject({ ok: false, reason: 'proof-invalid' });
  });

  it('sends only to STS hosts, or to the configured endpoint', () => {
    expect(proofDestination('https://sts.amazonaws.com/', {})).toMatchObject({ ok: true });
    expect(proofDestination('https://sts.eu-west-1.amazonaws.com/', {})).toMatchObject({ ok: true });
    expect(proofDestination('https://sts-fips.us-gov-west-1.amazonaws.com/', {})).toMatchObject({ ok: true });
    for (const bad of [
      'https://evil.example.com/',
      'https://sts.amazonaws.com.evil.example/',
      'https://sts.s3.amazonaws.com/', // an S3 bucket named "sts" is not STS
      'https://sts.us-east-1.amazonaws.com:8443/',
      'http://sts.us-east-1.amazonaws.com/',
      'https://sts.us-east-1.amazonaws.com/path',
      'https://sts.us-east-1.amazonaws.com/?Action=AssumeRole',
      'https://user:pw@sts.us-east-1.amazonaws.com/',
      'not a url',
    ]) {
      expect(proofDestination(bad, {})).toMatchObject({ ok: false, reason: 'proof-invalid' });
    }
    const moto = { endpoint: 'http://127.0.0.1:5000' };
    expect(proofDestination('http://127.0.0.1:5000/', moto)).toMatchObject({ ok: true });
    // With an endpoint configured, nothing else (not even real STS) is a destination.
    expect(proofDestination('https://sts.us-east-1.amazonaws.com/', moto)).toMatchObject({ ok: false });
    expect(proofDestination('http://127.0.0.1:5001/', moto)).toMatchObject({ ok: false });
  });

  it('refuses a signed Host that is not the URL host', async () => {
    const proof = await sign();
    expect(checkProof({ ...proof, url: 'https://sts.eu-west-1.amazonaws.com/' }, BINDING, new Date(), {})).toMatchObject({ ok: false, reason: 'proof-invalid' });
  });
});

describe('the verifyApproverProof activity', () => {
  const aws = { settings: { region: 'us-east-1', maxAttempts: 1, accountRole: 'r' } };
  const ok = `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>${DANA}</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`;

  it("returns the ARN STS answers, and the signature's SHA-256", async () => {
    const send = jest.fn().mockResolvedValue({ status: 200, body: ok });
    const { verifyApproverProof } = createApproverProofActivities({ aws, send });
    const proof = await sign();
    const verdict = await verifyApproverProof({ proof, binding: BINDING });
    expect(verdict).toMatchObject({ ok: true, arn: DANA, account: '123456789012' });
    const signature = /Signature=([0-9a-f]{64})/.exec(proof.headers.authorization ?? '')?.[1] as string;
    expect(verdict.ok && verdict.signatureSha256).toBe(signatureSha256(signature));
    expect(String(send.mock.calls[0][0])).toBe('https://sts.us-east-1.amazonaws.com/');
  });

  it('refuses an invalid signature (a mocked STS answer: moto does not check signatures)', async () => {
    const body = '<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>';
    const { verifyApproverProof } = createApproverProofActivities({ aws, send: jest.fn().mockResolvedValue({ status: 403, body }) });
    await expect(verifyApproverProof({ proof: await sign(), binding: BINDING })).resolves.toMatchObject({ ok: false, reason: 'proof-invalid', message: expect.stringMatching(/SignatureDoesNotMatch/) });
  });

  it('throws (Temporal retries) when STS cannot answer, and never sends a refused proof', async () => {
    const { verifyApproverProof } = createApproverProofActivities({ aws, send: jest.fn().mockResolvedValue({ status: 503, body: '' }) });
    await expect(verifyApproverProof({ proof: await sign(), binding: BINDING })).rejects.toThrow(/503/);
    const send = jest.fn();
    const other = createApproverProofActivities({ aws, send });
    await expect(other.verifyApproverProof({ proof: await sign(), binding: { ...BINDING, runId: 'x' } })).resolves.toMatchObject({ ok: false, reason: 'proof-binding' });
    expect(send).not.toHaveBeenCalled();
  });
});

function awaiting(overrides: Partial<RemediationStatus> = {}): RemediationStatus {
  return {
    kind: 'stale-iam-users',
    workflowId: BINDING.workflowId,
    phase: 'awaiting-approval',
    requestedBy: 'arn:aws:iam::123456789012:user/riley',
    dryRun: false,
    startedAt: new Date().toISOString(),
    policy: {
      kind: 'stale-iam-users',
      source: 'policy.json',
      approvers: [DANA, 'arn:aws:iam::123456789012:role/Approvers', 'arn:aws:iam::123456789012:user/riley'],
      quorum: 2,
      approvalTimeout: '1h',
      protectedPrincipals: [],
      maxChanges: 200,
      identity: 'aws-sts',
    },
    plan: { digest: DIGEST } as Plan,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    decisions: [],
    refused: [],
    decisionsReceived: 0,
    progress: { total: 1, applied: 0, leftAlone: 0, skipped: 0, failed: 0, rolledBack: 0 },
    results: [],
    ...overrides,
  };
}

/** A stub STS: the proof's "signature" header names the ARN it verifies as. */
function stubGate(status: RemediationStatus, verdict?: (r: VerifyProofRequest) => ProofVerdict | Promise<ProofVerdict>) {
  const calls: VerifyProofRequest[] = [];
  const verify = async (r: VerifyProofRequest): Promise<ProofVerdict> => {
    calls.push(r);
    if (verdict) return verdict(r);
    return { ok: true, arn: r.proof.headers['x-test-arn'] ?? DANA, account: '123456789012', userId: 'AIDA', signatureSha256: signatureSha256(r.proof.headers['x-test-sig'] ?? 'sig'), signedAt: new Date().toISOString() };
  };
  return { gate: new ApprovalGate(status, verify, () => ({ workflowId: BINDING.workflowId, runId: BINDING.runId })), calls };
}

const proofAs = (arn: string, sig: string): ApproverProof => ({ method: 'POST', url: 'https://sts.amazonaws.com/', headers: { 'x-test-arn': arn, 'x-test-sig': sig }, body: '' });

describe('the approval gate with proofs', () => {
  it('approves as the verified ARN, binding the verification to this run and the decision digest', async () => {
    const status = awaiting();
    const { gate, calls } = stubGate(status);
    const reply = await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's1') });
    expect(reply).toMatchObject({ accepted: true });
    expect(calls[0]?.binding).toEqual(BINDING);
    expect(status.decisions[0]).toMatchObject({ approver: DANA, verifiedArn: DANA });
    expect(JSON.stringify(status)).not.toMatch(/x-test-sig/); // the proof stays out of state
  });

  it('refuses a proof used twice', async () => {
    const status = awaiting();
    const { gate } = stubGate(status);
    await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's1') });
    const again = await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's1') });
    expect(again).toMatchObject({ accepted: false, reason: 'proof-replayed' });
    expect(status.refused.at(-1)).toMatchObject({ reason: 'proof-replayed', verifiedArn: DANA });
  });

  it('keeps the replay set bounded, failing closed when full', async () => {
    const status = awaiting({ policy: { ...awaiting().policy!, approvers: ['arn:aws:iam::123456789012:user/*'], quorum: USED_PROOFS_KEPT + 5 } });
    const { gate } = stubGate(status);
    for (let i = 0; i < USED_PROOFS_KEPT; i++) await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(`arn:aws:iam::123456789012:user/u${i}`, `s${i}`) });
    const over = await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs('arn:aws:iam::123456789012:user/late', 'late') });
    expect(over).toMatchObject({ accepted: false, reason: 'proof-unverifiable' });
  });

  it('refuses a missing proof, and a name-only decision, when the policy requires proof', async () => {
    const status = awaiting();
    const { gate, calls } = stubGate(status);
    expect(await gate.decide({ decision: 'approve', approver: DANA, planDigest: DIGEST })).toMatchObject({ accepted: false, reason: 'proof-required' });
    expect(gate.receive({ decision: 'approve', approver: DANA, planDigest: DIGEST })).toMatchObject({ accepted: false, reason: 'proof-required' });
    expect(calls).toHaveLength(0);
  });

  it('refuses wrong digests and finished runs before asking STS', async () => {
    const { gate, calls } = stubGate(awaiting());
    expect(await gate.decide({ decision: 'approve', planDigest: 'e'.repeat(64), proof: proofAs(DANA, 's') })).toMatchObject({ reason: 'wrong-digest' });
    const done = stubGate(awaiting({ phase: 'done', outcome: 'expired' }));
    expect(await done.gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's') })).toMatchObject({ reason: 'not-awaiting-decision' });
    expect(calls).toHaveLength(0);
  });

  it("passes on the activity's verdict, and refuses when STS cannot be reached", async () => {
    const bad = stubGate(awaiting(), () => ({ ok: false, reason: 'proof-expired', message: 'old' }));
    expect(await bad.gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's') })).toMatchObject({ reason: 'proof-expired' });
    const down = stubGate(awaiting(), () => {
      throw new Error('activity failed', { cause: new Error('connect ECONNREFUSED') });
    });
    expect(await down.gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 's') })).toMatchObject({ reason: 'proof-unverifiable', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('refuses a verified principal outside the policy, and the requester by principal', async () => {
    const status = awaiting();
    const { gate } = stubGate(status);
    expect(await gate.decide({ decision: 'approve', approver: DANA, planDigest: DIGEST, proof: proofAs('arn:aws:iam::123456789012:user/mallory', 'm') })).toMatchObject({ reason: 'not-an-approver' });
    // Claiming dana's name does not help mallory: the verified ARN is the approver.
    expect(status.refused.at(-1)).toMatchObject({ approver: DANA, verifiedArn: 'arn:aws:iam::123456789012:user/mallory' });
    expect(await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs('arn:aws:iam::123456789012:user/riley', 'r') })).toMatchObject({ reason: 'requester-cannot-approve' });
  });

  it('matches a role pattern by its sessions, counting one role once towards quorum', async () => {
    const status = awaiting();
    const { gate } = stubGate(status);
    const session = (name: string) => `arn:aws:sts::123456789012:assumed-role/Approvers/${name}`;
    expect(await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(session('sam'), 'a') })).toMatchObject({ accepted: true });
    expect(await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(session('sam2'), 'b') })).toMatchObject({ accepted: false, reason: 'duplicate' });
    expect(await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 'c') })).toMatchObject({ accepted: true });
    expect(gate.approved).toBe(true);
  });

  it('verifies a proof sent under a name-only policy, and judges the verified ARN', async () => {
    const policy = { ...awaiting().policy!, identity: undefined, approvers: [DANA, 'sam'], quorum: 1 };
    const status = awaiting({ policy, requestedBy: 'riley' });
    const { gate } = stubGate(status);
    expect(gate.decide({ decision: 'approve', approver: 'sam', planDigest: DIGEST })).not.toBeInstanceOf(Promise);
    const status2 = awaiting({ policy, requestedBy: 'dana' });
    const second = stubGate(status2);
    // A plain-name requester is matched against the verified user's name (fail closed).
    expect(await second.gate.decide({ decision: 'approve', planDigest: DIGEST, proof: proofAs(DANA, 'd') })).toMatchObject({ reason: 'requester-cannot-approve' });
  });
});

describe('separation of duties by principal', () => {
  it('treats sessions of the requester role, and the requester user, as the requester', () => {
    expect(isRequesterPrincipal('arn:aws:sts::123456789012:assumed-role/Ops/a', 'arn:aws:sts::123456789012:assumed-role/Ops/b')).toBe(true);
    expect(isRequesterPrincipal('arn:aws:sts::123456789012:assumed-role/Ops/a', 'arn:aws:iam::123456789012:role/Ops')).toBe(true);
    expect(isRequesterPrincipal(DANA, DANA.toUpperCase().replace('ARN:AWS:IAM', 'arn:aws:iam'))).toBe(true);
    expect(isRequesterPrincipal(DANA, 'arn:aws:iam::123456789012:user/riley')).toBe(false);
    expect(isRequesterPrincipal(DANA, 'riley')).toBe(false);
  });
});

describe('the decide schema and the policy', () => {
  const proof: ApproverProof = { method: 'POST', url: 'https://sts.amazonaws.com/', headers: { authorization: 'x' }, body: 'Action=GetCallerIdentity&Version=2011-06-15' };
  it('makes --as optional only with a proof, and bounds the proof', () => {
    expect(parseDecideSignal({ decision: 'approve', planDigest: DIGEST, proof })).toMatchObject({ proof });
    expect(parseDecideSignal({ decision: 'approve', planDigest: DIGEST })).toBe('approver must be a non-empty string');
    const big = { ...proof, headers: { a: 'x'.repeat(4_000), b: 'x'.repeat(4_000), c: 'x'.repeat(500) } };
    expect(parseDecideSignal({ decision: 'approve', planDigest: DIGEST, proof: big })).toMatch(/at most 8192 bytes/);
    const many = { ...proof, headers: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`h${i}`, 'v'])) };
    expect(parseDecideSignal({ decision: 'approve', planDigest: DIGEST, proof: many })).toMatch(/at most 32 headers/);
    expect(parseDecideSignal({ decision: 'approve', planDigest: DIGEST, proof: { ...proof, extra: 1 } })).toMatch(/unknown field|Unrecognized|extra/i);
  });

  it('malformed proofs are refused as malformed by the gate, without asking STS', async () => {
    const { gate, calls } = stubGate(awaiting());
    expect(await gate.decide({ decision: 'approve', planDigest: DIGEST, proof: { ...proof, body: 'x'.repeat(9_000) } })).toMatchObject({ reason: 'malformed' });
    expect(calls).toHaveLength(0);
  });

  it('reads identity: name by default, aws-sts with ARN approvers only', () => {
    const named = parseApprovalPolicy(JSON.stringify({ approvers: { '*': ['dana'] } }), 'p');
    expect(effectivePolicy(named, 'k', 'p').identity).toBeUndefined();
    const sts = parseApprovalPolicy(JSON.stringify({ identity: 'aws-sts', approvers: { '*': [DANA, 'arn:aws:sts::123456789012:assumed-role/Ops/*'] } }), 'p');
    expect(effectivePolicy(sts, 'k', 'p').identity).toBe('aws-sts');
    expect(() => parseApprovalPolicy(JSON.stringify({ identity: 'aws-sts', approvers: { '*': ['dana'] } }), 'p')).toThrow(/approvers\.\*.*not an IAM user/);
    expect(() => parseApprovalPolicy(JSON.stringify({ identity: 'kerberos' }), 'p')).toThrow(/identity/);
  });

  it('matches approver patterns with principalMatches semantics', () => {
    expect(approverMatches(DANA, DANA)).toBe(true);
    expect(approverMatches('arn:aws:iam::123456789012:user/*', 'arn:aws:iam::123456789012:user/ops/dana')).toBe(true);
    expect(approverMatches('arn:aws:iam::123456789012:role/Ops', 'arn:aws:sts::123456789012:assumed-role/Ops/dana')).toBe(true);
    expect(approverMatches('arn:aws:sts::123456789012:assumed-role/Ops/d*', 'arn:aws:sts::123456789012:assumed-role/Ops/dana')).toBe(true);
    expect(approverMatches('arn:aws:sts::123456789012:assumed-role/Ops/d*', 'arn:aws:sts::123456789012:assumed-role/Ops/sam')).toBe(false);
    expect(approverMatches('arn:aws:iam::123456789012:role/Ops', 'arn:aws:sts::123456789012:assumed-role/Ops2/dana')).toBe(false);
    expect(approverMatches('dana', DANA)).toBe(false);
  });
});
