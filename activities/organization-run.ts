/**
 * The engine's activities for an organization-wide run (workflows/organization.ts, docs/engine.md,
 * "Organization-wide runs"): which accounts a selector names, the consolidated plan an approver
 * approves, and — for each account's run — the confirmation, read from the organization run itself,
 * that this account's plan is what was approved.
 */
import { DescribeAccountCommand, DescribeOrganizationCommand, paginateListAccounts, paginateListAccountsForParent, paginateListOrganizationalUnitsForParent } from '@aws-sdk/client-organizations';
import type { Account } from '@aws-sdk/client-organizations';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { sealPlan } from '../common/digest';
import type { Json } from '../common/json';
import type { RecordedDecision, RemediationStatus } from '../common/messages';
import type { Change, Plan } from '../common/plan';
import type { AwsClients } from './aws/clients';
import { isAwsError } from './aws/errors';
import { keepAlive } from './heartbeat';

/** Accounts one organization-wide run may cover (its status lists each). */
export const MAX_ACCOUNTS = 1_000;

export interface AccountSelection {
  accounts: { account: string; name?: string }[];
  organizationId: string;
  managementAccount: string;
  /** Accounts named or found but left out (not ACTIVE), with the reason. */
  skipped: { account: string; reason: string }[];
}

export interface ResolveAccountsRequest {
  role: 'target';
  workflowId: string;
  /** `all`, or a comma-separated list of account ids, OU ids (ou-…) and the root id (r-…). */
  selector: string;
}

export interface AccountPlanSummary {
  account: string;
  /** The part, "k/n", when the account was split (docs/engine.md, "Parts"). */
  part?: { number: number; of: number };
  name?: string;
  workflowId: string;
  digest: string;
  changes: number;
  leftAlone: number;
}

export interface SealOrganizationPlanRequest {
  /** Not 'plan': this is the engine's own plan, not a kind's (the engine's plan guard is for kinds). */
  role: 'organization';
  kind: string;
  region: string;
  params: Record<string, Json>;
  organizationId: string;
  managementAccount: string;
  accounts: AccountPlanSummary[];
  notes: string[];
}

export interface ConfirmApprovalRequest {
  role: 'organization';
  parentWorkflowId: string;
  account: string;
  /** The part of the account the run covers, when the account was split. */
  part?: number;
  digest: string;
}

export type ApprovalConfirmation = { ok: true; consolidatedDigest: string; decisions: RecordedDecision[] } | { ok: false; reason: string };

function refusal(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** The consolidated plan's change id for an account, or one part of it. */
export function accountEntryId(account: string, part?: number): string {
  return part === undefined ? `account/${account}` : `account/${account}/part-${part}`;
}

/** The change that stands for one account in the consolidated plan: its plan's digest is what is approved. */
export function accountChange(summary: AccountPlanSummary, organizationId: string, managementAccount: string): Change {
  return {
    id: accountEntryId(summary.account, summary.part?.number),
    stage: 'accounts',
    action: 'remediate-account',
    resource: `arn:aws:organizations::${managementAccount}:account/${organizationId}/${summary.account}`,
    summary: `${summary.changes} change(s) in ${summary.account}${summary.name ? ` (${summary.name})` : ''}${summary.part ? `, part ${summary.part.number} of ${summary.part.of}` : ''}: plan ${summary.digest} (run ${summary.workflowId})`,
    before: { plan: summary.digest, changes: summary.changes, leftAlone: summary.leftAlone, run: summary.workflowId },
    after: { outcome: 'completed' },
    reversible: true,
    destructive: false,
  };
}

export function createOrganizationRunActivities(deps: { aws: AwsClients; temporal?: () => Client }) {
  const { aws } = deps;
  return {
    /**
     * The ACTIVE accounts a selector names, in the worker's organization: `all`, account ids, OU ids
     * (every account beneath, nested OUs included) or the root. An id that is not in the organization
     * fails the run before anything is planned.
     */
    async resolveAccounts(request: ResolveAccountsRequest): Promise<AccountSelection> {
      const orgs = aws.organizations();
      let org;
      try {
        org = (await orgs.send(new DescribeOrganizationCommand({}))).Organization;
      } catch (err) {
        if (isAwsError(err, 'AWSOrganizationsNotInUseException', 'AccessDeniedException')) {
          throw refusal('NoOrganization', `an organization-wide run needs the worker in an organization's management account (${(err as Error).message}); run per account with --account instead`);
        }
        throw err;
      }
      const organizationId = org?.Id ?? '';
      const managementAccount = org?.MasterAccountId ?? '';
      const found = new Map<string, Account>();
      const add = (a: Account): void => {
        if (a.Id) found.set(a.Id, a);
      };
      const underParent = async (parentId: string): Promise<void> => {
        for await (const page of paginateListAccountsForParent({ client: orgs }, { ParentId: parentId })) (page.Accounts ?? []).forEach(add);
        for await (const page of paginateListOrganizationalUnitsForParent({ client: orgs }, { ParentId: parentId })) {
          for (const ou of page.OrganizationalUnits ?? []) if (ou.Id) await underParent(ou.Id);
        }
        keepAlive({ parent: parentId });
      };
      const terms = request.selector.split(',').map((t) => t.trim()).filter(Boolean);
      if (terms.length === 0) throw refusal('InvalidAccounts', 'no accounts named: give all, account ids, OU ids (ou-…) or the root id (r-…), comma-separated');
      for (const term of terms) {
        if (term === 'all') {
          for await (const page of paginateListAccounts({ client: orgs }, {})) (page.Accounts ?? []).forEach(add);
        } else if (/^\d{12}$/.test(term)) {
          try {
            const a = (await orgs.send(new DescribeAccountCommand({ AccountId: term }))).Account;
            if (a) add(a);
          } catch (err) {
            if (isAwsError(err, 'AccountNotFoundException')) throw refusal('AccountNotInOrganization', `account ${term} is not in organization ${organizationId}`);
            throw err;
          }
        } else if (/^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$/.test(term)) {
          try {
            await underParent(term);
          } catch (err) {
            if (isAwsError(err, 'ParentNotFoundException', 'OrganizationalUnitNotFoundException')) throw refusal('UnknownParent', `${term} is not an OU or root of organization ${organizationId}`);
            throw err;
          }
        } else {
          throw refusal('InvalidAccounts', `"${term}" is not all, a 12-digit account id, an OU id (ou-…) or a root id (r-…)`);
        }
      }
      const skipped: AccountSelection['skipped'] = [];
      const accounts: AccountSelection['accounts'] = [];
      for (const a of [...found.values()].sort((x, y) => (x.Id ?? '').localeCompare(y.Id ?? ''))) {
        const state = a.State ?? a.Status;
        if (state && state !== 'ACTIVE') skipped.push({ account: a.Id as string, reason: `${state}: only active accounts are remediated` });
        else accounts.push({ account: a.Id as string, ...(a.Name ? { name: a.Name } : {}) });
      }
      if (accounts.length > MAX_ACCOUNTS) throw refusal('TooManyAccounts', `${accounts.length} accounts selected, more than one run covers (${MAX_ACCOUNTS}); select OUs and run each`);
      if (accounts.length === 0) throw refusal('NoAccounts', `no active account matches "${request.selector}"${skipped.length ? ` (${skipped.length} not active)` : ''}`);
      return { accounts, organizationId, managementAccount, skipped: skipped.slice(0, 100) };
    },

    /** The consolidated plan: one change per account, its plan's digest in it; sealed like any plan. */
    async sealOrganizationPlan(request: SealOrganizationPlanRequest): Promise<Plan> {
      return sealPlan({
        kind: request.kind,
        account: 'organization',
        region: request.region,
        params: request.params,
        createdAt: new Date().toISOString(),
        stages: [{ name: 'accounts', description: 'each account runs its own approved plan: its stages, soaks, re-checks and verification' }],
        changes: request.accounts.map((a) => accountChange(a, request.organizationId, request.managementAccount)),
        leftAlone: [],
        leftAloneNotListed: 0,
        notes: request.notes,
      });
    },

    /**
     * An account's run asks the organization run itself — not the signal that woke it — whether its plan
     * was approved: the organization run's status must show the quorum approving the consolidated plan,
     * and that plan must name this account's run with this digest. A forged signal approves nothing.
     */
    async confirmOrganizationApproval(request: ConfirmApprovalRequest): Promise<ApprovalConfirmation> {
      if (!deps.temporal) throw refusal('NoTemporalClient', 'this worker has no Temporal client to confirm an organization approval with');
      const parent = await deps.temporal().workflow.getHandle(request.parentWorkflowId).query<RemediationStatus>('status');
      const approvals = parent.decisions.filter((d) => d.decision === 'approve' && d.planDigest === parent.plan?.digest);
      const quorum = parent.policy?.quorum ?? Number.POSITIVE_INFINITY;
      if (!parent.plan || approvals.length < quorum) return { ok: false, reason: `organization run ${request.parentWorkflowId} has ${approvals.length} approval(s) of its plan, short of its quorum of ${parent.policy?.quorum ?? '?'}` };
      if (parent.decisions.some((d) => d.decision === 'reject')) return { ok: false, reason: `organization run ${request.parentWorkflowId} was rejected` };
      const entry = (await allChanges(deps.temporal(), request.parentWorkflowId, parent)).find((c) => c.id === accountEntryId(request.account, request.part));
      const approvedDigest = (entry?.before as { plan?: string } | undefined)?.plan;
      if (approvedDigest !== request.digest) {
        return { ok: false, reason: `the approved organization plan ${parent.plan.digest} ${approvedDigest ? `names plan ${approvedDigest} for account ${request.account}, not ${request.digest}` : `does not include account ${request.account}`}` };
      }
      return { ok: true, consolidatedDigest: parent.plan.digest, decisions: approvals };
    },
  };
}

/** Every change of the organization plan: the status lists 200, the `details` query the rest. */
async function allChanges(client: Client, workflowId: string, status: RemediationStatus): Promise<Change[]> {
  const plan = status.plan as Plan;
  if (!plan.changesNotListed) return plan.changes;
  const out: Change[] = [];
  for (let offset = 0; ; ) {
    const page = await client.workflow.getHandle(workflowId).query<{ total: number; items: Change[] }, [{ list: string; offset: number }]>('details', { list: 'changes', offset });
    out.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return out;
  }
}
