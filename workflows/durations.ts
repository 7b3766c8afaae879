/** Duration strings inside workflow code (pure; shares the parser with the CLI). */
import { ApplicationFailure } from '@temporalio/workflow';
import { tryParseDuration } from '../common/duration';

/**
 * Longest wait the engine will schedule: far past any soak or approval window, and far inside what a
 * Date can hold (an unbounded one made `new Date(now + ms)` throw and wedge the run).
 */
const MAX_WAIT_MS = 10 * 365 * 86_400_000;

export function durationMs(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined || ms > MAX_WAIT_MS) {
    throw ApplicationFailure.nonRetryable(`not a duration between 0s and 3650d: ${JSON.stringify(text)}`, 'InvalidDuration');
  }
  return ms;
}
