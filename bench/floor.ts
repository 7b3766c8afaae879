/**
 * The floor of `npm run bench:scale`: the same stale-iam-users removal with no Temporal, no plan, no
 * gate, no history — the AWS calls Countersign's activities make (activities/stale-iam-users.ts), made
 * by the same functions, in the same order, a fixed number of users at once per account:
 *
 *   plan     credential report, the account's users in bulk (from 20 candidates), then per stale
 *            candidate snapshotIamUserCredentials (forReview, key last use from the report)
 *   disable  per batch of 100 users: the users in bulk (from 20), then per user
 *            snapshotIamUserCredentials and disableAsRecorded
 *   soak     a sleep
 *   delete   per batch of 100: the users in bulk (from 20), then per user snapshotIamUser (lean) and
 *            removeIamUserAsRecorded
 *   verify   ListVirtualMFADevices, then a ListUsers listing and GetGroup per group (or, for 20 users
 *            or fewer, GetUser per user and GetGroup per group), as verifyStaleIamUserRemoval does
 *
 * The AwsClients of activities/aws/clients.ts make the calls, so the per-account IAM limit, the
 * assumed-role path and the SDK settings are the worker's. What it measures is what the engine adds
 * on top of the AWS calls themselves: Countersign wall / floor wall.
 */
import { GetGroupCommand, GetUserCommand, paginateGetGroup, paginateListUsers } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { AwsClients } from '../activities/aws/clients';
import { classifyAwsError, isAwsError } from '../activities/aws/errors';
import { assessStaleness, fetchCredentialReport, parseCredentialReport } from '../activities/iam/credential-report';
import type { IamUserSnapshot } from '../activities/iam/user-lifecycle';
import { disableAsRecorded, removeIamUserAsRecorded, snapshotIamUser, snapshotIamUserCredentials } from '../activities/iam/user-lifecycle';
import type { CredentialState } from '../activities/iam/user-drift';
import { DIRECTORY_MIN_USERS, readUserDirectory } from '../activities/iam/user-directory';
import { listVirtualMfaSerials } from '../activities/iam/mfa-devices';
import type { UserDirectory } from '../activities/iam/user-directory';
import { reportLastUse } from '../activities/stale-iam-users';
import { EXEMPT_TAG, credentialDrift, credentialState, disabledState, recordedInSnapshot, usedSince } from '../activities/iam/user-drift';

/** As activities/stale-iam-users.ts: from this many deletions on, verification lists instead of reading each user. */
const BULK_VERIFY_FROM = 20;
/** As BATCH_SIZE in workflows/lifecycle.ts (not imported: that module is workflow code). */
const BATCH_SIZE = 100;

export interface FloorOptions {
  aws: AwsClients;
  /** The accounts to clean (the worker's own, or members reached through the role). */
  accounts: string[];
  maxIdleMs: number;
  soakMs: number;
  /** Users worked on at once per account, in every phase. */
  concurrency: number;
  /** Accounts worked on at once in each phase (the organization run's --concurrency). */
  accountConcurrency?: number;
  /** Called at each phase boundary (e.g. to stop keeping active keys in use once planned). */
  onPhase?: (phase: 'planned' | 'disabled' | 'soaked' | 'deleted' | 'verified', ms: number) => void;
}

export interface FloorResult {
  wallMs: number;
  phasesMs: { plan: number; disable: number; soak: number; delete: number; verify: number };
  /** Reads made again after the emulator failed them (emulatorRetried). */
  emulatorRetries: number;
  /** Per account: users deleted, users left alone by the drift checks, verification problems. */
  accounts: { account: string; planned: number; deleted: number; leftAlone: number; problems: string[] }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A read again when the emulator fails it (moto answers an HTML 500 now and then under load, most
 * often to the large bulk read): the worker's batches retry such a read (activities/batch.ts
 * implementedRead), and a plain script would too. Up to 5 attempts; counted in `retried`.
 */
async function emulatorRetried<T>(read: () => Promise<T>, retried: { reads: number }, emulator: 'moto' | undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 5 || classifyAwsError(err, { emulator }).category !== 'unimplemented') throw err;
      retried.reads++;
      await sleep(250 * attempt);
    }
  }
}

/** Run `work` over `items`, `concurrency` at a time. */
export async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  return results;
}

interface AccountWork {
  account: string;
  iam: IAMClient;
  /** The approved state of each stale user, as the plan's disable change carries it. */
  planned: { user: string; before: CredentialState }[];
  disabled: { user: string; before: CredentialState }[];
  deleted: { userName: string; groups: string[]; virtualMfaDevices: string[] }[];
  leftAlone: number;
  problems: string[];
}

export async function runFloor(options: FloorOptions): Promise<FloorResult> {
  const { aws, concurrency } = options;
  const emulator = aws.settings.emulator;
  const lifecycle = { emulator, now: () => new Date() };
  const retried = { reads: 0 };
  const started = Date.now();
  const work: AccountWork[] = await Promise.all(
    options.accounts.map(async (account) => ({
      account,
      iam: (await aws.forAccount({ account, workflowId: `floor/${account}` })).iam(),
      planned: [],
      disabled: [],
      deleted: [],
      leftAlone: 0,
      problems: [],
    })),
  );
  // The same reads as the engine's batches of up to BATCH_SIZE users, each reading the users in
  // bulk first: here one bulk read per block of that many users, made when its first user is reached,
  // while the users themselves are worked on `concurrency` at a time as before. Reads of one account
  // under way at the same moment share one, as the worker's do (readUserDirectory's shareKey).
  const inBatches = async <T extends { user: string }>(w: AccountWork, items: T[], each: (item: T, directory: UserDirectory | undefined) => Promise<void>): Promise<void> => {
    const directories = new Map<number, Promise<UserDirectory | undefined>>();
    const directoryOf = (i: number): Promise<UserDirectory | undefined> => {
      const block = Math.floor(i / BATCH_SIZE);
      let read = directories.get(block);
      if (!read) {
        const size = Math.min(BATCH_SIZE, items.length - block * BATCH_SIZE);
        const names = new Set(items.slice(block * BATCH_SIZE, block * BATCH_SIZE + size).map((item) => item.user));
        read = size >= DIRECTORY_MIN_USERS ? emulatorRetried(() => readUserDirectory(w.iam, names, w.account), retried, emulator) : Promise.resolve(undefined);
        directories.set(block, read);
      }
      return read;
    };
    await pool(items, concurrency, async (item, i) => each(item, await directoryOf(i)));
  };
  const phase = async (name: Parameters<NonNullable<FloorOptions['onPhase']>>[0], each: (w: AccountWork) => Promise<void>): Promise<number> => {
    const t = Date.now();
    await pool(work, options.accountConcurrency ?? work.length, each);
    const ms = Date.now() - t;
    options.onPhase?.(name, ms);
    return ms;
  };

  // Plan: the credential report, then the reads planStaleIamUserRemoval makes of every stale candidate.
  const plan = await phase('planned', async (w) => {
    const at = new Date();
    const report = await emulatorRetried(() => fetchCredentialReport(w.iam, { now: at, maxAgeMs: emulator === 'moto' ? null : 4 * 3_600_000 }), retried, emulator);
    const rows = parseCredentialReport(report.csv).filter((r) => !r.isRoot);
    const candidates = rows
      .filter((row) => assessStaleness(row, { now: at, maxIdleMs: options.maxIdleMs }).verdict === 'stale')
      .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    const directory = candidates.length >= DIRECTORY_MIN_USERS ? await emulatorRetried(() => readUserDirectory(w.iam, new Set(candidates.map((c) => c.user)), w.account), retried, emulator) : undefined;
    const assessed = await pool(candidates, concurrency, async (c) => {
      const snapshot = await snapshotIamUserCredentials(w.iam, c.user, { ...lifecycle, directory, forReview: true, loginProfileKnown: true, lastUsedFromReport: reportLastUse(c) });
      if (snapshot && c.passwordEnabled === true) snapshot.loginProfile = { createDate: '', passwordResetRequired: false };
      return snapshot;
    });
    for (const snapshot of assessed) {
      if (!snapshot) continue;
      if (snapshot.tags.some((t) => t.key === EXEMPT_TAG)) continue;
      if (usedSince(snapshot, new Date(at.getTime() - options.maxIdleMs))) continue;
      if (snapshot.sshPublicKeys.length > 0 || (snapshot.serviceSpecificCredentials ?? []).length > 0) continue;
      w.planned.push({ user: snapshot.userName, before: credentialState(snapshot) });
    }
  });

  // Disable: the snapshot batch's read, then the apply batch's drift check and disableAsRecorded.
  const disable = await phase('disabled', async (w) => {
    await inBatches(w, w.planned, async (p, directory) => {
      const snapshot = await snapshotIamUserCredentials(w.iam, p.user, { ...lifecycle, directory });
      if (!snapshot || credentialDrift(p.before, snapshot, 'disable')) {
        w.leftAlone++;
        return;
      }
      await disableAsRecorded(w.iam, snapshot);
      w.disabled.push(p);
    });
  });

  const soakStart = Date.now();
  await sleep(options.soakMs);
  const soak = Date.now() - soakStart;
  options.onPhase?.('soaked', soak);

  // Delete: the full (lean) snapshot, the drift check, then removal of exactly what it records.
  const del = await phase('deleted', async (w) => {
    await inBatches(w, w.disabled, async (p, directory) => {
      const snapshot: IamUserSnapshot | null = await snapshotIamUser(w.iam, p.user, { ...lifecycle, lean: true, directory });
      if (!snapshot) return;
      if (credentialDrift(disabledState(p.before), snapshot, 'delete')) {
        w.leftAlone++;
        return;
      }
      const virtualMfaDevices = snapshot.mfaDevices.filter((d) => d.virtual).map((d) => d.serialNumber);
      await removeIamUserAsRecorded(w.iam, snapshot, { ...lifecycle, virtualMfaSerials: virtualMfaDevices, mayRemove: recordedInSnapshot(snapshot) });
      w.deleted.push({ userName: snapshot.userName, groups: snapshot.groups, virtualMfaDevices });
    });
  });

  // Verify, as verifyStaleIamUserRemoval does.
  const verify = await phase('verified', async (w) => {
    const existingMfa = w.deleted.some((d) => d.virtualMfaDevices.length > 0) ? await listVirtualMfaSerials(w.iam) : new Set<string>();
    const bulk = w.deleted.length > BULK_VERIFY_FROM;
    const users = new Set<string>();
    const members = new Map<string, Set<string> | null>();
    if (bulk) {
      for await (const page of paginateListUsers({ client: w.iam, pageSize: 1000 }, {})) for (const u of page.Users ?? []) if (u.UserName) users.add(u.UserName);
      for (const group of new Set(w.deleted.flatMap((d) => d.groups))) {
        try {
          const names = new Set<string>();
          for await (const page of paginateGetGroup({ client: w.iam, pageSize: 1000 }, { GroupName: group })) for (const u of page.Users ?? []) if (u.UserName) names.add(u.UserName);
          members.set(group, names);
        } catch (err) {
          if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
          members.set(group, null);
        }
      }
    }
    for (const d of w.deleted) {
      if (bulk) {
        if (users.has(d.userName)) w.problems.push(`${d.userName} still exists`);
        for (const group of d.groups) if (members.get(group)?.has(d.userName)) w.problems.push(`group ${group} still lists ${d.userName}`);
      } else {
        try {
          await w.iam.send(new GetUserCommand({ UserName: d.userName }));
          w.problems.push(`${d.userName} still exists`);
        } catch (err) {
          if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
        }
        for (const group of d.groups) {
          try {
            const g = await w.iam.send(new GetGroupCommand({ GroupName: group }));
            if ((g.Users ?? []).some((u) => u.UserName === d.userName)) w.problems.push(`group ${group} still lists ${d.userName}`);
          } catch (err) {
            if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
          }
        }
      }
      for (const serial of d.virtualMfaDevices) if (existingMfa.has(serial)) w.problems.push(`virtual MFA device ${serial} still exists`);
    }
  });

  return {
    wallMs: Date.now() - started,
    phasesMs: { plan, disable, soak, delete: del, verify },
    emulatorRetries: retried.reads,
    accounts: work.map((w) => ({ account: w.account, planned: w.planned.length, deleted: w.deleted.length, leftAlone: w.leftAlone, problems: w.problems })),
  };
}
