/**
 * The fail-closed re-checks of stale-iam-users (docs/design.md §1.4): before changing a user, compare a fresh
 * read with the state the approver approved, and with the snapshot already in history, and refuse on
 * any difference that matters. Pure functions, unit-tested.
 */
import type { Json } from '../../common/json';
import type { IamUserSnapshot, RemovedDependent } from './user-lifecycle';

export const EXEMPT_TAG = 'countersign:exempt';

/** The part of a user the plan approves and the activities re-check. */
export interface CredentialState {
  [key: string]: Json;
  userName: string;
  userId: string;
  accessKeys: { id: string; status: string; lastUsed: string | null }[];
  loginProfile: boolean;
  passwordLastUsed: string | null;
}

export function credentialState(s: IamUserSnapshot): CredentialState {
  return {
    userName: s.userName,
    userId: s.userId,
    accessKeys: s.accessKeys.map((k) => ({ id: k.id, status: k.status, lastUsed: k.lastUsed })).sort((a, b) => a.id.localeCompare(b.id)),
    loginProfile: s.loginProfile !== null,
    passwordLastUsed: s.passwordLastUsed,
  };
}

/** What the plan promises after the disable stage (and what the delete stage expects to find). */
export function disabledState(s: CredentialState): CredentialState {
  return { ...s, accessKeys: s.accessKeys.map((k) => ({ ...k, status: 'Inactive' })), loginProfile: false };
}

/**
 * `a` is a later use than `b`. Within a minute counts as the same use: the plan may take a key's last
 * use from the credential report and the re-check from GetAccessKeyLastUsed, which need not round alike;
 * a use after approval is never that close to a last use already older than maxIdle.
 */
const later = (a: string | null, b: string | null): boolean => a !== null && (b === null || Date.parse(a) > Date.parse(b) + 60_000);

/**
 * Why the live user differs from the approved state, or undefined. `disable` tolerates what the disable
 * itself does (keys Inactive, password gone) so a retried activity re-checks cleanly; `delete` expects
 * the user still disabled.
 */
export function credentialDrift(approved: CredentialState, live: IamUserSnapshot, mode: 'disable' | 'delete'): string | undefined {
  if (live.userId !== approved.userId) return `the user was recreated (UserId ${approved.userId} → ${live.userId})`;
  const approvedKeys = new Map(approved.accessKeys.map((k) => [k.id, k]));
  for (const key of live.accessKeys) {
    const was = approvedKeys.get(key.id);
    if (!was) return `access key ${key.id} was created after approval`;
    if (later(key.lastUsed, was.lastUsed)) return `access key ${key.id} was used at ${key.lastUsed} after approval`;
    if (mode === 'delete' && key.status === 'Active') return `access key ${key.id} was re-activated during the soak`;
    if (mode === 'disable' && key.status === 'Active' && was.status !== 'Active') return `access key ${key.id} was activated after approval`;
  }
  if (later(live.passwordLastUsed, approved.passwordLastUsed)) return `the console password was used at ${live.passwordLastUsed} after approval`;
  if (live.loginProfile && !approved.loginProfile) {
    return mode === 'delete' ? 'a console password was re-created during the soak' : 'a console password was created after approval';
  }
  if (live.tags.some((t) => t.key === EXEMPT_TAG)) return `the user was tagged ${EXEMPT_TAG} after approval`;
  if (live.sshPublicKeys.length > 0 || live.signingCertificates.length > 0 || (live.serviceSpecificCredentials ?? []).length > 0) {
    return 'the user now holds SSH keys, signing certificates or service-specific credentials (manual review)';
  }
  return undefined;
}

/**
 * What the live user holds that the snapshot in history does not record, or undefined. Nothing may be
 * destroyed without a record of it; a subset is fine (a retried activity finds its own earlier work done).
 */
export function notInSnapshot(snapshot: IamUserSnapshot, live: IamUserSnapshot): string | undefined {
  if (live.userId !== snapshot.userId) return `the user was recreated since the snapshot (UserId ${snapshot.userId} → ${live.userId})`;
  const missing = <T>(what: string, liveItems: T[], recorded: T[], key: (t: T) => string): string | undefined => {
    const known = new Set(recorded.map(key));
    const extra = liveItems.map(key).filter((k) => !known.has(k));
    return extra.length ? `${what} ${extra.join(', ')} appeared after the snapshot` : undefined;
  };
  const inline = new Map(snapshot.inlinePolicies.map((p) => [p.name, p.document]));
  const changedInline = live.inlinePolicies.find((p) => inline.has(p.name) && inline.get(p.name) !== p.document);
  return (
    (live.loginProfile && !snapshot.loginProfile ? 'a console password appeared after the snapshot' : undefined) ??
    missing('access key(s)', live.accessKeys, snapshot.accessKeys, (k) => k.id) ??
    missing('group membership(s)', live.groups, snapshot.groups, (g) => g) ??
    missing('managed polic(ies)', live.attachedPolicies, snapshot.attachedPolicies, (p) => p.arn) ??
    missing('inline polic(ies)', live.inlinePolicies, snapshot.inlinePolicies, (p) => p.name) ??
    (changedInline ? `inline policy ${changedInline.name} changed after the snapshot` : undefined) ??
    missing('MFA device(s)', live.mfaDevices, snapshot.mfaDevices, (d) => d.serialNumber) ??
    missing('SSH key(s)', live.sshPublicKeys, snapshot.sshPublicKeys, (k) => k.id) ??
    missing('signing certificate(s)', live.signingCertificates, snapshot.signingCertificates, (c) => c.id)
  );
}

/** The active credential used since `cutoff`, if any (the report can be hours old: §5.3). */
export function usedSince(live: IamUserSnapshot, cutoff: Date): string | undefined {
  const key = live.accessKeys.find((k) => k.status === 'Active' && k.lastUsed !== null && Date.parse(k.lastUsed) > cutoff.getTime());
  if (key) return `access key ${key.id} used ${key.lastUsed}`;
  if (live.loginProfile && live.passwordLastUsed !== null && Date.parse(live.passwordLastUsed) > cutoff.getTime()) {
    return `console password used ${live.passwordLastUsed}`;
  }
  return undefined;
}

/** Which dependents the snapshot records: removeIamUser may remove exactly these (`mayRemove`). */
export function recordedInSnapshot(s: IamUserSnapshot): (dependent: RemovedDependent) => boolean {
  const recorded = new Set<string>([
    ...(s.loginProfile ? [`login-profile:${s.userName}`] : []),
    ...s.accessKeys.map((k) => `access-key:${k.id}`),
    ...s.signingCertificates.map((c) => `signing-certificate:${c.id}`),
    ...s.sshPublicKeys.map((k) => `ssh-public-key:${k.id}`),
    ...(s.serviceSpecificCredentials ?? []).map((c) => `service-specific-credential:${c.id}`),
    ...s.mfaDevices.flatMap((d) => [`mfa-device:${d.serialNumber}`, `virtual-mfa-device:${d.serialNumber}`]),
    ...s.inlinePolicies.map((p) => `inline-policy:${p.name}`),
    ...s.attachedPolicies.map((p) => `managed-policy:${p.arn}`),
    ...s.groups.map((g) => `group-membership:${g}`),
  ]);
  return (d) => recorded.has(`${d.kind}:${d.id}`);
}
