/**
 * The workflow bundle is built once by `npm run build` (sandbox/bundle-workflows.ts), and a worker
 * loads it only while it matches the compiled code next to it (worker/config.ts selectWorkflowSource);
 * otherwise the worker bundles at start. Tested on a tiny workflows/ folder in a temp dir, so the test
 * does not depend on, or rewrite, the project's own dist/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildWorkflowBundle } from '../../sandbox/bundle-workflows';
import { selectWorkflowSource, WORKFLOW_BUNDLE_FILE, WORKFLOW_BUNDLE_SIDECAR } from '../../worker/config';

const projectRoot = path.resolve(__dirname, '..', '..');
let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'countersign-bundle-'));
  // The bundler resolves @temporalio/workflow from the workflows' folder upwards.
  symlinkSync(path.join(projectRoot, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  mkdirSync(path.join(root, 'workflows'));
  mkdirSync(path.join(root, 'common'));
  writeFileSync(path.join(root, 'common', 'greeting.js'), "exports.greeting = (name) => `hello ${name}`;\n");
  writeFileSync(path.join(root, 'workflows', 'index.js'), "const { greeting } = require('../common/greeting');\nexports.hello = async (name) => greeting(name);\n");
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

/** The source map a bundle carries inline (the SDK reads it from there). */
function inlineSourceMap(code: string): { sources: string[]; sourcesContent?: unknown; mappings: string } {
  const inline = /\/\/# sourceMappingURL=data:application\/json;[^,]*base64,(\S+)\s*$/.exec(code);
  if (!inline) throw new Error('the bundle has no inline source map');
  return JSON.parse(Buffer.from(inline[1] ?? '', 'base64').toString('utf8')) as { sources: string[]; sourcesContent?: unknown; mappings: string };
}

describe('the prebuilt workflow bundle', () => {
  it('`npm run build` and `prepare` write it', () => {
    const scripts = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.build).toContain('node dist/sandbox/bundle-workflows.js');
    expect(scripts.prepare).toContain('node dist/sandbox/bundle-workflows.js');
  });

  it('exists in dist/ after a build, next to the compiled workflows', () => {
    // `npm test` builds first (pretest); run `npm run build` before running this file on its own.
    expect(existsSync(path.join(projectRoot, 'dist', WORKFLOW_BUNDLE_FILE))).toBe(true);
    const sidecar = JSON.parse(readFileSync(path.join(projectRoot, 'dist', WORKFLOW_BUNDLE_SIDECAR), 'utf8')) as { digest: string };
    expect(sidecar.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is picked by the worker once built, and not rebuilt when nothing changed', async () => {
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toMatchObject({ kind: 'bundle-at-start', reason: expect.stringContaining('no prebuilt workflow bundle') });
    const built = await buildWorkflowBundle(root);
    expect(built).toEqual({ codePath: path.join(root, WORKFLOW_BUNDLE_FILE), rebuilt: true });
    expect(readFileSync(built.codePath, 'utf8')).toContain('hello');
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toEqual({ kind: 'prebuilt', codePath: built.codePath });
    expect(await buildWorkflowBundle(root)).toMatchObject({ rebuilt: false });
  }, 120_000);

  it('carries a line-level source map without the sources (what a worker holds for stack traces)', async () => {
    const { codePath } = await buildWorkflowBundle(root);
    const map = inlineSourceMap(readFileSync(codePath, 'utf8'));
    expect(map.sources).toEqual(expect.arrayContaining([expect.stringMatching(/workflows\/index\.js$/), expect.stringMatching(/common\/greeting\.js$/)]));
    expect(map.sourcesContent).toBeUndefined();
    expect(map.mappings.length).toBeGreaterThan(0);
    // The project's own bundle, as `npm run build` wrote it (the SDK's default map held every source).
    expect(inlineSourceMap(readFileSync(path.join(projectRoot, 'dist', WORKFLOW_BUNDLE_FILE), 'utf8')).sourcesContent).toBeUndefined();
  }, 120_000);

  it('is not used once the compiled workflows or common code changed (stale)', async () => {
    await buildWorkflowBundle(root);
    writeFileSync(path.join(root, 'common', 'greeting.js'), "exports.greeting = (name) => `hi ${name}`;\n");
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toEqual({
      kind: 'bundle-at-start',
      workflowsPath: path.join(root, 'workflows'),
      reason: expect.stringContaining('is stale'),
    });
    await buildWorkflowBundle(root);
    writeFileSync(path.join(root, 'workflows', 'more.js'), 'exports.more = async () => 1;\n');
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toMatchObject({ kind: 'bundle-at-start' });
  }, 120_000);

  it('is not used without its sidecar or with an unreadable one', async () => {
    await buildWorkflowBundle(root);
    writeFileSync(path.join(root, WORKFLOW_BUNDLE_SIDECAR), '{not json');
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toMatchObject({ kind: 'bundle-at-start', reason: expect.stringContaining('unreadable') });
    rmSync(path.join(root, WORKFLOW_BUNDLE_SIDECAR));
    expect(selectWorkflowSource(path.join(root, 'workflows'))).toMatchObject({ kind: 'bundle-at-start' });
  }, 120_000);

  it('is never looked for next to the TypeScript sources (jest, ts-node bundle at start)', () => {
    expect(selectWorkflowSource(path.join(projectRoot, 'workflows'))).toMatchObject({ kind: 'bundle-at-start' });
  });
});
