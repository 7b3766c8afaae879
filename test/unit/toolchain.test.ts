/**
 * Finding the real parts: a clear one-line error naming what is missing, before anything is started.
 * Each case runs in a child process with a PATH that holds only node, and empty caches.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const toolchain = path.resolve(__dirname, '..', '..', 'sandbox', 'toolchain.js');

/** Run `call` on the toolchain module; prints its JSON result, or ERR and the error message. */
function inBareEnvironment(call: string, env: Record<string, string> = {}, onPath: string[] = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-bare-'));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const name of onPath) {
    writeFileSync(path.join(bin, name), '#!/bin/sh\nexit 0\n');
    chmodSync(path.join(bin, name), 0o755);
  }
  const script = `try { console.log(JSON.stringify(require(${JSON.stringify(toolchain)}).${call}) ?? 'undefined') } catch (e) { console.log('ERR ' + e.message) }`;
  const result = spawnSync(path.join(bin, 'node'), ['-e', script], {
    env: { PATH: bin, HOME: dir, COUNTERSIGN_CACHE_DIR: path.join(dir, 'cache'), COUNTERSIGN_VENV: path.join(dir, 'venv'), ...env },
    encoding: 'utf8',
  });
  return result.stdout.trim();
}

describe('the sandbox toolchain', () => {
  it('says Go is needed when the Temporal CLI is neither given, on PATH, nor cached', () => {
    expect(inBareEnvironment('ensureTemporalCli()')).toMatch(/^ERR the Temporal CLI is missing and Go is not installed to build it; install Go .* or put a temporal binary on PATH or in TEMPORAL_CLI$/);
  });

  it('says what is wrong with a TEMPORAL_CLI that does not exist', () => {
    expect(inBareEnvironment('ensureTemporalCli()', { TEMPORAL_CLI: '/nowhere/temporal' })).toMatch(/^ERR TEMPORAL_CLI is set to \/nowhere\/temporal, which does not exist/);
  });

  it('uses a temporal found on PATH without building anything, and finds none on a bare PATH', () => {
    expect(JSON.parse(inBareEnvironment('ensureTemporalCli()', {}, ['temporal']))).toMatch(/\/bin\/temporal$/);
    expect(inBareEnvironment('findTemporalCli()')).toBe('undefined');
  });

  it('says Python 3 is needed for the AWS sandbox when it is missing', () => {
    expect(inBareEnvironment('ensureMotoServer()')).toMatch(/^ERR Python 3 is needed for the AWS sandbox \(moto\) and was not found/);
  });
});
