/**
 * The worker's log lines: pino JSON with an ISO-8601 `time` and the level's name, Temporal runtime logs
 * without task tokens, and the workflow bundler's statistics at debug rather than info.
 */
import { createPino, isBundleStatistics, PinoTemporalLogger, scrubMetadata } from '../../worker/logger';

type Line = Record<string, unknown>;

function capture(level = 'debug'): { lines: Line[]; raw: string[]; logger: ReturnType<typeof createPino> } {
  const raw: string[] = [];
  const logger = createPino(level, { write: (chunk: string) => void raw.push(chunk) });
  return {
    raw,
    logger,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Line);
    },
  };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('createPino', () => {
  it('writes one JSON line per event with an ISO-8601 time and the level name', () => {
    const out = capture('info');
    out.logger.info({ workflowId: 'stale-iam-users/123456789012' }, 'worker started');
    out.logger.warn('careful');
    out.logger.debug('not at info');

    expect(out.raw).toHaveLength(2);
    for (const line of out.raw) expect(line.endsWith('\n') && line.indexOf('\n') === line.length - 1).toBe(true);
    const [started, careful] = out.lines;
    expect(started).toMatchObject({ level: 'info', msg: 'worker started', service: 'countersign', workflowId: 'stale-iam-users/123456789012' });
    expect(careful).toMatchObject({ level: 'warn', msg: 'careful' });
    for (const line of out.lines) {
      expect(typeof line.time).toBe('string');
      expect(line.time).toMatch(ISO);
      expect(Math.abs(Date.parse(line.time as string) - Date.now())).toBeLessThan(60_000);
    }
  });

  it('never writes a task token from our own log calls either', () => {
    const out = capture();
    out.logger.info({ taskToken: 'c2VjcmV0', activity: { taskToken: 'c2VjcmV0', activityId: '1' } }, 'x');
    expect(out.raw.join('')).not.toContain('c2VjcmV0');
    expect(out.lines[0]).toMatchObject({ activity: { activityId: '1' } });
  });

  it('serializes an `error` with its message and stack instead of {}', () => {
    const out = capture();
    out.logger.error({ error: new Error('boom') }, 'failed');
    const [line] = out.lines;
    expect(line?.error).toMatchObject({ type: 'Error', message: 'boom' });
    expect(String((line?.error as Line).stack)).toContain('boom');
  });
});

describe('PinoTemporalLogger', () => {
  it('maps Temporal levels to pino level names', () => {
    const out = capture('trace');
    const temporal = new PinoTemporalLogger(out.logger);
    temporal.trace('t');
    temporal.debug('d');
    temporal.info('i');
    temporal.warn('w');
    temporal.error('e');
    temporal.log('INFO', 'via log');
    expect(out.lines.map((l) => [l.level, l.msg])).toEqual([
      ['trace', 't'],
      ['debug', 'd'],
      ['info', 'i'],
      ['warn', 'w'],
      ['error', 'e'],
      ['info', 'via log'],
    ]);
  });

  it('drops the task token from Temporal log metadata and keeps the rest', () => {
    const out = capture();
    const temporal = new PinoTemporalLogger(out.logger);
    const token = 'CiQ2ZTk3ZmM0Ni1zZWNyZXQtdGFzay10b2tlbg==';
    const meta = {
      sdkComponent: 'activity',
      taskQueue: 'countersign',
      activityId: '3',
      activityType: 'listUsers',
      workflowId: 'stale-iam-users/123456789012',
      taskToken: token,
      attempt: 1,
    };
    temporal.info('Activity completed', meta);
    temporal.log('ERROR', 'Error while offloading ActivityTask result', { taskToken: token, error: new Error('x') });

    expect(out.raw.join('')).not.toContain(token);
    expect(out.raw.join('')).not.toContain('taskToken');
    expect(out.lines[0]).toMatchObject({ level: 'info', msg: 'Activity completed', activityId: '3', activityType: 'listUsers', workflowId: 'stale-iam-users/123456789012', attempt: 1 });
    expect(out.lines[1]).toMatchObject({ level: 'error', error: { message: 'x' } });
    // The caller's metadata object is left as it was.
    expect(meta.taskToken).toBe(token);
  });

  it('logs the workflow bundler statistics at debug, not info', () => {
    const out = capture('debug');
    const temporal = new PinoTemporalLogger(out.logger);
    temporal.info('Workflow bundle created', { size: '1.42MB', sdkComponent: 'worker', taskQueue: 'countersign' });
    temporal.info(
      'asset workflow-bundle-2c2f6f3a1b.js 1.42 MiB [emitted] (name: main)\n' +
        'orphan modules 390 KiB [orphan] 143 modules\n' +
        'webpack 5.99.9 compiled successfully in 1713 ms',
    );
    temporal.info('Worker state changed', { state: 'RUNNING' });
    expect(out.lines.map((l) => [l.level, String(l.msg).split('\n')[0]])).toEqual([
      ['debug', 'Workflow bundle created'],
      ['debug', 'asset workflow-bundle-2c2f6f3a1b.js 1.42 MiB [emitted] (name: main)'],
      ['info', 'Worker state changed'],
    ]);
  });

  it('at the default info level the bundle statistics do not appear at all', () => {
    const out = capture('info');
    new PinoTemporalLogger(out.logger).info('Workflow bundle created', { size: '1.42MB' });
    expect(out.raw).toEqual([]);
  });

  it('leaves a failed bundle (webpack errors, logged at error) at error', () => {
    const out = capture('info');
    new PinoTemporalLogger(out.logger).error('asset workflow-bundle-x.js 1 MiB [emitted]\nERROR in ./workflows/index.ts\nwebpack 5.99.9 compiled with 1 error');
    expect(out.lines[0]?.level).toBe('error');
  });
});

describe('helpers', () => {
  it('isBundleStatistics recognises the bundler messages only', () => {
    expect(isBundleStatistics('Workflow bundle created')).toBe(true);
    expect(isBundleStatistics('webpack 5.99.9 compiled with 2 warnings in 900 ms')).toBe(true);
    expect(isBundleStatistics('Activity completed')).toBe(false);
    expect(isBundleStatistics('Worker state changed')).toBe(false);
  });

  it('scrubMetadata returns the same object when there is nothing to drop', () => {
    const meta = { workflowId: 'w' };
    expect(scrubMetadata(meta)).toBe(meta);
    expect(scrubMetadata(undefined)).toEqual({});
    expect(scrubMetadata({ taskToken: 't', a: 1 })).toEqual({ a: 1 });
  });
});
