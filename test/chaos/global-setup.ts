/**
 * The chaos suite's set-up: the integration tests' (one Temporal dev server, one workflow bundle); a
 * copy of the compiled worker (dist/), so a rebuild while the suite runs for tens of minutes cannot
 * change the worker between two of its restarts; and a directory where each kind's file leaves its
 * summary for the teardown's table.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import integrationSetup from '../harness/global-setup';

const ROOT = path.resolve(__dirname, '..', '..');

export default async function globalSetup(): Promise<void> {
  await integrationSetup();
  // Under node_modules, so the copy resolves the project's packages as dist/ does.
  const copy = path.join(ROOT, 'node_modules', '.cache', `countersign-chaos-${process.pid}`, 'dist');
  cpSync(path.join(ROOT, 'dist'), copy, { recursive: true });
  const cli = path.join(copy, 'cli', 'index.js');
  const check = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`the compiled CLI does not run (${cli}); run \`npm run build\`:\n${check.stderr}`);
  process.env.COUNTERSIGN_TEST_WORKER_CLI = cli;
  process.env.COUNTERSIGN_CHAOS_DIST = path.dirname(copy);
  process.env.COUNTERSIGN_CHAOS_RESULTS = mkdtempSync(path.join(os.tmpdir(), 'countersign-chaos-'));
  process.env.COUNTERSIGN_CHAOS_STARTED = String(Date.now());
}
