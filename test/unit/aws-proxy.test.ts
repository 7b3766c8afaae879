/**
 * The AWS fault/latency proxy (sandbox/aws-proxy.ts). The upstream is a plain Node HTTP server, not
 * moto: what is tested is the proxy's own behaviour — forwarding, fault shapes, counting, seeding, the
 * deny and hold rules — and
 * a recording fake shows exactly what reached the upstream, which moto would not tell. The last test
 * points real SDK v3 clients at the proxy to prove the fault bodies parse into the names the SDK raises.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Server } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CloudTrailClient, DescribeTrailsCommand } from '@aws-sdk/client-cloudtrail';
import { IAMClient, ListUsersCommand } from '@aws-sdk/client-iam';
import { DescribeOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsProxy, AwsProxyOptions } from '../../sandbox/aws-proxy';
import { startAwsProxy } from '../../sandbox/aws-proxy';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Upstream {
  endpoint: string;
  seen: Seen[];
  /** The status the next answers carry (default 200). */
  status: number;
  server: Server;
}

async function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = { endpoint: '', seen: [], status: 200, server: createServer() };
  upstream.server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      upstream.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const body = '<OkResponse><Result>fine</Result></OkResponse>';
      res.writeHead(upstream.status, { 'content-type': 'text/xml', 'x-upstream': 'fake', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
  upstream.endpoint = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
  return upstream;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (agent: false), so a reset is seen by exactly this request. */
function send(endpoint: string, req: { method?: string; path?: string; headers?: OutgoingHttpHeaders; body?: string }): Promise<Reply> {
  const url = new URL(req.path ?? '/', endpoint);
  return new Promise((resolve, reject) => {
    const out = request(url, { method: req.method ?? 'POST', headers: req.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(req.body);
  });
}

/** What SigV4 puts on every request; only the credential scope matters to the proxy. */
const signed = (service: string, extra: OutgoingHttpHeaders = {}, date = '20260101T000000Z'): OutgoingHttpHeaders => ({
  authorization: `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/${date.slice(0, 8)}/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${date.replace(/\D/g, '')}abcdef`,
  'x-amz-date': date,
  ...extra,
});

const QUERY_VERSIONS: Record<string, string> = { iam: '2010-05-08', sts: '2011-06-15', sns: '2010-03-31' };

function query(service: string, action: string, params: Record<string, string> = {}, date?: string) {
  const body = new URLSearchParams({ Action: action, Version: QUERY_VERSIONS[service] ?? '2010-05-08', ...params }).toString();
  return { path: '/', headers: signed(service, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, date), body };
}

const TARGETS: Record<string, string> = {
  cloudtrail: 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101',
  organizations: 'AWSOrganizationsV20161128',
};

function json(service: string, action: string, params: unknown = {}, date?: string) {
  const headers = signed(service, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${TARGETS[service]}.${action}` }, date);
  return { path: '/', headers, body: JSON.stringify(params) };
}

function s3(method: string, path: string, body?: string) {
  return { method, path, headers: signed('s3', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }), body };
}

describe('aws-proxy', () => {
  let upstream: Upstream;
  let proxy: AwsProxy;
  const extra: AwsProxy[] = [];

  const start = async (options: Omit<AwsProxyOptions, 'upstream'> = {}) => {
    const p = await startAwsProxy({ upstream: upstream.endpoint, ...options });
    extra.push(p);
    return p;
  };

  beforeEach(async () => {
    upstream = await startUpstream();
    proxy = await startAwsProxy({ upstream: upstream.endpoint, seed: 1 });
  });

  afterEach(async () => {
    await Promise.all([proxy.close(), ...extra.splice(0).map((p) => p.close())]);
    upstream.server.closeAllConnections();
    await new Promise((resolve) => upstream.server.close(resolve));
  });

  it('listens on a free 127.0.0.1 port', () => {
    expect(proxy.endpoint).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.port).toBeGreaterThan(0);
  });

  it('forwards method, path, headers (Host as the client sent it) and body verbatim, and streams the answer back', async () => {
    const body = 'Action=CreateUser&UserName=alice%2Bops&Path=%2Fteam%2F&Version=2010-05-08';
    const headers = {
      ...signed('iam'),
      host: 'iam.amazonaws.com',
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      'x-amz-security-token': 'FwoGZXIvYXdzEXAMPLE',
      'amz-sdk-invocation-id': '4a8a7b2c-0000-4000-8000-000000000000',
      'user-agent': 'aws-sdk-js/3.0.0',
    };
    upstream.status = 201;
    const reply = await send(proxy.endpoint, { method: 'POST', path: '/some/path?x=1&y=%2F', headers, body });

    expect(reply).toMatchObject({ status: 201, body: '<OkResponse><Result>fine</Result></OkResponse>' });
    expect(reply.headers['x-upstream']).toBe('fake');
    expect(upstream.seen).toHaveLength(1);
    const seen = upstream.seen[0]!;
    expect(seen).toMatchObject({ method: 'POST', url: '/some/path?x=1&y=%2F', body });
    expect(seen.headers).toMatchObject({ ...headers, 'content-length': String(Buffer.byteLength(body)) });
  });

  it('forwards a GET without a body and HEAD answers without one', async () => {
    const get = await send(proxy.endpoint, s3('GET', '/bucket?list-type=2'));
    const head = await send(proxy.endpoint, s3('HEAD', '/bucket'));
    expect(get).toMatchObject({ status: 200, body: '<OkResponse><Result>fine</Result></OkResponse>' });
    expect(head).toMatchObject({ status: 200, body: '' });
    expect(upstream.seen.map((s) => `${s.method} ${s.url} ${JSON.stringify(s.body)}`)).toEqual(['GET /bucket?list-type=2 ""', 'HEAD /bucket ""']);
  });

  it('adds the latency to every call, faulted or not', async () => {
    proxy.setLatency(120);
    for (const faults of [{}, { throttle: 1 }]) {
      proxy.setFaults(faults);
      const t0 = performance.now();
      await send(proxy.endpoint, query('iam', 'ListUsers'));
      // Timers may fire up to 1 ms early against the high-resolution clock; no upper bound is asserted.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(119);
    }
    expect(proxy.calls().map((c) => c.ms)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(Math.min(...proxy.calls().map((c) => c.ms))).toBeGreaterThanOrEqual(119);
  });

  it('adds slowMs to the calls drawn slow', async () => {
    proxy.setFaults({ slow: 1, slowMs: 80 });
    const t0 = performance.now();
    await send(proxy.endpoint, query('iam', 'ListUsers'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(79);
    expect(proxy.calls()[0]).toMatchObject({ slowMs: 80, forwarded: true, status: 200 });
    expect(proxy.stats().faults.slow).toBe(1);
  });

  describe('throttling answers have each protocol’s real shape and never reach the upstream', () => {
    const requestId = '[0-9a-f-]{36}';

    it.each([
      ['iam', 'https://iam.amazonaws.com/doc/2010-05-08/'],
      ['sts', 'https://sts.amazonaws.com/doc/2011-06-15/'],
      ['sns', 'http://sns.amazonaws.com/doc/2010-03-31/'],
    ])('%s (query protocol): 400 ErrorResponse Throttling', async (service, xmlns) => {
      proxy.setFaults({ throttle: 1 });
      const reply = await send(proxy.endpoint, query(service, 'ListThings'));
      expect(reply.status).toBe(400);
      expect(reply.headers['content-type']).toBe('text/xml');
      expect(reply.body).toMatch(
        new RegExp(
          `^<ErrorResponse xmlns="${xmlns}"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>$`,
        ),
      );
      expect(upstream.seen).toHaveLength(0);
    });

    it('cloudtrail (JSON 1.1): 400 ThrottlingException', async () => {
      proxy.setFaults({ throttle: 1 });
      const reply = await send(proxy.endpoint, json('cloudtrail', 'LookupEvents'));
      expect(reply.status).toBe(400);
      expect(reply.headers['content-type']).toBe('application/x-amz-json-1.1');
      expect(JSON.parse(reply.body)).toEqual({ __type: 'ThrottlingException', message: 'Rate exceeded' });
      expect(upstream.seen).toHaveLength(0);
    });

    it('organizations (JSON 1.1): 400 TooManyRequestsException', async () => {
      proxy.setFaults({ throttle: 1 });
      const reply = await send(proxy.endpoint, json('organizations', 'ListAccounts'));
      expect(reply.status).toBe(400);
      expect(reply.headers['content-type']).toBe('application/x-amz-json-1.1');
      expect(JSON.parse(reply.body)).toEqual({
        __type: 'TooManyRequestsException',
        Message: "AWS Organizations can't complete your request because another request is already in progress or the rate is exceeded.",
      });
      expect(upstream.seen).toHaveLength(0);
    });

    it('s3 (REST-XML): 503 SlowDown', async () => {
      proxy.setFaults({ throttle: 1 });
      const reply = await send(proxy.endpoint, s3('PUT', '/bucket/key', 'data'));
      expect(reply.status).toBe(503);
      expect(reply.headers['content-type']).toBe('application/xml');
      expect(reply.body).toMatch(new RegExp(`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>${requestId}</RequestId>`));
      expect(upstream.seen).toHaveLength(0);
    });
  });

  it('answers http500 / http503 in the protocol’s shape', async () => {
    proxy.setFaults({ http500: 1 });
    const q500 = await send(proxy.endpoint, query('iam', 'CreateUser', { UserName: 'a' }));
    const j500 = await send(proxy.endpoint, json('cloudtrail', 'CreateTrail', { Name: 't' }));
    proxy.setFaults({ http503: 1 });
    const q503 = await send(proxy.endpoint, query('sts', 'AssumeRole'));
    const j503 = await send(proxy.endpoint, json('organizations', 'CreatePolicy'));

    expect(q500.status).toBe(500);
    expect(q500.body).toMatch(/<Error><Type>Receiver<\/Type><Code>InternalFailure<\/Code>/);
    expect(j500.status).toBe(500);
    expect(JSON.parse(j500.body)).toMatchObject({ __type: 'InternalFailure' });
    expect(q503.status).toBe(503);
    expect(q503.body).toMatch(/^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Receiver<\/Type><Code>ServiceUnavailable<\/Code>/);
    expect(j503.status).toBe(503);
    expect(JSON.parse(j503.body)).toMatchObject({ __type: 'ServiceUnavailable' });
    expect(upstream.seen).toHaveLength(0);
    expect(proxy.stats().faults).toMatchObject({ http500: 2, http503: 2 });
  });

  it('draws the same fault sequence from the same seed, and again after reset()', async () => {
    const faults = { throttle: 0.3, http503: 0.2, slow: 0.5, slowMs: 1 };
    const sequence = async (p: AwsProxy) => {
      for (let i = 0; i < 30; i++) await send(p.endpoint, query('iam', 'ListUsers'));
      return p.calls().map((c) => `${c.fault ?? '-'}${c.slowMs ? '+slow' : ''}`);
    };
    const a = await start({ seed: 42, faults });
    const b = await start({ seed: 42, faults });
    const c = await start({ seed: 43, faults });

    const first = await sequence(a);
    expect(await sequence(b)).toEqual(first);
    expect(await sequence(c)).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set(['-', '-+slow', 'throttle', 'throttle+slow', 'http503', 'http503+slow']));
    a.reset();
    expect(await sequence(a)).toEqual(first);
    expect(a.seed).toBe(42);
  });

  it('leaves calls that `only` rejects alone, without drawing for them', async () => {
    const p = await start({ seed: 7, faults: { throttle: 1 }, only: (call) => call.service === 'iam' && call.mutation });
    expect((await send(p.endpoint, query('iam', 'ListUsers'))).status).toBe(200);
    expect((await send(p.endpoint, json('organizations', 'CreatePolicy'))).status).toBe(200);
    expect((await send(p.endpoint, query('iam', 'DeleteUser', { UserName: 'a' }))).status).toBe(400);
    expect(p.calls().map((c) => c.fault)).toEqual([undefined, undefined, 'throttle']);
  });

  it('reset destroys the client socket without answering or forwarding', async () => {
    proxy.setFaults({ reset: 1 });
    await expect(send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'a' }))).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(upstream.seen).toHaveLength(0);
    expect(proxy.calls()).toEqual([expect.objectContaining({ action: 'DeleteUser', fault: 'reset', forwarded: false })]);
    expect(proxy.calls()[0]).not.toHaveProperty('status');
    expect(proxy.stats().faults.reset).toBe(1);
  });

  it('resetAfterForward lets the change happen upstream, loses the answer, and counts the retry as a duplicate', async () => {
    const call = query('iam', 'CreateAccessKey', { UserName: 'alice' });
    proxy.setFaults({ resetAfterForward: 1 });
    await expect(send(proxy.endpoint, call)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(upstream.seen).toHaveLength(1);
    expect(proxy.calls()[0]).toMatchObject({ fault: 'resetAfterForward', forwarded: true, status: 200 });

    // The caller retries (newly signed, a second later) and the upstream acts twice.
    proxy.setFaults({});
    expect((await send(proxy.endpoint, query('iam', 'CreateAccessKey', { UserName: 'alice' }, '20260101T000001Z'))).status).toBe(200);
    expect(upstream.seen).toHaveLength(2);
    expect(proxy.stats()).toMatchObject({ calls: 2, mutations: 2, duplicateMutations: 1, faults: { resetAfterForward: 1 } });
    expect(proxy.calls()[1]).toMatchObject({ duplicate: true });
  });

  it('counts a mutation as duplicate only when it succeeded with the same service, action and parameters as an earlier success', async () => {
    const calls = [
      query('iam', 'CreateUser', { UserName: 'alice', Path: '/' }),
      // Same parameters in another order, signed at another time: a duplicate.
      { ...query('iam', 'CreateUser', {}, '20260101T000005Z'), body: 'Version=2010-05-08&Path=%2F&UserName=alice&Action=CreateUser' },
      query('iam', 'CreateUser', { UserName: 'bob', Path: '/' }),
      query('iam', 'ListUsers'),
      query('iam', 'ListUsers'),
      json('organizations', 'AttachPolicy', { PolicyId: 'p-1', TargetId: 'ou-1' }),
      { ...json('organizations', 'AttachPolicy', {}, '20260101T000009Z'), body: '{ "TargetId": "ou-1", "PolicyId": "p-1" }' },
      json('organizations', 'DetachPolicy', { PolicyId: 'p-1', TargetId: 'ou-1' }),
      s3('PUT', '/bucket/key', 'v1'),
      s3('PUT', '/bucket/key', 'v1'),
      s3('PUT', '/bucket/key', 'v2'),
    ];
    for (const call of calls) expect((await send(proxy.endpoint, call)).status).toBe(200);
    expect(proxy.stats().duplicateMutations).toBe(3);
    expect(proxy.calls().map((c) => c.duplicate ?? false)).toEqual([false, true, false, false, false, false, true, false, false, true, false]);

    // A failed attempt does not count, neither as the original nor as a duplicate.
    proxy.reset();
    upstream.status = 409;
    await send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'carol' }));
    upstream.status = 200;
    await send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'carol' }));
    expect(proxy.stats().duplicateMutations).toBe(0);
    await send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'carol' }));
    expect(proxy.stats().duplicateMutations).toBe(1);
  });

  it('identifies service and action, and counts calls, mutations and faults', async () => {
    await send(proxy.endpoint, query('iam', 'ListUsers'));
    await send(proxy.endpoint, query('iam', 'DeleteLoginProfile', { UserName: 'a' }));
    await send(proxy.endpoint, query('iam', 'GenerateCredentialReport'));
    await send(proxy.endpoint, query('sts', 'AssumeRole', { RoleArn: 'arn:aws:iam::111111111111:role/r', RoleSessionName: 's' }));
    await send(proxy.endpoint, json('cloudtrail', 'LookupEvents'));
    await send(proxy.endpoint, json('cloudtrail', 'StopLogging', { Name: 't' }));
    await send(proxy.endpoint, json('organizations', 'DescribeOrganization'));
    proxy.setFaults({ throttle: 1 });
    await send(proxy.endpoint, s3('PUT', '/bucket'));
    await send(proxy.endpoint, s3('GET', '/bucket?list-type=2'));
    await send(proxy.endpoint, s3('HEAD', '/bucket'));

    const stats = proxy.stats();
    expect(stats).toEqual({
      calls: 10,
      byService: { iam: 3, sts: 1, cloudtrail: 2, organizations: 1, s3: 3 },
      byAction: {
        'iam:ListUsers': 1,
        'iam:DeleteLoginProfile': 1,
        'iam:GenerateCredentialReport': 1,
        'sts:AssumeRole': 1,
        'cloudtrail:LookupEvents': 1,
        'cloudtrail:StopLogging': 1,
        'organizations:DescribeOrganization': 1,
        's3:PUT /bucket': 1,
        's3:GET /bucket': 1,
        's3:HEAD /bucket': 1,
      },
      mutations: 3,
      faults: { throttle: 3, http500: 0, http503: 0, reset: 0, resetAfterForward: 0, slow: 0 },
      duplicateMutations: 0,
    });
    expect(proxy.calls().filter((c) => c.mutation).map((c) => `${c.service}:${c.action}`)).toEqual([
      'iam:DeleteLoginProfile',
      'cloudtrail:StopLogging',
      's3:PUT /bucket',
    ]);
    expect(proxy.calls()[0]).toMatchObject({ protocol: 'query', method: 'POST', path: '/', forwarded: true, status: 200 });
    expect(proxy.calls()[9]).toMatchObject({ protocol: 'rest-xml', fault: 'throttle', forwarded: false, status: 503 });
  });

  it('refuses rates outside 0..1 and exclusive rates adding up to more than 1', async () => {
    expect(() => proxy.setFaults({ throttle: 1.5 })).toThrow(RangeError);
    expect(() => proxy.setFaults({ throttle: 0.6, reset: 0.6 })).toThrow(/more than 1/);
    expect(() => proxy.setLatency(-1)).toThrow(RangeError);
    await expect(startAwsProxy({ upstream: 'https://iam.amazonaws.com' })).rejects.toThrow(/http:\/\/ endpoints only/);
  });

  it('deny answers AccessDenied, without forwarding, only to the calls its rule accepts (by parameters too), until clearRules', async () => {
    proxy.deny((call, input) => call.action === 'DeleteUser' && input.UserName === 'alice');
    const denied = await send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'alice' }));
    expect(denied.status).toBe(403);
    expect(denied.body).toMatch(/^<ErrorResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/"><Error><Type>Sender<\/Type><Code>AccessDenied<\/Code><Message>User is not authorized to perform: iam:DeleteUser with an explicit deny in a service control policy<\/Message>/);
    expect(upstream.seen).toHaveLength(0);
    expect((await send(proxy.endpoint, query('iam', 'DeleteUser', { UserName: 'bob' }))).status).toBe(200);
    expect(upstream.seen).toHaveLength(1);

    proxy.deny((call) => call.service === 'cloudtrail');
    const json1 = await send(proxy.endpoint, json('cloudtrail', 'StopLogging', { Name: 'org-trail' }));
    expect(json1.status).toBe(400);
    expect(JSON.parse(json1.body)).toMatchObject({ __type: 'AccessDeniedException' });
    proxy.clearRules();
    expect((await send(proxy.endpoint, json('cloudtrail', 'StopLogging', { Name: 'org-trail' }))).status).toBe(200);
    expect(upstream.seen).toHaveLength(2);
  });

  it('hold keeps the first matching call until released, and lets later ones through', async () => {
    const held = proxy.hold((call) => call.action === 'CreateTrail');
    const first = send(proxy.endpoint, json('cloudtrail', 'CreateTrail', { Name: 'org-trail' }));
    await held.reached;
    expect((await send(proxy.endpoint, json('cloudtrail', 'CreateTrail', { Name: 'second' }))).status).toBe(200);
    expect(upstream.seen.map((s) => s.body)).toEqual([JSON.stringify({ Name: 'second' })]);
    held.release();
    expect((await first).status).toBe(200);
    expect(upstream.seen.map((s) => s.body)).toEqual([JSON.stringify({ Name: 'second' }), JSON.stringify({ Name: 'org-trail' })]);
  });

  it('deny gives real SDK v3 clients the AccessDenied error names AWS gives them', async () => {
    proxy.deny(() => true);
    const config = { endpoint: proxy.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'fake-secret' }, maxAttempts: 1 };
    const iam = new IAMClient(config);
    const cloudtrail = new CloudTrailClient(config);
    const bucket = new S3Client({ ...config, forcePathStyle: true });
    try {
      const nameOf = (promise: Promise<unknown>) => promise.then(() => 'no error', (err: Error) => err.name);
      expect(await nameOf(iam.send(new ListUsersCommand({})))).toBe('AccessDenied');
      expect(await nameOf(cloudtrail.send(new DescribeTrailsCommand({})))).toBe('AccessDeniedException');
      expect(await nameOf(bucket.send(new ListObjectsV2Command({ Bucket: 'evidence' })))).toBe('AccessDenied');
    } finally {
      for (const client of [iam, cloudtrail, bucket]) client.destroy();
    }
    expect(upstream.seen).toHaveLength(0);
  });

  it('throttles real SDK v3 clients into the error names the SDK raises and Countersign classifies', async () => {
    proxy.setFaults({ throttle: 1 });
    const config = {
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'fake-secret' },
      maxAttempts: 1,
    };
    const iam = new IAMClient(config);
    const sts = new STSClient(config);
    const cloudtrail = new CloudTrailClient(config);
    const organizations = new OrganizationsClient(config);
    const bucket = new S3Client({ ...config, forcePathStyle: true });
    try {
      const nameOf = (promise: Promise<unknown>) => promise.then(() => 'no error', (err: Error) => err.name);
      expect(await nameOf(iam.send(new ListUsersCommand({})))).toBe('Throttling');
      expect(await nameOf(sts.send(new GetCallerIdentityCommand({})))).toBe('Throttling');
      expect(await nameOf(cloudtrail.send(new DescribeTrailsCommand({})))).toBe('ThrottlingException');
      expect(await nameOf(organizations.send(new DescribeOrganizationCommand({})))).toBe('TooManyRequestsException');
      expect(await nameOf(bucket.send(new ListObjectsV2Command({ Bucket: 'evidence' })))).toBe('SlowDown');
    } finally {
      for (const client of [iam, sts, cloudtrail, organizations, bucket]) client.destroy();
    }
    // The SDK's own signed requests are identified as the tests' hand-made ones are.
    expect(proxy.stats().byAction).toEqual({
      'iam:ListUsers': 1,
      'sts:GetCallerIdentity': 1,
      'cloudtrail:DescribeTrails': 1,
      'organizations:DescribeOrganization': 1,
      's3:GET /evidence/': 1,
    });
    expect(upstream.seen).toHaveLength(0);
  });
});
