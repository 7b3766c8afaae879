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

export function parseMetricsAddress(address: string): string {
  // ip:port or [ipv6]:port: the runtime parses a socket address, so no host names (not even localhost).
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new Error(`COUNTERSIGN_METRICS_ADDRESS must be ip:port (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464), not "${address}"`);
  }
  return address;
}
