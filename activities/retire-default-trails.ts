/**
 * retire-default-trails activities: from the management account, check that a healthy organization
 * trail logs; classify every trail of the selected accounts; stop logging on the redundant ones, soak,
 * re-check, snapshot and delete them; restart logging on a rollback; verify they are gone.
 *
 * Each trail is changed in its own account (the management account's credentials, or the role assumed
 * in a member) and in its home region, the only region where CloudTrail accepts changes to it.
 */
import { paginateListAccounts } from '@aws-sdk/client-organizations';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { AdvancedEventSelector, EventSelector, Trail } from '@aws-sdk/client-cloudtrail';
import { DeleteTrailCommand, StartLoggingCommand, StopLoggingCommand } from '@aws-sdk/client-cloudtrail';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Json } from '../common/json';
import type { KindParams } from '../common/kinds';
import { KINDS } from '../common/kinds';
import type { Change, ChangeOutcome, KindPlan, VerifyCheck, VerifyResult } from '../common/plan';
import type { ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../common/requests';
import type { AccountClients, AwsClients } from './aws/clients';
import { classifyAwsError, isAwsError } from './aws/errors';
import type { ListedTrail, ObservedTrail } from './cloudtrail/trail-classification';
import { findOrganizationTrail, organizationTrailProblems, parseTrailArn } from './cloudtrail/trail-classification';
import type { TrailSnapshot } from './cloudtrail/trail-observation';
import { configurationOf, listAccountTrails, observeTrail, readTrail, snapshotTrail, trailDrift, trailExists } from './cloudtrail/trail-observation';
import type { RetiringTrail, ReviewedAccount } from './cloudtrail/trail-retirement-plan';
import { planTrailRetirement } from './cloudtrail/trail-retirement-plan';
import { keepAlive } from './heartbeat';

/** Left-alone trails listed in the plan; the rest are counted (bounded history). */
const LEFT_ALONE_LISTED = 300;

export interface RetireDefaultTrailsDeps {
  aws: AwsClients;
  now?: () => Date;
}

function refusal(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** The approved trail a change carries (the plan's `before`), checked for the fields every activity needs. */
export function retiringTrailOf(change: Change): RetiringTrail {
  const before = change.before as Partial<RetiringTrail> | null;
  if (!before || typeof before.account !== 'string' || typeof before.arn !== 'string' || typeof before.name !== 'string' || typeof before.homeRegion !== 'string' || !before.configuration || !before.selectors) {
    throw refusal('InvalidPlan', `change ${change.id} does not name a trail (account, ARN, name, home region, configuration)`);
  }
  return before as RetiringTrail;
}

/** The attempt of the running activity (1 outside one). */
function attempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

export function createRetireDefaultTrailActivities(deps: RetireDefaultTrailsDeps) {
  const { aws } = deps;
  const now = deps.now ?? (() => new Date());
  const clientsFor = (account: string, workflowId: string): Promise<AccountClients> => aws.forAccount({ account, workflowId });

  /**
   * How StartLogging, StopLogging and DeleteTrail name the trail. AWS: the ARN, which is unambiguous
   * (a name only resolves among the caller's own trails of the region it is sent to). moto 5.2.1
   * answers StartLogging/StopLogging by ARN with an HTTP 500 and treats DeleteTrail by ARN as a silent
   * no-op, so under moto the name is sent (to the home region, where it is unique); every delete is
   * verified with GetTrail either way.
   */
  const mutationName = (trail: ListedTrail): string => (aws.settings.emulator === 'moto' ? trail.name : trail.arn);

  async function accountTrails(clients: AccountClients, account: string): Promise<ObservedTrail[]> {
    const observed: ObservedTrail[] = [];
    for (const listed of await listAccountTrails(clients)) {
      keepAlive({ account, trail: listed.name });
      const trail = await observeTrail(clients, listed, account);
      if (trail) observed.push(trail); // gone between ListTrails and GetTrail: nothing to review
    }
    return observed;
  }

  /** A member's trails through the assumed role; a role that cannot be used fails the plan naming it. */
  async function memberTrails(account: string, workflowId: string): Promise<ObservedTrail[]> {
    try {
      return await accountTrails(await clientsFor(account, workflowId), account);
    } catch (err) {
      if (err instanceof ApplicationFailure || classifyAwsError(err).retryable) throw err;
      throw refusal(
        'AccountUnreadable',
        `cannot read the trails of account ${account} as ${aws.roleArnFor(account)} (${classifyAwsError(err).name}: ${(err as Error).message}); the role must exist there, trust the management account, and allow the CloudTrail reads and changes listed in docs/kinds/retire-default-trails.md`,
      );
    }
  }

  /** The accounts to review, in order: `all` is the management account, then every ACTIVE member. */
  async function selectAccounts(orgs: OrganizationsClient, wanted: string[], management: string, organizationId: string | undefined): Promise<string[]> {
    const states = new Map<string, string>();
    for await (const page of paginateListAccounts({ client: orgs }, {})) {
      for (const a of page.Accounts ?? []) if (a.Id) states.set(a.Id, String(a.State ?? a.Status ?? 'UNKNOWN'));
    }
    if (wanted.length === 1 && wanted[0] === 'all') {
      return [management, ...[...states].filter(([id, state]) => id !== management && state === 'ACTIVE').map(([id]) => id)];
    }
    const org = organizationId ? `organization ${organizationId}` : 'the organization';
    for (const id of wanted) {
      const state = id === management ? 'ACTIVE' : states.get(id);
      if (state === undefined) throw refusal('AccountNotInOrganization', `account ${id} is not in ${org}, so its trails cannot be reviewed from the management account; \`aws organizations list-accounts\` shows its accounts`);
      if (state !== 'ACTIVE') throw refusal('AccountNotActive', `account ${id} is ${state} in ${org}; only active accounts are reviewed`);
    }
    return wanted;
  }

  /** Re-read a trail to act on; the reason to leave it alone when it drifted from the approved state. */
  async function recheck(clients: AccountClients, approved: RetiringTrail) {
    const reading = await readTrail(clients, approved, approved.account);
    if (!reading) return { gone: true as const };
    const drift = trailDrift(approved, reading.observed);
    return { gone: false as const, reading, drift };
  }

  return {
    async planDefaultTrailRetirement(request: PlanRequest<KindParams<'retire-default-trails'>>): Promise<KindPlan> {
      const { params, target } = request;
      const management = target.managementAccount;
      if (!management) {
        throw refusal('NoOrganization', `retire-default-trails runs in the management account of an AWS organization, and account ${request.account} sees no organization; an organization trail is what makes other trails redundant`);
      }
      if (management !== request.account) {
        throw refusal('NotManagementAccount', `retire-default-trails runs against the organization's management account ${management}, not ${request.account}; start it without --account (or with --account ${management})`);
      }
      const at = now();
      const managementClients = await clientsFor(management, request.workflowId);
      const accounts = await selectAccounts(managementClients.organizations(), params.accounts, management, target.organizationId);

      // The precondition, from the management account, before any member is read.
      const managementTrails = await accountTrails(managementClients, management);
      const found = findOrganizationTrail(managementTrails, management);
      if ('problems' in found) {
        throw refusal(
          'NoHealthyOrganizationTrail',
          `no healthy organization trail logs in the management account ${management} (${found.problems.join('; ')}), so retiring other trails would leave accounts unlogged; nothing was changed. Create one with \`countersign start org-trail --param bucket=BUCKET\` (the org-trail kind), or repair the existing one, then run again`,
        );
      }
      const organizationTrail = found.trail;

      const reviewed: ReviewedAccount[] = [];
      for (const account of accounts) {
        keepAlive({ account });
        reviewed.push({ account, trails: account === management ? managementTrails : await memberTrails(account, request.workflowId) });
      }
      const { changes, leftAlone, counts } = planTrailRetirement(reviewed, {
        managementAccount: management,
        organizationTrail,
        keep: new Set(params.keep),
        protectedPatterns: request.protectedPrincipals,
      });
      const listed = leftAlone.slice(0, LEFT_ALONE_LISTED);
      const trailCount = reviewed.reduce((n, r) => n + r.trails.length, 0);
      const health = organizationTrail.health;
      const notes = [
        `organization trail ${organizationTrail.arn} (home region ${organizationTrail.homeRegion}) is multi-region and logging${health?.latestDeliveryTime ? `, last delivery ${health.latestDeliveryTime}` : ''}: it records the management events of every account of ${target.organizationId ?? 'the organization'}`,
        `${trailCount} trail(s) seen in ${accounts.length} account(s) (${params.accounts.join(', ')}); by reason: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
        'stopping logging is undone by a rollback (a reject during the soak restarts logging on every trail this run stopped); deleting a trail is IRREVERSIBLE: no rollback restores it, its snapshot in history says how to recreate it, and its logs stay in its bucket',
        `controls: ${KINDS['retire-default-trails'].controls.join(', ')}`,
      ];
      if (aws.settings.emulator) notes.push(`AWS is the ${aws.settings.emulator} emulator at ${aws.settings.endpoint ?? 'the default endpoint'}`);
      log.info('planned default trail retirement', { workflowId: request.workflowId, account: request.account, accounts: accounts.length, trails: trailCount, changes: changes.length });
      return {
        createdAt: at.toISOString(),
        stages: [
          { name: 'stop', description: 'stop logging on each retired trail, in its home region (CloudTrail allows about one change per second per account and region)', concurrency: 1 },
          { name: 'delete', description: 're-check each trail is still stopped and unchanged, snapshot it, delete it in its home region, confirm it is gone', soakBefore: params.soak, concurrency: 1 },
        ],
        changes,
        leftAlone: listed,
        leftAloneNotListed: leftAlone.length - listed.length,
        notes,
      };
    },

    async snapshotRetiringTrail(request: ChangeRequest): Promise<Json> {
      const approved = retiringTrailOf(request.change);
      keepAlive({ change: request.change.id });
      const clients = await clientsFor(approved.account, request.workflowId);
      const identity = await clients.identity();
      const snapshot = await snapshotTrail(clients, approved, approved.account, identity.arn, now());
      return (snapshot ?? null) as unknown as Json;
    },

    async stopRetiringTrailLogging(request: ChangeRequest): Promise<ChangeOutcome> {
      const approved = retiringTrailOf(request.change);
      const clients = await clientsFor(approved.account, request.workflowId);
      const checked = await recheck(clients, approved);
      if (checked.gone) return { status: 'left-alone', detail: 'left alone: the trail no longer exists (deleted outside this run)' };
      if (checked.drift) return { status: 'left-alone', detail: `left alone: the trail changed since the plan was approved (${checked.drift})` };
      if (!checked.reading.observed.health.isLogging) {
        // A retry of this activity after its StopLogging went through finds the trail stopped: that
        // stop is this run's, and a rollback must restart it.
        if (attempt() > 1) return { status: 'applied', detail: 'logging stopped (by an earlier attempt of this change)', observed: { wasLogging: true } };
        return { status: 'already-done', detail: 'the trail had already stopped logging; a rollback leaves it stopped', observed: { wasLogging: false } };
      }
      await clients.cloudtrail(approved.homeRegion).send(new StopLoggingCommand({ Name: mutationName(approved) }));
      log.info('stopped trail logging', { workflowId: request.workflowId, change: request.change.id, account: approved.account, region: approved.homeRegion });
      return { status: 'applied', detail: `logging stopped in ${approved.homeRegion}`, observed: { wasLogging: true, stoppedAt: now().toISOString() } };
    },

    async restartRetiringTrailLogging(request: RollbackRequest): Promise<ChangeOutcome> {
      const approved = retiringTrailOf(request.change);
      if (request.result.status === 'already-done') {
        return { status: 'already-done', detail: 'not restarted: the trail had stopped logging before this run reached it' };
      }
      const clients = await clientsFor(approved.account, request.workflowId);
      const reading = await readTrail(clients, approved, approved.account);
      if (!reading) throw refusal('TrailGone', `cannot restart logging on ${approved.arn}: the trail no longer exists; recreate it from its snapshot`);
      if (reading.observed.health.isLogging) return { status: 'already-done', detail: 'the trail was already logging again' };
      const ct = clients.cloudtrail(approved.homeRegion);
      await ct.send(new StartLoggingCommand({ Name: mutationName(approved) }));
      const after = await readTrail(clients, approved, approved.account);
      if (!after?.observed.health.isLogging) {
        throw ApplicationFailure.create({ type: 'TrailNotLogging', message: `StartLogging on ${approved.arn} succeeded but the trail does not report logging yet`, nonRetryable: false });
      }
      log.info('restarted trail logging', { workflowId: request.workflowId, change: request.change.id, account: approved.account, region: approved.homeRegion });
      return { status: 'applied', detail: `logging restarted in ${approved.homeRegion}` };
    },

    async deleteRetiringTrail(request: ChangeRequest): Promise<ChangeOutcome> {
      const approved = retiringTrailOf(request.change);
      const snapshot = request.snapshot as TrailSnapshot | null | undefined;
      const deleted = { arn: approved.arn, account: approved.account, homeRegion: approved.homeRegion };
      const clients = await clientsFor(approved.account, request.workflowId);
      const checked = await recheck(clients, approved);
      if (checked.gone) return { status: 'already-done', detail: 'the trail was already deleted', observed: deleted };
      // Fail closed on drift: a trail someone started again, or reconfigured, is no longer the one approved.
      if (checked.reading.observed.health.isLogging) return { status: 'left-alone', detail: 'left alone: the trail is logging again (restarted after it was stopped); it is not deleted' };
      if (checked.drift) return { status: 'left-alone', detail: `left alone: the trail changed since the plan was approved (${checked.drift})` };
      if (!snapshot) return { status: 'left-alone', detail: 'left alone: no snapshot of the trail was taken before the delete' };
      const sinceSnapshot = trailDrift(
        {
          configuration: configurationOf(snapshot.trail as unknown as Trail),
          selectors: {
            eventSelectors: snapshot.eventSelectors as unknown as EventSelector[],
            advancedEventSelectors: snapshot.advancedEventSelectors as unknown as AdvancedEventSelector[],
            insightTypes: snapshot.insightSelectors,
          },
        },
        checked.reading.observed,
      );
      if (sinceSnapshot || snapshot.isLogging) return { status: 'left-alone', detail: `left alone: the trail changed after its snapshot (${sinceSnapshot ?? 'it was logging'})` };

      try {
        await clients.cloudtrail(approved.homeRegion).send(new DeleteTrailCommand({ Name: mutationName(approved) }));
      } catch (err) {
        if (!isAwsError(err, 'TrailNotFoundException')) throw err;
        return { status: 'already-done', detail: 'the trail was already deleted', observed: deleted };
      }
      // DeleteTrail's success is not proof (an emulator may accept a delete it did not do): GetTrail must not find it.
      if (await trailExists(clients, approved)) {
        throw ApplicationFailure.create({ type: 'TrailStillExists', message: `DeleteTrail on ${approved.arn} succeeded but GetTrail still finds the trail`, nonRetryable: false });
      }
      log.info('deleted trail', { workflowId: request.workflowId, change: request.change.id, account: approved.account, region: approved.homeRegion });
      const bucket = approved.configuration.s3BucketName;
      return {
        status: 'applied',
        detail: `deleted in ${approved.homeRegion}${bucket ? `; its logs remain in s3://${bucket}/${approved.configuration.s3KeyPrefix ? `${approved.configuration.s3KeyPrefix}/` : ''}` : ''}`,
        observed: deleted,
      };
    },

    async verifyDefaultTrailRetirement(request: VerifyRequest): Promise<VerifyResult> {
      const checks: VerifyCheck[] = [];
      let organizationTrail: RetiringTrail['organizationTrail'] | undefined;
      for (const { change } of request.applied) {
        const approved = retiringTrailOf(change);
        organizationTrail ??= approved.organizationTrail;
        if (change.action !== 'delete-trail') continue;
        keepAlive({ verifying: change.id });
        const clients = await clientsFor(approved.account, request.workflowId);
        const exists = await trailExists(clients, approved);
        checks.push({ changeId: change.id, ok: !exists, detail: exists ? `${approved.arn} still exists` : `${approved.arn} is gone (GetTrail in ${approved.homeRegion}: TrailNotFoundException)` });
      }
      if (organizationTrail) {
        // What the retired trails recorded is now recorded only by the organization trail: it must still log.
        const management = await clientsFor(request.account, request.workflowId);
        const name = parseTrailArn(organizationTrail.arn)?.name ?? organizationTrail.arn;
        const reading = await readTrail(management, { arn: organizationTrail.arn, name, homeRegion: organizationTrail.homeRegion }, request.account);
        const problems = reading ? organizationTrailProblems(reading.observed) : ['it no longer exists'];
        checks.push({ changeId: 'organization-trail', ok: problems.length === 0, detail: problems.length ? `${organizationTrail.arn}: ${problems.join(', ')}` : `${organizationTrail.arn} is logging` });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}
