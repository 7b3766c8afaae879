/**
 * The AWS sandbox: a real moto server (pinned moto[server] in .venv) on a free localhost port.
 * Managed policies are loaded so `arn:aws:iam::aws:policy/...` attaches work (docs/aws.md §0).
 */
import { ensureMotoServer } from './toolchain';
import type { ServerProcess } from './processes';
import { freePort, startServer } from './processes';

export interface MotoSandbox {
  endpoint: string;
  port: number;
  process: ServerProcess;
  /** The environment that points AWS SDK clients (and the worker) at this sandbox. */
  env: Record<string, string>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export const SANDBOX_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };

export async function startMoto(options: { onWait?: (ms: number) => void } = {}): Promise<MotoSandbox> {
  const binary = ensureMotoServer();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const ready = async () => {
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      return res.ok;
    } catch {
      return false;
    }
  };
  const process_ = await startServer({
    name: 'moto (AWS sandbox)',
    command: binary,
    args: ['-H', '127.0.0.1', '-p', String(port)],
    env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: 'true', PYTHONUNBUFFERED: '1' },
    ready,
    timeoutMs: 60_000,
    onWait: options.onWait,
  });
  return {
    endpoint,
    port,
    process: process_,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      COUNTERSIGN_AWS_EMULATOR: 'moto',
      AWS_REGION: 'us-east-1',
      ...SANDBOX_CREDENTIALS,
    },
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
    stop: () => process_.stop(),
  };
}
