/**
 * A seeded estate for the demo and the integration tests: idle users with every kind of dependent,
 * an idle user holding an SSH key, users whose keys are in use, an exempt user and a break-glass user.
 */
import type {
  IAMClient} from '@aws-sdk/client-iam';
import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreateLoginProfileCommand,
  CreateUserCommand,
  CreateVirtualMFADeviceCommand,
  EnableMFADeviceCommand,
  PutUserPolicyCommand,
  UploadSSHPublicKeyCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

export interface SeededEstate {
  /** Users idle past maxIdle once it has elapsed: the remediation should remove exactly these. */
  idle: string[];
  /** Idle, but holds an SSH key: listed for manual review. */
  sshKeyHolder: string;
  /** Users whose keys are used (call `useKeys` right before planning). */
  active: string[];
  exempt: string;
  breakGlass: string;
  group: string;
  /** Access keys of the active users, to sign requests with. */
  activeKeys: { user: string; accessKeyId: string; secretAccessKey: string }[];
}

// A syntactically valid OpenSSH RSA public key (random bits, no private key exists for it).
const SSH_PUBLIC_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7ZJ5mX0vR2m6n3H0k8a6wq5uRZl0b5Qk9d1ZpQ3Xo5tYt0qvRk1fQ7m3bKcWJpE7L6w0Gm7eY1H3sZkq4C8XnT5D9vZ2mQeW1cYqk6u2xR7pJ8sT3dF4gH5jK6lZ7xC8vB9nM0qW1eR2tY3uI4oP5aS6dF7gH8jK9lZ0xC1vB2nM3qW4eR5tY6uI7oP8aS9dF0gH1jK2lZ3xC4vB5nM6qW7eR8tY9uI0oP1aS2dF3gH4jK5lZ6xC7vB8nM9qW0eR1tY2uI3oP4aS5dF6gH7jK8lZ9xC0vB1nM2qW3eR4tY5uI6oP7aS8dF9gH0jK1lZ2xC3vB4nM5qW6eR7tY8uI9oP0aS1dF2gH3jK4l countersign-seed';

export async function seedEstate(iam: IAMClient, prefix = 'demo'): Promise<SeededEstate> {
  const name = (n: string) => `${prefix}-${n}`;
  const group = name('engineers');
  await iam.send(new CreateGroupCommand({ GroupName: group }));

  const idle = [name('idle-contractor'), name('idle-ci-bot'), name('idle-intern')];
  for (const user of idle) {
    await iam.send(new CreateUserCommand({ UserName: user, Tags: [{ Key: 'team', Value: 'platform' }] }));
    await iam.send(new CreateLoginProfileCommand({ UserName: user, Password: 'Seeded-Passw0rd!x', PasswordResetRequired: false }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    const mfa = await iam.send(new CreateVirtualMFADeviceCommand({ VirtualMFADeviceName: `${user}-mfa` }));
    await iam.send(
      new EnableMFADeviceCommand({
        UserName: user,
        SerialNumber: mfa.VirtualMFADevice?.SerialNumber,
        AuthenticationCode1: '123456',
        AuthenticationCode2: '654321',
      }),
    );
    await iam.send(
      new PutUserPolicyCommand({
        UserName: user,
        PolicyName: 'read-own-bucket',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${user}-data/*` }],
        }),
      }),
    );
    await iam.send(new AttachUserPolicyCommand({ UserName: user, PolicyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }));
    await iam.send(new AddUserToGroupCommand({ UserName: user, GroupName: group }));
  }

  const sshKeyHolder = name('idle-git-user');
  await iam.send(new CreateUserCommand({ UserName: sshKeyHolder }));
  await iam.send(new CreateAccessKeyCommand({ UserName: sshKeyHolder }));
  await iam.send(new UploadSSHPublicKeyCommand({ UserName: sshKeyHolder, SSHPublicKeyBody: SSH_PUBLIC_KEY }));

  const active = [name('active-deployer'), name('active-analyst')];
  const activeKeys: SeededEstate['activeKeys'] = [];
  for (const user of active) {
    await iam.send(new CreateUserCommand({ UserName: user }));
    const key = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    activeKeys.push({ user, accessKeyId: key.AccessKey?.AccessKeyId ?? '', secretAccessKey: key.AccessKey?.SecretAccessKey ?? '' });
  }

  const exempt = name('exempt-auditor');
  await iam.send(new CreateUserCommand({ UserName: exempt, Tags: [{ Key: 'countersign:exempt', Value: 'quarterly audit access' }] }));
  await iam.send(new CreateAccessKeyCommand({ UserName: exempt }));

  const breakGlass = 'break-glass-admin';
  await iam.send(new CreateUserCommand({ UserName: breakGlass }));
  await iam.send(new CreateLoginProfileCommand({ UserName: breakGlass, Password: 'Seeded-Passw0rd!x' }));

  return { idle, sshKeyHolder, active, exempt, breakGlass, group, activeKeys };
}

/** Sign a request with each active user's key, so the credential report shows it used just now. */
export async function useKeys(estate: SeededEstate, endpoint: string, region = 'us-east-1'): Promise<void> {
  for (const key of estate.activeKeys) {
    const sts = new STSClient({
      region,
      endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    });
    await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
  }
}
