/**
 * The Temporal dev server (`temporal server start-dev`: SQLite in memory, Web UI on its own port),
 * on free localhost ports, started from the located or built CLI (sandbox/toolchain.js), with
 * Countersign's search attributes registered (common/search-attributes.ts) so `countersign list`
 * filters on the server.
 */
import { searchAttributeDevServerFlags } from '../common/search-attributes';
import { ensureTemporalCli } from './toolchain';
import type { ServerProcess } from './processes';
import { freePort, portOpen, startServer } from './processes';

export interface TemporalDevServer {
  address: string;
  uiUrl?: string;
  process: ServerProcess;
  stop(): Promise<void>;
}

/**
 * Start the dev server; if it exits before it is ready, try once more on other ports. A free port is
 * free when asked, not when bound: another process (a second stack on this machine) can take it in
 * between, and the server then exits at start.
 */
export interface TemporalDevServerOptions {
  ui?: boolean;
  /** SQLite file to keep the server's state in (default: in memory); a server started again on it resumes every run. */
  dbFile?: string;
  /**
   * The frontend (gRPC) port; default a free one. A server restarted on its db file must come back on the
   * same port for workers and clients to reconnect (test/integration/server-restart.test.ts).
   */
  port?: number;
  onWait?: (ms: number) => void;
}

export async function startTemporalDevServer(options: TemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  try {
    return await startOnce(options);
  } catch (err) {
    if (!/exited with code/.test((err as Error).message)) throw err;
    // A given port may still be held for a moment by the server that had it: wait, then try it again.
    if (options.port !== undefined) await new Promise((resolve) => setTimeout(resolve, 2_000));
    return startOnce(options);
  }
}

async function startOnce(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const binary = ensureTemporalCli();
  const [port, uiPort, httpPort, metricsPort] = [options.port ?? (await freePort()), await freePort(), await freePort(), await freePort()];
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--log-level',
    'error',
    ...(options.ui ? ['--ui-port', String(uiPort)] : ['--headless']),
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...searchAttributeDevServerFlags(),
  ];
  const server = await startServer({
    name: 'Temporal dev server',
    command: binary,
    args,
    ready: portOpen(port),
    timeoutMs: 90_000,
    onWait: options.onWait,
  });
  return {
    address: `127.0.0.1:${port}`,
    uiUrl: options.ui ? `http://127.0.0.1:${uiPort}` : undefined,
    process: server,
    stop: () => server.stop(),
  };
}
