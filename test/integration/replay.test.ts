/**
 * Saved histories of real runs (test/replay/*.json) must replay on the current workflow code: a change
 * that would break running workflows fails here. Record a new one with COUNTERSIGN_RECORD_HISTORY=1
 * (see test/integration/stale-iam-users.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { installLogging } from '../../worker';
import { createPino } from '../../worker/logger';

const dir = path.join(__dirname, '..', 'replay');
const histories = readdirSync(dir).filter((f) => f.endsWith('.json'));

beforeAll(() => {
  installLogging(createPino('error'));
});

it('has saved histories to replay', () => {
  expect(histories.length).toBeGreaterThan(0);
});

it.each(histories)('replays %s without non-determinism', async (file) => {
  // The JSON of `temporal workflow show --output json`; runReplayHistory converts it.
  const history: unknown = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, file),
  ).resolves.toBeUndefined();
});
