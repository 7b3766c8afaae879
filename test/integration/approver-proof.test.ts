/**
 * Proven approver identity end to end: a policy with `"identity": "aws-sts"`, approvers named by IAM
 * ARN, and decisions signed with IAM users' own access keys in moto. moto answers GetCallerIdentity
 * with the IAM user owning the signing access key, but does not check signatures (IAM auth is off):
 * an invalid signature is therefore a unit test (test/unit/approver-proof.test.ts, mocked STS answer).
 */
import { CreateAccessKeyCommand, CreateUserCommand } from '@aws-sdk/client-iam';
import { signApproverProof } from '../../activities/approver-proof';
import { buildEvidence } from '../../evidence/record';
import { evidenceMarkdown } from '../../evidence/markdown';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { runCli } from '../harness/cli';

const ACCOUNT = '123456789012';
const arn = (user: string) => `arn:aws:iam::${ACCOUNT}:user/${user}`;
const DANA = arn('dana');
const ERIN = arn('erin');
const SAM = arn('sam');

let stack: TestStack;
const keys: Record<string, { accessKeyId: string; secretAccessKey: string }> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startTestStack({
    policy: { identity: 'aws-sts', approvers: { '*': [DANA, ERIN, SAM] }, quorum: { '*': 2 }, approvalTimeout: '1h', maxChanges: 200 },
  });
  const estate = await seedEstate(stack.iam, 'p');
  await sleep(3_000); // idle past maxIdle=2s
  await useKeys(estate, stack.moto.endpoint);
  for (const user of ['dana', 'erin', 'sam', 'mallory']) {
    await stack.iam.send(new CreateUserCommand({ UserName: user }));
    const { AccessKey } = await stack.iam.send(new CreateAccessKeyCommand({ UserName: user }));
    keys[user] = { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! };
  }
});
afterAll(async () => {
  await stack?.stop();
});

const signing = (user: string, extra: { systemClockOffset?: number } = {}) => ({ credentials: keys[user], endpoint: stack.moto.endpoint, region: 'us-east-1', ...extra });

async function startRun(requestedBy: string) {
  const started = await stack.remediations.start({
    kind: 'stale-iam-users',
    account: ACCOUNT,
    // The approvers' own users are exempt: they are new, but not part of this test's plan.
    params: { maxIdle: '2s', soak: '1s', exempt: 'dana,erin,sam,mallory' },
    requestedBy,
    idSuffix: stack.uniqueSuffix(),
  });
  const awaiting = await stack.remediations.waitFor(started.workflowId, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
  expect(awaiting.phase).toBe('awaiting-approval');
  expect(awaiting.policy?.identity).toBe('aws-sts');
  return { ...started, digest: awaiting.plan!.digest };
}

describe('proven approver identity (aws-sts)', () => {
  it('accepts only fresh proofs of listed principals for this run and digest, and the evidence names the verified ARN', async () => {
    const run = await startRun('riley.operator');
    const { workflowId, runId, digest } = run;

    // A missing proof: a name alone is not enough.
    const byName = await stack.remediations.decide(workflowId, { decision: 'approve', approver: DANA, planDigest: digest }, undefined, { sign: false });
    expect(byName).toMatchObject({ accepted: false, refusal: { reason: 'proof-required' } });

    // dana signs with her own keys: accepted as her verified ARN.
    const proof = await signApproverProof({ workflowId, runId, planDigest: digest }, signing('dana'));
    const first = await stack.remediations.decide(workflowId, { decision: 'approve', planDigest: digest, proof });
    expect(first).toMatchObject({ accepted: true, decision: { approver: DANA, verifiedArn: DANA } });

    // The same proof again.
    const replayed = await stack.remediations.decide(workflowId, { decision: 'approve', planDigest: digest, proof });
    expect(replayed).toMatchObject({ accepted: false, refusal: { reason: 'proof-replayed' } });

    // A proof bound to another digest, sent with this one.
    const otherDigest = await signApproverProof({ workflowId, runId, planDigest: 'a'.repeat(64) }, signing('erin'));
    const wrongBinding = await stack.remediations.decide(workflowId, { decision: 'approve', planDigest: digest, proof: otherDigest });
    expect(wrongBinding).toMatchObject({ accepted: false, refusal: { reason: 'proof-binding' } });

    // mallory proves she is mallory (signing through the client) — and is no approver, whatever name she claims.
    const mallory = await stack.remediations.decide(workflowId, { decision: 'approve', approver: ERIN, planDigest: digest }, undefined, signing('mallory'));
    expect(mallory).toMatchObject({ accepted: false, refusal: { reason: 'not-an-approver', verifiedArn: arn('mallory') } });

    // A proof signed 20 minutes ago.
    const old = await stack.remediations.decide(workflowId, { decision: 'approve', planDigest: digest }, undefined, signing('erin', { systemClockOffset: -20 * 60_000 }));
    expect(old).toMatchObject({ accepted: false, refusal: { reason: 'proof-expired' } });

    // erin approves through the CLI, with no --as: the policy requires proof, so the CLI signs with
    // the default credential chain (erin's keys in the environment).
    const cli = await runCli(['approve', workflowId, '--plan', digest, '--json'], { ...stack.env, AWS_ACCESS_KEY_ID: keys.erin!.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.erin!.secretAccessKey });
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ accepted: true, decision: { approver: ERIN, verifiedArn: ERIN } });

    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 120_000 });
    expect(final.outcome).toBe('completed');
    expect(final.decisions.map((d) => d.verifiedArn)).toEqual([DANA, ERIN]);
    expect(final.refused.map((r) => r.reason)).toEqual(['proof-required', 'proof-replayed', 'proof-binding', 'not-an-approver', 'proof-expired']);

    const handle = stack.client.workflow.getHandle(workflowId, runId);
    const evidence = buildEvidence(await handle.fetchHistory(), { namespace: 'default', workflowId, runId });
    expect(evidence.approvedBy).toEqual([DANA, ERIN]);
    expect(evidence.approverIdentity?.map((a) => a.identity)).toEqual([`verified as ${DANA}`, `verified as ${ERIN}`]);
    const markdown = evidenceMarkdown(evidence);
    expect(markdown).toContain(`by ${DANA} (verified as ${DANA})`);
    expect(markdown).toContain('approver identity proven (aws-sts)');
  });

  it("refuses the requester's own proof (separation of duties by verified principal)", async () => {
    await seedAgain();
    const { workflowId, digest } = await startRun(DANA);
    const own = await stack.remediations.decide(workflowId, { decision: 'approve', planDigest: digest }, undefined, signing('dana'));
    expect(own).toMatchObject({ accepted: false, refusal: { reason: 'requester-cannot-approve', verifiedArn: DANA } });
    // The requester may still withdraw the request, proven.
    const withdrawn = await stack.remediations.decide(workflowId, { decision: 'reject', planDigest: digest, comment: 'withdrawn' }, undefined, signing('dana'));
    expect(withdrawn).toMatchObject({ accepted: true, decision: { decision: 'reject', verifiedArn: DANA } });
    const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
    expect(final.outcome).toBe('rejected');
  });
});

/** The first test removed the idle users: one more idle user gives the next run a plan. */
async function seedAgain(): Promise<void> {
  await stack.iam.send(new CreateUserCommand({ UserName: 'q-idle-leaver' }));
  await sleep(3_000);
}
