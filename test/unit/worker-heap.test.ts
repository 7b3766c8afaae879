/**
 * `countersign worker`'s memory settings: V8 collects garbage sooner (COUNTERSIGN_WORKER_HEAP_GROWTH,
 * default 20 %) — the setting's parsing, and that the worker applies it — and bin/countersign.js's first
 * line starts node with a small young generation and glibc's malloc with 2 arenas. What it does to the worker's resident set is
 * measured by `npm run bench:scale` (worker peak RSS), not asserted here.
 *
 * V8's flag setter is mocked in the third test: a V8 flag is process-wide, and this jest process keeps
 * V8's defaults. The last test runs the CLI as a child process.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { DEFAULT_WORKER_HEAP_GROWTH, workerHeapGrowthFromEnv } from '../../worker/config';
import { tuneWorkerHeap } from '../../worker';

describe('COUNTERSIGN_WORKER_HEAP_GROWTH', () => {
  it('defaults to 20 %, and takes 0 (V8 decides) to 1000', () => {
    expect(DEFAULT_WORKER_HEAP_GROWTH).toBe(20);
    expect(workerHeapGrowthFromEnv({})).toBe(20);
    expect(workerHeapGrowthFromEnv({ COUNTERSIGN_WORKER_HEAP_GROWTH: ' ' })).toBe(20);
    expect(workerHeapGrowthFromEnv({ COUNTERSIGN_WORKER_HEAP_GROWTH: '0' })).toBe(0);
    expect(workerHeapGrowthFromEnv({ COUNTERSIGN_WORKER_HEAP_GROWTH: '50' })).toBe(50);
    expect(workerHeapGrowthFromEnv({ COUNTERSIGN_WORKER_HEAP_GROWTH: '1000' })).toBe(1000);
  });

  it('refuses anything else, saying what it takes', () => {
    for (const bad of ['-5', '20%', '1.5', '1001', 'twenty', '0x10']) {
      expect(() => workerHeapGrowthFromEnv({ COUNTERSIGN_WORKER_HEAP_GROWTH: bad })).toThrow(/COUNTERSIGN_WORKER_HEAP_GROWTH must be a whole percentage from 0 .* to 1000, not ".*"; the default is 20/);
    }
  });

  it('is handed to V8 as --heap-growing-percent, and 0 sets nothing', () => {
    const set = jest.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    try {
      tuneWorkerHeap(35);
      expect(set).toHaveBeenCalledWith('--heap-growing-percent=35');
      set.mockClear();
      tuneWorkerHeap(0);
      expect(set).not.toHaveBeenCalled();
    } finally {
      set.mockRestore();
    }
  });

  it('`countersign worker` with a bad value exits 2 with one line, before connecting to anything', () => {
    const cli = path.resolve(__dirname, '..', '..', 'bin', 'countersign.js');
    // TEMPORAL_ADDRESS points nowhere: reaching it would fail differently (exit 1).
    const r = spawnSync(process.execPath, [cli, 'worker'], { env: { ...process.env, COUNTERSIGN_WORKER_HEAP_GROWTH: 'lots', TEMPORAL_ADDRESS: '127.0.0.1:1' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['countersign: COUNTERSIGN_WORKER_HEAP_GROWTH must be a whole percentage from 0 (V8\'s own heuristics) to 1000, not "lots"; the default is 20']);
  }, 60_000);

  it('the bin script starts the worker with its memory settings (its first line), and the worker logs them', () => {
    const cli = path.resolve(__dirname, '..', '..', 'bin', 'countersign.js');
    expect(readFileSync(cli, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4');
    // Run as a user runs it (the script itself, so the kernel reads its first line); TEMPORAL_ADDRESS
    // points nowhere, so the worker logs its settings and then exits 1, unable to connect.
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', AWS_REGION: 'us-east-1', COUNTERSIGN_LOG_LEVEL: 'info' };
    delete env.MALLOC_ARENA_MAX;
    delete env.COUNTERSIGN_WORKER_HEAP_GROWTH;
    const r = spawnSync(cli, ['worker'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    const settings = r.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((event) => event.msg === 'worker memory settings');
    expect(settings).toMatchObject({ heapGrowthPercent: 20, nodeFlags: ['--max-semi-space-size=4'], mallocArenaMax: '2' });
    expect(r.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  }, 60_000);
});
