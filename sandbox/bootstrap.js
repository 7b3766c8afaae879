#!/usr/bin/env node
/**
 * One-time set-up that `npm test`, `npm run demo` and `npm run dev` run first, so each works on a
 * fresh clone: npm dependencies (installed from package-lock.json when node_modules is missing or
 * stale), the TypeScript build,
 * moto in .venv/, the Temporal CLI and — with `--tests` — Docker Compose (each built once into a cache
 * outside the clone; Compose only validates docker-compose.yml in the unit tests, no Docker engine is needed).
 * Plain Node with no dependencies, since it runs before node_modules exists.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const toolchain = require('./toolchain');

const root = toolchain.PROJECT_ROOT;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`countersign: ${what} failed (exit ${r.status}); see the output above\n`);
    process.exit(1);
  }
}

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

try {
  const lock = path.join(root, 'package-lock.json');
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  if (!fs.existsSync(installed) || mtime(installed) < mtime(lock)) {
    // `npm ci`: exactly the versions in the committed lock file, and a refusal (not a silent re-resolve)
    // when package.json and the lock file disagree. The lock file lists the native packages of
    // @swc/core (the Temporal workflow bundler) for every platform; npm installs only this one's.
    process.stderr.write('countersign: installing npm dependencies (npm ci, from package-lock.json)…\n');
    run(npm, ['ci', '--no-audit', '--no-fund'], 'npm ci');
  }
  run(npm, ['run', '--silent', 'build'], 'the TypeScript build');
  toolchain.ensureMotoServer();
  toolchain.ensureTemporalCli();
  // Only the tests need Compose (to validate docker-compose.yml); the demo and dev do not wait for it.
  if (process.argv.includes('--tests')) toolchain.ensureCompose();
} catch (err) {
  process.stderr.write(`countersign: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
