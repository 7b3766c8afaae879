/**
 * retire-default-trails: the trail classification and the plan it produces, as pure functions over
 * realistic trail descriptions (GetTrail / GetTrailStatus / GetEventSelectors answers as AWS gives
 * them); then the activities against a STATEFUL fake CloudTrail (aws-sdk-client-mock).
 *
 * Why a fake and not moto: moto cannot produce what this kind must get right on AWS. It never
 * reports a delivery error, always answers HasCustomEventSelectors/HasInsightSelectors false, answers
 * GetInsightSelectors with nothing instead of InsightNotEnabledException, does not show a member
 * account the organization trail its management account owns (and lets a member create an
 * "organization trail"), and is lax about regions. The fake behaves like AWS on those points:
 *
 *   - a member's ListTrails includes the management account's organization trail;
 *   - a trail is found only in its home region (TrailNotFoundException elsewhere), and is changed
 *     only there (InvalidHomeRegionException elsewhere);
 *   - GetInsightSelectors throws InsightNotEnabledException for a trail without Insights;
 *   - GetTrailStatus reports LatestDeliveryError; S3 answers NotFound for a deleted bucket.
 *
 * The assertions are on the plan and on the fake's resulting state (what AWS would hold afterwards).
 */
import type { AdvancedEventSelector, EventSelector, Trail } from '@aws-sdk/client-cloudtrail';
import {
  CloudTrailClient,
  DeleteTrailCommand,
  GetEventSelectorsCommand,
  GetInsightSelectorsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  InsightNotEnabledException,
  InvalidHomeRegionException,
  ListTagsCommand,
  ListTrailsCommand,
  StartLoggingCommand,
  StopLoggingCommand,
  TrailNotFoundException,
} from '@aws-sdk/client-cloudtrail';
import { ListAccountsCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { createActivities } from '../../activities';
import { AccountClients, AwsClients } from '../../activities/aws/clients';
import type { AwsSettings } from '../../activities/aws/clients';
import { classifyAwsError } from '../../activities/aws/errors';
import type { ClassificationContext, ObservedTrail } from '../../activities/cloudtrail/trail-classification';
import { classifyTrail, findOrganizationTrail, managementCoverage, uniqueTrails } from '../../activities/cloudtrail/trail-classification';
import { configurationOf, readTrail, trailDrift } from '../../activities/cloudtrail/trail-observation';
import type { TrailSnapshot } from '../../activities/cloudtrail/trail-observation';
import { planTrailRetirement } from '../../activities/cloudtrail/trail-retirement-plan';
import type { Json } from '../../common/json';
import type { KindParams } from '../../common/kinds';
import type { Change, ChangeOutcome, KindPlan, Plan, VerifyResult } from '../../common/plan';
import type { EffectivePolicy } from '../../common/policy';
import type { PlanRequest } from '../../common/requests';

const MGMT = '111111111111';
const MEMBER = '222222222222';
const OTHER_MEMBER = '333333333333';
const ORG_ID = 'o-abcd1234ef';

const arnOf = (account: string, region: string, name: string) => `arn:aws:cloudtrail:${region}:${account}:trail/${name}`;

/** A trail as GetTrail returns it on AWS (console defaults: multi-region, global events, validation on). */
function awsTrail(account: string, name: string, fields: Partial<Trail> = {}): Trail {
  const region = fields.HomeRegion ?? 'us-east-1';
  return {
    Name: name,
    S3BucketName: `aws-cloudtrail-logs-${account}-1a2b3c4d`,
    IncludeGlobalServiceEvents: true,
    IsMultiRegionTrail: true,
    HomeRegion: region,
    TrailARN: arnOf(account, region, name),
    LogFileValidationEnabled: true,
    HasCustomEventSelectors: false,
    HasInsightSelectors: false,
    IsOrganizationTrail: false,
    ...fields,
  };
}

/** GetEventSelectors for a trail created without selectors: all read and write management events. */
const DEFAULT_SELECTORS: EventSelector[] = [{ ReadWriteType: 'All', IncludeManagementEvents: true, DataResources: [], ExcludeManagementEventSources: [] }];

interface Described {
  trail: Trail;
  logging?: boolean;
  deliveryError?: string;
  eventSelectors?: EventSelector[];
  advancedEventSelectors?: AdvancedEventSelector[];
  insights?: string[];
  bucketMissing?: boolean;
}

/** What readTrail makes of AWS's answers, built here from the same answers. */
function observed(d: Described, viewedFrom?: string): ObservedTrail {
  const arn = d.trail.TrailARN as string;
  const owner = arn.split(':')[4] as string;
  return {
    arn,
    name: d.trail.Name as string,
    homeRegion: d.trail.HomeRegion as string,
    viewedFrom: viewedFrom ?? owner,
    configuration: configurationOf(d.trail),
    // GetEventSelectors answers one kind or the other: advanced selectors, or basic ones (the default).
    selectors: { eventSelectors: d.eventSelectors ?? (d.advancedEventSelectors ? [] : DEFAULT_SELECTORS), advancedEventSelectors: d.advancedEventSelectors ?? [], insightTypes: d.insights ?? [] },
    health: {
      isLogging: d.logging ?? true,
      latestDeliveryTime: '2025-06-01T10:00:00.000Z',
      ...(d.deliveryError ? { latestDeliveryError: d.deliveryError } : {}),
      ...(d.logging === false ? { stopLoggingTime: '2025-03-01T00:00:00.000Z' } : {}),
      ...(d.bucketMissing !== undefined ? { bucketMissing: d.bucketMissing } : { bucketMissing: false }),
    },
  };
}

const ORG_TRAIL: Described = { trail: awsTrail(MGMT, 'org-trail', { IsOrganizationTrail: true, S3BucketName: 'org-cloudtrail-logs' }) };

function context(overrides: Partial<ClassificationContext> = {}): ClassificationContext {
  return { managementAccount: MGMT, organizationTrail: observed(ORG_TRAIL), keep: new Set(), protectedPatterns: [], ...overrides };
}

describe('trail classification', () => {
  it('never retires the organization trail, nor the organization trail as a member account sees it', () => {
    expect(classifyTrail(observed(ORG_TRAIL), context())).toMatchObject({ verdict: 'leave', reason: 'organization-trail', detail: expect.stringMatching(/healthy organization trail/) });
    // From a member, ListTrails shows the management account's ARN: never read, never touched.
    const memberView: ObservedTrail = { arn: ORG_TRAIL.trail.TrailARN as string, name: 'org-trail', homeRegion: 'us-east-1', viewedFrom: MEMBER };
    expect(classifyTrail(memberView, context())).toMatchObject({ verdict: 'leave', reason: 'organization-trail', detail: expect.stringMatching(`owned by the management account ${MGMT}`) });
    // Another organization trail of the management account, stopped: left alone, flagged for review.
    const stoppedOrg = observed({ trail: awsTrail(MGMT, 'old-org-trail', { IsOrganizationTrail: true }), logging: false });
    expect(classifyTrail(stoppedOrg, context())).toMatchObject({ verdict: 'leave', reason: 'organization-trail', review: true, detail: expect.stringMatching(/not logging/) });
    // A member "organization trail" (moto allows one; AWS does not): never touched either.
    expect(classifyTrail(observed({ trail: awsTrail(MEMBER, 'member-org', { IsOrganizationTrail: true }) }), context())).toMatchObject({ verdict: 'leave', reason: 'organization-trail' });
  });

  it('keeps one entry per trail ARN, preferring the copy in its home region over a shadow', () => {
    const home = { arn: arnOf(MGMT, 'us-east-1', 'org-trail'), name: 'org-trail', homeRegion: 'us-east-1' };
    const trails = uniqueTrails([
      { ...home, seenIn: 'eu-west-1' },
      { ...home, seenIn: 'us-east-1' },
      { ...home, seenIn: 'ap-southeast-2' },
      { arn: arnOf(MGMT, 'eu-west-1', 'local'), name: 'local', homeRegion: 'eu-west-1', seenIn: 'eu-west-1' },
    ]);
    expect(trails.map((t) => [t.arn, t.seenIn])).toEqual([
      [home.arn, 'us-east-1'],
      [arnOf(MGMT, 'eu-west-1', 'local'), 'eu-west-1'],
    ]);
  });

  it('never retires Control Tower trails, trails named in keep, or protected trails', () => {
    const ct = observed({ trail: awsTrail(MGMT, 'aws-controltower-BaselineCloudTrail') });
    expect(classifyTrail(ct, context())).toMatchObject({ verdict: 'leave', reason: 'control-tower' });
    const aft = observed({ trail: awsTrail(MEMBER, 'aws-aft-CustomizationsCloudTrail') });
    expect(classifyTrail(aft, context())).toMatchObject({ verdict: 'leave', reason: 'control-tower' });
    const kept = observed({ trail: awsTrail(MGMT, 'audit-copy') });
    expect(classifyTrail(kept, context({ keep: new Set(['audit-copy']) }))).toMatchObject({ verdict: 'leave', reason: 'kept-by-parameter' });
    const guarded = observed({ trail: awsTrail(MGMT, 'security-lake-feed') });
    expect(classifyTrail(guarded, context({ protectedPatterns: ['arn:aws:cloudtrail:*:*:trail/security-*'] }))).toMatchObject({
      verdict: 'leave',
      reason: 'protected',
      detail: 'matches arn:aws:cloudtrail:*:*:trail/security-*',
    });
  });

  it('keeps a trail with a purpose of its own and names it: data events, advanced data selectors, Insights, CloudWatch Logs, SNS', () => {
    const cases: [Described, RegExp][] = [
      [
        { trail: awsTrail(MGMT, 's3-data', { HasCustomEventSelectors: true }), eventSelectors: [{ ReadWriteType: 'All', IncludeManagementEvents: true, DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3:::payroll/'] }] }] },
        /^data events \(AWS::S3::Object\)/,
      ],
      [
        {
          trail: awsTrail(MGMT, 'lambda-data', { HasCustomEventSelectors: true }),
          advancedEventSelectors: [
            { Name: 'management', FieldSelectors: [{ Field: 'eventCategory', Equals: ['Management'] }] },
            { Name: 'lambda', FieldSelectors: [{ Field: 'eventCategory', Equals: ['Data'] }, { Field: 'resources.type', Equals: ['AWS::Lambda::Function'] }] },
          ],
        },
        /^data events \(advanced selector "lambda": AWS::Lambda::Function\)/,
      ],
      [{ trail: awsTrail(MEMBER, 'vpc-network', { HasCustomEventSelectors: true }), advancedEventSelectors: [{ Name: 'net', FieldSelectors: [{ Field: 'eventCategory', Equals: ['NetworkActivity'] }, { Field: 'eventSource', Equals: ['s3.amazonaws.com'] }] }] }, /^network activity events/],
      [{ trail: awsTrail(MGMT, 'insights', { HasInsightSelectors: true }), insights: ['ApiCallRateInsight', 'ApiErrorRateInsight'] }, /^Insights \(ApiCallRateInsight, ApiErrorRateInsight\)/],
      [
        { trail: awsTrail(MGMT, 'cis-alarms', { CloudWatchLogsLogGroupArn: `arn:aws:logs:us-east-1:${MGMT}:log-group:CloudTrail/cis:*`, CloudWatchLogsRoleArn: `arn:aws:iam::${MGMT}:role/CloudTrailToLogs` }) },
        /^CloudWatch Logs delivery to arn:aws:logs:.*metric filters and alarms/,
      ],
      [{ trail: awsTrail(MEMBER, 'notify', { SnsTopicName: 'trail-notify', SnsTopicARN: `arn:aws:sns:us-east-1:${MEMBER}:trail-notify` }) }, /^SNS notifications to arn:aws:sns:/],
    ];
    for (const [described, detail] of cases) {
      expect(classifyTrail(observed(described), context())).toEqual({ verdict: 'leave', reason: 'distinct-purpose', detail: expect.stringMatching(detail) });
    }
    // A purposeful trail that is also broken is kept, flagged for a human rather than deleted.
    const brokenData = observed({ trail: awsTrail(MGMT, 'data-broken'), eventSelectors: [{ IncludeManagementEvents: false, DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }] }], deliveryError: 'AccessDenied' });
    expect(classifyTrail(brokenData, context())).toMatchObject({ verdict: 'leave', reason: 'distinct-purpose', review: true, detail: expect.stringMatching(/also broken \(log delivery failing \(AccessDenied\)\)/) });
  });

  it('retires a trail recording only management events the organization trail already records', () => {
    expect(classifyTrail(observed({ trail: awsTrail(MGMT, 'management-events') }), context())).toEqual({
      verdict: 'retire',
      reason: 'duplicate',
      detail: `records read and write management events in every region, which the organization trail org-trail already records for account ${MGMT}`,
    });
    // The same with advanced selectors for management events only, and from a member, single-region.
    const advanced = observed({ trail: awsTrail(MEMBER, 'mgmt-adv', { IsMultiRegionTrail: false, HomeRegion: 'eu-west-1' }), advancedEventSelectors: [{ Name: 'Management events', FieldSelectors: [{ Field: 'eventCategory', Equals: ['Management'] }, { Field: 'readOnly', Equals: ['false'] }] }] });
    expect(classifyTrail(advanced, context())).toMatchObject({ verdict: 'retire', reason: 'duplicate', detail: expect.stringMatching(/^records write-only management events in eu-west-1/) });
  });

  it('keeps a management-events trail that records what the organization trail does not', () => {
    const readOnlyOrg = observed({ ...ORG_TRAIL, eventSelectors: [{ ReadWriteType: 'WriteOnly', IncludeManagementEvents: true }] });
    expect(classifyTrail(observed({ trail: awsTrail(MGMT, 'management-events') }), context({ organizationTrail: readOnlyOrg }))).toMatchObject({ verdict: 'leave', reason: 'not-covered' });
    const noKmsOrg = observed({ ...ORG_TRAIL, eventSelectors: [{ ReadWriteType: 'All', IncludeManagementEvents: true, ExcludeManagementEventSources: ['kms.amazonaws.com'] }] });
    expect(classifyTrail(observed({ trail: awsTrail(MGMT, 'with-kms') }), context({ organizationTrail: noKmsOrg }))).toMatchObject({ verdict: 'leave', reason: 'not-covered', detail: expect.stringMatching(/excluding kms.amazonaws.com/) });
    // ... and a trail that excludes the same source is covered.
    const noKms = observed({ trail: awsTrail(MGMT, 'no-kms'), eventSelectors: [{ ReadWriteType: 'All', IncludeManagementEvents: true, ExcludeManagementEventSources: ['kms.amazonaws.com'] }] });
    expect(classifyTrail(noKms, context({ organizationTrail: noKmsOrg }))).toMatchObject({ verdict: 'retire', reason: 'duplicate' });
  });

  it('retires a broken trail: stopped, delivery failing, or its bucket gone', () => {
    expect(classifyTrail(observed({ trail: awsTrail(MGMT, 'stopped'), logging: false }), context())).toEqual({ verdict: 'retire', reason: 'broken', detail: 'not logging (stopped 2025-03-01T00:00:00.000Z)' });
    expect(classifyTrail(observed({ trail: awsTrail(MEMBER, 'denied'), deliveryError: 'AccessDenied' }), context())).toEqual({ verdict: 'retire', reason: 'broken', detail: 'log delivery failing (AccessDenied)' });
    const gone = observed({ trail: awsTrail(MEMBER, 'orphan', { S3BucketName: 'deleted-bucket' }), deliveryError: 'NoSuchBucket', bucketMissing: true });
    expect(classifyTrail(gone, context())).toEqual({ verdict: 'retire', reason: 'broken', detail: 'log delivery failing (NoSuchBucket), its bucket deleted-bucket no longer exists' });
  });

  it('finds the healthy organization trail, or says what is wrong with each candidate', () => {
    const dup = observed({ trail: awsTrail(MGMT, 'management-events') });
    expect(findOrganizationTrail([dup, observed(ORG_TRAIL)], MGMT)).toEqual({ trail: observed(ORG_TRAIL) });
    expect(findOrganizationTrail([dup], MGMT)).toEqual({ problems: ['no trail of the management account is an organization trail'] });
    const failing = observed({ ...ORG_TRAIL, deliveryError: 'NoSuchBucket' });
    const stopped = observed({ trail: awsTrail(MGMT, 'org-2', { IsOrganizationTrail: true, IsMultiRegionTrail: false }), logging: false });
    expect(findOrganizationTrail([failing, stopped], MGMT)).toEqual({
      problems: [`${arnOf(MGMT, 'us-east-1', 'org-trail')}: its log delivery is failing (NoSuchBucket)`, `${arnOf(MGMT, 'us-east-1', 'org-2')}: it is single-region, it is not logging`],
    });
  });

  it('reads management coverage from basic and advanced selectors', () => {
    expect(managementCoverage({ eventSelectors: [], advancedEventSelectors: [], insightTypes: [] })).toEqual({ read: true, write: true, excludedSources: [], narrowed: false });
    expect(managementCoverage({ eventSelectors: [{ ReadWriteType: 'ReadOnly', IncludeManagementEvents: true }], advancedEventSelectors: [], insightTypes: [] })).toMatchObject({ read: true, write: false });
    expect(
      managementCoverage({
        eventSelectors: [],
        advancedEventSelectors: [{ FieldSelectors: [{ Field: 'eventCategory', Equals: ['Management'] }, { Field: 'eventSource', NotEquals: ['kms.amazonaws.com', 'rdsdata.amazonaws.com'] }] }],
        insightTypes: [],
      }),
    ).toEqual({ read: true, write: true, excludedSources: ['kms.amazonaws.com', 'rdsdata.amazonaws.com'], narrowed: false });
  });
});

describe('the retirement plan', () => {
  const reviewed = () => [
    {
      account: MGMT,
      trails: [
        observed(ORG_TRAIL),
        observed({ trail: awsTrail(MGMT, 'management-events') }),
        observed({ trail: awsTrail(MGMT, 'stopped'), logging: false }),
        observed({ trail: awsTrail(MGMT, 'aws-controltower-BaselineCloudTrail') }),
        observed({ trail: awsTrail(MGMT, 's3-data'), eventSelectors: [{ ReadWriteType: 'All', DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }] }] }),
      ],
    },
    {
      account: MEMBER,
      trails: [
        { arn: ORG_TRAIL.trail.TrailARN as string, name: 'org-trail', homeRegion: 'us-east-1', viewedFrom: MEMBER },
        observed({ trail: awsTrail(MEMBER, 'local', { IsMultiRegionTrail: false, HomeRegion: 'us-west-2' }) }),
        observed({ trail: awsTrail(MEMBER, 'local', { IsMultiRegionTrail: false, HomeRegion: 'eu-west-1' }) }),
      ],
    },
    { account: OTHER_MEMBER, trails: [{ arn: ORG_TRAIL.trail.TrailARN as string, name: 'org-trail', homeRegion: 'us-east-1', viewedFrom: OTHER_MEMBER }] },
  ];

  it('stops then deletes each retired trail in its home region, with a delete that depends on the stop and says it is irreversible', () => {
    const plan = planTrailRetirement(reviewed(), context());
    expect(plan.changes.map((c) => [c.id, c.stage, c.action, c.resource, c.reversible, c.destructive, c.dependsOn ?? []])).toEqual([
      [`stop-logging/${MGMT}/management-events`, 'stop', 'stop-logging', arnOf(MGMT, 'us-east-1', 'management-events'), true, false, []],
      [`stop-logging/${MEMBER}/us-west-2/local`, 'stop', 'stop-logging', arnOf(MEMBER, 'us-west-2', 'local'), true, false, []],
      [`stop-logging/${MEMBER}/eu-west-1/local`, 'stop', 'stop-logging', arnOf(MEMBER, 'eu-west-1', 'local'), true, false, []],
      [`delete-trail/${MGMT}/management-events`, 'delete', 'delete-trail', arnOf(MGMT, 'us-east-1', 'management-events'), false, true, [`stop-logging/${MGMT}/management-events`]],
      // Already not logging: nothing to stop, so its delete depends on nothing.
      [`delete-trail/${MGMT}/stopped`, 'delete', 'delete-trail', arnOf(MGMT, 'us-east-1', 'stopped'), false, true, []],
      [`delete-trail/${MEMBER}/us-west-2/local`, 'delete', 'delete-trail', arnOf(MEMBER, 'us-west-2', 'local'), false, true, [`stop-logging/${MEMBER}/us-west-2/local`]],
      [`delete-trail/${MEMBER}/eu-west-1/local`, 'delete', 'delete-trail', arnOf(MEMBER, 'eu-west-1', 'local'), false, true, [`stop-logging/${MEMBER}/eu-west-1/local`]],
    ]);
    const deleteChange = plan.changes.find((c) => c.id === `delete-trail/${MEMBER}/us-west-2/local`) as Change;
    expect(deleteChange.summary).toMatch(/IRREVERSIBLE/);
    expect(deleteChange.before).toMatchObject({ account: MEMBER, homeRegion: 'us-west-2', isLogging: false, verdict: 'duplicate', organizationTrail: { arn: ORG_TRAIL.trail.TrailARN } });
    expect((plan.changes[0] as Change).before).toMatchObject({ isLogging: true });
  });

  it('lists each trail left alone once, with its reason, the organization trail once for every account that sees it', () => {
    const plan = planTrailRetirement(reviewed(), context());
    expect(plan.leftAlone.map((l) => [l.resource, l.reason])).toEqual([
      [ORG_TRAIL.trail.TrailARN, 'organization-trail'],
      [arnOf(MGMT, 'us-east-1', 'aws-controltower-BaselineCloudTrail'), 'control-tower'],
      [arnOf(MGMT, 'us-east-1', 's3-data'), 'distinct-purpose'],
    ]);
    expect(plan.leftAlone[0]?.detail).toMatch(/seen from 2 member account\(s\) and the management account$/);
    expect(plan.counts).toEqual({ 'organization-trail': 1, duplicate: 3, broken: 1, 'control-tower': 1, 'distinct-purpose': 1 });
  });
});

describe('drift since approval', () => {
  it('names what changed in the configuration or the selectors, and nothing when nothing did', () => {
    const approved = observed({ trail: awsTrail(MGMT, 'management-events') }) as Required<ObservedTrail>;
    expect(trailDrift(approved, approved)).toBeUndefined();
    const dataAdded = { ...approved, selectors: { ...approved.selectors, eventSelectors: [{ ReadWriteType: 'All' as const, DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }] }] } };
    expect(trailDrift(approved, dataAdded)).toBe('its event selectors changed');
    const moved = { ...approved, configuration: { ...approved.configuration, s3BucketName: 'elsewhere', snsTopicArn: 'arn:aws:sns:us-east-1:1:t' } };
    expect(trailDrift(approved, moved)).toBe(`s3BucketName "aws-cloudtrail-logs-${MGMT}-1a2b3c4d" → "elsewhere"; snsTopicArn null → "arn:aws:sns:us-east-1:1:t"`);
  });
});

// ---------------------------------------------------------------------------------------------------
// The activities against a fake CloudTrail that behaves like AWS where moto does not.

interface FakeTrail extends Described {
  account: string;
}

class FakeAws {
  trails: FakeTrail[] = [];
  buckets = new Set<string>(['org-cloudtrail-logs']);
  throttleStatus = 0;

  add(account: string, d: Described): this {
    this.trails.push({ account, logging: true, ...d });
    if (d.trail.S3BucketName && !d.bucketMissing) this.buckets.add(d.trail.S3BucketName);
    return this;
  }

  find(account: string, region: string, name: string | undefined, mutation: boolean): FakeTrail {
    const own = this.trails.filter((t) => t.account === account && (t.trail.TrailARN === name || t.trail.Name === name));
    const here = own.find((t) => t.trail.HomeRegion === region);
    if (here) return here;
    // A trail is changed only in its home region; outside it, AWS does not find it by name.
    if (own.length > 0 && mutation) throw new InvalidHomeRegionException({ message: `trail ${name} can only be changed in its home region ${own[0]?.trail.HomeRegion}`, $metadata: {} });
    throw new TrailNotFoundException({ message: `Unknown trail: ${name} for the user: ${account}`, $metadata: {} });
  }
}

/** The account a mocked call acts in (encoded in its access key) and its region. */
async function callerOf(getClient: () => unknown): Promise<{ account: string; region: string }> {
  const config = (getClient() as { config: { region: () => Promise<string>; credentials: () => Promise<{ accessKeyId: string }> } }).config;
  return { account: (await config.credentials()).accessKeyId.slice('AKIA'.length), region: await config.region() };
}

function installFake(fake: FakeAws) {
  const ct = mockClient(CloudTrailClient);
  const s3 = mockClient(S3Client);
  const orgs = mockClient(OrganizationsClient);
  ct.on(ListTrailsCommand).callsFake(async (_input, getClient) => {
    const { account } = await callerOf(getClient);
    // Every trail of the account, from any region, plus the organization trail a member sees.
    const visible = fake.trails.filter((t) => t.account === account || (account !== MGMT && t.account === MGMT && t.trail.IsOrganizationTrail));
    return { Trails: visible.map((t) => ({ TrailARN: t.trail.TrailARN, Name: t.trail.Name, HomeRegion: t.trail.HomeRegion })) };
  });
  ct.on(GetTrailCommand).callsFake(async (input: { Name: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    return { Trail: fake.find(account, region, input.Name, false).trail };
  });
  ct.on(GetTrailStatusCommand).callsFake(async (input: { Name: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    if (fake.throttleStatus > 0) {
      fake.throttleStatus--;
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400, attempts: 3 } });
    }
    const t = fake.find(account, region, input.Name, false);
    return { IsLogging: t.logging, LatestDeliveryTime: new Date('2025-06-01T10:00:00Z'), ...(t.deliveryError ? { LatestDeliveryError: t.deliveryError } : {}) };
  });
  ct.on(GetEventSelectorsCommand).callsFake(async (input: { TrailName: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    const t = fake.find(account, region, input.TrailName, false);
    return t.advancedEventSelectors ? { TrailARN: t.trail.TrailARN, AdvancedEventSelectors: t.advancedEventSelectors } : { TrailARN: t.trail.TrailARN, EventSelectors: t.eventSelectors ?? DEFAULT_SELECTORS };
  });
  ct.on(GetInsightSelectorsCommand).callsFake(async (input: { TrailName: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    const t = fake.find(account, region, input.TrailName, false);
    if (!t.insights?.length) throw new InsightNotEnabledException({ message: `Trail ${t.trail.TrailARN} does not have Insights enabled`, $metadata: {} });
    return { TrailARN: t.trail.TrailARN, InsightSelectors: t.insights.map((InsightType) => ({ InsightType })) };
  });
  ct.on(ListTagsCommand).callsFake(async (input: { ResourceIdList: string[] }, getClient) => {
    const { account, region } = await callerOf(getClient);
    const t = fake.find(account, region, input.ResourceIdList[0], false);
    return { ResourceTagList: [{ ResourceId: t.trail.TrailARN, TagsList: [{ Key: 'owner', Value: 'platform' }] }] };
  });
  ct.on(StopLoggingCommand).callsFake(async (input: { Name: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    fake.find(account, region, input.Name, true).logging = false;
    return {};
  });
  ct.on(StartLoggingCommand).callsFake(async (input: { Name: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    fake.find(account, region, input.Name, true).logging = true;
    return {};
  });
  ct.on(DeleteTrailCommand).callsFake(async (input: { Name: string }, getClient) => {
    const { account, region } = await callerOf(getClient);
    const t = fake.find(account, region, input.Name, true);
    fake.trails = fake.trails.filter((x) => x !== t);
    return {};
  });
  s3.on(HeadBucketCommand).callsFake(async (input: { Bucket: string }) => {
    if (fake.buckets.has(input.Bucket)) return {};
    throw Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
  });
  orgs.on(ListAccountsCommand).resolves({
    Accounts: [
      { Id: MGMT, Status: 'ACTIVE' },
      { Id: MEMBER, Status: 'ACTIVE' },
      { Id: OTHER_MEMBER, Status: 'SUSPENDED' },
    ],
  });
  return { ct, s3, orgs, restore: () => [ct, s3, orgs].forEach((m) => m.restore()) };
}

const SETTINGS: AwsSettings = { region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' };

/** Real clients (mocked at send), one credential per account so the fake knows who calls. */
function awsFor(settings: AwsSettings = SETTINGS): AwsClients {
  const aws = new AwsClients(settings);
  const sets = new Map<string, AccountClients>();
  jest.spyOn(aws, 'callerIdentity').mockResolvedValue({ account: MGMT, arn: `arn:aws:iam::${MGMT}:role/countersign-worker`, userId: 'AROAEXAMPLE' });
  jest.spyOn(aws, 'forAccount').mockImplementation(async ({ account }) => {
    let clients = sets.get(account);
    if (!clients) {
      clients = new AccountClients(settings, { account }, async () => ({ accessKeyId: `AKIA${account}`, secretAccessKey: 'fake' }));
      jest.spyOn(clients, 'identity').mockResolvedValue({ account, arn: `arn:aws:sts::${account}:assumed-role/OrganizationAccountAccessRole/countersign.test`, userId: 'AROA:countersign.test' });
      sets.set(account, clients);
    }
    return clients;
  });
  return aws;
}

/** A plan request as the workflow sends it: raw parameter strings, which the engine's guard types. */
function planRequest(params: Record<string, string>): PlanRequest<KindParams<'retire-default-trails'>> {
  return {
    role: 'plan',
    kind: 'retire-default-trails',
    workflowId: `retire-default-trails/${MGMT}`,
    account: MGMT,
    region: 'us-east-1',
    params: params as unknown as KindParams<'retire-default-trails'>,
    requestedBy: 'riley.operator',
    policy: { kind: 'retire-default-trails', source: 'test', approvers: ['dana'], quorum: 1, approvalTimeout: '1h', protectedPrincipals: [], maxChanges: 200 } as unknown as EffectivePolicy,
    target: { account: MGMT, region: 'us-east-1', organizationId: ORG_ID, managementAccount: MGMT, workerArn: `arn:aws:iam::${MGMT}:role/countersign-worker`, actingArn: `arn:aws:iam::${MGMT}:role/countersign-worker`, selfPrincipals: [] },
    protectedPrincipals: [],
  };
}

const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** Run an activity as the worker would: in an activity context (heartbeats, logger, attempt number). */
const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A, attempt = 1): Promise<R> => new MockActivityEnvironment({ attempt }, { logger: quiet }).run(fn, arg);

describe('retire-default-trails activities (fake CloudTrail that behaves like AWS)', () => {
  let fake: FakeAws;
  let mocks: ReturnType<typeof installFake>;

  beforeEach(() => {
    fake = new FakeAws()
      .add(MGMT, ORG_TRAIL)
      .add(MGMT, { trail: awsTrail(MGMT, 'management-events') })
      .add(MGMT, { trail: awsTrail(MGMT, 'insights', { HasInsightSelectors: true }), insights: ['ApiCallRateInsight'] })
      .add(MEMBER, { trail: awsTrail(MEMBER, 'regional', { IsMultiRegionTrail: false, HomeRegion: 'eu-west-1' }) })
      .add(MEMBER, { trail: awsTrail(MEMBER, 'orphaned', { S3BucketName: 'deleted-long-ago' }), deliveryError: 'NoSuchBucket', bucketMissing: true });
    mocks = installFake(fake);
  });
  afterEach(() => {
    mocks.restore();
    jest.restoreAllMocks();
  });

  it("reads each trail in its home region, treats InsightNotEnabledException as no Insights, and leaves the member's view of the organization trail alone", async () => {
    const activities = createActivities({ aws: awsFor() });
    const plan = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: 'all' }))) as unknown as Plan;
    expect(plan.changes.map((c) => c.id)).toEqual([
      `stop-logging/${MGMT}/management-events`,
      `stop-logging/${MEMBER}/regional`,
      `stop-logging/${MEMBER}/orphaned`,
      `delete-trail/${MGMT}/management-events`,
      `delete-trail/${MEMBER}/regional`,
      `delete-trail/${MEMBER}/orphaned`,
    ]);
    expect(plan.changes.find((c) => c.id === `delete-trail/${MEMBER}/orphaned`)?.before).toMatchObject({ verdict: 'broken', why: 'log delivery failing (NoSuchBucket), its bucket deleted-long-ago no longer exists' });
    expect(plan.changes.find((c) => c.id === `delete-trail/${MEMBER}/regional`)?.before).toMatchObject({ homeRegion: 'eu-west-1', verdict: 'duplicate' });
    // The organization trail once (the member sees it too); Insights named; the suspended account not reviewed.
    expect(plan.leftAlone).toEqual([
      { resource: ORG_TRAIL.trail.TrailARN, reason: 'organization-trail', detail: expect.stringMatching(/seen from 1 member account\(s\) and the management account$/) },
      { resource: arnOf(MGMT, 'us-east-1', 'insights'), reason: 'distinct-purpose', detail: 'Insights (ApiCallRateInsight)' },
    ]);
    expect(plan.stages).toEqual([expect.objectContaining({ name: 'stop', concurrency: 1 }), expect.objectContaining({ name: 'delete', concurrency: 1, soakBefore: '7d' })]);
  });

  it('fails the plan, changing nothing, without a healthy organization trail, and names the org-trail kind', async () => {
    fake.trails.find((t) => t.trail.Name === 'org-trail')!.deliveryError = 'AccessDenied';
    const activities = createActivities({ aws: awsFor() });
    const failure = await run(activities.planDefaultTrailRetirement, planRequest({ accounts: 'all' })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as ApplicationFailure).message).toMatch(/no healthy organization trail logs in the management account 111111111111 \(.*its log delivery is failing \(AccessDenied\)\).*org-trail/);
    expect(fake.trails.every((t) => t.logging)).toBe(true);
  });

  it('refuses an account that is not in the organization, or not active', async () => {
    const activities = createActivities({ aws: awsFor() });
    await expect(run(activities.planDefaultTrailRetirement, planRequest({ accounts: '999999999999' }))).rejects.toThrow(`account 999999999999 is not in organization ${ORG_ID}`);
    await expect(run(activities.planDefaultTrailRetirement, planRequest({ accounts: OTHER_MEMBER }))).rejects.toThrow(`account ${OTHER_MEMBER} is SUSPENDED`);
  });

  it('classifies throttling as retryable: the plan activity fails for Temporal to retry later', async () => {
    fake.throttleStatus = 1;
    const activities = createActivities({ aws: awsFor() });
    const failure = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: 'all' })).catch((e: unknown) => e)) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe('AWS.ThrottlingException');
    expect(failure.nonRetryable).toBe(false);
    // The retry succeeds once CloudTrail stops throttling.
    await expect(run(activities.planDefaultTrailRetirement, planRequest({ accounts: 'all' }))).resolves.toMatchObject({ changes: expect.any(Array) });
  });

  it('routes every call to the home region: from any other region AWS answers TrailNotFound (reads) or InvalidHomeRegion (changes)', async () => {
    const aws = awsFor();
    const member = await aws.forAccount({ account: MEMBER, workflowId: 'w' });
    const listed = { arn: arnOf(MEMBER, 'eu-west-1', 'regional'), name: 'regional', homeRegion: 'eu-west-1' };
    // What the fake answers outside the home region, and how those answers are classified: permanent, never retried.
    const fromUsEast = member.cloudtrail('us-east-1');
    const notFound = await fromUsEast.send(new GetTrailCommand({ Name: listed.arn })).catch((e: unknown) => e);
    const wrongRegion = await fromUsEast.send(new StopLoggingCommand({ Name: listed.arn })).catch((e: unknown) => e);
    expect(classifyAwsError(notFound)).toMatchObject({ name: 'TrailNotFoundException', retryable: false });
    expect(classifyAwsError(wrongRegion)).toMatchObject({ name: 'InvalidHomeRegionException', retryable: false });
    // readTrail goes to eu-west-1, though the worker's region is us-east-1.
    const reading = await readTrail(member, listed, MEMBER);
    expect(reading?.observed).toMatchObject({ homeRegion: 'eu-west-1', configuration: { isMultiRegionTrail: false }, health: { isLogging: true }, selectors: { insightTypes: [] } });

    // And the changes: stop, snapshot, delete, all in eu-west-1.
    const activities = createActivities({ aws });
    const plan = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: MEMBER }))) as unknown as Plan;
    const stop = plan.changes.find((c) => c.id === `stop-logging/${MEMBER}/regional`) as Change;
    const del = plan.changes.find((c) => c.id === `delete-trail/${MEMBER}/regional`) as Change;
    const base = { workflowId: 'w', account: MGMT, region: 'us-east-1', protectedPrincipals: [] };
    expect(await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop })).toMatchObject({ status: 'applied' });
    expect(fake.trails.find((t) => t.trail.Name === 'regional')?.logging).toBe(false);
    const snapshot = (await run(activities.snapshotRetiringTrail, { role: 'snapshot', ...base, change: del })) as unknown as TrailSnapshot;
    expect(snapshot).toMatchObject({ account: MEMBER, homeRegion: 'eu-west-1', isLogging: false, eventSelectorKind: 'basic', tags: [{ Key: 'owner', Value: 'platform' }], insightSelectors: [], trail: { S3BucketName: expect.any(String), IsMultiRegionTrail: false } });
    const outcome = (await run(activities.deleteRetiringTrail, { role: 'apply', ...base, change: del, snapshot: snapshot as unknown as Json })) as ChangeOutcome;
    expect(outcome).toMatchObject({ status: 'applied' });
    expect(fake.trails.find((t) => t.trail.Name === 'regional')).toBeUndefined();
    // A retry of the delete finds nothing to do.
    expect(await run(activities.deleteRetiringTrail, { role: 'apply', ...base, change: del, snapshot: snapshot as unknown as Json })).toMatchObject({ status: 'already-done' });
    const verified = (await run(activities.verifyDefaultTrailRetirement, { role: 'verify', workflowId: 'w', account: MGMT, region: 'us-east-1', applied: [{ change: del, result: { changeId: del.id, status: 'applied', at: '' } }] })) as VerifyResult;
    expect(verified).toEqual({ ok: true, checks: [expect.objectContaining({ changeId: del.id, ok: true }), expect.objectContaining({ changeId: 'organization-trail', ok: true })] });
  });

  it('refuses to delete on drift: logging restarted, or selectors changed after approval', async () => {
    const activities = createActivities({ aws: awsFor() });
    const plan = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: MGMT }))) as KindPlan;
    const stop = plan.changes.find((c) => c.action === 'stop-logging') as Change;
    const del = plan.changes.find((c) => c.action === 'delete-trail') as Change;
    const base = { workflowId: 'w', account: MGMT, region: 'us-east-1', protectedPrincipals: [] };
    const trail = fake.trails.find((t) => t.trail.Name === 'management-events') as FakeTrail;
    await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop });
    const snapshot = (await run(activities.snapshotRetiringTrail, { role: 'snapshot', ...base, change: del })) as Json;

    trail.logging = true; // someone started it again during the soak
    expect(await run(activities.deleteRetiringTrail, { role: 'apply', ...base, change: del, snapshot })).toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/logging again/) });
    trail.logging = false;
    trail.eventSelectors = [{ ReadWriteType: 'All', IncludeManagementEvents: true, DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }] }];
    expect(await run(activities.deleteRetiringTrail, { role: 'apply', ...base, change: del, snapshot })).toMatchObject({ status: 'left-alone', detail: expect.stringMatching(/event selectors changed/) });
    expect(fake.trails).toContain(trail);
  });

  it('a rollback restarts logging on a trail this run stopped, and leaves one it found stopped', async () => {
    const activities = createActivities({ aws: awsFor() });
    const plan = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: MGMT }))) as KindPlan;
    const stop = plan.changes.find((c) => c.action === 'stop-logging') as Change;
    const base = { workflowId: 'w', account: MGMT, region: 'us-east-1', protectedPrincipals: [] };
    const trail = fake.trails.find((t) => t.trail.Name === 'management-events') as FakeTrail;
    const stopped = (await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop })) as ChangeOutcome;
    expect(trail.logging).toBe(false);
    const restarted = await run(activities.restartRetiringTrailLogging, { role: 'rollback', ...base, change: stop, result: { changeId: stop.id, status: 'applied', at: '', observed: stopped.observed } });
    expect(restarted).toMatchObject({ status: 'applied' });
    expect(trail.logging).toBe(true);

    // Stopped by someone else before this run reached it: already done, and a rollback does not start it.
    trail.logging = false;
    const found = (await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop })) as ChangeOutcome;
    expect(found.status).toBe('already-done');
    await run(activities.restartRetiringTrailLogging, { role: 'rollback', ...base, change: stop, result: { changeId: stop.id, status: 'already-done', at: '' } });
    expect(trail.logging).toBe(false);
    // But a retry of the stop whose first attempt went through reports it as this run's (attempt 2).
    expect(await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop }, 2)).toMatchObject({ status: 'applied' });
  });

  it('names the trail by ARN for StopLogging and DeleteTrail on AWS, and by name only under moto (where the ARN fails or is ignored)', async () => {
    for (const [settings, expected] of [
      [SETTINGS, arnOf(MGMT, 'us-east-1', 'management-events')],
      [{ ...SETTINGS, emulator: 'moto' as const, endpoint: 'http://127.0.0.1:1' }, 'management-events'],
    ] as const) {
      const activities = createActivities({ aws: awsFor(settings) });
      const plan = (await run(activities.planDefaultTrailRetirement, planRequest({ accounts: MGMT }))) as KindPlan;
      const stop = plan.changes.find((c) => c.action === 'stop-logging') as Change;
      const del = plan.changes.find((c) => c.action === 'delete-trail') as Change;
      const base = { workflowId: 'w', account: MGMT, region: 'us-east-1', protectedPrincipals: [] };
      await run(activities.stopRetiringTrailLogging, { role: 'apply', ...base, change: stop });
      const snapshot = (await run(activities.snapshotRetiringTrail, { role: 'snapshot', ...base, change: del })) as Json;
      expect(await run(activities.deleteRetiringTrail, { role: 'apply', ...base, change: del, snapshot })).toMatchObject({ status: 'applied' });
      expect(mocks.ct.commandCalls(StopLoggingCommand).at(-1)?.args[0].input).toEqual({ Name: expected });
      expect(mocks.ct.commandCalls(DeleteTrailCommand).at(-1)?.args[0].input).toEqual({ Name: expected });
      fake.add(MGMT, { trail: awsTrail(MGMT, 'management-events') });
    }
  });
});
