/**
 * Per-kind checks `countersign start` runs after the parameters passed their declarations and before
 * anything starts: what needs several parameters together, or the organization itself, to judge. A
 * refusal is bad input (UsageError, exit 2, one line, nothing started). The worker repeats every one
 * of them in the plan, so a run started another way (the stock temporal CLI) is refused there too.
 *
 * AWS is read with the operator's own credentials. When they cannot read the organization (denied,
 * unreachable), `start` says so and goes on: the plan checks the same with the worker's.
 */
import { DescribeAccountCommand, DescribeOrganizationCommand, ListAccountsForParentCommand, OrganizationsClient, paginateListAccounts } from '@aws-sdk/client-organizations';
import type { KindName, KindParams } from '../common/kinds';
import { selectScp } from '../common/scp-document';
import { resolveAwsSettings } from '../activities/aws/clients';
import { awsErrorName } from '../activities/aws/errors';
import { inspectScpRollout } from '../activities/organizations/scp-estate';
import { UsageError } from './errors';
import type { Output } from './output';

/** `target`: the one account the run is for, or undefined for an organization-wide run. */
type Preflight<K extends KindName> = (params: KindParams<K>, out: Output, target: string | undefined) => Promise<void>;

async function organizationsClient(): Promise<OrganizationsClient> {
  const settings = await resolveAwsSettings();
  return new OrganizationsClient({ region: 'us-east-1', maxAttempts: settings.maxAttempts, retryMode: settings.retryMode ?? 'standard', ...(settings.endpoint ? { endpoint: settings.endpoint } : {}) });
}

const cannotCheck = (out: Output, what: string, err: unknown): void =>
  out.note(`countersign: cannot check ${what} with your AWS credentials (${awsErrorName(err)}: ${(err as Error).message.split('\n')[0]}); the worker checks it before planning`);

/** scp: one of guardrail/policyFile, grammar and size, the root only with allowRoot; then every target real, at most 5 SCPs on each after the attach. */
const scp: Preflight<'scp'> = async (params, out) => {
  const { selection, problems } = selectScp(params);
  if (!selection) throw new UsageError(`scp: ${problems.join('; ')}`);
  const orgs = await organizationsClient();
  try {
    let refused: string[];
    try {
      refused = (await inspectScpRollout(orgs, { policyName: selection.policyName, content: selection.content, targets: params.targets })).problems;
    } catch (err) {
      out.note(`countersign: cannot check the SCP targets with your AWS credentials (${awsErrorName(err)}: ${(err as Error).message.split('\n')[0]}); the worker checks them before planning`);
      return;
    }
    if (refused.length > 0) throw new UsageError(`scp: ${refused.join('; ')}`);
  } finally {
    orgs.destroy();
  }
};

/** org-trail: the log group and its role together, both in the management account (the worker's checkParams in activities/org-trail.ts). */
const orgTrail: Preflight<'org-trail'> = async (params, _out, target) => {
  const group = params.cloudWatchLogsGroupArn;
  const role = params.cloudWatchLogsRoleArn;
  if ((group === undefined) !== (role === undefined)) {
    throw new UsageError('org-trail: cloudWatchLogsGroupArn and cloudWatchLogsRoleArn go together: CloudTrail delivers to a log group by assuming the role; give both or neither');
  }
  if (target === undefined) return;
  for (const [name, arn] of [['cloudWatchLogsGroupArn', group], ['cloudWatchLogsRoleArn', role]] as const) {
    const owner = arn?.split(':')[4];
    if (arn !== undefined && owner !== target) {
      throw new UsageError(`org-trail: ${name} ${arn} is in account ${owner || '(none)'}; the log group and the role must be in the management account ${target}`);
    }
  }
};

/** retire-default-trails: every account named is an active account of the organization (the plan's selectAccounts). */
const retireDefaultTrails: Preflight<'retire-default-trails'> = async (params, out, target) => {
  if (params.accounts.length === 1 && params.accounts[0] === 'all') return;
  const orgs = await organizationsClient();
  try {
    let organizationId: string | undefined;
    const states = new Map<string, string>();
    try {
      organizationId = (await orgs.send(new DescribeOrganizationCommand({}))).Organization?.Id;
      for await (const page of paginateListAccounts({ client: orgs }, {})) {
        for (const a of page.Accounts ?? []) if (a.Id) states.set(a.Id, String(a.State ?? a.Status ?? 'UNKNOWN'));
      }
    } catch (err) {
      cannotCheck(out, 'the accounts', err);
      return;
    }
    for (const id of params.accounts) {
      const state = id === target ? 'ACTIVE' : states.get(id);
      if (state === undefined) throw new UsageError(`retire-default-trails: account ${id} is not in organization ${organizationId ?? '(yours)'}; \`aws organizations list-accounts\` shows its accounts`);
      if (state !== 'ACTIVE') throw new UsageError(`retire-default-trails: account ${id} is ${state} in organization ${organizationId ?? '(yours)'}; only active accounts are reviewed`);
    }
  } finally {
    orgs.destroy();
  }
};

/** permission-boundary: some principals selected, and a boundary AWS manages or the target account holds (the plan's own refusals). */
const permissionBoundary: Preflight<'permission-boundary'> = async (params, _out, target) => {
  if (params.users.length === 0 && params.roles.length === 0) {
    throw new UsageError('permission-boundary: select principals: users=… and/or roles=… (each "*", names, or path prefixes such as /apps/); with neither, there is nothing to bound');
  }
  const owner = params.boundary.startsWith('arn:') ? params.boundary.split(':')[4] : undefined;
  if (target !== undefined && owner !== undefined && owner !== 'aws' && owner !== target) {
    throw new UsageError(`permission-boundary: ${params.boundary} is a policy of account ${owner}; a boundary must be an AWS managed policy or a policy of account ${target}`);
  }
};

const PREFLIGHTS: { [K in KindName]?: Preflight<K> } = { scp, 'org-trail': orgTrail, 'retire-default-trails': retireDefaultTrails, 'permission-boundary': permissionBoundary };

/** Run the kind's preflight, if it has one, on parameters `resolveKindParams` already typed, for `target` (undefined: organization-wide). */
export async function preflight<K extends KindName>(kind: K, params: KindParams<K>, out: Output, target: string | undefined): Promise<void> {
  const check = PREFLIGHTS[kind] as Preflight<K> | undefined;
  if (check) await check(params, out, target);
}

/**
 * `--accounts`: each account id is in the organization and each OU or root id is one of its parents,
 * as the organization run's resolveAccounts (activities/organization-run.ts) would find them.
 */
export async function checkAccountSelector(terms: string[], out: Output): Promise<void> {
  const ids = terms.filter((t) => t !== 'all');
  if (ids.length === 0) return;
  const orgs = await organizationsClient();
  try {
    let organizationId: string | undefined;
    try {
      organizationId = (await orgs.send(new DescribeOrganizationCommand({}))).Organization?.Id;
    } catch (err) {
      cannotCheck(out, '--accounts', err);
      return;
    }
    for (const term of ids) {
      try {
        if (/^\d{12}$/.test(term)) await orgs.send(new DescribeAccountCommand({ AccountId: term }));
        else await orgs.send(new ListAccountsForParentCommand({ ParentId: term, MaxResults: 1 }));
      } catch (err) {
        const name = awsErrorName(err);
        if (name === 'AccountNotFoundException') {
          throw new UsageError(`--accounts: account ${term} is not in organization ${organizationId ?? '(yours)'}; \`aws organizations list-accounts\` shows its accounts`);
        }
        if (name === 'ParentNotFoundException' || name === 'OrganizationalUnitNotFoundException') {
          throw new UsageError(`--accounts: ${term} is not an OU or root of organization ${organizationId ?? '(yours)'}; \`aws organizations list-roots\` and \`list-organizational-units-for-parent\` show them`);
        }
        cannotCheck(out, `--accounts ${term}`, err);
        return;
      }
    }
  } finally {
    orgs.destroy();
  }
}
