/**
 * Which CloudTrail trails a healthy organization trail makes redundant, as pure functions over what
 * was read about each trail (activities/cloudtrail/trail-observation.ts does the reading).
 *
 * A trail is never retired when it is the organization trail (or the organization trail as a member
 * account sees it), a Control Tower trail, named in `keep`, or protected by policy. It is kept when it
 * has a purpose of its own: data or network-activity events, Insights, CloudWatch Logs delivery (metric
 * filters and alarms read it), SNS notifications. Otherwise it is retired when it is broken (not
 * logging, delivery failing, its bucket gone) or when it records only management events that the
 * organization trail already records for its account.
 */
import type { AdvancedEventSelector, EventSelector } from '@aws-sdk/client-cloudtrail';
import { protectingPattern } from '../../common/policy';

/** A trail as ListTrails names it: its ARN, name and home region (the only region that can change it). */
export interface ListedTrail {
  arn: string;
  name: string;
  homeRegion: string;
}

/** GetTrail's configuration, the fields that say what the trail records and where it delivers. */
export interface TrailConfiguration {
  s3BucketName?: string;
  s3KeyPrefix?: string;
  snsTopicArn?: string;
  includeGlobalServiceEvents: boolean;
  isMultiRegionTrail: boolean;
  isOrganizationTrail: boolean;
  logFileValidationEnabled: boolean;
  kmsKeyId?: string;
  cloudWatchLogsLogGroupArn?: string;
  cloudWatchLogsRoleArn?: string;
}

/** What the trail selects: basic or advanced event selectors, and Insights types. */
export interface TrailSelectors {
  eventSelectors: EventSelector[];
  advancedEventSelectors: AdvancedEventSelector[];
  insightTypes: string[];
}

/** GetTrailStatus in the home region, plus whether the bucket is known to be gone. */
export interface TrailHealth {
  isLogging: boolean;
  latestDeliveryTime?: string;
  latestDeliveryError?: string;
  latestDigestDeliveryError?: string;
  startLoggingTime?: string;
  stopLoggingTime?: string;
  /** True only when S3 answered that the bucket does not exist; undefined when it could not tell. */
  bucketMissing?: boolean;
}

/**
 * A trail as seen from one account. A trail another account owns (the organization trail, as a member
 * sees it) is never read from here: it has no configuration, selectors or health.
 */
export interface ObservedTrail extends ListedTrail {
  /** The account whose trails are reviewed; not always the account in the ARN. */
  viewedFrom: string;
  configuration?: TrailConfiguration;
  selectors?: TrailSelectors;
  health?: TrailHealth;
}

export type NeverRetiredReason = 'organization-trail' | 'control-tower' | 'kept-by-parameter' | 'protected';
export type KeptReason = 'distinct-purpose' | 'not-covered' | 'records-no-events' | 'unreadable';

export type TrailVerdict =
  | { verdict: 'retire'; reason: 'duplicate' | 'broken'; detail: string }
  | { verdict: 'leave'; reason: NeverRetiredReason | KeptReason; detail: string; review?: boolean };

export interface ClassificationContext {
  managementAccount: string;
  /** The healthy organization trail the retirement relies on (read in the management account). */
  organizationTrail: ObservedTrail;
  /** Trail names never retired (the `keep` parameter). */
  keep: ReadonlySet<string>;
  /** The run's protected principal patterns; a trail ARN matching one is never changed. */
  protectedPatterns: readonly string[];
}

/** The account and region in a CloudTrail ARN: arn:aws:cloudtrail:<region>:<account>:trail/<name>. */
export function parseTrailArn(arn: string): { region: string; account: string; name: string } | undefined {
  const m = /^arn:aws[a-z-]*:cloudtrail:([a-z0-9-]+):(\d{12}):trail\/(.+)$/.exec(arn);
  return m ? { region: m[1] as string, account: m[2] as string, name: m[3] as string } : undefined;
}

export function ownerOf(trail: ListedTrail): string | undefined {
  return parseTrailArn(trail.arn)?.account;
}

/**
 * One entry per trail ARN. A multi-region trail shows up in every region it covers (its "shadow"
 * copies); only the copy in its home region can be changed, so that one is kept when present.
 */
export function uniqueTrails<T extends ListedTrail & { seenIn?: string }>(trails: readonly T[]): T[] {
  const byArn = new Map<string, T>();
  for (const trail of trails) {
    const known = byArn.get(trail.arn);
    if (!known || (known.seenIn !== undefined && known.seenIn !== known.homeRegion && trail.seenIn === trail.homeRegion)) byArn.set(trail.arn, trail);
  }
  return [...byArn.values()];
}

const CONTROL_TOWER = /^aws-controltower-/i;
const ACCOUNT_FACTORY_FOR_TERRAFORM = /^aws-aft-/i;

/** Which management events a trail records: read and/or write, minus the event sources it excludes. */
export interface ManagementCoverage {
  read: boolean;
  write: boolean;
  /** Event sources excluded by every management selector (e.g. kms.amazonaws.com). */
  excludedSources: string[];
  /** A management selector narrows events by a field this code does not model: coverage is partial. */
  narrowed: boolean;
}

function intersect(sets: string[][]): string[] {
  if (sets.length === 0) return [];
  const [first, ...rest] = sets as [string[], ...string[][]];
  return [...new Set(first)].filter((s) => rest.every((other) => other.includes(s))).sort();
}

/** The eventCategory an advanced selector selects, if it names exactly one. */
function eventCategoryOf(selector: AdvancedEventSelector): string | undefined {
  const field = (selector.FieldSelectors ?? []).find((f) => f.Field === 'eventCategory');
  return field?.Equals?.length === 1 ? field.Equals[0] : undefined;
}

export function managementCoverage(selectors: TrailSelectors): ManagementCoverage {
  const { eventSelectors, advancedEventSelectors } = selectors;
  // No selectors at all: CloudTrail's default, every read and write management event.
  if (eventSelectors.length === 0 && advancedEventSelectors.length === 0) return { read: true, write: true, excludedSources: [], narrowed: false };
  let read = false;
  let write = false;
  let narrowed = false;
  const excluded: string[][] = [];
  for (const s of eventSelectors) {
    if (s.IncludeManagementEvents === false) continue;
    const rw = s.ReadWriteType ?? 'All';
    read ||= rw === 'All' || rw === 'ReadOnly';
    write ||= rw === 'All' || rw === 'WriteOnly';
    excluded.push(s.ExcludeManagementEventSources ?? []);
  }
  for (const s of advancedEventSelectors) {
    if (eventCategoryOf(s) !== 'Management') continue;
    let selectsRead = true;
    let selectsWrite = true;
    const notSources: string[] = [];
    for (const f of s.FieldSelectors ?? []) {
      if (f.Field === 'eventCategory') continue;
      if (f.Field === 'readOnly' && f.Equals?.length === 1 && !f.NotEquals && !f.StartsWith && !f.EndsWith) {
        selectsRead = f.Equals[0] === 'true';
        selectsWrite = f.Equals[0] === 'false';
      } else if (f.Field === 'eventSource' && f.NotEquals && !f.Equals && !f.StartsWith && !f.EndsWith && !f.NotStartsWith && !f.NotEndsWith) {
        notSources.push(...f.NotEquals);
      } else {
        narrowed = true;
      }
    }
    read ||= selectsRead;
    write ||= selectsWrite;
    excluded.push(notSources);
  }
  return { read, write, excludedSources: intersect(excluded), narrowed };
}

/** True when `org` records every management event `trail` records. */
export function coversManagementEvents(org: ManagementCoverage, trail: ManagementCoverage): boolean {
  return !org.narrowed && (!trail.read || org.read) && (!trail.write || org.write) && org.excludedSources.every((s) => trail.excludedSources.includes(s));
}

function describeCoverage(c: ManagementCoverage): string {
  const kinds = c.read && c.write ? 'read and write' : c.read ? 'read-only' : 'write-only';
  return `${kinds} management events${c.excludedSources.length ? ` (excluding ${c.excludedSources.join(', ')})` : ''}`;
}

/** What a trail records or does that the organization trail does not replace: each is a reason to keep it. */
export function distinctPurposes(trail: ObservedTrail): string[] {
  const purposes: string[] = [];
  const { configuration, selectors } = trail;
  for (const s of selectors?.eventSelectors ?? []) {
    const resources = s.DataResources ?? [];
    if (resources.length > 0) purposes.push(`data events (${[...new Set(resources.map((r) => r.Type ?? 'unknown type'))].join(', ')})`);
  }
  for (const s of selectors?.advancedEventSelectors ?? []) {
    const category = eventCategoryOf(s);
    if (category === 'Management') continue;
    const types = (s.FieldSelectors ?? []).find((f) => f.Field === 'resources.type')?.Equals ?? [];
    const label = s.Name ? ` "${s.Name}"` : '';
    if (category === 'Data') purposes.push(`data events (advanced selector${label}${types.length ? `: ${types.join(', ')}` : ''})`);
    else if (category === 'NetworkActivity') purposes.push(`network activity events (advanced selector${label})`);
    else purposes.push(`${category ?? 'unspecified'} events (advanced selector${label})`);
  }
  if ((selectors?.insightTypes ?? []).length > 0) purposes.push(`Insights (${selectors?.insightTypes.join(', ')})`);
  if (configuration?.cloudWatchLogsLogGroupArn) purposes.push(`CloudWatch Logs delivery to ${configuration.cloudWatchLogsLogGroupArn} (metric filters and alarms may read it)`);
  if (configuration?.snsTopicArn) purposes.push(`SNS notifications to ${configuration.snsTopicArn}`);
  return purposes;
}

/** Why a trail is broken: not logging, delivery failing, its bucket gone. Empty when healthy. */
export function trailProblems(trail: ObservedTrail): string[] {
  const health = trail.health;
  if (!health) return [];
  const problems: string[] = [];
  if (!health.isLogging) problems.push(`not logging${health.stopLoggingTime ? ` (stopped ${health.stopLoggingTime})` : ''}`);
  if (health.latestDeliveryError) problems.push(`log delivery failing (${health.latestDeliveryError})`);
  if (health.latestDigestDeliveryError) problems.push(`digest delivery failing (${health.latestDigestDeliveryError})`);
  if (health.bucketMissing) problems.push(`its bucket ${trail.configuration?.s3BucketName ?? '(unnamed)'} no longer exists`);
  return problems;
}

/**
 * Why a trail cannot serve as the organization trail this kind relies on: it must be an organization
 * trail, multi-region, logging, with no delivery error. Empty when it can.
 */
export function organizationTrailProblems(trail: ObservedTrail): string[] {
  const { configuration, health } = trail;
  if (!configuration || !health) return ['it could not be read'];
  const problems: string[] = [];
  if (!configuration.isOrganizationTrail) problems.push('it is not an organization trail');
  if (!configuration.isMultiRegionTrail) problems.push('it is single-region');
  if (!health.isLogging) problems.push('it is not logging');
  if (health.latestDeliveryError) problems.push(`its log delivery is failing (${health.latestDeliveryError})`);
  if (health.bucketMissing) problems.push(`its bucket ${configuration.s3BucketName ?? '(unnamed)'} no longer exists`);
  return problems;
}

/**
 * The management account's healthy organization trail, or the reasons none qualifies (each
 * organization trail found with what is wrong with it).
 */
export function findOrganizationTrail(managementTrails: readonly ObservedTrail[], managementAccount: string): { trail: ObservedTrail } | { problems: string[] } {
  const candidates = managementTrails.filter((t) => ownerOf(t) === managementAccount && t.configuration?.isOrganizationTrail);
  const healthy = candidates.find((t) => organizationTrailProblems(t).length === 0);
  if (healthy) return { trail: healthy };
  if (candidates.length === 0) return { problems: ['no trail of the management account is an organization trail'] };
  return { problems: candidates.map((t) => `${t.arn}: ${organizationTrailProblems(t).join(', ')}`) };
}

export function classifyTrail(trail: ObservedTrail, context: ClassificationContext): TrailVerdict {
  const owner = ownerOf(trail);
  if (owner !== trail.viewedFrom) {
    const whose = owner === context.managementAccount ? `the management account ${owner}` : `account ${owner ?? 'unknown'}`;
    return {
      verdict: 'leave',
      reason: 'organization-trail',
      detail: `owned by ${whose} (an organization trail as account ${trail.viewedFrom} sees it); only its owner can change it, and it is never retired`,
    };
  }
  const { configuration, selectors, health } = trail;
  if (!configuration || !selectors || !health) return { verdict: 'leave', reason: 'unreadable', detail: 'its configuration could not be read', review: true };
  if (configuration.isOrganizationTrail) {
    const relied = trail.arn === context.organizationTrail.arn;
    const problems = relied ? [] : organizationTrailProblems(trail).filter((p) => p !== 'it is not an organization trail');
    return {
      verdict: 'leave',
      reason: 'organization-trail',
      detail: relied
        ? 'the healthy organization trail that makes the retired trails redundant; never retired'
        : `an organization trail; never retired by this kind${problems.length ? ` (${problems.join(', ')}: review it)` : ''}`,
      ...(problems.length ? { review: true } : {}),
    };
  }
  if (CONTROL_TOWER.test(trail.name) || ACCOUNT_FACTORY_FOR_TERRAFORM.test(trail.name)) {
    return {
      verdict: 'leave',
      reason: 'control-tower',
      detail: `managed by AWS Control Tower${ACCOUNT_FACTORY_FOR_TERRAFORM.test(trail.name) ? ' Account Factory for Terraform' : ''}: its guardrails deny changes to it, and removing it would drift the landing zone`,
    };
  }
  if (context.keep.has(trail.name)) return { verdict: 'leave', reason: 'kept-by-parameter', detail: 'named in the keep parameter' };
  const pattern = protectingPattern(context.protectedPatterns, trail.arn);
  if (pattern) return { verdict: 'leave', reason: 'protected', detail: `matches ${pattern}` };

  const problems = trailProblems(trail);
  const purposes = distinctPurposes(trail);
  if (purposes.length > 0) {
    return {
      verdict: 'leave',
      reason: 'distinct-purpose',
      detail: `${purposes.join('; ')}${problems.length ? `; it is also broken (${problems.join(', ')}): review it` : ''}`,
      ...(problems.length ? { review: true } : {}),
    };
  }
  if (problems.length > 0) return { verdict: 'retire', reason: 'broken', detail: problems.join(', ') };

  const own = managementCoverage(selectors);
  if (!own.read && !own.write) {
    return { verdict: 'leave', reason: 'records-no-events', detail: 'its selectors record neither management nor data events: review it', review: true };
  }
  const org = context.organizationTrail.selectors ? managementCoverage(context.organizationTrail.selectors) : undefined;
  if (!org || !coversManagementEvents(org, own)) {
    return {
      verdict: 'leave',
      reason: 'not-covered',
      detail: `it records ${describeCoverage(own)}; the organization trail ${context.organizationTrail.name} records ${org ? `${describeCoverage(org)}${org.narrowed ? ', narrowed by further conditions' : ''}` : 'an unknown selection'}, so it is no duplicate`,
    };
  }
  return {
    verdict: 'retire',
    reason: 'duplicate',
    detail: `records ${describeCoverage(own)}${configuration.isMultiRegionTrail ? ' in every region' : ` in ${trail.homeRegion}`}, which the organization trail ${context.organizationTrail.name} already records for account ${trail.viewedFrom}`,
  };
}
