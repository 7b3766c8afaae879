/**
 * The bulk read of an account's users (activities/iam/user-directory.ts) against moto: a snapshot
 * taken with it records exactly what one taken user by user records, without the per-user reads it
 * replaces, and a user it does not hold (created since, or deleted since) is read on its own. Reads of
 * one account made at the same moment share one bulk read; one made after it settled reads again.
 */
import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreateLoginProfileCommand,
  CreatePolicyCommand,
  CreateUserCommand,
  CreateVirtualMFADeviceCommand,
  DeleteUserCommand,
  EnableMFADeviceCommand,
  IAMClient,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import type { MotoSandbox } from '../../sandbox/moto';
import { startMoto } from '../../sandbox/moto';
import { directoryReadsInFlight, readUserDirectory } from '../../activities/iam/user-directory';
import type { IamUserSnapshot } from '../../activities/iam/user-lifecycle';
import { snapshotIamUser, snapshotIamUserCredentials } from '../../activities/iam/user-lifecycle';

let moto: MotoSandbox;
let iam: IAMClient;
const calls: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  iam.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(String(context.commandName).replace(/Command$/, ''));
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
});
afterAll(async () => {
  iam?.destroy();
  await moto?.stop();
});

const DOC = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] });

async function seedUser(name: string): Promise<void> {
  await iam.send(new CreateUserCommand({ UserName: name, Path: '/team/', Tags: [{ Key: 'owner', Value: 'data' }] }));
  await iam.send(new AddUserToGroupCommand({ GroupName: 'readers', UserName: name }));
  await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'inline-read', PolicyDocument: DOC }));
  await iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: managedArn }));
  await iam.send(new CreateLoginProfileCommand({ UserName: name, Password: 'Sandbox-Passw0rd!' }));
  await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  const mfa = await iam.send(new CreateVirtualMFADeviceCommand({ VirtualMFADeviceName: `${name}-mfa` }));
  await iam.send(new EnableMFADeviceCommand({ UserName: name, SerialNumber: mfa.VirtualMFADevice?.SerialNumber, AuthenticationCode1: '123456', AuthenticationCode2: '654321' }));
}

let managedArn = '';
const without = (s: IamUserSnapshot | null) => (s ? { ...s, capturedAt: '' } : s);

it('records the same snapshot as reading each user, without the per-user reads it replaces', async () => {
  await iam.send(new CreateGroupCommand({ GroupName: 'readers' }));
  managedArn = (await iam.send(new CreatePolicyCommand({ PolicyName: 'managed-read', PolicyDocument: DOC }))).Policy?.Arn ?? '';
  for (const name of ['dir-a', 'dir-b', 'dir-c']) await seedUser(name);

  const directory = await readUserDirectory(iam, new Set(['dir-a', 'dir-b', 'dir-c', 'dir-absent']));
  expect([...directory.users.keys()].sort()).toEqual(['dir-a', 'dir-b', 'dir-c']);
  // Only the users asked about are kept.
  expect([...(await readUserDirectory(iam, new Set(['dir-b']))).users.keys()]).toEqual(['dir-b']);

  for (const name of ['dir-a', 'dir-b', 'dir-c']) {
    const alone = await snapshotIamUser(iam, name, { emulator: 'moto', lean: true });
    calls.length = 0;
    const bulk = await snapshotIamUser(iam, name, { emulator: 'moto', lean: true, directory });
    expect(without(bulk)).toEqual(without(alone));
    expect(bulk?.groups).toEqual(['readers']);
    expect(bulk?.inlinePolicies).toEqual([{ name: 'inline-read', document: DOC }]);
    expect(bulk?.tags).toEqual([{ key: 'owner', value: 'data' }]);
    for (const replaced of ['GetUser', 'ListGroupsForUser', 'ListAttachedUserPolicies', 'ListUserPolicies', 'GetUserPolicy']) expect(calls).not.toContain(replaced);

    const credentialsAlone = await snapshotIamUserCredentials(iam, name, { emulator: 'moto' });
    calls.length = 0;
    const credentialsBulk = await snapshotIamUserCredentials(iam, name, { emulator: 'moto', directory });
    expect(without(credentialsBulk)).toEqual(without(credentialsAlone));
    expect(calls).not.toContain('GetUser');
  }
});

it('reads on its own a user the directory does not hold, and finds a user deleted since it was read gone', async () => {
  const directory = await readUserDirectory(iam, new Set(['dir-a', 'dir-later']));
  await iam.send(new CreateUserCommand({ UserName: 'dir-later' }));
  const later = await snapshotIamUserCredentials(iam, 'dir-later', { emulator: 'moto', directory });
  expect(later?.userName).toBe('dir-later');

  await iam.send(new CreateUserCommand({ UserName: 'dir-gone' }));
  const withGone = await readUserDirectory(iam, new Set(['dir-gone']));
  expect(withGone.users.has('dir-gone')).toBe(true);
  await iam.send(new DeleteUserCommand({ UserName: 'dir-gone' }));
  await expect(snapshotIamUser(iam, 'dir-gone', { emulator: 'moto', lean: true, directory: withGone })).resolves.toBeNull();
  await expect(snapshotIamUserCredentials(iam, 'dir-gone', { emulator: 'moto', directory: withGone })).resolves.toBeNull();
});

it('shares one bulk read among the callers of one account at the same moment, each keeping its own users', async () => {
  calls.length = 0;
  const [a, bc, other] = await Promise.all([
    readUserDirectory(iam, new Set(['dir-a']), 'account-1'),
    readUserDirectory(iam, new Set(['dir-b', 'dir-c', 'dir-absent']), 'account-1'),
    // Another key is another account: never served from account-1's read.
    readUserDirectory(iam, new Set(['dir-a']), 'account-2'),
  ]);
  expect([...a.users.keys()]).toEqual(['dir-a']);
  expect([...bc.users.keys()].sort()).toEqual(['dir-b', 'dir-c']);
  expect([...other.users.keys()]).toEqual(['dir-a']);
  expect(a.users.get('dir-a')?.groups).toEqual(['readers']);
  expect(calls.filter((c) => c === 'GetAccountAuthorizationDetails')).toHaveLength(2);
  expect(calls.filter((c) => c === 'ListUsers')).toHaveLength(2);
  expect(directoryReadsInFlight()).toBe(0);

  // Settled reads are not kept: a user created after them is in the next read.
  await iam.send(new CreateUserCommand({ UserName: 'dir-after' }));
  calls.length = 0;
  const after = await readUserDirectory(iam, new Set(['dir-after']), 'account-1');
  expect([...after.users.keys()]).toEqual(['dir-after']);
  expect(calls).toEqual(['GetAccountAuthorizationDetails', 'ListUsers']);
});

it('hands a failed shared read to every caller waiting on it, and the next caller reads afresh', async () => {
  // moto cannot be made to fail one call on request: a client of its own whose first call is refused
  // before it is sent (a fault injected in the SDK's middleware) stands in for AWS throttling the read.
  let failNext = true;
  const failing = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  failing.middlewareStack.add(
    (next) => async (args) => {
      if (failNext) {
        failNext = false;
        throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'refuseFirstCall' },
  );
  const waiting = [readUserDirectory(failing, new Set(['dir-a']), 'account-3'), readUserDirectory(failing, new Set(['dir-b']), 'account-3')];
  for (const read of waiting) await expect(read).rejects.toThrow('Rate exceeded');
  expect(directoryReadsInFlight()).toBe(0);
  const again = await readUserDirectory(failing, new Set(['dir-b']), 'account-3');
  expect([...again.users.keys()]).toEqual(['dir-b']);
  failing.destroy();
});
