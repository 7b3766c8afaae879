/**
 * runBatch (activities/batch.ts) outside an activity: budget, fail-fast, retryable failures carrying
 * what was done, and the plan-page digest chain (common/digest.ts). The checkpoint's round trip through
 * a real heartbeat is covered by test/integration/worker-restart.test.ts (a worker killed mid-batch).
 */
import { ApplicationFailure } from '@temporalio/common';
import { batchResults, implementedRead, runBatch } from '../../activities/batch';
import { PartialChangeError, toActivityFailure } from '../../activities/aws/errors';
import { chainDigest, pagesMatch, planDigest, planDigestMatches, sealPage, sealPlan } from '../../common/digest';
import type { Change, ChangeOutcome, PlanBody } from '../../common/plan';
import { assemblePlan } from '../../common/plan';

const change = (i: number): Change => ({
  id: `c/${i}`,
  stage: 's',
  action: 'a',
  resource: `arn:aws:iam::111111111111:user/u${i}`,
  summary: `change ${i}`,
  before: null,
  after: null,
  reversible: true,
  destructive: false,
});
const changes = Array.from({ length: 20 }, (_, i) => change(i));
const applied = async (): Promise<ChangeOutcome> => ({ status: 'applied', detail: 'x'.repeat(100) });

describe('runBatch', () => {
  it('does every change when nothing stops it, in the request order', async () => {
    const run = await runBatch(changes, applied, { concurrency: 4, budgetBytes: 1_000_000 });
    expect(run.done.map((d) => d.changeId)).toEqual(changes.map((c) => c.id));
    expect(run.notStarted).toEqual([]);
    expect(run.stoppedBy).toBeUndefined();
  });

  it('stops starting changes past its byte budget, and leaves the rest for the next batch (not "not started")', async () => {
    const run = await runBatch(changes, applied, { concurrency: 1, budgetBytes: 500 });
    expect(run.stoppedBy).toBe('budget');
    expect(run.done.length).toBeGreaterThan(0);
    expect(run.done.length + run.notStarted.length).toBe(changes.length);
    expect(batchResults(run).notStarted).toBeUndefined();
  });

  it('records a change that fails for good, with what it did, and starts no further change', async () => {
    const run = await runBatch(
      changes,
      async (c) => {
        if (c.id === 'c/3') throw new PartialChangeError(ApplicationFailure.create({ nonRetryable: true, message: 'denied' }), { removed: ['key'] });
        return applied();
      },
      { concurrency: 1, budgetBytes: 1_000_000 },
    );
    expect(run.stoppedBy).toBe('failure');
    expect(run.done.map((d) => d.changeId)).toEqual(['c/0', 'c/1', 'c/2']);
    expect(run.failed).toEqual([expect.objectContaining({ changeId: 'c/3', status: 'failed', detail: expect.stringContaining('denied'), observed: { removed: ['key'] } })]);
    expect(batchResults(run).notStarted).toEqual(changes.slice(4).map((c) => c.id));
  });

  it('keeps going past a failure when asked (a rollback undoes all it can)', async () => {
    const run = await runBatch(
      changes,
      async (c) => {
        if (c.id === 'c/3') throw ApplicationFailure.create({ nonRetryable: true, message: 'gone' });
        return applied();
      },
      { concurrency: 2, budgetBytes: Number.POSITIVE_INFINITY, continueAfterFailure: true },
    );
    expect(run.failed.map((f) => f.changeId)).toEqual(['c/3']);
    expect(run.done).toHaveLength(changes.length - 1);
  });

  it('fails the attempt on a retryable error after the changes in flight finish, carrying every change done', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } });
    const err = await runBatch(
      changes,
      async (c) => {
        if (c.id === 'c/5') throw throttled;
        await new Promise((r) => setTimeout(r, 5));
        return applied();
      },
      { concurrency: 3, budgetBytes: 1_000_000 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartialChangeError);
    const done = ((err as PartialChangeError).observed as { done: { changeId: string }[] }).done.map((d) => d.changeId);
    expect(done).toEqual(expect.arrayContaining(['c/0', 'c/1', 'c/2', 'c/3', 'c/4']));
    expect(done).not.toContain('c/5');
    expect((err as PartialChangeError).failure).toBe(throttled);
  });
});

describe('plan pages', () => {
  const body = (n: number, stage = 's'): PlanBody => ({
    kind: 'k',
    account: '111111111111',
    region: 'us-east-1',
    params: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    stages: [{ name: stage, description: 'd' }],
    changes: [change(n)],
    leftAlone: [],
    leftAloneNotListed: 0,
    notes: [`page ${n}`],
  });

  it('gives a plan of one page the digest a plan without pages has', () => {
    const page = sealPage(body(1), 1, undefined, undefined);
    expect(page.digest).toBe(sealPlan(body(1)).digest);
    expect(planDigestMatches(assemblePlan([page]))).toBe(true);
  });

  it('chains the pages into one digest that an edit to any page breaks', () => {
    const p1 = sealPage(body(1), 1, undefined, '1');
    const p2 = sealPage(body(2), 2, p1.digest, '2');
    const p3 = sealPage(body(3), 3, p2.digest, undefined);
    expect(p3.digest).toBe(chainDigest(chainDigest(planDigest(body(1)), planDigest(body(2))), planDigest(body(3))));
    const plan = assemblePlan([p1, p2, p3]);
    expect(plan.digest).toBe(p3.digest);
    expect(plan.changes.map((c) => c.id)).toEqual(['c/1', 'c/2', 'c/3']);
    expect(plan.pageDigests).toEqual([p1.pageDigest, p2.pageDigest, p3.pageDigest]);
    expect(pagesMatch([p1, p2, p3], plan.digest)).toBe(true);
    const edited = { ...p2, changes: [{ ...change(2), resource: 'arn:aws:iam::111111111111:user/someone-else' }] };
    expect(pagesMatch([p1, edited, p3], plan.digest)).toBe(false);
    expect(pagesMatch([p1, p3], plan.digest)).toBe(false);
  });
});

describe('runBatch and an emulator answering an unparsed 500', () => {
  const html500 = () => Object.assign(new Error('@aws-sdk XML parse error: mismatched tags <html> and </title>'), { name: 'Error', $metadata: { httpStatusCode: 500 } });

  it('takes it as "not implemented" (the change fails) unless the batch says its operations are implemented', async () => {
    const run = await runBatch([change(0)], async () => Promise.reject(html500()), { concurrency: 1, budgetBytes: 1_000, errors: { emulator: 'moto' } });
    expect(run.failed.map((f) => f.changeId)).toEqual(['c/0']);
  });

  it('retries the attempt when they are: it is the emulator failing under load', async () => {
    const err = await runBatch([change(0)], async () => Promise.reject(html500()), { concurrency: 1, budgetBytes: 1_000, errors: { emulator: 'moto' }, implemented: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartialChangeError);
    // …and the activity's failure is retryable (not classified "not implemented").
    expect(toActivityFailure(err, { emulator: 'moto' }).nonRetryable).toBe(false);
  });

  it('fails a read made before the batch (the users in bulk) as retryable too, and passes other errors through', async () => {
    const err = await implementedRead(async () => Promise.reject(html500()), { emulator: 'moto' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('AWS.EmulatorServerError');
    expect(toActivityFailure(err, { emulator: 'moto' }).nonRetryable).toBe(false);
    const denied = Object.assign(new Error('not allowed'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    await expect(implementedRead(async () => Promise.reject(denied), { emulator: 'moto' })).rejects.toBe(denied);
    await expect(implementedRead(async () => 7, { emulator: 'moto' })).resolves.toBe(7);
  });
});
