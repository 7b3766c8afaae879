/**
 * Carrying many changes in one activity (docs/engine.md, "Batches"): the engine sends a stage's changes
 * in batches so a run of thousands of changes stays within Temporal's history and payload limits, and
 * a kind's batch activity hands each change to `runBatch`, which
 *
 * - runs a few changes at once (the AWS rate limits of activities/aws/rate-limit.ts still apply below);
 * - checkpoints every finished change in the heartbeat details, so a retried attempt (a lost worker, a
 *   throttling spell that outlasted the SDK's retries) resumes after them instead of starting over;
 * - stops starting changes once the result would pass its byte budget — the engine sends the rest in
 *   the next batch — so the result always fits in a payload;
 * - records a change that fails for good as failed (with what it did before failing) and starts no
 *   further change, as the engine does between changes; a retryable failure fails the attempt, after
 *   the changes in flight have finished and been checkpointed, and Temporal retries it.
 *
 * Written here rather than taken from a library because every rule in it is Countersign's own: which
 * failures end a change and which end an attempt, and what a checkpoint holds.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Json } from '../common/json';
import type { Change, ChangeOutcome, ChangeResult } from '../common/plan';
import type { ApplyBatchResult, SnapshotBatchResult } from '../common/requests';
import { PartialChangeError, classifyAwsError, toActivityFailure } from './aws/errors';
import type { AwsErrorContext } from './aws/errors';
import { checkpoint, keepAlive, resumeFrom } from './heartbeat';

/** The JSON size of a value, as it will travel in a payload. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

export interface BatchOptions {
  /** Changes in flight at once. */
  concurrency: number;
  /** Stop starting changes once the finished ones' JSON passes this. */
  budgetBytes: number;
  errors?: AwsErrorContext;
  /** Keep starting changes after one fails for good (a rollback undoes everything it can). */
  continueAfterFailure?: boolean;
  /** Every operation the batch makes is one the emulator implements (see `permanent`). */
  implemented?: boolean;
}

export interface BatchRun<T> {
  /** Each finished change's value, in the order of the request. */
  done: { changeId: string; value: T }[];
  /** Changes that failed for good: a result each. */
  failed: ChangeResult[];
  /** Changes not started: over the budget (to be sent again) or after a failure (`stoppedBy`). */
  notStarted: string[];
  stoppedBy?: 'budget' | 'failure';
}

interface Checkpoint<T> {
  done: { changeId: string; value: T }[];
  failed: ChangeResult[];
}

/**
 * Whether an error means "this change cannot be done" (true) or "try the attempt again" (false). An
 * emulator's unparsed 5xx is normally "not implemented" (never retried: docs/aws.md §6.3); a batch of
 * operations the emulator does implement says so (`implemented`), and then it is the emulator failing
 * under load — moto answers an HTML 500 now and then with thousands of users — and is retried.
 */
function permanent(err: unknown, errors: AwsErrorContext, implemented: boolean): boolean {
  if (err instanceof ApplicationFailure) return err.nonRetryable === true;
  if (err instanceof PartialChangeError) return permanent(err.failure, errors, implemented);
  const c = classifyAwsError(err, errors);
  if (c.category === 'unimplemented' && implemented) return false;
  return !c.retryable;
}

function emulatorServerError(err: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: 'AWS.EmulatorServerError', message: `the emulator failed: ${(err as Error).message}`, nonRetryable: false });
}

/**
 * `read` makes only calls the emulator implements, so an unparsed 5xx from it is the emulator failing
 * under load (see `permanent`), failed as retryable instead of "not implemented".
 */
export async function implementedRead<T>(read: () => Promise<T>, errors: AwsErrorContext): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (classifyAwsError(err, errors).category === 'unimplemented') throw emulatorServerError(err);
    throw err;
  }
}

export async function runBatch<T>(changes: Change[], work: (change: Change) => Promise<T>, options: BatchOptions): Promise<BatchRun<T>> {
  const errors = options.errors ?? {};
  const resumed = resumeFrom<Checkpoint<T>>();
  const done = new Map<string, T>((resumed?.done ?? []).map((d) => [d.changeId, d.value]));
  const failed = new Map<string, ChangeResult>((resumed?.failed ?? []).map((f) => [f.changeId, f]));
  let bytes = jsonBytes(resumed ?? {});
  let stoppedBy: BatchRun<T>['stoppedBy'] = failed.size > 0 && !options.continueAfterFailure ? 'failure' : undefined;
  let retryable: unknown;
  const queue = changes.filter((c) => !done.has(c.id) && !failed.has(c.id));
  const save = (): void => checkpoint({ done: [...done].map(([changeId, value]) => ({ changeId, value })), failed: [...failed.values()] } satisfies Checkpoint<T>);

  const lane = async (): Promise<void> => {
    for (let change = queue.shift(); change; change = queue.shift()) {
      if (stoppedBy || retryable !== undefined) return;
      if (bytes > options.budgetBytes) {
        stoppedBy = 'budget';
        return;
      }
      keepAlive({ change: change.id });
      try {
        const value = await work(change);
        done.set(change.id, value);
        bytes += jsonBytes(value) + change.id.length + 32;
      } catch (err) {
        if (!permanent(err, errors, options.implemented === true)) {
          // Retryable as the attempt's failure too: an emulator's unparsed 5xx would otherwise leave the
          // activity classified "not implemented", never retried.
          retryable ??= classifyAwsError(err, errors).category === 'unimplemented' ? emulatorServerError(err) : err;
          return;
        }
        const failure = toActivityFailure(err, errors);
        const observed = err instanceof PartialChangeError ? (err.observed as Json) : undefined;
        failed.set(change.id, { changeId: change.id, status: 'failed', at: new Date().toISOString(), detail: failure.message, ...(observed !== undefined ? { observed } : {}) });
        if (!options.continueAfterFailure) stoppedBy = 'failure';
      }
      save();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, queue.length)) }, lane));
  // A transient failure (throttling past the SDK's retries, a 5xx, a reset): everything finished so
  // far is checkpointed, and the retried attempt carries on from there.
  // The error carries the checkpoint, so if this was the last attempt the engine still learns which
  // changes were done (nothing done goes unrecorded).
  if (retryable !== undefined) throw new PartialChangeError(retryable, { done: [...done].map(([changeId, value]) => ({ changeId, value })) });
  return {
    done: changes.filter((c) => done.has(c.id)).map((c) => ({ changeId: c.id, value: done.get(c.id) as T })),
    failed: [...failed.values()],
    notStarted: changes.filter((c) => !done.has(c.id) && !failed.has(c.id)).map((c) => c.id),
    ...(stoppedBy ? { stoppedBy } : {}),
  };
}

/** An apply or rollback batch's result: one ChangeResult per change finished or failed. */
export function batchResults(run: BatchRun<ChangeOutcome>): ApplyBatchResult {
  const at = new Date().toISOString();
  return {
    results: [
      ...run.done.map(({ changeId, value }) => ({
        changeId,
        status: value.status,
        at,
        ...(value.detail !== undefined ? { detail: value.detail } : {}),
        ...(value.observed !== undefined ? { observed: value.observed } : {}),
      })),
      ...run.failed,
    ],
    // Not started after a failure: recorded as such. Past the budget: left out, so the engine sends them again.
    ...(run.stoppedBy === 'failure' ? { notStarted: run.notStarted } : {}),
  };
}

/** A snapshot batch's result. */
export function snapshotResults(run: BatchRun<{ snapshot: Json; forApply?: Json }>): SnapshotBatchResult {
  return {
    snapshots: run.done.map(({ changeId, value }) => ({ changeId, ...value })),
    ...(run.failed.length > 0 ? { failed: run.failed } : {}),
  };
}
