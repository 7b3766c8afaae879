/**
 * stale-iam-users in a member account of the sandbox organization: the demo estate (sandbox/seed.ts)
 * lives in the member account "workloads-prod", which the worker reaches by assuming
 * OrganizationAccountAccessRole; two idle users in the management account show that the run acts
 * in its target account and nowhere else.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import {
  CreateAccessKeyCommand,
  CreateLoginProfileCommand,
  CreateUserCommand,
  GetGroupCommand,
  GetLoginProfileCommand,
  GetUserCommand,
  ListAccessKeysCommand,
  ListVirtualMFADevicesCommand,
} from '@aws-sdk/client-iam';
import { DEFAULT_ACCOUNT_ROLE } from '../../activities/aws/clients';
import type { RemediationStatus } from '../../common/messages';
import type { SeededAccount, SeededOrganization } from '../organization';
import { accountNamed } from '../organization';
import type { SeededEstate } from '../seed';
import { seedEstate, useKeys } from '../seed';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from './index';

export interface StaleIamUsersState extends ScenarioState {
  organization: SeededOrganization;
  /** The member account the estate is in and the run targets. */
  member: SeededAccount;
  estate: SeededEstate;
  /** Idle users of the management account: a run on the member account must not touch them. */
  managementIdle: string[];
}

const MEMBER = 'workloads-prod';
const MAX_IDLE = '2s';
/** Past MAX_IDLE, so every seeded credential is idle when the run plans. */
const IDLE_WAIT_MS = 3_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function userExists(iam: IAMClient, userName: string): Promise<boolean> {
  try {
    await iam.send(new GetUserCommand({ UserName: userName }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'NoSuchEntityException') return false;
    throw err;
  }
}

/** The user still there with a console password and every access key active: nothing was done to it. */
async function untouched(iam: IAMClient, userName: string): Promise<boolean> {
  if (!(await userExists(iam, userName))) return false;
  const keys = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  const login = await iam.send(new GetLoginProfileCommand({ UserName: userName })).then(
    () => true,
    () => false,
  );
  return login && (keys.AccessKeyMetadata ?? []).length > 0 && (keys.AccessKeyMetadata ?? []).every((k) => k.Status === 'Active');
}

function checked(results: [boolean, string][]): ScenarioChecks {
  return { ok: results.every(([ok]) => ok), lines: results.map(([ok, what]) => `${ok ? 'ok    ' : 'FAILED'} ${what}`) };
}

const list = (names: string[]) => names.join(', ') || 'none';

/**
 * Keep the seeded active users' keys in use (`countersign dev --seed`): sign a request with each every
 * `everyMs`, so a run started by hand at any time later, even with maxIdle=2s, finds them active. The
 * returned function stops it. A failed round (moto stopping) is ignored; the next one tries again.
 */
export function keepKeysInUse(state: StaleIamUsersState, endpoint: string, everyMs = 500): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    useKeys(state.estate, endpoint)
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export const staleIamUsers: Scenario<StaleIamUsersState> = {
  kind: 'stale-iam-users',
  title: `stale IAM users in the member account ${MEMBER}`,
  shows: [
    `an organization (OUs Workloads and Sandbox); the run targets member account ${MEMBER}, reached by assuming ${DEFAULT_ACCOUNT_ROLE}`,
    'the plan lists exactly that account\'s idle users; the requester and someone outside the policy are refused, the demo approver approves',
    'disable → soak → re-check → delete → verify; the management account\'s idle users stay untouched; the evidence names the role session',
  ],
  applying: 'disable → soak → re-check → delete → verify',
  params: { maxIdle: MAX_IDLE, soak: '3s' },

  async seed(context: ScenarioContext): Promise<StaleIamUsersState> {
    const organization = await context.organization();
    const placed = organization.accounts.map((a) => `${a.name} ${a.id}${a.ou ? ` (OU ${a.ou})` : ''}`).join(', ');
    context.say(`organization ${organization.organizationId}: management account ${organization.managementAccount}; members ${placed}`);
    const member = accountNamed(organization, MEMBER);

    const estate = await seedEstate(context.iam(member.id));
    context.say(`in ${MEMBER} (${member.id}), through ${DEFAULT_ACCOUNT_ROLE}:`);
    context.say(`  idle users (console password, 2 access keys, virtual MFA, inline + managed policy, group): ${list(estate.idle)}`);
    context.say(`  idle user holding an SSH key: ${estate.sshKeyHolder}; users with keys in use: ${list(estate.active)}`);
    context.say(`  exempt (tagged countersign:exempt): ${estate.exempt}; protected: ${estate.breakGlass}`);

    const management = context.iam(organization.managementAccount);
    const managementIdle = ['mgmt-idle-operator', 'mgmt-idle-reporting'];
    for (const user of managementIdle) {
      await management.send(new CreateUserCommand({ UserName: user }));
      await management.send(new CreateLoginProfileCommand({ UserName: user, Password: 'Seeded-Passw0rd!x', PasswordResetRequired: false }));
      await management.send(new CreateAccessKeyCommand({ UserName: user }));
    }
    context.say(`in the management account ${organization.managementAccount}: idle users ${list(managementIdle)} (a run on ${MEMBER} must leave them alone)`);

    context.say(`waiting ${IDLE_WAIT_MS / 1000}s so the seeded credentials are idle past maxIdle=${MAX_IDLE}, then using the active keys`);
    await sleep(IDLE_WAIT_MS);
    await useKeys(estate, context.endpoint);
    return { account: member.id, organization, member, estate, managementIdle };
  },

  async checks(context: ScenarioContext, state: StaleIamUsersState, final: RemediationStatus): Promise<ScenarioChecks> {
    const { member, estate, organization, managementIdle } = state;
    const iam = context.iam(member.id);
    const management = context.iam(organization.managementAccount);
    const roleArn = `arn:aws:iam::${member.id}:role/${DEFAULT_ACCOUNT_ROLE}`;
    const target = final.target;
    const session = target?.sessionName ?? '';

    const planned = (final.plan?.changes ?? []).filter((c) => c.action === 'delete-user').map((c) => c.resource);
    const expected = estate.idle.map((u) => `arn:aws:iam::${member.id}:user/${u}`);
    const samePlan = planned.length === expected.length && expected.every((arn) => planned.includes(arn));
    const inMember = (final.plan?.changes ?? []).every((c) => c.resource.includes(`::${member.id}:`));

    const gone = await Promise.all(estate.idle.map(async (u) => !(await userExists(iam, u))));
    const mfa = (await iam.send(new ListVirtualMFADevicesCommand({}))).VirtualMFADevices ?? [];
    const mfaLeft = mfa.filter((d) => estate.idle.some((u) => d.SerialNumber?.endsWith(`/${u}-mfa`)));
    const groupMembers = ((await iam.send(new GetGroupCommand({ GroupName: estate.group }))).Users ?? []).map((u) => u.UserName ?? '');
    const others = [estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass];
    const othersThere = await Promise.all(others.map((u) => userExists(iam, u)));
    const managementKept = await Promise.all(managementIdle.map((u) => untouched(management, u)));

    return checked([
      [final.outcome === 'completed', `outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`],
      [samePlan && inMember, `the plan deleted exactly ${MEMBER}'s idle users, every change on an ARN of account ${member.id}`],
      [gone.every(Boolean), `in ${MEMBER}: removed ${list(estate.idle.filter((_, i) => gone[i]))}`],
      [mfaLeft.length === 0 && !groupMembers.some((u) => estate.idle.includes(u)), `in ${MEMBER}: their MFA devices and group memberships are gone`],
      [othersThere.every(Boolean), `in ${MEMBER}: untouched ${list(others.filter((_, i) => othersThere[i]))}`],
      [managementKept.every(Boolean), `in the management account ${organization.managementAccount}: idle users ${list(managementIdle)} untouched (keys active, password kept)`],
      [
        target?.account === member.id && target.roleArn === roleArn && session.startsWith('countersign.') && (target.actingArn ?? '').endsWith(`:${member.id}:assumed-role/${DEFAULT_ACCOUNT_ROLE}/${session}`),
        `acted in ${target?.account ?? '?'} (${target?.accountName ?? '?'}) as ${target?.actingArn ?? '?'}, role session ${session || '?'}`,
      ],
    ]);
  },
};
