/**
 * The engine-test workflow bundle: every real workflow, plus test-only workflows running the engine
 * with the synthetic kind (test/engine/activities.ts). Deterministic code only, like workflows/.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import type { RemediationInput, RemediationStatus } from '../../common/messages';
import type { ActivityRef, RemediationDefinition } from '../../workflows/lifecycle';
import { runRemediation } from '../../workflows/lifecycle';

export * from '../../workflows';

// Failures the synthetic activities are told to produce are non-retryable; anything else retries fast.
const synthetic: ActivityOptions = { startToCloseTimeout: '30s', retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumAttempts: 3 } };

/** Test-only activity names: not in the catalogue's Activities type, so not through `activity()`. */
const ref = (name: string): ActivityRef => ({ name, options: synthetic });

const ACTIONS = ['tag', 'restrict', 'rotate', 'remove'] as const;

const syntheticDefinition: RemediationDefinition = {
  plan: ref('draftSyntheticPlan'),
  snapshot: ref('photographSyntheticResource'),
  apply: Object.fromEntries(ACTIONS.map((a) => [a, ref('enactSyntheticChange')])),
  // `remove` (destructive) and `rotate` have no rollback: a reversible change of those actions would be
  // recorded rollback-failed, which no test plans.
  rollback: { tag: ref('undoSyntheticChange'), restrict: ref('undoSyntheticChange') },
  verify: ref('confirmSyntheticState'),
};

/** The same kind without a snapshot activity: a destructive change cannot be run. */
const syntheticDefinitionWithoutSnapshot: RemediationDefinition = {
  plan: syntheticDefinition.plan,
  apply: syntheticDefinition.apply,
  rollback: syntheticDefinition.rollback,
  verify: syntheticDefinition.verify,
};

export async function syntheticRemediation(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, syntheticDefinition);
}

export async function syntheticWithoutSnapshot(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, syntheticDefinitionWithoutSnapshot);
}

/** The same kind with batch activities: stages of many changes run in batches (docs/engine.md, "Batches"). */
const syntheticBatchDefinition: RemediationDefinition = {
  ...syntheticDefinition,
  batch: {
    snapshot: ref('photographSyntheticBatch'),
    apply: Object.fromEntries(ACTIONS.map((a) => [a, ref('enactSyntheticBatch')])),
    rollback: { tag: ref('undoSyntheticBatch'), restrict: ref('undoSyntheticBatch') },
  },
};

export async function syntheticInBatches(input: RemediationInput): Promise<RemediationStatus> {
  return runRemediation(input, syntheticBatchDefinition);
}
