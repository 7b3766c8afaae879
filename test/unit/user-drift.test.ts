/**
 * The re-checks that stand between an approval and a destructive change. moto cannot stage most of
 * these situations (a password used, a tag added, a policy edited mid-soak), so they are tested here on
 * snapshots built the way snapshotIamUser builds them.
 */
import { credentialDrift, credentialState, disabledState, notInSnapshot, usedSince } from '../../activities/iam/user-drift';
import type { IamUserSnapshot } from '../../activities/iam/user-lifecycle';

function user(overrides: Partial<IamUserSnapshot> = {}): IamUserSnapshot {
  return {
    userName: 'leaver',
    userId: 'AIDAEXAMPLE1',
    arn: 'arn:aws:iam::123456789012:user/leaver',
    path: '/',
    createDate: '2024-01-01T00:00:00.000Z',
    passwordLastUsed: '2024-02-01T00:00:00.000Z',
    permissionsBoundary: null,
    tags: [{ key: 'team', value: 'platform' }],
    groups: ['engineers'],
    attachedPolicies: [{ name: 'ReadOnlyAccess', arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }],
    inlinePolicies: [{ name: 'p', document: '{"Version":"2012-10-17","Statement":[]}' }],
    loginProfile: { createDate: '2024-01-01T00:00:00.000Z', passwordResetRequired: false },
    accessKeys: [
      { id: 'AKIA1', status: 'Active', createDate: '2024-01-01T00:00:00.000Z', lastUsed: '2024-02-02T00:00:00.000Z', lastUsedService: 'iam', lastUsedRegion: 'us-east-1' },
      { id: 'AKIA2', status: 'Active', createDate: '2024-01-01T00:00:00.000Z', lastUsed: null, lastUsedService: null, lastUsedRegion: null },
    ],
    mfaDevices: [{ serialNumber: 'arn:aws:iam::123456789012:mfa/leaver', virtual: true, enableDate: '2024-01-01T00:00:00.000Z' }],
    sshPublicKeys: [],
    signingCertificates: [],
    serviceSpecificCredentials: [],
    notes: [],
    capturedAt: '2024-06-01T00:00:00.000Z',
    ...overrides,
  };
}

const approved = credentialState(user());
const inactive = (s: IamUserSnapshot) => s.accessKeys.map((k) => ({ ...k, status: 'Inactive' as const }));

describe('credentialDrift before disabling', () => {
  it('finds no drift when nothing changed, nor after its own earlier attempt (keys inactive, password gone)', () => {
    expect(credentialDrift(approved, user(), 'disable')).toBeUndefined();
    expect(credentialDrift(approved, user({ accessKeys: inactive(user()), loginProfile: null }), 'disable')).toBeUndefined();
  });

  it.each([
    ['a key used after approval', user({ accessKeys: [{ ...user().accessKeys[0]!, lastUsed: '2024-05-01T00:00:00.000Z' }, user().accessKeys[1]!] }), /AKIA1 was used at 2024-05-01/],
    ['a never-used key used', user({ accessKeys: [user().accessKeys[0]!, { ...user().accessKeys[1]!, lastUsed: '2024-05-01T00:00:00.000Z' }] }), /AKIA2 was used/],
    ['a new key', user({ accessKeys: [...user().accessKeys, { ...user().accessKeys[1]!, id: 'AKIA3' }] }), /AKIA3 was created after approval/],
    ['a console sign-in', user({ passwordLastUsed: '2024-05-01T00:00:00.000Z' }), /console password was used at 2024-05-01/],
    ['the user recreated under the same name', user({ userId: 'AIDAOTHER' }), /recreated/],
    ['an exempt tag added', user({ tags: [{ key: 'countersign:exempt', value: 'back from leave' }] }), /tagged countersign:exempt/],
    ['an SSH key added', user({ sshPublicKeys: [{ id: 'APKA1', status: 'Active', uploadDate: '2024-05-01T00:00:00.000Z', fingerprint: null, body: null }] }), /manual review/],
  ])('leaves the user alone after %s', (_what, live, reason) => {
    expect(credentialDrift(approved, live, 'disable')).toMatch(reason);
  });

  it('treats a password created after approval as drift when there was none', () => {
    const noPassword = credentialState(user({ loginProfile: null }));
    expect(credentialDrift(noPassword, user(), 'disable')).toMatch(/console password was created after approval/);
  });
});

describe('credentialDrift before deleting (after the soak)', () => {
  const expected = disabledState(approved);
  const stillDisabled = user({ accessKeys: inactive(user()), loginProfile: null });

  it('finds no drift on a user still disabled', () => {
    expect(credentialDrift(expected, stillDisabled, 'delete')).toBeUndefined();
  });

  it('leaves alone a user whose key was re-activated or who got a password back during the soak', () => {
    const reactivated = user({ accessKeys: [{ ...stillDisabled.accessKeys[0]!, status: 'Active' }, stillDisabled.accessKeys[1]!], loginProfile: null });
    expect(credentialDrift(expected, reactivated, 'delete')).toMatch(/re-activated during the soak/);
    expect(credentialDrift(expected, user({ accessKeys: inactive(user()) }), 'delete')).toMatch(/re-created during the soak/);
  });
});

describe('notInSnapshot', () => {
  const snapshot = user();

  it('accepts the same user or a subset of it (a retried removal finds its own work done)', () => {
    expect(notInSnapshot(snapshot, user())).toBeUndefined();
    expect(notInSnapshot(snapshot, user({ groups: [], accessKeys: [], loginProfile: null, mfaDevices: [], inlinePolicies: [] }))).toBeUndefined();
  });

  it.each([
    ['a group', user({ groups: ['engineers', 'admins'] }), /group membership\(s\) admins appeared/],
    ['a managed policy', user({ attachedPolicies: [...snapshot.attachedPolicies, { name: 'Admin', arn: 'arn:aws:iam::aws:policy/AdministratorAccess' }] }), /AdministratorAccess appeared/],
    ['an inline policy', user({ inlinePolicies: [...snapshot.inlinePolicies, { name: 'q', document: '{}' }] }), /inline polic\(ies\) q appeared/],
    ['an edited inline policy', user({ inlinePolicies: [{ name: 'p', document: '{"changed":true}' }] }), /inline policy p changed/],
    ['an MFA device', user({ mfaDevices: [...snapshot.mfaDevices, { serialNumber: 'GAHT123', virtual: false, enableDate: '2024-05-01T00:00:00.000Z' }] }), /MFA device\(s\) GAHT123 appeared/],
    ['a console password', user(), /console password appeared/, user({ loginProfile: null })],
  ])('refuses to destroy %s added after the snapshot', (_what, live, reason, base = snapshot) => {
    expect(notInSnapshot(base, live)).toMatch(reason);
  });
});

describe('usedSince', () => {
  const cutoff = new Date('2024-03-01T00:00:00.000Z');
  it('finds an active key or a console password used after the cutoff, ignoring inactive keys', () => {
    expect(usedSince(user(), cutoff)).toBeUndefined();
    expect(usedSince(user({ passwordLastUsed: '2024-04-01T00:00:00.000Z' }), cutoff)).toMatch(/console password used/);
    expect(usedSince(user({ passwordLastUsed: '2024-04-01T00:00:00.000Z', loginProfile: null }), cutoff)).toBeUndefined();
    const recentKey = { ...user().accessKeys[0]!, lastUsed: '2024-04-01T00:00:00.000Z' };
    expect(usedSince(user({ accessKeys: [recentKey] }), cutoff)).toMatch(/AKIA1 used/);
    expect(usedSince(user({ accessKeys: [{ ...recentKey, status: 'Inactive' }] }), cutoff)).toBeUndefined();
  });
});
