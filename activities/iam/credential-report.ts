/**
 * The IAM credential report: fetch it (with freshness), parse it, and judge each user's staleness
 * (docs/aws.md §5.3, moto differences in §9).
 *
 * Parsing is strict where a silent misreading could remove a user: a missing column, a row of the
 * wrong width, a boolean or date the report format does not define all throw. The sentinels the
 * format does define (`N/A`, `no_information`, `not_supported`) mean "no date" / "no".
 *
 * Fetching never polls: when the report is missing, expired, being generated or too old, it asks
 * AWS to generate one and, unless that finished at once, throws a retryable ApplicationFailure so
 * Temporal retries the activity later.
 */
import { GenerateCredentialReportCommand, GetCredentialReportCommand } from '@aws-sdk/client-iam';
import type { GetCredentialReportCommandOutput, IAMClient } from '@aws-sdk/client-iam';
import { ApplicationFailure } from '@temporalio/common';
import { CsvError, parse } from 'csv-parse/sync';
import { isAwsError } from '../aws/errors';

export interface ReportAccessKey {
  index: 1 | 2;
  active: boolean;
  /** When the key in this slot was created (ISO-8601), or null. */
  lastRotated: string | null;
  /** When the key was last used (ISO-8601), or null when never used / not tracked. */
  lastUsed: string | null;
}

export interface ReportCertificate {
  index: 1 | 2;
  active: boolean;
  lastRotated: string | null;
}

export interface CredentialReportRow {
  user: string;
  arn: string;
  /** The `<root_account>` row (real AWS only; moto has none). Callers skip it. */
  isRoot: boolean;
  userCreationTime: string | null;
  passwordEnabled: boolean;
  passwordLastUsed: string | null;
  passwordLastChanged: string | null;
  mfaActive: boolean;
  /** Only the slots that hold a key (active, or with a creation date); empty slots are left out. */
  accessKeys: ReportAccessKey[];
  /** Only the slots that hold a certificate (active, or with a rotation date). */
  certificates: ReportCertificate[];
}

const ROOT_USER = '<root_account>';

/** Values the report uses for "no value" (§5.3): not applicable, never used, root-only. */
const SENTINELS = new Set(['n/a', 'no_information', 'not_supported']);

const REQUIRED_COLUMNS = [
  'user',
  'arn',
  'user_creation_time',
  'password_enabled',
  'password_last_used',
  'password_last_changed',
  'mfa_active',
  'access_key_1_active',
  'access_key_1_last_rotated',
  'access_key_1_last_used_date',
  'access_key_2_active',
  'access_key_2_last_rotated',
  'access_key_2_last_used_date',
  'cert_1_active',
  'cert_1_last_rotated',
  'cert_2_active',
  'cert_2_last_rotated',
] as const;
type Column = (typeof REQUIRED_COLUMNS)[number];

/**
 * RFC 4180 records (csv-parse): quoted fields may hold commas, line breaks and doubled quotes; spaces
 * around a field are dropped, blank lines and a byte-order mark skipped. Row widths are checked by
 * the caller, which names the row.
 */
function parseCsv(text: string): string[][] {
  try {
    return parse(text, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: true, relax_quotes: true }) as string[][];
  } catch (err) {
    if (err instanceof CsvError && err.code === 'CSV_QUOTE_NOT_CLOSED') throw new Error('credential report is malformed: a quoted field is never closed');
    throw new Error(`credential report is malformed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function isSentinel(value: string): boolean {
  return value === '' || SENTINELS.has(value.toLowerCase());
}

export function parseCredentialReport(csv: string): CredentialReportRow[] {
  const records = parseCsv(csv);
  const header = records[0];
  if (!header) throw new Error('credential report is empty: expected a header line starting with "user,arn,user_creation_time"');
  const names = header.map((h) => h.trim().toLowerCase());
  const position = new Map<string, number>();
  names.forEach((name, i) => {
    if (!position.has(name)) position.set(name, i);
  });
  const missing = REQUIRED_COLUMNS.filter((c) => !position.has(c));
  if (missing.length > 0) {
    throw new Error(
      `credential report header is malformed: missing required column(s) ${missing.join(', ')} (header was: ${header.join(',').slice(0, 300)})`,
    );
  }

  return records.slice(1).map((fields, r) => {
    const line = r + 2; // 1-based, after the header
    if (fields.length !== header.length) {
      throw new Error(`credential report row ${line} has ${fields.length} field(s) but the header has ${header.length}`);
    }
    const get = (c: Column): string => fields[position.get(c) as number] as string;
    const user = get('user');
    const where = (c: Column) => `credential report row ${line} (user ${JSON.stringify(user)}), column ${c}`;

    const bool = (c: Column): boolean => {
      const v = get(c);
      const lower = v.toLowerCase();
      if (lower === 'true') return true;
      if (lower === 'false' || isSentinel(v)) return false;
      throw new Error(`${where(c)}: expected true or false, got ${JSON.stringify(v)}`);
    };
    const date = (c: Column): string | null => {
      const v = get(c);
      if (isSentinel(v)) return null;
      const ms = /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : NaN;
      if (Number.isNaN(ms)) throw new Error(`${where(c)}: expected an ISO-8601 date, N/A, no_information or not_supported, got ${JSON.stringify(v)}`);
      return new Date(ms).toISOString();
    };

    const isRoot = user === ROOT_USER;
    const userCreationTime = date('user_creation_time');
    if (!user) throw new Error(`credential report row ${line} has an empty user name`);
    if (!isRoot && userCreationTime === null) {
      // Every IAM user has a creation time; without one the grace period cannot be applied.
      throw new Error(`${where('user_creation_time')}: an IAM user row must carry a creation date`);
    }

    const accessKeys: ReportAccessKey[] = [];
    for (const index of [1, 2] as const) {
      const active = bool(`access_key_${index}_active`);
      const lastRotated = date(`access_key_${index}_last_rotated`);
      const lastUsed = date(`access_key_${index}_last_used_date`);
      if (active || lastRotated !== null) accessKeys.push({ index, active, lastRotated, lastUsed });
    }
    const certificates: ReportCertificate[] = [];
    for (const index of [1, 2] as const) {
      const active = bool(`cert_${index}_active`);
      const lastRotated = date(`cert_${index}_last_rotated`);
      if (active || lastRotated !== null) certificates.push({ index, active, lastRotated });
    }

    return {
      user,
      arn: get('arn'),
      isRoot,
      userCreationTime,
      passwordEnabled: bool('password_enabled'),
      passwordLastUsed: date('password_last_used'),
      passwordLastChanged: date('password_last_changed'),
      mfaActive: bool('mfa_active'),
      accessKeys,
      certificates,
    };
  });
}

/**
 * An active credential idle past maxIdle. lastActivity is the later of its last use and its issue
 * time (a never-used credential counts from when it was issued; a password reset after its last
 * use is a fresh credential). `used` says whether any use was ever recorded.
 */
export type StaleCredential = { credential: 'password' | 'access_key_1' | 'access_key_2'; lastActivity: string; used: boolean };

export type StalenessVerdict =
  /** All active credentials idle past maxIdle, and the user is older than maxIdle. */
  | { verdict: 'stale'; credentials: StaleCredential[]; lastActivity: string }
  /** At least one active credential used or issued within maxIdle: the most recent one. */
  | { verdict: 'active'; credential: string; lastActivity: string }
  /** The user is younger than maxIdle (grace period); judged before anything else. */
  | { verdict: 'too-new'; userCreationTime: string }
  /** No active password or access key: a separate finding, never removed. */
  | { verdict: 'no-active-credentials' };

function latest(...isoDates: (string | null)[]): string | null {
  let best: string | null = null;
  for (const d of isoDates) if (d !== null && (best === null || Date.parse(d) > Date.parse(best))) best = d;
  return best;
}

/**
 * Judge one report row against maxIdle (CIS-style, per credential, rolled up to the user; §5.3).
 * Signing certificates, SSH keys and service-specific credentials are not judged here: their use is
 * not in the report, so callers route users holding them to manual review.
 */
export function assessStaleness(row: CredentialReportRow, opts: { now: Date; maxIdleMs: number }): StalenessVerdict {
  const cutoff = opts.now.getTime() - opts.maxIdleMs;
  if (row.userCreationTime === null) {
    throw new Error(`cannot assess ${row.user}: the credential report gives no user_creation_time`);
  }
  if (Date.parse(row.userCreationTime) >= cutoff) return { verdict: 'too-new', userCreationTime: row.userCreationTime };

  const credentials: StaleCredential[] = [];
  if (row.passwordEnabled) {
    const issued = row.passwordLastChanged ?? row.userCreationTime;
    credentials.push({ credential: 'password', lastActivity: latest(row.passwordLastUsed, issued) as string, used: row.passwordLastUsed !== null });
  }
  for (const key of row.accessKeys) {
    if (!key.active) continue;
    const issued = key.lastRotated ?? row.userCreationTime;
    credentials.push({ credential: `access_key_${key.index}`, lastActivity: latest(key.lastUsed, issued) as string, used: key.lastUsed !== null });
  }
  if (credentials.length === 0) return { verdict: 'no-active-credentials' };

  const mostRecent = credentials.reduce((a, b) => (Date.parse(b.lastActivity) > Date.parse(a.lastActivity) ? b : a));
  if (Date.parse(mostRecent.lastActivity) >= cutoff) {
    return { verdict: 'active', credential: mostRecent.credential, lastActivity: mostRecent.lastActivity };
  }
  return { verdict: 'stale', credentials, lastActivity: mostRecent.lastActivity };
}

export interface FetchedCredentialReport {
  csv: string;
  generatedTime: string;
}

const NOT_PRESENT = ['CredentialReportNotPresentException', 'ReportNotPresent', 'CredentialReportExpiredException', 'ReportExpired'];
const NOT_READY = ['CredentialReportNotReadyException', 'ReportInProgress'];

function notReady(): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'AWS.CredentialReportNotReadyException',
    message: 'credential report is being generated; retrying',
    nonRetryable: false, // the activity's RetryPolicy backs off: large accounts take minutes to generate
  });
}

/** GenerateCredentialReport; true when the report is ready now (State COMPLETE). */
async function generate(iam: IAMClient): Promise<boolean> {
  const out = await iam.send(new GenerateCredentialReportCommand({}));
  return out.State === 'COMPLETE';
}

const CONTENT_OPEN = Buffer.from('<Content>');
const CONTENT_CLOSE = Buffer.from('</Content>');

async function bytesOf(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * GetCredentialReport whose answer reaches the SDK's XML parser with the report wrapped in a CDATA
 * section. Countersign's own workaround, for memory: the SDK's parser (@aws-sdk/xml-builder) builds
 * element text one character at a time but takes a CDATA section in one slice, and the report is one
 * base64 element of about 330 bytes per user. A 10,000-user report (3.3 MB) cost about 140 MB of
 * transient memory that way, the worker's peak, against about 16 MB like this; the parsed answer is the
 * same (base64 holds no markup, so no "]]>" can occur in it). Only a successful answer holding the
 * element is touched; errors and anything else reach the SDK as they came.
 */
export function getCredentialReportCommand(observe?: (wrapped: boolean) => void): GetCredentialReportCommand {
  const command = new GetCredentialReportCommand({});
  command.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { statusCode?: number; body?: unknown };
      if (!response || response.statusCode !== 200 || response.body === undefined) return result;
      const raw = await bytesOf(response.body);
      response.body = reportAsCdata(raw);
      observe?.(response.body !== raw);
      return result;
    },
    // Below the SDK's deserializer, so `next` answers with the raw HTTP response.
    { step: 'deserialize', priority: 'low', name: 'credentialReportAsCdata' },
  );
  return command;
}

/** The answer with its <Content> element's text in a CDATA section; the same bytes when it has none. */
export function reportAsCdata(raw: Buffer): Buffer {
  const start = raw.indexOf(CONTENT_OPEN);
  const end = start < 0 ? -1 : raw.indexOf(CONTENT_CLOSE, start);
  if (end < 0) return raw;
  const text = raw.subarray(start + CONTENT_OPEN.length, end);
  if (text.includes(']]>') || text.subarray(0, 9).equals(Buffer.from('<![CDATA['))) return raw;
  return Buffer.concat([raw.subarray(0, start + CONTENT_OPEN.length), Buffer.from('<![CDATA['), text, Buffer.from(']]>'), raw.subarray(end)]);
}

/** GetCredentialReport, or null when there is no usable report (missing or expired). Not-ready throws the retryable failure. */
async function getReport(iam: IAMClient): Promise<GetCredentialReportCommandOutput | null> {
  try {
    return await iam.send(getCredentialReportCommand());
  } catch (err) {
    if (isAwsError(err, ...NOT_PRESENT)) return null;
    if (isAwsError(err, ...NOT_READY)) throw notReady();
    throw err;
  }
}

/**
 * Generate, then fetch again if generation finished at once; otherwise ask Temporal to retry.
 * With `tryWhileStarted` (no report existed), one Get follows even a STARTED answer: a small account's
 * report is often ready by then (and moto's always is), which saves a retry round. Not a loop: one try.
 */
async function regenerateAndGet(iam: IAMClient, tryWhileStarted = false): Promise<GetCredentialReportCommandOutput> {
  if (!(await generate(iam)) && !tryWhileStarted) throw notReady();
  const out = await getReport(iam);
  if (!out) throw notReady(); // not readable yet: try again later
  return out;
}

function formatAge(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48 ? `${Math.floor(hours / 24)} day(s)` : hours >= 1 ? `${hours.toFixed(1)} h` : `${Math.round(ms / 60_000)} min`;
}

/**
 * The current credential report as CSV. When maxAgeMs is set, a report generated earlier than
 * now - maxAgeMs is regenerated once; if AWS still serves an old one, a non-retryable
 * CredentialReportStale failure says so. maxAgeMs null skips the check (moto's GeneratedTime is
 * fixed in 2015).
 */
export async function fetchCredentialReport(iam: IAMClient, opts: { now: Date; maxAgeMs: number | null }): Promise<FetchedCredentialReport> {
  let out = (await getReport(iam)) ?? (await regenerateAndGet(iam, true));

  const tooOld = (o: GetCredentialReportCommandOutput): boolean =>
    opts.maxAgeMs !== null && (!o.GeneratedTime || o.GeneratedTime.getTime() < opts.now.getTime() - opts.maxAgeMs);

  if (tooOld(out)) {
    out = await regenerateAndGet(iam);
    if (tooOld(out)) {
      const maxAge = formatAge(opts.maxAgeMs as number);
      const age = out.GeneratedTime
        ? `was generated at ${out.GeneratedTime.toISOString()}, ${formatAge(opts.now.getTime() - out.GeneratedTime.getTime())} ago`
        : 'carries no GeneratedTime';
      throw ApplicationFailure.create({
        type: 'CredentialReportStale',
        nonRetryable: true,
        message:
          `the IAM credential report ${age}, older than the ${maxAge} limit, even after GenerateCredentialReport; ` +
          'acting on it could remove users that were active since. Check that the worker clock is right and that ' +
          'iam:GenerateCredentialReport is allowed, then run the workflow again (AWS regenerates the report at most every 4 h).',
      });
    }
  }

  if (out.Content === undefined) throw new Error('GetCredentialReport returned no Content');
  if (out.ReportFormat !== undefined && out.ReportFormat !== 'text/csv') {
    throw new Error(`GetCredentialReport returned format ${out.ReportFormat}, expected text/csv`);
  }
  return {
    csv: Buffer.from(out.Content).toString('utf8'),
    generatedTime: out.GeneratedTime ? out.GeneratedTime.toISOString() : 'unknown',
  };
}
