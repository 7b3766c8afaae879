/**
 * One Temporal dev server for the whole integration run (spawned here rather than through
 * TestWorkflowEnvironment.createLocal, which gives a server only 5 s to start), and one workflow
 * bundle, built once and shared by every test worker. moto is started per test file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startTemporalDevServer } from '../../sandbox/temporal';
import { WORKFLOW_BUNDLER_OPTIONS } from '../../worker/config';
import type { TemporalDevServer } from '../../sandbox/temporal';
import { ensureMotoServer } from '../../sandbox/toolchain';

declare global {
   
  var __COUNTERSIGN_TEMPORAL__: TemporalDevServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  ensureMotoServer();
  const started = Date.now();
  const temporal = await startTemporalDevServer({
    onWait: (ms) => process.stderr.write(`waiting for the Temporal dev server (${Math.round(ms / 1000)}s)…\n`),
  });
  globalThis.__COUNTERSIGN_TEMPORAL__ = temporal;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-test-'));
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '..', '..', 'workflows'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never,
    ...WORKFLOW_BUNDLER_OPTIONS,
  });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);
  process.env.COUNTERSIGN_TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE = bundlePath;
  process.env.COUNTERSIGN_TEST_TMP = dir;
  process.stderr.write(`\nTemporal dev server ${temporal.address} (pid ${temporal.process.pid}) and workflow bundle ready in ${Date.now() - started} ms\n`);
}
