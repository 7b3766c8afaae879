/**
 * The embedded default: a Temporal dev server, the moto AWS sandbox and a Countersign worker in this
 * process, all on free localhost ports, all stopped by process id. Used by `countersign demo`,
 * `countersign dev` and the integration tests.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import { awsSettingsFromEnv } from '../activities/aws/clients';
import type { AwsClients } from '../activities/aws/clients';
import { createCountersignWorker, installLogging } from '../worker';
import { CLIENT_CHANNEL_ARGS, metricsAddressFromEnv } from '../worker/config';
import type pino from 'pino';
import type { MotoSandbox } from './moto';
import { startMoto } from './moto';
import type { TemporalDevServer } from './temporal';
import { startTemporalDevServer } from './temporal';
import { PROJECT_ROOT } from './toolchain';

export const DEMO_POLICY_PATH = path.join(PROJECT_ROOT, 'sandbox', 'demo-policy.json');

export interface Stack {
  temporal: TemporalDevServer;
  moto: MotoSandbox;
  client: Client;
  taskQueue: string;
  namespace: string;
  /** Environment for another shell (or the CLI) to use this stack. */
  env: Record<string, string>;
  /** The in-process worker; absent with `worker: false`. */
  worker?: Worker;
  /** The AWS endpoint the worker uses (workerAwsEndpoint's, or moto's). */
  workerAwsEndpoint: string;
  stop(): Promise<void>;
}

export async function startStack(options: {
  ui?: boolean;
  policyPath?: string;
  taskQueue?: string;
  logger?: pino.Logger;
  say?: (line: string) => void;
  /**
   * The AWS endpoint the worker (and only the worker) uses, given the sandbox once it runs: e.g. a
   * latency proxy in front of moto (bench/scale.ts). Default: moto's own endpoint.
   */
  workerAwsEndpoint?: (moto: MotoSandbox) => Promise<string> | string;
  /**
   * false: no worker in this process; the caller runs one (`countersign worker` with `env` and
   * AWS_ENDPOINT_URL=workerAwsEndpoint), e.g. to measure the worker's own memory (bench/scale.ts).
   */
  worker?: boolean;
}): Promise<Stack> {
  const say = options.say ?? (() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    // COUNTERSIGN_METRICS_ADDRESS, if set, serves the embedded worker's Prometheus metrics (as for `countersign worker`).
    installLogging(options.logger, { metricsAddress: metricsAddressFromEnv(process.env) });
    say('starting the Temporal dev server…');
    const temporal = await startTemporalDevServer({
      ui: options.ui,
      onWait: (ms) => say(`  still waiting for the Temporal dev server (${Math.round(ms / 1000)}s)…`),
    });
    stops.push(() => temporal.stop());
    say(`  Temporal at ${temporal.address}${temporal.uiUrl ? `, Web UI at ${temporal.uiUrl}` : ''} (pid ${temporal.process.pid})`);
    say('starting the AWS sandbox (moto)…');
    const moto = await startMoto({ onWait: (ms) => say(`  still waiting for moto (${Math.round(ms / 1000)}s)…`) });
    stops.push(() => moto.stop());
    say(`  moto at ${moto.endpoint} (pid ${moto.process.pid})`);

    const taskQueue = options.taskQueue ?? 'countersign';
    const namespace = 'default';
    const policyPath = options.policyPath ?? DEMO_POLICY_PATH;
    const env: Record<string, string> = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: namespace,
      COUNTERSIGN_TASK_QUEUE: taskQueue,
      COUNTERSIGN_POLICY: policyPath,
      ...moto.env,
    };
    // The worker and every AWS client in this process use the sandbox.
    Object.assign(process.env, moto.env);

    const workerEndpoint = options.workerAwsEndpoint ? await options.workerAwsEndpoint(moto) : moto.endpoint;

    let worker: Worker | undefined;
    if (options.worker !== false) {
      const nativeConnection = await NativeConnection.connect({ address: temporal.address });
      stops.push(() => nativeConnection.close());
      const created = await createCountersignWorker({
        connection: nativeConnection,
        namespace,
        taskQueue,
        aws: awsSettingsFromEnv({ ...process.env, ...moto.env, AWS_ENDPOINT_URL: workerEndpoint }),
        policyPath,
      });
      const running = created.worker.run();
      stops.push(async () => {
        if (created.worker.getState() === 'RUNNING') created.worker.shutdown();
        await running.catch(() => undefined);
        (created.aws as AwsClients).destroy();
      });
      worker = created.worker;
    }
    const connection = await Connection.connect({ address: temporal.address, channelArgs: CLIENT_CHANNEL_ARGS });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace });
    if (worker) say(`  worker polling task queue "${taskQueue}" with the approval policy ${policyPath}`);
    return { temporal, moto, client, taskQueue, namespace, env, worker, workerAwsEndpoint: workerEndpoint, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
