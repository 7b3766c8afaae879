/** Run the built `countersign` CLI (dist/, built by `npm test`'s set-up) as a user would. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '..', '..', 'bin', 'countersign.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`countersign ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    // 'close', not 'exit': the child's output streams are read to their end by then.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** stderr without the AWS SDK's Node-version notice (it is not ours). */
export function ownStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() && !/NodeVersionSupportWarning|versions published|will require node|To continue receiving|and security updates|More information can be found|--trace-warnings/.test(l));
}
