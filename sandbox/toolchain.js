/**
 * Locate or build the real parts the sandbox runs (docs/design.md §6), with nothing downloaded by URL:
 *  - the `temporal` CLI: $TEMPORAL_CLI, then PATH, then a cache outside the clone keyed by version,
 *    else built once with `go install github.com/temporalio/cli/cmd/temporal@<version>` into that cache;
 *  - a pinned moto[server] in a project-local Python venv (.venv/), or $MOTO_SERVER;
 *  - Docker Compose (the Go implementation, `docker compose` v2) for test/unit/docker-compose.test.ts:
 *    $COUNTERSIGN_COMPOSE, then the same cache, else built once from its Go module (see ensureCompose).
 * Plain CommonJS with no dependencies: `sandbox/bootstrap.js` uses it before node_modules exists.
 */
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MOTO_VERSION = '5.2.1';
/** Docker Compose v2, the last v2 release (its Go module needs go >= 1.24.9; the v5 line needs 1.26.10). */
const COMPOSE_VERSION = 'v2.40.3';
const COMPOSE_MODULE = 'github.com/docker/compose/v2';
/** The clone's root (this file also runs compiled from dist/sandbox/). */
const PROJECT_ROOT = (() => {
  for (let dir = path.resolve(__dirname, '..'); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'sandbox', 'bootstrap.js'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..');
  }
})();

/** @param {string} message */
function say(message) {
  process.stderr.write(`countersign: ${message}\n`);
}

/** @param {string} cmd */
function onPath(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, cmd);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function cacheRoot() {
  const base = process.env.COUNTERSIGN_CACHE_DIR || process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return process.env.COUNTERSIGN_CACHE_DIR ? base : path.join(base, 'countersign');
}

function temporalCachePath() {
  return path.join(cacheRoot(), 'temporal-cli', TEMPORAL_CLI_VERSION, process.platform === 'win32' ? 'temporal.exe' : 'temporal');
}

/**
 * The temporal CLI to run, without building it.
 * @returns {{ path: string, source: string } | undefined}
 */
function findTemporalCli() {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI is set to ${fromEnv}, which does not exist; unset it or point it at a temporal binary`);
    return { path: fromEnv, source: 'TEMPORAL_CLI' };
  }
  const onThePath = onPath('temporal');
  if (onThePath) return { path: onThePath, source: 'PATH' };
  const cached = temporalCachePath();
  if (fs.existsSync(cached)) return { path: cached, source: 'cache' };
  return undefined;
}

/** The temporal CLI, built from its Go module on first use. */
function ensureTemporalCli() {
  const found = findTemporalCli();
  if (found) return found.path;
  const go = onPath('go');
  if (!go) {
    throw new Error(
      `the Temporal CLI is missing and Go is not installed to build it; install Go (https://go.dev/doc/install) or put a temporal binary on PATH or in TEMPORAL_CLI`,
    );
  }
  const target = temporalCachePath();
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  say(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} from its Go module into ${dir} (once; several minutes on 2 cores)…`);
  const started = Date.now();
  const result = spawnSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
    stdio: ['ignore', 2, 2], // stdout stays clean for --json
  });
  if (result.status !== 0 || !fs.existsSync(target)) {
    throw new Error(`go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION} failed (exit ${result.status}); see the output above`);
  }
  say(`built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)}s: ${target}`);
  return target;
}

function venvDir() {
  return process.env.COUNTERSIGN_VENV || path.join(PROJECT_ROOT, '.venv');
}

function venvBin(name) {
  return path.join(venvDir(), process.platform === 'win32' ? 'Scripts' : 'bin', name);
}

/** The moto_server to run, without installing it. */
function findMotoServer() {
  if (process.env.MOTO_SERVER) return process.env.MOTO_SERVER;
  const marker = path.join(venvDir(), `.moto-${MOTO_VERSION}`);
  if (fs.existsSync(marker) && fs.existsSync(venvBin('moto_server'))) return venvBin('moto_server');
  return undefined;
}

/** moto[server], pinned, in the project-local venv. */
function ensureMotoServer() {
  const found = findMotoServer();
  if (found) return found;
  const python = onPath('python3') || onPath('python');
  if (!python) {
    throw new Error('Python 3 is needed for the AWS sandbox (moto) and was not found; install python3 (with venv) or set MOTO_SERVER to a moto_server binary');
  }
  const dir = venvDir();
  say(`installing moto[server]==${MOTO_VERSION} into ${dir} (once)…`);
  if (!fs.existsSync(venvBin('python'))) {
    const made = spawnSync(python, ['-m', 'venv', dir], { stdio: ['ignore', 2, 2] });
    if (made.status !== 0) throw new Error(`${python} -m venv ${dir} failed; install the python3-venv package`);
  }
  const pip = spawnSync(venvBin('python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`], {
    stdio: ['ignore', 2, 2],
  });
  if (pip.status !== 0 || !fs.existsSync(venvBin('moto_server'))) {
    throw new Error(`pip install moto[server]==${MOTO_VERSION} failed (exit ${pip.status}); see the output above`);
  }
  fs.writeFileSync(path.join(dir, `.moto-${MOTO_VERSION}`), `${new Date().toISOString()}\n`);
  return venvBin('moto_server');
}

function composeCachePath() {
  return path.join(cacheRoot(), 'docker-compose', COMPOSE_VERSION, process.platform === 'win32' ? 'docker-compose.exe' : 'docker-compose');
}

/**
 * The docker-compose binary to run, without building it: $COUNTERSIGN_COMPOSE, else the cache. Not PATH:
 * a `docker-compose` there may be Compose v1 (Debian's package still is), which reads files differently.
 * @returns {{ path: string, source: string } | undefined}
 */
function findCompose() {
  const fromEnv = process.env.COUNTERSIGN_COMPOSE;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`COUNTERSIGN_COMPOSE is set to ${fromEnv}, which does not exist; unset it or point it at a Compose v2 binary`);
    return { path: fromEnv, source: 'COUNTERSIGN_COMPOSE' };
  }
  const cached = composeCachePath();
  if (fs.existsSync(cached)) return { path: cached, source: 'cache' };
  return undefined;
}

/**
 * Docker Compose, built from its Go module on first use into the cache outside the clone. No Docker
 * engine is needed to run `docker-compose config`, which loads, validates (the compose-spec schema and
 * Compose's own checks: dependencies, profiles, interpolation) and prints the normalized model.
 *
 * `go install module/cmd@version` refuses this module (its go.mod has exclude directives), so it is built
 * from a throw-away main module whose go.mod is Compose's own with the module line renamed: the same
 * requirements, excludes and replacements, hence the same dependency versions as Compose's release.
 * Checksums are verified against the Go checksum database as for any module download.
 */
function ensureCompose() {
  const found = findCompose();
  if (found) return found.path;
  const go = onPath('go');
  if (!go) {
    throw new Error(
      `Docker Compose ${COMPOSE_VERSION} is missing and Go is not installed to build it; install Go (https://go.dev/doc/install) or set COUNTERSIGN_COMPOSE to a Compose v2 binary`,
    );
  }
  const target = composeCachePath();
  const dir = path.dirname(target);
  const work = path.join(dir, 'build');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: [process.env.GOFLAGS, '-mod=mod'].filter(Boolean).join(' '), GOWORK: 'off' };
  const goRun = (args, what) => {
    const r = spawnSync(go, args, { cwd: work, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stderr}`);
    return r.stdout;
  };
  say(`building Docker Compose ${COMPOSE_VERSION} from its Go module into ${dir} (once; about 400 MB of Go modules, under 2 minutes on 2 cores)…`);
  const started = Date.now();
  const info = JSON.parse(goRun(['mod', 'download', '-json', `${COMPOSE_MODULE}@${COMPOSE_VERSION}`], `go mod download ${COMPOSE_MODULE}@${COMPOSE_VERSION}`));
  const upstream = fs.readFileSync(info.GoMod, 'utf8');
  if (!/^module\s+\S+\s*$/m.test(upstream)) throw new Error(`${info.GoMod} has no module line`);
  fs.writeFileSync(
    path.join(work, 'go.mod'),
    `${upstream.replace(/^module\s+\S+\s*$/m, 'module countersign.local/compose-build')}\nrequire ${COMPOSE_MODULE} ${COMPOSE_VERSION}\n`,
  );
  goRun(
    ['build', '-trimpath', '-ldflags', `-s -w -X ${COMPOSE_MODULE}/internal.Version=${COMPOSE_VERSION}`, '-o', target, `${COMPOSE_MODULE}/cmd`],
    `go build ${COMPOSE_MODULE}/cmd`,
  );
  fs.rmSync(work, { recursive: true, force: true });
  say(`built Docker Compose in ${Math.round((Date.now() - started) / 1000)}s: ${target}`);
  return target;
}

/** The version the temporal binary reports (for evidence and --version). */
function temporalCliVersion(binary) {
  try {
    return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

module.exports = {
  TEMPORAL_CLI_VERSION,
  MOTO_VERSION,
  COMPOSE_VERSION,
  PROJECT_ROOT,
  findTemporalCli,
  ensureTemporalCli,
  findMotoServer,
  ensureMotoServer,
  temporalCliVersion,
  temporalCachePath,
  findCompose,
  ensureCompose,
  composeCachePath,
};
