/**
 * Reading the organization for the `scp` kind: the root and whether SCPs are enabled on it, the
 * targets the operator named, the SCPs of the organization and of each target, and which policy a run
 * attaches (the one of that name, an identical earlier version, or a new version).
 *
 * Read-only, and free of Temporal: the plan activity (activities/scp.ts) and the CLI's preflight
 * (cli/preflight.ts, with the operator's own credentials) share it, so `countersign start` and the
 * plan refuse the same things with the same words.
 */
import type { OrganizationsClient, PolicySummary } from '@aws-sdk/client-organizations';
import {
  DescribeAccountCommand,
  DescribeOrganizationalUnitCommand,
  DescribePolicyCommand,
  ListRootsCommand,
  ListTagsForResourceCommand,
  paginateListPolicies,
  paginateListPoliciesForTarget,
  paginateListTargetsForPolicy,
} from '@aws-sdk/client-organizations';
import { sameScpContent } from '../../common/scp-document';
import { isAwsError } from '../aws/errors';

export const SCP_TYPE = 'SERVICE_CONTROL_POLICY';
/** The AWS-managed SCP attached everywhere once SCPs are enabled: never detached by this kind (docs/aws.md §3.1). */
export const FULL_AWS_ACCESS_ID = 'p-FullAWSAccess';
/** SCPs attached directly to one root, OU or account, FullAWSAccess included (docs/aws.md §3.2). */
export const MAX_SCPS_PER_TARGET = 5;
/** The tag a policy this kind creates carries: the workflow that created it, so a retry or a rollback knows it. */
export const CREATED_BY_TAG = 'countersign:created-by';

export type ScpStatus = 'ENABLED' | 'PENDING_ENABLE' | 'PENDING_DISABLE' | 'NOT_ENABLED';

export interface RootFacts {
  id: string;
  arn: string;
  scpStatus: ScpStatus;
}

export type TargetKind = 'root' | 'ou' | 'account';

export interface TargetFacts {
  id: string;
  kind: TargetKind;
  arn: string;
  name: string;
}

export interface PolicyRef {
  id: string;
  arn: string;
  name: string;
  awsManaged: boolean;
}

/** What a read reports while it goes (a heartbeat in an activity, nothing in the CLI). */
export type Progress = (what: string) => void;

export function targetKindOf(id: string): TargetKind {
  return id.startsWith('r-') ? 'root' : id.startsWith('ou-') ? 'ou' : 'account';
}

const TARGET_WORDS: Record<TargetKind, string> = { root: 'root', ou: 'OU', account: 'account' };
export const describeTarget = (t: { id: string; kind: TargetKind; name?: string }): string => `${TARGET_WORDS[t.kind]} ${t.id}${t.name ? ` (${t.name})` : ''}`;

function policyRef(p: PolicySummary): PolicyRef {
  return { id: p.Id ?? '', arn: p.Arn ?? '', name: p.Name ?? '', awsManaged: p.AwsManaged === true };
}

/** The organization's root, and the state of the SCP policy type on it (ListRoots, docs/aws.md §3.1). */
export async function readRoot(orgs: OrganizationsClient): Promise<RootFacts> {
  const root = (await orgs.send(new ListRootsCommand({}))).Roots?.[0];
  if (!root?.Id || !root.Arn) throw new Error('ListRoots answered without a root');
  const status = root.PolicyTypes?.find((t) => t.Type === SCP_TYPE)?.Status;
  return { id: root.Id, arn: root.Arn, scpStatus: status === 'ENABLED' || status === 'PENDING_ENABLE' || status === 'PENDING_DISABLE' ? status : 'NOT_ENABLED' };
}

/** The target `id` names, or undefined when the organization has no such root, OU or account. */
export async function readTarget(orgs: OrganizationsClient, id: string, root: RootFacts): Promise<TargetFacts | undefined> {
  const kind = targetKindOf(id);
  if (kind === 'root') return id === root.id ? { id, kind, arn: root.arn, name: 'Root' } : undefined;
  try {
    if (kind === 'ou') {
      const ou = (await orgs.send(new DescribeOrganizationalUnitCommand({ OrganizationalUnitId: id }))).OrganizationalUnit;
      return { id, kind, arn: ou?.Arn ?? '', name: ou?.Name ?? '' };
    }
    const account = (await orgs.send(new DescribeAccountCommand({ AccountId: id }))).Account;
    return { id, kind, arn: account?.Arn ?? '', name: account?.Name ?? '' };
  } catch (err) {
    if (isAwsError(err, 'OrganizationalUnitNotFoundException', 'AccountNotFoundException', 'TargetNotFoundException')) return undefined;
    throw err;
  }
}

export async function listScps(orgs: OrganizationsClient): Promise<PolicyRef[]> {
  const found: PolicyRef[] = [];
  for await (const page of paginateListPolicies({ client: orgs }, { Filter: SCP_TYPE })) found.push(...(page.Policies ?? []).map(policyRef));
  return found;
}

/** The SCPs attached directly to a target (ListPoliciesForTarget). */
export async function scpsOnTarget(orgs: OrganizationsClient, targetId: string): Promise<PolicyRef[]> {
  const found: PolicyRef[] = [];
  for await (const page of paginateListPoliciesForTarget({ client: orgs }, { TargetId: targetId, Filter: SCP_TYPE })) found.push(...(page.Policies ?? []).map(policyRef));
  return found;
}

/** The ids of the roots, OUs and accounts a policy is attached to (ListTargetsForPolicy). */
export async function targetsOfPolicy(orgs: OrganizationsClient, policyId: string): Promise<string[]> {
  const found: string[] = [];
  for await (const page of paginateListTargetsForPolicy({ client: orgs }, { PolicyId: policyId })) found.push(...(page.Targets ?? []).flatMap((t) => (t.TargetId ? [t.TargetId] : [])));
  return found;
}

/** A policy's content, or undefined when it no longer exists. */
export async function policyContent(orgs: OrganizationsClient, policyId: string): Promise<string | undefined> {
  try {
    return (await orgs.send(new DescribePolicyCommand({ PolicyId: policyId }))).Policy?.Content ?? '';
  } catch (err) {
    if (isAwsError(err, 'PolicyNotFoundException')) return undefined;
    throw err;
  }
}

export async function findScpByName(orgs: OrganizationsClient, name: string): Promise<PolicyRef | undefined> {
  return (await listScps(orgs)).find((p) => p.name === name);
}

export async function policyCreatedBy(orgs: OrganizationsClient, policyId: string, workflowId: string): Promise<boolean> {
  const tags = (await orgs.send(new ListTagsForResourceCommand({ ResourceId: policyId }))).Tags ?? [];
  return tags.some((t) => t.Key === CREATED_BY_TAG && t.Value === workflowId);
}

/** 1 for the base name itself, N for `<base>-v<N>` (N ≥ 2), undefined for any other name. */
export function versionOf(base: string, name: string): number | undefined {
  if (name === base) return 1;
  if (!name.startsWith(`${base}-v`)) return undefined;
  const digits = name.slice(base.length + 2);
  const n = /^\d{1,6}$/.test(digits) ? Number(digits) : NaN;
  return Number.isInteger(n) && n >= 2 ? n : undefined;
}

export interface PolicyChoice {
  /** The name the run attaches. */
  name: string;
  /** The existing policy of that name with the approved content (adopted), or undefined: created by the run. */
  existing?: PolicyRef;
  /** The other versions of the same family (base name, `-v<N>`): swapped out wherever the run attaches. */
  superseded: PolicyRef[];
  /** Versions with the content already, other than `existing`: told to the approver. */
  notes: string[];
}

/**
 * Which policy the run attaches. A policy of the same family with the same content is adopted (the
 * base name first, then the newest version); otherwise the base name when it is free, else
 * `<base>-v<N+1>` above the newest version. A policy in use is never edited in place: UpdatePolicy
 * would change it on every target at once, which defeats a rollout in waves (docs/aws.md §3.3).
 */
export async function choosePolicy(orgs: OrganizationsClient, baseName: string, content: string, progress: Progress = () => undefined): Promise<{ choice?: PolicyChoice; problems: string[] }> {
  const family = (await listScps(orgs))
    .map((p) => ({ policy: p, version: versionOf(baseName, p.name) }))
    .filter((f): f is { policy: PolicyRef; version: number } => f.version !== undefined)
    .sort((a, b) => a.version - b.version);
  const managed = family.find((f) => f.policy.awsManaged);
  if (managed) return { problems: [`${managed.policy.name} is an AWS-managed policy, which cannot be changed or versioned; choose another name`] };
  const matching: PolicyRef[] = [];
  for (const { policy } of family) {
    progress(`policy ${policy.name}`);
    const existing = await policyContent(orgs, policy.id);
    if (existing !== undefined && sameScpContent(existing, content)) matching.push(policy);
  }
  const adopted = matching.find((p) => p.name === baseName) ?? matching[matching.length - 1];
  const notes = matching.filter((p) => p !== adopted).map((p) => `${p.name} (${p.id}) has the same content too; only ${adopted?.name ?? ''} is attached by this run`);
  if (adopted) return { problems: [], choice: { name: adopted.name, existing: adopted, superseded: family.map((f) => f.policy).filter((p) => p.id !== adopted.id), notes } };
  const newest = family[family.length - 1]?.version;
  const name = newest === undefined ? baseName : `${baseName}-v${newest + 1}`;
  if (name.length > 128) return { problems: [`the next version's name ${name} is over AWS's 128 characters for a policy name; choose a shorter name`] };
  return { problems: [], choice: { name, superseded: family.map((f) => f.policy), notes } };
}

export interface RolloutInspection {
  root: RootFacts;
  targets: TargetFacts[];
  choice?: PolicyChoice;
  /** The SCPs attached directly to each target now, by target id. */
  attached: Record<string, PolicyRef[]>;
  /** Every reason the rollout cannot go ahead; empty when it can. */
  problems: string[];
}

/**
 * Everything the plan needs to know, and every reason to refuse before approval: a target that does
 * not exist (ListRoots, DescribeOrganizationalUnit, DescribeAccount), and a target that would hold
 * more than 5 SCPs once the policy is attached (ListPoliciesForTarget). The new version is attached
 * before the old one is detached, so the count is taken with both on the target.
 */
export async function inspectScpRollout(orgs: OrganizationsClient, request: { policyName: string; content: string; targets: readonly string[] }, progress: Progress = () => undefined): Promise<RolloutInspection> {
  progress('root');
  const root = await readRoot(orgs);
  const problems: string[] = [];
  const targets: TargetFacts[] = [];
  for (const id of request.targets) {
    progress(`target ${id}`);
    const target = await readTarget(orgs, id, root);
    if (!target) {
      const kind = targetKindOf(id);
      problems.push(
        kind === 'root'
          ? `${id} is not this organization's root (${root.id})`
          : `${describeTarget({ id, kind })} is not in this organization; \`aws organizations ${kind === 'ou' ? 'list-organizational-units-for-parent --parent-id <parent>' : 'list-accounts'}\` lists them`,
      );
    } else targets.push(target);
  }
  const chosen = await choosePolicy(orgs, request.policyName, request.content, progress);
  problems.push(...chosen.problems);
  const attached: Record<string, PolicyRef[]> = {};
  for (const target of targets) {
    progress(`policies on ${target.id}`);
    const on = await scpsOnTarget(orgs, target.id);
    attached[target.id] = on;
    const choice = chosen.choice;
    if (!choice || on.some((p) => p.name === choice.name)) continue;
    if (on.length + 1 > MAX_SCPS_PER_TARGET) {
      problems.push(
        `${describeTarget(target)} already has ${on.length} SCPs attached (${on.map((p) => p.name).join(', ')}); AWS allows ${MAX_SCPS_PER_TARGET} per target, FullAWSAccess included, and ${choice.name} is attached before any version it replaces is detached — merge or detach one first`,
      );
    }
  }
  return { root, targets, ...(chosen.choice ? { choice: chosen.choice } : {}), attached, problems };
}
