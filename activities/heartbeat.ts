/** Heartbeats: a lost worker is noticed within an activity's heartbeat timeout, not its whole timeout. */
import { Context } from '@temporalio/activity';

function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not in an activity (unit tests call the functions directly)
  }
}

/** Heartbeat now, with progress details, when running inside an activity. */
export function keepAlive(details?: unknown): void {
  currentContext()?.heartbeat(details);
}

/**
 * Run an activity body heartbeating every `everyMs` as well, so one slow AWS call (the SDK may spend
 * up to 3 attempts × its request timeout) does not trip the heartbeat timeout while the worker is
 * alive. startToCloseTimeout still bounds an activity that hangs.
 */
export async function withPeriodicHeartbeat<R>(body: () => Promise<R>, everyMs = 10_000): Promise<R> {
  const context = currentContext();
  if (!context) return body();
  const timer = setInterval(() => context.heartbeat(), everyMs);
  try {
    return await body();
  } finally {
    clearInterval(timer);
  }
}
