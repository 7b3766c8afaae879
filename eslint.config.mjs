// Lint, with the layering of docs/design.md §3/§5 enforced rather than hoped for:
//   workflows/ is deterministic code bundled into Temporal's workflow sandbox: no Node, no I/O libraries,
//              activity *types* only;
//   common/    is imported by workflows, activities and the CLI alike, so it imports none of them.
// Type-aware linting is on only for the one rule that needs types (no-floating-promises); everything else
// runs on syntax alone, which keeps `npm run lint` fast.
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('.', import.meta.url));

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Every builtin, bare or `node:`-prefixed, with or without a subpath (fs, fs/promises, node:test, …).
const nodeBuiltin = `^(node:.*|(${builtinModules.map(escape).join('|')})(/.*)?)$`;

/** `../x`, `../../x/y`: one of our top-level folders, from any depth. */
const ourFolder = (...names) => `^(\\.\\./)+(${names.join('|')})(/.*)?$`;

const inWorkflow = (why) => `Workflow code must stay deterministic (docs/design.md §5): ${why}`;

const workflowImports = {
  paths: [
    { name: 'pino', message: inWorkflow('log with `log` from @temporalio/workflow.') },
    { name: '@temporalio/client', message: inWorkflow('use @temporalio/workflow (child workflows, signals).') },
    { name: '@temporalio/worker', message: inWorkflow('the worker bundles workflows; workflows never import it.') },
    { name: '@temporalio/activity', message: inWorkflow('activities run outside the sandbox; call them through proxyActivities.') },
  ],
  patterns: [
    { regex: nodeBuiltin, message: inWorkflow('no Node APIs; do the I/O in an activity.') },
    { group: ['@aws-sdk/*'], message: inWorkflow('every AWS call is an activity.') },
    {
      regex: ourFolder('activities'),
      allowTypeImports: true,
      message: inWorkflow("import activity types only: `import type * as activities from '../activities'`."),
    },
    { regex: ourFolder('worker', 'cli', 'sandbox'), message: inWorkflow('those are Node processes, not workflow code.') },
  ],
};

const inCommon = 'common/ is shared by workflows, activities and the CLI, so it imports only common/ (docs/design.md §3).';

const commonImports = {
  paths: [
    { name: 'pino', message: inCommon },
    { name: '@temporalio/client', message: inCommon },
    { name: '@temporalio/worker', message: inCommon },
    { name: '@temporalio/activity', message: inCommon },
  ],
  patterns: [
    { group: ['@aws-sdk/*'], message: inCommon },
    { regex: ourFolder('workflows', 'activities', 'worker', 'cli', 'sandbox', 'evidence'), message: inCommon },
  ],
};

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.venv/', 'coverage/', 'bin/', '.countersign/'] },
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: root } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      // `const { idSuffix: _ignored, ...rest } = x` and `_`-prefixed parameters are deliberate.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Plain CommonJS that runs before dependencies are installed (sandbox/bootstrap.js) or is read by
    // tools that expect it (jest.config.js).
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['workflows/**'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', workflowImports] },
  },
  {
    files: ['common/**'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', commonImports] },
  },
);
