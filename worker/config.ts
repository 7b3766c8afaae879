/**
 * Worker and client configuration from the environment (docs/design.md §4): Temporal through
 * @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles —
 * the same as the temporal CLI), the task queue, the approval policy path, and AWS settings.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { ClientConnectConfig } from '@temporalio/envconfig';

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
