/** Duration strings inside workflow code (pure; shares the parser with the CLI). */
import { ApplicationFailure } from '@temporalio/workflow';
import { tryParseDuration } from '../common/duration';

export function durationMs(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) {
    throw ApplicationFailure.nonRetryable(`not a duration: ${JSON.stringify(text)}`, 'InvalidDuration');
  }
  return ms;
}
