/**
 * The Countersign worker: registers every workflow and activity on the task queue, logs through pino,
 * and shuts down gracefully on SIGINT/SIGTERM (in-flight activities finish or are retried elsewhere).
 */
import path from 'node:path';
import v8 from 'node:v8';
import { Client } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { AwsClients, resolveAwsSettings } from '../activities/aws/clients';
import type { AwsSettings } from '../activities/aws/clients';
import { metricsAddressFromEnv, parseMetricsAddress, selectWorkflowSource, temporalSettingsFromEnv, workerHeapGrowthFromEnv, WORKFLOW_BUNDLER_OPTIONS } from './config';
import { createPino, PinoTemporalLogger } from './logger';

let installed: { logger: pino.Logger; metricsAddress?: string } | undefined;

export interface InstallOptions {
  /**
   * ip:port to serve the runtime's Prometheus metrics on (`GET /metrics`); undefined: no metrics.
   * From `COUNTERSIGN_METRICS_ADDRESS` (metricsAddressFromEnv) for the worker and `countersign dev`.
   */
  metricsAddress?: string;
}

/**
 * Install the Temporal runtime (once per process): pino as its logger and, if asked, a Prometheus
 * metrics endpoint for every worker and connection of this process. Later calls return the installed
 * logger and change nothing (a different metrics address is reported, not applied). It must run before
 * anything instantiates the runtime (a NativeConnection, a Worker).
 */
export function installLogging(logger?: pino.Logger, options: InstallOptions = {}): pino.Logger {
  const metricsAddress = options.metricsAddress ? parseMetricsAddress(options.metricsAddress) : undefined;
  if (installed) {
    if (metricsAddress && metricsAddress !== installed.metricsAddress) {
      installed.logger.warn(
        { requested: metricsAddress, installed: installed.metricsAddress ?? null },
        'metrics address ignored: the Temporal runtime of this process is already installed',
      );
    }
    return installed.logger;
  }
  const log = logger ?? createPino();
  Runtime.install({
    logger: new PinoTemporalLogger(log),
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
  installed = { logger: log, metricsAddress };
  if (metricsAddress) log.info({ metricsAddress, url: `http://${metricsAddress}/metrics` }, 'Prometheus metrics endpoint');
  return log;
}

export interface CountersignWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  aws: AwsSettings;
  policyPath?: string;
  /**
   * A workflow bundle to use (tests build one once per run); otherwise the one `npm run build` wrote
   * next to the compiled workflows if it is current, else workflows/ bundled at start
   * (selectWorkflowSource).
   */
  workflowBundle?: { codePath: string };
  /** Test hook: the clock activities read. */
  now?: () => Date;
}

export async function createCountersignWorker(options: CountersignWorkerOptions): Promise<{ worker: Worker; aws: AwsClients }> {
  const aws = new AwsClients(options.aws);
  let client: Client | undefined;
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...workflowCode(options.workflowBundle),
    activities: createActivities({ aws, policyPath: options.policyPath, now: options.now, temporal: () => (client ??= new Client({ connection: options.connection, namespace: options.namespace })) }),
    shutdownGraceTime: '10s',
    // A batch activity's checkpoint travels in its heartbeats (activities/batch.ts): sent at least every
    // 2 s, a retried batch redoes at most that much work. Heartbeats are not history events.
    maxHeartbeatThrottleInterval: '2s',
  });
  return { worker, aws };
}

/** The workflow code for Worker.create: the given bundle, the prebuilt one, or workflows/ bundled now. */
function workflowCode(given?: { codePath: string }): { workflowBundle: { codePath: string } } | { workflowsPath: string; bundlerOptions: typeof WORKFLOW_BUNDLER_OPTIONS } {
  if (given) return { workflowBundle: given };
  const source = selectWorkflowSource(path.join(__dirname, '..', 'workflows'));
  if (source.kind === 'prebuilt') return { workflowBundle: { codePath: source.codePath } };
  Runtime.instance().logger.info(`bundling workflows at start: ${source.reason}`, { workflowsPath: source.workflowsPath });
  return { workflowsPath: source.workflowsPath, bundlerOptions: WORKFLOW_BUNDLER_OPTIONS };
}

/**
 * How eagerly V8 collects garbage in this process (worker/config.ts workerHeapGrowthFromEnv): a
 * process-wide V8 flag, so it covers the workflow thread too. V8 reads it each time it sets the next
 * collection's threshold, which is why it can be set here, after start, rather than on node's command
 * line (where NODE_OPTIONS does not allow it). 0: V8's own heuristics, nothing set.
 */
export function tuneWorkerHeap(growthPercent: number): void {
  if (growthPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${growthPercent}`);
}

/** `countersign worker`: a worker for TEMPORAL_ADDRESS until SIGINT/SIGTERM. */
export async function runWorkerFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const heapGrowth = workerHeapGrowthFromEnv(env);
  tuneWorkerHeap(heapGrowth);
  const log = installLogging(undefined, { metricsAddress: metricsAddressFromEnv(env) });
  // What bin/countersign.js's first line and COUNTERSIGN_WORKER_HEAP_GROWTH set (`node bin/…` skips the former).
  log.info({ heapGrowthPercent: heapGrowth || 'V8 default', nodeFlags: process.execArgv, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? 'glibc default' }, 'worker memory settings');
  const temporal = temporalSettingsFromEnv(env);
  const awsSettings = await resolveAwsSettings(env);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporal.connect.connectionOptions);
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${temporal.address} (${(err as Error).message.split('\n')[0]}); start one with \`countersign dev\` or set TEMPORAL_ADDRESS`);
  }
  const { worker, aws } = await createCountersignWorker({
    connection,
    namespace: temporal.namespace,
    taskQueue: temporal.taskQueue,
    aws: awsSettings,
    policyPath: env.COUNTERSIGN_POLICY || undefined,
  });
  log.info(
    { address: temporal.address, namespace: temporal.namespace, taskQueue: temporal.taskQueue, awsEndpoint: awsSettings.endpoint ?? 'AWS', policy: env.COUNTERSIGN_POLICY ?? 'built-in default' },
    'worker started',
  );
  // Worker.run() handles SIGINT/SIGTERM itself (Runtime's shutdown signals): it stops polling and
  // drains in-flight tasks before resolving.
  try {
    await worker.run();
  } finally {
    aws.destroy();
    await connection.close();
    log.info('worker stopped');
  }
}
