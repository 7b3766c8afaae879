/**
 * Test and benchmark tooling, never used by the worker: an HTTP proxy between AWS SDK v3 clients and an
 * AWS endpoint (the moto sandbox). Benchmarks use it to add the latency of real AWS, which moto on
 * localhost does not have; fault tests use it to throttle, fail with 5xx or drop connections, with the
 * error bodies each protocol really sends, so the SDK parses them into the names Countersign classifies
 * (docs/aws.md §6.3).
 *
 * Every call is identified (service from the SigV4 credential scope, action from the protocol) and
 * logged. `stats().duplicateMutations` counts mutations that succeeded upstream with the same parameters,
 * in the same account, as an earlier success: the measure of whether retries after a lost answer
 * (`resetAfterForward`) or a lost worker are idempotent. The account is learned from the AssumeRole
 * answers that pass through (a session's access key → the account of its role), so `DeleteTrail
 * local-trail` in two member accounts is two changes, and the same call from a new session of the same
 * role (a restarted worker) is a duplicate.
 *
 * Faults are drawn from a seeded PRNG in the order calls arrive: the same seed and the same sequence of
 * calls give the same faults. Concurrent callers arrive in no fixed order, so only their totals repeat.
 *
 *   node dist/sandbox/aws-proxy.js --upstream http://127.0.0.1:5000 --latency 40 --throttle 0.1 --seed 7
 *
 * prints the proxy's endpoint; point AWS_ENDPOINT_URL (e.g. of `countersign dev`) at it.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream';
import { Command, InvalidArgumentError } from 'commander';

/** Probabilities (0..1) per call. throttle…resetAfterForward exclude one another (their sum is ≤ 1); slow adds to any. */
export interface FaultRates {
  /** Answer the protocol's throttling error without forwarding. */
  throttle?: number;
  /** Answer HTTP 500 InternalFailure without forwarding. */
  http500?: number;
  /** Answer HTTP 503 ServiceUnavailable without forwarding. */
  http503?: number;
  /** Destroy the client's socket without forwarding or answering. */
  reset?: number;
  /** Forward (the change happens upstream), then destroy the client's socket: the answer is lost. */
  resetAfterForward?: number;
  /** Delay the call by a further `slowMs`. */
  slow?: number;
  slowMs?: number;
}

export type FaultName = 'throttle' | 'http500' | 'http503' | 'reset' | 'resetAfterForward' | 'slow';

const FAULT_NAMES: readonly FaultName[] = ['throttle', 'http500', 'http503', 'reset', 'resetAfterForward', 'slow'];

/** The faults that replace the normal answer, in the order their probability ranges are laid out. */
const EXCLUSIVE_FAULTS = ['throttle', 'http500', 'http503', 'reset', 'resetAfterForward'] as const;
type ExclusiveFault = (typeof EXCLUSIVE_FAULTS)[number];

/** query: IAM, STS, SNS (form body, XML answers); json: CloudTrail, Organizations, SQS (X-Amz-Target); rest-xml: S3 and anything else. */
export type AwsProtocol = 'query' | 'json' | 'rest-xml';

export interface AwsCall {
  /** From the SigV4 credential scope (`iam`, `sts`, `cloudtrail`, …); `unknown` for unsigned requests. */
  service: string;
  /** `CreateUser`, `LookupEvents`; for S3 and unknown protocols `METHOD path` (`PUT /bucket`). */
  action: string;
  mutation: boolean;
  protocol: AwsProtocol;
  method: string;
  /** The request target as sent, query string included. */
  path: string;
}

export interface AwsCallRecord extends AwsCall {
  /** The fault that replaced or cut the normal answer, if any. */
  fault?: ExclusiveFault;
  /** The extra delay of the `slow` fault, if drawn. */
  slowMs?: number;
  /** Whether the upstream saw the call. */
  forwarded: boolean;
  /** The status the proxy answered (or, for resetAfterForward, the upstream answered); absent when the socket was destroyed first. */
  status?: number;
  /** A successful mutation repeating an earlier successful one (see AwsProxyStats.duplicateMutations). */
  duplicate?: boolean;
  /** From the request's arrival to the end of the answer (or the reset). */
  ms: number;
}

export interface AwsProxyStats {
  calls: number;
  byService: Record<string, number>;
  /** Keyed `service:action` (`iam:CreateUser`), as IAM policies name actions. */
  byAction: Record<string, number>;
  mutations: number;
  faults: Record<FaultName, number>;
  /**
   * Mutations that reached the upstream and succeeded (2xx) with the same service, action and canonical
   * parameters as an earlier success. Signatures, dates and other headers are not compared.
   */
  duplicateMutations: number;
}

export interface AwsProxyOptions {
  /** The AWS endpoint to forward to, e.g. the moto sandbox at http://127.0.0.1:<port>. */
  upstream: string;
  /** The address to listen on; default 127.0.0.1. */
  host?: string;
  /** Added to every call before it is answered, faulted or not. */
  latencyMs?: number;
  faults?: FaultRates;
  /** Seeds the fault PRNG; default random (read it back from `AwsProxy.seed` to repeat a run). */
  seed?: number;
  /** Faults apply only to the calls this accepts (latency applies to all); calls it rejects draw nothing. */
  only?: (call: AwsCall) => boolean;
}

export interface AwsProxy {
  /** http://127.0.0.1:<port>: the endpoint to give SDK clients. */
  endpoint: string;
  port: number;
  seed: number;
  stats(): AwsProxyStats;
  /** Every call so far, oldest first (a copy). */
  calls(): AwsCallRecord[];
  /** Replaces the fault rates (throws on a rate outside 0..1 or exclusive rates summing over 1). */
  setFaults(rates: FaultRates): void;
  setLatency(ms: number): void;
  /** Answer AccessDenied to every call `matches` accepts (not forwarded), until `clearRules`. */
  deny(matches: CallMatcher): void;
  /** Hold the first call `matches` accepts until released; later ones pass. */
  hold(matches: CallMatcher): HeldCall;
  /** Drops the deny and hold rules (a held call stays held until released). */
  clearRules(): void;
  /** Forgets calls, statistics and seen mutations, and restarts the PRNG at the seed; rates, latency and rules stay. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * mulberry32: a seedable PRNG in five lines. Math.random cannot be seeded, and a fault test that fails
 * must be repeatable with the same seed; statistical quality beyond this is not needed, nor a library.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// ---------------------------------------------------------------------------------------------------
// Identifying a call

const READ_PREFIXES = ['Get', 'List', 'Describe', 'Head', 'Generate', 'LookupEvents'];

/** `Credential=AKID/20260101/us-east-1/iam/aws4_request` → `iam` (header or presigned query). */
function serviceOf(headers: IncomingHttpHeaders, url: URL): string {
  const scope = /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(headers.authorization ?? '')?.[1];
  const presigned = url.searchParams.get('X-Amz-Credential')?.split('/')[3];
  return scope ?? presigned ?? 'unknown';
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function formParams(body: Buffer, headers: IncomingHttpHeaders): URLSearchParams | undefined {
  const type = header(headers, 'content-type') ?? '';
  return type.startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(body.toString('utf8')) : undefined;
}

export function identifyCall(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): AwsCall {
  const url = new URL(path, 'http://proxy');
  const service = serviceOf(headers, url);
  const target = header(headers, 'x-amz-target');
  const base = { service, method, path };
  if (target) {
    // `AWSOrganizationsV20161128.ListAccounts`; CloudTrail's prefix has dots of its own, so cut at the last.
    const action = target.slice(target.lastIndexOf('.') + 1);
    return { ...base, action, protocol: 'json', mutation: !isRead(action) };
  }
  const queryAction = service === 's3' ? null : (formParams(body, headers)?.get('Action') ?? url.searchParams.get('Action'));
  // STS hands out credentials (AssumeRole, GetSessionToken) and changes nothing in an account: never a mutation.
  if (queryAction) return { ...base, action: queryAction, protocol: 'query', mutation: service !== 'sts' && !isRead(queryAction) };
  return { ...base, action: `${method} ${url.pathname}`, protocol: 'rest-xml', mutation: method !== 'GET' && method !== 'HEAD' };
}

function isRead(action: string): boolean {
  return READ_PREFIXES.some((prefix) => action.startsWith(prefix));
}

/** JSON with keys sorted at every level, so `{"b":1,"a":2}` and `{"a":2,"b":1}` compare equal. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function sortedParams(params: URLSearchParams): string {
  return [...params]
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/** The access key id a request is signed with (header or presigned query), if any. */
function accessKeyOf(headers: IncomingHttpHeaders, url: URL): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(headers.authorization ?? '')?.[1] ?? url.searchParams.get('X-Amz-Credential')?.split('/')[0];
}

/**
 * What makes two mutations "the same": the account acting (`principal`: the account of an assumed
 * role's session, else the access key), service, action and parameters — never the other headers
 * (signatures and dates differ on every retry).
 */
function mutationKey(call: AwsCall, headers: IncomingHttpHeaders, body: Buffer, principal: string): string {
  const url = new URL(call.path, 'http://proxy');
  let params: string;
  if (call.protocol === 'json') {
    try {
      params = canonicalJson(JSON.parse(body.toString('utf8') || '{}'));
    } catch {
      params = body.toString('utf8');
    }
  } else if (call.protocol === 'query') {
    const form = formParams(body, headers) ?? new URLSearchParams();
    for (const [k, v] of url.searchParams) form.append(k, v);
    params = sortedParams(form);
  } else {
    // S3: the target (path + sorted query) and a digest of the object body.
    params = `${sortedParams(url.searchParams)}\n${createHash('sha256').update(body).digest('base64')}`;
  }
  // A 16-byte digest per key keeps the seen-set small whatever the bodies' size.
  return createHash('sha256').update(`${principal}\n${call.service}\n${call.action}\n${params}`).digest('base64').slice(0, 22);
}

// ---------------------------------------------------------------------------------------------------
// Fault answers, shaped as each protocol's real errors so the SDK's deserialisers read them.

const QUERY_NAMESPACES: Record<string, string> = {
  iam: 'https://iam.amazonaws.com/doc/2010-05-08/',
  sts: 'https://sts.amazonaws.com/doc/2011-06-15/',
  sns: 'http://sns.amazonaws.com/doc/2010-03-31/',
  sqs: 'http://queue.amazonaws.com/doc/2012-11-05/',
};

interface Answer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: string;
}

/** The faults answered without forwarding; accessDenied only by a `deny` rule, never drawn at random. */
type AnswerFault = 'throttle' | 'http500' | 'http503' | 'accessDenied';

const MESSAGES = {
  http500: 'We encountered an internal error. Please try again.',
  http503: 'Service is unavailable. Please try again later.',
};

export function faultAnswer(call: AwsCall, fault: AnswerFault, headers: IncomingHttpHeaders): Answer {
  const requestId = randomUUID();
  if (fault === 'accessDenied') return accessDenied(call, requestId);
  if (call.protocol === 'json') {
    // The request's own content type: application/x-amz-json-1.1 (CloudTrail, Organizations) or 1.0 (SQS).
    const contentType = header(headers, 'content-type')?.startsWith('application/x-amz-json') ? header(headers, 'content-type') : 'application/x-amz-json-1.1';
    const common = { 'content-type': contentType, 'x-amzn-requestid': requestId };
    if (fault === 'throttle') {
      const body =
        call.service === 'organizations'
          ? {
              __type: 'TooManyRequestsException',
              Message: "AWS Organizations can't complete your request because another request is already in progress or the rate is exceeded.",
            }
          : { __type: 'ThrottlingException', message: 'Rate exceeded' };
      return { status: 400, headers: common, body: JSON.stringify(body) };
    }
    const code = fault === 'http500' ? 'InternalFailure' : 'ServiceUnavailable';
    return { status: fault === 'http500' ? 500 : 503, headers: common, body: JSON.stringify({ __type: code, message: MESSAGES[fault] }) };
  }
  if (call.protocol === 'query') {
    const [status, type, code, message] =
      fault === 'throttle'
        ? [400, 'Sender', 'Throttling', 'Rate exceeded']
        : fault === 'http500'
          ? [500, 'Receiver', 'InternalFailure', MESSAGES.http500]
          : [503, 'Receiver', 'ServiceUnavailable', MESSAGES.http503];
    const xmlns = QUERY_NAMESPACES[call.service] ?? QUERY_NAMESPACES.iam;
    const body = `<ErrorResponse xmlns="${xmlns}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    return { status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body };
  }
  // S3 throttles with 503 SlowDown; its 500 is InternalError (S3's name for what other services call InternalFailure).
  const [status, code, message] =
    fault === 'throttle'
      ? [503, 'SlowDown', 'Please reduce your request rate.']
      : fault === 'http500'
        ? [500, 'InternalError', MESSAGES.http500]
        : [503, 'ServiceUnavailable', MESSAGES.http503];
  const hostId = randomBytes(24).toString('base64');
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>${hostId}</HostId></Error>`;
  return { status, headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId, 'x-amz-id-2': hostId }, body };
}

/** AccessDenied as each protocol answers an explicit deny, so the SDK names the error as AWS would. */
function accessDenied(call: AwsCall, requestId: string): Answer {
  const message = `User is not authorized to perform: ${call.service}:${call.action} with an explicit deny in a service control policy`;
  if (call.protocol === 'json') {
    return { status: 400, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId }, body: JSON.stringify({ __type: 'AccessDeniedException', message }) };
  }
  if (call.protocol === 'query') {
    const xmlns = QUERY_NAMESPACES[call.service] ?? QUERY_NAMESPACES.iam;
    const body = `<ErrorResponse xmlns="${xmlns}"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    return { status: 403, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body };
  }
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>${requestId}</RequestId></Error>`;
  return { status: 403, headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId }, body };
}

/** The parameters of a call: the form of a query-protocol call, the JSON body of a json-protocol call ({} for rest-xml). */
export type CallInput = Record<string, unknown>;
export type CallMatcher = (call: AwsCall, input: CallInput) => boolean;

export function callInput(call: AwsCall, body: Buffer): CallInput {
  const text = body.toString('utf8');
  if (call.protocol === 'json') {
    try {
      return JSON.parse(text || '{}') as CallInput;
    } catch {
      return {};
    }
  }
  if (call.protocol === 'query') return Object.fromEntries(new URLSearchParams(text));
  return {};
}

/** A call held by a `hold` rule. */
export interface HeldCall {
  /** Resolves once a matching call has arrived and is being held. */
  reached: Promise<void>;
  /** Lets it through (to moto, or to its other faults). */
  release(): void;
}

// ---------------------------------------------------------------------------------------------------
// The proxy

/** Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection; SigV4 never signs them. The body is re-sent whole, so Expect goes too. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

/** Bounds the memory of `duplicateMutations`: past this many distinct successful mutations the oldest are forgotten. */
const MAX_SEEN_MUTATIONS = 100_000;

function checkRates(rates: FaultRates): FaultRates {
  for (const [name, value] of Object.entries(rates)) {
    if (value === undefined) continue;
    if (name === 'slowMs') {
      if (!(value >= 0)) throw new RangeError(`slowMs must be ≥ 0, not ${value}`);
    } else if (!(value >= 0 && value <= 1)) {
      throw new RangeError(`fault rate ${name} must be within 0..1, not ${value}`);
    }
  }
  const exclusive = EXCLUSIVE_FAULTS.reduce((sum, name) => sum + (rates[name] ?? 0), 0);
  if (exclusive > 1 + 1e-9) throw new RangeError(`the rates of ${EXCLUSIVE_FAULTS.join(', ')} add up to ${exclusive}, more than 1`);
  return { ...rates };
}

function checkLatency(ms: number): number {
  if (!(ms >= 0)) throw new RangeError(`latency must be ≥ 0 ms, not ${ms}`);
  return ms;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startAwsProxy(options: AwsProxyOptions): Promise<AwsProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error(`aws-proxy forwards to http:// endpoints only (a moto server), not ${options.upstream}`);
  const host = options.host ?? '127.0.0.1';
  const seed = options.seed ?? randomBytes(4).readUInt32BE(0);
  let faults = checkRates(options.faults ?? {});
  let latencyMs = checkLatency(options.latencyMs ?? 0);
  let random = mulberry32(seed);

  const emptyStats = (): AwsProxyStats => ({
    calls: 0,
    byService: {},
    byAction: {},
    mutations: 0,
    faults: Object.fromEntries(FAULT_NAMES.map((name) => [name, 0])) as Record<FaultName, number>,
    duplicateMutations: 0,
  });
  let stats = emptyStats();
  let log: AwsCallRecord[] = [];
  let seen = new Set<string>();
  /** Session access key → the account of the role it was assumed in, from AssumeRole answers. */
  const sessionAccounts = new Map<string, string>();
  let denied: CallMatcher | undefined;
  let held: { matches: CallMatcher; reached: () => void; released: Promise<void> } | undefined;

  // Keep-alive, as the SDK's own handler does: a connection per call would add latency that real AWS does not.
  const agent = new Agent({ keepAlive: true });

  /** Two draws per faultable call, always, so the sequence does not shift when only some rates change. */
  function drawFaults(): { fault?: ExclusiveFault; slowMs?: number } {
    const u = random();
    const v = random();
    let edge = 0;
    let fault: ExclusiveFault | undefined;
    for (const name of EXCLUSIVE_FAULTS) {
      edge += faults[name] ?? 0;
      if (u < edge) {
        fault = name;
        break;
      }
    }
    const slowMs = v < (faults.slow ?? 0) && (faults.slowMs ?? 0) > 0 ? faults.slowMs : undefined;
    return { fault, slowMs };
  }

  function noteSuccess(record: AwsCallRecord, key: string): void {
    if (!record.mutation || record.status === undefined || record.status < 200 || record.status > 299) return;
    if (seen.has(key)) {
      record.duplicate = true;
      stats.duplicateMutations++;
      return;
    }
    if (seen.size >= MAX_SEEN_MUTATIONS) {
      const oldest = seen.values().next().value;
      if (oldest !== undefined) seen.delete(oldest);
    }
    seen.add(key);
  }

  function forward(req: IncomingMessage, body: Buffer, retried = false): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    // The Host header stays as the client sent (and signed) it.
    if (body.length > 0 || req.headers['content-length'] !== undefined) headers['content-length'] = body.length;
    return new Promise((resolve, reject) => {
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port || 80, method: req.method, path: req.url, headers, agent },
        resolve,
      );
      out.on('error', (err: NodeJS.ErrnoException) => {
        // The upstream may close an idle keep-alive connection just as it is reused: Node's documented
        // remedy is to retry once on a fresh one. The upstream never saw that request.
        if (out.reusedSocket && err.code === 'ECONNRESET' && !retried) forward(req, body, true).then(resolve, reject);
        else reject(err);
      });
      out.end(body);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const call = identifyCall(method, req.url ?? '/', req.headers, body);
    const drawn = !options.only || options.only(call) ? drawFaults() : {};
    const record: AwsCallRecord = { ...call, forwarded: false, ms: 0 };
    if (drawn.fault) record.fault = drawn.fault;
    if (drawn.slowMs) record.slowMs = drawn.slowMs;
    const accessKey = accessKeyOf(req.headers, new URL(call.path, 'http://proxy'));
    const principal = (accessKey && sessionAccounts.get(accessKey)) ?? accessKey ?? 'anonymous';
    const key = call.mutation ? mutationKey(call, req.headers, body, principal) : '';
    const snapshot = stats; // a reset() while this call is in flight must not count it in the new period
    log.push(record);
    snapshot.calls++;
    snapshot.byService[call.service] = (snapshot.byService[call.service] ?? 0) + 1;
    snapshot.byAction[`${call.service}:${call.action}`] = (snapshot.byAction[`${call.service}:${call.action}`] ?? 0) + 1;
    if (call.mutation) snapshot.mutations++;
    if (drawn.fault) snapshot.faults[drawn.fault]++;
    if (drawn.slowMs) snapshot.faults.slow++;
    const done = (status?: number) => {
      if (status !== undefined) record.status = status;
      record.ms = performance.now() - started;
      if (snapshot === stats) noteSuccess(record, key);
    };

    const input = denied || held ? callInput(call, body) : undefined;
    if (input && denied?.(call, input)) {
      const answer = faultAnswer(call, 'accessDenied', req.headers);
      res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
      res.end(answer.body, () => done(answer.status));
      return;
    }
    if (input && held?.matches(call, input)) {
      const { reached, released } = held;
      held = undefined;
      reached();
      await released;
    }

    await sleep(latencyMs + (drawn.slowMs ?? 0));

    if (drawn.fault === 'reset') {
      req.socket.destroy();
      done();
      return;
    }
    if (drawn.fault === 'throttle' || drawn.fault === 'http500' || drawn.fault === 'http503') {
      const answer = faultAnswer(call, drawn.fault, req.headers);
      res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
      res.end(answer.body, () => done(answer.status));
      return;
    }

    let reply: IncomingMessage;
    try {
      reply = await forward(req, body);
    } catch (err) {
      const message = `aws-proxy: upstream ${upstream.origin} failed: ${err instanceof Error ? err.message : String(err)}\n`;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(message) });
      res.end(message, () => done(502));
      return;
    }
    record.forwarded = true;
    const status = reply.statusCode ?? 502;

    if (drawn.fault === 'resetAfterForward') {
      // Let the upstream finish (the change is made), then lose the answer.
      reply.resume();
      reply.on('end', () => {
        req.socket.destroy();
        done(status);
      });
      reply.on('error', () => {
        req.socket.destroy();
        done(status);
      });
      return;
    }

    if (call.service === 'sts' && call.action === 'AssumeRole' && status === 200) {
      // Read the answer whole to learn which account the new session acts in, then pass it on.
      const answer = await readBody(reply);
      const sessionKey = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(answer.toString('utf8'))?.[1];
      const account = /<Arn>arn:[^:]+:sts::(\d{12}):assumed-role\//.exec(answer.toString('utf8'))?.[1];
      if (sessionKey && account) {
        if (sessionAccounts.size >= MAX_SEEN_MUTATIONS) sessionAccounts.clear();
        sessionAccounts.set(sessionKey, account);
      }
      const headers: string[] = [];
      for (let i = 0; i + 1 < reply.rawHeaders.length; i += 2) {
        const name = reply.rawHeaders[i] as string;
        if (!HOP_BY_HOP.has(name.toLowerCase()) && name.toLowerCase() !== 'content-length') headers.push(name, reply.rawHeaders[i + 1] as string);
      }
      res.writeHead(status, [...headers, 'content-length', String(answer.length)]);
      res.end(answer, () => done(status));
      return;
    }

    const raw: string[] = [];
    for (let i = 0; i + 1 < reply.rawHeaders.length; i += 2) {
      const name = reply.rawHeaders[i] as string;
      if (!HOP_BY_HOP.has(name.toLowerCase())) raw.push(name, reply.rawHeaders[i + 1] as string);
    }
    res.writeHead(status, raw);
    pipeline(reply, res, () => done(status));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A client that went away mid-request; nothing is left to answer.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`aws-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
      } else {
        res.destroy();
      }
    });
  });
  // Longer than the SDK's idle keep-alive, so the proxy never closes a socket the client is about to reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    endpoint,
    port,
    seed,
    stats: () => structuredClone(stats),
    calls: () => log.map((record) => ({ ...record })),
    setFaults(rates) {
      faults = checkRates(rates);
    },
    setLatency(ms) {
      latencyMs = checkLatency(ms);
    },
    deny(matches) {
      denied = matches;
    },
    hold(matches) {
      let reached!: () => void;
      let release!: () => void;
      const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      held = { matches, reached, released };
      return { reached: reachedPromise, release };
    },
    clearRules() {
      denied = undefined;
      held = undefined;
    },
    reset() {
      stats = emptyStats();
      log = [];
      seen = new Set();
      random = mulberry32(seed);
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
        agent.destroy();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// CLI: put the proxy in front of a running sandbox by hand.

function numberIn(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number within ${min}..${max}`);
    return n;
  };
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('aws-proxy')
    .description('An HTTP proxy in front of an AWS endpoint (moto) adding latency and faults; prints its endpoint.')
    .requiredOption('--upstream <URL>', 'the endpoint to forward to, e.g. http://127.0.0.1:5000')
    .option('--latency <MS>', 'added to every call', numberIn(0, 600_000), 0)
    .option('--throttle <R>', "rate of throttling answers (each protocol's own)", numberIn(0, 1))
    .option('--http500 <R>', 'rate of HTTP 500 InternalFailure answers', numberIn(0, 1))
    .option('--http503 <R>', 'rate of HTTP 503 ServiceUnavailable answers', numberIn(0, 1))
    .option('--reset <R>', 'rate of connections dropped before forwarding', numberIn(0, 1))
    .option('--reset-after-forward <R>', 'rate of answers lost after the upstream made the change', numberIn(0, 1))
    .option('--seed <N>', 'seed of the fault PRNG (default random, printed)', numberIn(0, 2 ** 32 - 1))
    .option('--host <H>', 'address to listen on', '127.0.0.1');
  program.parse(argv, { from: 'user' });
  const o = program.opts<{
    upstream: string;
    latency: number;
    throttle?: number;
    http500?: number;
    http503?: number;
    reset?: number;
    resetAfterForward?: number;
    seed?: number;
    host: string;
  }>();
  const proxy = await startAwsProxy({
    upstream: o.upstream,
    host: o.host,
    latencyMs: o.latency,
    seed: o.seed,
    faults: { throttle: o.throttle, http500: o.http500, http503: o.http503, reset: o.reset, resetAfterForward: o.resetAfterForward },
  });
  process.stdout.write(`${proxy.endpoint}\n`);
  process.stderr.write(`aws-proxy: ${proxy.endpoint} → ${o.upstream} (seed ${proxy.seed}); use AWS_ENDPOINT_URL=${proxy.endpoint}; Ctrl-C prints the statistics\n`);
  const stop = () => {
    process.stderr.write(`${JSON.stringify(proxy.stats(), null, 2)}\n`);
    proxy.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`aws-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
