/**
 * pino, installed as the Temporal runtime logger: one JSON event per line on stderr, with an ISO-8601
 * `time` and the level's name (`"level":"info"`), never a task token.
 */
import type { DestinationStream } from 'pino';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/worker';
import pino from 'pino';

/** Keys never written to the log: a task token lets its holder complete or fail the task. */
const SECRET_KEYS = ['taskToken'];

export function createPino(level = process.env.COUNTERSIGN_LOG_LEVEL ?? 'info', destination?: DestinationStream): pino.Logger {
  return pino(
    {
      level,
      base: { service: 'countersign' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Temporal passes failures as `error`; serialize them like `err` (message, stack) instead of `{}`.
      serializers: { error: pino.stdSerializers.err },
      // Belt and braces for our own log calls; PinoTemporalLogger drops the key before it gets here.
      redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`]), remove: true },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

type PinoLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, PinoLevel> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The workflow bundler's statistics ("Workflow bundle created" with its size, and webpack's build
 * summary) are info in the SDK; they are build chatter, not events, so they go out at debug.
 */
export function isBundleStatistics(message: string): boolean {
  return (
    message.startsWith('Workflow bundle created') ||
    /^asset \S+ [\d.]+ [KMG]?i?B\b/.test(message) ||
    /\bwebpack [\d.]+ compiled\b/.test(message)
  );
}

/** The log metadata without secrets (task tokens); the caller's object is not modified. */
export function scrubMetadata(meta: LogMetadata | undefined): LogMetadata {
  if (!meta) return {};
  if (!SECRET_KEYS.some((k) => Object.prototype.hasOwnProperty.call(meta, k))) return meta;
  const copy: LogMetadata = { ...meta };
  for (const k of SECRET_KEYS) delete copy[k];
  return copy;
}

export class PinoTemporalLogger implements Logger {
  constructor(private readonly pino: pino.Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const pinoLevel = level === 'INFO' && isBundleStatistics(message) ? 'debug' : LEVELS[level];
    this.pino[pinoLevel](scrubMetadata(meta), message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
