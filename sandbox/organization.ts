/**
 * An AWS organization in the sandbox, for the demo and the integration tests: the sandbox
 * credentials' account becomes the management account, with organizational units and member
 * accounts placed in them. Each member account created this way has OrganizationAccountAccessRole,
 * which the worker assumes to act there (activities/aws/clients.ts) and `iamForAccount` assumes to
 * seed or inspect it. Plain SDK calls: this is sandbox tooling, not activity code.
 */
import { IAMClient } from '@aws-sdk/client-iam';
import type { CreateAccountStatus } from '@aws-sdk/client-organizations';
import {
  CreateAccountCommand,
  CreateOrganizationCommand,
  CreateOrganizationalUnitCommand,
  DescribeCreateAccountStatusCommand,
  DescribeOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DEFAULT_ACCOUNT_ROLE } from '../activities/aws/clients';
import { SANDBOX_CREDENTIALS } from './moto';

export interface OrganizationSpec {
  /** Organizational units created directly under the root. */
  ous: string[];
  /** Member accounts, each in one of `ous` or, without `ou`, in the root. */
  accounts: { name: string; ou?: string; email?: string }[];
}

export interface SeededAccount {
  name: string;
  id: string;
  /** The organizational unit's name, or undefined for an account left in the root. */
  ou?: string;
}

export interface SeededOrganization {
  organizationId: string;
  managementAccount: string;
  rootId: string;
  /** Organizational unit ids by name. */
  ous: Record<string, string>;
  accounts: SeededAccount[];
}

/** The organization the demo and `countersign dev --seed` create. */
export const SANDBOX_ORGANIZATION: OrganizationSpec = {
  ous: ['Workloads', 'Sandbox'],
  accounts: [
    { name: 'workloads-prod', ou: 'Workloads' },
    { name: 'sandbox-dev', ou: 'Sandbox' },
  ],
};

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: SANDBOX_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: SANDBOX_CREDENTIALS.AWS_SECRET_ACCESS_KEY };
/** How long a CreateAccount request may stay IN_PROGRESS before seeding gives up. */
const CREATE_ACCOUNT_TIMEOUT_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Follow a CreateAccount request to its end: its status now, polled while IN_PROGRESS. */
async function createdAccountId(orgs: OrganizationsClient, name: string, first: CreateAccountStatus | undefined): Promise<string> {
  let status = first;
  const deadline = Date.now() + CREATE_ACCOUNT_TIMEOUT_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2_000)) {
    if (!status?.Id) throw new Error(`CreateAccount for "${name}" answered without a request id`);
    if (status.State === 'SUCCEEDED') {
      if (!status.AccountId) throw new Error(`CreateAccount for "${name}" succeeded without an account id (request ${status.Id})`);
      return status.AccountId;
    }
    if (status.State === 'FAILED') throw new Error(`CreateAccount for "${name}" failed: ${status.FailureReason ?? 'no reason given'} (request ${status.Id})`);
    if (Date.now() >= deadline) {
      throw new Error(`CreateAccount for "${name}" still ${status.State ?? 'without a state'} after ${CREATE_ACCOUNT_TIMEOUT_MS / 1000}s (request ${status.Id})`);
    }
    await sleep(delay);
    status = (await orgs.send(new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: status.Id }))).CreateAccountStatus;
  }
}

/**
 * Create an organization with all features in the sandbox at `endpoint`, its organizational units,
 * and its member accounts, each moved into its unit. The sandbox must not be in an organization yet
 * (reset it first).
 */
export async function seedOrganization(endpoint: string, spec: OrganizationSpec = SANDBOX_ORGANIZATION): Promise<SeededOrganization> {
  for (const account of spec.accounts) {
    if (account.ou !== undefined && !spec.ous.includes(account.ou)) throw new Error(`account "${account.name}" names an unknown organizational unit "${account.ou}"`);
  }
  const orgs = new OrganizationsClient({ region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
  try {
    let organization;
    try {
      organization = (await orgs.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }))).Organization;
    } catch (err) {
      if ((err as Error).name !== 'AlreadyInOrganizationException') throw err;
      const existing = await orgs.send(new DescribeOrganizationCommand({})).catch(() => undefined);
      throw new Error(`the sandbox at ${endpoint} is already in organization ${existing?.Organization?.Id ?? '(unknown)'}; reset it (POST /moto-api/reset) before seeding one`);
    }
    if (!organization?.Id || !organization.MasterAccountId) throw new Error('CreateOrganization answered without an organization id or management account');
    const rootId = (await orgs.send(new ListRootsCommand({}))).Roots?.[0]?.Id;
    if (!rootId) throw new Error(`organization ${organization.Id} has no root`);

    const ous: Record<string, string> = {};
    for (const name of spec.ous) {
      const ou = await orgs.send(new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: name }));
      if (!ou.OrganizationalUnit?.Id) throw new Error(`CreateOrganizationalUnit "${name}" answered without an id`);
      ous[name] = ou.OrganizationalUnit.Id;
    }

    const accounts: SeededAccount[] = [];
    for (const { name, ou, email } of spec.accounts) {
      const created = await orgs.send(new CreateAccountCommand({ AccountName: name, Email: email ?? `${name}@example.com` }));
      const id = await createdAccountId(orgs, name, created.CreateAccountStatus);
      if (ou !== undefined) {
        await orgs.send(new MoveAccountCommand({ AccountId: id, SourceParentId: rootId, DestinationParentId: ous[ou] }));
      }
      accounts.push({ name, id, ...(ou !== undefined ? { ou } : {}) });
    }
    return { organizationId: organization.Id, managementAccount: organization.MasterAccountId, rootId, ous, accounts };
  } finally {
    orgs.destroy();
  }
}

/** The seeded account named `name` (throws when there is none). */
export function accountNamed(organization: SeededOrganization, name: string): SeededAccount {
  const account = organization.accounts.find((a) => a.name === name);
  if (!account) throw new Error(`organization ${organization.organizationId} has no account named "${name}" (accounts: ${organization.accounts.map((a) => a.name).join(', ')})`);
  return account;
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };

/** What any SDK client needs to act in `accountId` of the sandbox (see `accountCredentials`). */
export interface SandboxClientConfig {
  region: string;
  endpoint: string;
  maxAttempts: number;
  credentials: () => Promise<Credentials>;
  forcePathStyle: boolean;
}

/**
 * Credentials acting in `accountId`: the sandbox credentials themselves when that is their account
 * (the management account), otherwise a session of `role` (OrganizationAccountAccessRole) assumed
 * there with the sandbox credentials, assumed on first use and renewed before it expires.
 */
export function accountCredentials(endpoint: string, accountId: string, options: { role?: string; sessionName?: string } = {}): () => Promise<Credentials> {
  const roleArn = `arn:aws:iam::${accountId}:role/${options.role ?? DEFAULT_ACCOUNT_ROLE}`;
  let current: Promise<Credentials> | undefined;
  const assume = async (): Promise<Credentials> => {
    const sts = new STSClient({ region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
    try {
      const own = await sts.send(new GetCallerIdentityCommand({}));
      if (own.Account === accountId) return CREDENTIALS;
      const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: options.sessionName ?? 'countersign-sandbox', DurationSeconds: 3600 }));
      const c = assumed.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`AssumeRole ${roleArn} answered without credentials`);
      return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
    } finally {
      sts.destroy();
    }
  };
  return async (): Promise<Credentials> => {
    const fresh = current && (await current.then((c) => !c.expiration || c.expiration.getTime() - Date.now() > 5 * 60_000).catch(() => false));
    if (!fresh) {
      current = assume();
      current.catch(() => {
        current = undefined;
      });
    }
    return current as Promise<Credentials>;
  };
}

/** Config for any SDK client (CloudTrail, S3, …) acting in `accountId` of the sandbox. */
export function sandboxClientConfig(endpoint: string, accountId: string, region = REGION, options: { role?: string; sessionName?: string } = {}): SandboxClientConfig {
  return { region, endpoint, maxAttempts: 1, credentials: accountCredentials(endpoint, accountId, options), forcePathStyle: true };
}

/** An IAM client acting in `accountId` (see `accountCredentials`). Destroy it when done. */
export function iamForAccount(endpoint: string, accountId: string, options: { role?: string; sessionName?: string } = {}): IAMClient {
  const { forcePathStyle: _s3Only, ...config } = sandboxClientConfig(endpoint, accountId, REGION, options);
  return new IAMClient(config);
}
