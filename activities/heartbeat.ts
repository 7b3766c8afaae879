/** Heartbeat when running inside an activity (long reads and batches), and do nothing otherwise (unit tests). */
import { Context } from '@temporalio/activity';

export function keepAlive(details?: unknown): void {
  let context: Context | undefined;
  try {
    context = Context.current();
  } catch {
    return; // not in an activity
  }
  context.heartbeat(details);
}
