/**
 * `npm run bench:scale`: stale-iam-users at scale on the moto sandbox, against a plain-script floor.
 * Prints figures, asserts nothing. `npm run bench:scale -- --help` explains every flag.
 *
 * The embedded stack (Temporal dev server + moto, sandbox/stack.ts) and a `countersign worker` child
 * process (so its peak RSS is its own) run the remediation; the worker's AWS endpoint is a proxy in
 * front of moto (sandbox/aws-proxy.ts) that
 * adds a latency per call, like real AWS, and counts every call. Seeding and checking go straight to
 * moto: no latency, not counted. The floor (bench/floor.ts) then makes the same AWS calls with no
 * Temporal, through the same proxy, on a freshly seeded copy of the same estate.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreateLoginProfileCommand,
  CreateUserCommand,
  CreateVirtualMFADeviceCommand,
  EnableMFADeviceCommand,
  GetGroupCommand,
  IAMClient,
  ListAccessKeysCommand,
  PutUserPolicyCommand,
  paginateListUsers,
  paginateListVirtualMFADevices,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { Command, InvalidArgumentError } from 'commander';
import { AwsClients, awsSettingsFromEnv } from '../activities/aws/clients';
import { RemediationClient } from '../cli/remediation-client';
import { parseDuration } from '../common/duration';
import type { RemediationStatus } from '../common/messages';
import type { AwsProxy, AwsProxyStats } from '../sandbox/aws-proxy';
import { startAwsProxy } from '../sandbox/aws-proxy';
import type { MotoSandbox } from '../sandbox/moto';
import { SANDBOX_CREDENTIALS } from '../sandbox/moto';
import { iamForAccount, seedOrganization } from '../sandbox/organization';
import { startStack } from '../sandbox/stack';
import type { Stack } from '../sandbox/stack';
import { createPino } from '../worker/logger';
import type { FloorResult } from './floor';
import { pool, runFloor } from './floor';

/** The calls a minimal removal of one seeded idle user takes (see --help). */
const MINIMAL_CALLS_PER_USER = 14;
const SEED_CONCURRENCY = 16;
const APPROVER = 'bench.approver';
const REQUESTER = 'bench';
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: SANDBOX_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: SANDBOX_CREDENTIALS.AWS_SECRET_ACCESS_KEY };

interface Options {
  accounts: number;
  users: number;
  latency: number;
  soak: string;
  concurrency: number;
  /** NODE_OPTIONS for the worker process only (e.g. to try heap settings). */
  workerNodeOptions?: string;
  /** Accounts worked on at once, by the organization run and by the floor alike. */
  accountConcurrency: number;
  floor: boolean;
  json: boolean;
  /** Member accounts of an organization and one organization-wide run, even for --accounts 1. */
  organization: boolean;
}

const HELP_AFTER = `
What it does
  1. Starts the embedded stack (Temporal dev server, moto) and a worker process (bin/countersign.js
     worker, as a user runs it; --worker-node-options gives it NODE_OPTIONS) with its AWS endpoint
     behind a proxy that adds --latency ms to every call and counts it.
  2. Seeds, straight into moto (no latency, not counted): with --accounts 1, the worker's own account;
     otherwise an organization with that many member accounts, reached through
     OrganizationAccountAccessRole. Each account gets --users users: half idle, each with a console
     password, two access keys, an enabled virtual MFA device, an inline policy, an attached managed
     policy and a group membership; half active (their keys are used during planning).
  3. Runs stale-iam-users (maxIdle just long enough to make the idle half stale) on every account —
     one organization-wide run with a single approval, --account-concurrency accounts at once (with
     --accounts 1 and no --organization, one run in the worker's own account) — approves it as
     ${APPROVER}, and waits for the end.
  4. Prints plan time (start → awaiting approval), apply time (approval → done, soak included), the
     AWS calls the worker made (total, per removed user, by action), the end state checked in moto per
     account, history sizes and the largest payload, and the worker process's peak RSS (VmHWM).
  5. Unless --skip-floor: resets moto, seeds the same estate again and removes it with a plain script
     (bench/floor.ts) making the same AWS calls as the activities, --account-concurrency accounts and
     --concurrency users per account at once, through the same proxy: the floor any orchestration is
     measured against.

Reading the figures
  calls per removed user / ${MINIMAL_CALLS_PER_USER}: the minimal deletion of one seeded idle user is ${MINIMAL_CALLS_PER_USER} calls —
  ListAccessKeys, DeleteAccessKey ×2, DeleteLoginProfile, ListMFADevices, DeactivateMFADevice,
  DeleteVirtualMFADevice, ListUserPolicies, DeleteUserPolicy, ListAttachedUserPolicies,
  DetachUserPolicy, ListGroupsForUser, RemoveUserFromGroup, DeleteUser. Countersign also reads before
  it plans, snapshots before it destroys and verifies after; the floor makes those same reads, so
  its ratio is the part of Countersign's that comes from them rather than from the engine.
  Countersign wall / floor wall: what the engine (Temporal round trips, batches, history) costs on
  top of the same AWS calls at the same concurrency.

Examples
  npm run bench:scale -- --accounts 1 --users 20                 # a quick look (about a minute)
  npm run bench:scale -- --accounts 2 --users 100 --latency 50   # the default
  npm run bench:scale -- --accounts 10 --users 1000 --skip-floor --json > scale.json
`;

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number within ${min}..${max}`);
    return n;
  };
}

function durationArg(value: string): string {
  try {
    parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench:scale')
    .description('stale-iam-users at scale on moto: Countersign (plan, approval, disable, soak, delete, verify) against a plain-script floor making the same AWS calls. Prints figures, asserts nothing.')
    .option('--accounts <A>', 'accounts to clean: 1 = the worker\'s own account; more = member accounts of an organization', integerIn(1, 500), 2)
    .option('--users <U>', 'users per account, half idle (removed) and half active (kept); at least 2', integerIn(2, 100_000), 100)
    .option('--latency <MS>', 'milliseconds added to every AWS call the worker (and the floor) makes, like real AWS', integerIn(0, 60_000), 50)
    .option('--soak <DURATION>', 'the soak between disable and delete (e.g. 1s, 30s)', durationArg, '1s')
    .option('--concurrency <N>', "users at once per account in the floor (Countersign's per-batch concurrency is 8)", integerIn(1, 1_000), 8)
    .option('--worker-node-options <OPTIONS>', 'NODE_OPTIONS for the worker process only, e.g. "--max-old-space-size=256"')
    .option('--account-concurrency <N>', 'accounts at once, in the organization-wide run (its --concurrency) and in the floor alike', integerIn(1, 500), 4)
    .option('--skip-floor', 'do not run the plain-script floor')
    .option('--organization', 'seed member accounts of an organization and run one organization-wide run even with --accounts 1 (an account with more than 2,000 idle users runs in parts under the one approval)')
    .option('--json', 'print the figures as one JSON object on stdout (progress goes to stderr)')
    .addHelpText('after', HELP_AFTER)
    .showHelpAfterError('(add --help for what each flag does)');
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ accounts: number; users: number; latency: number; soak: string; concurrency: number; accountConcurrency: number; workerNodeOptions?: string; skipFloor?: boolean; json?: boolean; organization?: boolean }>();
  return { accounts: o.accounts, users: o.users, latency: o.latency, soak: o.soak, concurrency: o.concurrency, accountConcurrency: o.accountConcurrency, workerNodeOptions: o.workerNodeOptions, floor: !o.skipFloor, json: o.json === true, organization: o.organization === true || o.accounts > 1 };
}

// ---------------------------------------------------------------------------------------------------
// Seeding, straight into moto

interface SeededAccount {
  account: string;
  idle: string[];
  active: string[];
  group: string;
  /** Each active user's key, to sign requests with so the credential report shows it used. */
  activeKeys: { accessKeyId: string; secretAccessKey: string }[];
}

interface Estate {
  /** The worker's own account (the management account when A > 1). */
  own: string;
  accounts: SeededAccount[];
  seedMs: number;
}

const pad = (i: number, n: number) => String(i).padStart(String(n).length, '0');

async function seedAccount(iam: IAMClient, account: string, users: number): Promise<SeededAccount> {
  const group = 'bench-engineers';
  await iam.send(new CreateGroupCommand({ GroupName: group }));
  const idleCount = Math.ceil(users / 2);
  const idle = Array.from({ length: idleCount }, (_, i) => `bench-idle-${pad(i, idleCount)}`);
  const active = Array.from({ length: users - idleCount }, (_, i) => `bench-active-${pad(i, users - idleCount)}`);
  await pool(idle, SEED_CONCURRENCY, async (user) => {
    await iam.send(new CreateUserCommand({ UserName: user }));
    await iam.send(new CreateLoginProfileCommand({ UserName: user, Password: 'Seeded-Passw0rd!x', PasswordResetRequired: false }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    const mfa = await iam.send(new CreateVirtualMFADeviceCommand({ VirtualMFADeviceName: `${user}-mfa` }));
    await iam.send(new EnableMFADeviceCommand({ UserName: user, SerialNumber: mfa.VirtualMFADevice?.SerialNumber, AuthenticationCode1: '123456', AuthenticationCode2: '654321' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: user,
        PolicyName: 'read-own-bucket',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${user}-data/*` }] }),
      }),
    );
    await iam.send(new AttachUserPolicyCommand({ UserName: user, PolicyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }));
    await iam.send(new AddUserToGroupCommand({ UserName: user, GroupName: group }));
  });
  const activeKeys = await pool(active, SEED_CONCURRENCY, async (user) => {
    await iam.send(new CreateUserCommand({ UserName: user }));
    const key = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    return { accessKeyId: key.AccessKey?.AccessKeyId ?? '', secretAccessKey: key.AccessKey?.SecretAccessKey ?? '' };
  });
  return { account, idle, active, group, activeKeys };
}

async function ownAccount(endpoint: string): Promise<string> {
  const sts = new STSClient({ region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
  try {
    return (await sts.send(new GetCallerIdentityCommand({}))).Account ?? '';
  } finally {
    sts.destroy();
  }
}

/** An IAM client acting in `account`, straight at moto (the worker's own account directly). */
function directIam(moto: MotoSandbox, own: string, account: string): IAMClient {
  return account === own ? new IAMClient({ region: REGION, endpoint: moto.endpoint, credentials: CREDENTIALS, maxAttempts: 3 }) : iamForAccount(moto.endpoint, account);
}

async function seed(moto: MotoSandbox, options: Options, say: (line: string) => void): Promise<Estate> {
  const t0 = Date.now();
  const own = await ownAccount(moto.endpoint);
  let accountIds: string[];
  if (!options.organization) {
    accountIds = [own];
  } else {
    const organization = await seedOrganization(moto.endpoint, {
      ous: [],
      accounts: Array.from({ length: options.accounts }, (_, i) => ({ name: `bench-${pad(i + 1, options.accounts)}` })),
    });
    accountIds = organization.accounts.map((a) => a.id);
  }
  const accounts = await Promise.all(
    accountIds.map(async (account) => {
      const iam = directIam(moto, own, account);
      try {
        return await seedAccount(iam, account, options.users);
      } finally {
        iam.destroy();
      }
    }),
  );
  const seedMs = Date.now() - t0;
  say(`seeded ${accounts.length} account(s) × ${options.users} users (${accounts[0]?.idle.length ?? 0} idle with every dependent, ${accounts[0]?.active.length ?? 0} active) in ${secs(seedMs)}`);
  return { own, accounts, seedMs };
}

/** Sign one request with every active key (straight at moto), so the credential report shows each used now. */
async function useActiveKeys(moto: MotoSandbox, estate: Estate): Promise<number> {
  const t = Date.now();
  const keys = estate.accounts.flatMap((a) => a.activeKeys);
  await pool(keys, SEED_CONCURRENCY, async (key) => {
    const sts = new STSClient({ region: REGION, endpoint: moto.endpoint, maxAttempts: 2, credentials: key });
    try {
      await sts.send(new GetCallerIdentityCommand({}));
    } finally {
      sts.destroy();
    }
  });
  return Date.now() - t;
}

/**
 * Make the idle half stale and keep the active half active: measure one round of key use, pick a
 * maxIdle a few rounds long, wait until every seeded credential is older than it, use the keys once
 * more, and keep using them (round after round) until `stop` — the planning of every account, which
 * reads each credential report (once per plan page) at its own time.
 */
async function prepareIdleness(moto: MotoSandbox, estate: Estate, say: (line: string) => void): Promise<{ maxIdle: string; maxIdleMs: number; stop: () => Promise<void> }> {
  const seededAt = Date.now();
  const round = await useActiveKeys(moto, estate);
  const maxIdleS = Math.max(3, Math.ceil((4 * round) / 1000) + 2);
  const waitMs = seededAt + (maxIdleS + 1) * 1000 - Date.now();
  say(`maxIdle ${maxIdleS}s (one round of active-key use takes ${secs(round)}); waiting ${secs(Math.max(0, waitMs))} so the idle users are stale`);
  if (waitMs > 0) await sleep(waitMs);
  await useActiveKeys(moto, estate);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await useActiveKeys(moto, estate).catch(() => undefined);
      await sleep(250);
    }
  })();
  return {
    maxIdle: `${maxIdleS}s`,
    maxIdleMs: maxIdleS * 1000,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Checks, straight at moto

interface AccountCheck {
  account: string;
  ok: boolean;
  idleGone: number;
  idle: number;
  activeUntouched: number;
  active: number;
  problems: string[];
}

async function checkAccount(moto: MotoSandbox, own: string, seeded: SeededAccount): Promise<AccountCheck> {
  const iam = directIam(moto, own, seeded.account);
  try {
    const users = new Set<string>();
    for await (const page of paginateListUsers({ client: iam, pageSize: 1000 }, {})) for (const u of page.Users ?? []) if (u.UserName) users.add(u.UserName);
    const mfa = new Set<string>();
    for await (const page of paginateListVirtualMFADevices({ client: iam }, { AssignmentStatus: 'Any' })) for (const d of page.VirtualMFADevices ?? []) if (d.SerialNumber) mfa.add(d.SerialNumber.slice(d.SerialNumber.lastIndexOf('/') + 1));
    const members = new Set(((await iam.send(new GetGroupCommand({ GroupName: seeded.group }))).Users ?? []).map((u) => u.UserName ?? ''));
    const problems: string[] = [];
    const idleLeft = seeded.idle.filter((u) => users.has(u));
    if (idleLeft.length) problems.push(`${idleLeft.length} idle user(s) still exist (${idleLeft.slice(0, 3).join(', ')}…)`);
    const mfaLeft = seeded.idle.filter((u) => mfa.has(`${u}-mfa`));
    if (mfaLeft.length) problems.push(`${mfaLeft.length} idle user(s)' virtual MFA device(s) still exist`);
    if (seeded.idle.some((u) => members.has(u))) problems.push(`group ${seeded.group} still lists idle users`);
    const activeUntouched = await pool(seeded.active, SEED_CONCURRENCY, async (user) => {
      if (!users.has(user)) return false;
      const keys = (await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? [];
      return keys.length === 1 && keys[0]?.Status === 'Active';
    });
    const touched = seeded.active.filter((_, i) => !activeUntouched[i]);
    if (touched.length) problems.push(`${touched.length} active user(s) deleted or with a key no longer active (${touched.slice(0, 3).join(', ')}…)`);
    return {
      account: seeded.account,
      ok: problems.length === 0,
      idleGone: seeded.idle.length - idleLeft.length,
      idle: seeded.idle.length,
      activeUntouched: seeded.active.length - touched.length,
      active: seeded.active.length,
      problems,
    };
  } finally {
    iam.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// Histories

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

interface HistoryFigures {
  workflowId: string;
  events: number;
  /** The sum of every payload's data in the history. */
  payloadBytes: number;
  /** The largest single payload's data. */
  largestPayload: number;
}

function payloadSizes(events: HistoryEvent[]): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  const walk = (value: unknown): void => {
    if (!value || typeof value !== 'object' || value instanceof Uint8Array) return;
    const payloads = (value as { payloads?: { data?: Uint8Array | null }[] | null }).payloads;
    if (Array.isArray(payloads)) {
      for (const p of payloads) {
        const n = p?.data?.length ?? 0;
        total += n;
        largest = Math.max(largest, n);
      }
    }
    for (const [key, v] of Object.entries(value)) if (key !== 'payloads' && v && typeof v === 'object') walk(v);
  };
  for (const e of events) walk(e);
  return { total, largest };
}

async function historyFigures(client: Client, workflowId: string): Promise<HistoryFigures> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const { total, largest } = payloadSizes(events);
  return { workflowId, events: events.length, payloadBytes: total, largestPayload: largest };
}

// ---------------------------------------------------------------------------------------------------
// The Countersign run

interface CountersignRun {
  mode: 'organization' | 'per-account';
  workflowIds: string[];
  planMs: number;
  applyMs: number;
  wallMs: number;
  outcomes: Record<string, string>;
  changes: number;
}

const WAIT = { timeoutMs: 6 * 3_600_000 };

async function approve(client: RemediationClient, workflowId: string, status: RemediationStatus): Promise<void> {
  const digest = status.plan?.digest;
  if (!digest) throw new Error(`${workflowId} awaits approval without a plan digest`);
  const reply = await client.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: digest, comment: 'bench:scale' });
  if (!reply.accepted) throw new Error(`${workflowId}: the approval was refused: ${reply.refusal.message}`);
}

async function runCountersign(stack: Stack, estate: Estate, params: Record<string, string>, onPlanned: () => Promise<void>, say: (line: string) => void, options: Options): Promise<CountersignRun> {
  const client = new RemediationClient(stack.client, stack.taskQueue);
  const accounts = estate.accounts.map((a) => a.account);
  const t0 = Date.now();
  if (options.organization) {
    const { workflowId } = await client.startOrganization({ kind: 'stale-iam-users', accounts: accounts.join(','), params, requestedBy: REQUESTER, concurrency: options.accountConcurrency });
    say(`started the organization-wide run ${workflowId} over ${accounts.length} accounts`);
    const awaiting = await client.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', WAIT);
    const planMs = Date.now() - t0;
    await onPlanned();
    say(`planned in ${secs(planMs)}: ${awaiting.progress.total} change(s); approving once as ${APPROVER}`);
    const t1 = Date.now();
    await approve(client, workflowId, awaiting);
    const done = await client.waitFor(workflowId, (s) => s.phase === 'done', WAIT);
    const applyMs = Date.now() - t1;
    const children = ((done as unknown as { accounts?: { workflowId: string; outcome?: string }[] }).accounts ?? []);
    const outcomes: Record<string, string> = { [workflowId]: done.outcome ?? 'none' };
    for (const c of children) outcomes[c.workflowId] = c.outcome ?? 'none';
    // A run that did not complete: its reason, so a failed figure says why.
    for (const id of [workflowId, ...children.map((c) => c.workflowId)]) {
      if (outcomes[id] === 'completed') continue;
      const status = await client.status(id).catch(() => undefined);
      const failed = status?.results.find((r) => r.status === 'failed');
      if (status?.outcomeReason) outcomes[id] = `${outcomes[id]} (${status.outcomeReason}${failed ? `; first failure: ${failed.changeId}: ${failed.detail ?? ''}` : ''})`;
    }
    return { mode: 'organization', workflowIds: [workflowId, ...children.map((c) => c.workflowId)], planMs, applyMs, wallMs: Date.now() - t0, outcomes, changes: awaiting.progress.total };
  }
  const ids = await Promise.all(accounts.map(async (account) => (await client.start({ kind: 'stale-iam-users', account, params, requestedBy: REQUESTER })).workflowId));
  const awaiting = await Promise.all(ids.map((id) => client.waitFor(id, (s) => s.phase === 'awaiting-approval', WAIT)));
  const planMs = Date.now() - t0;
  await onPlanned();
  const changes = awaiting.reduce((n, s) => n + s.progress.total, 0);
  say(`planned in ${secs(planMs)}: ${changes} change(s) in ${ids.length} run(s); approving each as ${APPROVER}`);
  const t1 = Date.now();
  const done = await Promise.all(
    ids.map(async (id, i) => {
      await approve(client, id, awaiting[i] as RemediationStatus);
      return client.waitFor(id, (s) => s.phase === 'done', WAIT);
    }),
  );
  const applyMs = Date.now() - t1;
  return {
    mode: 'per-account',
    workflowIds: ids,
    planMs,
    applyMs,
    wallMs: Date.now() - t0,
    outcomes: Object.fromEntries(done.map((s, i) => [ids[i] as string, `${s.outcome ?? 'none'}${s.outcomeReason ? ` (${s.outcomeReason})` : ''}`])),
    changes,
  };
}

// ---------------------------------------------------------------------------------------------------
// Output

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

function topActions(stats: AwsProxyStats, n = 15): { action: string; calls: number }[] {
  return Object.entries(stats.byAction)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, n)
    .map(([action, calls]) => ({ action, calls }));
}

/**
 * `countersign worker` as a child process of this bench, on the stack's task queue, its AWS endpoint
 * the proxy. Its peak resident set (VmHWM in /proc/<pid>/status, Linux) is read until it exits, so the
 * figure is the worker's alone, not the bench's with moto clients, the proxy and the seeding.
 */
interface WorkerProcess {
  pid: number;
  logPath: string;
  /** The highest VmHWM read so far, in bytes; undefined where /proc is not available. */
  peakRssBytes(): number | undefined;
  stop(): Promise<void>;
}

function vmHwmBytes(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function startWorkerProcess(stack: Stack, tmp: string, nodeOptions: string | undefined): Promise<WorkerProcess> {
  const logPath = path.join(tmp, 'worker.log');
  const log = createWriteStream(logPath);
  const env = { ...process.env, ...stack.env, AWS_ENDPOINT_URL: stack.workerAwsEndpoint, COUNTERSIGN_LOG_LEVEL: 'warn', COUNTERSIGN_METRICS_ADDRESS: '', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) };
  // As a user runs it: the bin script, with the Node options its first line gives the worker.
  const child: ChildProcess = spawn(path.join(__dirname, '..', '..', 'bin', 'countersign.js'), ['worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  let peak: number | undefined;
  const sample = () => {
    const now = child.pid !== undefined ? vmHwmBytes(child.pid) : undefined;
    if (now !== undefined) peak = Math.max(peak ?? 0, now);
  };
  const sampler = setInterval(sample, 1000);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stderr?.pipe(log);
  // Started once it polls the task queue (its "worker started" line is info, below this log level).
  let exitCode: number | null | undefined;
  child.once('exit', (code) => (exitCode = code));
  for (const deadline = Date.now() + 120_000; ; await sleep(250)) {
    if (exitCode !== undefined) throw new Error(`the worker exited ${exitCode} before it started; its log: ${logPath}`);
    if (Date.now() > deadline) throw new Error(`the worker did not start within 120 s; its log: ${logPath}`);
    const queue = await stack.client.workflowService.describeTaskQueue({ namespace: stack.namespace, taskQueue: { name: stack.taskQueue }, taskQueueType: 1 });
    if ((queue.pollers ?? []).length > 0) break;
  }
  return {
    pid: child.pid ?? 0,
    logPath,
    peakRssBytes: () => {
      sample();
      return peak;
    },
    async stop() {
      sample();
      clearInterval(sampler);
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as in the CLI: the pinned SDK supports Node 20
  const options = parseOptions(process.argv.slice(2));
  const out = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  const soakMs = parseDuration(options.soak);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'countersign-bench-scale-'));
  const policyPath = path.join(tmp, 'policy.json');
  writeFileSync(
    policyPath,
    JSON.stringify({ approvers: { '*': [APPROVER] }, quorum: { '*': 1 }, approvalTimeout: '6h', protectedPrincipals: ['arn:aws:iam::*:user/break-glass*'], maxChanges: 2 * options.accounts * options.users + 100 }),
  );

  let proxy: AwsProxy | undefined;
  let stack: Stack | undefined;
  let worker: WorkerProcess | undefined;
  const figures: Record<string, unknown> = { options: { ...options, minimalCallsPerUser: MINIMAL_CALLS_PER_USER } };
  try {
    out(`bench:scale — stale-iam-users, ${options.accounts} account(s) × ${options.users} users, ${options.latency} ms per AWS call, soak ${options.soak}`);
    stack = await startStack({
      logger: createPino('warn'),
      policyPath,
      say: () => undefined,
      worker: false,
      workerAwsEndpoint: async (moto) => {
        proxy = await startAwsProxy({ upstream: moto.endpoint, latencyMs: options.latency });
        return proxy.endpoint;
      },
    });
    const p = proxy as unknown as AwsProxy;
    worker = await startWorkerProcess(stack, tmp, options.workerNodeOptions);
    out(`stack: Temporal ${stack.temporal.address}, moto ${stack.moto.endpoint}, worker process ${worker.pid} through the proxy ${p.endpoint} (log ${worker.logPath})`);

    // --- Countersign
    const estate = await seed(stack.moto, options, out);
    const idleness = await prepareIdleness(stack.moto, estate, out);
    const params = { maxIdle: idleness.maxIdle, soak: options.soak };
    p.reset();
    const run = await runCountersign(stack, estate, params, idleness.stop, out, options).finally(() => idleness.stop());
    const stats = p.stats();
    const workerRss = worker.peakRssBytes();
    const benchRssBytes = process.resourceUsage().maxRSS * 1024;
    const checks = await Promise.all(estate.accounts.map((a) => checkAccount(stack!.moto, estate.own, a)));
    const removed = checks.reduce((n, c) => n + c.idleGone, 0);
    const histories = await Promise.all(run.workflowIds.map((id) => historyFigures(stack!.client, id)));
    const largestHistory = histories.reduce((a, b) => (b.events > a.events || (b.events === a.events && b.payloadBytes > a.payloadBytes) ? b : a));
    const largestPayload = histories.reduce((a, b) => (b.largestPayload > a.largestPayload ? b : a));
    const perUser = removed > 0 ? stats.calls / removed : 0;

    out('');
    out(`Countersign (${run.mode === 'organization' ? `one organization-wide run, one approval, ${options.accountConcurrency} account(s) at once` : 'one run in the worker\'s own account'}, maxIdle ${idleness.maxIdle})`);
    out(`  seed:                  ${secs(estate.seedMs)} (straight into moto, not counted)`);
    out(`  plan:                  ${secs(run.planMs)} (start → awaiting approval, ${run.changes} change(s))`);
    out(`  apply:                 ${secs(run.applyMs)} (approval → done, soak ${options.soak} included)`);
    out(`  total wall:            ${secs(run.wallMs)}`);
    out(`  outcomes:              ${Object.entries(run.outcomes).map(([id, o]) => `${id} ${o}`).join('; ')}`);
    out(`  AWS calls:             ${stats.calls} (${stats.mutations} mutations; by service ${Object.entries(stats.byService).map(([s, n]) => `${s} ${n}`).join(', ')})`);
    out(`  per removed user:      ${perUser.toFixed(1)} calls — ${(perUser / MINIMAL_CALLS_PER_USER).toFixed(2)} × the minimal ${MINIMAL_CALLS_PER_USER}`);
    out('  by action (top 15):');
    for (const { action, calls } of topActions(stats)) out(`    ${String(calls).padStart(8)}  ${action}${removed ? `  (${(calls / removed).toFixed(2)} per removed user)` : ''}`);
    out(`  removed users:         ${removed} of ${checks.reduce((n, c) => n + c.idle, 0)} idle`);
    for (const c of checks) {
      out(`    ${c.ok ? 'OK  ' : 'FAIL'} ${c.account}: ${c.idleGone}/${c.idle} idle users gone (with their MFA devices and group memberships), ${c.activeUntouched}/${c.active} active users untouched${c.problems.length ? ` — ${c.problems.join('; ')}` : ''}`);
    }
    out(`  largest history:       ${largestHistory.events} events, ${kib(largestHistory.payloadBytes)} of payloads (${largestHistory.workflowId}; ${histories.length} workflow(s) read)`);
    out(`  largest payload:       ${kib(largestPayload.largestPayload)} (${largestPayload.workflowId}; Temporal warns past 512 KiB)`);
    out(`  worker peak RSS:       ${workerRss === undefined ? 'not measured (no /proc here)' : mib(workerRss)} (VmHWM of the worker process)`);
    out(`  bench peak RSS:        ${mib(benchRssBytes)} (this process: the proxy, the clients, the seeding, the history reads)`);
    figures.countersign = {
      mode: run.mode,
      maxIdle: idleness.maxIdle,
      seedMs: estate.seedMs,
      planMs: run.planMs,
      applyMs: run.applyMs,
      wallMs: run.wallMs,
      changes: run.changes,
      outcomes: run.outcomes,
      awsCalls: stats.calls,
      awsMutations: stats.mutations,
      callsByService: stats.byService,
      callsByAction: stats.byAction,
      topActions: topActions(stats),
      callsPerRemovedUser: perUser,
      ratioToMinimal: perUser / MINIMAL_CALLS_PER_USER,
      removedUsers: removed,
      checks,
      histories,
      largestHistory,
      largestPayload: { workflowId: largestPayload.workflowId, bytes: largestPayload.largestPayload },
      workerPeakRssBytes: workerRss ?? null,
      benchPeakRssBytes: benchRssBytes,
    };

    // --- Floor
    if (options.floor) {
      out('');
      out('floor: resetting moto and seeding the same estate again');
      await stack.moto.reset();
      const floorEstate = await seed(stack.moto, options, out);
      const floorIdleness = await prepareIdleness(stack.moto, floorEstate, out);
      const aws = new AwsClients(awsSettingsFromEnv({ ...process.env, ...stack.moto.env, AWS_ENDPOINT_URL: p.endpoint }));
      p.reset();
      let floor: FloorResult;
      try {
        floor = await runFloor({
          aws,
          accounts: floorEstate.accounts.map((a) => a.account),
          maxIdleMs: floorIdleness.maxIdleMs,
          soakMs,
          concurrency: options.concurrency,
          accountConcurrency: options.accountConcurrency,
          onPhase: (phase) => {
            if (phase === 'planned') void floorIdleness.stop();
          },
        });
      } finally {
        await floorIdleness.stop();
        aws.destroy();
      }
      const floorStats = p.stats();
      const floorChecks = await Promise.all(floorEstate.accounts.map((a) => checkAccount(stack!.moto, floorEstate.own, a)));
      const floorRemoved = floorChecks.reduce((n, c) => n + c.idleGone, 0);
      const floorPerUser = floorRemoved > 0 ? floorStats.calls / floorRemoved : 0;
      out(`floor (plain script, no Temporal, ${options.accountConcurrency} account(s) at once, ${options.concurrency} users at once per account, same proxy latency)`);
      out(`  wall:                  ${secs(floor.wallMs)} (plan ${secs(floor.phasesMs.plan)}, disable ${secs(floor.phasesMs.disable)}, soak ${secs(floor.phasesMs.soak)}, delete ${secs(floor.phasesMs.delete)}, verify ${secs(floor.phasesMs.verify)})`);
      out(`  AWS calls:             ${floorStats.calls} (${floorPerUser.toFixed(1)} per removed user, ${(floorPerUser / MINIMAL_CALLS_PER_USER).toFixed(2)} × the minimal ${MINIMAL_CALLS_PER_USER})`);
      for (const c of floorChecks) out(`    ${c.ok ? 'OK  ' : 'FAIL'} ${c.account}: ${c.idleGone}/${c.idle} idle users gone, ${c.activeUntouched}/${c.active} active users untouched${c.problems.length ? ` — ${c.problems.join('; ')}` : ''}`);
      if (floor.emulatorRetries > 0) out(`  emulator failures:     ${floor.emulatorRetries} read(s) made again after moto answered an HTML 500`);
      for (const a of floor.accounts) if (a.problems.length || a.leftAlone) out(`    ${a.account}: ${a.leftAlone} left alone; ${a.problems.join('; ')}`);
      const wallRatio = run.wallMs / floor.wallMs;
      const callsRatio = stats.calls / Math.max(1, floorStats.calls);
      out(`Countersign / floor:     wall ${wallRatio.toFixed(2)}×, AWS calls ${callsRatio.toFixed(2)}×`);
      figures.floor = {
        concurrency: options.concurrency,
        seedMs: floorEstate.seedMs,
        wallMs: floor.wallMs,
        phasesMs: floor.phasesMs,
        emulatorRetries: floor.emulatorRetries,
        awsCalls: floorStats.calls,
        callsByAction: floorStats.byAction,
        callsPerRemovedUser: floorPerUser,
        ratioToMinimal: floorPerUser / MINIMAL_CALLS_PER_USER,
        removedUsers: floorRemoved,
        checks: floorChecks,
        accounts: floor.accounts,
      };
      figures.ratios = { wall: wallRatio, calls: callsRatio };
    }
    if (options.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await worker?.stop();
    await stack?.stop();
    await proxy?.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
