/**
 * The credential report (activities/iam/credential-report.ts): parser, staleness rule, fetch.
 *
 * The parser and the staleness rule run on a REAL-format fixture (docs/aws.md §5.3: the
 * `<root_account>` row with its not_supported fields, N/A, no_information, both keys, ISO dates)
 * because moto's report differs (§9: no root row, password_last_used=not_supported,
 * password_last_changed=user_creation_time). A moto-format fixture checks that those differences
 * are read the same way.
 *
 * fetchCredentialReport is tested with aws-sdk-client-mock because moto never produces the states
 * that matter: its report is never in progress, never expired, is rebuilt live on every Get and
 * carries a GeneratedTime fixed in 2015 (§9). Against moto, the not-ready / expired / stale
 * branches would never run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CredentialReportExpiredException,
  CredentialReportNotPresentException,
  CredentialReportNotReadyException,
  GenerateCredentialReportCommand,
  GetCredentialReportCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { ApplicationFailure } from '@temporalio/common';
import { mockClient } from 'aws-sdk-client-mock';
import {
  assessStaleness,
  fetchCredentialReport,
  parseCredentialReport,
  type CredentialReportRow,
  reportAsCdata,
} from '../../activities/iam/credential-report';

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', name), 'utf8');
const realRows = parseCredentialReport(fixture('credential-report-real.csv'));
const motoRows = parseCredentialReport(fixture('credential-report-moto.csv'));

const NOW = new Date('2024-06-01T00:00:00Z');
const DAY = 86_400_000;
const opts = { now: NOW, maxIdleMs: 90 * DAY }; // cutoff 2024-03-03T00:00:00Z

function row(rows: CredentialReportRow[], user: string): CredentialReportRow {
  const found = rows.find((r) => r.user === user);
  if (!found) throw new Error(`fixture has no user ${user}`);
  return found;
}

const HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,' +
  'access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,' +
  'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,' +
  'cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

describe('parseCredentialReport on the real AWS format', () => {
  it('reads the root row first, marked isRoot, with its not_supported fields as false / no date', () => {
    const root = realRows[0];
    expect(root).toEqual({
      user: '<root_account>',
      arn: 'arn:aws:iam::123456789012:root',
      isRoot: true,
      userCreationTime: '2019-03-14T10:00:00.000Z',
      passwordEnabled: false,
      passwordLastUsed: '2024-05-01T09:12:44.000Z',
      passwordLastChanged: null,
      mfaActive: true,
      accessKeys: [],
      certificates: [],
    });
    expect(realRows.filter((r) => r.isRoot)).toHaveLength(1);
    expect(realRows).toHaveLength(9);
  });

  it('reads both access keys with their dates normalised to ISO UTC, including an inactive one', () => {
    const alice = row(realRows, 'alice');
    expect(alice.isRoot).toBe(false);
    expect(alice.passwordEnabled).toBe(true);
    expect(alice.passwordLastUsed).toBe('2024-05-20T14:30:00.000Z');
    expect(alice.passwordLastChanged).toBe('2023-01-10T09:00:00.000Z');
    expect(alice.mfaActive).toBe(true);
    expect(alice.accessKeys).toEqual([
      { index: 1, active: true, lastRotated: '2023-01-10T09:05:00.000Z', lastUsed: '2024-05-30T11:00:00.000Z' },
      { index: 2, active: false, lastRotated: '2022-06-01T08:10:00.000Z', lastUsed: '2022-12-01T10:00:00.000Z' },
    ]);
  });

  it('reads N/A as no date: no password, and a key that was never used', () => {
    const bob = row(realRows, 'bob-ci');
    expect(bob.passwordEnabled).toBe(false);
    expect(bob.passwordLastUsed).toBeNull();
    expect(bob.passwordLastChanged).toBeNull();
    expect(bob.accessKeys[1]).toEqual({ index: 2, active: true, lastRotated: '2024-05-30T00:00:00.000Z', lastUsed: null });
  });

  it('reads no_information as a password that was never used', () => {
    const carol = row(realRows, 'carol');
    expect(carol.passwordEnabled).toBe(true);
    expect(carol.passwordLastUsed).toBeNull();
    expect(carol.passwordLastChanged).toBe('2024-04-15T16:00:00.000Z');
  });

  it('leaves out empty key and certificate slots', () => {
    expect(row(realRows, 'erin').accessKeys).toEqual([]);
    expect(row(realRows, 'erin').certificates).toEqual([]);
  });

  it('reads quoted fields holding commas (IAM names may contain commas)', () => {
    const svc = row(realRows, 'svc,legacy');
    expect(svc.arn).toBe('arn:aws:iam::123456789012:user/svc,legacy');
    expect(svc.accessKeys).toEqual([{ index: 1, active: true, lastRotated: '2023-01-01T00:00:00.000Z', lastUsed: null }]);
    expect(svc.certificates).toEqual([{ index: 1, active: true, lastRotated: '2023-01-02T00:00:00.000Z' }]);
  });

  it('reads quoted fields with doubled quotes, CRLF line ends and a trailing blank line', () => {
    const csv =
      `${HEADER}\r\n` +
      '"we""ird",arn:aws:iam::1:user/weird,2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\r\n\r\n';
    const rows = parseCredentialReport(csv);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.user).toBe('we"ird');
  });

  it('skips a byte-order mark and trims spaces around unquoted fields but not inside quotes', () => {
    const csv =
      `\ufeff${HEADER}\n` +
      ' plain ," spaced name ",2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n';
    const rows = parseCredentialReport(csv);
    expect(rows.map((r) => [r.user, r.arn])).toEqual([['plain', ' spaced name ']]);
  });

  it('compares booleans case-insensitively (TRUE/FALSE as the old docs print them)', () => {
    const csv =
      `${HEADER}\n` +
      'upper,arn:aws:iam::1:user/upper,2023-01-01T00:00:00+00:00,TRUE,N/A,2023-01-01T00:00:00+00:00,N/A,True,FALSE,2023-01-01T00:00:00+00:00,N/A,N/A,N/A,TRUE,2023-02-01T00:00:00+00:00,N/A,N/A,N/A,FALSE,N/A,FALSE,N/A\n';
    const [upper] = parseCredentialReport(csv);
    expect(upper?.passwordEnabled).toBe(true);
    expect(upper?.mfaActive).toBe(true);
    expect(upper?.accessKeys.map((k) => [k.index, k.active])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it('throws a clear error naming the missing columns when the header is malformed', () => {
    const header = HEADER.replace(',access_key_2_last_used_date', '').replace(',mfa_active', '');
    expect(() => parseCredentialReport(`${header}\n`)).toThrow(/header is malformed: missing required column\(s\) mfa_active, access_key_2_last_used_date/);
    expect(() => parseCredentialReport('')).toThrow(/credential report is empty/);
    expect(() => parseCredentialReport('not,a,report\n1,2,3\n')).toThrow(/missing required column/);
  });

  it('throws rather than guess on a short row, an unknown boolean or an unreadable date', () => {
    const good =
      'u,arn:aws:iam::1:user/u,2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A';
    expect(() => parseCredentialReport(`${HEADER}\n${good}\n`)).not.toThrow();
    expect(() => parseCredentialReport(`${HEADER}\n${good.replace(/,false,N\/A$/, '')}\n`)).toThrow(/row 2 has 20 field\(s\) but the header has 22/);
    expect(() => parseCredentialReport(`${HEADER}\n${good.replace(',false,N/A,N/A,N/A,false,', ',yes,N/A,N/A,N/A,false,')}\n`)).toThrow(
      /user "u"\), column password_enabled: expected true or false, got "yes"/,
    );
    expect(() => parseCredentialReport(`${HEADER}\n${good.replace('2023-01-01T00:00:00+00:00', 'yesterday')}\n`)).toThrow(/column user_creation_time/);
    expect(() => parseCredentialReport(`${HEADER}\n"unterminated,${good}\n`)).toThrow(/never closed/);
  });
});

describe('parseCredentialReport on the moto format', () => {
  it('has no root row and reads not_supported password_last_used as never used', () => {
    expect(motoRows.map((r) => r.user)).toEqual(['console-user', 'key-user', 'bare-user']);
    expect(motoRows.some((r) => r.isRoot)).toBe(false);
    const key = row(motoRows, 'key-user');
    expect(key.passwordEnabled).toBe(false);
    expect(key.passwordLastUsed).toBeNull();
    // moto fills password_last_changed with the creation time even without a password.
    expect(key.passwordLastChanged).toBe(key.userCreationTime);
    expect(key.accessKeys).toEqual([
      { index: 1, active: true, lastRotated: '2024-01-10T08:00:01.000Z', lastUsed: '2024-05-31T12:00:00.000Z' },
      { index: 2, active: false, lastRotated: '2024-01-10T08:00:02.000Z', lastUsed: null },
    ]);
    expect(row(motoRows, 'bare-user').certificates).toEqual([{ index: 1, active: true, lastRotated: null }]);
  });
});

describe('assessStaleness', () => {
  it('keeps a user active while one active credential was used recently, naming that credential', () => {
    expect(assessStaleness(row(realRows, 'alice'), opts)).toEqual({
      verdict: 'active',
      credential: 'access_key_1',
      lastActivity: '2024-05-30T11:00:00.000Z',
    });
  });

  it('treats a never-used key issued two days ago as not stale, even beside a stale key', () => {
    // bob-ci: key 1 last used 2023-09-01 (stale), key 2 issued 2024-05-30 and never used.
    expect(assessStaleness(row(realRows, 'bob-ci'), opts)).toEqual({
      verdict: 'active',
      credential: 'access_key_2',
      lastActivity: '2024-05-30T00:00:00.000Z',
    });
  });

  it('counts a never-used password from password_last_changed, not from user creation', () => {
    // carol: created 2023-01-01, password set 2024-04-15 and never used.
    expect(assessStaleness(row(realRows, 'carol'), opts)).toEqual({
      verdict: 'active',
      credential: 'password',
      lastActivity: '2024-04-15T16:00:00.000Z',
    });
    // henry: the same, but the password was set at creation in 2023: stale, marked never used.
    expect(assessStaleness(row(realRows, 'henry'), opts)).toEqual({
      verdict: 'stale',
      credentials: [{ credential: 'password', lastActivity: '2023-01-15T00:00:00.000Z', used: false }],
      lastActivity: '2023-01-15T00:00:00.000Z',
    });
  });

  it('falls back to the user creation time for a never-used password without password_last_changed', () => {
    const r: CredentialReportRow = { ...row(realRows, 'henry'), passwordLastChanged: null, userCreationTime: '2024-01-01T00:00:00.000Z' };
    expect(assessStaleness(r, opts)).toMatchObject({ verdict: 'stale', lastActivity: '2024-01-01T00:00:00.000Z' });
    expect(assessStaleness(r, { now: NOW, maxIdleMs: 160 * DAY })).toMatchObject({ verdict: 'too-new' });
  });

  it('ignores inactive keys, even one used recently, and reports every stale active credential', () => {
    // dave: key 2 is inactive but was used 2024-05-31; the password and key 1 are idle.
    expect(assessStaleness(row(realRows, 'dave'), opts)).toEqual({
      verdict: 'stale',
      credentials: [
        { credential: 'password', lastActivity: '2023-06-01T07:45:00.000Z', used: true },
        { credential: 'access_key_1', lastActivity: '2023-05-01T10:00:00.000Z', used: true },
      ],
      lastActivity: '2023-06-01T07:45:00.000Z',
    });
  });

  it('flags a never-used key issued long ago as stale', () => {
    expect(assessStaleness(row(realRows, 'svc,legacy'), opts)).toEqual({
      verdict: 'stale',
      credentials: [{ credential: 'access_key_1', lastActivity: '2023-01-01T00:00:00.000Z', used: false }],
      lastActivity: '2023-01-01T00:00:00.000Z',
    });
  });

  it('gives a user created inside the grace period the too-new verdict, whatever its credentials', () => {
    expect(assessStaleness(row(realRows, 'frank'), opts)).toEqual({ verdict: 'too-new', userCreationTime: '2024-05-25T10:00:00.000Z' });
    // With a shorter maxIdle frank is past the grace period and his unused 7-day-old key is idle.
    expect(assessStaleness(row(realRows, 'frank'), { now: NOW, maxIdleMs: 3 * DAY })).toMatchObject({ verdict: 'stale' });
  });

  it('reports a user with no active credentials as a separate finding, not as stale', () => {
    expect(assessStaleness(row(realRows, 'erin'), opts)).toEqual({ verdict: 'no-active-credentials' });
    // moto's bare-user: password_last_changed has a date but password_enabled is false; an active
    // certificate is not a credential this rule judges.
    expect(assessStaleness(row(motoRows, 'bare-user'), opts)).toEqual({ verdict: 'no-active-credentials' });
  });

  it('counts a password reset after its last use from the reset', () => {
    const r: CredentialReportRow = {
      ...row(realRows, 'henry'),
      passwordLastUsed: '2023-02-01T00:00:00.000Z',
      passwordLastChanged: '2024-05-30T00:00:00.000Z',
    };
    expect(assessStaleness(r, opts)).toEqual({ verdict: 'active', credential: 'password', lastActivity: '2024-05-30T00:00:00.000Z' });
  });

  it('is stale only strictly past maxIdle at both the credential and the user edge', () => {
    const cutoff = new Date(NOW.getTime() - 90 * DAY).toISOString();
    const base = row(realRows, 'svc,legacy');
    const atEdge: CredentialReportRow = { ...base, accessKeys: [{ index: 1, active: true, lastRotated: cutoff, lastUsed: null }] };
    expect(assessStaleness(atEdge, opts)).toMatchObject({ verdict: 'active' });
    expect(assessStaleness({ ...base, userCreationTime: cutoff }, opts)).toMatchObject({ verdict: 'too-new' });
  });

  it('reads the moto format the same way: never-used password from its creation, recently used key active', () => {
    expect(assessStaleness(row(motoRows, 'console-user'), opts)).toEqual({
      verdict: 'stale',
      credentials: [{ credential: 'password', lastActivity: '2024-01-10T08:00:00.000Z', used: false }],
      lastActivity: '2024-01-10T08:00:00.000Z',
    });
    expect(assessStaleness(row(motoRows, 'key-user'), opts)).toEqual({
      verdict: 'active',
      credential: 'access_key_1',
      lastActivity: '2024-05-31T12:00:00.000Z',
    });
  });
});

describe('fetchCredentialReport', () => {
  const iam = mockClient(IAMClient);
  const client = new IAMClient({ region: 'us-east-1' });
  const CSV = fixture('credential-report-real.csv');
  const content = (csv: string) => new Uint8Array(Buffer.from(csv, 'utf8'));
  const FOUR_HOURS = 4 * 3_600_000;
  const meta = { $metadata: {} };

  beforeEach(() => iam.reset());

  async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }

  it('returns the decoded CSV and GeneratedTime of a fresh report without generating one', async () => {
    iam.on(GetCredentialReportCommand).resolves({ Content: content(CSV), ReportFormat: 'text/csv', GeneratedTime: new Date('2024-05-31T23:00:00Z') });
    const out = await fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS });
    expect(out).toEqual({ csv: CSV, generatedTime: '2024-05-31T23:00:00.000Z' });
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(0);
  });

  it('generates a missing report and reads it when generation completes at once', async () => {
    iam
      .on(GetCredentialReportCommand)
      .rejectsOnce(new CredentialReportNotPresentException({ message: 'not present', ...meta }))
      .resolves({ Content: content(CSV), ReportFormat: 'text/csv', GeneratedTime: new Date('2024-05-31T23:59:00Z') });
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    const out = await fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS });
    expect(out.csv).toBe(CSV);
    expect(parseCredentialReport(out.csv)).toHaveLength(9);
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(1);
    expect(iam.commandCalls(GetCredentialReportCommand)).toHaveLength(2);
  });

  it('asks Temporal to retry when an expired report is regenerated asynchronously (STARTED)', async () => {
    iam.on(GetCredentialReportCommand).rejects(new CredentialReportExpiredException({ message: 'expired', ...meta }));
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'STARTED' });
    const f = await failure(fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS }));
    expect(f.type).toBe('AWS.CredentialReportNotReadyException');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBeUndefined(); // the RetryPolicy's exponential backoff applies
    // One Get after the STARTED answer (the report may already be readable), then Temporal retries: no polling loop.
    expect(iam.commandCalls(GetCredentialReportCommand)).toHaveLength(2);
  });

  it('reads a report that is ready right after a STARTED answer (as moto and small accounts do) without a retry round', async () => {
    iam
      .on(GetCredentialReportCommand)
      .rejectsOnce(new CredentialReportNotPresentException({ message: 'none', ...meta }))
      .resolves({ Content: new TextEncoder().encode('user,arn\n'), ReportFormat: 'text/csv', GeneratedTime: NOW });
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'STARTED' });
    const report = await fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS });
    expect(report.csv).toBe('user,arn\n');
    expect(iam.commandCalls(GetCredentialReportCommand)).toHaveLength(2);
  });

  it('turns a report in progress into a retryable failure without generating again', async () => {
    iam.on(GetCredentialReportCommand).rejects(new CredentialReportNotReadyException({ message: 'in progress', ...meta }));
    const f = await failure(fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS }));
    expect(f.type).toBe('AWS.CredentialReportNotReadyException');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe('credential report is being generated; retrying');
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(0);
  });

  it('recognises the raw wire code ReportNotPresent as well as the modelled exception', async () => {
    const wire = Object.assign(new Error('not present'), { name: 'ReportNotPresent', $metadata: { httpStatusCode: 410 } });
    iam.on(GetCredentialReportCommand).rejects(wire);
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'INPROGRESS' });
    const f = await failure(fetchCredentialReport(client, { now: NOW, maxAgeMs: null }));
    expect(f.type).toBe('AWS.CredentialReportNotReadyException');
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(1);
  });

  it('lets other errors through unchanged for the activity classifier', async () => {
    const denied = Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    iam.on(GetCredentialReportCommand).rejects(denied);
    await expect(fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS })).rejects.toBe(denied);
  });

  it('regenerates a report older than maxAge once and fails non-retryably when it is still stale', async () => {
    iam.on(GetCredentialReportCommand).resolves({ Content: content(CSV), ReportFormat: 'text/csv', GeneratedTime: new Date('2024-05-30T00:00:00Z') });
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    const f = await failure(fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS }));
    expect(f.type).toBe('CredentialReportStale');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/generated at 2024-05-30T00:00:00.000Z, 2 day\(s\) ago, older than the 4.0 h limit/);
    expect(f.message).toMatch(/run the workflow again/);
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(1);
    expect(iam.commandCalls(GetCredentialReportCommand)).toHaveLength(2);
  });

  it('uses the regenerated report when regenerating a stale one yields a fresh one', async () => {
    const fresh = 'user,arn\n';
    iam
      .on(GetCredentialReportCommand)
      .resolvesOnce({ Content: content(CSV), GeneratedTime: new Date('2024-05-30T00:00:00Z') })
      .resolves({ Content: content(fresh), GeneratedTime: new Date('2024-05-31T23:30:00Z') });
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    expect(await fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS })).toEqual({ csv: fresh, generatedTime: '2024-05-31T23:30:00.000Z' });
  });

  it('asks Temporal to retry when regenerating a stale report does not complete at once', async () => {
    iam.on(GetCredentialReportCommand).resolves({ Content: content(CSV), GeneratedTime: new Date('2024-05-30T00:00:00Z') });
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'STARTED' });
    const f = await failure(fetchCredentialReport(client, { now: NOW, maxAgeMs: FOUR_HOURS }));
    expect(f.type).toBe('AWS.CredentialReportNotReadyException');
    expect(f.nonRetryable).toBe(false);
  });

  it('accepts an old report when maxAgeMs is null (moto GeneratedTime is fixed in 2015)', async () => {
    iam.on(GetCredentialReportCommand).resolves({ Content: content(CSV), ReportFormat: 'text/csv', GeneratedTime: new Date('2015-02-02T20:02:02Z') });
    const out = await fetchCredentialReport(client, { now: NOW, maxAgeMs: null });
    expect(out).toEqual({ csv: CSV, generatedTime: '2015-02-02T20:02:02.000Z' });
    expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(0);
  });
});

describe('reportAsCdata', () => {
  const answer = (content: string) => Buffer.from(`<GetCredentialReportResponse><GetCredentialReportResult><Content>${content}</Content><ReportFormat>text/csv</ReportFormat></GetCredentialReportResult></GetCredentialReportResponse>`);

  it('wraps the Content text in a CDATA section and leaves the rest as it was', () => {
    expect(reportAsCdata(answer('dXNlcixhcm4K')).toString()).toBe(answer('<![CDATA[dXNlcixhcm4K]]>').toString());
  });

  it('leaves an answer without Content, or whose Content could not sit in CDATA, unchanged', () => {
    const error = Buffer.from('<ErrorResponse><Error><Code>ReportNotPresent</Code></Error></ErrorResponse>');
    expect(reportAsCdata(error)).toBe(error);
    const unclosed = Buffer.from('<GetCredentialReportResponse><Content>abc');
    expect(reportAsCdata(unclosed)).toBe(unclosed);
    const already = answer('<![CDATA[abc]]>');
    expect(reportAsCdata(already)).toBe(already);
    const markup = answer('a]]>b');
    expect(reportAsCdata(markup)).toBe(markup);
  });
});
