/**
 * IAM user lifecycle primitives: snapshot (so the user can be recreated), disable (reversible),
 * re-activate (rollback of the disable) and remove (docs/aws.md §5.1, §5.2).
 *
 * These are plain async functions over one IAMClient; the activity wrapper classifies what they
 * throw (activities/aws/errors.ts). There are no retry loops here: Temporal owns retries (§6.4).
 * The one exception is the single re-enumeration §5.1 prescribes after a DeleteConflict from
 * DeleteUser, which covers a dependent added concurrently.
 */
import {
  DeactivateMFADeviceCommand,
  DeleteAccessKeyCommand,
  DeleteLoginProfileCommand,
  DeleteServiceSpecificCredentialCommand,
  DeleteSigningCertificateCommand,
  DeleteSSHPublicKeyCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  DeleteVirtualMFADeviceCommand,
  DetachUserPolicyCommand,
  GetAccessKeyLastUsedCommand,
  GetLoginProfileCommand,
  GetSSHPublicKeyCommand,
  GetUserCommand,
  GetUserPolicyCommand,
  ListServiceSpecificCredentialsCommand,
  RemoveUserFromGroupCommand,
  UpdateAccessKeyCommand,
  paginateListAccessKeys,
  paginateListAttachedUserPolicies,
  paginateListGroupsForUser,
  paginateListMFADevices,
  paginateListSSHPublicKeys,
  paginateListSigningCertificates,
  paginateListUserPolicies,
  paginateListUserTags,
} from '@aws-sdk/client-iam';
import type { IAMClient, ServiceSpecificCredentialMetadata } from '@aws-sdk/client-iam';
import { PartialChangeError, classifyAwsError, isAwsError } from '../aws/errors';
import type { Json } from '../../common/json';
import { keepAlive } from '../heartbeat';
import { ApplicationFailure } from '@temporalio/common';
import type { DirectoryUser, UserDirectory } from './user-directory';

export interface IamUserSnapshot {
  userName: string;
  userId: string;
  arn: string;
  path: string;
  createDate: string;
  passwordLastUsed: string | null;
  permissionsBoundary: string | null;
  tags: { key: string; value: string }[];
  groups: string[];
  attachedPolicies: { name: string; arn: string }[];
  /** Documents URL-decoded (GetUserPolicy returns them URL-encoded, in AWS and in moto). */
  inlinePolicies: { name: string; document: string }[];
  loginProfile: { createDate: string; passwordResetRequired: boolean } | null;
  accessKeys: {
    id: string;
    status: 'Active' | 'Inactive';
    createDate: string;
    lastUsed: string | null;
    lastUsedService: string | null;
    lastUsedRegion: string | null;
  }[];
  mfaDevices: { serialNumber: string; virtual: boolean; enableDate: string }[];
  sshPublicKeys: { id: string; status: string; uploadDate: string; fingerprint: string | null; body: string | null }[];
  signingCertificates: { id: string; status: string; uploadDate: string; body: string | null }[];
  /** null: they could not be listed (moto does not implement ListServiceSpecificCredentials). */
  serviceSpecificCredentials: { id: string; serviceName: string; status: string }[] | null;
  notes: string[];
  capturedAt: string;
  /** 'credentials': only the user, its access keys and console password were read (snapshotIamUserCredentials). */
  scope?: 'credentials';
}

export interface IamLifecycleOptions {
  /** The emulator answering, if any; only its known gaps are tolerated (docs/aws.md §9). */
  emulator?: 'moto';
  now?: () => Date;
  /**
   * Virtual MFA serials recorded in the user's snapshot. A retry after a partial removal no longer
   * sees a device that was deactivated but not yet deleted (ListMFADevices lists assigned devices
   * only), so removeIamUser also deletes these, once unassigned.
   */
  virtualMfaSerials?: string[];
  /**
   * removeIamUser asks before removing each dependent; a dependent it may not remove fails the removal
   * (non-retryable). stale-iam-users allows exactly what the snapshot in history records, so nothing
   * that appears after the snapshot (a race with the re-check) is destroyed unrecorded.
   */
  mayRemove?: (dependent: RemovedDependent) => boolean;
  /**
   * Fewer reads, same record (docs/aws.md §5.2): tags as GetUser returns them (every tag of a user;
   * no ListUserTags), and last use re-read only for Active keys (an Inactive key cannot have been used
   * since it was deactivated; its last use is recorded as unknown).
   */
  lean?: boolean;
  /**
   * The account's users read in bulk just before (activities/iam/user-directory.ts): a user it holds
   * is not read again with GetUser, and a full snapshot takes its groups and policies from it. A user
   * it does not hold is read one by one.
   */
  directory?: UserDirectory;
}

export interface RemovedDependent {
  kind:
    | 'login-profile'
    | 'access-key'
    | 'signing-certificate'
    | 'ssh-public-key'
    | 'service-specific-credential'
    | 'mfa-device'
    | 'virtual-mfa-device'
    | 'inline-policy'
    | 'managed-policy'
    | 'group-membership';
  id: string;
}

// SDK v3 names modelled errors by class; the raw wire codes are accepted too, in case an emulator's
// answer is not mapped onto the model.
const NO_SUCH_ENTITY = ['NoSuchEntityException', 'NoSuchEntity'];
const DELETE_CONFLICT = ['DeleteConflictException', 'DeleteConflict'];

function isNoSuchEntity(err: unknown): boolean {
  return isAwsError(err, ...NO_SUCH_ENTITY);
}

/** Virtual MFA devices have an ARN serial `arn:<partition>:iam::<account>:mfa/<path+name>`;
 * hardware tokens have a plain serial and FIDO keys an `:u2f/` ARN (§5.1 step 6). */
const VIRTUAL_MFA_SERIAL = /^arn:aws[a-z-]*:iam::\d{12}:mfa\/./;

export function isVirtualMfaSerial(serial: string): boolean {
  return VIRTUAL_MFA_SERIAL.test(serial);
}

/** URL-decode a policy document without throwing; undefined when it is not valid percent-encoding. */
export function decodePolicyDocument(document: string): string | undefined {
  try {
    return decodeURIComponent(document);
  } catch {
    return undefined;
  }
}

function iso(value: Date | string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? value : parsed.toISOString();
}

/** AWS reports "never used" last-use fields as the string N/A. */
function notApplicable(value: string | undefined): string | null {
  return value === undefined || value === '' || value === 'N/A' ? null : value;
}

/** Every item of every page. Lists are read in full before anything is changed: deleting while a
 * Marker is outstanding can make the next page skip entries. */
async function collect<P, T>(pages: AsyncIterable<P>, items: (page: P) => T[] | undefined): Promise<T[]> {
  const out: T[] = [];
  for await (const page of pages) out.push(...(items(page) ?? []));
  return out;
}

/** Run a delete/detach/remove; true when it removed something, false when it was already gone. */
async function removeIfPresent(send: () => Promise<unknown>): Promise<boolean> {
  keepAlive(); // one heartbeat per AWS mutation: a lost worker is noticed within the heartbeat timeout
  try {
    await send();
    return true;
  } catch (err) {
    if (isNoSuchEntity(err)) return false;
    throw err;
  }
}

/**
 * ListServiceSpecificCredentials, all pages (the SDK has no paginator for it; it takes Marker and
 * MaxItems like the other IAM lists). Returns null only when the emulator is moto, which does not
 * implement it; a refusal, and everything on real AWS, propagates (fail closed).
 */
async function listServiceSpecificCredentials(
  iam: IAMClient,
  userName: string,
  opts: IamLifecycleOptions | undefined,
): Promise<ServiceSpecificCredentialMetadata[] | null> {
  const out: ServiceSpecificCredentialMetadata[] = [];
  const seen = new Set<string>();
  let marker: string | undefined;
  try {
    for (;;) {
      const page = await iam.send(new ListServiceSpecificCredentialsCommand({ UserName: userName, Marker: marker }));
      out.push(...(page.ServiceSpecificCredentials ?? []));
      if (!page.IsTruncated || !page.Marker || seen.has(page.Marker)) break;
      seen.add(page.Marker);
      marker = page.Marker;
    }
  } catch (err) {
    // moto implements no ListServiceSpecificCredentials: its HTML 500 — or, when AWS_MAX_ATTEMPTS makes
    // the SDK retry that 500, a throttle or 5xx injected in front of moto on the last attempt — means the
    // list cannot be read there. A refusal (AccessDenied) still propagates: fail closed.
    if (opts?.emulator === 'moto' && classifyAwsError(err, { emulator: 'moto' }).category !== 'permanent') return null;
    throw err;
  }
  return out;
}

async function listAccessKeys(iam: IAMClient, userName: string) {
  return collect(paginateListAccessKeys({ client: iam }, { UserName: userName }), (p) => p.AccessKeyMetadata);
}

/** A directory entry in GetUser's shape. */
function userOfDirectory(u: DirectoryUser) {
  return {
    UserName: u.userName,
    UserId: u.userId,
    Arn: u.arn,
    Path: u.path,
    CreateDate: u.createDate,
    PasswordLastUsed: u.passwordLastUsed,
    PermissionsBoundary: u.permissionsBoundary ? { PermissionsBoundaryArn: u.permissionsBoundary } : undefined,
    Tags: u.tags.map((t) => ({ Key: t.key, Value: t.value })),
  };
}

/** GetUser's user, or undefined when there is none. */
async function getUser(iam: IAMClient, userName: string) {
  try {
    return (await iam.send(new GetUserCommand({ UserName: userName }))).User;
  } catch (err) {
    if (isNoSuchEntity(err)) return undefined;
    throw err;
  }
}

/**
 * A user's access keys with their last use: from GetAccessKeyLastUsed, or — `lean`, for an Inactive
 * key — unknown, or — `lastUsedFromReport` — the credential report's. A key deleted meanwhile is noted.
 */
async function readAccessKeys(
  iam: IAMClient,
  userName: string,
  notes: string[],
  opts?: { lean?: boolean; lastUsedFromReport?: (key: { id: string; createDate: string | null }) => string | null | undefined },
): Promise<IamUserSnapshot['accessKeys']> {
  const accessKeys: IamUserSnapshot['accessKeys'] = [];
  for (const key of await listAccessKeys(iam, userName)) {
    keepAlive();
    const id = key.AccessKeyId;
    if (!id) continue;
    if (key.Status !== 'Active' && key.Status !== 'Inactive') notes.push(`access key ${id} has status ${String(key.Status)}; recorded as Inactive`);
    const status = key.Status === 'Active' ? 'Active' : 'Inactive';
    const createDate = iso(key.CreateDate);
    const known = opts?.lean && status === 'Inactive' ? null : opts?.lastUsedFromReport?.({ id, createDate });
    if (known !== undefined) {
      accessKeys.push({ id, status, createDate: createDate ?? '', lastUsed: known, lastUsedService: null, lastUsedRegion: null });
      continue;
    }
    let lastUsed: { LastUsedDate?: Date; ServiceName?: string; Region?: string } | undefined;
    try {
      lastUsed = (await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: id }))).AccessKeyLastUsed;
    } catch (err) {
      if (!isNoSuchEntity(err)) throw err;
      notes.push(`access key ${id} was deleted while the snapshot was taken`);
      continue;
    }
    accessKeys.push({
      id,
      status,
      createDate: createDate ?? '',
      lastUsed: iso(lastUsed?.LastUsedDate),
      lastUsedService: notApplicable(lastUsed?.ServiceName),
      lastUsedRegion: notApplicable(lastUsed?.Region),
    });
  }
  return accessKeys;
}

// ---------------------------------------------------------------------------------------------
// Snapshot
// ---------------------------------------------------------------------------------------------

/** Everything needed to recreate the user (§5.2), or null when the user does not exist. */
export async function snapshotIamUser(iam: IAMClient, userName: string, opts?: IamLifecycleOptions): Promise<IamUserSnapshot | null> {
  return readingDirectory(opts, (o) => readSnapshot(iam, userName, o));
}

/**
 * Read with the directory, and once more without it when the user vanished under the per-user reads
 * (deleted after the directory was read): then the answer is what reading it alone gives.
 */
async function readingDirectory<T>(opts: IamLifecycleOptions | undefined, read: (opts: IamLifecycleOptions | undefined) => Promise<T>): Promise<T> {
  if (!opts?.directory) return read(opts);
  try {
    return await read(opts);
  } catch (err) {
    if (!isNoSuchEntity(err)) throw err;
    return read({ ...opts, directory: undefined });
  }
}

async function readSnapshot(iam: IAMClient, userName: string, opts?: IamLifecycleOptions): Promise<IamUserSnapshot | null> {
  const now = opts?.now ?? (() => new Date());
  const listed = opts?.directory?.users.get(userName);
  const user = listed ? userOfDirectory(listed) : await getUser(iam, userName);
  if (!user) return null;
  const notes: string[] = [];

  const tagList = opts?.lean || listed ? [] : await collect(paginateListUserTags({ client: iam }, { UserName: userName }), (p) => p.Tags);
  const tags = new Map<string, string>();
  for (const t of user.Tags ?? []) if (t.Key !== undefined) tags.set(t.Key, t.Value ?? '');
  for (const t of tagList) if (t.Key !== undefined) tags.set(t.Key, t.Value ?? '');

  const groups = listed
    ? listed.groups
    : (await collect(paginateListGroupsForUser({ client: iam }, { UserName: userName }), (p) => p.Groups))
        .map((g) => g.GroupName)
        .filter((n): n is string => n !== undefined);

  const attachedPolicies = listed
    ? listed.attachedPolicies
    : (await collect(paginateListAttachedUserPolicies({ client: iam }, { UserName: userName }), (p) => p.AttachedPolicies))
        .filter((p) => p.PolicyArn !== undefined)
        .map((p) => ({ name: p.PolicyName ?? '', arn: p.PolicyArn ?? '' }));

  const inlinePolicies: IamUserSnapshot['inlinePolicies'] = [];
  const keepInline = (name: string, raw: string | undefined): void => {
    const decoded = decodePolicyDocument(raw ?? '');
    if (decoded === undefined) notes.push(`inline policy ${name}: the document is not valid URL-encoding; kept as returned`);
    inlinePolicies.push({ name, document: decoded ?? raw ?? '' });
  };
  if (listed) {
    for (const p of listed.inlinePolicies) keepInline(p.name, p.document);
  } else {
    const policyNames = await collect(paginateListUserPolicies({ client: iam }, { UserName: userName }), (p) => p.PolicyNames);
    for (const name of policyNames) {
      let raw: string | undefined;
      try {
        raw = (await iam.send(new GetUserPolicyCommand({ UserName: userName, PolicyName: name }))).PolicyDocument;
      } catch (err) {
        if (!isNoSuchEntity(err)) throw err;
        notes.push(`inline policy ${name} was deleted while the snapshot was taken`);
        continue;
      }
      keepInline(name, raw);
    }
  }

  let loginProfile: IamUserSnapshot['loginProfile'] = null;
  try {
    const lp = (await iam.send(new GetLoginProfileCommand({ UserName: userName }))).LoginProfile;
    if (lp) loginProfile = { createDate: iso(lp.CreateDate) ?? '', passwordResetRequired: lp.PasswordResetRequired === true };
  } catch (err) {
    if (!isNoSuchEntity(err)) throw err;
  }

  const accessKeys = await readAccessKeys(iam, userName, notes, opts);

  const mfaDevices = (await collect(paginateListMFADevices({ client: iam }, { UserName: userName }), (p) => p.MFADevices))
    .filter((d) => d.SerialNumber !== undefined)
    .map((d) => ({ serialNumber: d.SerialNumber ?? '', virtual: isVirtualMfaSerial(d.SerialNumber ?? ''), enableDate: iso(d.EnableDate) ?? '' }));

  const sshPublicKeys: IamUserSnapshot['sshPublicKeys'] = [];
  for (const k of await collect(paginateListSSHPublicKeys({ client: iam }, { UserName: userName }), (p) => p.SSHPublicKeys)) {
    const id = k.SSHPublicKeyId;
    if (!id) continue;
    let fingerprint: string | null = null;
    let body: string | null = null;
    try {
      const full = (await iam.send(new GetSSHPublicKeyCommand({ UserName: userName, SSHPublicKeyId: id, Encoding: 'SSH' }))).SSHPublicKey;
      fingerprint = full?.Fingerprint ?? null;
      body = full?.SSHPublicKeyBody ?? null;
    } catch (err) {
      if (!isNoSuchEntity(err)) throw err;
      notes.push(`SSH public key ${id} was deleted while the snapshot was taken`);
      continue;
    }
    sshPublicKeys.push({ id, status: k.Status ?? '', uploadDate: iso(k.UploadDate) ?? '', fingerprint, body });
  }

  const signingCertificates = (
    await collect(paginateListSigningCertificates({ client: iam }, { UserName: userName }), (p) => p.Certificates)
  )
    .filter((c) => c.CertificateId !== undefined)
    .map((c) => ({ id: c.CertificateId ?? '', status: c.Status ?? '', uploadDate: iso(c.UploadDate) ?? '', body: c.CertificateBody ?? null }));

  const ssc = await listServiceSpecificCredentials(iam, userName, opts);
  if (ssc === null) {
    notes.push('service-specific credentials could not be listed: the moto emulator does not implement ListServiceSpecificCredentials');
  }

  return {
    userName: user.UserName ?? userName,
    userId: user.UserId ?? '',
    arn: user.Arn ?? '',
    path: user.Path ?? '/',
    createDate: iso(user.CreateDate) ?? '',
    passwordLastUsed: iso(user.PasswordLastUsed),
    permissionsBoundary: user.PermissionsBoundary?.PermissionsBoundaryArn ?? null,
    tags: [...tags].map(([key, value]) => ({ key, value })),
    groups,
    attachedPolicies,
    inlinePolicies,
    loginProfile,
    accessKeys,
    mfaDevices,
    sshPublicKeys,
    signingCertificates,
    serviceSpecificCredentials:
      ssc === null
        ? null
        : ssc
            .filter((c) => c.ServiceSpecificCredentialId !== undefined)
            .map((c) => ({ id: c.ServiceSpecificCredentialId ?? '', serviceName: c.ServiceName ?? '', status: c.Status ?? '' })),
    notes,
    capturedAt: now().toISOString(),
  };
}

/**
 * What disabling a user destroys or changes, and what its re-check needs: the user, its access keys
 * with their last use, its console password. Four or five reads instead of the full snapshot's dozen.
 */
export interface CredentialReadOptions extends IamLifecycleOptions {
  /** Also list SSH keys and service-specific credentials: what planning needs to flag a user for manual review. */
  forReview?: boolean;
  /** The console password's presence is already known (the credential report): not read again. */
  loginProfileKnown?: boolean;
  /**
   * A key's last use as the credential report gives it (matched by creation time), or undefined to
   * ask GetAccessKeyLastUsed: planning reads the report anyway, and the re-check before the change
   * reads each key's last use live.
   */
  lastUsedFromReport?: (key: { id: string; createDate: string | null }) => string | null | undefined;
}

export async function snapshotIamUserCredentials(iam: IAMClient, userName: string, opts?: CredentialReadOptions): Promise<IamUserSnapshot | null> {
  return readingDirectory(opts, (o) => readCredentials(iam, userName, o));
}

async function readCredentials(iam: IAMClient, userName: string, opts?: CredentialReadOptions): Promise<IamUserSnapshot | null> {
  const now = opts?.now ?? (() => new Date());
  const listed = opts?.directory?.users.get(userName);
  const user = listed ? userOfDirectory(listed) : await getUser(iam, userName);
  if (!user) return null;
  const notes: string[] = [];
  const accessKeys = await readAccessKeys(iam, userName, notes, opts);
  let loginProfile: IamUserSnapshot['loginProfile'] = null;
  if (!opts?.loginProfileKnown) {
    try {
      const lp = (await iam.send(new GetLoginProfileCommand({ UserName: userName }))).LoginProfile;
      if (lp) loginProfile = { createDate: iso(lp.CreateDate) ?? '', passwordResetRequired: lp.PasswordResetRequired === true };
    } catch (err) {
      if (!isNoSuchEntity(err)) throw err;
    }
  }
  const sshPublicKeys: IamUserSnapshot['sshPublicKeys'] = [];
  let serviceSpecificCredentials: IamUserSnapshot['serviceSpecificCredentials'] = [];
  if (opts?.forReview) {
    for (const k of await collect(paginateListSSHPublicKeys({ client: iam }, { UserName: userName }), (p) => p.SSHPublicKeys)) {
      if (k.SSHPublicKeyId) sshPublicKeys.push({ id: k.SSHPublicKeyId, status: k.Status ?? '', uploadDate: iso(k.UploadDate) ?? '', fingerprint: null, body: null });
    }
    const ssc = await listServiceSpecificCredentials(iam, userName, opts);
    serviceSpecificCredentials = ssc === null ? null : ssc.map((c) => ({ id: c.ServiceSpecificCredentialId ?? '', serviceName: c.ServiceName ?? '', status: c.Status ?? '' }));
  }
  return {
    userName: user.UserName ?? userName,
    userId: user.UserId ?? '',
    arn: user.Arn ?? '',
    path: user.Path ?? '/',
    createDate: iso(user.CreateDate) ?? '',
    passwordLastUsed: iso(user.PasswordLastUsed),
    permissionsBoundary: user.PermissionsBoundary?.PermissionsBoundaryArn ?? null,
    tags: (user.Tags ?? []).filter((t) => t.Key !== undefined).map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' })),
    groups: [],
    attachedPolicies: [],
    inlinePolicies: [],
    loginProfile,
    accessKeys,
    mfaDevices: [],
    sshPublicKeys,
    signingCertificates: [],
    serviceSpecificCredentials,
    notes,
    capturedAt: now().toISOString(),
    scope: 'credentials',
  };
}

/**
 * Remove exactly the dependents a snapshot records, then DeleteUser (docs/aws.md §5.1 order), without
 * listing them again: the snapshot was read just before, in its own activity, and is the re-check. A
 * dependent that appeared since makes DeleteUser answer DeleteConflict; then the user is re-enumerated
 * once by removeIamUser, which refuses to remove anything the snapshot does not record.
 */
export async function removeIamUserAsRecorded(
  iam: IAMClient,
  s: IamUserSnapshot,
  opts?: IamLifecycleOptions,
): Promise<{ removed: RemovedDependent[]; alreadyGone: boolean }> {
  const removed: RemovedDependent[] = [];
  const U = { UserName: s.userName };
  const remove = async (dependent: RemovedDependent, send: () => Promise<unknown>): Promise<void> => {
    if (await removeIfPresent(send)) removed.push(dependent);
  };
  try {
    if (s.loginProfile) await remove({ kind: 'login-profile', id: s.userName }, () => iam.send(new DeleteLoginProfileCommand(U)));
    for (const k of s.accessKeys) await remove({ kind: 'access-key', id: k.id }, () => iam.send(new DeleteAccessKeyCommand({ ...U, AccessKeyId: k.id })));
    for (const c of s.signingCertificates) await remove({ kind: 'signing-certificate', id: c.id }, () => iam.send(new DeleteSigningCertificateCommand({ ...U, CertificateId: c.id })));
    for (const k of s.sshPublicKeys) await remove({ kind: 'ssh-public-key', id: k.id }, () => iam.send(new DeleteSSHPublicKeyCommand({ ...U, SSHPublicKeyId: k.id })));
    for (const c of s.serviceSpecificCredentials ?? []) {
      await remove({ kind: 'service-specific-credential', id: c.id }, () => iam.send(new DeleteServiceSpecificCredentialCommand({ ...U, ServiceSpecificCredentialId: c.id })));
    }
    for (const d of s.mfaDevices) {
      await remove({ kind: 'mfa-device', id: d.serialNumber }, () => iam.send(new DeactivateMFADeviceCommand({ ...U, SerialNumber: d.serialNumber })));
      if (d.virtual) await remove({ kind: 'virtual-mfa-device', id: d.serialNumber }, () => iam.send(new DeleteVirtualMFADeviceCommand({ SerialNumber: d.serialNumber })));
    }
    for (const p of s.inlinePolicies) await remove({ kind: 'inline-policy', id: p.name }, () => iam.send(new DeleteUserPolicyCommand({ ...U, PolicyName: p.name })));
    for (const p of s.attachedPolicies) await remove({ kind: 'managed-policy', id: p.arn }, () => iam.send(new DetachUserPolicyCommand({ ...U, PolicyArn: p.arn })));
    for (const g of s.groups) await remove({ kind: 'group-membership', id: g }, () => iam.send(new RemoveUserFromGroupCommand({ ...U, GroupName: g })));
    try {
      keepAlive();
      await iam.send(new DeleteUserCommand(U));
      return { removed, alreadyGone: false };
    } catch (err) {
      if (isNoSuchEntity(err)) return { removed, alreadyGone: removed.length === 0 };
      if (!isAwsError(err, ...DELETE_CONFLICT)) throw err;
    }
    // Something appeared since the snapshot: one full pass that refuses anything unrecorded.
    const again = await removeIamUser(iam, s.userName, opts);
    return { removed: [...removed, ...again.removed], alreadyGone: false };
  } catch (err) {
    if (err instanceof PartialChangeError) {
      const inner = (err.observed ?? {}) as { removed?: RemovedDependent[] };
      throw new PartialChangeError(err.failure, { userName: s.userName, removed: [...removed, ...(inner.removed ?? [])] as unknown as Json, userDeleted: false });
    }
    if (removed.length > 0) throw new PartialChangeError(err, { userName: s.userName, removed: removed as unknown as Json, userDeleted: false });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Disable and its rollback
// ---------------------------------------------------------------------------------------------

/**
 * Deactivate every active access key (reversible) and delete the console password (irreversible:
 * rollback is a new temporary password). Idempotent: a re-run reports nothing new.
 */
export async function disableIamUserCredentials(
  iam: IAMClient,
  userName: string,
  opts: { onlyKeys?: string[] } = {},
): Promise<{ deactivatedKeys: string[]; deletedLoginProfile: boolean }> {
  const deactivatedKeys: string[] = [];
  for (const key of await listAccessKeys(iam, userName)) {
    if (key.Status !== 'Active' || !key.AccessKeyId) continue;
    // Only keys recorded beforehand (a key created since is the next re-check's drift, not ours to touch).
    if (opts.onlyKeys && !opts.onlyKeys.includes(key.AccessKeyId)) continue;
    const id = key.AccessKeyId;
    const done = await removeIfPresent(() => iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: id, Status: 'Inactive' })));
    if (done) deactivatedKeys.push(id);
  }
  const deletedLoginProfile = await removeIfPresent(() => iam.send(new DeleteLoginProfileCommand({ UserName: userName })));
  return { deactivatedKeys, deletedLoginProfile };
}

/**
 * Disable exactly what a snapshot taken just before records (its Active keys, its console password),
 * without listing again: the snapshot activity's read is the re-check. Idempotent.
 */
export async function disableAsRecorded(iam: IAMClient, s: IamUserSnapshot): Promise<{ deactivatedKeys: string[]; deletedLoginProfile: boolean }> {
  const deactivatedKeys: string[] = [];
  for (const key of s.accessKeys) {
    if (key.status !== 'Active') continue;
    if (await removeIfPresent(() => iam.send(new UpdateAccessKeyCommand({ UserName: s.userName, AccessKeyId: key.id, Status: 'Inactive' })))) deactivatedKeys.push(key.id);
  }
  const deletedLoginProfile = s.loginProfile ? await removeIfPresent(() => iam.send(new DeleteLoginProfileCommand({ UserName: s.userName }))) : false;
  return { deactivatedKeys, deletedLoginProfile };
}

/** Rollback of the disable: re-activate the given keys. A key that no longer exists is reported, not thrown. */
export async function reactivateAccessKeys(
  iam: IAMClient,
  userName: string,
  keyIds: string[],
): Promise<{ reactivated: string[]; missing: string[] }> {
  const reactivated: string[] = [];
  const missing: string[] = [];
  for (const id of keyIds) {
    const done = await removeIfPresent(() => iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: id, Status: 'Active' })));
    (done ? reactivated : missing).push(id);
  }
  return { reactivated, missing };
}

// ---------------------------------------------------------------------------------------------
// Remove
// ---------------------------------------------------------------------------------------------

/** One pass over the nine dependent kinds, in the §5.1 order. */
async function removeDependents(iam: IAMClient, userName: string, opts: IamLifecycleOptions | undefined, removed: RemovedDependent[]): Promise<void> {
  const U = { UserName: userName };
  const allowed = (dependent: RemovedDependent): boolean => !opts?.mayRemove || opts.mayRemove(dependent);
  const unrecorded = (dependent: RemovedDependent) =>
    ApplicationFailure.create({
      type: 'NotInSnapshot',
      nonRetryable: true,
      message: `${dependent.kind} ${dependent.id} of ${userName} appeared after the snapshot taken before this change; it is not removed without a record of it (plan the user again)`,
    });
  /** Remove one dependent, if the caller allows it; "already gone" is success. */
  const remove = async (dependent: RemovedDependent, send: () => Promise<unknown>): Promise<void> => {
    if (!allowed(dependent)) throw unrecorded(dependent);
    if (await removeIfPresent(send)) removed.push(dependent);
  };

  // 1. Console password (not listed: deleted directly, or, when not allowed, refused only if it exists).
  const password: RemovedDependent = { kind: 'login-profile', id: userName };
  if (allowed(password)) await remove(password, () => iam.send(new DeleteLoginProfileCommand(U)));
  else if (await loginProfileExists(iam, userName)) throw unrecorded(password);

  // 2. Access keys.
  for (const k of await listAccessKeys(iam, userName)) {
    const id = k.AccessKeyId;
    if (id) await remove({ kind: 'access-key', id }, () => iam.send(new DeleteAccessKeyCommand({ ...U, AccessKeyId: id })));
  }

  // 3. Signing certificates.
  for (const c of await collect(paginateListSigningCertificates({ client: iam }, { ...U }), (p) => p.Certificates)) {
    const id = c.CertificateId;
    if (id) await remove({ kind: 'signing-certificate', id }, () => iam.send(new DeleteSigningCertificateCommand({ ...U, CertificateId: id })));
  }

  // 4. SSH public keys.
  for (const k of await collect(paginateListSSHPublicKeys({ client: iam }, { ...U }), (p) => p.SSHPublicKeys)) {
    const id = k.SSHPublicKeyId;
    if (id) await remove({ kind: 'ssh-public-key', id }, () => iam.send(new DeleteSSHPublicKeyCommand({ ...U, SSHPublicKeyId: id })));
  }

  // 5. Service-specific credentials (null = moto does not implement the list: nothing to remove).
  for (const c of (await listServiceSpecificCredentials(iam, userName, opts)) ?? []) {
    const id = c.ServiceSpecificCredentialId;
    if (id) {
      await remove({ kind: 'service-specific-credential', id }, () =>
        iam.send(new DeleteServiceSpecificCredentialCommand({ ...U, ServiceSpecificCredentialId: id })),
      );
    }
  }

  // 6. MFA: deactivate every device; delete the virtual ones afterwards (an assigned virtual device
  //    cannot be deleted). Hardware and FIDO devices are only deactivated.
  for (const d of await collect(paginateListMFADevices({ client: iam }, { ...U }), (p) => p.MFADevices)) {
    const serial = d.SerialNumber;
    if (!serial) continue;
    await remove({ kind: 'mfa-device', id: serial }, () => iam.send(new DeactivateMFADeviceCommand({ ...U, SerialNumber: serial })));
    if (isVirtualMfaSerial(serial)) {
      await remove({ kind: 'virtual-mfa-device', id: serial }, () => iam.send(new DeleteVirtualMFADeviceCommand({ SerialNumber: serial })));
    }
  }
  for (const serial of opts?.virtualMfaSerials ?? []) {
    if (!isVirtualMfaSerial(serial) || removed.some((r) => r.id === serial)) continue;
    await remove({ kind: 'virtual-mfa-device', id: serial }, () => iam.send(new DeleteVirtualMFADeviceCommand({ SerialNumber: serial })));
  }

  // 7. Inline policies.
  for (const name of await collect(paginateListUserPolicies({ client: iam }, { ...U }), (p) => p.PolicyNames)) {
    await remove({ kind: 'inline-policy', id: name }, () => iam.send(new DeleteUserPolicyCommand({ ...U, PolicyName: name })));
  }

  // 8. Attached managed policies.
  for (const p of await collect(paginateListAttachedUserPolicies({ client: iam }, { ...U }), (pg) => pg.AttachedPolicies)) {
    const arn = p.PolicyArn;
    if (arn) await remove({ kind: 'managed-policy', id: arn }, () => iam.send(new DetachUserPolicyCommand({ ...U, PolicyArn: arn })));
  }

  // 9. Group memberships.
  for (const g of await collect(paginateListGroupsForUser({ client: iam }, { ...U }), (p) => p.Groups)) {
    const group = g.GroupName;
    if (group) await remove({ kind: 'group-membership', id: group }, () => iam.send(new RemoveUserFromGroupCommand({ ...U, GroupName: group })));
  }
}

/** Whether a Get call finds its entity (NoSuchEntity = no). */
async function found(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (err) {
    if (isNoSuchEntity(err)) return false;
    throw err;
  }
}

const loginProfileExists = (iam: IAMClient, userName: string) => found(() => iam.send(new GetLoginProfileCommand({ UserName: userName })));
const userExists = (iam: IAMClient, userName: string) => found(() => iam.send(new GetUserCommand({ UserName: userName })));

/**
 * Remove every dependent (§5.1 order), then DeleteUser. A DeleteConflict means a dependent appeared
 * concurrently: re-enumerate once, then DeleteUser again; a second DeleteConflict propagates.
 * alreadyGone: the user did not exist (or vanished under us), so this call deleted no user.
 */
export async function removeIamUser(
  iam: IAMClient,
  userName: string,
  opts?: IamLifecycleOptions,
): Promise<{ removed: RemovedDependent[]; alreadyGone: boolean }> {
  const removed: RemovedDependent[] = [];
  if (!(await userExists(iam, userName))) return { removed, alreadyGone: true };

  /** One pass plus DeleteUser; 'conflict' only when a DeleteConflict from DeleteUser may be retried. */
  const attempt = async (last: boolean): Promise<'deleted' | 'gone' | 'conflict'> => {
    try {
      await removeDependents(iam, userName, opts, removed);
    } catch (err) {
      // A list on a user deleted concurrently answers NoSuchEntity: confirm before calling it done.
      if (isNoSuchEntity(err) && !(await userExists(iam, userName))) return 'gone';
      throw err;
    }
    try {
      await iam.send(new DeleteUserCommand({ UserName: userName }));
      return 'deleted';
    } catch (err) {
      if (isNoSuchEntity(err)) return 'gone';
      if (!last && isAwsError(err, ...DELETE_CONFLICT)) return 'conflict';
      throw err; // a second DeleteConflict propagates; the activity wrapper makes it non-retryable
    }
  };

  try {
    let outcome = await attempt(false);
    if (outcome === 'conflict') outcome = await attempt(true); // a dependent appeared concurrently: re-enumerate once
    return { removed, alreadyGone: outcome === 'gone' };
  } catch (err) {
    // Dependents already removed stay removed: the failure says which, so the result records them.
    if (removed.length > 0) throw new PartialChangeError(err, { userName, removed: removed as unknown as Json, userDeleted: false });
    throw err;
  }
}
