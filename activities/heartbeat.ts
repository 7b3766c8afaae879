/**
 * Heartbeats: a lost worker is noticed within an activity's heartbeat timeout, not its whole timeout.
 * A long activity also keeps a checkpoint in its heartbeat details (docs/engine.md, "Batches"): the
 * server keeps the last details it received, and a retried attempt reads them to resume where the
 * last one stopped instead of starting over.
 */
import { Context } from '@temporalio/activity';

function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not in an activity (unit tests call the functions directly)
  }
}

/** The checkpoint of each running activity, sent with every heartbeat so a progress beat never drops it. */
const checkpoints = new WeakMap<Context, unknown>();

/**
 * At most one heartbeat per activity this often; a later one waits, and only the newest is sent. The SDK
 * serializes every heartbeat it is handed and the worker's core sends the server one every 2 s at most
 * (worker/index.ts), so a batch beating after every read would serialize a growing checkpoint hundreds
 * of times for nothing: memory and CPU the worker does not need to spend. Throttling here is
 * Countersign's own because the SDK's throttle sits after that serialization.
 */
export const HEARTBEAT_EVERY_MS = 500;

interface Beat {
  sentAt: number;
  details: unknown;
  timer?: NodeJS.Timeout;
}
const beats = new WeakMap<Context, Beat>();

function heartbeat(context: Context, details: unknown): void {
  const now = Date.now();
  const beat = beats.get(context);
  if (!beat || (beat.timer === undefined && now - beat.sentAt >= HEARTBEAT_EVERY_MS)) {
    beats.set(context, { sentAt: now, details: undefined });
    context.heartbeat(details);
    return;
  }
  beat.details = details;
  beat.timer ??= setTimeout(
    () => {
      beat.timer = undefined;
      beat.sentAt = Date.now();
      // After the activity finished this is a heartbeat the SDK ignores.
      context.heartbeat(beat.details);
    },
    Math.max(0, HEARTBEAT_EVERY_MS - (now - beat.sentAt)),
  ).unref();
}

/** Send a heartbeat held back by the throttle now (an attempt ending keeps its last progress on the server). */
function flush(context: Context): void {
  const beat = beats.get(context);
  if (!beat?.timer) return;
  clearTimeout(beat.timer);
  beat.timer = undefined;
  beat.sentAt = Date.now();
  context.heartbeat(beat.details);
}

/** Heartbeat now, with progress details, when running inside an activity (any checkpoint goes along). */
export function keepAlive(progress?: unknown): void {
  const context = currentContext();
  if (!context) return;
  const checkpoint = checkpoints.get(context);
  heartbeat(context, checkpoint === undefined ? progress : { checkpoint, ...(progress !== undefined ? { progress } : {}) });
}

/** Record how far the activity got; the next heartbeat carries it to the server (resumeFrom reads it back). */
export function checkpoint(value: unknown): void {
  const context = currentContext();
  if (!context) return;
  checkpoints.set(context, value);
  heartbeat(context, { checkpoint: value });
}

/** The checkpoint an earlier attempt of this activity left, if any. */
export function resumeFrom<T>(): T | undefined {
  const details = currentContext()?.info.heartbeatDetails as { checkpoint?: T } | undefined;
  return details && typeof details === 'object' && 'checkpoint' in details ? details.checkpoint : undefined;
}

/**
 * Run an activity body heartbeating every `everyMs` as well, so one slow AWS call (the SDK may spend
 * up to 3 attempts × its request timeout) does not trip the heartbeat timeout while the worker is
 * alive. startToCloseTimeout still bounds an activity that hangs.
 */
export async function withPeriodicHeartbeat<R>(body: () => Promise<R>, everyMs = 10_000): Promise<R> {
  const context = currentContext();
  if (!context) return body();
  const timer = setInterval(() => keepAlive(), everyMs);
  try {
    return await body();
  } finally {
    clearInterval(timer);
    flush(context);
  }
}
