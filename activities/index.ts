/**
 * Every activity the worker registers, built from its dependencies (AWS clients, policy path) so tests
 * and the worker wire them the same way.
 */
import { classifyingAwsErrors } from './aws/errors';
import type { AwsErrorContext } from './aws/errors';
import type { AwsClients } from './aws/clients';
import { withPeriodicHeartbeat } from './heartbeat';
import { createPolicyActivities } from './policy';
import { createStaleIamUserActivities } from './stale-iam-users';

export interface ActivityDeps {
  aws: AwsClients;
  policyPath?: string;
  now?: () => Date;
}

/** Every activity heartbeats while it runs and leaves with its AWS errors classified. */
function wrapped<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T, context: AwsErrorContext): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => {
      const body = fn as (...args: unknown[]) => Promise<unknown>;
      return [name, classifyingAwsErrors((...args: unknown[]) => withPeriodicHeartbeat(() => body(...args)), context)];
    }),
  ) as unknown as T;
}

export function createActivities(deps: ActivityDeps) {
  return wrapped(
    {
      ...createPolicyActivities({ policyPath: deps.policyPath }),
      ...createStaleIamUserActivities({ aws: deps.aws, now: deps.now }),
    },
    { emulator: deps.aws.settings.emulator },
  );
}

export type Activities = ReturnType<typeof createActivities>;
