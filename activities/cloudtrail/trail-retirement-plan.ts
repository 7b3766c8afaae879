/**
 * The retire-default-trails plan from classified trails, as a pure function: per retired trail a
 * stop-logging change (reversible) and, after the soak, a delete-trail change (irreversible, a snapshot
 * first); every other trail listed once, by ARN, with the reason it is left alone.
 */
import type { Json } from '../../common/json';
import type { Change, LeftAlone } from '../../common/plan';
import type { ClassificationContext, ObservedTrail, TrailConfiguration, TrailSelectors } from './trail-classification';
import { classifyTrail } from './trail-classification';

/** The approved state of a trail to retire: what every change on it carries as `before`. */
export interface RetiringTrail {
  account: string;
  arn: string;
  name: string;
  homeRegion: string;
  isLogging: boolean;
  verdict: 'duplicate' | 'broken';
  why: string;
  configuration: TrailConfiguration;
  selectors: TrailSelectors;
  /** The organization trail whose coverage makes this one redundant (verify checks it still logs). */
  organizationTrail: { arn: string; homeRegion: string };
}

export interface ReviewedAccount {
  account: string;
  trails: ObservedTrail[];
}

export interface RetirementPlan {
  changes: Change[];
  leftAlone: LeftAlone[];
  /** How many trails got each verdict reason (retire and leave alike). */
  counts: Record<string, number>;
}

/** Where a trail's logs stay after it is deleted, for the approver. */
function logsLocation(configuration: TrailConfiguration): string {
  return configuration.s3BucketName ? `s3://${configuration.s3BucketName}/${configuration.s3KeyPrefix ? `${configuration.s3KeyPrefix}/` : ''}` : 'its bucket';
}

export function planTrailRetirement(reviewed: readonly ReviewedAccount[], context: ClassificationContext): RetirementPlan {
  const stops: Change[] = [];
  const deletes: Change[] = [];
  const leftAlone = new Map<string, LeftAlone & { views: Set<string> }>();
  const counts: Record<string, number> = {};
  const retiredArns = new Set<string>();

  for (const { account, trails } of reviewed) {
    // A name is unique per account and region: two single-region trails may share one across regions.
    const nameCount = new Map<string, number>();
    for (const t of trails) nameCount.set(t.name, (nameCount.get(t.name) ?? 0) + 1);
    for (const trail of trails) {
      const verdict = classifyTrail(trail, context);
      if (verdict.verdict === 'leave') {
        const known = leftAlone.get(trail.arn);
        if (known) {
          known.views.add(account);
          continue;
        }
        counts[verdict.reason] = (counts[verdict.reason] ?? 0) + 1;
        leftAlone.set(trail.arn, { resource: trail.arn, reason: verdict.reason, detail: verdict.detail, ...(verdict.review ? { review: true } : {}), views: new Set([account]) });
        continue;
      }
      if (retiredArns.has(trail.arn) || !trail.configuration || !trail.selectors || !trail.health) continue;
      retiredArns.add(trail.arn);
      counts[verdict.reason] = (counts[verdict.reason] ?? 0) + 1;
      const key = (nameCount.get(trail.name) ?? 0) > 1 ? `${account}/${trail.homeRegion}/${trail.name}` : `${account}/${trail.name}`;
      const state: RetiringTrail = {
        account,
        arn: trail.arn,
        name: trail.name,
        homeRegion: trail.homeRegion,
        isLogging: trail.health.isLogging,
        verdict: verdict.reason,
        why: verdict.detail,
        configuration: trail.configuration,
        selectors: trail.selectors,
        organizationTrail: { arn: context.organizationTrail.arn, homeRegion: context.organizationTrail.homeRegion },
      };
      const where = `${trail.name} in account ${account} (${trail.homeRegion})`;
      const stopId = `stop-logging/${key}`;
      if (state.isLogging) {
        stops.push({
          id: stopId,
          stage: 'stop',
          action: 'stop-logging',
          resource: trail.arn,
          summary: `stop logging on ${where}: ${verdict.reason}, ${verdict.detail}; a reject during the soak restarts it`,
          before: state as unknown as Json,
          after: { isLogging: false },
          reversible: true,
          destructive: false,
        });
      }
      deletes.push({
        id: `delete-trail/${key}`,
        stage: 'delete',
        action: 'delete-trail',
        resource: trail.arn,
        summary: `delete ${where}${state.isLogging ? '' : ` (${verdict.detail})`}: IRREVERSIBLE, no rollback restores a deleted trail; its snapshot (configuration, selectors, tags) is kept in history and its logs stay in ${logsLocation(trail.configuration)}`,
        before: { ...state, isLogging: false } as unknown as Json,
        after: { exists: false },
        reversible: false,
        destructive: true,
        ...(state.isLogging ? { dependsOn: [stopId] } : {}),
      });
    }
  }

  const listed = [...leftAlone.values()].map(({ views, ...entry }) => {
    const members = [...views].filter((a) => a !== context.managementAccount);
    if (views.size <= 1 || entry.reason !== 'organization-trail') return entry;
    return { ...entry, detail: `${entry.detail}; seen from ${members.length} member account(s)${views.has(context.managementAccount) ? ' and the management account' : ''}` };
  });
  return { changes: [...stops, ...deletes], leftAlone: listed, counts };
}
