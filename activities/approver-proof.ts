/**
 * Proven approver identity (the approach of Vault's AWS auth method). The approver signs, with their own
 * AWS credentials, an sts:GetCallerIdentity request whose SIGNED headers bind it to one workflow id, run
 * id and plan digest, and sends that request — unsent — with the decision. The worker checks the
 * binding and the signing time, then re-sends the request to STS: STS answers with the signer's ARN only
 * when the signature is valid, and that ARN is the approver.
 *
 * The request is only ever sent to STS: the configured endpoint (AWS_ENDPOINT_URL, the sandbox's moto)
 * or a regional `sts.<region>.amazonaws.com` host taken from the proof's URL — never anywhere else.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { ApproverProof, RefusalReason } from '../common/messages';
import type { AwsClients, AwsSettings } from './aws/clients';

/** The headers that bind a proof to a run and a plan: each must be present AND signed. */
export const BINDING_HEADERS = {
  workflowId: 'x-countersign-workflow-id',
  runId: 'x-countersign-run-id',
  planDigest: 'x-countersign-plan-digest',
} as const;

/** A proof is accepted this long either side of its X-Amz-Date (STS's own window). */
export const PROOF_MAX_AGE_MS = 15 * 60_000;

export const GET_CALLER_IDENTITY_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';

/** What a proof must be bound to: this run and the plan being decided. */
export interface ProofBinding {
  workflowId: string;
  runId: string;
  planDigest: string;
}

export interface VerifyProofRequest {
  proof: ApproverProof;
  binding: ProofBinding;
}

export type ProofVerdict =
  | { ok: true; arn: string; account: string; userId: string; signatureSha256: string; signedAt: string }
  | { ok: false; reason: Extract<RefusalReason, 'proof-invalid' | 'proof-binding' | 'proof-expired'>; message: string };

/** Where the proof may be sent: the configured endpoint, else real STS. */
export interface ProofEndpoint {
  /** AWS_ENDPOINT_URL (an emulator); when set, it is the only destination. */
  endpoint?: string;
}

/** Regional and global STS hosts (FIPS included); nothing else of amazonaws.com (an S3 bucket named "sts" is not STS). */
const STS_HOST = /^sts(?:-fips)?(?:\.[a-z]{2}(?:-[a-z]+)+-\d{1,2})?\.amazonaws\.com$/;

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

type Check<T> = { ok: true; value: T } | { ok: false; reason: 'proof-invalid' | 'proof-binding' | 'proof-expired'; message: string };

const invalid = (message: string): Check<never> => ({ ok: false, reason: 'proof-invalid', message });

/**
 * The destination a proof's URL allows, or why it is refused: the configured endpoint (the URL must
 * name it), or `https://sts[-fips][.<region>].amazonaws.com/`.
 */
export function proofDestination(rawUrl: string, where: ProofEndpoint): Check<URL> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return invalid('the proof URL is not a URL');
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    return invalid(`the proof URL ${rawUrl.slice(0, 200)} is not an STS endpoint (expected a bare https://sts.<region>.amazonaws.com/)`);
  }
  if (where.endpoint) {
    const configured = new URL(where.endpoint);
    if (url.protocol !== configured.protocol || url.host.toLowerCase() !== configured.host.toLowerCase()) {
      return invalid(`the proof was signed for ${url.host}, but this worker verifies proofs only at its configured endpoint ${configured.host}`);
    }
    return { ok: true, value: new URL('/', configured) };
  }
  if (url.protocol !== 'https:' || url.port !== '' || !STS_HOST.test(url.hostname.toLowerCase())) {
    return invalid(`the proof was signed for ${url.host}, which is not an STS endpoint (sts.<region>.amazonaws.com); it is not sent anywhere else`);
  }
  return { ok: true, value: new URL(`https://${url.hostname.toLowerCase()}/`) };
}

function parseAmzDate(value: string): number | undefined {
  const m = AMZ_DATE.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isFinite(ms) ? ms : undefined;
}

/** Every check that needs no network: the request's shape, its binding, its age, its destination. */
export function checkProof(proof: ApproverProof, binding: ProofBinding, now: Date, where: ProofEndpoint): Check<{ destination: URL; signature: string; signedAt: Date; headers: Record<string, string> }> {
  if (proof.method.toUpperCase() !== 'POST') return invalid(`the proof must be a POST (got ${proof.method.slice(0, 16)})`);
  if (proof.body !== GET_CALLER_IDENTITY_BODY) return invalid(`the proof must be exactly an sts:GetCallerIdentity request (body "${GET_CALLER_IDENTITY_BODY}")`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(proof.headers)) {
    const key = name.toLowerCase();
    if (key in headers) return invalid(`the proof repeats the header ${key}`);
    if (!/^[a-z0-9-]+$/.test(key) || /[\r\n]/.test(value)) return invalid(`the proof has a malformed header ${key.slice(0, 64)}`);
    headers[key] = value;
  }
  const auth = AUTHORIZATION.exec(headers.authorization ?? '');
  if (!auth) return invalid('the proof has no AWS SigV4 Authorization header');
  const [, credential, signedList, signature] = auth as unknown as [string, string, string, string];
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[3] !== 'sts' || scope[4] !== 'aws4_request') return invalid('the proof is not signed for the sts service');
  const signed = new Set(signedList.split(';'));
  for (const required of ['host', 'x-amz-date', ...Object.values(BINDING_HEADERS)]) {
    if (!(required in headers)) {
      return required.startsWith('x-countersign-') ? { ok: false, reason: 'proof-binding', message: `the proof has no ${required} header: it is bound to no run` } : invalid(`the proof has no ${required} header`);
    }
    if (!signed.has(required)) {
      return required.startsWith('x-countersign-')
        ? { ok: false, reason: 'proof-binding', message: `the proof's ${required} header is not signed (not in SignedHeaders), so it binds nothing` }
        : invalid(`the proof's ${required} header is not signed`);
    }
  }
  for (const name of signed) if (!(name in headers)) return invalid(`the proof signs a header it does not carry: ${name}`);
  const expected: Record<string, string> = {
    [BINDING_HEADERS.workflowId]: binding.workflowId,
    [BINDING_HEADERS.runId]: binding.runId,
    [BINDING_HEADERS.planDigest]: binding.planDigest,
  };
  for (const [name, value] of Object.entries(expected)) {
    if (headers[name] !== value) {
      return { ok: false, reason: 'proof-binding', message: `the proof is bound to ${name.replace('x-countersign-', '')} ${(headers[name] ?? '').slice(0, 80)}, not this run's ${value}` };
    }
  }
  const signedAt = parseAmzDate(headers['x-amz-date'] ?? '');
  if (signedAt === undefined) return invalid('the proof has a malformed X-Amz-Date');
  const skew = now.getTime() - signedAt;
  if (Math.abs(skew) > PROOF_MAX_AGE_MS) {
    return {
      ok: false,
      reason: 'proof-expired',
      message: `the proof was signed at ${new Date(signedAt).toISOString()}, ${Math.round(Math.abs(skew) / 60_000)} minutes ${skew > 0 ? 'ago' : 'ahead'}; proofs are accepted within 15 minutes — sign again`,
    };
  }
  const destination = proofDestination(proof.url, where);
  if (!destination.ok) return destination;
  const host = headers.host ?? '';
  if (!where.endpoint && host.toLowerCase() !== destination.value.hostname) return invalid(`the proof's signed Host ${host.slice(0, 100)} is not its URL's host`);
  return { ok: true, value: { destination: destination.value, signature, signedAt: new Date(signedAt), headers } };
}

/** The SHA-256 of a proof's signature: what the workflow keeps to refuse a proof used twice. */
export function signatureSha256(signature: string): string {
  return createHash('sha256').update(signature).digest('hex');
}

export interface StsAnswer {
  status: number;
  body: string;
}

/** Send the signed request as it was signed (Host included), reading at most 64 KiB of the answer. */
export function sendToSts(destination: URL, headers: Record<string, string>, body: string, timeoutMs = 10_000): Promise<StsAnswer> {
  const transport = destination.protocol === 'http:' ? http : https;
  return new Promise<StsAnswer>((resolve, reject) => {
    const req = transport.request(destination, { method: 'POST', headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 65_536) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`STS at ${destination.host} did not answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const xmlField = (xml: string, name: string): string | undefined => new RegExp(`<${name}>([^<]{1,2048})</${name}>`).exec(xml)?.[1]?.trim();

/** STS's answer, read: the caller, or STS's refusal of the signature (a definite no), or a throw (retry). */
export function readStsAnswer(answer: StsAnswer): { arn: string; account: string; userId: string } | { refused: string } {
  if (answer.status === 200) {
    const arn = xmlField(answer.body, 'Arn');
    const account = xmlField(answer.body, 'Account');
    const userId = xmlField(answer.body, 'UserId');
    if (arn && account && /^arn:aws[a-z-]*:(iam|sts)::\d{12}:/.test(arn)) return { arn, account, userId: userId ?? '' };
    throw new Error('STS answered 200 without a caller identity');
  }
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
    const code = xmlField(answer.body, 'Code') ?? `HTTP ${answer.status}`;
    const message = xmlField(answer.body, 'Message');
    return { refused: `${code}${message ? `: ${message.slice(0, 300)}` : ''}` };
  }
  throw new Error(`STS answered HTTP ${answer.status}; the proof could not be verified now`);
}

export interface ApproverProofDeps {
  aws: Pick<AwsClients, 'settings'>;
  now?: () => Date;
  /** Replaced in unit tests (an STS answer for a bad signature). */
  send?: typeof sendToSts;
}

export function createApproverProofActivities(deps: ApproverProofDeps) {
  const now = deps.now ?? (() => new Date());
  const send = deps.send ?? sendToSts;
  return {
    /**
     * Verify an approver's proof for this run and plan: the binding headers are present, signed and
     * this run's; it was signed within 15 minutes; then STS itself checks the signature and names the
     * signer. A definite no is a verdict (recorded as the refusal's reason); an unreachable STS throws.
     */
    async verifyApproverProof(request: VerifyProofRequest): Promise<ProofVerdict> {
      const checked = checkProof(request.proof, request.binding, now(), { endpoint: deps.aws.settings.endpoint });
      if (!checked.ok) return { ok: false, reason: checked.reason, message: checked.message };
      const { destination, headers, signature, signedAt } = checked.value;
      const answer = readStsAnswer(await send(destination, headers, request.proof.body));
      if ('refused' in answer) return { ok: false, reason: 'proof-invalid', message: `STS refused the proof's signature (${answer.refused})` };
      return { ok: true, ...answer, signatureSha256: signatureSha256(signature), signedAt: signedAt.toISOString() };
    },
  };
}

/** A proof's signed request, captured instead of sent. */
class Captured extends Error {
  constructor(readonly request: { method: string; protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string>; body?: unknown }) {
    super('captured');
  }
}

export interface SignOptions {
  /** Region of the STS endpoint signed for; default AWS_REGION or us-east-1. */
  region?: string;
  /** An emulator endpoint (AWS_ENDPOINT_URL); default real STS. */
  endpoint?: string;
  /** A shared-config profile; default: the SDK's default credential chain. */
  profile?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Milliseconds added to the clock when signing (tests sign "20 minutes ago" with -1_200_000). */
  systemClockOffset?: number;
}

/**
 * Sign — never send — an sts:GetCallerIdentity request with the approver's own credentials, its signed
 * headers binding the workflow id, run id and plan digest. The binding headers are added in the build
 * step, so SigV4 (finalizeRequest) signs them; the request handler captures the signed request.
 * Only the signed headers and the Authorization header are kept (the proof stays small).
 */
export async function signApproverProof(binding: ProofBinding, options: Pick<AwsSettings, 'region'> & SignOptions): Promise<ApproverProof> {
  const client = new STSClient({
    region: options.region,
    maxAttempts: 1,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.systemClockOffset !== undefined ? { systemClockOffset: options.systemClockOffset } : {}),
    requestHandler: {
      handle: async (request: ConstructorParameters<typeof Captured>[0]) => {
        throw new Captured(request);
      },
    },
  });
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      request.headers[BINDING_HEADERS.workflowId] = binding.workflowId;
      request.headers[BINDING_HEADERS.runId] = binding.runId;
      request.headers[BINDING_HEADERS.planDigest] = binding.planDigest;
      return next(args);
    },
    { step: 'build', name: 'countersignProofBinding' },
  );
  try {
    await client.send(new GetCallerIdentityCommand({}));
    throw new Error('the proof request was sent instead of captured');
  } catch (err) {
    if (!(err instanceof Captured)) throw err;
    const r = err.request;
    const auth = r.headers.authorization ?? r.headers.Authorization ?? '';
    const signed = new Set((/SignedHeaders=([^,\s]+)/.exec(auth)?.[1] ?? '').split(';'));
    const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => signed.has(k.toLowerCase()) || k.toLowerCase() === 'authorization'));
    const port = r.port ? `:${r.port}` : '';
    return { method: r.method, url: `${r.protocol}//${r.hostname}${port}${r.path}`, headers, body: typeof r.body === 'string' ? r.body : String(r.body ?? '') };
  } finally {
    client.destroy();
  }
}
