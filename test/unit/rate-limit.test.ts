/**
 * Client-side AWS rate limits (activities/aws/rate-limit.ts, docs/aws.md §6.5): the cap per
 * (account, service), AIMD on throttling, CloudTrail mutation pacing, and the environment settings.
 * Fake async calls stand in for AWS; timing assertions are lower bounds only.
 */
import { ListUsersCommand } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import { AccountClients } from '../../activities/aws/clients';
import {
  AdaptiveLimit,
  AwsRateLimits,
  isCloudTrailMutation,
  Pacer,
  parseConcurrency,
  rateLimitSettingsFromEnv,
} from '../../activities/aws/rate-limit';
import type { RateLimitSettings, ThrottleEvent } from '../../activities/aws/rate-limit';

const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

function throttling(name = 'Throttling'): Error {
  return Object.assign(new Error('Rate exceeded'), { name, $metadata: { httpStatusCode: 400 } });
}

function settings(over: Partial<RateLimitSettings> = {}): RateLimitSettings {
  return { concurrency: { iam: 8, organizations: 4, default: 8 }, cloudTrailMutationIntervalMs: 0, recoverAfter: 3, ...over };
}

/** Run `count` fake calls at once through `limits`, returning the most seen in flight per key. */
async function burst(limits: AwsRateLimits, calls: Array<{ account: string; service: string }>): Promise<Map<string, number>> {
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  await Promise.all(
    calls.map((c) =>
      limits.run({ ...c, region: 'us-east-1', operation: 'ListUsers' }, async () => {
        const key = `${c.account}|${c.service}`;
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
        peak.set(key, Math.max(peak.get(key) ?? 0, inFlight.get(key) ?? 0));
        await tick();
        inFlight.set(key, (inFlight.get(key) ?? 0) - 1);
      }),
    ),
  );
  return peak;
}

const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

describe('the concurrency cap', () => {
  it('keeps at most the cap in flight per account and service (IAM 8, Organizations 4)', async () => {
    const peak = await burst(new AwsRateLimits(settings()), [...times(30, { account: 'a', service: 'iam' }), ...times(30, { account: 'a', service: 'organizations' })]);
    expect(peak.get('a|iam')).toBe(8);
    expect(peak.get('a|organizations')).toBe(4);
  });

  it('caps each account and each service on its own', async () => {
    const limits = new AwsRateLimits(settings({ concurrency: { iam: 2, cloudtrail: 1, default: 3 } }));
    const peak = await burst(limits, [
      ...times(10, { account: 'a', service: 'iam' }),
      ...times(10, { account: 'b', service: 'iam' }),
      ...times(10, { account: 'a', service: 'cloudtrail' }),
      ...times(10, { account: 'a', service: 's3' }),
    ]);
    expect(Object.fromEntries(peak)).toEqual({ 'a|iam': 2, 'b|iam': 2, 'a|cloudtrail': 1, 'a|s3': 3 });
  });

  it('applies to every SDK call of a client, through the middleware', async () => {
    const limits = new AwsRateLimits(settings({ concurrency: { iam: 2, default: 8 } }));
    const clients = new AccountClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'R' }, { account: '111111111111' }, async () => ({ accessKeyId: 'AKIA', secretAccessKey: 's' }), limits);
    let inFlight = 0;
    let peak = 0;
    const iam: IAMClient = clients.iam();
    // The HTTP layer itself is faked: every call goes through the whole middleware stack.
    iam.config.requestHandler = {
      handle: async () => {
        peak = Math.max(peak, ++inFlight);
        await tick();
        inFlight--;
        const body = '<ListUsersResponse><ListUsersResult><Users/><IsTruncated>false</IsTruncated></ListUsersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListUsersResponse>';
        return { response: { statusCode: 200, headers: { 'content-type': 'text/xml' }, body: Buffer.from(body) } };
      },
    } as unknown as IAMClient['config']['requestHandler'];
    await Promise.all(times(10, 0).map(() => iam.send(new ListUsersCommand({}))));
    expect(peak).toBe(2);
    expect(limits.limitFor('111111111111', 'iam').active).toBe(0);
    clients.destroy();
  });
});

describe('AIMD on throttling', () => {
  it('halves the cap on a throttling answer (min 1) and regains one slot per `recoverAfter` successes', async () => {
    const events: ThrottleEvent[] = [];
    const limits = new AwsRateLimits(settings({ recoverAfter: 3 }), (e) => events.push(e));
    const call = { account: 'a', service: 'iam', region: 'us-east-1', operation: 'DeleteUser' };
    await expect(limits.run(call, async () => Promise.reject(throttling()))).rejects.toThrow('Rate exceeded');
    expect(limits.limitFor('a', 'iam').limit).toBe(4);
    expect(events).toEqual([{ ...call, limit: 4 }]);
    const limit = new AdaptiveLimit(8, 3);
    limit.throttled(await limit.acquire());
    limit.release();
    expect(limit.limit).toBe(4);
    for (let i = 0; i < 3; i++) limit.succeeded();
    expect(limit.limit).toBe(5);
    for (let i = 0; i < 30; i++) limit.succeeded();
    expect(limit.limit).toBe(8); // never above the configured cap
  });

  it('holds new calls back while the calls in flight exceed the lowered cap', async () => {
    const limits = new AwsRateLimits(settings({ concurrency: { iam: 8, default: 8 }, recoverAfter: 1000 }));
    await expect(limits.run({ account: 'a', service: 'iam', region: 'r', operation: 'X' }, async () => Promise.reject(throttling('ThrottlingException')))).rejects.toThrow();
    expect((await burst(limits, times(20, { account: 'a', service: 'iam' }))).get('a|iam')).toBe(4);
  });

  it('lowers once per burst: throttles of calls sent under the old cap do not halve it again', async () => {
    const limit = new AdaptiveLimit(8);
    const generations = await Promise.all(times(8, 0).map(() => limit.acquire()));
    expect(generations.map((g) => limit.throttled(g))).toEqual([true, ...times(7, false)]);
    expect(limit.limit).toBe(4);
    for (let i = 0; i < 8; i++) limit.release();
    expect(limit.throttled(await limit.acquire())).toBe(true);
    expect(limit.limit).toBe(2);
    limit.release();
    limit.throttled(await limit.acquire());
    limit.release();
    limit.throttled(await limit.acquire());
    expect(limit.limit).toBe(1); // the floor
  });

  it('recognises every throttling name (and a 429), and nothing else', async () => {
    for (const name of ['Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown']) {
      const limits = new AwsRateLimits(settings(), () => {});
      await expect(limits.run({ account: 'a', service: 's3', region: 'r', operation: 'PutObject' }, async () => Promise.reject(throttling(name)))).rejects.toThrow();
      expect(limits.limitFor('a', 's3').limit).toBe(4);
    }
    const limits = new AwsRateLimits(settings(), () => {});
    const fail = (err: Error) => limits.run({ account: 'a', service: 'iam', region: 'r', operation: 'X' }, async () => Promise.reject(err));
    await expect(fail(Object.assign(new Error('quota'), { name: 'LimitExceededException' }))).rejects.toThrow();
    await expect(fail(Object.assign(new Error('denied'), { name: 'AccessDenied' }))).rejects.toThrow();
    expect(limits.limitFor('a', 'iam').limit).toBe(8);
    await expect(fail(Object.assign(new Error('slow'), { name: 'Unknown', $metadata: { httpStatusCode: 429 } }))).rejects.toThrow();
    expect(limits.limitFor('a', 'iam').limit).toBe(4);
  });
});

describe('CloudTrail mutation pacing', () => {
  it('spaces mutations per account and region, and leaves reads alone', async () => {
    const limits = new AwsRateLimits(settings({ cloudTrailMutationIntervalMs: 100 }));
    const starts: Record<string, number[]> = {};
    const run = (account: string, region: string, operation: string) =>
      limits.run({ account, service: 'cloudtrail', region, operation }, async () => {
        (starts[`${account}|${region}|${operation}`] ??= []).push(Date.now());
      });
    const began = Date.now();
    await Promise.all([
      ...times(3, 0).map(() => run('a', 'us-east-1', 'StartLogging')),
      ...times(3, 0).map(() => run('a', 'us-east-1', 'DescribeTrails')),
      run('a', 'eu-west-1', 'StartLogging'),
      run('b', 'us-east-1', 'StartLogging'),
    ]);
    const paced = starts['a|us-east-1|StartLogging'] ?? [];
    expect(paced).toHaveLength(3);
    // Clock reads inside the calls, after each turn was granted: a millisecond of skew either way.
    for (let i = 1; i < paced.length; i++) expect((paced[i] as number) - (paced[i - 1] as number)).toBeGreaterThanOrEqual(99);
    // Reads, and other accounts and regions, did not queue behind those mutations: each started
    // before the second paced mutation could (an order, not a timing bound).
    for (const key of ['a|us-east-1|DescribeTrails', 'a|eu-west-1|StartLogging', 'b|us-east-1|StartLogging']) {
      for (const t of starts[key] ?? []) expect(t).toBeLessThan(paced[1] as number);
    }
    expect(began).toBeLessThanOrEqual(paced[0] as number);
  });

  it('a Pacer spaces starts by its interval; 0 does not pace', async () => {
    const pacer = new Pacer(50);
    const at: number[] = [];
    // The turns' own start times: a clock read after the await could land a millisecond late for one
    // caller and not the next.
    at.push(...(await Promise.all(times(4, 0).map(() => pacer.wait()))));
    for (let i = 1; i < at.length; i++) expect((at[i] as number) - (at[i - 1] as number)).toBeGreaterThanOrEqual(50);
    await new Pacer(0).wait();
  });

  it('treats Describe/Get/List/LookupEvents as reads and the rest as mutations', () => {
    expect(['CreateTrail', 'UpdateTrail', 'StartLogging', 'StopLogging', 'DeleteTrail', 'PutEventSelectors', 'PutInsightSelectors', 'AddTags', 'RemoveTags'].every(isCloudTrailMutation)).toBe(true);
    expect(['DescribeTrails', 'GetTrailStatus', 'GetEventSelectors', 'ListTrails', 'ListTags', 'LookupEvents'].some(isCloudTrailMutation)).toBe(false);
  });
});

describe('settings from the environment', () => {
  it('defaults: IAM 8, Organizations 4, others 8; 1 s between CloudTrail mutations on AWS, none against an emulator endpoint', () => {
    expect(rateLimitSettingsFromEnv({})).toEqual({ concurrency: { iam: 8, organizations: 4, default: 8 }, cloudTrailMutationIntervalMs: 1000, recoverAfter: 10 });
    expect(rateLimitSettingsFromEnv({}, { endpoint: 'http://127.0.0.1:5000' }).cloudTrailMutationIntervalMs).toBe(0);
    expect(rateLimitSettingsFromEnv({ COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL: '1500ms' }, { endpoint: 'http://x' }).cloudTrailMutationIntervalMs).toBe(1500);
    expect(rateLimitSettingsFromEnv({ COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL: '0' }).cloudTrailMutationIntervalMs).toBe(0);
  });

  it('parses COUNTERSIGN_AWS_CONCURRENCY over the defaults', () => {
    expect(parseConcurrency('iam=8,organizations=4,cloudtrail=2')).toEqual({ iam: 8, organizations: 4, cloudtrail: 2, default: 8 });
    expect(parseConcurrency(' IAM = 3 , default=16, ')).toEqual({ iam: 3, organizations: 4, default: 16 });
    expect(parseConcurrency('')).toEqual({ iam: 8, organizations: 4, default: 8 });
  });

  it('rejects a bad value with a message that says what to write', () => {
    expect(() => parseConcurrency('iam=zero')).toThrow(
      'COUNTERSIGN_AWS_CONCURRENCY: "iam=zero" is not service=count with a whole number ≥ 1; write e.g. COUNTERSIGN_AWS_CONCURRENCY=iam=8,organizations=4,cloudtrail=2',
    );
    expect(() => parseConcurrency('iam=0')).toThrow(/whole number ≥ 1/);
    expect(() => parseConcurrency('iam')).toThrow(/service=count/);
    expect(() => parseConcurrency('organisations=2')).toThrow('unknown service "organisations"');
    expect(() => rateLimitSettingsFromEnv({ COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL: 'fast' })).toThrow('COUNTERSIGN_AWS_CLOUDTRAIL_MUTATION_INTERVAL must be a duration such as 1s or 1500ms');
  });
});
