/**
 * Every activity the worker registers, built from its dependencies (AWS clients, policy path) so tests
 * and the worker wire them the same way. Every activity leaves with its AWS errors classified.
 */
import { classifyingAwsErrors } from './aws/errors';
import type { AwsClients } from './aws/clients';
import { createPolicyActivities } from './policy';
import { createStaleIamUserActivities } from './stale-iam-users';

export interface ActivityDeps {
  aws: AwsClients;
  policyPath?: string;
  now?: () => Date;
}

function classified<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [name, classifyingAwsErrors(fn as (...args: unknown[]) => Promise<unknown>)]),
  ) as unknown as T;
}

export function createActivities(deps: ActivityDeps) {
  return classified({
    ...createPolicyActivities({ policyPath: deps.policyPath }),
    ...createStaleIamUserActivities({ aws: deps.aws, now: deps.now }),
  });
}

export type Activities = ReturnType<typeof createActivities>;
