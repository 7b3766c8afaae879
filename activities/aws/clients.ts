/**
 * AWS clients, one per account, service and region, shared by all activities of a worker (the SDK's
 * retry quota is per client instance — docs/aws.md §6.2). SDK retries stay few and fast; Temporal
 * owns the long horizon (§6.4). AWS_ENDPOINT_URL points every client at an emulator. Every client
 * carries the rate-limit middleware of rate-limit.ts (§6.5): a cap per account and service shared by
 * all activities of the worker, AIMD on throttling, and pacing of CloudTrail mutations.
 */
import { createHash } from 'node:crypto';
import { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { IAMClient } from '@aws-sdk/client-iam';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
// Types only (erased at build): the SDK clients' own middleware types, from the package they come from.
import type { FinalizeHandler, FinalizeHandlerArguments, FinalizeHandlerOutput, HandlerExecutionContext, MiddlewareStack } from '@smithy/types';
import { retryStrategy } from './retry';
import { AwsRateLimits, defaultRateLimitSettings, rateLimitSettingsFromEnv } from './rate-limit';
import type { RateLimitSettings } from './rate-limit';

export interface AwsSettings {
  /** Default region for regional services. */
  region: string;
  /** An emulator endpoint (AWS_ENDPOINT_URL), or undefined for real AWS. */
  endpoint?: string;
  /**
   * Which emulator answers, when one does. moto lacks some operations and fixes some values
   * (docs/aws.md §9); activities use this to tolerate exactly those gaps and nothing else.
   */
  emulator?: 'moto';
  /** Total HTTP attempts per SDK call. */
  maxAttempts: number;
  /**
   * The SDK's retry mode (AWS_RETRY_MODE, the profile's retry_mode). The resolvers default it to
   * 'adaptive' (the SDK's client-side rate limiter) for real AWS; 'standard' when unset here.
   */
  retryMode?: string;
  /** Client-side rate limits (rate-limit.ts); defaultRateLimitSettings when unset. */
  rateLimits?: RateLimitSettings;
  /** The role assumed in other accounts of the organization (COUNTERSIGN_ACCOUNT_ROLE). */
  accountRole: string;
  /** The external id that role's trust policy requires, if any (COUNTERSIGN_ACCOUNT_ROLE_EXTERNAL_ID). */
  externalId?: string;
}

export const DEFAULT_ACCOUNT_ROLE = 'OrganizationAccountAccessRole';

/**
 * SDK attempts per AWS call on real AWS (adaptive mode: backoff with jitter and a client-side rate
 * limiter). At 30 % throttling a call still fails after 8 attempts about once in 15,000; Temporal's
 * retry policy, and the batch checkpoints, own the longer horizon (docs/aws.md §6.4).
 */
export const AWS_DEFAULT_ATTEMPTS = 8;

/**
 * Real AWS (no endpoint override) retries in 'adaptive' mode unless the retry mode was set: the
 * standard backoff with jitter plus the SDK's client-side token bucket, which slows a client down
 * after throttling. An emulator keeps 'standard' (it makes one attempt anyway, §0). `configured` is
 * the mode the SDK resolved, which is 'standard' both when set so and when unset; only
 * AWS_RETRY_MODE=standard can tell them apart, so a profile's `retry_mode = standard` reads as unset.
 */
function defaultRetryMode(endpoint: string | undefined, configured: string | undefined, envRetryMode: string | undefined): string | undefined {
  if (envRetryMode) return envRetryMode;
  if (configured && configured !== 'standard') return configured;
  return endpoint ? configured : 'adaptive';
}

/**
 * Settings from explicit variables only, for tests and the sandbox (which pass moto's env): the region
 * is AWS_REGION or AWS_DEFAULT_REGION, else us-east-1; nothing is read from AWS config files. The
 * worker and the CLI use `resolveAwsSettings`, which resolves as the SDK does.
 */
export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  const emulator = env.COUNTERSIGN_AWS_EMULATOR === 'moto' ? 'moto' : undefined;
  const attempts = Number(env.AWS_MAX_ATTEMPTS);
  const endpoint = env.AWS_ENDPOINT_URL || undefined;
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint,
    emulator,
    // Against moto an unimplemented operation is an HTML 500 the SDK would retry: one attempt there.
    maxAttempts: Number.isInteger(attempts) && attempts > 0 ? attempts : emulator ? 1 : AWS_DEFAULT_ATTEMPTS,
    retryMode: defaultRetryMode(endpoint, undefined, env.AWS_RETRY_MODE),
    rateLimits: rateLimitSettingsFromEnv(env, { endpoint }),
    accountRole: env.COUNTERSIGN_ACCOUNT_ROLE || DEFAULT_ACCOUNT_ROLE,
    externalId: env.COUNTERSIGN_ACCOUNT_ROLE_EXTERNAL_ID || undefined,
  };
}

/** A config value the SDK may hold as a value or a provider. */
async function resolved<T>(value: T | (() => Promise<T>)): Promise<T> {
  return typeof value === 'function' ? (value as () => Promise<T>)() : value;
}

/** No region anywhere the SDK looks: one line, naming where to set one (and the profile that has none). */
export function noRegionMessage(profile?: string): string {
  const where = profile ? `the profile "${profile}" (AWS_PROFILE) has no region` : 'the default profile (AWS_PROFILE is unset) has no region';
  return `no AWS region: AWS_REGION is unset and ${where} in ~/.aws/config (or AWS_CONFIG_FILE); set AWS_REGION, or a region in that profile`;
}

/**
 * Settings as the AWS SDK itself resolves them, for the worker and the CLI: a throw-away client with
 * no explicit configuration is asked for its region, max attempts and retry mode, so AWS_REGION, the
 * AWS_PROFILE's config file (SSO profiles included), AWS_MAX_ATTEMPTS / max_attempts and
 * AWS_RETRY_MODE / retry_mode count exactly as for any SDK client. The emulator endpoint is
 * AWS_ENDPOINT_URL, else the endpoint the SDK configures from AWS_ENDPOINT_URL_STS or the profile's
 * endpoint_url.
 *
 * The SDK reads process.env and the shared config files; `env` supplies Countersign's own variables
 * (COUNTERSIGN_*). AWS_DEFAULT_REGION (the AWS CLI's name, which the SDK ignores) is used only when
 * the SDK finds no region. No region at all is an error (noRegionMessage): there is no silent
 * us-east-1 on real AWS. Against moto (COUNTERSIGN_AWS_EMULATOR=moto) one attempt per call unless
 * AWS_MAX_ATTEMPTS says otherwise. Real AWS retries in 'adaptive' mode unless a mode is set
 * (defaultRetryMode). A bad COUNTERSIGN_AWS_CONCURRENCY or _CLOUDTRAIL_MUTATION_INTERVAL is an error here.
 */
export async function resolveAwsSettings(env: NodeJS.ProcessEnv = process.env): Promise<AwsSettings> {
  const emulator = env.COUNTERSIGN_AWS_EMULATOR === 'moto' ? 'moto' : undefined;
  const probe = new STSClient({});
  try {
    let region: string | undefined;
    try {
      region = await probe.config.region();
    } catch (err) {
      // The SDK's own words when nothing holds a region; anything else (a broken config file) is
      // reported as it is.
      if (!/Region is missing/i.test((err as Error).message)) throw err;
    }
    region ||= process.env.AWS_DEFAULT_REGION || undefined;
    if (!region) throw new Error(noRegionMessage(process.env.AWS_PROFILE || process.env.AWS_DEFAULT_PROFILE || undefined));
    const endpoint = process.env.AWS_ENDPOINT_URL || (await probe.config.serviceConfiguredEndpoint?.()) || undefined;
    const sdkAttempts = await probe.config.maxAttempts();
    // The SDK's default of 3 attempts gives up on a throttling spell a busy account sees every day; unless
    // AWS_MAX_ATTEMPTS (or a profile's max_attempts other than 3) says otherwise, Countersign makes 8.
    const maxAttempts = emulator && !process.env.AWS_MAX_ATTEMPTS ? 1 : !process.env.AWS_MAX_ATTEMPTS && sdkAttempts === 3 ? AWS_DEFAULT_ATTEMPTS : sdkAttempts;
    return {
      region,
      endpoint,
      emulator,
      maxAttempts,
      retryMode: defaultRetryMode(endpoint, await resolved(probe.config.retryMode), process.env.AWS_RETRY_MODE || undefined),
      rateLimits: rateLimitSettingsFromEnv(env, { endpoint }),
      accountRole: env.COUNTERSIGN_ACCOUNT_ROLE || DEFAULT_ACCOUNT_ROLE,
      externalId: env.COUNTERSIGN_ACCOUNT_ROLE_EXTERNAL_ID || undefined,
    };
  } finally {
    probe.destroy();
  }
}

export interface CallerIdentity {
  account: string;
  arn: string;
  userId: string;
}

/** How a set of clients reaches its account: directly, or by assuming a role. */
export interface AccountAccess {
  account?: string;
  roleArn?: string;
  sessionName?: string;
}

/**
 * A role session name that leads back to the workflow (docs/aws.md §7: 2–64 characters of
 * [\w+=,.@-]). It appears in every CloudTrail event the run causes in the target account, so an
 * auditor can join those events to the workflow history. Too long a workflow id keeps its start and
 * gains a hash of the whole, so two workflows never share a session name.
 */
export function roleSessionName(workflowId: string): string {
  const name = `countersign.${workflowId.replace(/[^\w+=,.@-]/g, '.')}`;
  if (name.length <= 64) return name;
  return `${name.slice(0, 55)}.${createHash('sha256').update(workflowId).digest('hex').slice(0, 8)}`;
}

/** Assumed-role credentials are renewed this long before they expire. */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
/** Account client sets kept at once; the least recently used is closed beyond this. */
const MAX_ACCOUNT_SETS = 64;

/** The account key of the worker's own clients (their account is only known after GetCallerIdentity). */
const OWN_ACCOUNT = 'self';

/**
 * Put one client under `limits`: every HTTP attempt waits for its (account, service) slot — and a
 * CloudTrail mutation for its pacing — just inside the SDK's retry middleware and before signing, so
 * a retry in backoff holds no slot, each throttled attempt is seen, and a signature is never made
 * stale by the wait.
 */
function rateLimited<I extends object, O extends object, C extends object>(
  client: C & { middlewareStack: MiddlewareStack<I, O> },
  limits: AwsRateLimits,
  call: { account: string; service: string; region: string },
): C {
  client.middlewareStack.addRelativeTo(
    (next: FinalizeHandler<I, O>, context: HandlerExecutionContext) =>
      (args: FinalizeHandlerArguments<I>): Promise<FinalizeHandlerOutput<O>> =>
        limits.run({ ...call, operation: (context.commandName ?? 'Unknown').replace(/Command$/, '') }, () => next(args)),
    { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'countersignRateLimit', override: true },
  );
  return client;
}

type AwsCredentialIdentity = Awaited<ReturnType<ReturnType<typeof fromTemporaryCredentials>>>;
type CredentialSource = () => Promise<AwsCredentialIdentity>;

/**
 * One AssumeRole serves every client of an account (IAM, Organizations, CloudTrail, S3 …): each SDK
 * client would otherwise memoize its own copy and assume the role once per service. Written here
 * because the SDK's memoization is per client; renewed before expiry, retried after a failure.
 */
function sharedCredentials(source: CredentialSource): CredentialSource {
  let current: Promise<AwsCredentialIdentity> | undefined;
  return () => {
    const fresh = current?.then((c) => !c.expiration || c.expiration.getTime() - Date.now() > REFRESH_BEFORE_EXPIRY_MS);
    const renew = async (): Promise<AwsCredentialIdentity> => {
      if (current && (await fresh)) return current;
      current = source().catch((err: unknown) => {
        current = undefined;
        throw err;
      });
      return current;
    };
    return renew();
  };
}

/**
 * Clients for one account, one per service and region, sharing that account's credentials and the
 * account's rate limits (`limits`: AwsClients passes its own, shared by every client set of the
 * worker; a set made on its own gets a private one).
 */
export class AccountClients {
  private readonly cache = new Map<string, { destroy(): void }>();
  private caller: Promise<CallerIdentity> | undefined;
  private readonly limits: AwsRateLimits;

  constructor(
    readonly settings: AwsSettings,
    readonly access: AccountAccess,
    private readonly credentials?: CredentialSource,
    limits?: AwsRateLimits,
  ) {
    this.limits = limits ?? new AwsRateLimits(settings.rateLimits ?? defaultRateLimitSettings(settings));
  }

  private common(region: string) {
    return {
      region,
      maxAttempts: this.settings.maxAttempts,
      retryMode: this.settings.retryMode ?? 'standard',
      retryStrategy: retryStrategy(this.settings.retryMode ?? 'standard', this.settings.maxAttempts),
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      ...(this.credentials ? { credentials: this.credentials } : {}),
    };
  }

  /** The client of `service` in `region`, made once and put under the account's rate limits. */
  private cached<T extends { destroy(): void }>(service: string, region: string, make: (region: string) => T): T {
    const key = `${service}:${region}`;
    let client = this.cache.get(key) as T | undefined;
    if (!client) {
      client = make(region);
      this.cache.set(key, client);
    }
    return client;
  }

  private limited<I extends object, O extends object, C extends object>(client: C & { middlewareStack: MiddlewareStack<I, O> }, service: string, region: string): C {
    return rateLimited(client, this.limits, { account: this.access.account ?? OWN_ACCOUNT, service, region });
  }

  /** IAM and Organizations are global: their clients live in us-east-1 (docs/aws.md §0). */
  iam(): IAMClient {
    return this.cached('iam', 'us-east-1', (r) => this.limited(new IAMClient(this.common(r)), 'iam', r));
  }

  organizations(): OrganizationsClient {
    return this.cached('organizations', 'us-east-1', (r) => this.limited(new OrganizationsClient(this.common(r)), 'organizations', r));
  }

  sts(): STSClient {
    return this.cached('sts', this.settings.region, (r) => this.limited(new STSClient(this.common(r)), 'sts', r));
  }

  cloudtrail(region = this.settings.region): CloudTrailClient {
    return this.cached('cloudtrail', region, (r) => this.limited(new CloudTrailClient(this.common(r)), 'cloudtrail', r));
  }

  s3(region = this.settings.region): S3Client {
    return this.cached('s3', region, (r) => this.limited(new S3Client({ ...this.common(r), forcePathStyle: Boolean(this.settings.endpoint) }), 's3', r));
  }

  sns(region = this.settings.region): SNSClient {
    return this.cached('sns', region, (r) => this.limited(new SNSClient(this.common(r)), 'sns', r));
  }

  /** Who these clients act as (GetCallerIdentity, cached; a failure is not cached). */
  identity(): Promise<CallerIdentity> {
    this.caller ??= this.sts()
      .send(new GetCallerIdentityCommand({}))
      .then((r) => ({ account: r.Account ?? '', arn: r.Arn ?? '', userId: r.UserId ?? '' }))
      .catch((err: unknown) => {
        this.caller = undefined;
        throw err;
      });
    return this.caller;
  }

  destroy(): void {
    for (const client of this.cache.values()) client.destroy();
    this.cache.clear();
  }
}

/**
 * Every AWS client of a worker, in one place (docs/design.md §4): the worker's own account directly, any
 * other account of the organization by assuming `settings.accountRole` there, with a role session
 * name traced to the workflow. Clients are shared per account, service and region, so the SDK's
 * retry quota and the assumed credentials are too.
 */
export class AwsClients {
  private readonly base: AccountClients;
  private readonly assumed = new Map<string, AccountClients>();
  /** One set of limiters per worker, keyed by account: every session in an account shares its caps. */
  readonly limits: AwsRateLimits;

  constructor(readonly settings: AwsSettings) {
    this.limits = new AwsRateLimits(settings.rateLimits ?? defaultRateLimitSettings(settings));
    this.base = new AccountClients(settings, {}, undefined, this.limits);
  }

  /** The worker's own credentials' clients. */
  get own(): AccountClients {
    return this.base;
  }

  iam(): IAMClient {
    return this.base.iam();
  }

  organizations(): OrganizationsClient {
    return this.base.organizations();
  }

  sts(): STSClient {
    return this.base.sts();
  }

  /** Who the worker is in AWS (cached; the caller's own identity is never changed). */
  callerIdentity(): Promise<CallerIdentity> {
    return this.base.identity();
  }

  roleArnFor(account: string): string {
    return `arn:aws:iam::${account}:role/${this.settings.accountRole}`;
  }

  /**
   * Clients acting in `account` for the workflow `workflowId`: the worker's own when it is the
   * worker's account, otherwise an assumed-role session named after the workflow.
   */
  async forAccount(ref: { account: string; workflowId: string }): Promise<AccountClients> {
    const own = await this.callerIdentity();
    if (ref.account === own.account) return this.base;
    const roleArn = this.roleArnFor(ref.account);
    const sessionName = roleSessionName(ref.workflowId);
    const key = `${roleArn}|${sessionName}`;
    let clients = this.assumed.get(key);
    if (clients) {
      this.assumed.delete(key); // most recently used goes last
    } else {
      const settings = this.settings;
      const provider = fromTemporaryCredentials({
        params: {
          RoleArn: roleArn,
          RoleSessionName: sessionName,
          // Role chaining (a worker itself on role credentials) caps sessions at one hour (§7).
          DurationSeconds: 3600,
          ...(settings.externalId ? { ExternalId: settings.externalId } : {}),
        },
        clientConfig: {
          region: settings.region,
          maxAttempts: settings.maxAttempts,
          ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
        },
      });
      clients = new AccountClients(settings, { account: ref.account, roleArn, sessionName }, sharedCredentials(() => provider()), this.limits);
      while (this.assumed.size >= MAX_ACCOUNT_SETS) {
        const [oldestKey, oldest] = this.assumed.entries().next().value as [string, AccountClients];
        this.assumed.delete(oldestKey);
        oldest.destroy();
      }
    }
    this.assumed.set(key, clients);
    return clients;
  }

  destroy(): void {
    this.base.destroy();
    for (const clients of this.assumed.values()) clients.destroy();
    this.assumed.clear();
  }
}
