/**
 * Per-kind checks `countersign start` runs after the parameters passed their declarations and before
 * anything starts: what needs several parameters together, or the organization itself, to judge. A
 * refusal is bad input (UsageError, exit 2, one line, nothing started). The worker repeats every one
 * of them in the plan, so a run started another way (the stock temporal CLI) is refused there too.
 *
 * AWS is read with the operator's own credentials. When they cannot read the organization (denied,
 * unreachable), `start` says so and goes on: the plan checks the same with the worker's.
 */
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { KindName, KindParams } from '../common/kinds';
import { selectScp } from '../common/scp-document';
import { resolveAwsSettings } from '../activities/aws/clients';
import { awsErrorName } from '../activities/aws/errors';
import { inspectScpRollout } from '../activities/organizations/scp-estate';
import { UsageError } from './errors';
import type { Output } from './output';

type Preflight<K extends KindName> = (params: KindParams<K>, out: Output) => Promise<void>;

/** scp: one of guardrail/policyFile, grammar and size, the root only with allowRoot; then every target real, at most 5 SCPs on each after the attach. */
const scp: Preflight<'scp'> = async (params, out) => {
  const { selection, problems } = selectScp(params);
  if (!selection) throw new UsageError(`scp: ${problems.join('; ')}`);
  const settings = await resolveAwsSettings();
  const orgs = new OrganizationsClient({ region: 'us-east-1', maxAttempts: settings.maxAttempts, retryMode: settings.retryMode ?? 'standard', ...(settings.endpoint ? { endpoint: settings.endpoint } : {}) });
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

const PREFLIGHTS: { [K in KindName]?: Preflight<K> } = { scp };

/** Run the kind's preflight, if it has one, on parameters `resolveKindParams` already typed. */
export async function preflight<K extends KindName>(kind: K, params: KindParams<K>, out: Output): Promise<void> {
  const check = PREFLIGHTS[kind] as Preflight<K> | undefined;
  if (check) await check(params, out);
}
