/**
 * The `countersign` CLI as a user runs it (the built binary, in a child process) against the shared
 * Temporal dev server, a private moto and a worker; the approval is sent with the stock temporal CLI.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { GetUserCommand } from '@aws-sdk/client-iam';
import { WorkflowNotFoundError } from '@temporalio/client';
import { findTemporalCli } from '../../sandbox/toolchain';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { EvidenceRecord } from '../../evidence/record';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import { ownStderr, runCli } from '../harness/cli';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileAsync = promisify(execFile);

async function notStarted(suffix: string): Promise<void> {
  await expect(stack.client.workflow.getHandle(`stale-iam-users/123456789012/${suffix}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('countersign CLI', () => {
  it.each([
    [['start', 'stale-iam-userz'], /unknown kind "stale-iam-userz"; kinds: stale-iam-users/],
    [['start', 'stale-iam-users', '--param', 'maxIdle=banana'], /maxIdle must be a duration .*"banana"/],
    [['start', 'stale-iam-users', '--bogus'], /unknown option '--bogus'/],
    [['start', 'stale-iam-users', '--dry-rnu'], /unknown option '--dry-rnu' \(Did you mean --dry-run\?\)/],
    [['start', 'stale-iam-users', '--param', 'maxIdle'], /expected key=value/],
    [['start', 'stale-iam-users', '--account', '12'], /12-digit/],
    [['start', 'stale-iam-users', '--param', 'soak=99999999999d'], /soak must be between 1s and 365d/],
    [['start', 'stale-iam-users', '--account', '999999999999'], /account 999999999999 is not your credentials' account \(123456789012\), and 123456789012 is in no AWS organization/],
  ])('exits 2 with a one-line reason and starts nothing: %j', async (args, reason) => {
    const suffix = stack.uniqueSuffix();
    const result = await runCli([...args, '--id-suffix', suffix], stack.env);
    expect(result.code).toBe(2);
    const lines = ownStderr(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(reason);
    expect(result.stdout).toBe('');
    await notStarted(suffix);
  });

  it('teaches with --help', async () => {
    const main = await runCli(['--help'], stack.env);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/countersign demo/);
    expect(main.stdout).toMatch(/stale-iam-users/);
    expect(main.stdout).toMatch(/maxIdle=DURATION/);
    const version = await runCli(['--version'], stack.env);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^countersign \d+\.\d+\.\d+$/);
    const start = await runCli(['start', '--help'], stack.env);
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/--dry-run/);
    const kind = await runCli(['start', 'stale-iam-users', '--help'], stack.env);
    expect(kind.code).toBe(0);
    expect(kind.stdout).toMatch(/exempt=NAMES +comma-separated user names/);
    expect(kind.stdout).toMatch(/Controls: CC6.2/);
  });

  it('runs a remediation from start to evidence, with refusals and an approval sent by the stock temporal CLI', async () => {
    await stack.moto.reset();
    const estate = await seedEstate(stack.iam, 'cli');
    await sleep(6_000); // idle past maxIdle=5s
    await useKeys(estate, stack.moto.endpoint);
    const suffix = stack.uniqueSuffix();

    const started = await runCli(['start', 'stale-iam-users', '--param', 'maxIdle=5s', '--param', 'soak=1s', '--as', 'riley.operator', '--id-suffix', suffix, '--json'], stack.env);
    expect(started.code).toBe(0);
    const startDoc = JSON.parse(started.stdout) as { workflowId: string; status: { phase: string; plan: { digest: string; changes: { resource: string; action: string }[] } } };
    const id = startDoc.workflowId;
    expect(id).toBe(`stale-iam-users/123456789012/${suffix}`);
    expect(startDoc.status.phase).toBe('awaiting-approval');
    const digest = startDoc.status.plan.digest;
    const planned = startDoc.status.plan.changes.filter((c) => c.action === 'delete-user').map((c) => c.resource.split('/').pop()).sort();
    expect(planned).toEqual([...estate.idle].sort());

    const second = await runCli(['start', 'stale-iam-users', '--param', 'maxIdle=5s', '--as', 'riley.operator', '--id-suffix', suffix], stack.env);
    expect(second.code).toBe(1);
    expect(ownStderr(second.stderr).join('\n')).toMatch(/already running/);

    const own = await runCli(['approve', id, '--as', 'riley.operator', '--plan', digest], stack.env);
    expect(own.code).toBe(1);
    expect(ownStderr(own.stderr).join('\n')).toMatch(/refused: riley.operator requested this run and cannot approve it/);
    const outsider = await runCli(['approve', id, '--as', 'mallory', '--plan', digest, '--json'], stack.env);
    expect(outsider.code).toBe(1);
    expect(JSON.parse(outsider.stdout)).toMatchObject({ accepted: false, refusal: { reason: 'not-an-approver' } });

    // The stock temporal CLI: the `decide` update answers the requester's own approval with a refusal at once …
    const temporal = findTemporalCli();
    expect(temporal).toBeDefined();
    // (Not spawnSync: this process runs the worker, which must answer the update while the CLI waits.)
    const update = await execFileAsync(
      temporal!.path,
      ['workflow', 'update', 'execute', '--address', stack.temporalAddress, '--workflow-id', id, '--name', 'decide', '--output', 'json', '--input', JSON.stringify({ decision: 'approve', approver: 'Riley.Operator', planDigest: digest })],
      { encoding: 'utf8' },
    );
    expect(update.stderr).toBe('');
    expect(update.stdout).toMatch(/"accepted":\s*false/);
    expect(update.stdout).toMatch(/requester-cannot-approve/);
    // … and approves with the documented signal payload.
    const signal = spawnSync(
      temporal!.path,
      ['workflow', 'signal', '--address', stack.temporalAddress, '--workflow-id', id, '--name', 'decide', '--input', JSON.stringify({ decision: 'approve', approver: 'dana.approver', planDigest: digest, comment: 'via temporal CLI' })],
      { encoding: 'utf8' },
    );
    expect(signal.status).toBe(0);

    // --watch follows the run to its end, narrating on stderr; stdout holds the one final JSON document.
    const watched = await runCli(['status', id, '--watch', '--json'], stack.env);
    expect(watched.code).toBe(0);
    const status = JSON.parse(watched.stdout) as { phase: string; outcome?: string };
    expect(status).toMatchObject({ phase: 'done', outcome: 'completed' });
    const narration = ownStderr(watched.stderr).join('\n');
    expect(narration).toMatch(/phase (applying|soaking|verifying|done)/);
    expect(narration).toMatch(/applied +delete-user\/cli-idle-/);
    for (const user of estate.idle) {
      await expect(stack.iam.send(new GetUserCommand({ UserName: user }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
    }

    const human = await runCli(['status', id], stack.env);
    expect(human.stdout).toMatch(/outcome completed/);
    expect(human.stdout).toMatch(/approved by dana.approver/);
    expect(human.stdout).toMatch(/refused approve from mallory/);

    const evidence = await runCli(['evidence', id, '--format', 'json'], stack.env);
    expect(evidence.code).toBe(0);
    const record = JSON.parse(evidence.stdout) as EvidenceRecord;
    expect(record.approvedBy).toEqual(['dana.approver']);
    expect(record.plan?.digest).toBe(digest);
    expect(record.plan?.digestVerified).toBe(true);
    expect(record.refused.map((r) => [r.approver, r.reason])).toEqual([
      ['riley.operator', 'requester-cannot-approve'],
      ['mallory', 'not-an-approver'],
      ['Riley.Operator', 'requester-cannot-approve'],
    ]);
    // Every decision as the server recorded it: three updates (their answers included) and one signal.
    expect(record.messages.map((m) => m.via)).toEqual(['update', 'update', 'update', 'signal']);
    expect(record.messages[2]).toMatchObject({ reply: { accepted: false, reason: 'requester-cannot-approve' } });
    const removed = record.results.filter((r) => r.changeId.startsWith('delete-user/') && r.status === 'applied');
    expect(removed.map((r) => (r.snapshot as { userName: string }).userName).sort()).toEqual([...estate.idle].sort());

    const md = await runCli(['evidence', id, '--format', 'md'], stack.env);
    expect(md.stdout).toMatch(/# Change evidence/);
    const html = await runCli(['evidence', id, '--format', 'html'], stack.env);
    expect(html.code).toBe(2);

    const listed = await runCli(['list', '--kind', 'stale-iam-users', '--phase', 'done', '--json'], stack.env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ workflowId: id, phase: 'done', outcome: 'completed' })]));

    const late = await runCli(['reject', id, '--as', 'dana.approver'], stack.env);
    expect(late.code).toBe(1);
    expect(ownStderr(late.stderr).join('\n')).toMatch(/the run has ended \(completed\)/);
  });
});
