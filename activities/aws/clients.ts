/**
 * AWS clients, one per service and region, shared by all activities of a worker (the SDK's retry
 * quota is per client instance — reference/aws.md §6.2). SDK retries stay few and fast; Temporal
 * owns the long horizon (§6.4). AWS_ENDPOINT_URL points every client at an emulator.
 */
import { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { IAMClient } from '@aws-sdk/client-iam';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

export interface AwsSettings {
  /** Default region for regional services. */
  region: string;
  /** An emulator endpoint (AWS_ENDPOINT_URL), or undefined for real AWS. */
  endpoint?: string;
  /**
   * Which emulator answers, when one does. moto lacks some operations and fixes some values
   * (reference/aws.md §9); activities use this to tolerate exactly those gaps and nothing else.
   */
  emulator?: 'moto';
  /** Total HTTP attempts per SDK call. */
  maxAttempts: number;
}

export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  const emulator = env.COUNTERSIGN_AWS_EMULATOR === 'moto' ? 'moto' : undefined;
  const attempts = Number(env.AWS_MAX_ATTEMPTS);
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL || undefined,
    emulator,
    // Against moto an unimplemented operation is an HTML 500 the SDK would retry: one attempt there.
    maxAttempts: Number.isInteger(attempts) && attempts > 0 ? attempts : emulator ? 1 : 3,
  };
}

export interface CallerIdentity {
  account: string;
  arn: string;
  userId: string;
}

export class AwsClients {
  private readonly cache = new Map<string, unknown>();
  private caller: Promise<CallerIdentity> | undefined;

  constructor(readonly settings: AwsSettings) {}

  private common(region: string) {
    return {
      region,
      maxAttempts: this.settings.maxAttempts,
      retryMode: 'standard' as const,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
    };
  }

  private cached<T>(key: string, make: () => T): T {
    let client = this.cache.get(key) as T | undefined;
    if (!client) {
      client = make();
      this.cache.set(key, client);
    }
    return client;
  }

  /** IAM and Organizations are global: their clients live in us-east-1 (reference/aws.md §0). */
  iam(): IAMClient {
    return this.cached('iam', () => new IAMClient(this.common('us-east-1')));
  }

  organizations(): OrganizationsClient {
    return this.cached('organizations', () => new OrganizationsClient(this.common('us-east-1')));
  }

  sts(): STSClient {
    return this.cached('sts', () => new STSClient(this.common(this.settings.region)));
  }

  cloudtrail(region = this.settings.region): CloudTrailClient {
    return this.cached(`cloudtrail:${region}`, () => new CloudTrailClient(this.common(region)));
  }

  s3(region = this.settings.region): S3Client {
    return this.cached(`s3:${region}`, () => new S3Client({ ...this.common(region), forcePathStyle: Boolean(this.settings.endpoint) }));
  }

  /** Who the worker is in AWS (cached; the caller's own identity is never changed). */
  callerIdentity(): Promise<CallerIdentity> {
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
    for (const client of this.cache.values()) (client as { destroy(): void }).destroy();
    this.cache.clear();
  }
}
