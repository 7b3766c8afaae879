/**
 * resolveAwsSettings resolves region, attempts and retry mode as the AWS SDK does (env, then the
 * AWS_PROFILE's config file), and fails with one clear line when no region resolves anywhere.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { awsSettingsFromEnv, noRegionMessage, resolveAwsSettings } from '../../activities/aws/clients';

const SDK_VARS = [
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_MAX_ATTEMPTS',
  'AWS_RETRY_MODE',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_STS',
  'AWS_EC2_METADATA_DISABLED',
  'COUNTERSIGN_AWS_EMULATOR',
];

let dir: string;
let saved: Record<string, string | undefined>;
let n = 0;

/** A config file of its own per test: the SDK caches a file's contents by path. */
function configFile(text: string): string {
  const file = path.join(dir, `config-${++n}`);
  writeFileSync(file, text);
  return file;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-aws-settings-'));
  saved = Object.fromEntries(SDK_VARS.map((k) => [k, process.env[k]]));
  for (const k of SDK_VARS) delete process.env[k];
  // Nothing outside the test may lend a region: no real ~/.aws files, no instance metadata.
  process.env.AWS_CONFIG_FILE = configFile('');
  process.env.AWS_SHARED_CREDENTIALS_FILE = configFile('');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

afterEach(() => {
  for (const k of SDK_VARS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('resolveAwsSettings', () => {
  it("takes the region from the AWS_PROFILE's config file", async () => {
    process.env.AWS_CONFIG_FILE = configFile('[profile p]\nregion = eu-west-3\n');
    process.env.AWS_PROFILE = 'p';
    const settings = await resolveAwsSettings();
    expect(settings.region).toBe('eu-west-3');
    expect(settings.maxAttempts).toBe(8);
    expect(settings.retryMode).toBe('adaptive');
    expect(settings.endpoint).toBeUndefined();
  });

  it('lets AWS_REGION win over the profile', async () => {
    process.env.AWS_CONFIG_FILE = configFile('[profile p]\nregion = eu-west-3\n');
    process.env.AWS_PROFILE = 'p';
    process.env.AWS_REGION = 'ap-southeast-2';
    expect((await resolveAwsSettings()).region).toBe('ap-southeast-2');
  });

  it("honours AWS_MAX_ATTEMPTS, and the profile's max_attempts and retry_mode", async () => {
    process.env.AWS_CONFIG_FILE = configFile('[profile p]\nregion = eu-west-3\nmax_attempts = 7\nretry_mode = adaptive\n');
    process.env.AWS_PROFILE = 'p';
    expect(await resolveAwsSettings()).toMatchObject({ maxAttempts: 7, retryMode: 'adaptive' });
    process.env.AWS_MAX_ATTEMPTS = '5';
    expect((await resolveAwsSettings()).maxAttempts).toBe(5);
  });

  it('makes one attempt against moto unless AWS_MAX_ATTEMPTS is set', async () => {
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:5000';
    const env = { ...process.env, COUNTERSIGN_AWS_EMULATOR: 'moto' };
    expect(await resolveAwsSettings(env)).toMatchObject({ emulator: 'moto', maxAttempts: 1, endpoint: 'http://127.0.0.1:5000' });
    process.env.AWS_MAX_ATTEMPTS = '4';
    expect((await resolveAwsSettings({ ...env, AWS_MAX_ATTEMPTS: '4' })).maxAttempts).toBe(4);
  });

  it('takes the endpoint from the profile when AWS_ENDPOINT_URL is unset', async () => {
    process.env.AWS_CONFIG_FILE = configFile('[profile p]\nregion = eu-west-3\nendpoint_url = http://localhost:4566\n');
    process.env.AWS_PROFILE = 'p';
    expect((await resolveAwsSettings()).endpoint).toBe('http://localhost:4566');
  });

  it('fails with one line naming AWS_REGION and AWS_PROFILE when no region resolves', async () => {
    process.env.AWS_CONFIG_FILE = configFile('[profile p]\noutput = json\n');
    process.env.AWS_PROFILE = 'p';
    const err = await resolveAwsSettings().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe(noRegionMessage('p'));
    expect(err?.message).not.toContain('\n');
    expect(err?.message).toMatch(/AWS_REGION.*"p" \(AWS_PROFILE\)/);
    delete process.env.AWS_PROFILE;
    await expect(resolveAwsSettings()).rejects.toThrow(/^no AWS region: AWS_REGION is unset and the default profile \(AWS_PROFILE is unset\) has no region/);
  });

  it('falls back to AWS_DEFAULT_REGION (the AWS CLI\'s name) only when the SDK finds none', async () => {
    process.env.AWS_DEFAULT_REGION = 'ca-central-1';
    expect((await resolveAwsSettings()).region).toBe('ca-central-1');
    process.env.AWS_REGION = 'eu-north-1';
    expect((await resolveAwsSettings()).region).toBe('eu-north-1');
  });

  it('reads Countersign variables from the env it is given', async () => {
    process.env.AWS_REGION = 'us-west-2';
    const settings = await resolveAwsSettings({ COUNTERSIGN_ACCOUNT_ROLE: 'Auditor', COUNTERSIGN_ACCOUNT_ROLE_EXTERNAL_ID: 'x-1' });
    expect(settings).toMatchObject({ region: 'us-west-2', accountRole: 'Auditor', externalId: 'x-1' });
  });
});

describe('awsSettingsFromEnv (explicit env, for tests and the sandbox)', () => {
  it('keeps its explicit rules', () => {
    expect(awsSettingsFromEnv({ AWS_REGION: 'eu-central-1' })).toMatchObject({ region: 'eu-central-1', maxAttempts: 8 });
    expect(awsSettingsFromEnv({ COUNTERSIGN_AWS_EMULATOR: 'moto', AWS_MAX_ATTEMPTS: '2' })).toMatchObject({ emulator: 'moto', maxAttempts: 2 });
  });
});
