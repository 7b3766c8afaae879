/**
 * Every activity the worker registers, built from its dependencies (AWS clients, policy path) so tests
 * and the worker wire them the same way. Each passes through the engine's guards (activities/engine.ts),
 * heartbeats while it runs, and leaves with its AWS errors classified.
 */
import { ApplicationFailure } from '@temporalio/common';
import { classifyingAwsErrors } from './aws/errors';
import { jsonBytes } from './batch';
import type { AwsErrorContext } from './aws/errors';
import type { AwsClients } from './aws/clients';
import type { KindParamRegistry } from './engine';
import { createEngineActivities, withEngineGuards } from './engine';
import { withPeriodicHeartbeat } from './heartbeat';
import { createPolicyActivities } from './policy';
import { createStaleIamUserActivities } from './stale-iam-users';
import { createOrgTrailActivities } from './org-trail';
import { createRetireDefaultTrailActivities } from './retire-default-trails';
import { createScpActivities } from './scp';
import { createPermissionBoundaryActivities } from './permission-boundary';
import { createApproverProofActivities } from './approver-proof';
import { createNotifyActivities } from './notify';
import { createOrganizationRunActivities } from './organization-run';
import type { Client } from '@temporalio/client';

export interface ActivityDeps {
  aws: AwsClients;
  policyPath?: string;
  now?: () => Date;
  /** A Temporal client on the worker's connection: an account's run confirms its organization approval with it. */
  temporal?: () => Client;
}

type ActivityMap = Record<string, (...args: never[]) => Promise<unknown>>;

/**
 * The engine's guards, heartbeats and AWS error classification around a set of activities. Also used
 * for test-only kinds, so they get exactly what the catalogue's kinds get.
 */
export function registerActivities<T extends ActivityMap>(activities: T, options: { aws?: AwsClients; kinds?: KindParamRegistry; errors?: AwsErrorContext } = {}): T {
  const guarded = withEngineGuards(activities, { aws: options.aws, kinds: options.kinds });
  return Object.fromEntries(
    Object.entries(guarded).map(([name, fn]) => {
      const body = fn as (...args: unknown[]) => Promise<unknown>;
      return [name, classifyingAwsErrors((...args: unknown[]) => withPeriodicHeartbeat(async () => deliverable(name, await body(...args))), options.errors ?? {})];
    }),
  ) as unknown as T;
}

/** The largest activity result Countersign hands to Temporal (docs/engine.md, "Bounds"). */
export const MAX_RESULT_BYTES = 512 * 1024;

/**
 * A result too large to deliver fails the activity for good, with the reason: retrying would produce
 * the same result, and the server would refuse it again (or time the activity out) attempt after attempt.
 */
function deliverable<R>(name: string, result: R): R {
  const bytes = jsonBytes(result);
  if (bytes > MAX_RESULT_BYTES) {
    throw ApplicationFailure.create({
      type: 'ResultTooLarge',
      nonRetryable: true,
      message: `${name} produced a ${Math.round(bytes / 1024)} KiB result, over the ${MAX_RESULT_BYTES / 1024} KiB a run carries; nothing more is done with it — narrow the run's scope (parameters) and start it again`,
    });
  }
  return result;
}

export function createActivities(deps: ActivityDeps) {
  return registerActivities(
    {
      ...createPolicyActivities({ policyPath: deps.policyPath }),
      ...createEngineActivities({ aws: deps.aws }),
      ...createOrganizationRunActivities({ aws: deps.aws, temporal: deps.temporal }),
      ...createStaleIamUserActivities({ aws: deps.aws, now: deps.now }),
      ...createOrgTrailActivities({ aws: deps.aws }),
      ...createRetireDefaultTrailActivities({ aws: deps.aws, now: deps.now }),
      ...createScpActivities({ aws: deps.aws, now: deps.now }),
      ...createPermissionBoundaryActivities({ aws: deps.aws, now: deps.now }),
      ...createApproverProofActivities({ aws: deps.aws }),
      ...createNotifyActivities({ aws: deps.aws }),
    },
    { aws: deps.aws, errors: { emulator: deps.aws.settings.emulator } },
  );
}

export type Activities = ReturnType<typeof createActivities>;
