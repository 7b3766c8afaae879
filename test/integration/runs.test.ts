/**
 * Every run stays reachable: a workflow id (`<kind>/<account>[/<suffix>]`) is reused once its run has
 * ended, so `list` shows each run with its run id, `status` and `evidence` take `--run-id`, and the
 * list filters run on the server through Countersign's search attributes (registered on the shared
 * dev server by sandbox/temporal.ts). The built CLI, as a user runs it (`npm run build` first).
 */
import type { EvidenceRecord } from '../../evidence/record';
import type { ListedRun } from '../../cli/remediation-client';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';
import type { CliResult } from '../harness/cli';
import { ownStderr, runCli } from '../harness/cli';

const ACCOUNT = '123456789012';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `list … --json`, asked again until `done` holds (visibility is eventually consistent). */
async function listUntil(args: string[], done: (runs: ListedRun[]) => boolean, timeoutMs = 15_000): Promise<{ runs: ListedRun[]; result: CliResult }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await runCli(['list', ...args, '--json'], stack.env);
    expect(result.code).toBe(0);
    const runs = JSON.parse(result.stdout) as ListedRun[];
    if (done(runs) || Date.now() > deadline) return { runs, result };
    await sleep(500);
  }
}

describe('runs of a reused workflow id', () => {
  it('lists both runs with their run ids, filters on the server, and reaches the first run by --run-id', async () => {
    await stack.moto.reset();
    const estate = await seedEstate(stack.iam, 'runs');
    await sleep(6_000); // idle past maxIdle=5s
    await useKeys(estate, stack.moto.endpoint);
    const suffix = stack.uniqueSuffix();
    const requester = `runs.operator.${suffix}`;
    const id = `stale-iam-users/${ACCOUNT}/${suffix}`;
    const start = async (maxIdle: string) => {
      const result = await runCli(['start', 'stale-iam-users', '--param', `maxIdle=${maxIdle}`, '--dry-run', '--as', requester, '--id-suffix', suffix, '--json'], stack.env);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as { workflowId: string; runId: string; status: { phase: string; outcome?: string } };
    };

    // The first run, a dry run, plans the idle users and ends `planned`; the id is then free again.
    const first = await start('5s');
    expect(first).toMatchObject({ workflowId: id, status: { phase: 'done', outcome: 'planned' } });
    // The second run of the same id finds nothing idle for a year: it ends `no-op`.
    const second = await start('365d');
    expect(second).toMatchObject({ workflowId: id, status: { phase: 'done', outcome: 'no-op' } });
    expect(second.runId).not.toBe(first.runId);

    // list: both runs, finished, each with its run id, newest first.
    const mine = (runs: ListedRun[]) => runs.filter((r) => r.workflowId === id);
    const { runs: all, result: allResult } = await listUntil(['--kind', 'stale-iam-users'], (runs) => mine(runs).length === 2 && mine(runs).every((r) => r.outcome));
    expect(ownStderr(allResult.stderr)).toEqual([]);
    expect(mine(all)).toEqual([
      expect.objectContaining({ workflowId: id, runId: second.runId, kind: 'stale-iam-users', account: ACCOUNT, status: 'COMPLETED', phase: 'done', outcome: 'no-op', requestedBy: requester }),
      expect.objectContaining({ workflowId: id, runId: first.runId, kind: 'stale-iam-users', account: ACCOUNT, status: 'COMPLETED', phase: 'done', outcome: 'planned', requestedBy: requester }),
    ]);
    const starts = all.map((r) => r.startTime);
    expect(starts).toEqual([...starts].sort().reverse());
    const text = await runCli(['list', '--kind', 'stale-iam-users'], stack.env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(first.runId);
    expect(text.stdout).toContain(second.runId);

    // The filters run on the server (no client-side note): only runs that match come back.
    const { runs: planned, result: plannedResult } = await listUntil(['--phase', 'done', '--outcome', 'planned', '--account', ACCOUNT], (runs) => mine(runs).length === 1);
    expect(ownStderr(plannedResult.stderr)).toEqual([]);
    expect(mine(planned).map((r) => r.runId)).toEqual([first.runId]);
    expect(planned.length).toBeGreaterThan(0);
    for (const r of planned) expect(r).toMatchObject({ phase: 'done', outcome: 'planned', account: ACCOUNT });
    const { runs: byRequester } = await listUntil(['--requested-by', requester, '--kind', 'stale-iam-users'], (runs) => runs.length === 2);
    expect(byRequester.map((r) => r.runId)).toEqual([second.runId, first.runId]);
    const { runs: noOp } = await listUntil(['--requested-by', requester, '--outcome', 'no-op'], (runs) => runs.length === 1);
    expect(noOp.map((r) => r.runId)).toEqual([second.runId]);
    // Filters that exclude them return none of them.
    for (const excluding of [
      ['--requested-by', requester, '--outcome', 'completed'],
      ['--requested-by', requester, '--phase', 'awaiting-approval'],
      ['--requested-by', requester, '--account', '210987654321'],
      ['--requested-by', requester, '--kind', 'org-trail'],
      ['--requested-by', `${requester}.someone-else`],
    ]) {
      const none = await runCli(['list', ...excluding, '--json'], stack.env);
      expect(none.code).toBe(0);
      expect(JSON.parse(none.stdout)).toEqual([]);
    }
    const noneText = await runCli(['list', '--requested-by', requester, '--outcome', 'completed'], stack.env);
    expect(noneText.stdout).toMatch(/no remediations/);
    const badOutcome = await runCli(['list', '--outcome', 'done'], stack.env);
    expect(badOutcome.code).toBe(2);
    expect(ownStderr(badOutcome.stderr).join('\n')).toMatch(/unknown outcome "done"; outcomes: completed, no-op, planned/);

    // status: the latest run by default, the first one with --run-id.
    const latest = await runCli(['status', id, '--json'], stack.env);
    expect(latest.code).toBe(0);
    expect(JSON.parse(latest.stdout)).toMatchObject({ workflowId: id, runId: second.runId, outcome: 'no-op' });
    const firstStatus = await runCli(['status', id, '--run-id', first.runId, '--json'], stack.env);
    expect(firstStatus.code).toBe(0);
    expect(JSON.parse(firstStatus.stdout)).toMatchObject({ workflowId: id, runId: first.runId, phase: 'done', outcome: 'planned', dryRun: true });
    const firstHuman = await runCli(['status', id, '--run-id', first.runId], stack.env);
    expect(firstHuman.code).toBe(0);
    expect(firstHuman.stdout).toMatch(/outcome planned/);
    expect(firstHuman.stdout).toContain(`run ${first.runId}`);
    expect(firstHuman.stdout).toMatch(/runs-idle-contractor/);
    const unknownRun = await runCli(['status', id, '--run-id', '00000000-0000-0000-0000-000000000000'], stack.env);
    expect(unknownRun.code).toBe(1);
    expect(ownStderr(unknownRun.stderr).join('\n')).toMatch(/no run 00000000-0000-0000-0000-000000000000 of workflow id/);

    // evidence: the first run's record by --run-id, the latest run's without.
    const firstEvidence = await runCli(['evidence', id, '--run-id', first.runId], stack.env);
    expect(firstEvidence.code).toBe(0);
    const firstRecord = JSON.parse(firstEvidence.stdout) as EvidenceRecord;
    expect(firstRecord).toMatchObject({ workflow: { workflowId: id, runId: first.runId, state: 'closed' }, outcome: 'planned' });
    expect(firstRecord.plan?.digestVerified).toBe(true);
    const latestEvidence = await runCli(['evidence', id], stack.env);
    expect(latestEvidence.code).toBe(0);
    expect(JSON.parse(latestEvidence.stdout)).toMatchObject({ workflow: { workflowId: id, runId: second.runId }, outcome: 'no-op' });
  });
});
