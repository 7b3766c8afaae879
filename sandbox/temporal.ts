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
export async function startTemporalDevServer(options: { ui?: boolean; dbFile?: string; onWait?: (ms: number) => void } = {}): Promise<TemporalDevServer> {
  try {
    return await startOnce(options);
  } catch (err) {
    if (!/exited with code/.test((err as Error).message)) throw err;
    return startOnce(options);
  }
}

async function startOnce(options: { ui?: boolean; dbFile?: string; onWait?: (ms: number) => void }): Promise<TemporalDevServer> {
  const binary = ensureTemporalCli();
  const [port, uiPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
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
