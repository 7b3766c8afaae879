/**
 * The bulk read of an account's users (activities/iam/user-directory.ts) against moto: a snapshot
 * taken with it records exactly what one taken user by user records, without the per-user reads it
 * replaces, and a user it does not hold (created since, or deleted since) is read on its own.
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
import { readUserDirectory } from '../../activities/iam/user-directory';
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
