/**
 * Worker and client configuration from the environment (docs/design.md §4): Temporal through
 * @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles —
 * the same as the temporal CLI), the task queue, the approval policy path, and AWS settings; and which
 * workflow code a worker loads (selectWorkflowSource).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { ClientConnectConfig } from '@temporalio/envconfig';
import type { BundleOptions } from '@temporalio/worker';

export const DEFAULT_TASK_QUEUE = 'countersign';

export interface TemporalSettings {
  connect: ClientConnectConfig;
  address: string;
  namespace: string;
  taskQueue: string;
}

export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const connect = loadClientConnectConfig({ overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string')) });
  const address = connect.connectionOptions.address ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  connect.connectionOptions.address = address;
  return {
    connect,
    address,
    namespace: connect.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: env.COUNTERSIGN_TASK_QUEUE || DEFAULT_TASK_QUEUE,
  };
}

/**
 * `COUNTERSIGN_METRICS_ADDRESS`: the ip:port the Temporal runtime serves Prometheus metrics on
 * (`GET /metrics`), e.g. `127.0.0.1:9464`, or `0.0.0.0:9464` in a container. Unset or empty: no metrics
 * endpoint. Anything else is a configuration error, reported at start rather than swallowed by the runtime.
 */
export function metricsAddressFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.COUNTERSIGN_METRICS_ADDRESS?.trim();
  if (!raw) return undefined;
  return parseMetricsAddress(raw);
}

/**
 * `COUNTERSIGN_WORKER_HEAP_GROWTH`: how far, in percent, the worker's V8 heap may grow past what the
 * last full garbage collection kept before the next one runs (V8's --heap-growing-percent); default 20.
 * A worker's live data is small (its plan pages, batches and the runs it caches) but it makes a lot of
 * short-lived garbage: every AWS answer is parsed whole, a bulk user read up to 1,000 users' details
 * at a time. Left to itself, V8 on a large host lets the heap grow to several times the live data
 * before collecting, so the resident set of a worker applying a few thousand changes reached 390–490
 * MiB, most of it garbage. It only sets when V8 collects — the heap limit stays V8's own, so nothing a
 * worker needs is ever refused; the price is more frequent full collections (bench/scale.ts measures
 * both). 0 leaves V8's own heuristics.
 */
export const DEFAULT_WORKER_HEAP_GROWTH = 20;

export function workerHeapGrowthFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.COUNTERSIGN_WORKER_HEAP_GROWTH?.trim();
  if (!raw) return DEFAULT_WORKER_HEAP_GROWTH;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) > 1000) {
    throw new Error(`COUNTERSIGN_WORKER_HEAP_GROWTH must be a whole percentage from 0 (V8's own heuristics) to 1000, not "${raw}"; the default is ${DEFAULT_WORKER_HEAP_GROWTH}`);
  }
  return Number(raw);
}

export function parseMetricsAddress(address: string): string {
  // ip:port or [ipv6]:port: the runtime parses a socket address, so no host names (not even localhost).
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new Error(`COUNTERSIGN_METRICS_ADDRESS must be ip:port (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464), not "${address}"`);
  }
  return address;
}

/*
 * The workflow bundle. `npm run build` (sandbox/bundle-workflows.ts) bundles the compiled
 * dist/workflows once, into dist/workflow-bundle.js, so a worker does not run webpack at every start
 * (seconds of CPU, and the bundler's native @swc/core in the image). Next to it,
 * dist/workflow-bundle.json records a digest of what the bundle was built from: every compiled file
 * under dist/workflows and dist/common (all that workflows import from this project) and the versions
 * of the packages the bundle embeds (and how it is built). A worker recomputes the digest at start (a few dozen small
 * files) and uses the bundle only when it matches; otherwise — a `tsc` run without the bundling step,
 * an edited file in dist/ — it bundles as before, saying so in one log line. A content digest rather
 * than mtimes: copies (Docker layers, `cp -r`) change mtimes but not contents.
 */
export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';
export const WORKFLOW_BUNDLE_SIDECAR = 'workflow-bundle.json';
/** The folders, next to workflows/, whose code the bundle holds. */
const BUNDLED_FOLDERS = ['workflows', 'common'];
/** Packages whose code the bundle embeds: a new version (npm install) makes the bundle stale. */
const BUNDLED_PACKAGES = ['@temporalio/workflow', '@temporalio/common', 'zod'];

/**
 * How the workflow bundle is built, wherever it is built (`npm run build`, a worker bundling at start,
 * the test setup). The SDK's default inlines a full source map — every bundled file's source, zod's
 * megabyte included — which the worker holds twice (the bundle text, and the map parsed for workflow
 * stack traces) for as long as it runs. A map without the sources and with line-level mappings still
 * turns a workflow stack trace into file:line of this project's code: 0.19 MB of map instead of 2.4.
 * The SDK requires the map to be inline (it reads it from the bundle), so `inline-` stays.
 */
const WORKFLOW_BUNDLE_DEVTOOL = 'inline-nosources-cheap-module-source-map';
export const WORKFLOW_BUNDLER_OPTIONS: Pick<BundleOptions, 'webpackConfigHook'> = {
  webpackConfigHook: (config) => ({ ...config, devtool: WORKFLOW_BUNDLE_DEVTOOL }),
};

export interface WorkflowBundleSidecar {
  digest: string;
  builtAt: string;
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(file);
    return e.isFile() && /\.(js|ts)$/.test(e.name) ? [file] : [];
  });
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

/** The digest of what a bundle of `<root>/workflows` is built from (see above). */
export function workflowSourcesDigest(root: string): string {
  const hash = createHash('sha256');
  hash.update(`devtool ${WORKFLOW_BUNDLE_DEVTOOL}\n`);
  for (const name of BUNDLED_PACKAGES) hash.update(`${name}@${packageVersion(name)}\n`);
  const files = BUNDLED_FOLDERS.flatMap((folder) => sourceFiles(path.join(root, folder)))
    .map((file) => path.relative(root, file).split(path.sep).join('/'))
    .sort();
  for (const file of files) {
    hash.update(`${file}\n`);
    hash.update(readFileSync(path.join(root, file)));
    hash.update('\n');
  }
  return hash.digest('hex');
}

export type WorkflowSource =
  | { kind: 'prebuilt'; codePath: string }
  | { kind: 'bundle-at-start'; workflowsPath: string; reason: string };

/**
 * What a worker whose workflows are at `workflowsPath` should load: the prebuilt bundle next to that
 * folder (dist/workflow-bundle.js for dist/workflows) when its sidecar's digest matches the code now
 * there, else the folder itself, bundled at start, with the reason. Running from the TypeScript
 * sources (jest, ts-node) there is no bundle next to workflows/, so those always bundle.
 */
export function selectWorkflowSource(workflowsPath: string): WorkflowSource {
  const root = path.dirname(workflowsPath);
  const codePath = path.join(root, WORKFLOW_BUNDLE_FILE);
  const sidecarPath = path.join(root, WORKFLOW_BUNDLE_SIDECAR);
  const bundleAtStart = (reason: string): WorkflowSource => ({ kind: 'bundle-at-start', workflowsPath, reason });
  if (!existsSync(codePath) || !existsSync(sidecarPath)) return bundleAtStart(`no prebuilt workflow bundle at ${codePath} (\`npm run build\` writes one)`);
  let sidecar: Partial<WorkflowBundleSidecar>;
  try {
    sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8')) as Partial<WorkflowBundleSidecar>;
  } catch (err) {
    return bundleAtStart(`unreadable ${sidecarPath} (${(err as Error).message})`);
  }
  if (sidecar.digest !== workflowSourcesDigest(root)) {
    return bundleAtStart(`the prebuilt workflow bundle ${codePath} is stale: ${BUNDLED_FOLDERS.join('/, ')}/ changed since it was built (\`npm run build\` rebuilds it)`);
  }
  return { kind: 'prebuilt', codePath };
}

/**
 * gRPC options for Countersign's client connections. A large run's history (up to Temporal's 50 MiB)
 * comes back in pages that can pass grpc-js's default 4 MiB receive limit, which would make
 * `countersign evidence` fail on exactly the runs an auditor most needs; the worker's own connection
 * (Temporal's core) already accepts 128 MiB, and so do these.
 */
export const CLIENT_CHANNEL_ARGS = { 'grpc.max_receive_message_length': 128 * 1024 * 1024 } as const;
