/**
 * The Countersign worker: registers every workflow and activity on the task queue, logs through pino,
 * and shuts down gracefully on SIGINT/SIGTERM (in-flight activities finish or are retried elsewhere).
 */
import path from 'node:path';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { AwsClients, awsSettingsFromEnv } from '../activities/aws/clients';
import type { AwsSettings } from '../activities/aws/clients';
import { temporalSettingsFromEnv } from './config';
import { createPino, PinoTemporalLogger } from './logger';

let installedLogger: pino.Logger | undefined;

/** Install pino as the Temporal runtime logger (once per process). */
export function installLogging(logger?: pino.Logger): pino.Logger {
  if (!installedLogger) {
    installedLogger = logger ?? createPino();
    Runtime.install({ logger: new PinoTemporalLogger(installedLogger) });
  }
  return installedLogger;
}

export interface CountersignWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  aws: AwsSettings;
  policyPath?: string;
  /** A prebuilt workflow bundle (tests build one once); otherwise workflows/ is bundled at start. */
  workflowBundle?: { codePath: string };
  /** Test hook: the clock activities read. */
  now?: () => Date;
}

export async function createCountersignWorker(options: CountersignWorkerOptions): Promise<{ worker: Worker; aws: AwsClients }> {
  const aws = new AwsClients(options.aws);
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: path.join(__dirname, '..', 'workflows') }),
    activities: createActivities({ aws, policyPath: options.policyPath, now: options.now }),
    shutdownGraceTime: '10s',
  });
  return { worker, aws };
}

/** `countersign worker`: a worker for TEMPORAL_ADDRESS until SIGINT/SIGTERM. */
export async function runWorkerFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = installLogging();
  const temporal = temporalSettingsFromEnv(env);
  const awsSettings = awsSettingsFromEnv(env);
  const connection = await NativeConnection.connect(temporal.connect.connectionOptions);
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
