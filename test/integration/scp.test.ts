/**
 * scp end to end against real servers: the shared Temporal dev server and a private moto, in which
 * the sandbox credentials' account is the management account of an organization with the OUs
 * Workloads and Sandbox (sandbox/organization.ts).
 *
 * moto never enforces an SCP and checks none of AWS's limits on them (docs/aws.md §9), so these tests
 * assert where policies are attached and what the runs recorded; the limits and AWS's refusals are
 * unit-tested against mocked clients (test/unit/scp.test.ts).
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribePolicyCommand, ListPoliciesCommand, ListPoliciesForTargetCommand, ListRootsCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { planDigestMatches } from '../../common/digest';
import { guardrailDocument } from '../../common/guardrails';
import type { RemediationStatus } from '../../common/messages';
import type { SeededOrganization } from '../../sandbox/organization';
import { seedOrganization } from '../../sandbox/organization';
import { ownStderr, runCli } from '../harness/cli';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const ACCOUNT = '123456789012';
const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const POLICY = 'countersign-protect-cloudtrail';

let stack: TestStack;
let organizations: OrganizationsClient;

beforeAll(async () => {
  stack = await startTestStack();
  organizations = new OrganizationsClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
});
afterAll(async () => {
  organizations?.destroy();
  await stack?.stop();
});

async function freshOrganization(): Promise<SeededOrganization> {
  await stack.moto.reset();
  return seedOrganization(stack.moto.endpoint);
}

const ou = (org: SeededOrganization, name: 'Sandbox' | 'Workloads'): string => org.ous[name] as string;

async function startRun(params: Record<string, string>): Promise<string> {
  const { workflowId } = await stack.remediations.start({ kind: 'scp', account: ACCOUNT, params, requestedBy: REQUESTER, idSuffix: stack.uniqueSuffix() });
  return workflowId;
}

const awaitingApproval = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
const soaking = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'soaking', { timeoutMs: 60_000 });
const finished = (id: string) => stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 120_000 });

async function approve(id: string): Promise<RemediationStatus> {
  const status = await awaitingApproval(id);
  expect(status.phase).toBe('awaiting-approval');
  const reply = await stack.remediations.decide(id, { decision: 'approve', approver: APPROVER, planDigest: status.plan!.digest });
  expect(reply.accepted).toBe(true);
  return status;
}

/** The SCP names attached directly to a target. */
async function attachedTo(target: string): Promise<string[]> {
  const listed = await organizations.send(new ListPoliciesForTargetCommand({ TargetId: target, Filter: 'SERVICE_CONTROL_POLICY' }));
  return (listed.Policies ?? []).map((p) => p.Name ?? '').sort();
}

async function scpNames(): Promise<string[]> {
  return ((await organizations.send(new ListPoliciesCommand({ Filter: 'SERVICE_CONTROL_POLICY' }))).Policies ?? []).map((p) => p.Name ?? '').sort();
}

const statusesOf = (final: RemediationStatus, changeId: string) => final.results.filter((r) => r.changeId === changeId).map((r) => r.status);

describe('scp', () => {
  it('rolls protect-cloudtrail out in two waves, Sandbox then Workloads after the soak; a second run plans nothing', async () => {
    const org = await freshOrganization();
    const [sandbox, workloads] = [ou(org, 'Sandbox'), ou(org, 'Workloads')];
    const id = await startRun({ guardrail: 'protect-cloudtrail', targets: `${sandbox},${workloads}`, soak: '2s' });
    const { plan } = await approve(id);
    expect(planDigestMatches(plan!)).toBe(true);
    expect(plan!.changes.map((c) => c.id)).toEqual([`enable-policy-type/${org.rootId}`, `create-policy/${POLICY}`, `attach-policy/${sandbox}`, `attach-policy/${workloads}`]);
    expect(plan!.stages.map((s) => [s.name, s.soakBefore])).toEqual([
      ['policy', undefined],
      [`wave-1/${sandbox}`, undefined],
      [`wave-2/${workloads}`, '2s'],
    ]);
    expect(plan!.changes[0]).toMatchObject({ reversible: false });

    // Between the waves: the Sandbox OU holds it, the Workloads OU not yet.
    const between = await soaking(id);
    expect(between.stage).toBe(`wave-2/${workloads}`);
    expect(await attachedTo(sandbox)).toEqual(['FullAWSAccess', POLICY]);
    expect(await attachedTo(workloads)).toEqual(['FullAWSAccess']);

    const final = await finished(id);
    expect(final.outcome).toBe('completed');
    expect(final.verification?.ok).toBe(true);
    expect(await attachedTo(sandbox)).toEqual(['FullAWSAccess', POLICY]);
    expect(await attachedTo(workloads)).toEqual(['FullAWSAccess', POLICY]);
    const root = (await organizations.send(new ListRootsCommand({}))).Roots?.[0];
    expect(root?.PolicyTypes).toEqual([{ Type: 'SERVICE_CONTROL_POLICY', Status: 'ENABLED' }]);
    const created = final.results.find((r) => r.changeId === `create-policy/${POLICY}`)?.observed as { policyId: string };
    const described = await organizations.send(new DescribePolicyCommand({ PolicyId: created.policyId }));
    expect(JSON.parse(described.Policy!.Content!)).toEqual(guardrailDocument('protect-cloudtrail'));

    // The history replays deterministically on the current workflow code.
    const history = await stack.client.workflow.getHandle(id).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, id);

    // A second run finds the policy with this content attached everywhere.
    const again = await finished(await startRun({ guardrail: 'protect-cloudtrail', targets: `${sandbox},${workloads}`, soak: '2s' }));
    expect(again.outcome).toBe('no-op');
    expect(again.plan?.leftAlone.every((l) => l.reason === 'already-compliant')).toBe(true);
  });

  it('rolls back a second run with other content rejected during its first soak: its new version is detached and deleted, the old one re-attached', async () => {
    const org = await freshOrganization();
    const [sandbox, workloads] = [ou(org, 'Sandbox'), ou(org, 'Workloads')];
    const targets = `${sandbox},${workloads}`;
    const firstId = await startRun({ guardrail: 'protect-cloudtrail', targets, soak: '1s' });
    await approve(firstId);
    expect((await finished(firstId)).outcome).toBe('completed');

    // The same guardrail with a break-glass exemption: other content under the same name.
    const id = await startRun({ guardrail: 'protect-cloudtrail', targets, soak: '1h', exemptPrincipals: 'arn:aws:iam::*:role/break-glass' });
    const { plan } = await approve(id);
    const v2 = `${POLICY}-v2`;
    expect(plan!.changes.map((c) => c.id)).toEqual([`create-policy/${v2}`, `attach-policy/${sandbox}`, `detach-policy/${sandbox}/${POLICY}`, `attach-policy/${workloads}`, `detach-policy/${workloads}/${POLICY}`]);

    await soaking(id);
    expect(await attachedTo(sandbox)).toEqual(['FullAWSAccess', v2]);
    expect(await attachedTo(workloads)).toEqual(['FullAWSAccess', POLICY]);
    const reply = await stack.remediations.decide(id, { decision: 'reject', approver: APPROVER, planDigest: plan!.digest, comment: 'break-glass role not ready' });
    expect(reply.accepted).toBe(true);
    const final = await finished(id);
    expect(final.outcome).toBe('rolled-back');
    expect(final.outcomeReason).toMatch(/halted by dana.approver .*before stage "wave-2/);
    expect(statusesOf(final, `detach-policy/${sandbox}/${POLICY}`)).toEqual(['applied', 'rolled-back']);
    expect(statusesOf(final, `attach-policy/${sandbox}`)).toEqual(['applied', 'rolled-back']);
    expect(statusesOf(final, `create-policy/${v2}`)).toEqual(['applied', 'rolled-back']);
    expect(statusesOf(final, `attach-policy/${workloads}`)).toEqual([]);

    // Nothing of the second run is left: the first run's policy is back where it was.
    expect(await attachedTo(sandbox)).toEqual(['FullAWSAccess', POLICY]);
    expect(await attachedTo(workloads)).toEqual(['FullAWSAccess', POLICY]);
    expect(await scpNames()).toEqual(['FullAWSAccess', POLICY]);
  });

  describe('countersign start refuses with exit 2, creating nothing', () => {
    let org: SeededOrganization;
    let dir: string;
    beforeAll(async () => {
      org = await freshOrganization();
      dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-scp-'));
    });

    const file = (name: string, text: string): string => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };

    it.each<[string, () => string[], RegExp]>([
      [
        'an oversize document',
        () => ['--param', `policyFile=${file('big.json', JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'S'.repeat(5_100), Effect: 'Deny', Action: 's3:*', Resource: '*' }] }))}`, '--param', 'name=big', '--param', `targets=${ou(org, 'Sandbox')}`],
        /^countersign: policyFile is 5\d{3} characters minified, over the limit of 5120$/,
      ],
      ['a document that is not JSON', () => ['--param', `policyFile=${file('broken.json', '{"Version": "2012-10-17", "Statement": [')}`, '--param', 'name=broken', '--param', `targets=${ou(org, 'Sandbox')}`], /^countersign: policyFile is not valid JSON: /],
      [
        'a document outside the SCP grammar',
        () => ['--param', `policyFile=${file('principal.json', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: '*' }] }))}`, '--param', 'name=p', '--param', `targets=${ou(org, 'Sandbox')}`],
        /^countersign: policyFile is not a valid SCP: Statement\[0\] has a Principal/,
      ],
      ['an unknown OU', () => ['--param', 'guardrail=protect-cloudtrail', '--param', `targets=${ou(org, 'Sandbox')},ou-zzzz-zzzzzzzz`], /^countersign: scp: OU ou-zzzz-zzzzzzzz is not in this organization/],
      ['an unknown account', () => ['--param', 'guardrail=protect-cloudtrail', '--param', 'targets=999999999999'], /^countersign: scp: account 999999999999 is not in this organization/],
      ['the root without allowRoot', () => ['--param', 'guardrail=deny-leave-organization', '--param', `targets=${org.rootId}`], /^countersign: scp: r-\w+ is the organization root: .*allowRoot=true/],
      ['both guardrail and policyFile', () => ['--param', 'guardrail=protect-cloudtrail', '--param', `policyFile=${file('ok.json', JSON.stringify({ Version: '2012-10-17', Statement: { Effect: 'Deny', Action: 's3:*' } }))}`, '--param', 'name=x', '--param', `targets=${ou(org, 'Sandbox')}`], /^countersign: scp: give guardrail or policyFile, not both$/],
    ])('%s', async (_what, args, reason) => {
      const before = await scpNames();
      const suffix = stack.uniqueSuffix();
      const result = await runCli(['start', 'scp', ...args(), '--id-suffix', suffix], stack.env);
      expect(result.code).toBe(2);
      const lines = ownStderr(result.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(reason);
      expect(result.stdout).toBe('');
      expect(await scpNames()).toEqual(before);
      await expect(stack.client.workflow.getHandle(`scp/${ACCOUNT}/${suffix}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });

    it('accepts the root with allowRoot, and a dry run plans without creating anything', async () => {
      const before = await scpNames();
      const suffix = stack.uniqueSuffix();
      const result = await runCli(['start', 'scp', '--param', 'guardrail=deny-leave-organization', '--param', `targets=${org.rootId}`, '--param', 'allowRoot=true', '--dry-run', '--id-suffix', suffix], stack.env);
      expect(ownStderr(result.stderr).join('\n')).not.toMatch(/cannot check/);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/attach countersign-deny-leave-organization to root r-\w+/);
      expect(result.stdout).toMatch(/outcome: planned/);
      expect(await scpNames()).toEqual(before);
    });
  });
});
