/**
 * The `countersign` command (docs/design.md §4). Input is validated here, at the edge: a bad kind, parameter,
 * flag or file exits 2 with a one-line reason before anything is started.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { DescribeAccountCommand, DescribeOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { formatDuration } from '../common/duration';
import { ParamError, isKindName, kindNames, kindSpec, resolveKindParams } from '../common/kinds';
import type { KindName } from '../common/kinds';
import type { DecideSignal, Outcome, Phase, RemediationStatus } from '../common/messages';
import type { Change, ChangeResult, LeftAlone, VerifyCheck } from '../common/plan';
import { CLIENT_CHANNEL_ARGS, metricsAddressFromEnv, temporalSettingsFromEnv, workerHeapGrowthFromEnv } from '../worker/config';
import { resolveAwsSettings } from '../activities/aws/clients';
import { buildEvidence } from '../evidence/record';
import { evidenceMarkdown } from '../evidence/markdown';
import { CommandFailed, UsageError } from './errors';
import { checkAccountSelector, preflight } from './preflight';
import { PROJECT_ROOT } from '../sandbox/toolchain';
import { AFTER, DESCRIPTION, kindHelp, mainHelpAfter } from './help';
import type { Output } from './output';
import { createOutput } from './output';
import { RemediationClient } from './remediation-client';
import { approveHint, renderAccounts, renderPlan, renderStatus } from './render';

/** A command's option values under the flags' own names (`--dry-run` → 'dry-run'; `--no-wait` → 'no-wait': true). */
type Values = Record<string, unknown>;

function str(values: Record<string, unknown>, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

function required(values: Record<string, unknown>, key: string, command: string): string {
  const v = str(values, key);
  if (!v || !v.trim()) throw new UsageError(`${command} needs --${key}; see \`countersign ${command} --help\``);
  return v.trim();
}

async function connectClient(): Promise<{ client: RemediationClient; close(): Promise<void>; namespace: string; raw: Client }> {
  const settings = temporalSettingsFromEnv();
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connect.connectionOptions, connectTimeout: '5s', channelArgs: CLIENT_CHANNEL_ARGS } as never);
  } catch (err) {
    throw new CommandFailed(
      `cannot reach Temporal at ${settings.address} (${(err as Error).message.split('\n')[0]}); start one with \`countersign dev\` or set TEMPORAL_ADDRESS`,
    );
  }
  const raw = new Client({ connection, namespace: settings.namespace });
  return { client: new RemediationClient(raw, settings.taskQueue), close: () => connection.close(), namespace: settings.namespace, raw };
}

function parseParamFlags(flags: string[], file: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`--params ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`--params ${file}: must hold a JSON object of parameter names to values`);
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string' && typeof v !== 'number') throw new UsageError(`--params ${file}: ${k} must be a string`);
      params[k] = String(v);
    }
  }
  // --param wins over the file, but one parameter given twice on the command line is a slip: which
  // value was meant cannot be told.
  const flagged = new Set<string>();
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param ${flag}: expected key=value, e.g. --param maxIdle=90d`);
    const key = flag.slice(0, eq).trim();
    if (flagged.has(key)) throw new UsageError(`--param ${key} is given twice; give each parameter once`);
    flagged.add(key);
    params[key] = flag.slice(eq + 1);
  }
  return params;
}

function requester(values: Record<string, unknown>): string {
  const who = str(values, 'as') ?? process.env.COUNTERSIGN_USER ?? safeLogin();
  if (!who.trim()) throw new UsageError('--as must name who is acting');
  // The requester is recorded and compared with each approver (separation of duties): one line of text.
  if (/[\p{Cc}\u2028\u2029]/u.test(who.trim())) throw new UsageError(`--as must name who is acting in one line of printable text (got ${JSON.stringify(who)})`);
  return who.trim();
}

function safeLogin(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

function isDenied(err: unknown): boolean {
  const name = (err as { name?: string }).name ?? '';
  return /AccessDenied|UnauthorizedOperation|InvalidClientTokenId|UnrecognizedClient/.test(name);
}

/**
 * The target account, checked with the operator's own AWS credentials before anything starts: the
 * credentials' account by default; any other must be a 12-digit id of an active account of their
 * organization. When the operator may not read the organization, the worker checks the same before
 * it plans (activities/engine.ts resolveTarget), and the run fails there changing nothing.
 */
async function targetAccount(kind: KindName, account: string | undefined, out: Output): Promise<string> {
  if (account !== undefined && !/^\d{12}$/.test(account)) throw new UsageError(`--account must be a 12-digit AWS account id (got ${JSON.stringify(account)})`);
  const settings = await resolveAwsSettings();
  const common = { maxAttempts: settings.maxAttempts, retryMode: settings.retryMode, ...(settings.endpoint ? { endpoint: settings.endpoint } : {}) };
  const sts = new STSClient({ region: settings.region, ...common });
  const orgs = new OrganizationsClient({ region: 'us-east-1', ...common });
  try {
    let own: string;
    try {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      if (!identity.Account) throw new Error('no account in the answer');
      own = identity.Account;
    } catch (err) {
      if (account) {
        out.note(`countersign: cannot check --account ${account} with your AWS credentials (${(err as Error).message.split('\n')[0]}); the worker checks it before planning`);
        return account;
      }
      throw new CommandFailed(`cannot tell which AWS account your credentials are for (${(err as Error).message.split('\n')[0]}); pass --account ID or configure AWS credentials`);
    }
    if (!account || account === own) return own;
    let organizationId: string | undefined;
    let managementAccount: string | undefined;
    try {
      const organization = (await orgs.send(new DescribeOrganizationCommand({}))).Organization;
      organizationId = organization?.Id;
      managementAccount = organization?.MasterAccountId;
    } catch (err) {
      if ((err as Error).name === 'AWSOrganizationsNotInUseException') {
        throw new UsageError(`account ${account} is not your credentials' account (${own}), and ${own} is in no AWS organization; remediate ${own}, or use the organization's management account`);
      }
      if (isDenied(err)) {
        out.note(`countersign: your credentials may not read the organization, so the worker checks account ${account} before planning`);
        return account;
      }
      throw err;
    }
    try {
      const described = await orgs.send(new DescribeAccountCommand({ AccountId: account }));
      const state = described.Account?.State ?? described.Account?.Status;
      if (state && state !== 'ACTIVE') throw new UsageError(`account ${account} (${described.Account?.Name ?? 'unnamed'}) is ${state} in organization ${organizationId}; only active accounts are remediated`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      if ((err as Error).name === 'AccountNotFoundException') {
        throw new UsageError(`account ${account} is not in organization ${organizationId ?? '(yours)'}; \`aws organizations list-accounts\` shows its accounts`);
      }
      if (isDenied(err)) {
        out.note(`countersign: your credentials may not describe accounts of ${organizationId}; the worker checks account ${account} before planning`);
        return account;
      }
      throw err;
    }
    if (kindSpec(kind).scope === 'management' && managementAccount && account !== managementAccount) {
      throw new UsageError(`${kind} runs in the organization's management account ${managementAccount}, not ${account}; start it with --account ${managementAccount}`);
    }
    return account;
  } finally {
    sts.destroy();
    orgs.destroy();
  }
}

/** Parameters that name a file (a policy document …) are read here: the worker may not see the operator's files. */
function readFileParams(kind: KindName, given: Record<string, string>): Record<string, string> {
  const resolved = { ...given };
  for (const [key, param] of Object.entries(kindSpec(kind).params)) {
    const file = given[key];
    if (!param.fromFile || file === undefined) continue;
    try {
      resolved[key] = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--param ${key}=${file}: cannot read the file (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return resolved;
}

async function start(values: Values, positionals: string[], out: Output): Promise<number> {
  const kindArg = positionals[0];
  if (kindArg === undefined || !isKindName(kindArg)) throw new UsageError(`unknown kind "${kindArg}"; kinds: ${kindNames().join(', ')}`);
  const kind: KindName = kindArg;
  let params: Record<string, string>;
  try {
    params = readFileParams(kind, parseParamFlags((values.param as string[] | undefined) ?? [], str(values, 'params')));
    // Checked now against the kind's declarations; the workflow records these raw values and the
    // worker resolves them with the same declarations before planning.
    resolveKindParams(kind, params);
  } catch (err) {
    if (err instanceof ParamError) throw new UsageError(err.message);
    throw err;
  }
  const account = str(values, 'account');
  const suffix = str(values, 'id-suffix');
  if (suffix !== undefined && !/^[\w.-]{1,64}$/.test(suffix)) throw new UsageError('--id-suffix may use letters, digits, ".", "_" and "-" (up to 64)');
  const requestedBy = requester(values);
  const selector = str(values, 'accounts');
  if (selector !== undefined && account !== undefined) throw new UsageError('--accounts and --account do not go together: --accounts runs across the organization, --account in one account');
  if (selector === undefined && values.concurrency !== undefined) throw new UsageError('--concurrency goes with --accounts');
  let concurrency: number | undefined;
  let partSize: number | undefined;
  let terms: string[] = [];
  if (selector !== undefined) {
    if (kindSpec(kind).scope === 'management') {
      throw new UsageError(`${kind} runs in the organization's management account only: drop --accounts, and start it there (with --account <management account id>, or with its credentials)`);
    }
    terms = selector.split(',').map((t) => t.trim()).filter(Boolean);
    const bad = terms.find((t) => t !== 'all' && !/^\d{12}$/.test(t) && !/^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$/.test(t));
    if (terms.length === 0 || bad !== undefined) throw new UsageError(`--accounts takes all, or comma-separated 12-digit account ids, OU ids (ou-…) and root ids (r-…)${bad !== undefined ? `; ${JSON.stringify(bad)} is none of those` : ''}`);
    const twice = terms.find((t, i) => terms.indexOf(t) !== i);
    if (twice !== undefined) throw new UsageError(`--accounts names ${twice} twice; name each account, OU or root once`);
    if (values.concurrency !== undefined) {
      concurrency = Number(values.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 50) throw new UsageError('--concurrency must be a whole number from 1 to 50');
    }
    if (values['part-size'] !== undefined) {
      partSize = Number(values['part-size']);
      if (!Number.isInteger(partSize) || partSize < 1 || partSize > 2000) throw new UsageError('--part-size must be a whole number from 1 to 2000');
    }
  } else if (values['part-size'] !== undefined) {
    throw new UsageError('--part-size goes with --accounts');
  }
  if (selector !== undefined) await checkAccountSelector(terms, out);
  const target = selector === undefined ? await targetAccount(kind, account, out) : 'organization';
  // What needs several parameters together, the target, or the organization to judge (cli/preflight.ts): exit 2.
  await preflight(kind, resolveKindParams(kind, params), out, selector === undefined ? target : undefined);
  const { client, close } = await connectClient();
  try {
    const dryRun = values['dry-run'] === true;
    const started =
      selector === undefined
        ? await client.start({ kind, account: target, params, requestedBy, dryRun, idSuffix: suffix })
        : await client.startOrganization({ kind, accounts: selector, params, requestedBy, dryRun, ...(concurrency ? { concurrency } : {}), ...(partSize ? { partSize } : {}), idSuffix: suffix });
    out.line(started.workflowId);
    if (values['no-wait']) {
      out.result(started);
      return 0;
    }
    out.note(`started ${started.workflowId}; planning against live AWS state…`);
    const status = await client.waitFor(started.workflowId, (s) => s.phase !== 'starting' && s.phase !== 'planning', {
      timeoutMs: 15 * 60_000,
      onChange: (s, prev) => {
        if (prev && (s.phase === 'starting' || s.phase === 'planning')) out.note(`  still planning (reading live AWS state)…`);
      },
    }).catch(async (err: unknown) => {
      if (err instanceof CommandFailed) return client.status(started.workflowId);
      throw err;
    });
    out.result({ ...started, status });
    if (status.plan) for (const line of renderPlan(status.plan)) out.line(line);
    for (const line of renderAccounts(status)) out.line(line);
    if (status.outcome) out.line(`outcome: ${status.outcome}${status.outcomeReason ? ` — ${status.outcomeReason}` : ''}`);
    for (const line of approveHint(status)) out.line(line);
    return status.outcome === 'failed' ? 1 : 0;
  } finally {
    await close();
  }
}

/** `--run-id R`: one run of a workflow id (it is reused once a run closed); absent, the latest run. */
function runIdFlag(values: Record<string, unknown>, command: string): string | undefined {
  const runId = str(values, 'run-id');
  if (runId === undefined) return undefined;
  if (!/^[\w-]{1,64}$/.test(runId.trim())) throw new UsageError(`--run-id must be a run id as \`countersign list\` shows it (got "${runId}"); see \`countersign ${command} --help\``);
  return runId.trim();
}

/** The rendered status with the run it belongs to, under its first line. */
function withRunId(lines: string[], runId: string): string[] {
  return [...lines.slice(0, 1), `  run ${runId}`, ...lines.slice(1)];
}

async function status(values: Values, positionals: string[], out: Output): Promise<number> {
  const workflowId = positionals[0] as string;
  const requestedRun = runIdFlag(values, 'status');
  const { client, close } = await connectClient();
  try {
    // The run is fixed once: --watch follows that run, not one started later under the same id.
    const { runId, status: s } = await client.runStatus(workflowId, requestedRun);
    if (!values.watch) {
      if (values.all) {
        // Every list in full, page by page (the `details` query): a large run's status lists 200 of each.
        const full: RemediationStatus = { ...s, results: [] };
        const lists = { changes: [] as Change[], leftAlone: [] as LeftAlone[], checks: [] as VerifyCheck[] };
        for await (const c of client.details(workflowId, runId, 'changes')) lists.changes.push(c as Change);
        for await (const l of client.details(workflowId, runId, 'left-alone')) lists.leftAlone.push(l as LeftAlone);
        for await (const r of client.details(workflowId, runId, 'results')) full.results.push(r as ChangeResult);
        for await (const c of client.details(workflowId, runId, 'checks')) lists.checks.push(c as VerifyCheck);
        if (full.plan) {
          const notListed = full.plan.leftAloneNotListed - Math.max(0, lists.leftAlone.length - full.plan.leftAlone.length);
          full.plan = { ...full.plan, changes: lists.changes, leftAlone: lists.leftAlone, leftAloneNotListed: Math.max(0, notListed) };
          delete full.plan.changesNotListed;
        }
        delete full.resultsNotListed;
        if (full.verification) full.verification = { ok: full.verification.ok, checks: lists.checks };
        out.result({ ...full, runId });
        for (const line of withRunId(renderStatus(full), runId)) out.line(line);
        return 0;
      }
      out.result({ ...s, runId });
      for (const line of withRunId(renderStatus(s), runId)) out.line(line);
      return 0;
    }
    // Follow the run to its end: each phase, stage and change result as it happens, and the time left
    // of a soak or an approval window every half minute.
    const seen = new Set<string>();
    const final = await client.waitFor(workflowId, (s) => s.phase === 'done', {
      runId,
      timeoutMs: Number.MAX_SAFE_INTEGER,
      heartbeatMs: 30_000,
      onChange: (s, prev) => {
        if (!prev || prev.phase !== s.phase || prev.stage !== s.stage) out.note(`${new Date().toISOString()} phase ${s.phase}${s.stage ? ` (stage ${s.stage})` : ''}`);
        for (const r of s.results) {
          const key = `${r.changeId}:${r.status}`;
          if (!seen.has(key)) {
            seen.add(key);
            out.note(`  ${r.status.padEnd(15)} ${r.changeId}${r.detail ? ` — ${r.detail}` : ''}`);
          }
        }
        const until = s.soakUntil ?? (s.phase === 'awaiting-approval' ? s.expiresAt : undefined);
        if (until && prev && prev.phase === s.phase) out.note(`  … ${s.phase}, ${formatDuration(Date.parse(until) - Date.now())} left`);
      },
    });
    out.result({ ...final, runId });
    for (const line of withRunId(renderStatus(final), runId)) out.line(line);
    return final.outcome === 'completed' || final.outcome === 'no-op' || final.outcome === 'planned' ? 0 : 1;
  } finally {
    await close();
  }
}

async function decide(command: 'approve' | 'reject', values: Values, positionals: string[], out: Output): Promise<number> {
  const workflowId = positionals[0] as string;
  // With a proof of AWS identity (--sign, --profile, or a policy that requires it) the verified ARN is
  // the approver and --as is optional; otherwise --as names the approver.
  const profile = str(values, 'profile')?.trim() || undefined;
  let sign: boolean | undefined = values.sign === true || profile !== undefined ? true : undefined;
  const claimed = str(values, 'as')?.trim() || undefined;
  if (str(values, 'as') !== undefined && !claimed) required(values, 'as', command);
  let planDigest = command === 'approve' ? required(values, 'plan', command) : str(values, 'plan');
  if (planDigest !== undefined && !/^[0-9a-f]{64}$/.test(planDigest)) {
    throw new UsageError(`--plan must be the plan's full 64-character digest as shown by \`countersign status ${workflowId}\``);
  }
  const { client, close } = await connectClient();
  try {
    if (!planDigest || (!claimed && !sign)) {
      const current = await client.status(workflowId);
      if (!claimed && !sign) {
        if (current.policy?.identity !== 'aws-sts') required(values, 'as', command);
        sign = true;
      }
      if (!planDigest) {
        if (!current.plan) throw new CommandFailed(`${workflowId} has no plan yet (phase ${current.phase}); try again when it is awaiting approval`);
        planDigest = current.plan.digest;
      }
    }
    const comment = str(values, 'comment');
    const decision: DecideSignal = { decision: command, ...(claimed ? { approver: claimed } : {}), planDigest, ...(comment ? { comment } : {}) };
    const reply = await client.decide(workflowId, decision, undefined, { ...(sign !== undefined ? { sign } : {}), ...(profile ? { profile } : {}) });
    const approver = reply.accepted ? (reply.decision.verifiedArn ? `${reply.decision.verifiedArn} (verified)` : reply.decision.approver) : claimed;
    out.result(reply.accepted ? { accepted: true, decision: reply.decision, phase: reply.status.phase } : { accepted: false, refusal: reply.refusal });
    if (!reply.accepted) {
      out.note(`refused: ${reply.refusal.message.replace(/\s*[\r\n]+\s*/g, ' ')}`);
      return 1;
    }
    const s = reply.status;
    const approvals = s.decisions.filter((d) => d.decision === 'approve').length;
    out.line(
      command === 'approve'
        ? `approved by ${approver} (${approvals} of ${s.policy?.quorum ?? '?'} needed); phase now ${s.phase}`
        : `rejected by ${approver}; the run stops${s.phase === 'awaiting-approval' ? '' : ' and rolls back what is reversible'}`,
    );
    return 0;
  } finally {
    await close();
  }
}

async function list(values: Values, out: Output): Promise<number> {
  const kind = str(values, 'kind');
  if (kind !== undefined && !isKindName(kind)) throw new UsageError(`unknown kind "${kind}"; kinds: ${kindNames().join(', ')}`);
  const phases: Phase[] = ['starting', 'planning', 'awaiting-approval', 'applying', 'soaking', 'verifying', 'rolling-back', 'done'];
  const phase = str(values, 'phase');
  if (phase !== undefined && !phases.includes(phase as Phase)) throw new UsageError(`unknown phase "${phase}"; phases: ${phases.join(', ')}`);
  const outcomes: Outcome[] = ['completed', 'no-op', 'planned', 'rejected', 'expired', 'failed', 'rolled-back', 'cancelled'];
  const outcome = str(values, 'outcome');
  if (outcome !== undefined && !outcomes.includes(outcome as Outcome)) throw new UsageError(`unknown outcome "${outcome}"; outcomes: ${outcomes.join(', ')}`);
  const account = str(values, 'account');
  if (account !== undefined && !/^\d{12}$/.test(account)) throw new UsageError(`--account must be a 12-digit AWS account id (got ${JSON.stringify(account)})`);
  const requestedBy = str(values, 'requested-by');
  if (requestedBy !== undefined && !requestedBy.trim()) throw new UsageError('--requested-by must name who requested the runs');
  const limitText = str(values, 'limit') ?? '100';
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive whole number (got "${limitText}")`);
  const { client, close } = await connectClient();
  try {
    const { runs, filtered } = await client.list({
      kind: kind as KindName | undefined,
      phase: phase as Phase | undefined,
      outcome: outcome as Outcome | undefined,
      account,
      requestedBy: requestedBy?.trim(),
      limit,
    });
    if (filtered === 'client') {
      out.note('countersign: this Temporal namespace has no Countersign search attributes, so the filters ran client-side (see README, "Running it for real")');
    }
    out.result(runs);
    if (runs.length === 0) out.line('no remediations');
    for (const r of runs) {
      out.line(`${r.workflowId.padEnd(44)} ${r.runId}  ${r.phase.padEnd(18)} ${(r.outcome ?? '').padEnd(12)} ${r.requestedBy ?? ''}  ${r.startTime}`);
    }
    return 0;
  } finally {
    await close();
  }
}

async function evidence(values: Values, positionals: string[], out: Output): Promise<number> {
  const format = str(values, 'format') ?? 'json';
  if (values.json && format !== 'json') throw new UsageError('--json prints the JSON evidence record; drop --format or use --format json');
  if (format !== 'json' && format !== 'md') {
    throw new UsageError(
      format === 'html' ? 'html evidence is not built yet; use --format json or --format md' : `unknown format "${format}"; use json or md`,
    );
  }
  const workflowId = positionals[0] as string;
  const requestedRun = runIdFlag(values, 'evidence');
  const { client, close, namespace, raw } = await connectClient();
  try {
    const description = await raw.workflow
      .getHandle(workflowId, requestedRun)
      .describe()
      .catch(() => {
        throw new CommandFailed(
          requestedRun
            ? `no run ${requestedRun} of workflow id ${workflowId}; \`countersign list\` shows the runs with their run ids`
            : `no remediation with workflow id ${workflowId}; \`countersign list\` shows them`,
        );
      });
    // Pinned to the described run: the latest one, or the one --run-id names.
    const handle = raw.workflow.getHandle(workflowId, description.runId);
    const history = await handle.fetchHistory();
    const live = description.status.name === 'RUNNING' ? await client.status(workflowId, description.runId) : undefined;
    const record = buildEvidence(history, { namespace, workflowId, runId: description.runId }, { live });
    const text = format === 'json' ? `${JSON.stringify(record, null, 2)}\n` : evidenceMarkdown(record);
    const path = str(values, 'out');
    if (path) {
      writeFileSync(path, text);
      out.note(`wrote ${format} evidence for ${workflowId} (run ${description.runId}) to ${path}`);
      out.result({ workflowId, runId: description.runId, format, path });
    } else {
      process.stdout.write(text);
    }
    return 0;
  } finally {
    await close();
  }
}

/** A command's option values under the flags' own names, as the command bodies read them. */
function flagValues(cmd: Command): Values {
  const values: Values = {};
  for (const option of cmd.options) {
    const name = (option.long ?? option.short ?? '').replace(/^--?/, '');
    const value = cmd.getOptionValue(option.attributeName()) as unknown;
    if (option.negate) {
      if (value === false) values[name] = true;
    } else if (value !== undefined) {
      values[name] = value;
    }
  }
  return values;
}

const COMMANDS = ['demo', 'dev', 'worker', 'start', 'status', 'approve', 'reject', 'list', 'evidence'];
const TEMPORAL_COMMANDS = new Set(['start', 'status', 'approve', 'reject', 'list', 'evidence', 'worker']);
const METRICS_COMMANDS = new Set(['worker', 'dev', 'demo']);

/** host:port, [ipv6]:port; what @temporalio/client and the temporal CLI accept as an address. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/** The environment a command reads, checked before it starts anything: a bad value is bad input (exit 2). */
function checkEnvironment(command: string, env: NodeJS.ProcessEnv = process.env): void {
  if (TEMPORAL_COMMANDS.has(command) && env.TEMPORAL_ADDRESS !== undefined) {
    const address = env.TEMPORAL_ADDRESS.trim();
    if (!address) throw new UsageError('TEMPORAL_ADDRESS is set but empty; give host:port (e.g. 127.0.0.1:7233), or unset it for 127.0.0.1:7233');
    const match = HOST_PORT.exec(address);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) throw new UsageError(`TEMPORAL_ADDRESS must be host:port (e.g. 127.0.0.1:7233 or temporal:7233), not "${env.TEMPORAL_ADDRESS}"`);
  }
  try {
    if (METRICS_COMMANDS.has(command)) metricsAddressFromEnv(env);
    if (command === 'worker') workerHeapGrowthFromEnv(env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Prose for commander, which wraps it to the terminal: paragraphs, not hard-wrapped lines. */
function prose(text: string): string {
  return text.replace(/([^\n])\n(?=[^\n])/g, '$1 ');
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Help goes through `out` like any result: text on stdout, or `{ help }` with --json. */
function emitHelp(text: string, out: Output): number {
  const help = text.replace(/\s+$/, '');
  out.line(help);
  out.result({ help });
  return 0;
}

function emitVersion(out: Output): number {
  const version = packageVersion();
  out.line(`countersign ${version}`);
  out.result({ version });
  return 0;
}

/**
 * The command definitions (docs/design.md §4): commander parses and generates the help; it never
 * writes or exits itself (configureOutput, exitOverride) — main() reports and returns the exit code.
 */
function buildProgram(out: Output, state: { code: number; help: string[] }): Command {
  const program = new Command('countersign')
    .description(prose(DESCRIPTION.main))
    .usage('<command> [options]')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void state.help.push(text),
      writeErr: (text) => void state.help.push(text),
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .version(packageVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--json', 'one JSON document on stdout; logs on stderr').hideHelp())
    .helpOption('-h, --help', 'show this help')
    .helpCommand('help [command]', 'show the help of a command')
    .addHelpText('after', mainHelpAfter());
  program.hook('preAction', (_program, command) => {
    if (command.getOptionValue('help') !== true) checkEnvironment(command.name());
  });

  const json = (): Option => new Option('--json', 'one JSON document on stdout; logs on stderr');
  const run = (body: (values: Values, positionals: string[]) => Promise<number>) =>
    async function (this: Command): Promise<void> {
      state.code = await body(flagValues(this), this.args);
    };
  const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

  program
    .command('demo')
    .summary('everything on this machine: Temporal dev server, AWS sandbox, a worker, a seeded estate, each remediation end to end')
    .description(prose(DESCRIPTION.demo))
    .option('--kind <K>', "run only that kind's demo (an unknown K is refused, listing the kinds that have one)")
    .option('--keep', 'leave the stack running afterwards and print the Temporal Web UI address to browse the history')
    .addOption(json())
    .action(
      run(async (values) => {
        const { runDemo } = await import('./demo');
        return runDemo({ keep: values.keep === true, kind: str(values, 'kind') }, out);
      }),
    );

  program
    .command('dev')
    .summary('the embedded stack until Ctrl-C (prints the environment to use it)')
    .description(prose(DESCRIPTION.dev))
    .option('--seed', "create the demo organization and each demo's estate in the sandbox")
    .addOption(json())
    .addHelpText('after', AFTER.dev)
    .action(
      run(async (values) => {
        const { runDev } = await import('./demo');
        return runDev({ seed: values.seed === true }, out);
      }),
    );

  program
    .command('worker')
    .summary('run a worker for TEMPORAL_ADDRESS (task queue COUNTERSIGN_TASK_QUEUE)')
    .description(prose(DESCRIPTION.worker))
    .addOption(json())
    .action(
      run(async () => {
        const { runWorkerFromEnv } = await import('../worker');
        await runWorkerFromEnv();
        return 0;
      }),
    );

  // start handles --help itself: `start <kind> --help` shows that kind's parameters from the catalogue.
  const startCommand = program
    .command('start')
    .summary('plan a remediation and wait for approval (prints the workflow id)')
    .description(prose(DESCRIPTION.start))
    .usage('<kind> [options]')
    .argument('[kind]', `the remediation: ${kindNames().join(', ')}`)
    .helpOption(false)
    .option('--param <key=value>', "a parameter of the kind (repeatable); see `countersign start <kind> --help` for the kind's", collect)
    .option('--params <FILE>', 'parameters from a JSON object file ({"maxIdle": "90d"}); --param wins')
    .option(
      '--account <ID>',
      'the target account: any account of your organization, reached by the worker through a role it assumes there (default: the account of your AWS credentials). An id that is not 12 digits, or not in the organization, is refused (exit 2).',
    )
    .option(
      '--accounts <SELECTOR>',
      'run across the organization with ONE approval: all, or comma-separated account ids, OU ids (ou-…) and the root (r-…). Each account runs on its own (its own plan, soaks, rollback and history); one consolidated plan names every account\'s plan digest. Not with --account.',
    )
    .option('--concurrency <N>', 'with --accounts: accounts planning, or applying, at once (default 4, at most 50)')
    .option('--part-size <N>', 'with --accounts: an account with more than N resources to change (stale-iam-users: idle users) runs as several parts, each its own run, under the one approval (default 2000, at most 2000)')
    .option('--dry-run', 'plan only: the run ends "planned" and nothing can be approved or changed')
    .option('--as <WHO>', 'who is requesting (default: $COUNTERSIGN_USER or your login); they cannot approve')
    .option('--id-suffix <S>', 'run a separate scope concurrently: workflow id <kind>/<account>/<S>')
    .option('--no-wait', 'print the workflow id and return without waiting for the plan')
    .addOption(json())
    .option('-h, --help', 'show this help')
    .addHelpText('after', AFTER.start);
  startCommand.action(
    run(async (values, positionals) => {
      const kindArg = positionals[0];
      if (values.help) {
        if (kindArg !== undefined && isKindName(kindArg)) return emitHelp(kindHelp(kindArg), out);
        startCommand.outputHelp();
        return emitHelp(state.help.splice(0).join(''), out);
      }
      if (kindArg === undefined) throw new UsageError(`start needs a kind: ${kindNames().join(', ')}; see \`countersign start --help\``);
      return start(values, positionals, out);
    }),
  );

  const runIdOption = (): Option =>
    new Option('--run-id <R>', 'that run of the workflow id (an id is reused once its run has ended; `countersign list` shows every run with its run id); default: the latest run');

  program
    .command('status')
    .summary('phase, plan, decisions, refusals, progress, outcome (--watch follows it)')
    .description(prose(DESCRIPTION.status))
    .argument('<workflowId>', 'the workflow id `countersign start` printed')
    .addOption(runIdOption())
    .option(
      '--watch',
      'follow the run until it ends, printing each phase and change result as it happens and the time left of a soak or approval window',
    )
    .option('--all', 'list every change, resource left alone, result and check, however many (the status lists the first or newest 200 of each and counts the rest)')
    .addOption(json())
    .addHelpText('after', AFTER.status)
    .action(run((values, positionals) => status(values, positionals, out)));

  for (const command of ['approve', 'reject'] as const) {
    program
      .command(command)
      .summary(command === 'approve' ? 'approve the plan with that digest' : 'reject the plan, or halt a run and roll back what is reversible')
      .description(prose(DESCRIPTION[command]))
      .argument('<workflowId>', 'the workflow id `countersign start` printed')
      .option('--as <WHO>', 'who is deciding (optional with a proof of AWS identity: the verified ARN is recorded)')
      .option('--plan <DIGEST>', command === 'approve' ? "the plan's full 64-character digest as `countersign status` shows it" : "the plan's digest (default: the current plan's)")
      .option('--comment <TEXT>', 'a comment recorded with the decision')
      .option(
        '--sign',
        'prove who you are: sign (never send) an sts:GetCallerIdentity request with your own AWS credentials (the SDK\'s default chain), bound to this run and plan; the worker has STS verify it and the ARN STS answers is the decider. Automatic when the run\'s policy has "identity": "aws-sts"',
      )
      .option('--profile <P>', 'sign with that AWS shared-config profile (implies --sign)')
      .addOption(json())
      .addHelpText('after', AFTER[command])
      .action(run((values, positionals) => decide(command, values, positionals, out)));
  }

  program
    .command('list')
    .summary('remediations, running and finished, every run with its run id, newest first')
    .description(prose(DESCRIPTION.list))
    .option('--kind <K>', 'a kind (see `countersign --help`)')
    .option('--phase <P>', 'starting, planning, awaiting-approval, applying, soaking, verifying, rolling-back, done')
    .option('--account <A>', 'the target account (12 digits)')
    .option('--outcome <O>', 'completed, no-op, planned, rejected, expired, failed, rolled-back, cancelled')
    .option('--requested-by <WHO>', 'who started the run')
    .option('--limit <N>', 'at most N runs (default 100)')
    .addOption(json())
    .addHelpText('after', AFTER.list)
    .action(run((values) => list(values, out)));

  program
    .command('evidence')
    .summary('the change evidence from the workflow history')
    .description(prose(DESCRIPTION.evidence))
    .argument('<workflowId>', 'the workflow id `countersign start` printed')
    .addOption(runIdOption())
    .option('--format <json|md>', 'json (default) or md')
    .option('--out <PATH>', 'write the evidence to that file')
    .addOption(json())
    .addHelpText('after', AFTER.evidence)
    .action(run((values, positionals) => evidence(values, positionals, out)));

  program
    .command('version', { hidden: true })
    .addOption(json())
    .action(run(async () => emitVersion(out)));

  return program;
}

/** commander's message as one line: `unknown option '--dry-rnu' (Did you mean --dry-run?)`. */
function usageLine(err: CommanderError, argv: string[]): string {
  const message = err.message
    .replace(/^error:\s*/, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim()
    .replace(/\.$/, '');
  const command = argv.find((a) => !a.startsWith('-'));
  const topic = command !== undefined && COMMANDS.includes(command) ? ` ${command}` : '';
  return `${message}; see \`countersign${topic} --help\``;
}

/** `text` with each control character (newline, tab, escape, …) written as its escape (a backslash and n, t, u001b, …). */
function oneLine(text: string): string {
  const short: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => short[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export async function main(argv: string[], out?: Output): Promise<number> {
  const output = out ?? createOutput(argv.includes('--json'));
  const state = { code: 0, help: [] as string[] };
  try {
    const program = buildProgram(output, state);
    await program.parseAsync(argv.length === 0 ? ['--help'] : argv, { from: 'user' });
    return state.code;
  } catch (caught) {
    let err = caught;
    if (err instanceof CommanderError) {
      if (err.code === 'commander.version') return emitVersion(output);
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return emitHelp(state.help.join(''), output);
      err = new UsageError(usageLine(err, argv));
    }
    if (err instanceof UsageError) {
      // One line whatever the input held: a newline the operator passed shows as \n, never a line break.
      output.note(`countersign: ${oneLine(err.message)}`);
      if (output.json) output.result({ error: err.message, exitCode: 2 });
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    output.note(`countersign: ${message}`);
    if (output.json) output.result({ error: message, exitCode: 1 });
    return 1;
  }
}
if (require.main === module) {
  // See bin/countersign.js: the pinned AWS SDK supports Node 20; its notice about future versions is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`countersign: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
