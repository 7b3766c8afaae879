/** Child servers of the sandbox: free ports, readiness waits, stop by process id (never by name). */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
    socket.connect(port, '127.0.0.1');
  });
}

export interface ServerProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** The last lines it wrote, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Ready when this returns true (polled). */
  ready: () => Promise<boolean>;
  timeoutMs: number;
  onWait?: (elapsedMs: number) => void;
}

export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const child = spawn(options.command, options.args, {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  // The first lines (where a crash says why, before its stack) and the last ones.
  const head: string[] = [];
  const tail: string[] = [];
  let dropped = 0;
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) (head.length < 10 ? head : tail).push(line);
    if (tail.length > 40) dropped += tail.splice(0, tail.length - 40).length;
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const server: ServerProcess = {
    name: options.name,
    pid: child.pid ?? -1,
    child,
    output: () => [...head, ...(dropped ? [`… ${dropped} line(s) …`] : []), ...tail].join('\n'),
    stop: () => stopProcess(child),
  };

  const started = Date.now();
  let lastNotice = started;
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(r, 100, undefined))]);
    if (failed) throw new Error(`${options.name} could not start (${options.command}): ${failed.message}`);
    if (exited !== undefined) {
      throw new Error(`${options.name} exited with code ${exited} before it was ready:\n${server.output()}`);
    }
    if (await options.ready()) return server;
    const elapsed = Date.now() - started;
    if (elapsed > options.timeoutMs) {
      await server.stop();
      throw new Error(`${options.name} was not ready after ${Math.round(elapsed / 1000)}s:\n${server.output()}`);
    }
    if (options.onWait && Date.now() - lastNotice >= 5_000) {
      lastNotice = Date.now();
      options.onWait(elapsed);
    }
  }
}

export function portOpen(port: number): () => Promise<boolean> {
  return () => canConnect(port);
}

/** SIGTERM by pid, then SIGKILL after a grace period. */
export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
