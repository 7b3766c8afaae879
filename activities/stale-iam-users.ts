/**
 * stale-iam-users activities: plan from the credential report, snapshot, disable, delete, roll back,
 * verify (docs/aws.md §5). The credential report never crosses into history: the plan carries
 * only the candidates and the reasons others are left alone.
 */
import { GetGroupCommand, GetUserCommand, paginateGetGroup, paginateListUsers } from '@aws-sdk/client-iam';
import { ApplicationFailure, log } from '@temporalio/activity';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { Json } from '../common/json';
import type { KindParams } from '../common/kinds';
import { KINDS, resolveKindParams } from '../common/kinds';
import { parseDuration } from '../common/duration';
import type { Change, ChangeOutcome, KindPlan, LeftAlone, VerifyCheck, VerifyResult } from '../common/plan';
import { iamPrincipalOf, principalMatches } from '../common/policy';
import type { AccountRef, PartitionRequest, PartitionResult, ApplyBatchResult, BatchRequest, ChangeRequest, PlanRequest, RollbackRequest, SnapshotBatchResult, VerifyRequest } from '../common/requests';
import type { AwsClients } from './aws/clients';
import { isAwsError } from './aws/errors';
import { assessStaleness, fetchCredentialReport, parseCredentialReport } from './iam/credential-report';
import type { CredentialReportRow } from './iam/credential-report';
import type { IamUserSnapshot } from './iam/user-lifecycle';
import {
  disableAsRecorded,
  disableIamUserCredentials,
  reactivateAccessKeys,
  removeIamUser,
  removeIamUserAsRecorded,
  snapshotIamUser,
  snapshotIamUserCredentials,
} from './iam/user-lifecycle';
import { batchResults, implementedRead, runBatch, snapshotResults } from './batch';
import type { UserDirectory } from './iam/user-directory';
import { DIRECTORY_MIN_USERS, readUserDirectory } from './iam/user-directory';
import { listVirtualMfaSerials } from './iam/mfa-devices';
import type { BatchRun } from './batch';
import { keepAlive } from './heartbeat';
import type { CredentialState } from './iam/user-drift';
import { EXEMPT_TAG, credentialDrift, credentialState, disabledState, notInSnapshot, recordedInSnapshot, usedSince } from './iam/user-drift';

/** AWS regenerates the report at most every 4 h; an older one is regenerated before acting (§5.3). */
const REPORT_MAX_AGE_MS = 4 * 3_600_000;
/** From this many deletions on, verification lists users and groups instead of reading each user. */
const BULK_VERIFY_FROM = 20;
/** Users a batch works on at once (the worker's per-account IAM limit applies below this). */
const BATCH_CONCURRENCY = 8;
/** Left-alone entries listed in the plan; the rest are counted (bounded history, docs/design.md §5). */
const LEFT_ALONE_LISTED = 500;

export interface StaleIamUserDeps {
  aws: AwsClients;
  now?: () => Date;
}

/**
 * A key's last use from its credential-report row, matched by creation time (the report's
 * `access_key_N_last_rotated` is when key N was created): two calls per user saved at planning.
 * undefined when no slot matches (the key is newer than the report): then it is read live.
 */
export function reportLastUse(row: CredentialReportRow): (key: { createDate: string | null }) => string | null | undefined {
  return (key) => {
    if (!key.createDate) return undefined;
    const created = Math.floor(Date.parse(key.createDate) / 1000);
    const slot = row.accessKeys.find((k) => k.lastRotated !== null && Math.floor(Date.parse(k.lastRotated) / 1000) === created);
    return slot ? slot.lastUsed : undefined;
  };
}

/** The candidate just before `user`: where a page that stops at `user` ends. */
function previousUser(candidates: { user: string }[], user: string): string | undefined {
  const i = candidates.findIndex((c) => c.user === user);
  return i > 0 ? candidates[i - 1]?.user : undefined;
}

function userNameOf(change: Change): string {
  const before = change.before as Partial<CredentialState> | null;
  if (!before || typeof before.userName !== 'string') {
    throw ApplicationFailure.create({ type: 'InvalidPlan', nonRetryable: true, message: `change ${change.id} names no user` });
  }
  return before.userName;
}

export function createStaleIamUserActivities(deps: StaleIamUserDeps) {
  const { aws } = deps;
  const now = deps.now ?? (() => new Date());
  /** IAM in the run's account: the worker's own, or through the assumed role (activities/aws/clients.ts). */
  const iamOf = async (ref: AccountRef): Promise<IAMClient> => (await aws.forAccount(ref)).iam();
  const lifecycleOptions = () => ({ emulator: aws.settings.emulator, now });
  // Every IAM operation the batches make is one moto implements (ListServiceSpecificCredentials, which
  // it does not, is handled where it is called).
  const batchOptions = (request: BatchRequest) => ({ concurrency: BATCH_CONCURRENCY, budgetBytes: request.budgetBytes, errors: { emulator: aws.settings.emulator }, implemented: true });
  const logged = (what: string, request: BatchRequest, run: BatchRun<ChangeOutcome>): ApplyBatchResult => {
    log.info(what, { workflowId: request.workflowId, changes: request.changes.length, done: run.done.length, failed: run.failed.length });
    return batchResults(run);
  };

  /**
   * The user as re-read may differ from the approved resource (moved to another path, renamed into a
   * protected name): the engine checked the approved ARN; this checks the live one.
   */
  async function refuseProtected(request: { protectedPrincipals: string[] }, ...arns: string[]): Promise<void> {
    const caller = await aws.callerIdentity();
    for (const arn of arns) {
      const pattern = request.protectedPrincipals.find((p) => principalMatches(p, arn));
      if (arn === iamPrincipalOf(caller.arn) || pattern) {
        throw ApplicationFailure.create({
          type: 'ProtectedPrincipal',
          nonRetryable: true,
          message: `${arn} is protected (${pattern ? `matches ${pattern}` : "it is the worker's own identity"}); it is never changed`,
        });
      }
    }
  }

  /** The current name of the user with this UserId, if it still exists (a rare, paged scan). */
  async function userNameForId(iam: IAMClient, userId: string): Promise<string | undefined> {
    for await (const page of paginateListUsers({ client: iam }, {})) {
      keepAlive();
      const found = (page.Users ?? []).find((u) => u.UserId === userId);
      if (found) return found.UserName;
    }
    return undefined;
  }

  const GONE = 'the user no longer exists';

  /**
   * Re-read the user right before changing it and compare with the approved state and with the
   * snapshot in history: the reason to leave it alone, or the live user to act on.
   */
  async function recheck(iam: IAMClient, request: ChangeRequest, mode: 'disable' | 'delete'): Promise<{ leaveAlone: string } | { live: IamUserSnapshot }> {
    const snapshot = request.snapshot as IamUserSnapshot | null | undefined;
    const live = await snapshotIamUser(iam, userNameOf(request.change), lifecycleOptions());
    if (!live || !snapshot) return { leaveAlone: GONE };
    await refuseProtected(request, live.arn);
    const drift = credentialDrift(request.change.before as CredentialState, live, mode) ?? notInSnapshot(snapshot, live);
    return drift ? { leaveAlone: drift } : { live };
  }

  return {
    async planStaleIamUserRemoval(request: PlanRequest<KindParams<'stale-iam-users'>>): Promise<KindPlan> {
      const { params } = request;
      const maxIdleMs = parseDuration(params.maxIdle);
      const exempt = new Set(params.exempt);
      const iam = await iamOf(request);
      const at = now();
      const report = await fetchCredentialReport(iam, {
        now: at,
        // moto's report carries a fixed 2015 GeneratedTime and is rebuilt live on every read (§9).
        maxAgeMs: aws.settings.emulator === 'moto' ? null : REPORT_MAX_AGE_MS,
      });
      const rows = parseCredentialReport(report.csv).filter((r) => !r.isRoot);
      const leftAlone: LeftAlone[] = [];
      const notes: string[] = [`credential report generated ${report.generatedTime}; ${rows.length} user(s) assessed`];
      if (aws.settings.emulator) notes.push(`AWS is the ${aws.settings.emulator} emulator at ${aws.settings.endpoint ?? 'the default endpoint'}`);
      // An exempt name that matches no user exempts nothing: most likely a typo, said in the plan.
      for (const name of exempt) if (!rows.some((r) => r.user === name)) notes.push(`warning: exempt name ${name} matches no user`);

      // Pages (docs/engine.md, "Plan pages"): users in name order, this page starting after the cursor.
      const cursor = request.page?.cursor;
      const budget = request.page?.budgetBytes ?? Number.POSITIVE_INFINITY;
      // A part of the account (an organization-wide run split it): only users in its name range.
      const part = request.part;
      const inPart = (name: string): boolean => (part?.after === undefined || name > part.after) && (part?.through === undefined || name <= part.through);
      const inPage = (name: string): boolean => inPart(name) && (cursor === undefined || name > cursor);
      const candidates: {
        arn: string;
        user: string;
        lastActivity: string;
        passwordEnabled: boolean;
        certificates: number;
        lastUsedOf: (key: { createDate: string | null }) => string | null | undefined;
      }[] = [];
      const ordered = [...rows].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
      const leftAloneOf = new Map<string, LeftAlone[]>();
      const leaveAlone = (user: string, entry: LeftAlone): void => {
        leftAloneOf.set(user, [...(leftAloneOf.get(user) ?? []), entry]);
      };
      for (const row of ordered) {
        if (!inPage(row.user)) continue;
        const protectedBy = request.protectedPrincipals.find((p) => principalMatches(p, row.arn));
        if (protectedBy) {
          leaveAlone(row.user, { resource: row.arn, reason: 'protected', detail: `matches ${protectedBy}` });
          continue;
        }
        if (exempt.has(row.user)) {
          leaveAlone(row.user, { resource: row.arn, reason: 'exempt', detail: 'named in the exempt parameter' });
          continue;
        }
        const verdict = assessStaleness(row, { now: at, maxIdleMs });
        switch (verdict.verdict) {
          case 'active':
            leaveAlone(row.user, { resource: row.arn, reason: 'active', detail: `${verdict.credential} last active ${verdict.lastActivity}` });
            break;
          case 'too-new':
            leaveAlone(row.user, { resource: row.arn, reason: 'too-new', detail: `created ${verdict.userCreationTime}, within maxIdle` });
            break;
          case 'no-active-credentials':
            leaveAlone(row.user, { resource: row.arn, reason: 'no-active-credentials', detail: 'a credential-less user: a separate finding, not removed', review: true });
            break;
          case 'stale':
            candidates.push({
              arn: row.arn,
              user: row.user,
              lastActivity: verdict.lastActivity,
              passwordEnabled: row.passwordEnabled === true,
              certificates: row.certificates.filter((c) => c.active).length,
              lastUsedOf: reportLastUse(row),
            });
            break;
          default:
            verdict satisfies never;
        }
      }

      // Each candidate is read (its tags, keys and their last use) a few at a time, in name order; the
      // page ends once its changes pass the budget, at a user boundary.
      const assessed = new Map<string, { snapshot: IamUserSnapshot | null }>();
      const changes: Change[] = [];
      let bytes = 0;
      let nextCursor: string | undefined;
      let index = 0;
      // Read ahead in chunks so a page that ends early reads little past its end.
      const CHUNK = 32;
      let taken = 0;
      // Many candidates left: the account's users in bulk instead of a GetUser each (user-directory.ts),
      // keeping the next 500 candidates (more than a page holds; any past them are read one by one).
      let directory: UserDirectory | undefined;
      for (const candidate of candidates) {
        if (!assessed.has(candidate.user)) {
          if (!directory && candidates.length - taken >= DIRECTORY_MIN_USERS) directory = await implementedRead(() => readUserDirectory(iam, new Set(candidates.slice(taken, taken + 500).map((c) => c.user)), request.account), { emulator: aws.settings.emulator });
          const until = Math.min(candidates.length, taken + CHUNK);
          index = taken;
          const end = until;
          const lanes = Array.from({ length: 8 }, async () => {
            for (let i = index++; i < end; i = index++) {
              const c = candidates[i] as (typeof candidates)[number];
              keepAlive({ assessing: c.user });
              const snapshot = await snapshotIamUserCredentials(iam, c.user, { ...lifecycleOptions(), directory, forReview: true, loginProfileKnown: true, lastUsedFromReport: c.lastUsedOf });
              if (snapshot && c.passwordEnabled) snapshot.loginProfile = { createDate: '', passwordResetRequired: false };
              assessed.set(c.user, { snapshot });
            }
          });
          await Promise.all(lanes);
          taken = until;
        }
        if (bytes > budget) {
          nextCursor = previousUser(candidates, candidate.user);
          break;
        }
        const snapshot = assessed.get(candidate.user)?.snapshot ?? null;
        if (!snapshot) continue; // deleted since the report: nothing to do
        if (snapshot.tags.some((t) => t.key === EXEMPT_TAG)) {
          leaveAlone(candidate.user, { resource: candidate.arn, reason: 'exempt', detail: `tagged ${EXEMPT_TAG}` });
          continue;
        }
        const recent = usedSince(snapshot, new Date(at.getTime() - maxIdleMs));
        if (recent) {
          leaveAlone(candidate.user, { resource: candidate.arn, reason: 'active', detail: `${recent}, after the credential report was generated` });
          continue;
        }
        const manual = [
          snapshot.sshPublicKeys.length > 0 ? `${snapshot.sshPublicKeys.length} SSH public key(s)` : '',
          candidate.certificates > 0 ? `${candidate.certificates} active signing certificate(s)` : '',
          (snapshot.serviceSpecificCredentials ?? []).length > 0 ? 'service-specific credentials' : '',
        ].filter(Boolean);
        if (manual.length > 0) {
          leaveAlone(candidate.user, {
            resource: candidate.arn,
            reason: 'manual-review',
            detail: `idle since ${candidate.lastActivity} but holds ${manual.join(', ')}, whose use the credential report does not show`,
            review: true,
          });
          continue;
        }
        const state = credentialState(snapshot);
        const activeKeys = state.accessKeys.filter((k) => k.status === 'Active').map((k) => k.id);
        const disableId = `disable-user/${candidate.user}`;
        changes.push({
          id: disableId,
          stage: 'disable',
          action: 'disable-user',
          resource: candidate.arn,
          summary: `disable ${candidate.user} (idle since ${candidate.lastActivity}): deactivate ${activeKeys.length} access key(s)${state.loginProfile ? ', delete the console password' : ''}`,
          before: state,
          after: disabledState(state),
          reversible: true,
          destructive: true,
        });
        changes.push({
          id: `delete-user/${candidate.user}`,
          stage: 'delete',
          action: 'delete-user',
          resource: candidate.arn,
          summary: `delete ${candidate.user} with its ${snapshot.accessKeys.length} access key(s) and every other dependent (group memberships, policies, MFA devices), each recorded in a snapshot first`,
          before: disabledState(state),
          after: { exists: false },
          reversible: false,
          destructive: true,
          dependsOn: [disableId],
        });
        bytes += JSON.stringify(changes.slice(-2)).length;
      }
      // Left alone: the users of this page's name range (the last page takes the rest).
      for (const [user, entries] of leftAloneOf) if (nextCursor === undefined || user <= nextCursor) leftAlone.push(...entries);

      const listed = leftAlone.slice(0, LEFT_ALONE_LISTED);
      log.info('planned stale IAM user removal', { workflowId: request.workflowId, account: request.account, changes: changes.length, leftAlone: leftAlone.length });
      return {
        createdAt: at.toISOString(),
        stages: [
          { name: 'disable', description: 'snapshot, deactivate access keys, delete the console password', concurrency: 4 },
          { name: 'delete', description: 're-check still idle and disabled, remove every dependent in AWS order, delete the user', soakBefore: params.soak, concurrency: 4 },
        ],
        changes,
        leftAlone: listed,
        leftAloneNotListed: leftAlone.length - listed.length,
        notes: [...notes, `controls: ${KINDS['stale-iam-users'].controls.join(', ')}`],
        ...(nextCursor !== undefined ? { nextCursor } : {}),
      };
    },

    /**
     * Split an account into parts of at most `maxUsers` idle users each, by user name (docs/engine.md,
     * "Parts"): the credential report, read once, says which users are candidates; the part boundaries
     * are names, so each part's run plans its own range against live state.
     */
    async partitionStaleIamUsers(request: PartitionRequest): Promise<PartitionResult> {
      const params = resolveKindParams('stale-iam-users', request.params) as KindParams<'stale-iam-users'>;
      const iam = await iamOf(request);
      const at = now();
      const report = await fetchCredentialReport(iam, { now: at, maxAgeMs: aws.settings.emulator === 'moto' ? null : REPORT_MAX_AGE_MS });
      const maxIdleMs = parseDuration(params.maxIdle);
      const exempt = new Set(params.exempt);
      const names = parseCredentialReport(report.csv)
        .filter((r) => !r.isRoot && !exempt.has(r.user) && assessStaleness(r, { now: at, maxIdleMs }).verdict === 'stale')
        .map((r) => r.user)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const parts: PartitionResult['parts'] = [];
      for (let i = 0; i < names.length; i += request.maxPerPart) {
        const slice = names.slice(i, i + request.maxPerPart);
        parts.push({ ...(i > 0 ? { after: names[i - 1] } : {}), ...(i + request.maxPerPart < names.length ? { through: slice.at(-1) } : {}) });
      }
      return { candidates: names.length, parts: parts.length > 0 ? parts : [{}] };
    },

    async snapshotStaleIamUser(request: ChangeRequest): Promise<Json> {
      keepAlive({ change: request.change.id });
      return (await snapshotIamUser(await iamOf(request), userNameOf(request.change), lifecycleOptions())) as Json;
    },

    async disableStaleIamUser(request: ChangeRequest): Promise<ChangeOutcome> {
      const iam = await iamOf(request);
      const checked = await recheck(iam, request, 'disable');
      if ('leaveAlone' in checked) {
        const renamed = checked.leaveAlone === GONE ? await userNameForId(iam, (request.change.before as CredentialState).userId) : undefined;
        return { status: 'left-alone', detail: `left alone: ${renamed ? `the user was renamed to ${renamed} after approval` : checked.leaveAlone}` };
      }
      const snapshot = request.snapshot as unknown as IamUserSnapshot;
      const done = await disableIamUserCredentials(iam, checked.live.userName, { onlyKeys: snapshot.accessKeys.map((k) => k.id) });
      log.info('disabled stale IAM user', { workflowId: request.workflowId, change: request.change.id, ...done });
      const nothing = done.deactivatedKeys.length === 0 && !done.deletedLoginProfile;
      return {
        status: nothing ? 'already-done' : 'applied',
        detail: `deactivated ${done.deactivatedKeys.length} access key(s)${done.deletedLoginProfile ? ', deleted the console password' : ''}`,
        // What a rollback restores: the keys that were Active in the snapshot taken just before.
        observed: {
          ...done,
          activeBefore: snapshot.accessKeys.filter((k) => k.status === 'Active').map((k) => k.id),
        },
      };
    },

    async reenableStaleIamUser(request: RollbackRequest): Promise<ChangeOutcome> {
      const before = request.change.before as CredentialState;
      const observed = (request.result.observed ?? {}) as { activeBefore?: string[]; deactivatedKeys?: string[] };
      const keys = observed.activeBefore ?? observed.deactivatedKeys ?? [];
      const done = await reactivateAccessKeys(await iamOf(request), before.userName, keys);
      if (keys.length > 0 && done.reactivated.length === 0) {
        throw ApplicationFailure.create({
          type: 'NothingToRestore',
          nonRetryable: true,
          message: `none of ${before.userName}'s access keys (${keys.join(', ')}) exist any more; they cannot be re-activated`,
        });
      }
      const password = before.loginProfile
        ? '; the console password was deleted and cannot be restored: an administrator must set a new one (CreateLoginProfile with PasswordResetRequired)'
        : '';
      return {
        status: 'applied',
        detail: `re-activated ${done.reactivated.length} access key(s)${done.missing.length ? `; ${done.missing.length} no longer exist` : ''}${password}`,
        observed: done,
      };
    },

    async deleteStaleIamUser(request: ChangeRequest): Promise<ChangeOutcome> {
      const iam = await iamOf(request);
      const snapshot = request.snapshot as IamUserSnapshot | null | undefined;
      // What verify checks afterwards: the user, its groups and its virtual MFA devices.
      const expectations = {
        userName: userNameOf(request.change),
        groups: snapshot?.groups ?? [],
        virtualMfaDevices: (snapshot?.mfaDevices ?? []).filter((d) => d.virtual).map((d) => d.serialNumber),
      };
      // Gone by name: deleted, or renamed (UpdateUser keeps the UserId). Only the former is "done".
      const goneOrRenamed = async (): Promise<ChangeOutcome> => {
        const renamed = await userNameForId(iam, (request.change.before as CredentialState).userId);
        if (renamed) return { status: 'left-alone', detail: `left alone: the user was renamed to ${renamed} after approval` };
        return { status: 'already-done', detail: 'the user was already deleted', observed: expectations };
      };
      if (!snapshot) return goneOrRenamed();
      const checked = await recheck(iam, request, 'delete');
      if ('leaveAlone' in checked) {
        if (checked.leaveAlone === GONE) return goneOrRenamed();
        return { status: 'left-alone', detail: `left alone: ${checked.leaveAlone}` };
      }
      const done = await removeIamUser(iam, checked.live.userName, {
        ...lifecycleOptions(),
        virtualMfaSerials: expectations.virtualMfaDevices,
        mayRemove: recordedInSnapshot(snapshot),
      });
      log.info('deleted stale IAM user', { workflowId: request.workflowId, change: request.change.id, removed: done.removed.length });
      return {
        status: done.alreadyGone ? 'already-done' : 'applied',
        detail: done.alreadyGone ? 'the user was already deleted' : `deleted with ${done.removed.length} dependent(s)`,
        observed: { ...expectations, removed: done.removed as unknown as Json },
      };
    },


    // --- Batches (docs/engine.md, "Batches"): the path a run takes; the per-change activities above
    // --- stay registered for runs started before batches (their histories replay against them).

    /**
     * Snapshot a batch of users before changing them. Disabling reads what it changes (keys with their
     * last use, the console password); deleting reads everything needed to recreate the user. This
     * read is also the re-check: the apply batch compares it with the approved state.
     */
    async snapshotStaleIamUsers(request: BatchRequest): Promise<SnapshotBatchResult> {
      const iam = await iamOf(request);
      const full = request.action === 'delete-user';
      // Many users: the account's users in bulk first, in this attempt, so each user's own reads are
      // only what the bulk read lacks (access keys, password, MFA, SSH keys, certificates).
      const directory = request.changes.length >= DIRECTORY_MIN_USERS ? await implementedRead(() => readUserDirectory(iam, new Set(request.changes.map(userNameOf)), request.account), batchOptions(request).errors) : undefined;
      const run = await runBatch(
        request.changes,
        async (change) => {
          const name = userNameOf(change);
          const snapshot = full
            ? await snapshotIamUser(iam, name, { ...lifecycleOptions(), lean: true, directory })
            : await snapshotIamUserCredentials(iam, name, { ...lifecycleOptions(), directory });
          // The apply batch needs what to remove, not the policy documents: those stay in this result only.
          const forApply = snapshot && full ? ({ ...snapshot, inlinePolicies: snapshot.inlinePolicies.map((p) => ({ name: p.name, document: '' })), notes: [] } as unknown as Json) : undefined;
          return { snapshot: snapshot as unknown as Json, ...(forApply !== undefined ? { forApply } : {}) };
        },
        batchOptions(request),
      );
      return snapshotResults(run);
    },

    async disableStaleIamUsers(request: BatchRequest): Promise<ApplyBatchResult> {
      const iam = await iamOf(request);
      const run = await runBatch(
        request.changes,
        async (change): Promise<ChangeOutcome> => {
          const snapshot = (request.snapshots?.[change.id] ?? null) as IamUserSnapshot | null;
          const before = change.before as CredentialState;
          if (!snapshot) {
            const renamed = await userNameForId(iam, before.userId);
            return { status: 'left-alone', detail: `left alone: ${renamed ? `the user was renamed to ${renamed} after approval` : GONE}` };
          }
          await refuseProtected(request, snapshot.arn);
          const drift = credentialDrift(before, snapshot, 'disable');
          if (drift) return { status: 'left-alone', detail: `left alone: ${drift}` };
          const done = await disableAsRecorded(iam, snapshot);
          const nothing = done.deactivatedKeys.length === 0 && !done.deletedLoginProfile;
          return {
            status: nothing ? 'already-done' : 'applied',
            detail: `deactivated ${done.deactivatedKeys.length} access key(s)${done.deletedLoginProfile ? ', deleted the console password' : ''}`,
            observed: { ...done, activeBefore: snapshot.accessKeys.filter((k) => k.status === 'Active').map((k) => k.id) },
          };
        },
        batchOptions(request),
      );
      return logged('disabled stale IAM users', request, run);
    },

    async deleteStaleIamUsers(request: BatchRequest): Promise<ApplyBatchResult> {
      const iam = await iamOf(request);
      const run = await runBatch(
        request.changes,
        async (change): Promise<ChangeOutcome> => {
          const snapshot = (request.snapshots?.[change.id] ?? null) as IamUserSnapshot | null;
          const before = change.before as CredentialState;
          const expectations = {
            userName: userNameOf(change),
            groups: snapshot?.groups ?? [],
            virtualMfaDevices: (snapshot?.mfaDevices ?? []).filter((d) => d.virtual).map((d) => d.serialNumber),
          };
          if (!snapshot) {
            const renamed = await userNameForId(iam, before.userId);
            if (renamed) return { status: 'left-alone', detail: `left alone: the user was renamed to ${renamed} after approval` };
            return { status: 'already-done', detail: 'the user was already deleted', observed: expectations };
          }
          await refuseProtected(request, snapshot.arn);
          const drift = credentialDrift(before, snapshot, 'delete');
          if (drift) return { status: 'left-alone', detail: `left alone: ${drift}` };
          const done = await removeIamUserAsRecorded(iam, snapshot, { ...lifecycleOptions(), virtualMfaSerials: expectations.virtualMfaDevices, mayRemove: recordedInSnapshot(snapshot) });
          return {
            status: done.alreadyGone ? 'already-done' : 'applied',
            detail: done.alreadyGone ? 'the user was already deleted' : `deleted with ${done.removed.length} dependent(s)`,
            observed: { ...expectations, removed: done.removed as unknown as Json },
          };
        },
        batchOptions(request),
      );
      return logged('deleted stale IAM users', request, run);
    },

    async reenableStaleIamUsers(request: BatchRequest): Promise<ApplyBatchResult> {
      const iam = await iamOf(request);
      const run = await runBatch(
        request.changes,
        async (change): Promise<ChangeOutcome> => {
          const before = change.before as CredentialState;
          const observed = (request.results?.[change.id]?.observed ?? {}) as { activeBefore?: string[]; deactivatedKeys?: string[] };
          const keys = observed.activeBefore ?? observed.deactivatedKeys ?? [];
          const done = await reactivateAccessKeys(iam, before.userName, keys);
          if (keys.length > 0 && done.reactivated.length === 0) {
            throw ApplicationFailure.create({ type: 'NothingToRestore', nonRetryable: true, message: `none of ${before.userName}'s access keys (${keys.join(', ')}) exist any more; they cannot be re-activated` });
          }
          const password = before.loginProfile ? '; the console password was deleted and cannot be restored: an administrator must set a new one (CreateLoginProfile with PasswordResetRequired)' : '';
          return { status: 'applied', detail: `re-activated ${done.reactivated.length} access key(s)${done.missing.length ? `; ${done.missing.length} no longer exist` : ''}${password}`, observed: done };
        },
        // A rollback carries on past a change it cannot undo: every other change still gets undone.
        { ...batchOptions(request), budgetBytes: Number.POSITIVE_INFINITY, continueAfterFailure: true },
      );
      return batchResults(run);
    },

    async verifyStaleIamUserRemoval(request: VerifyRequest): Promise<VerifyResult> {
      const iam = await iamOf(request);
      const deletions = request.applied
        .filter(({ change }) => change.action === 'delete-user')
        .map(({ change, result }) => {
          const observed = (result.observed ?? {}) as { groups?: string[]; virtualMfaDevices?: string[] };
          return { change, expect: { userName: userNameOf(change), groups: observed.groups ?? [], virtualMfaDevices: observed.virtualMfaDevices ?? [] } };
        });
      const existingMfa = deletions.some((d) => d.expect.virtualMfaDevices.length > 0) ? await listVirtualMfaSerials(iam) : new Set<string>();
      // Many deletions: one paged listing of the account's users and of each group, instead of a read
      // per user (a thousand users are verified in a few calls).
      const bulk = deletions.length > BULK_VERIFY_FROM;
      const users = new Set<string>();
      const members = new Map<string, Set<string> | null>();
      if (bulk) {
        for await (const page of paginateListUsers({ client: iam, pageSize: 1000 }, {})) {
          keepAlive({ verifying: 'listing users' });
          for (const u of page.Users ?? []) if (u.UserName) users.add(u.UserName);
        }
        for (const group of new Set(deletions.flatMap((d) => d.expect.groups))) {
          try {
            const names = new Set<string>();
            for await (const page of paginateGetGroup({ client: iam, pageSize: 1000 }, { GroupName: group })) for (const u of page.Users ?? []) if (u.UserName) names.add(u.UserName);
            members.set(group, names);
          } catch (err) {
            if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
            members.set(group, null);
          }
        }
      }
      const checks: VerifyCheck[] = [];
      for (const { change, expect } of deletions) {
        keepAlive({ verifying: change.id });
        const problems: string[] = [];
        if (bulk) {
          if (users.has(expect.userName)) problems.push('the user still exists');
          for (const group of expect.groups) if (members.get(group)?.has(expect.userName)) problems.push(`group ${group} still lists the user`);
        } else {
          try {
            await iam.send(new GetUserCommand({ UserName: expect.userName }));
            problems.push('the user still exists');
          } catch (err) {
            if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
          }
          for (const group of expect.groups) {
            try {
              const g = await iam.send(new GetGroupCommand({ GroupName: group }));
              if ((g.Users ?? []).some((u) => u.UserName === expect.userName)) problems.push(`group ${group} still lists the user`);
            } catch (err) {
              if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
            }
          }
        }
        for (const serial of expect.virtualMfaDevices) if (existingMfa.has(serial)) problems.push(`virtual MFA device ${serial} still exists`);
        checks.push({ changeId: change.id, ok: problems.length === 0, detail: problems.length ? problems.join('; ') : 'user and its dependents are gone' });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}
