/**
 * The virtual MFA device listing of the verification (activities/iam/mfa-devices.ts) against moto, with
 * the listing changed between its pages by real IAM calls (a second client, as another part of the same
 * account deleting its users would). moto's Marker is an index, so deletions below it make the next
 * page fail with ValidationError "Invalid Marker." — the failure that ended a 10,000-user run's last part
 * `failed` after every user was gone. The changes and the lost markers are moto's own; only the last
 * test injects a fault (a denial moto cannot give).
 */
import type { MiddlewareStack } from '@smithy/types';
import {
  CreateVirtualMFADeviceCommand,
  DeleteVirtualMFADeviceCommand,
  IAMClient,
  ListVirtualMFADevicesCommand,
  paginateListVirtualMFADevices,
} from '@aws-sdk/client-iam';
import type { MotoSandbox } from '../../sandbox/moto';
import { startMoto } from '../../sandbox/moto';
import { listVirtualMfaSerials, MFA_LISTING_ATTEMPTS } from '../../activities/iam/mfa-devices';

let moto: MotoSandbox;
let admin: IAMClient;

function client(): IAMClient {
  return new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
}

beforeAll(async () => {
  moto = await startMoto();
  admin = client();
});
afterAll(async () => {
  admin?.destroy();
  await moto?.stop();
});

let created = 0;
async function createDevices(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await admin.send(new CreateVirtualMFADeviceCommand({ VirtualMFADeviceName: `device-${String(created++).padStart(5, '0')}` }));
}

async function liveSerials(): Promise<string[]> {
  const all: string[] = [];
  let marker: string | undefined;
  do {
    const page = await admin.send(new ListVirtualMFADevicesCommand({ AssignmentStatus: 'Any', Marker: marker }));
    for (const d of page.VirtualMFADevices ?? []) if (d.SerialNumber) all.push(d.SerialNumber);
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return all.sort();
}

/** Leaves `keep` devices: deletes the rest, as another part's deletions would. */
async function deleteAllBut(keep: number): Promise<void> {
  for (const serial of (await liveSerials()).slice(keep)) await admin.send(new DeleteVirtualMFADeviceCommand({ SerialNumber: serial }));
}

/** A client that runs `before(marker)` ahead of each ListVirtualMFADevices call and counts the calls. */
function listingClient(before: (marker: string | undefined, call: number) => Promise<void>): { iam: IAMClient; calls: () => number } {
  const iam = client();
  let calls = 0;
  (iam.middlewareStack as MiddlewareStack<object, object>).add(
    (next, context) => async (args) => {
      if (context.commandName === 'ListVirtualMFADevicesCommand') await before((args.input as { Marker?: string }).Marker, ++calls);
      return next(args);
    },
    { step: 'initialize', name: 'changeBetweenPages' },
  );
  return { iam, calls: () => calls };
}

afterEach(async () => {
  await deleteAllBut(0);
});

it('lists every device in pages when nothing changes', async () => {
  await createDevices(150);
  const { iam, calls } = listingClient(async () => {});
  const serials = await listVirtualMfaSerials(iam);
  expect([...serials].sort()).toEqual(await liveSerials());
  expect(serials.size).toBe(150);
  expect(calls()).toBe(2); // moto pages by 100
  iam.destroy();
});

it('starts the listing again when deletions between pages lose its marker, and lists what is left', async () => {
  await createDevices(150);
  let deleted = false;
  const hook = async (marker: string | undefined): Promise<void> => {
    if (marker && !deleted) {
      deleted = true;
      await deleteAllBut(30);
    }
  };
  // The plain paginator fails on this very change: the test reproduces the failure it guards against.
  const plain = listingClient(hook);
  await expect(
    (async () => {
      for await (const page of paginateListVirtualMFADevices({ client: plain.iam }, { AssignmentStatus: 'Any' })) void page;
    })(),
  ).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringMatching(/Invalid Marker/) });
  plain.iam.destroy();

  await deleteAllBut(0);
  await createDevices(150);
  deleted = false;
  const { iam, calls } = listingClient(hook);
  const serials = await listVirtualMfaSerials(iam);
  expect([...serials].sort()).toEqual(await liveSerials());
  expect(serials.size).toBe(30);
  expect(calls()).toBe(3); // page 1, the lost page 2, then the fresh listing's one page
  iam.destroy();
});

it('fails retryably, naming the cause, when the listing keeps changing', async () => {
  await createDevices(150);
  // Every listing loses its marker: deletions before each second page, new devices before each first.
  const { iam, calls } = listingClient(async (marker, call) => {
    if (marker) await deleteAllBut(30);
    else if (call > 1) await createDevices(120);
  });
  const err = await listVirtualMfaSerials(iam).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ type: 'ListingChanged', nonRetryable: false, message: expect.stringMatching(/changed while they were listed 3 times.*Invalid Marker.*retried/) });
  expect(calls()).toBe(2 * MFA_LISTING_ATTEMPTS);
  iam.destroy();
});

it('passes other errors through at once', async () => {
  // A fault injected in the client's middleware: moto allows every call, so it cannot deny this one.
  let calls = 0;
  const denied = client();
  denied.middlewareStack.add(
    () => async () => {
      calls++;
      throw Object.assign(new Error('User is not authorized to perform iam:ListVirtualMFADevices'), { name: 'AccessDenied' });
    },
    { step: 'initialize', name: 'deny' },
  );
  await expect(listVirtualMfaSerials(denied)).rejects.toMatchObject({ name: 'AccessDenied' });
  expect(calls).toBe(1);
  denied.destroy();
});
