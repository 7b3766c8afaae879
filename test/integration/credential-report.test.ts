/**
 * The credential report read against moto: getCredentialReportCommand hands the SDK the report as a
 * CDATA section (for memory, activities/iam/credential-report.ts); the answer must be byte for byte
 * the one the plain command gives, and AWS errors must reach the caller unchanged.
 */
import { CreateAccessKeyCommand, CreateUserCommand, GenerateCredentialReportCommand, GetCredentialReportCommand, IAMClient } from '@aws-sdk/client-iam';
import type { MotoSandbox } from '../../sandbox/moto';
import { startMoto } from '../../sandbox/moto';
import { fetchCredentialReport, getCredentialReportCommand, parseCredentialReport } from '../../activities/iam/credential-report';

let moto: MotoSandbox;
let iam: IAMClient;

beforeAll(async () => {
  moto = await startMoto();
  iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
});
afterAll(async () => {
  iam?.destroy();
  await moto?.stop();
});

it('passes on an AWS error untouched when there is no report yet', async () => {
  const wrapped: boolean[] = [];
  await expect(iam.send(getCredentialReportCommand((w) => wrapped.push(w)))).rejects.toMatchObject({ name: expect.stringMatching(/ReportNotPresent|CredentialReportNotPresent/) });
  expect(wrapped).toEqual([]);
});

it('gives the same report as the plain GetCredentialReport, and fetchCredentialReport parses it', async () => {
  const names = Array.from({ length: 300 }, (_, i) => `report-user-${String(i).padStart(3, '0')}`);
  for (const name of names) await iam.send(new CreateUserCommand({ UserName: name }));
  for (const name of names.slice(0, 10)) await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  await iam.send(new GenerateCredentialReportCommand({}));

  const plain = await iam.send(new GetCredentialReportCommand({}));
  const wrapped: boolean[] = [];
  const light = await iam.send(getCredentialReportCommand((w) => wrapped.push(w)));
  // The SDK parsed the report out of the CDATA section (the middleware sits below its deserializer).
  expect(wrapped).toEqual([true]);
  expect(light.Content?.length).toBeGreaterThan(10_000);
  expect(Buffer.from(light.Content ?? new Uint8Array()).equals(Buffer.from(plain.Content ?? new Uint8Array()))).toBe(true);
  expect(light.ReportFormat).toBe(plain.ReportFormat);
  expect(light.GeneratedTime?.toISOString()).toBe(plain.GeneratedTime?.toISOString());

  const report = await fetchCredentialReport(iam, { now: new Date(), maxAgeMs: null });
  const rows = parseCredentialReport(report.csv).filter((r) => !r.isRoot);
  expect(rows.map((r) => r.user)).toEqual(expect.arrayContaining(names));
  expect(rows.filter((r) => r.accessKeys.some((k) => k.active))).toHaveLength(10);
});
