/**
 * IAM user lifecycle (activities/iam/user-lifecycle.ts) against a STATEFUL fake IAM.
 *
 * Why a fake and not moto: moto is lenient exactly where this code can go wrong (docs/aws.md
 * §9). It lets DeleteUser succeed while login profiles, keys, MFA, SSH keys, certificates and
 * group memberships remain (only policies block it), lets DeleteVirtualMFADevice delete a device
 * that is still assigned, ignores Marker/MaxItems on IAM lists, and does not implement
 * ListServiceSpecificCredentials at all. A test against moto would pass with a missing step, a
 * wrong MFA order or no pagination. The fake below behaves like real AWS on those points:
 *
 *   - DeleteUser throws DeleteConflictException while any of the 9 dependent kinds remains;
 *   - DeleteVirtualMFADevice throws DeleteConflictException while the device is still assigned;
 *   - every list returns one item per page (IAM may return fewer than MaxItems) with an
 *     offset-based Marker, so a missing paginator, or deleting while a Marker is outstanding,
 *     leaves dependents behind;
 *   - deletes, detaches and removals of missing things throw NoSuchEntityException.
 *
 * The assertions are on the fake's resulting state (what AWS would hold afterwards), not on calls.
 */
import {
  DeactivateMFADeviceCommand,
  DeleteAccessKeyCommand,
  DeleteConflictException,
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
  IAMClient,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListMFADevicesCommand,
  ListServiceSpecificCredentialsCommand,
  ListSigningCertificatesCommand,
  ListSSHPublicKeysCommand,
  ListUserPoliciesCommand,
  ListUserTagsCommand,
  NoSuchEntityException,
  RemoveUserFromGroupCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClientStub, AwsCommand } from 'aws-sdk-client-mock';
import type { Json } from '../../common/json';
import { PartialChangeError, classifyAwsError, toActivityFailure } from '../../activities/aws/errors';
import type { IamUserSnapshot, RemovedDependent } from '../../activities/iam/user-lifecycle';
import {
  disableIamUserCredentials,
  reactivateAccessKeys,
  removeIamUser,
  snapshotIamUser,
} from '../../activities/iam/user-lifecycle';

const ACCOUNT = '123456789012';

// ------------------------------------------------------------------------------------------------
// The fake
// ------------------------------------------------------------------------------------------------

interface FakeUser {
  name: string;
  id: string;
  path: string;
  createDate: Date;
  passwordLastUsed?: Date;
  boundary?: string;
  tags: Map<string, string>;
  loginProfile: { createDate: Date; reset: boolean } | null;
  accessKeys: Map<string, { status: 'Active' | 'Inactive'; createDate: Date; lastUsed?: { date: Date; service: string; region: string } }>;
  certs: Map<string, { status: 'Active' | 'Inactive'; body: string; uploadDate: Date }>;
  sshKeys: Map<string, { status: 'Active' | 'Inactive'; body: string; fingerprint: string; uploadDate: Date }>;
  sscs: Map<string, { service: string; status: 'Active' | 'Inactive'; createDate: Date }>;
  /** name → the document as IAM returns it from GetUserPolicy: URL-encoded. */
  inline: Map<string, string>;
  /** arn → name */
  attached: Map<string, string>;
}

const noSuchEntity = (what: string) => new NoSuchEntityException({ message: `The ${what} cannot be found.`, $metadata: { httpStatusCode: 404 } });
/** The AWS error inside a failure that also reports partial progress. */
const unwrap = (err: unknown): unknown => (err instanceof PartialChangeError ? err.failure : err);

const deleteConflict = (message: string) => new DeleteConflictException({ message, $metadata: { httpStatusCode: 409 } });

const validationError = (message: string) => Object.assign(new Error(message), { name: 'ValidationError', $metadata: { httpStatusCode: 400 } });

/** A required parameter, as IAM validates it. */
function need(value: string | undefined): string {
  if (value === undefined || value === '') throw validationError('a required parameter is missing');
  return value;
}

/** What the SDK throws for moto's HTML 500 on an unimplemented IAM operation (docs/aws.md §6.1, §9). */
function motoUnimplemented(): Error {
  const err = new Error('Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.');
  return Object.assign(err, { name: 'Error', $metadata: { httpStatusCode: 500, attempts: 1 } });
}

interface PageInput {
  Marker?: string;
  MaxItems?: number;
}

/** One item per page (IAM may return fewer than MaxItems), with an offset-based Marker. */
function page<T>(items: T[], input: PageInput): { items: T[]; IsTruncated: boolean; Marker?: string } {
  const start = input.Marker === undefined ? 0 : Number(input.Marker.replace(/^offset-/, ''));
  if (!Number.isInteger(start) || start < 0) throw new Error(`fake IAM: bad Marker ${String(input.Marker)}`);
  const size = Math.min(input.MaxItems ?? 100, 1);
  const slice = items.slice(start, start + size);
  const next = start + slice.length;
  return next < items.length ? { items: slice, IsTruncated: true, Marker: `offset-${next}` } : { items: slice, IsTruncated: false };
}

class FakeIam {
  readonly users = new Map<string, FakeUser>();
  /** serial → device; `user` is the assigned user, or null once deactivated. */
  readonly mfa = new Map<string, { virtual: boolean; user: string | null; enableDate: Date }>();
  readonly groups = new Map<string, Set<string>>();
  deleteUserAttempts = 0;
  deleteConflicts = 0;
  /** Runs at the start of each DeleteUser, before the dependents are checked (concurrent changes). */
  beforeDeleteUser?: (attempt: number) => void;
  /** How ListServiceSpecificCredentials fails, when it does (moto: unimplemented). */
  sscListError?: () => Error;
  /** Make one operation fail with a given error (e.g. AccessDenied). */
  failures = new Map<string, () => Error>();
  private seq = 0;

  addUser(name: string, extra: Partial<FakeUser> = {}): FakeUser {
    const user: FakeUser = {
      name,
      id: `AIDA${name.toUpperCase().padEnd(17, 'X')}`,
      path: '/',
      createDate: new Date('2023-01-02T03:04:05Z'),
      tags: new Map(),
      loginProfile: null,
      accessKeys: new Map(),
      certs: new Map(),
      sshKeys: new Map(),
      sscs: new Map(),
      inline: new Map(),
      attached: new Map(),
      ...extra,
    };
    this.users.set(name, user);
    return user;
  }

  nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}${String(this.seq).padStart(16, '0')}`;
  }

  addAccessKey(user: string, status: 'Active' | 'Inactive' = 'Active'): string {
    const id = this.nextId('AKIA');
    this.user(user).accessKeys.set(id, { status, createDate: new Date('2023-02-01T00:00:00Z') });
    return id;
  }

  addToGroup(user: string, group: string): void {
    const members = this.groups.get(group) ?? new Set<string>();
    members.add(user);
    this.groups.set(group, members);
  }

  addMfa(user: string, serial: string, virtual: boolean): void {
    this.mfa.set(serial, { virtual, user, enableDate: new Date('2023-03-01T00:00:00Z') });
  }

  groupsOf(user: string): string[] {
    return [...this.groups].filter(([, members]) => members.has(user)).map(([g]) => g);
  }

  mfaOf(user: string): string[] {
    return [...this.mfa].filter(([, d]) => d.user === user).map(([s]) => s);
  }

  /** The dependent kinds that still block DeleteUser in real AWS. */
  blockers(u: FakeUser): string[] {
    const out: string[] = [];
    if (u.loginProfile) out.push('login profile');
    if (u.accessKeys.size) out.push('access keys');
    if (u.certs.size) out.push('signing certificates');
    if (u.sshKeys.size) out.push('SSH public keys');
    if (u.sscs.size) out.push('service-specific credentials');
    if (this.mfaOf(u.name).length) out.push('MFA devices');
    if (u.inline.size) out.push('inline policies');
    if (u.attached.size) out.push('attached policies');
    if (this.groupsOf(u.name).length) out.push('group memberships');
    return out;
  }

  user(name: string | undefined): FakeUser {
    const u = name === undefined ? undefined : this.users.get(name);
    if (!u) throw noSuchEntity(`user with name ${String(name)}`);
    return u;
  }

  private check(op: string): void {
    const fail = this.failures.get(op);
    if (fail) throw fail();
  }

  install(): AwsClientStub<IAMClient> {
    const m = mockClient(IAMClient);
    m.onAnyCommand().callsFake((input: unknown) => {
      throw new Error(`fake IAM: operation not modelled (input ${JSON.stringify(input)})`);
    });
    const on = <I extends ServiceInputTypes, O extends ServiceOutputTypes>(cmd: new (input: I) => AwsCommand<I, O>, op: string, fn: (input: I) => unknown) =>
      m.on(cmd).callsFake(async (input: I) => {
        this.check(op);
        return fn(input);
      });

    on(GetUserCommand, 'GetUser', (i) => {
      const u = this.user(i.UserName);
      return {
        User: {
          UserName: u.name,
          UserId: u.id,
          Arn: `arn:aws:iam::${ACCOUNT}:user${u.path}${u.name}`,
          Path: u.path,
          CreateDate: u.createDate,
          PasswordLastUsed: u.passwordLastUsed,
          PermissionsBoundary: u.boundary ? { PermissionsBoundaryType: 'PermissionsBoundaryPolicy', PermissionsBoundaryArn: u.boundary } : undefined,
          Tags: [...u.tags].map(([Key, Value]) => ({ Key, Value })),
        },
      };
    });
    on(ListUserTagsCommand, 'ListUserTags', (i) => {
      const p = page([...this.user(i.UserName).tags], i);
      return { Tags: p.items.map(([Key, Value]) => ({ Key, Value })), IsTruncated: p.IsTruncated, Marker: p.Marker };
    });

    // 1. login profile
    on(GetLoginProfileCommand, 'GetLoginProfile', (i) => {
      const u = this.user(i.UserName);
      if (!u.loginProfile) throw noSuchEntity(`Login Profile for User ${u.name}`);
      return { LoginProfile: { UserName: u.name, CreateDate: u.loginProfile.createDate, PasswordResetRequired: u.loginProfile.reset } };
    });
    on(DeleteLoginProfileCommand, 'DeleteLoginProfile', (i) => {
      const u = this.user(i.UserName);
      if (!u.loginProfile) throw noSuchEntity(`Login Profile for User ${u.name}`);
      u.loginProfile = null;
      return {};
    });

    // 2. access keys
    on(ListAccessKeysCommand, 'ListAccessKeys', (i) => {
      const u = this.user(i.UserName);
      const p = page([...u.accessKeys], i);
      return {
        AccessKeyMetadata: p.items.map(([id, k]) => ({ UserName: u.name, AccessKeyId: id, Status: k.status, CreateDate: k.createDate })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(GetAccessKeyLastUsedCommand, 'GetAccessKeyLastUsed', (i) => {
      for (const u of this.users.values()) {
        const k = u.accessKeys.get(need(i.AccessKeyId));
        if (!k) continue;
        return {
          UserName: u.name,
          AccessKeyLastUsed: k.lastUsed
            ? { LastUsedDate: k.lastUsed.date, ServiceName: k.lastUsed.service, Region: k.lastUsed.region }
            : { ServiceName: 'N/A', Region: 'N/A' },
        };
      }
      throw noSuchEntity(`Access Key with id ${i.AccessKeyId}`);
    });
    on(UpdateAccessKeyCommand, 'UpdateAccessKey', (i) => {
      const k = this.user(i.UserName).accessKeys.get(need(i.AccessKeyId));
      if (!k) throw noSuchEntity(`Access Key with id ${i.AccessKeyId}`);
      if (i.Status !== 'Active' && i.Status !== 'Inactive') throw validationError(`Status ${String(i.Status)}`);
      k.status = i.Status;
      return {};
    });
    on(DeleteAccessKeyCommand, 'DeleteAccessKey', (i) => {
      if (!this.user(i.UserName).accessKeys.delete(need(i.AccessKeyId))) throw noSuchEntity(`Access Key with id ${i.AccessKeyId}`);
      return {};
    });

    // 3. signing certificates
    on(ListSigningCertificatesCommand, 'ListSigningCertificates', (i) => {
      const u = this.user(i.UserName);
      const p = page([...u.certs], i);
      return {
        Certificates: p.items.map(([id, c]) => ({ UserName: u.name, CertificateId: id, CertificateBody: c.body, Status: c.status, UploadDate: c.uploadDate })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(DeleteSigningCertificateCommand, 'DeleteSigningCertificate', (i) => {
      if (!this.user(i.UserName).certs.delete(need(i.CertificateId))) throw noSuchEntity(`Signing Certificate with id ${i.CertificateId}`);
      return {};
    });

    // 4. SSH public keys
    on(ListSSHPublicKeysCommand, 'ListSSHPublicKeys', (i) => {
      const u = this.user(i.UserName);
      const p = page([...u.sshKeys], i);
      return {
        SSHPublicKeys: p.items.map(([id, k]) => ({ UserName: u.name, SSHPublicKeyId: id, Status: k.status, UploadDate: k.uploadDate })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(GetSSHPublicKeyCommand, 'GetSSHPublicKey', (i) => {
      const u = this.user(i.UserName);
      const k = u.sshKeys.get(need(i.SSHPublicKeyId));
      if (!k) throw noSuchEntity(`Public Key with id ${i.SSHPublicKeyId}`);
      return {
        SSHPublicKey: { UserName: u.name, SSHPublicKeyId: i.SSHPublicKeyId, Fingerprint: k.fingerprint, SSHPublicKeyBody: k.body, Status: k.status, UploadDate: k.uploadDate },
      };
    });
    on(DeleteSSHPublicKeyCommand, 'DeleteSSHPublicKey', (i) => {
      if (!this.user(i.UserName).sshKeys.delete(need(i.SSHPublicKeyId))) throw noSuchEntity(`Public Key with id ${i.SSHPublicKeyId}`);
      return {};
    });

    // 5. service-specific credentials (the API takes Marker/MaxItems; the SDK has no paginator for it)
    on(ListServiceSpecificCredentialsCommand, 'ListServiceSpecificCredentials', (i) => {
      if (this.sscListError) throw this.sscListError();
      const u = this.user(i.UserName);
      const p = page([...u.sscs], i);
      return {
        ServiceSpecificCredentials: p.items.map(([id, c]) => ({
          UserName: u.name,
          ServiceSpecificCredentialId: id,
          ServiceName: c.service,
          ServiceUserName: `${u.name}-at-${ACCOUNT}`,
          Status: c.status,
          CreateDate: c.createDate,
        })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(DeleteServiceSpecificCredentialCommand, 'DeleteServiceSpecificCredential', (i) => {
      if (!this.user(i.UserName).sscs.delete(need(i.ServiceSpecificCredentialId))) {
        throw noSuchEntity(`Service Specific Credential with id ${i.ServiceSpecificCredentialId}`);
      }
      return {};
    });

    // 6. MFA
    on(ListMFADevicesCommand, 'ListMFADevices', (i) => {
      const u = this.user(i.UserName);
      const p = page(this.mfaOf(u.name), i);
      return {
        MFADevices: p.items.map((serial) => ({ UserName: u.name, SerialNumber: serial, EnableDate: this.mfa.get(serial)?.enableDate })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(DeactivateMFADeviceCommand, 'DeactivateMFADevice', (i) => {
      const u = this.user(i.UserName);
      const d = this.mfa.get(need(i.SerialNumber));
      if (!d || d.user !== u.name) throw noSuchEntity(`MFA Device with serial number ${i.SerialNumber}`);
      d.user = null;
      return {};
    });
    on(DeleteVirtualMFADeviceCommand, 'DeleteVirtualMFADevice', (i) => {
      const d = this.mfa.get(need(i.SerialNumber));
      if (!d || !d.virtual) throw noSuchEntity(`VirtualMFADevice with serial number ${i.SerialNumber}`);
      if (d.user !== null) throw deleteConflict('MFA Device is still in use.');
      this.mfa.delete(need(i.SerialNumber));
      return {};
    });

    // 7. inline policies
    on(ListUserPoliciesCommand, 'ListUserPolicies', (i) => {
      const p = page([...this.user(i.UserName).inline.keys()], i);
      return { PolicyNames: p.items, IsTruncated: p.IsTruncated, Marker: p.Marker };
    });
    on(GetUserPolicyCommand, 'GetUserPolicy', (i) => {
      const doc = this.user(i.UserName).inline.get(need(i.PolicyName));
      if (doc === undefined) throw noSuchEntity(`user policy ${i.PolicyName}`);
      return { UserName: i.UserName, PolicyName: i.PolicyName, PolicyDocument: doc };
    });
    on(DeleteUserPolicyCommand, 'DeleteUserPolicy', (i) => {
      if (!this.user(i.UserName).inline.delete(need(i.PolicyName))) throw noSuchEntity(`user policy ${i.PolicyName}`);
      return {};
    });

    // 8. attached managed policies
    on(ListAttachedUserPoliciesCommand, 'ListAttachedUserPolicies', (i) => {
      const p = page([...this.user(i.UserName).attached], i);
      return { AttachedPolicies: p.items.map(([PolicyArn, PolicyName]) => ({ PolicyArn, PolicyName })), IsTruncated: p.IsTruncated, Marker: p.Marker };
    });
    on(DetachUserPolicyCommand, 'DetachUserPolicy', (i) => {
      if (!this.user(i.UserName).attached.delete(need(i.PolicyArn))) throw noSuchEntity(`Policy ${i.PolicyArn}`);
      return {};
    });

    // 9. groups
    on(ListGroupsForUserCommand, 'ListGroupsForUser', (i) => {
      const u = this.user(i.UserName);
      const p = page(this.groupsOf(u.name), i);
      return {
        Groups: p.items.map((g) => ({ GroupName: g, GroupId: `AGPA${g.toUpperCase()}`, Arn: `arn:aws:iam::${ACCOUNT}:group/${g}`, Path: '/', CreateDate: new Date(0) })),
        IsTruncated: p.IsTruncated,
        Marker: p.Marker,
      };
    });
    on(RemoveUserFromGroupCommand, 'RemoveUserFromGroup', (i) => {
      const u = this.user(i.UserName);
      const members = this.groups.get(need(i.GroupName));
      if (!members || !members.delete(u.name)) throw noSuchEntity(`group ${i.GroupName} membership`);
      return {};
    });

    // 10. the user
    on(DeleteUserCommand, 'DeleteUser', (i) => {
      this.deleteUserAttempts += 1;
      this.beforeDeleteUser?.(this.deleteUserAttempts);
      const u = this.user(i.UserName);
      const blocking = this.blockers(u);
      if (blocking.length) {
        this.deleteConflicts += 1;
        throw deleteConflict(`Cannot delete entity, must remove ${blocking.join(', ')} first.`);
      }
      this.users.delete(u.name);
      return {};
    });
    return m;
  }
}

// ------------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------------

const VIRTUAL_MFA = `arn:aws:iam::${ACCOUNT}:mfa/alice-phone`;
const HARDWARE_MFA = 'GAHT12345678';
const FIDO_MFA = `arn:aws:iam::${ACCOUNT}:u2f/user/alice/yubikey-ABCDEFGHIJKLMNOP`;
const POLICY_READ = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/100% done/*"}]}';
const POLICY_DENY = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1"]}}}]}';
const READ_ONLY = 'arn:aws:iam::aws:policy/ReadOnlyAccess';
const CUSTOMER_POLICY = `arn:aws:iam::${ACCOUNT}:policy/team/billing-view`;

/** alice holds every dependent kind; bob shares a group and must be left alone. */
function seedAlice(fake: FakeIam) {
  const alice = fake.addUser('alice', {
    path: '/staff/',
    passwordLastUsed: new Date('2024-05-06T07:08:09Z'),
    boundary: `arn:aws:iam::${ACCOUNT}:policy/boundary`,
    tags: new Map([
      ['team', 'payments'],
      ['owner', 'alice@example.com'],
    ]),
    loginProfile: { createDate: new Date('2023-01-03T00:00:00Z'), reset: false },
  });
  const key1 = fake.addAccessKey('alice', 'Active');
  const key2 = fake.addAccessKey('alice', 'Inactive');
  const k1 = alice.accessKeys.get(key1);
  if (k1) k1.lastUsed = { date: new Date('2024-06-01T12:00:00Z'), service: 's3', region: 'eu-west-1' };
  alice.certs.set('CERTALICE0001', { status: 'Active', body: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', uploadDate: new Date('2023-04-01T00:00:00Z') });
  alice.sshKeys.set('APKAALICE0001', {
    status: 'Active',
    body: 'ssh-rsa AAAAB3NzaC1yc2E alice@laptop',
    fingerprint: '3f:2a:9c:00:11:22:33:44:55:66:77:88:99:aa:bb:cc',
    uploadDate: new Date('2023-05-01T00:00:00Z'),
  });
  alice.sscs.set('ACCAALICE0001', { service: 'codecommit.amazonaws.com', status: 'Active', createDate: new Date('2023-06-01T00:00:00Z') });
  fake.addMfa('alice', VIRTUAL_MFA, true);
  fake.addMfa('alice', HARDWARE_MFA, false);
  alice.inline.set('read-reports', encodeURIComponent(POLICY_READ));
  alice.inline.set('region-lock', encodeURIComponent(POLICY_DENY));
  alice.attached.set(READ_ONLY, 'ReadOnlyAccess');
  alice.attached.set(CUSTOMER_POLICY, 'billing-view');
  fake.addToGroup('alice', 'developers');
  fake.addToGroup('alice', 'oncall');

  fake.addUser('bob');
  const bobKey = fake.addAccessKey('bob');
  fake.addToGroup('bob', 'developers');
  return { key1, key2, bobKey };
}

const ORDER: RemovedDependent['kind'][] = [
  'login-profile',
  'access-key',
  'signing-certificate',
  'ssh-public-key',
  'service-specific-credential',
  'mfa-device',
  'virtual-mfa-device',
  'inline-policy',
  'managed-policy',
  'group-membership',
];

/** The kinds in the order they were first removed. */
function kindOrder(removed: RemovedDependent[]): RemovedDependent['kind'][] {
  const seen: RemovedDependent['kind'][] = [];
  for (const r of removed) if (!seen.includes(r.kind)) seen.push(r.kind);
  return seen;
}

let fake: FakeIam;
let mock: ReturnType<FakeIam['install']>;
let iam: IAMClient;

beforeEach(() => {
  fake = new FakeIam();
  mock = fake.install();
  iam = new IAMClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
});

afterEach(() => {
  mock.restore();
});

// ------------------------------------------------------------------------------------------------
// removeIamUser
// ------------------------------------------------------------------------------------------------

describe('removeIamUser', () => {
  it('removes a user holding every dependent kind, in the §5.1 order, without needing a second pass', async () => {
    const { key1, key2, bobKey } = seedAlice(fake);

    const result = await removeIamUser(iam, 'alice');

    expect(result.alreadyGone).toBe(false);
    expect(fake.users.has('alice')).toBe(false);
    // Every dependent was found on the first pass across all pages: DeleteUser never conflicted.
    expect(fake.deleteConflicts).toBe(0);
    // Virtual MFA device deleted; the hardware token only deactivated (still exists, unassigned).
    expect(fake.mfa.has(VIRTUAL_MFA)).toBe(false);
    expect(fake.mfa.get(HARDWARE_MFA)).toEqual(expect.objectContaining({ virtual: false, user: null }));
    // Group memberships removed; the groups and other members untouched.
    expect(fake.groupsOf('alice')).toEqual([]);
    expect([...(fake.groups.get('developers') ?? [])]).toEqual(['bob']);
    expect(fake.groups.has('oncall')).toBe(true);
    // bob is untouched.
    expect(fake.users.get('bob')?.accessKeys.has(bobKey)).toBe(true);

    expect(kindOrder(result.removed)).toEqual(ORDER);
    expect(result.removed).toEqual([
      { kind: 'login-profile', id: 'alice' },
      { kind: 'access-key', id: key1 },
      { kind: 'access-key', id: key2 },
      { kind: 'signing-certificate', id: 'CERTALICE0001' },
      { kind: 'ssh-public-key', id: 'APKAALICE0001' },
      { kind: 'service-specific-credential', id: 'ACCAALICE0001' },
      { kind: 'mfa-device', id: VIRTUAL_MFA },
      { kind: 'virtual-mfa-device', id: VIRTUAL_MFA },
      { kind: 'mfa-device', id: HARDWARE_MFA },
      { kind: 'inline-policy', id: 'read-reports' },
      { kind: 'inline-policy', id: 'region-lock' },
      { kind: 'managed-policy', id: READ_ONLY },
      { kind: 'managed-policy', id: CUSTOMER_POLICY },
      { kind: 'group-membership', id: 'developers' },
      { kind: 'group-membership', id: 'oncall' },
    ]);
  });

  it('reads every page of every list before deleting (many dependents of each kind, one per page)', async () => {
    const u = fake.addUser('carol');
    for (let i = 0; i < 3; i += 1) {
      u.certs.set(`CERT${i}`, { status: 'Active', body: 'b', uploadDate: new Date(0) });
      u.sshKeys.set(`APKA${i}`, { status: 'Active', body: 'ssh-ed25519 AAAA', fingerprint: 'fp', uploadDate: new Date(0) });
      u.sscs.set(`ACCA${i}`, { service: 'cassandra.amazonaws.com', status: 'Active', createDate: new Date(0) });
      fake.addMfa('carol', `arn:aws:iam::${ACCOUNT}:mfa/carol-${i}`, true);
    }
    for (let i = 0; i < 6; i += 1) {
      u.inline.set(`inline-${i}`, encodeURIComponent('{}'));
      u.attached.set(`arn:aws:iam::${ACCOUNT}:policy/p${i}`, `p${i}`);
      fake.addToGroup('carol', `group-${i}`);
    }
    fake.addAccessKey('carol');
    fake.addAccessKey('carol');

    const result = await removeIamUser(iam, 'carol');

    expect(fake.users.has('carol')).toBe(false);
    expect(fake.deleteConflicts).toBe(0);
    expect([...fake.mfa.keys()]).toEqual([]);
    expect(fake.groupsOf('carol')).toEqual([]);
    expect(result.removed).toHaveLength(2 + 3 * 3 + 3 * 2 + 6 * 3);
  });

  it('on a retry, deletes a virtual MFA device an earlier attempt deactivated but did not delete', async () => {
    // ListMFADevices lists assigned devices only: after a deactivation the device is invisible to the
    // user's lists, and only the serial recorded in the snapshot finds it.
    const u = fake.addUser('gina');
    const serial = `arn:aws:iam::${ACCOUNT}:mfa/gina-phone`;
    fake.addMfa('gina', serial, true);
    fake.mfa.get(serial)!.user = null; // the first attempt's DeactivateMFADevice succeeded, then it died
    expect(u.name).toBe('gina');

    const result = await removeIamUser(iam, 'gina', { virtualMfaSerials: [serial, 'GAHT-hardware-1'] });

    expect(fake.users.has('gina')).toBe(false);
    expect(fake.mfa.has(serial)).toBe(false);
    expect(result.removed).toContainEqual({ kind: 'virtual-mfa-device', id: serial });
  });

  it('refuses to remove a dependent its caller has no record of, and leaves the user in place', async () => {
    // stale-iam-users passes mayRemove = "recorded in the snapshot": a key created after the snapshot
    // (a race with the re-check) must not be destroyed unrecorded.
    seedAlice(fake);
    const known = new Set([...fake.users.get('alice')!.accessKeys.keys()]);
    const late = fake.addAccessKey('alice');
    const err = await removeIamUser(iam, 'alice', { mayRemove: (d) => d.kind !== 'access-key' || known.has(d.id) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(unwrap(err)).toMatchObject({ type: 'NotInSnapshot', nonRetryable: true });
    expect((unwrap(err) as Error).message).toContain(late);
    expect(fake.users.has('alice')).toBe(true);
    expect(fake.users.get('alice')!.accessKeys.has(late)).toBe(true);
  });

  it('refuses when a console password exists that the caller has no record of', async () => {
    fake.addUser('hal', { loginProfile: { createDate: new Date(0), reset: false } });
    await expect(removeIamUser(iam, 'hal', { mayRemove: (d) => d.kind !== 'login-profile' }).catch((e: unknown) => Promise.reject(unwrap(e)))).rejects.toMatchObject({ type: 'NotInSnapshot' });
    expect(fake.users.get('hal')?.loginProfile).toBeTruthy();
    fake.users.get('hal')!.loginProfile = null;
    await expect(removeIamUser(iam, 'hal', { mayRemove: (d) => d.kind !== 'login-profile' })).resolves.toMatchObject({ alreadyGone: false });
    expect(fake.users.has('hal')).toBe(false);
  });

  it('deactivates only the keys it was given', async () => {
    fake.addUser('ivy');
    const recorded = fake.addAccessKey('ivy', 'Active');
    const newer = fake.addAccessKey('ivy', 'Active');
    const done = await disableIamUserCredentials(iam, 'ivy', { onlyKeys: [recorded] });
    expect(done.deactivatedKeys).toEqual([recorded]);
    expect(fake.users.get('ivy')!.accessKeys.get(newer)?.status).toBe('Active');
  });

  it('removes a dependent added concurrently after enumeration on the one re-enumeration', async () => {
    seedAlice(fake);
    let lateKey: string | undefined;
    fake.beforeDeleteUser = (attempt) => {
      if (attempt === 1) lateKey = fake.addAccessKey('alice');
    };

    const result = await removeIamUser(iam, 'alice');

    expect(result.alreadyGone).toBe(false);
    expect(fake.users.has('alice')).toBe(false);
    expect(fake.deleteConflicts).toBe(1);
    expect(lateKey).toBeDefined();
    expect(result.removed).toContainEqual({ kind: 'access-key', id: lateKey });
  });

  it('lets a second DeleteConflict propagate when a dependent keeps reappearing (no further retries)', async () => {
    seedAlice(fake);
    fake.beforeDeleteUser = () => {
      fake.addToGroup('alice', 'sneaky');
    };

    const err = await removeIamUser(iam, 'alice').then(
      () => undefined,
      (e: unknown) => e,
    );

    // The failure carries what was removed before it, so the change's result records every mutation.
    expect(err).toBeInstanceOf(PartialChangeError);
    expect(unwrap(err)).toBeInstanceOf(DeleteConflictException);
    expect(classifyAwsError(unwrap(err))).toEqual(expect.objectContaining({ category: 'permanent', retryable: false }));
    const failure = toActivityFailure(err);
    expect(failure).toMatchObject({ type: 'AWS.DeleteConflictException', nonRetryable: true });
    const observed = (failure.details?.find((d) => (d as { observed?: unknown }).observed) as { observed: { userName: string; removed: { kind: string }[] } }).observed;
    expect(observed.userName).toBe('alice');
    expect(observed.removed.map((r) => r.kind)).toEqual(expect.arrayContaining(['login-profile', 'access-key', 'group-membership']));
    expect(fake.users.has('alice')).toBe(true);
    expect(fake.deleteUserAttempts).toBe(2);
    // Everything that existed before the race is gone; only the reappearing membership remains.
    expect(fake.blockers(fake.user('alice'))).toEqual(['group memberships']);
  });

  it('reports alreadyGone on a re-run after success, and for a user that never existed', async () => {
    seedAlice(fake);
    await removeIamUser(iam, 'alice');

    await expect(removeIamUser(iam, 'alice')).resolves.toEqual({ removed: [], alreadyGone: true });
    await expect(removeIamUser(iam, 'nobody')).resolves.toEqual({ removed: [], alreadyGone: true });
    expect(fake.users.has('bob')).toBe(true);
  });

  it('reports alreadyGone when the user is deleted by someone else before our DeleteUser', async () => {
    seedAlice(fake);
    fake.beforeDeleteUser = () => {
      fake.users.delete('alice');
    };

    const result = await removeIamUser(iam, 'alice');

    expect(result.alreadyGone).toBe(true);
    expect(fake.users.has('alice')).toBe(false);
  });

  it('treats dependents already gone (NoSuchEntity on delete) as success', async () => {
    const { key1 } = seedAlice(fake);
    // The key disappears between ListAccessKeys and DeleteAccessKey (a concurrent deletion).
    mock.on(DeleteAccessKeyCommand, { AccessKeyId: key1 }).callsFakeOnce(async () => {
      fake.user('alice').accessKeys.delete(key1);
      throw noSuchEntity(`Access Key with id ${key1}`);
    });

    const result = await removeIamUser(iam, 'alice');

    expect(fake.users.has('alice')).toBe(false);
    expect(result.removed.filter((r) => r.kind === 'access-key')).toHaveLength(1);
  });

  it('lets other errors propagate and leaves the user in place', async () => {
    seedAlice(fake);
    fake.failures.set('DetachUserPolicy', () => Object.assign(new Error('User is not authorized to perform iam:DetachUserPolicy'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));

    const err = await removeIamUser(iam, 'alice').catch((e: unknown) => e);
    expect(unwrap(err)).toMatchObject({ name: 'AccessDenied' });
    // What was removed before DetachUserPolicy was denied is reported, not lost.
    expect((err as PartialChangeError).observed).toMatchObject({ userName: 'alice', userDeleted: false, removed: expect.arrayContaining([expect.objectContaining({ kind: 'access-key' })]) });
    expect(fake.users.has('alice')).toBe(true);
    expect(fake.deleteUserAttempts).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
// Service-specific credentials on moto
// ------------------------------------------------------------------------------------------------

describe('ListServiceSpecificCredentials unimplemented (moto HTML 500)', () => {
  beforeEach(() => {
    seedAlice(fake);
    fake.user('alice').sscs.clear(); // moto cannot hold any
    fake.sscListError = motoUnimplemented;
  });

  it('the stand-in error is what classifyAwsError calls unimplemented', () => {
    expect(classifyAwsError(motoUnimplemented(), { emulator: 'moto' }).category).toBe('unimplemented');
  });

  it('with emulator moto: removal proceeds and the snapshot records null with a note', async () => {
    const snapshot = await snapshotIamUser(iam, 'alice', { emulator: 'moto' });
    expect(snapshot?.serviceSpecificCredentials).toBeNull();
    expect(snapshot?.notes.some((n) => /service-specific credentials/.test(n) && /moto/.test(n))).toBe(true);

    const result = await removeIamUser(iam, 'alice', { emulator: 'moto' });
    expect(result.alreadyGone).toBe(false);
    expect(fake.users.has('alice')).toBe(false);
  });

  it('without the emulator flag: the error propagates (fail closed) and the user is not deleted', async () => {
    await expect(snapshotIamUser(iam, 'alice')).rejects.toMatchObject({ name: 'Error', $metadata: { httpStatusCode: 500 } });

    const err = await removeIamUser(iam, 'alice').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(classifyAwsError(unwrap(err), { emulator: 'moto' }).category).toBe('unimplemented');
    expect(fake.users.has('alice')).toBe(true);
    expect(fake.deleteUserAttempts).toBe(0);
  });

  it('with emulator moto, any other error still propagates', async () => {
    fake.sscListError = () => Object.assign(new Error('not authorized'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });

    await expect(snapshotIamUser(iam, 'alice', { emulator: 'moto' })).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(removeIamUser(iam, 'alice', { emulator: 'moto' }).catch((e: unknown) => Promise.reject(unwrap(e)))).rejects.toMatchObject({ name: 'AccessDenied' });
    expect(fake.users.has('alice')).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------------
// snapshotIamUser
// ------------------------------------------------------------------------------------------------

describe('snapshotIamUser', () => {
  const now = () => new Date('2024-07-01T00:00:00Z');

  it('captures everything needed to recreate the user, with decoded inline policy documents', async () => {
    const { key1, key2 } = seedAlice(fake);
    fake.addMfa('alice', FIDO_MFA, false);

    const snapshot = await snapshotIamUser(iam, 'alice', { now });

    const expected: IamUserSnapshot = {
      userName: 'alice',
      userId: fake.user('alice').id,
      arn: `arn:aws:iam::${ACCOUNT}:user/staff/alice`,
      path: '/staff/',
      createDate: '2023-01-02T03:04:05.000Z',
      passwordLastUsed: '2024-05-06T07:08:09.000Z',
      permissionsBoundary: `arn:aws:iam::${ACCOUNT}:policy/boundary`,
      tags: [
        { key: 'team', value: 'payments' },
        { key: 'owner', value: 'alice@example.com' },
      ],
      groups: ['developers', 'oncall'],
      attachedPolicies: [
        { name: 'ReadOnlyAccess', arn: READ_ONLY },
        { name: 'billing-view', arn: CUSTOMER_POLICY },
      ],
      inlinePolicies: [
        { name: 'read-reports', document: POLICY_READ },
        { name: 'region-lock', document: POLICY_DENY },
      ],
      loginProfile: { createDate: '2023-01-03T00:00:00.000Z', passwordResetRequired: false },
      accessKeys: [
        { id: key1, status: 'Active', createDate: '2023-02-01T00:00:00.000Z', lastUsed: '2024-06-01T12:00:00.000Z', lastUsedService: 's3', lastUsedRegion: 'eu-west-1' },
        { id: key2, status: 'Inactive', createDate: '2023-02-01T00:00:00.000Z', lastUsed: null, lastUsedService: null, lastUsedRegion: null },
      ],
      mfaDevices: [
        { serialNumber: VIRTUAL_MFA, virtual: true, enableDate: '2023-03-01T00:00:00.000Z' },
        { serialNumber: HARDWARE_MFA, virtual: false, enableDate: '2023-03-01T00:00:00.000Z' },
        { serialNumber: FIDO_MFA, virtual: false, enableDate: '2023-03-01T00:00:00.000Z' },
      ],
      sshPublicKeys: [
        {
          id: 'APKAALICE0001',
          status: 'Active',
          uploadDate: '2023-05-01T00:00:00.000Z',
          fingerprint: '3f:2a:9c:00:11:22:33:44:55:66:77:88:99:aa:bb:cc',
          body: 'ssh-rsa AAAAB3NzaC1yc2E alice@laptop',
        },
      ],
      signingCertificates: [
        { id: 'CERTALICE0001', status: 'Active', uploadDate: '2023-04-01T00:00:00.000Z', body: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' },
      ],
      serviceSpecificCredentials: [{ id: 'ACCAALICE0001', serviceName: 'codecommit.amazonaws.com', status: 'Active' }],
      notes: [],
      capturedAt: '2024-07-01T00:00:00.000Z',
    };
    expect(snapshot).toEqual(expected);
    // It is JSON (it goes into Temporal history): a round trip changes nothing, and it type-checks as Json.
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(expected);
    if (snapshot) {
      const asJson: Json = { ...snapshot };
      expect(asJson).toBeDefined();
    }
    // A snapshot changes nothing.
    expect(fake.blockers(fake.user('alice'))).toHaveLength(9);
  });

  it('returns null for a user that does not exist', async () => {
    await expect(snapshotIamUser(iam, 'nobody')).resolves.toBeNull();
  });

  it('keeps a document that is not valid URL-encoding as returned, with a note, instead of throwing', async () => {
    const u = fake.addUser('dave');
    u.inline.set('odd', '%E0%A4%A');
    u.inline.set('fine', encodeURIComponent('{"a":"b c"}'));

    const snapshot = await snapshotIamUser(iam, 'dave', { now });

    expect(snapshot?.inlinePolicies).toEqual([
      { name: 'odd', document: '%E0%A4%A' },
      { name: 'fine', document: '{"a":"b c"}' },
    ]);
    expect(snapshot?.notes).toEqual([expect.stringContaining('odd')]);
    expect(snapshot?.loginProfile).toBeNull();
    expect(snapshot?.passwordLastUsed).toBeNull();
    expect(snapshot?.permissionsBoundary).toBeNull();
  });
});

// ------------------------------------------------------------------------------------------------
// disable / reactivate
// ------------------------------------------------------------------------------------------------

describe('disableIamUserCredentials and reactivateAccessKeys', () => {
  it('deactivates active keys and deletes the password; a re-run reports nothing new', async () => {
    const u = fake.addUser('erin', { loginProfile: { createDate: new Date(0), reset: false } });
    const active1 = fake.addAccessKey('erin', 'Active');
    const inactive = fake.addAccessKey('erin', 'Inactive');
    const bobKey = (fake.addUser('bob'), fake.addAccessKey('bob', 'Active'));

    await expect(disableIamUserCredentials(iam, 'erin')).resolves.toEqual({ deactivatedKeys: [active1], deletedLoginProfile: true });
    expect([...u.accessKeys.values()].map((k) => k.status)).toEqual(['Inactive', 'Inactive']);
    expect(u.loginProfile).toBeNull();
    expect(fake.users.get('bob')?.accessKeys.get(bobKey)?.status).toBe('Active');
    expect(fake.users.has('erin')).toBe(true);

    await expect(disableIamUserCredentials(iam, 'erin')).resolves.toEqual({ deactivatedKeys: [], deletedLoginProfile: false });
    expect(u.accessKeys.get(inactive)?.status).toBe('Inactive');
  });

  it('deactivates keys on every page', async () => {
    const u = fake.addUser('frank');
    const a = fake.addAccessKey('frank', 'Active');
    const b = fake.addAccessKey('frank', 'Active');

    await expect(disableIamUserCredentials(iam, 'frank')).resolves.toEqual({ deactivatedKeys: [a, b], deletedLoginProfile: false });
    expect([...u.accessKeys.values()].every((k) => k.status === 'Inactive')).toBe(true);
  });

  it('reactivates the keys that still exist and reports the missing ones', async () => {
    const u = fake.addUser('erin');
    const kept = fake.addAccessKey('erin', 'Active');
    const deleted = fake.addAccessKey('erin', 'Active');
    await disableIamUserCredentials(iam, 'erin');
    u.accessKeys.delete(deleted);

    await expect(reactivateAccessKeys(iam, 'erin', [kept, deleted])).resolves.toEqual({ reactivated: [kept], missing: [deleted] });
    expect(u.accessKeys.get(kept)?.status).toBe('Active');
    // Rollback is idempotent too.
    await expect(reactivateAccessKeys(iam, 'erin', [kept])).resolves.toEqual({ reactivated: [kept], missing: [] });
  });
});
