/**
 * The one place AWS errors are classified (docs/design.md §5, docs/aws.md §6.3).
 *
 * SDK retries stay few and fast; Temporal owns the long horizon. Every error leaving an activity is
 * an ApplicationFailure typed `AWS.<name>` whose retryability is decided here, at throw time, so the
 * decision is unit-tested and never spread over RetryPolicy.nonRetryableErrorTypes.
 */
import { ApplicationFailure } from '@temporalio/common';

export type AwsErrorCategory =
  | 'throttle' // the SDK already retried a few times; Temporal retries with a longer delay
  | 'transient' // 5xx, timeouts, connection resets
  | 'conflict' // in-progress / concurrent modification: retry with a longer backoff
  | 'expired-credentials' // refresh credentials, then retry
  | 'unimplemented' // an emulator answered with a non-AWS body on a 5xx (moto: operation not implemented)
  | 'permanent'; // access, validation, quotas, configuration: a human must act

export interface AwsErrorClassification {
  category: AwsErrorCategory;
  name: string;
  retryable: boolean;
  httpStatusCode?: number;
  requestId?: string;
  attempts?: number;
}

const THROTTLE = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ThrottledException',
  'SlowDown',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
]);

const TRANSIENT = new Set([
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'ServiceFailureException',
  'ServiceFailure',
  'ServiceException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

const CONFLICT = new Set([
  'ConcurrentModificationException',
  'ConcurrentModification',
  'ConflictException',
  'EntityTemporarilyUnmodifiableException',
  'EntityTemporarilyUnmodifiable',
  'PolicyChangesInProgressException',
  'CredentialReportNotReadyException',
  'ReportInProgress',
]);

const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired']);

interface SdkLikeError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
}

/** The AWS error name as SDK v3 exposes it (modelled class name, or the raw wire code). */
export function awsErrorName(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as SdkLikeError;
    // Node network errors carry the useful part in `code` (ECONNREFUSED) and a generic name.
    if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
    if (typeof e.name === 'string' && e.name) return e.name;
  }
  return 'Unknown';
}

/** True when `err` is an AWS error with one of `names` (e.g. the "already done" answers of §6.3). */
export function isAwsError(err: unknown, ...names: string[]): boolean {
  return names.includes(awsErrorName(err));
}

/** Where the error came from: an emulator's known gaps are classified as what they are. */
export interface AwsErrorContext {
  emulator?: 'moto';
}

/**
 * Retry delays are left to the activity's RetryPolicy (exponential from 5 s to 5 min): a fixed
 * nextRetryDelay would flatten that backoff and give up on a long throttling or conflict spell.
 */
export function classifyAwsError(err: unknown, context: AwsErrorContext = {}): AwsErrorClassification {
  const name = awsErrorName(err);
  const meta = (err && typeof err === 'object' ? (err as SdkLikeError).$metadata : undefined) ?? {};
  const base = { name, httpStatusCode: meta.httpStatusCode, requestId: meta.requestId, attempts: meta.attempts };
  const status = meta.httpStatusCode;

  if (THROTTLE.has(name) || status === 429) return { ...base, category: 'throttle', retryable: true };
  if (CONFLICT.has(name)) return { ...base, category: 'conflict', retryable: true };
  if (EXPIRED.has(name)) return { ...base, category: 'expired-credentials', retryable: true };
  // A 5xx whose body is not AWS XML/JSON. Real AWS: a transient fault, retried. moto: an
  // unimplemented operation, which would loop under Temporal (docs/aws.md §6.3, §8.2), so
  // there it is its own category and never retried.
  const unparsed5xx = (name === 'Error' || name === 'SyntaxError') && status !== undefined && status >= 500;
  if (unparsed5xx && context.emulator === 'moto') return { ...base, category: 'unimplemented', retryable: false };
  if (TRANSIENT.has(name) || (status !== undefined && status >= 500)) return { ...base, category: 'transient', retryable: true };
  // Everything else is permanent, IAM's LimitExceededException included: the SDK retries it as
  // throttling, but for IAM it is a quota (a third access key), never a rate (docs/aws.md §6.2).
  return { ...base, category: 'permanent', retryable: false };
}

/**
 * An error thrown after some AWS mutations already succeeded: it carries what was done, so the failed
 * change's result still records every mutation it made (nothing done goes unrecorded).
 */
export class PartialChangeError extends Error {
  override name = 'PartialChangeError';
  constructor(
    readonly failure: unknown,
    /** What was done before the failure (JSON). */
    readonly observed: unknown,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}

/** What a failed change did before failing, as the engine finds it on the failure's details. */
export interface PartialChangeDetails {
  observed: unknown;
}

/** Turn anything an AWS call threw into the ApplicationFailure Temporal should see. */
export function toActivityFailure(err: unknown, context: AwsErrorContext = {}): ApplicationFailure {
  if (err instanceof PartialChangeError) {
    const inner = toActivityFailure(err.failure, context);
    return ApplicationFailure.create({
      type: inner.type ?? undefined,
      message: inner.message,
      nonRetryable: inner.nonRetryable === true,
      details: [...(inner.details ?? []), { observed: err.observed } satisfies PartialChangeDetails],
      cause: err.failure instanceof Error ? err.failure : undefined,
    });
  }
  if (err instanceof ApplicationFailure) return err;
  const c = classifyAwsError(err, context);
  const message = err instanceof Error ? err.message : String(err);
  const hint = c.category === 'unimplemented' ? ' (moto answers a 5xx without an AWS error body for operations it does not implement)' : '';
  return ApplicationFailure.create({
    type: `AWS.${c.name}`,
    message: `${c.name}: ${message}${hint}`,
    nonRetryable: !c.retryable,
    details: [{ category: c.category, httpStatusCode: c.httpStatusCode ?? null, requestId: c.requestId ?? null, attempts: c.attempts ?? null }],
    cause: err instanceof Error ? err : undefined,
  });
}

/** Wrap every activity so its AWS errors leave it classified. */
export function classifyingAwsErrors<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  context: AwsErrorContext = {},
): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toActivityFailure(err, context);
    }
  };
}
