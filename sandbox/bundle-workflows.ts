/**
 * `npm run build`'s second step (after tsc): bundle the compiled workflows once, into
 * dist/workflow-bundle.js, with the digest of what it was built from in dist/workflow-bundle.json, so
 * a worker loads it instead of bundling at every start (worker/config.ts selectWorkflowSource). Up to
 * date already (same digest): nothing to do, so a repeated build costs a hash, not a webpack run.
 *
 * Runs compiled, as dist/sandbox/bundle-workflows.js: the bundle is of dist/workflows, the code the
 * worker in dist/ would otherwise bundle itself.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_FILE, WORKFLOW_BUNDLE_SIDECAR, WORKFLOW_BUNDLER_OPTIONS, workflowSourcesDigest } from '../worker/config';
import type { WorkflowBundleSidecar } from '../worker/config';

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export async function buildWorkflowBundle(root: string): Promise<{ codePath: string; rebuilt: boolean }> {
  const codePath = path.join(root, WORKFLOW_BUNDLE_FILE);
  const sidecarPath = path.join(root, WORKFLOW_BUNDLE_SIDECAR);
  const digest = workflowSourcesDigest(root);
  if (existsSync(codePath) && existsSync(sidecarPath)) {
    try {
      if ((JSON.parse(readFileSync(sidecarPath, 'utf8')) as WorkflowBundleSidecar).digest === digest) return { codePath, rebuilt: false };
    } catch {
      // unreadable: rebuild
    }
  }
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(root, 'workflows'), logger: quiet, ...WORKFLOW_BUNDLER_OPTIONS });
  // The bundle first, then its sidecar, each by rename: a reader never pairs a new sidecar with an old
  // or half-written bundle (at worst an old sidecar with a new bundle, which reads as stale).
  writeFileSync(`${codePath}.tmp`, code);
  renameSync(`${codePath}.tmp`, codePath);
  const sidecar: WorkflowBundleSidecar = { digest, builtAt: new Date().toISOString() };
  writeFileSync(`${sidecarPath}.tmp`, `${JSON.stringify(sidecar, null, 2)}\n`);
  renameSync(`${sidecarPath}.tmp`, sidecarPath);
  return { codePath, rebuilt: true };
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  buildWorkflowBundle(root).then(
    ({ codePath, rebuilt }) => {
      if (rebuilt) process.stderr.write(`countersign: workflow bundle written to ${path.relative(process.cwd(), codePath)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`countersign: bundling the workflows failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
