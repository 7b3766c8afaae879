/**
 * The engine's side of the activity boundary: what holds for every kind without the kind doing
 * anything (docs/design.md §5). Every activity the worker registers passes through `withEngineGuards`:
 *
 * - a plan request gets its parameters typed and defaulted by the kind's declared schema (a bad one
 *   fails the run with the parameter's name and the reason), and the kind's plan comes back with
 *   every change on a protected principal — or depending on one — moved to "left alone", then sealed
 *   with its digest;
 * - a snapshot, apply or rollback request is refused, fail closed, when its change names a protected
 *   principal or the worker's own identity, whatever the plan says.
 *
 * `resolveTarget` is the engine's own activity: which account a run acts in and how it gets there.
 */
import { DescribeAccountCommand, DescribeOrganizationCommand } from '@aws-sdk/client-organizations';
import { ApplicationFailure } from '@temporalio/common';
import { sealPage, sealPlan } from '../common/digest';
import type { Json } from '../common/json';
import { KINDS } from '../common/kinds';
import type { ParamSpecs } from '../common/params';
import { ParamError, resolveParams } from '../common/params';
import type { Change, KindPlan, LeftAlone, Plan } from '../common/plan';
import { BUILT_IN_PROTECTED_PRINCIPALS, iamPrincipalOf, protectingPattern } from '../common/policy';
import type { PlanRequest, TargetInfo, TargetRequest } from '../common/requests';
import type { AwsClients } from './aws/clients';
import { awsErrorName, classifyAwsError, isAwsError } from './aws/errors';

/** The parameter declarations of every kind a worker runs: the catalogue, plus test-only kinds. */
export type KindParamRegistry = Record<string, { params: ParamSpecs }>;

export interface EngineDeps {
  aws?: AwsClients;
  kinds?: KindParamRegistry;
}

function refusal(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** The change a request carries, if it carries one. */
function changeOf(request: unknown): Change | undefined {
  if (!request || typeof request !== 'object') return undefined;
  const change = (request as { change?: unknown }).change;
  return change && typeof change === 'object' && typeof (change as Change).resource === 'string' ? (change as Change) : undefined;
}

export function createEngineActivities(deps: { aws: AwsClients }) {
  const { aws } = deps;
  return {
    /**
     * Which account the run acts in and how it is reached. Another account must be an active member
     * of the worker's organization; it is reached by assuming the configured role, and the hop is
     * verified (GetCallerIdentity answers that account). A role that cannot be assumed fails the run
     * with the role ARN and the reason, before anything is read or changed.
     */
    async resolveTarget(request: TargetRequest): Promise<TargetInfo> {
      const own = await aws.callerIdentity();
      const account = request.account ?? own.account;
      const region = aws.settings.region;
      if (!/^\d{12}$/.test(account)) throw refusal('InvalidAccount', `"${account}" is not a 12-digit AWS account id`);
      const selfPrincipals = [iamPrincipalOf(own.arn)];
      let organization: { id?: string; managementAccount?: string } | undefined;
      try {
        const org = await aws.organizations().send(new DescribeOrganizationCommand({}));
        organization = { id: org.Organization?.Id, managementAccount: org.Organization?.MasterAccountId };
      } catch (err) {
        // Not in an organization, or a member account without Organizations access: the worker can
        // still act in its own account; any other account is refused below.
        if (classifyAwsError(err).category !== 'permanent') throw err;
      }
      const orgFields = { ...(organization?.id ? { organizationId: organization.id } : {}), ...(organization?.managementAccount ? { managementAccount: organization.managementAccount } : {}) };
      if (account === own.account) {
        return { account, region, ...orgFields, workerArn: own.arn, actingArn: own.arn, selfPrincipals };
      }
      if (!organization?.id) {
        throw refusal('AccountNotInOrganization', `account ${account} is not the worker's account (${own.arn}), and the worker cannot see an organization to reach it through; run against ${own.account}, or give the worker the management account's credentials`);
      }
      let accountName: string | undefined;
      try {
        const described = await aws.organizations().send(new DescribeAccountCommand({ AccountId: account }));
        accountName = described.Account?.Name;
        const state = described.Account?.State ?? described.Account?.Status;
        if (state && state !== 'ACTIVE') throw refusal('AccountNotActive', `account ${account} (${accountName ?? 'unnamed'}) is ${state} in organization ${organization.id}; only active accounts are remediated`);
      } catch (err) {
        if (isAwsError(err, 'AccountNotFoundException')) {
          throw refusal('AccountNotInOrganization', `account ${account} is not in organization ${organization.id}; \`aws organizations list-accounts\` shows its accounts`);
        }
        throw err;
      }
      const clients = await aws.forAccount({ account, workflowId: request.workflowId });
      const roleArn = clients.access.roleArn as string;
      let acting;
      try {
        acting = await clients.identity();
      } catch (err) {
        if (classifyAwsError(err).category !== 'permanent') throw err;
        throw refusal(
          'AssumeRoleDenied',
          `cannot assume ${roleArn} as ${own.arn} (${awsErrorName(err)}: ${(err as Error).message}); the role must exist in account ${account} and trust the worker's account — set COUNTERSIGN_ACCOUNT_ROLE to the role name used there (and COUNTERSIGN_ACCOUNT_ROLE_EXTERNAL_ID if its trust policy needs one)`,
        );
      }
      if (acting.account !== account) {
        throw refusal('WrongAccount', `assuming ${roleArn} answered as ${acting.arn}, not a principal of account ${account}; refusing to act`);
      }
      selfPrincipals.push(roleArn);
      return {
        account,
        region,
        ...orgFields,
        ...(accountName ? { accountName } : {}),
        workerArn: own.arn,
        actingArn: acting.arn,
        roleArn,
        sessionName: clients.access.sessionName,
        selfPrincipals,
      };
    },
  };
}

/**
 * Move every change on a protected principal out of the plan, with the reason, and every change that
 * depends on one (it could not run anyway). A kind should leave these alone itself; this is the
 * engine making sure it did.
 */
export function withoutProtectedChanges(changes: Change[], patterns: readonly string[]): { kept: Change[]; refused: LeftAlone[] } {
  const refused: LeftAlone[] = [];
  const removed = new Set<string>();
  for (const change of changes) {
    const pattern = protectingPattern(patterns, change.resource);
    if (pattern) {
      removed.add(change.id);
      refused.push({ resource: change.resource, reason: 'protected', detail: `matches ${pattern}; the engine removed change ${change.id} from the plan` });
    }
  }
  // Dependents of removed changes, to a fixed point (a chain of any length).
  for (let grew = removed.size > 0; grew; ) {
    grew = false;
    for (const change of changes) {
      if (!removed.has(change.id) && (change.dependsOn ?? []).some((id) => removed.has(id))) {
        removed.add(change.id);
        grew = true;
        refused.push({ resource: change.resource, reason: 'protected', detail: `change ${change.id} depends on a change the engine refused` });
      }
    }
  }
  return { kept: changes.filter((c) => !removed.has(c.id)), refused };
}

/** Wrap every activity with the engine's guarantees (see the file comment). */
export function withEngineGuards<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T, deps: EngineDeps): T {
  const kinds: KindParamRegistry = { ...(KINDS as unknown as KindParamRegistry), ...deps.kinds };

  const ownPrincipal = async (): Promise<string | undefined> => (deps.aws ? iamPrincipalOf((await deps.aws.callerIdentity()).arn) : undefined);

  async function refuseProtectedChange(request: unknown, change: Change): Promise<void> {
    const given = (request as { protectedPrincipals?: unknown }).protectedPrincipals;
    if (!Array.isArray(given)) {
      throw refusal('ProtectedPrincipalsMissing', `change ${change.id} came without the run's protected principals; refusing to act (fail closed)`);
    }
    const pattern = protectingPattern([...BUILT_IN_PROTECTED_PRINCIPALS, ...(given as string[])], change.resource);
    const own = await ownPrincipal();
    if (pattern || (own && change.resource.toLowerCase() === own.toLowerCase())) {
      throw refusal('ProtectedPrincipal', `${change.resource} is protected (${pattern ? `matches ${pattern}` : "it is the worker's own identity"}); change ${change.id} is refused, whatever the plan says`);
    }
  }

  async function plan(fn: (request: PlanRequest) => Promise<unknown>, request: PlanRequest): Promise<Plan> {
    const spec = kinds[request.kind];
    if (!spec) throw refusal('UnknownKind', `this worker has no remediation kind "${request.kind}"; kinds: ${Object.keys(kinds).join(', ')}`);
    let params: Record<string, unknown>;
    try {
      params = resolveParams(request.kind, spec.params, request.params as Record<string, string>);
    } catch (err) {
      if (err instanceof ParamError) throw refusal('InvalidParameter', `invalid parameter for ${request.kind}: ${err.message}`);
      throw err;
    }
    const planned = (await fn({ ...request, params })) as KindPlan;
    const own = await ownPrincipal();
    const patterns = [...BUILT_IN_PROTECTED_PRINCIPALS, ...request.protectedPrincipals, ...(own ? [own] : [])];
    const { kept, refused } = withoutProtectedChanges(planned.changes, patterns);
    const body = {
      kind: request.kind,
      account: request.account,
      region: request.region,
      params: params as Record<string, Json>,
      createdAt: planned.createdAt,
      stages: planned.stages,
      changes: kept,
      leftAlone: [...refused, ...planned.leftAlone],
      leftAloneNotListed: planned.leftAloneNotListed ?? 0,
      notes: planned.notes,
    };
    // A paged plan: each page sealed with its own digest and the chain so far (docs/engine.md, "Plan pages").
    if (request.page) return sealPage(body, request.page.number, request.page.previousDigest, planned.nextCursor);
    return sealPlan(body);
  }

  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => {
      const body = fn as (request: unknown) => Promise<unknown>;
      const guarded = async (request: unknown): Promise<unknown> => {
        const role = request && typeof request === 'object' ? (request as { role?: unknown }).role : undefined;
        if (role === 'plan') return plan(body as (r: PlanRequest) => Promise<unknown>, request as PlanRequest);
        const change = changeOf(request);
        if (change) await refuseProtectedChange(request, change);
        // A batch is refused whole if any of its changes is protected (the workflow refused such a plan
        // before approval; this is the fail-closed backstop).
        const batch = request && typeof request === 'object' ? (request as { changes?: unknown }).changes : undefined;
        if (Array.isArray(batch)) for (const c of batch) if (changeOf({ change: c })) await refuseProtectedChange(request, c as Change);
        return body(request);
      };
      return [name, guarded];
    }),
  ) as unknown as T;
}
