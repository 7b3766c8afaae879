/**
 * retire-default-trails across the sandbox organization, run from the management account: an
 * organization trail logs there, beside the trails accounts grow over the years — a console-style
 * management-events trail, a data-events trail, a trail never started, one whose bucket was deleted, a
 * Control Tower trail, one the operator keeps — and each member account has a trail of its own
 * (sandbox-dev also one feeding CloudWatch Logs alarms). The run retires exactly the duplicates and
 * the broken trails, in every account, and keeps the rest with their reasons.
 *
 * moto does not show members the organization trail nor report delivery errors; the "bucket gone"
 * trail is broken the way moto can show (its bucket really is deleted).
 */
import { CloudTrailClient, CreateTrailCommand, GetTrailCommand, GetTrailStatusCommand, PutEventSelectorsCommand, StartLoggingCommand } from '@aws-sdk/client-cloudtrail';
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { RemediationStatus } from '../../common/messages';
import type { SeededOrganization } from '../organization';
import { accountNamed } from '../organization';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from './index';

const REGION = 'us-east-1';

/** A trail the scenario seeds, and what the run is expected to do with it. */
export interface SeededTrail {
  account: string;
  name: string;
  arn: string;
  logging: boolean;
  /** `retired`: stopped (when logging) and deleted; otherwise the plan's left-alone reason. */
  expected: 'retired' | 'organization-trail' | 'control-tower' | 'kept-by-parameter' | 'distinct-purpose';
}

export interface RetireDefaultTrailsState extends ScenarioState {
  organization: SeededOrganization;
  bucket: string;
  trails: SeededTrail[];
}

/** CloudTrail acting in `account` (a member through OrganizationAccountAccessRole). Destroy it when done. */
export function cloudTrailIn(context: ScenarioContext, account: string): CloudTrailClient {
  return new CloudTrailClient(context.clientConfig(account, REGION));
}

/** The trail's logging state, or undefined when GetTrail does not find it. */
export async function trailState(context: ScenarioContext, trail: { account: string; arn: string }): Promise<{ logging: boolean } | undefined> {
  const ct = cloudTrailIn(context, trail.account);
  try {
    await ct.send(new GetTrailCommand({ Name: trail.arn }));
    const status = await ct.send(new GetTrailStatusCommand({ Name: trail.arn }));
    return { logging: status.IsLogging === true };
  } catch (err) {
    if ((err as Error).name === 'TrailNotFoundException') return undefined;
    throw err;
  } finally {
    ct.destroy();
  }
}

/**
 * Seed the organization (the context's), a log bucket, and the trails of every account. Without
 * `organizationTrail` no organization trail is created: the run must refuse to retire anything.
 */
export async function seedTrailEstate(context: ScenarioContext, options: { organizationTrail?: boolean } = {}): Promise<RetireDefaultTrailsState> {
  const organization = await context.organization();
  const management = organization.managementAccount;
  const bucket = `countersign-trail-logs-${management}`;
  const orphanBucket = `countersign-retired-bucket-${management}`;
  const s3 = new S3Client(context.clientConfig(management, REGION));
  const trails: SeededTrail[] = [];
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new CreateBucketCommand({ Bucket: orphanBucket }));
    const seed = async (account: string, name: string, expected: SeededTrail['expected'], fields: { logging?: boolean; bucket?: string; multiRegion?: boolean; organization?: boolean; cloudWatchLogs?: boolean; dataEvents?: boolean } = {}) => {
      const ct = cloudTrailIn(context, account);
      try {
        const created = await ct.send(
          new CreateTrailCommand({
            Name: name,
            S3BucketName: fields.bucket ?? bucket,
            S3KeyPrefix: account,
            IsMultiRegionTrail: fields.multiRegion ?? true,
            IncludeGlobalServiceEvents: true,
            IsOrganizationTrail: fields.organization ?? false,
            EnableLogFileValidation: true,
            ...(fields.cloudWatchLogs
              ? { CloudWatchLogsLogGroupArn: `arn:aws:logs:${REGION}:${account}:log-group:CloudTrail/alarms:*`, CloudWatchLogsRoleArn: `arn:aws:iam::${account}:role/CloudTrailToCloudWatchLogs` }
              : {}),
            TagsList: [{ Key: 'seeded-by', Value: 'countersign-sandbox' }],
          }),
        );
        if (fields.dataEvents) {
          await ct.send(new PutEventSelectorsCommand({ TrailName: name, EventSelectors: [{ ReadWriteType: 'All', IncludeManagementEvents: true, DataResources: [{ Type: 'AWS::S3::Object', Values: [`arn:aws:s3:::${bucket}/`] }] }] }));
        }
        const logging = fields.logging ?? true;
        if (logging) await ct.send(new StartLoggingCommand({ Name: name })); // by name: moto 5.2.1 fails StartLogging by ARN
        trails.push({ account, name, arn: created.TrailARN as string, logging, expected });
      } finally {
        ct.destroy();
      }
    };

    if (options.organizationTrail !== false) await seed(management, 'org-trail', 'organization-trail', { organization: true });
    await seed(management, 'management-events', 'retired');
    await seed(management, 's3-data-events', 'distinct-purpose', { dataEvents: true, multiRegion: false });
    await seed(management, 'stopped-trail', 'retired', { logging: false, multiRegion: false });
    await seed(management, 'aws-controltower-BaselineCloudTrail', 'control-tower');
    await seed(management, 'audit-copy', 'kept-by-parameter');
    await seed(management, 'orphaned-trail', 'retired', { bucket: orphanBucket, multiRegion: false });
    await s3.send(new DeleteBucketCommand({ Bucket: orphanBucket }));
    for (const member of organization.accounts) await seed(member.id, 'local-trail', 'retired');
    await seed(accountNamed(organization, 'sandbox-dev').id, 'alarms-trail', 'distinct-purpose', { cloudWatchLogs: true, multiRegion: false });
  } finally {
    s3.destroy();
  }
  context.say(`organization ${organization.organizationId}: management account ${management}; members ${organization.accounts.map((a) => `${a.name} ${a.id}`).join(', ')}`);
  for (const t of trails) context.say(`  trail ${t.name} in ${t.account}${t.logging ? '' : ' (not logging)'}: expect ${t.expected}`);
  return { account: management, organization, bucket, trails };
}

function checked(results: [boolean, string][]): ScenarioChecks {
  return { ok: results.every(([ok]) => ok), lines: results.map(([ok, what]) => `${ok ? 'ok    ' : 'FAILED'} ${what}`) };
}

export const retireDefaultTrails: Scenario<RetireDefaultTrailsState> = {
  kind: 'retire-default-trails',
  title: 'redundant CloudTrail trails across the organization, retired once the organization trail logs',
  shows: [
    'run from the management account over every account (accounts=all); members are read and changed through OrganizationAccountAccessRole',
    'the plan keeps the organization trail, Control Tower, data-event, CloudWatch Logs and kept trails, each with its reason',
    'stop logging → soak → re-check, snapshot, delete the duplicate and broken trails → verify they are gone and the organization trail logs',
  ],
  applying: 'stop logging → soak → re-check → snapshot → delete → verify',
  params: { accounts: 'all', soak: '3s', keep: 'audit-copy' },

  seed: (context) => seedTrailEstate(context),

  async checks(context: ScenarioContext, state: RetireDefaultTrailsState, final: RemediationStatus): Promise<ScenarioChecks> {
    const retired = state.trails.filter((t) => t.expected === 'retired');
    const kept = state.trails.filter((t) => t.expected !== 'retired');
    const deleted = (final.plan?.changes ?? []).filter((c) => c.action === 'delete-trail').map((c) => c.resource);
    const samePlan = deleted.length === retired.length && retired.every((t) => deleted.includes(t.arn));
    const reasons = kept.map((t) => final.plan?.leftAlone.find((l) => l.resource === t.arn)?.reason === t.expected);
    const gone = await Promise.all(retired.map(async (t) => (await trailState(context, t)) === undefined));
    const untouched = await Promise.all(kept.map(async (t) => (await trailState(context, t))?.logging === t.logging));
    const names = (list: SeededTrail[]) => list.map((t) => `${t.name}@${t.account}`).join(', ') || 'none';
    return checked([
      [final.outcome === 'completed', `outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`],
      [samePlan, `the plan deletes exactly the duplicate and broken trails: ${names(retired)}`],
      [reasons.every(Boolean), `the plan leaves alone, each with its reason: ${kept.map((t) => `${t.name} (${t.expected})`).join(', ')}`],
      [gone.every(Boolean), `gone (GetTrail in their accounts): ${names(retired.filter((_, i) => gone[i]))}`],
      [untouched.every(Boolean), `still there, logging as before: ${names(kept.filter((_, i) => untouched[i]))}`],
      [final.verification?.ok === true, `verified: ${(final.verification?.checks ?? []).map((c) => `${c.changeId} ${c.ok ? 'ok' : 'FAILED'}`).join(', ') || 'no checks'}`],
    ]);
  },
};
