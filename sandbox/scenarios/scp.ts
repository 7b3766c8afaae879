/**
 * scp in the management account of the sandbox organization: an older version of the CloudTrail
 * guardrail (it denies StopLogging only) is attached to the Sandbox OU. The run plans a new version
 * beside it — the old one is never edited in place — enables SCPs on the root, and rolls out in two
 * waves, Sandbox then Workloads, with a soak between: attach, read back, swap the old version out.
 *
 * The targets are OU ids the seed creates, so the parameters are known only once it has run.
 */
import { AttachPolicyCommand, CreatePolicyCommand, DescribePolicyCommand, ListPoliciesForTargetCommand, ListRootsCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { guardrailDocument } from '../../common/guardrails';
import type { RemediationStatus } from '../../common/messages';
import type { SeededOrganization } from '../organization';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from './index';

const POLICY = 'countersign-protect-cloudtrail';
const NEW_VERSION = `${POLICY}-v2`;
const BREAK_GLASS = 'arn:aws:iam::*:role/break-glass';

export interface ScpState extends ScenarioState {
  organization: SeededOrganization;
  oldPolicyId: string;
}

function checked(results: [boolean, string][]): ScenarioChecks {
  return { ok: results.every(([ok]) => ok), lines: results.map(([ok, what]) => `${ok ? 'ok    ' : 'FAILED'} ${what}`) };
}

let seededParams: Record<string, string> | undefined;

export const scp: Scenario<ScpState> = {
  kind: 'scp',
  title: 'a service control policy rolled out OU by OU, replacing an older version',
  shows: [
    'an organization whose Sandbox OU holds an older version of the CloudTrail guardrail; SCPs not yet enabled on the root',
    'the plan: enable SCPs (never undone), a new version beside the old one, then wave 1 (Sandbox: attach, swap the old one out) and wave 2 (Workloads) after a soak',
    'after approval: the new version on both OUs with its break-glass exemption, the old one detached, FullAWSAccess untouched',
  ],
  applying: 'enable SCPs → create v2 → wave 1: attach, read back, detach v1 → soak → wave 2 → verify',
  get params(): Record<string, string> {
    return seededParams ?? { guardrail: 'protect-cloudtrail', targets: '<Sandbox OU id>,<Workloads OU id> (known once seeded)', soak: '2s', exemptPrincipals: BREAK_GLASS };
  },

  async seed(context: ScenarioContext): Promise<ScpState> {
    const organization = await context.organization();
    const management = organization.managementAccount;
    const sandbox = organization.ous.Sandbox;
    const workloads = organization.ous.Workloads;
    if (!sandbox || !workloads) throw new Error('the sandbox organization has no Sandbox or Workloads OU');
    const orgs = new OrganizationsClient(context.clientConfig(management));
    let oldPolicyId: string;
    try {
      const old = { Version: '2012-10-17', Statement: [{ Sid: 'ProtectCloudTrail', Effect: 'Deny', Action: 'cloudtrail:StopLogging', Resource: '*' }] };
      const created = await orgs.send(new CreatePolicyCommand({ Name: POLICY, Description: 'an older CloudTrail guardrail', Type: 'SERVICE_CONTROL_POLICY', Content: JSON.stringify(old) }));
      oldPolicyId = created.Policy?.PolicySummary?.Id ?? '';
      if (!oldPolicyId) throw new Error(`CreatePolicy ${POLICY} answered without an id`);
      await orgs.send(new AttachPolicyCommand({ PolicyId: oldPolicyId, TargetId: sandbox }));
    } finally {
      orgs.destroy();
    }
    context.say(`organization ${organization.organizationId}: OUs Sandbox ${sandbox}, Workloads ${workloads}; ${POLICY} (${oldPolicyId}, denies StopLogging only) attached to Sandbox`);
    seededParams = { guardrail: 'protect-cloudtrail', targets: `${sandbox},${workloads}`, soak: '2s', exemptPrincipals: BREAK_GLASS };
    return { account: management, organization, oldPolicyId };
  },

  async checks(context: ScenarioContext, state: ScpState, final: RemediationStatus): Promise<ScenarioChecks> {
    const orgs = new OrganizationsClient(context.clientConfig(state.account));
    try {
      const names = async (target: string) => ((await orgs.send(new ListPoliciesForTargetCommand({ TargetId: target, Filter: 'SERVICE_CONTROL_POLICY' }))).Policies ?? []).map((p) => p.Name ?? '');
      const root = (await orgs.send(new ListRootsCommand({}))).Roots?.[0];
      const enabled = root?.PolicyTypes?.some((t) => t.Type === 'SERVICE_CONTROL_POLICY' && t.Status === 'ENABLED') === true;
      const sandbox = await names(state.organization.ous.Sandbox as string);
      const workloads = await names(state.organization.ous.Workloads as string);
      const attach = final.results.find((r) => r.changeId === `attach-policy/${state.organization.ous.Sandbox}` && r.status === 'applied');
      const newId = attach?.observed && typeof attach.observed === 'object' && !Array.isArray(attach.observed) ? String(attach.observed.policyId) : '';
      const content = newId ? (await orgs.send(new DescribePolicyCommand({ PolicyId: newId }))).Policy?.Content : undefined;
      const expected = JSON.stringify(guardrailDocument('protect-cloudtrail', [BREAK_GLASS]));
      return checked([
        [final.outcome === 'completed', `outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`],
        [enabled, `SCPs are enabled on the root ${root?.Id ?? '?'}`],
        [content === expected, `${NEW_VERSION} (${newId || 'not found'}) holds the guardrail with its break-glass exemption`],
        [sandbox.includes(NEW_VERSION) && !sandbox.includes(POLICY), `Sandbox OU: ${sandbox.join(', ')} (${NEW_VERSION} in, ${POLICY} swapped out)`],
        [workloads.includes(NEW_VERSION), `Workloads OU: ${workloads.join(', ')}`],
        [sandbox.includes('FullAWSAccess') && workloads.includes('FullAWSAccess'), 'FullAWSAccess is still attached to both OUs'],
      ]);
    } finally {
      orgs.destroy();
    }
  },
};
