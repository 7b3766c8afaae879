/**
 * permission-boundary in the member account "workloads-prod": two workload roles (one with no
 * boundary, one with an older boundary), a service-linked role, and the account's
 * OrganizationAccountAccessRole, which the worker assumes. The run creates the built-in
 * countersign-workload-boundary, bounds the two workload roles one wave at a time with a soak between,
 * and leaves the service-linked role and the run's own role alone, each with its reason. Roles only:
 * the emulator has no PutUserPermissionsBoundary (docs/aws.md §9).
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { CreateRoleCommand, CreateServiceLinkedRoleCommand, GetPolicyCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { DEFAULT_ACCOUNT_ROLE } from '../../activities/aws/clients';
import { builtinBoundaryArn } from '../../common/boundaries';
import type { RemediationStatus } from '../../common/messages';
import type { SeededAccount, SeededOrganization } from '../organization';
import { accountNamed } from '../organization';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from './index';

const MEMBER = 'workloads-prod';
const BUILTIN = 'countersign-workload-boundary';
/** An older boundary one workload already has: the run replaces it, a rollback would put it back. */
const OLD_BOUNDARY = 'arn:aws:iam::aws:policy/PowerUserAccess';
const SERVICE = 'elasticbeanstalk.amazonaws.com';

export interface PermissionBoundaryState extends ScenarioState {
  organization: SeededOrganization;
  member: SeededAccount;
  /** Workload roles and the boundary each had before the run. */
  workloads: { name: string; before: string | null }[];
  /** The service-linked role the run must leave alone. */
  serviceLinked: { name: string; arn: string };
  /** A workload role of the management account: a run on the member account must not touch it. */
  managementRole: string;
}

const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' }] });

async function boundaryOf(iam: IAMClient, role: string): Promise<string | null | undefined> {
  try {
    return (await iam.send(new GetRoleCommand({ RoleName: role }))).Role?.PermissionsBoundary?.PermissionsBoundaryArn ?? null;
  } catch {
    return undefined; // gone
  }
}

function checked(results: [boolean, string][]): ScenarioChecks {
  return { ok: results.every(([ok]) => ok), lines: results.map(([ok, what]) => `${ok ? 'ok    ' : 'FAILED'} ${what}`) };
}

export const permissionBoundary: Scenario<PermissionBoundaryState> = {
  kind: 'permission-boundary',
  title: `permission boundaries on the roles of the member account ${MEMBER}`,
  shows: [
    `the run targets ${MEMBER}, reached through ${DEFAULT_ACCOUNT_ROLE}; the plan creates builtin:${BUILTIN} there (its document is in the plan)`,
    'two workload roles are bounded one wave at a time, a soak between; each previous boundary (none, or an older one) is recorded for rollback',
    `the service-linked role and ${DEFAULT_ACCOUNT_ROLE} (the run's own) are left alone, each with its reason`,
  ],
  applying: 'create the boundary → wave 1 → soak → wave 2 → verify',
  params: { boundary: `builtin:${BUILTIN}`, roles: '*', batch: '1', soak: '3s' },

  async seed(context: ScenarioContext): Promise<PermissionBoundaryState> {
    const organization = await context.organization();
    const member = accountNamed(organization, MEMBER);
    const iam = context.iam(member.id);
    const workloads = [
      { name: 'payments-api', before: null },
      { name: 'reports-batch', before: OLD_BOUNDARY },
    ];
    for (const w of workloads) {
      await iam.send(new CreateRoleCommand({ RoleName: w.name, Path: '/workloads/', AssumeRolePolicyDocument: TRUST, ...(w.before ? { PermissionsBoundary: w.before } : {}) }));
    }
    const slr = (await iam.send(new CreateServiceLinkedRoleCommand({ AWSServiceName: SERVICE }))).Role;
    if (!slr?.RoleName || !slr.Arn) throw new Error(`CreateServiceLinkedRole for ${SERVICE} answered without a role`);
    context.say(`in ${MEMBER} (${member.id}): roles ${workloads.map((w) => `${w.name} (boundary ${w.before ?? 'none'})`).join(', ')}; service-linked ${slr.RoleName}; ${DEFAULT_ACCOUNT_ROLE}`);

    const managementRole = 'mgmt-reporting';
    await context.iam(organization.managementAccount).send(new CreateRoleCommand({ RoleName: managementRole, AssumeRolePolicyDocument: TRUST }));
    context.say(`in the management account ${organization.managementAccount}: role ${managementRole}, no boundary (a run on ${MEMBER} must leave it alone)`);
    return { account: member.id, organization, member, workloads, serviceLinked: { name: slr.RoleName, arn: slr.Arn }, managementRole };
  },

  async checks(context: ScenarioContext, state: PermissionBoundaryState, final: RemediationStatus): Promise<ScenarioChecks> {
    const { member, workloads, serviceLinked, organization, managementRole } = state;
    const iam = context.iam(member.id);
    const boundary = builtinBoundaryArn(BUILTIN, { partition: 'aws', account: member.id });
    const plan = final.plan;
    const reasonOf = (arn: string) => plan?.leftAlone.find((l) => l.resource === arn)?.reason;
    const now = await Promise.all(workloads.map((w) => boundaryOf(iam, w.name)));
    const policyThere = await iam.send(new GetPolicyCommand({ PolicyArn: boundary })).then(
      () => true,
      () => false,
    );
    const waves = (plan?.stages ?? []).filter((s) => s.name.startsWith('wave-'));
    return checked([
      [final.outcome === 'completed', `outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`],
      [policyThere, `${boundary} exists (created by the run)`],
      [now.every((b) => b === boundary), `in ${MEMBER}: ${workloads.map((w, i) => `${w.name} ${describe(w.before)} → ${describe(now[i])}`).join('; ')}`],
      [waves.length === workloads.length && waves.slice(1).every((s) => s.soakBefore === '3s'), `${waves.length} waves of one role, a 3s soak before each after the first`],
      [(await boundaryOf(iam, serviceLinked.name)) === null && reasonOf(serviceLinked.arn) === 'service-linked', `${serviceLinked.name}: left alone (${reasonOf(serviceLinked.arn) ?? '?'}), no boundary`],
      [reasonOf(`arn:aws:iam::${member.id}:role/${DEFAULT_ACCOUNT_ROLE}`) === 'own-principal', `${DEFAULT_ACCOUNT_ROLE}: left alone (${reasonOf(`arn:aws:iam::${member.id}:role/${DEFAULT_ACCOUNT_ROLE}`) ?? '?'})`],
      [(await boundaryOf(context.iam(organization.managementAccount), managementRole)) === null, `in the management account: ${managementRole} untouched, no boundary`],
    ]);
  },
};

function describe(boundary: string | null | undefined): string {
  return boundary === undefined ? '(gone)' : (boundary ?? 'none');
}
