/**
 * Client-side AWS rate limits, shared by every activity of a worker (docs/aws.md §6.5):
 *
 * - a concurrency cap per (account, service): at most N calls in flight, defaults IAM 8,
 *   Organizations 4, anything else 8 (COUNTERSIGN_AWS_CONCURRENCY);
 * - AIMD on throttling: a throttled call halves that (account, service) cap (never below 1), and
 *   every `recoverAfter` successful calls give one slot back, up to the configured cap;
 * - pacing of CloudTrail mutations per (account, region): AWS allows about one per second
 *   (COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL).
 *
 * Written here rather than taken from a library: p-limit and friends fix their concurrency up front
 * or only raise it while calls are in flight (p-limit ≥ 5 is also ESM-only, and this project is
 * CommonJS), and AIMD must lower a cap that is already full — the calls in flight finish and no new
 * one starts until the count is under the new cap. Pacing and the throttling signal are Countersign's
 * own rules anyway. The SDK's own adaptive retry mode (clients.ts) limits the send rate per client;
 * this caps what all clients of one account send at once, which the SDK cannot see.
 */
import { Context, log } from '@temporalio/activity';
import { tryParseDuration } from '../../common/duration';
import { classifyAwsError } from './errors';

/** The services Countersign has clients for, plus `default` for any other. */
export const RATE_LIMITED_SERVICES = ['iam', 'organizations', 'sts', 'cloudtrail', 's3', 'sns'] as const;

export const DEFAULT_CONCURRENCY: Readonly<Record<string, number>> = { iam: 8, organizations: 4, default: 8 };
/** AWS documents about 1 call/s for CloudTrail's mutating APIs (docs/aws.md §0). */
export const DEFAULT_CLOUDTRAIL_MUTATION_INTERVAL_MS = 1_000;
/** Successful calls that give one concurrency slot back after a throttle. */
export const DEFAULT_RECOVER_AFTER = 10;

export interface RateLimitSettings {
  /** In-flight calls per (account, service); `default` for services not named. */
  concurrency: Record<string, number>;
  /** Minimum spacing between CloudTrail mutations per (account, region); 0: no pacing. */
  cloudTrailMutationIntervalMs: number;
  /** Successful calls per +1 of a lowered cap. */
  recoverAfter: number;
}

const CONCURRENCY_EXAMPLE = 'iam=8,organizations=4,cloudtrail=2';

/**
 * `COUNTERSIGN_AWS_CONCURRENCY`, e.g. `iam=8,organizations=4,cloudtrail=2`: the per-service caps,
 * over the defaults. A service name not in RATE_LIMITED_SERVICES (or `default`) is an error, so a
 * typo (`organisations=2`) does not silently leave the default in force.
 */
export function parseConcurrency(raw: string | undefined): Record<string, number> {
  const caps: Record<string, number> = { ...DEFAULT_CONCURRENCY };
  if (!raw?.trim()) return caps;
  const known = [...RATE_LIMITED_SERVICES, 'default'];
  for (const entry of raw.split(',')) {
    const item = entry.trim();
    if (!item) continue;
    const match = /^([a-z0-9-]+)\s*=\s*(\d+)$/i.exec(item);
    const service = match?.[1]?.toLowerCase();
    const count = Number(match?.[2]);
    if (!match || !service || !Number.isInteger(count) || count < 1) {
      throw new Error(
        `COUNTERSIGN_AWS_CONCURRENCY: "${item}" is not service=count with a whole number ≥ 1; write e.g. ` +
          `COUNTERSIGN_AWS_CONCURRENCY=${CONCURRENCY_EXAMPLE} (services: ${known.join(', ')})`,
      );
    }
    if (!known.includes(service)) {
      throw new Error(`COUNTERSIGN_AWS_CONCURRENCY: unknown service "${service}" in "${item}"; the services are ${known.join(', ')} (e.g. ${CONCURRENCY_EXAMPLE})`);
    }
    caps[service] = count;
  }
  return caps;
}

/**
 * The settings from COUNTERSIGN_AWS_CONCURRENCY and COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL
 * (a duration: `1s`, `1500ms`, `0s` for none). Against an endpoint override (an emulator, which does
 * not throttle) CloudTrail mutations are not paced unless the variable says so, as the SDK makes one
 * attempt there unless AWS_MAX_ATTEMPTS says so.
 */
export function rateLimitSettingsFromEnv(env: NodeJS.ProcessEnv, options: { endpoint?: string } = {}): RateLimitSettings {
  const rawInterval = env.COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL?.trim();
  let interval = options.endpoint ? 0 : DEFAULT_CLOUDTRAIL_MUTATION_INTERVAL_MS;
  if (rawInterval) {
    const ms = rawInterval === '0' ? 0 : tryParseDuration(rawInterval);
    if (ms === undefined) {
      throw new Error(`COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL must be a duration such as 1s or 1500ms (0s: no pacing), not "${rawInterval}"`);
    }
    interval = ms;
  }
  return { concurrency: parseConcurrency(env.COUNTERSIGN_AWS_CONCURRENCY), cloudTrailMutationIntervalMs: interval, recoverAfter: DEFAULT_RECOVER_AFTER };
}

/** Defaults, for settings built without the environment (tests): no pacing against an endpoint. */
export function defaultRateLimitSettings(options: { endpoint?: string } = {}): RateLimitSettings {
  return rateLimitSettingsFromEnv({}, options);
}

/**
 * At most `limit` holders at once, where `limit` moves between 1 and `max` (AIMD). A throttle halves
 * it once per "generation": calls that started before the last decrease and are throttled after it
 * (they were sent under the old cap) do not halve it again, so one burst of throttles is one decrease.
 */
export class AdaptiveLimit {
  private current: number;
  private inFlight = 0;
  private successes = 0;
  private generation = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly max: number,
    readonly recoverAfter = DEFAULT_RECOVER_AFTER,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a concurrency limit must be a whole number ≥ 1, not ${max}`);
    this.current = max;
  }

  /** The cap now in force. */
  get limit(): number {
    return this.current;
  }

  get active(): number {
    return this.inFlight;
  }

  /** Wait for a slot (first come, first served); resolves to the generation to report a throttle with. */
  async acquire(): Promise<number> {
    if (this.inFlight < this.current && this.waiting.length === 0) {
      this.inFlight++;
      return this.generation;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return this.generation;
  }

  release(): void {
    this.inFlight--;
    this.drain();
  }

  /** A call of `generation` was throttled: halve the cap (min 1). True when this lowered it. */
  throttled(generation: number): boolean {
    this.successes = 0;
    if (generation !== this.generation) return false;
    this.generation++;
    const lowered = Math.max(1, Math.floor(this.current / 2));
    if (lowered === this.current) return false;
    this.current = lowered;
    return true;
  }

  /** A call succeeded: after `recoverAfter` of them a lowered cap gains one slot. */
  succeeded(): void {
    if (this.current >= this.max) return;
    if (++this.successes < this.recoverAfter) return;
    this.successes = 0;
    this.current++;
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < this.current && this.waiting.length > 0) {
      this.inFlight++;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Start times at least `intervalMs` apart, in order of arrival: each caller's turn begins when the
 * previous one's ends, and ends `intervalMs` after the previous release, stamped as it releases (not
 * when it queued), so the spacing holds for when the calls are actually sent.
 */
export class Pacer {
  private last = -Infinity;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly intervalMs: number) {}

  /** Resolves with the time (ms) this caller's turn began: at least `intervalMs` after the previous turn's. */
  wait(): Promise<number> {
    if (this.intervalMs <= 0) return Promise.resolve(Date.now());
    const turn = this.queue.then(async () => {
      // A timer may fire a millisecond early by Date.now(): wait out any remainder.
      while (Date.now() < this.last + this.intervalMs) await new Promise((resolve) => setTimeout(resolve, this.last + this.intervalMs - Date.now()));
      this.last = Date.now();
      return this.last;
    });
    this.queue = turn.then(() => undefined);
    return turn;
  }
}

/** CloudTrail's reads are Describe*, Get*, List* and LookupEvents; everything else changes something. */
export function isCloudTrailMutation(operation: string): boolean {
  return !/^(Describe|Get|List|Lookup)/.test(operation);
}

export interface RateLimitedCall {
  /** The account the call acts in (any stable key: the worker's own clients use "self"). */
  account: string;
  service: string;
  region: string;
  /** The API operation, e.g. `CreateTrail` (the SDK command name without `Command`). */
  operation: string;
}

export interface ThrottleEvent extends RateLimitedCall {
  /** The (account, service) cap after the decrease. */
  limit: number;
}

function isThrottle(err: unknown): boolean {
  return classifyAwsError(err).category === 'throttle';
}

/** Activity log when inside an activity; silent elsewhere (unit tests, the CLI). */
function logThrottle(event: ThrottleEvent): void {
  try {
    Context.current();
  } catch {
    return;
  }
  log.warn('AWS throttled: concurrency lowered', { ...event });
}

/** Every limiter of a worker, by (account, service) and, for pacing, (account, region). */
export class AwsRateLimits {
  private readonly limits = new Map<string, AdaptiveLimit>();
  private readonly pacers = new Map<string, Pacer>();

  constructor(
    readonly settings: RateLimitSettings = defaultRateLimitSettings(),
    private readonly onThrottle: (event: ThrottleEvent) => void = logThrottle,
  ) {}

  limitFor(account: string, service: string): AdaptiveLimit {
    const key = `${account}|${service}`;
    let limit = this.limits.get(key);
    if (!limit) {
      const cap = this.settings.concurrency[service] ?? this.settings.concurrency.default ?? DEFAULT_CONCURRENCY.default ?? 8;
      limit = new AdaptiveLimit(cap, this.settings.recoverAfter);
      this.limits.set(key, limit);
    }
    return limit;
  }

  pacerFor(account: string, region: string): Pacer {
    const key = `${account}|${region}`;
    let pacer = this.pacers.get(key);
    if (!pacer) {
      pacer = new Pacer(this.settings.cloudTrailMutationIntervalMs);
      this.pacers.set(key, pacer);
    }
    return pacer;
  }

  /**
   * Run one call (one HTTP attempt, in the SDK middleware) under its (account, service) cap — and,
   * for a CloudTrail mutation, its (account, region) pacing, after the slot is held so the spacing
   * holds at send time.
   */
  async run<T>(call: RateLimitedCall, send: () => Promise<T>): Promise<T> {
    const limit = this.limitFor(call.account, call.service);
    const generation = await limit.acquire();
    try {
      if (call.service === 'cloudtrail' && isCloudTrailMutation(call.operation)) await this.pacerFor(call.account, call.region).wait();
      const result = await send();
      limit.succeeded();
      return result;
    } catch (err) {
      if (isThrottle(err) && limit.throttled(generation)) this.onThrottle({ ...call, limit: limit.limit });
      throw err;
    } finally {
      limit.release();
    }
  }
}
