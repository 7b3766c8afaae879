/**
 * Reading CloudTrail trails for retirement: the account's trails, each trail's configuration,
 * selectors and status in its home region, and the full snapshot kept before a trail is deleted.
 *
 * CloudTrail answers per region. A trail is changed and fully described only in its home region
 * (elsewhere a multi-region trail is a read-only "shadow" copy, and its status is that region's);
 * every call here goes to the home region and names the trail by ARN, which is unambiguous across
 * regions and accounts.
 */
import type { CloudTrailClient, EventSelector, AdvancedEventSelector, Trail } from '@aws-sdk/client-cloudtrail';
import {
  GetEventSelectorsCommand,
  GetInsightSelectorsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  ListTagsCommand,
  paginateListTrails,
} from '@aws-sdk/client-cloudtrail';
import type { S3Client } from '@aws-sdk/client-s3';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { Json } from '../../common/json';
import { canonicalJson } from '../../common/digest';
import { classifyAwsError, isAwsError } from '../aws/errors';
import type { ListedTrail, ObservedTrail, TrailConfiguration, TrailHealth, TrailSelectors } from './trail-classification';
import { ownerOf, parseTrailArn, uniqueTrails } from './trail-classification';

/** The clients of one account (activities/aws/clients.ts AccountClients), by region. */
export interface TrailClients {
  cloudtrail(region?: string): CloudTrailClient;
  s3(region?: string): S3Client;
}

const toJson = (value: unknown): Json => JSON.parse(JSON.stringify(value ?? null)) as Json;
const isoOf = (d: Date | string | undefined): string | undefined => (d === undefined ? undefined : d instanceof Date ? d.toISOString() : d || undefined);

/**
 * Every trail of the account, once each. ListTrails returns the account's trails with their home
 * regions (and, in a member account, the organization trail its management account owns).
 */
export async function listAccountTrails(clients: TrailClients, region?: string): Promise<ListedTrail[]> {
  const listed: (ListedTrail & { seenIn?: string })[] = [];
  for await (const page of paginateListTrails({ client: clients.cloudtrail(region) }, {})) {
    for (const t of page.Trails ?? []) {
      if (!t.TrailARN) continue;
      const fromArn = parseTrailArn(t.TrailARN);
      // The region in a trail's ARN is its home region: the fallback if HomeRegion is ever absent.
      const homeRegion = t.HomeRegion ?? fromArn?.region;
      const name = t.Name ?? fromArn?.name;
      if (!homeRegion || !name) continue;
      listed.push({ arn: t.TrailARN, name, homeRegion });
    }
  }
  return uniqueTrails(listed);
}

export function configurationOf(trail: Trail): TrailConfiguration {
  return {
    ...(trail.S3BucketName ? { s3BucketName: trail.S3BucketName } : {}),
    ...(trail.S3KeyPrefix ? { s3KeyPrefix: trail.S3KeyPrefix } : {}),
    ...(trail.SnsTopicARN ? { snsTopicArn: trail.SnsTopicARN } : {}),
    includeGlobalServiceEvents: trail.IncludeGlobalServiceEvents === true,
    isMultiRegionTrail: trail.IsMultiRegionTrail === true,
    isOrganizationTrail: trail.IsOrganizationTrail === true,
    logFileValidationEnabled: trail.LogFileValidationEnabled === true,
    ...(trail.KmsKeyId ? { kmsKeyId: trail.KmsKeyId } : {}),
    ...(trail.CloudWatchLogsLogGroupArn ? { cloudWatchLogsLogGroupArn: trail.CloudWatchLogsLogGroupArn } : {}),
    ...(trail.CloudWatchLogsRoleArn ? { cloudWatchLogsRoleArn: trail.CloudWatchLogsRoleArn } : {}),
  };
}

/**
 * Does the bucket still exist? Only a definite "no such bucket" counts: a 403 (the bucket exists but
 * this principal may not list it, often a log-archive account's bucket) or a redirect to another
 * region is not evidence of anything. Throttling and 5xx are left to the activity's retries.
 */
async function bucketMissing(s3: S3Client, bucket: string): Promise<boolean | undefined> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return false;
  } catch (err) {
    if (isAwsError(err, 'NotFound', 'NoSuchBucket')) return true;
    if (classifyAwsError(err).retryable) throw err;
    return undefined;
  }
}

/** Insights types; AWS answers InsightNotEnabledException for a trail without any (an emulator may answer empty). */
async function insightTypesOf(ct: CloudTrailClient, arn: string): Promise<string[]> {
  try {
    const got = await ct.send(new GetInsightSelectorsCommand({ TrailName: arn }));
    return (got.InsightSelectors ?? []).flatMap((s) => (s.InsightType ? [s.InsightType] : []));
  } catch (err) {
    if (isAwsError(err, 'InsightNotEnabledException')) return [];
    throw err;
  }
}

/** Everything read about one trail in its home region: the raw answers (for the snapshot) and the observation. */
export interface TrailReading {
  observed: ObservedTrail & Required<Pick<ObservedTrail, 'configuration' | 'selectors' | 'health'>>;
  trail: Trail;
  eventSelectors: EventSelector[];
  advancedEventSelectors: AdvancedEventSelector[];
}

/**
 * Read a trail the account owns, in its home region: configuration, event and Insights selectors
 * (GetEventSelectors, because DescribeTrails' HasCustomEventSelectors is not reliable everywhere),
 * status, and whether its bucket is gone. Undefined when the trail no longer exists.
 */
export async function readTrail(clients: TrailClients, listed: ListedTrail, viewedFrom: string): Promise<TrailReading | undefined> {
  const ct = clients.cloudtrail(listed.homeRegion);
  try {
    const got = await ct.send(new GetTrailCommand({ Name: listed.arn }));
    const trail = got.Trail;
    if (!trail) return undefined;
    const status = await ct.send(new GetTrailStatusCommand({ Name: listed.arn }));
    const selected = await ct.send(new GetEventSelectorsCommand({ TrailName: listed.arn }));
    const insightTypes = await insightTypesOf(ct, listed.arn);
    const configuration = configurationOf(trail);
    const missing = configuration.s3BucketName ? await bucketMissing(clients.s3(listed.homeRegion), configuration.s3BucketName) : undefined;
    const eventSelectors = toJson(selected.EventSelectors ?? []) as unknown as EventSelector[];
    const advancedEventSelectors = toJson(selected.AdvancedEventSelectors ?? []) as unknown as AdvancedEventSelector[];
    const health: TrailHealth = {
      isLogging: status.IsLogging === true,
      ...(isoOf(status.LatestDeliveryTime) ? { latestDeliveryTime: isoOf(status.LatestDeliveryTime) } : {}),
      ...(status.LatestDeliveryError ? { latestDeliveryError: status.LatestDeliveryError } : {}),
      ...(status.LatestDigestDeliveryError ? { latestDigestDeliveryError: status.LatestDigestDeliveryError } : {}),
      ...(isoOf(status.StartLoggingTime) ? { startLoggingTime: isoOf(status.StartLoggingTime) } : {}),
      ...(isoOf(status.StopLoggingTime) ? { stopLoggingTime: isoOf(status.StopLoggingTime) } : {}),
      ...(missing !== undefined ? { bucketMissing: missing } : {}),
    };
    const selectors: TrailSelectors = { eventSelectors, advancedEventSelectors, insightTypes };
    return { observed: { ...listed, viewedFrom, configuration, selectors, health }, trail, eventSelectors, advancedEventSelectors };
  } catch (err) {
    if (isAwsError(err, 'TrailNotFoundException')) return undefined;
    throw err;
  }
}

/**
 * A trail as the account sees it: read in full when the account owns it; a trail another account
 * owns (the organization trail, from a member) is never read or touched from here.
 */
export async function observeTrail(clients: TrailClients, listed: ListedTrail, viewedFrom: string): Promise<ObservedTrail | undefined> {
  if (ownerOf(listed) !== viewedFrom) return { ...listed, viewedFrom };
  return (await readTrail(clients, listed, viewedFrom))?.observed;
}

/** True while GetTrail (home region, by ARN) still finds the trail. */
export async function trailExists(clients: TrailClients, listed: ListedTrail): Promise<boolean> {
  try {
    await clients.cloudtrail(listed.homeRegion).send(new GetTrailCommand({ Name: listed.arn }));
    return true;
  } catch (err) {
    if (isAwsError(err, 'TrailNotFoundException')) return false;
    throw err;
  }
}

/** Everything needed to recreate a deleted trail, as it lands in history before the delete. */
export interface TrailSnapshot {
  capturedAt: string;
  capturedBy: string;
  account: string;
  arn: string;
  name: string;
  homeRegion: string;
  /** GetTrail's Trail in full: bucket, prefix, SNS topic, global events, multi-region, organization, validation, KMS, CloudWatch Logs. */
  trail: Json;
  /** Which kind of event selectors the trail used (they are exclusive), and both lists as read. */
  eventSelectorKind: 'basic' | 'advanced' | 'default';
  eventSelectors: Json;
  advancedEventSelectors: Json;
  insightSelectors: string[];
  tags: { Key: string; Value: string }[];
  isLogging: boolean;
  status: Json;
}

export async function snapshotTrail(clients: TrailClients, listed: ListedTrail, account: string, capturedBy: string, at: Date): Promise<TrailSnapshot | undefined> {
  const reading = await readTrail(clients, listed, account);
  if (!reading) return undefined;
  let tags: { Key: string; Value: string }[] = [];
  try {
    const listedTags = await clients.cloudtrail(listed.homeRegion).send(new ListTagsCommand({ ResourceIdList: [listed.arn] }));
    tags = (listedTags.ResourceTagList?.find((r) => r.ResourceId === listed.arn) ?? listedTags.ResourceTagList?.[0])?.TagsList?.map((t) => ({ Key: t.Key ?? '', Value: t.Value ?? '' })) ?? [];
  } catch (err) {
    if (isAwsError(err, 'TrailNotFoundException', 'ResourceNotFoundException')) return undefined;
    throw err;
  }
  const { observed } = reading;
  return {
    capturedAt: at.toISOString(),
    capturedBy,
    account,
    arn: listed.arn,
    name: listed.name,
    homeRegion: listed.homeRegion,
    trail: toJson(reading.trail),
    eventSelectorKind: reading.advancedEventSelectors.length > 0 ? 'advanced' : reading.eventSelectors.length > 0 ? 'basic' : 'default',
    eventSelectors: toJson(reading.eventSelectors),
    advancedEventSelectors: toJson(reading.advancedEventSelectors),
    insightSelectors: observed.selectors.insightTypes,
    tags,
    isLogging: observed.health.isLogging,
    status: toJson(observed.health),
  };
}

/**
 * How the approved trail differs from the trail as read now, in words; undefined when it does not.
 * Compared: what it records (selectors, Insights) and where and how it delivers (configuration).
 */
export function trailDrift(approved: { configuration: TrailConfiguration; selectors: TrailSelectors }, live: { configuration: TrailConfiguration; selectors: TrailSelectors }): string | undefined {
  const changed: string[] = [];
  const a = approved.configuration as unknown as Record<string, unknown>;
  const b = live.configuration as unknown as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (canonicalJson(a[key]) !== canonicalJson(b[key])) changed.push(`${key} ${JSON.stringify(a[key] ?? null)} → ${JSON.stringify(b[key] ?? null)}`);
  }
  if (canonicalJson(approved.selectors.eventSelectors) !== canonicalJson(live.selectors.eventSelectors)) changed.push('its event selectors changed');
  if (canonicalJson(approved.selectors.advancedEventSelectors) !== canonicalJson(live.selectors.advancedEventSelectors)) changed.push('its advanced event selectors changed');
  if (canonicalJson([...approved.selectors.insightTypes].sort()) !== canonicalJson([...live.selectors.insightTypes].sort())) changed.push('its Insights selectors changed');
  return changed.length ? changed.join('; ') : undefined;
}
