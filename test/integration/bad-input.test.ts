/**
 * Bad input, kind by kind (issue 10): every parameter of the catalogue (common/kinds.ts), the files it
 * names, the target account and the organization selector, given wrong. Through the CLI each case
 * must exit 2 with exactly one line on stderr that names the parameter and says what to do, start no
 * workflow on the task queue, and leave AWS as it was. A few cases go to the workflow directly,
 * bypassing the CLI: the run must end `failed` naming the parameter, with AWS unchanged.
 *
 * One stack for the file: the sandbox holds the organization and every kind's demo estate
 * (sandbox/scenarios), so a refusal that slipped through would have something to change. Each kind's
 * table runs its CLI children a few at a time, between two snapshots of the AWS listings.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CloudTrailClient, DescribeTrailsCommand, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import {
  CreatePolicyCommand,
  GetLoginProfileCommand,
  GetRoleCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListPoliciesCommand as ListIamPoliciesCommand,
  ListRolesCommand,
  ListUsersCommand,
} from '@aws-sdk/client-iam';
import {
  DescribePolicyCommand,
  ListAccountsCommand,
  ListAWSServiceAccessForOrganizationCommand,
  ListOrganizationalUnitsForParentCommand,
  ListPoliciesCommand,
  ListRootsCommand,
  ListTargetsForPolicyCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { GetBucketPolicyCommand, GetBucketVersioningCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import type { KindName } from '../../common/kinds';
import { KINDS } from '../../common/kinds';
import type { RemediationInput } from '../../common/messages';
import type { SeededOrganization } from '../../sandbox/organization';
import { sandboxClientConfig } from '../../sandbox/organization';
import { seedEstate } from '../../sandbox/seed';
import { SCENARIOS, createScenarioContext, scenarioKinds } from '../../sandbox/scenarios';
import type { Scenario } from '../../sandbox/scenarios';
import type { CliResult } from '../harness/cli';
import { ownStderr, runCli } from '../harness/cli';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const REQUESTER = 'riley.operator';
/** CLI children at once: each is about half a second of CPU, and the machine is shared. */
const PARALLEL = 4;
/** An account id of the right shape that is in no organization of the sandbox. */
const STRANGER = '999999999999';

let stack: TestStack;
let org: SeededOrganization;
let management: string;
let member: string;
let sandboxOu: string;
let workloadsOu: string;
let files: Record<'notJson' | 'array' | 'notPolicy' | 'principalScp' | 'tooLarge' | 'empty' | 'goodScp' | 'directory' | 'missing' | 'paramsNotJson' | 'paramsArray' | 'paramsNested', string>;

beforeAll(async () => {
  stack = await startTestStack();
  const context = createScenarioContext(stack.moto.endpoint);
  try {
    org = await context.organization();
    const workloads = org.accounts.find((a) => a.name === 'workloads-prod')?.id as string;
    // Every kind's demo estate; for stale-iam-users its users alone (its scenario also waits for them
    // to go idle, which a refusal never reaches).
    for (const kind of scenarioKinds()) {
      if (kind === 'stale-iam-users') await seedEstate(context.iam(workloads), 'bad-input');
      else await (SCENARIOS[kind] as Scenario).seed(context);
    }
    // A customer managed policy too (the estates attach AWS managed ones only), so the snapshot's
    // policy listing has something to lose.
    await context.iam(workloads).send(new CreatePolicyCommand({ PolicyName: 'bad-input-boundary', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] }) }));
  } finally {
    context.close();
  }
  management = org.managementAccount;
  member = org.accounts.find((a) => a.name === 'workloads-prod')?.id as string;
  sandboxOu = org.ous.Sandbox as string;
  workloadsOu = org.ous.Workloads as string;
  expect(org.accounts.map((a) => a.id)).not.toContain(STRANGER);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-bad-input-'));
  const file = (name: string, content: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  const statement = (i: number) => ({ Sid: `Deny${i}`, Effect: 'Deny', Action: `s3:DeleteBucket${'x'.repeat(40)}`, Resource: '*' });
  files = {
    notJson: file('not-json.json', '{"Version": "2012-10-17", "Statement": [\n'),
    array: file('array.json', '[{"Version": "2012-10-17"}]'),
    notPolicy: file('not-policy.json', '{"hello": "world"}'),
    principalScp: file('principal.json', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: '*' }] })),
    tooLarge: file('too-large.json', JSON.stringify({ Version: '2012-10-17', Statement: Array.from({ length: 80 }, (_, i) => statement(i)) })),
    empty: file('empty.json', ''),
    goodScp: file('good.json', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'organizations:LeaveOrganization', Resource: '*' }] })),
    directory: path.join(dir, 'a-directory'),
    missing: path.join(dir, 'no-such-file.json'),
    paramsNotJson: file('params-not-json.json', 'maxIdle=90d'),
    paramsArray: file('params-array.json', '["maxIdle", "90d"]'),
    paramsNested: file('params-nested.json', '{"maxIdle": {"days": 90}}'),
  };
  mkdirSync(files.directory);
});

// --- the AWS state a refusal must leave as it was ---------------------------------------------------

/** Every listing a bad input could disturb, in every account of the organization, as plain data. */
async function snapshot(): Promise<Record<string, unknown>> {
  const state: Record<string, unknown> = {};
  const orgs = new OrganizationsClient(sandboxClientConfig(stack.moto.endpoint, management));
  try {
    const roots = (await orgs.send(new ListRootsCommand({}))).Roots ?? [];
    const scps = (await orgs.send(new ListPoliciesCommand({ Filter: 'SERVICE_CONTROL_POLICY' }))).Policies ?? [];
    state.organization = {
      roots: roots.map((r) => ({ id: r.Id, types: r.PolicyTypes })),
      ous: await Promise.all(roots.map(async (r) => (await orgs.send(new ListOrganizationalUnitsForParentCommand({ ParentId: r.Id }))).OrganizationalUnits?.map((o) => [o.Id, o.Name]))),
      accounts: ((await orgs.send(new ListAccountsCommand({}))).Accounts ?? []).map((a) => [a.Id, a.Status]).sort(),
      serviceAccess: ((await orgs.send(new ListAWSServiceAccessForOrganizationCommand({}))).EnabledServicePrincipals ?? []).map((p) => p.ServicePrincipal).sort(),
      scps: await Promise.all(
        scps.map(async (p) => ({
          id: p.Id,
          name: p.Name,
          content: (await orgs.send(new DescribePolicyCommand({ PolicyId: p.Id }))).Policy?.Content,
          targets: ((await orgs.send(new ListTargetsForPolicyCommand({ PolicyId: p.Id }))).Targets ?? []).map((t) => t.TargetId).sort(),
        })),
      ),
    };
  } finally {
    orgs.destroy();
  }
  for (const account of [management, ...org.accounts.map((a) => a.id)]) {
    const config = sandboxClientConfig(stack.moto.endpoint, account);
    const { forcePathStyle: _s3Only, ...iamConfig } = config;
    const iam = new IAMClient(iamConfig);
    const trails = new CloudTrailClient(config);
    const s3 = new S3Client(config);
    try {
      const users = (await iam.send(new ListUsersCommand({}))).Users ?? [];
      const roles = (await iam.send(new ListRolesCommand({}))).Roles ?? [];
      const policies = (await iam.send(new ListIamPoliciesCommand({ Scope: 'Local' }))).Policies ?? [];
      const trailList = (await trails.send(new DescribeTrailsCommand({ includeShadowTrails: false }))).trailList ?? [];
      const buckets = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
      state[account] = {
        users: await Promise.all(
          users.map(async (u) => ({
            name: u.UserName,
            path: u.Path,
            keys: ((await iam.send(new ListAccessKeysCommand({ UserName: u.UserName }))).AccessKeyMetadata ?? []).map((k) => [k.AccessKeyId, k.Status]),
            console: await iam.send(new GetLoginProfileCommand({ UserName: u.UserName })).then(() => true, () => false),
            policies: ((await iam.send(new ListAttachedUserPoliciesCommand({ UserName: u.UserName }))).AttachedPolicies ?? []).map((p) => p.PolicyArn),
          })),
        ),
        roles: await Promise.all(
          roles.map(async (r) => [r.RoleName, (await iam.send(new GetRoleCommand({ RoleName: r.RoleName }))).Role?.PermissionsBoundary?.PermissionsBoundaryArn ?? null]),
        ),
        policies: policies.map((p) => [p.Arn, p.DefaultVersionId, p.AttachmentCount]),
        trails: await Promise.all(
          trailList.map(async (t) => ({
            name: t.Name,
            bucket: t.S3BucketName,
            organization: t.IsOrganizationTrail,
            multiRegion: t.IsMultiRegionTrail,
            validation: t.LogFileValidationEnabled,
            logging: (await trails.send(new GetTrailStatusCommand({ Name: t.TrailARN }))).IsLogging,
          })),
        ),
        buckets: await Promise.all(
          buckets.map(async (b) => ({
            name: b.Name,
            policy: (await s3.send(new GetBucketPolicyCommand({ Bucket: b.Name })).catch(() => undefined))?.Policy ?? null,
            versioning: (await s3.send(new GetBucketVersioningCommand({ Bucket: b.Name }))).Status ?? null,
          })),
        ),
      };
    } finally {
      iam.destroy();
      trails.destroy();
      s3.destroy();
    }
  }
  return state;
}

/** Ids of every workflow the server lists on this file's task queue. */
async function workflowsOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of stack.client.workflow.list({ query: `TaskQueue = "${stack.taskQueue}"` })) ids.push(w.workflowId);
  return ids;
}

// --- the tables -------------------------------------------------------------------------------------

interface Case {
  /** What is wrong, as the table shows it. */
  name: string;
  args: string[];
  /** The one stderr line, after "countersign: ": names the parameter and says what to do. */
  reason: RegExp;
}

const p = (key: string, value: string): string[] => ['--param', `${key}=${value}`];
const long = (n: number, c = 'a') => c.repeat(n);

/** The cases of one kind; ids the sandbox creates are read when the table runs. */
const TABLES: Record<KindName, () => Case[]> = {
  'stale-iam-users': () => {
    const base = ['--account', '<member>'];
    const only = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...base, ...args], reason });
    return [
      // the target account
      { name: 'account of 2 digits', args: ['--account', '12'], reason: /^--account must be a 12-digit AWS account id \(got "12"\)$/ },
      { name: 'account of 13 digits', args: ['--account', '1234567890123'], reason: /^--account must be a 12-digit AWS account id/ },
      { name: 'account with a letter', args: ['--account', '12345678901a'], reason: /^--account must be a 12-digit AWS account id/ },
      { name: 'account empty', args: ['--account', ''], reason: /^--account must be a 12-digit AWS account id \(got ""\)$/ },
      { name: 'account with a newline', args: ['--account', `<member>\n`], reason: /^--account must be a 12-digit AWS account id \(got "\d{12}\\n"\)$/ },
      { name: 'account with spaces', args: ['--account', ` <member> `], reason: /^--account must be a 12-digit AWS account id/ },
      { name: 'account not in the organization', args: ['--account', STRANGER], reason: /^account 999999999999 is not in organization o-\w+; `aws organizations list-accounts` shows its accounts$/ },
      // durations
      only('maxIdle negative', p('maxIdle', '-1d'), /^maxIdle must be a duration such as 90d, 12h or 2s \(got "-1d"\)$/),
      only('maxIdle zero', p('maxIdle', '0s'), /^maxIdle must be between 1s and 3650d \(got 0s\)$/),
      only('maxIdle rounding to zero', p('maxIdle', '0.0001s'), /^maxIdle must be between 1s and 3650d/),
      only('maxIdle absurd', p('maxIdle', '99999999999d'), /^maxIdle must be between 1s and 3650d \(got 99999999999d\)$/),
      only('maxIdle unparseable', p('maxIdle', 'banana'), /^maxIdle must be a duration such as 90d/),
      only('maxIdle without a unit', p('maxIdle', '90'), /^maxIdle must be a duration such as 90d/),
      only('maxIdle in exponent form', p('maxIdle', '1e3s'), /^maxIdle must be a duration such as 90d/),
      only('maxIdle two dots', p('maxIdle', '1.5.5d'), /^maxIdle must be a duration such as 90d/),
      only('maxIdle empty', p('maxIdle', ''), /^maxIdle must be a duration such as 90d, 12h or 2s \(got ""\)$/),
      only('soak above its 365d bound', p('soak', '366d'), /^soak must be between 1s and 365d \(got 366d\)$/),
      only('soak below 1s', p('soak', '500ms'), /^soak must be between 1s and 365d/),
      only('soak negative', p('soak', '-14d'), /^soak must be a duration/),
      // names
      only('exempt name with a space', p('exempt', 'ci-bot,not ok'), /^exempt "not ok" is not a valid name \(letters, digits and \+=,.@_- only\)$/),
      only('exempt name with a newline inside', p('exempt', 'ci\nbot'), /^exempt contains a control character \(U\+000A\) at position 3 of "ci\\nbot"; give it as one line of printable text$/),
      only('exempt name ending in a newline', p('exempt', 'ci-bot\n'), /^exempt contains a control character \(U\+000A\) at position 7/),
      only('exempt name with a control character', p('exempt', 'ci-bot\u0007'), /^exempt contains a control character \(U\+0007\)/),
      only('exempt name of 129 characters', p('exempt', long(129)), /^exempt "a{129}" is not a valid name/),
      only('exempt name with a slash', p('exempt', 'team/ci-bot'), /^exempt "team\/ci-bot" is not a valid name/),
      // parameters as such
      only('unknown parameter', p('maxidle', '9d'), /^unknown parameter "maxidle" for stale-iam-users; its parameters are: maxIdle, soak, exempt$/),
      only('parameter without a value', ['--param', 'maxIdle'], /^--param maxIdle: expected key=value, e\.g\. --param maxIdle=90d$/),
      only('parameter without a key', ['--param', '=90d'], /^--param =90d: expected key=value/),
      only('parameter given twice', [...p('soak', '1d'), ...p('soak', '2d')], /^--param soak is given twice/),
      only('parameters file not JSON', ['--params', '<paramsNotJson>'], /^--params .*params-not-json\.json: /),
      only('parameters file an array', ['--params', '<paramsArray>'], /^--params .*params-array\.json: must hold a JSON object of parameter names to values$/),
      only('parameters file with an object value', ['--params', '<paramsNested>'], /^--params .*params-nested\.json: maxIdle must be a string$/),
      only('parameters file missing', ['--params', '<missing>'], /^--params .*no-such-file\.json: ENOENT/),
      // the organization selector
      { name: 'accounts selector empty', args: ['--accounts', ''], reason: /^--accounts takes all, or comma-separated 12-digit account ids, OU ids \(ou-…\) and root ids \(r-…\)$/ },
      { name: 'accounts selector of 5 digits', args: ['--accounts', '12345'], reason: /^--accounts takes all, .*; "12345" is none of those$/ },
      { name: 'accounts selector a malformed OU', args: ['--accounts', 'ou-x'], reason: /^--accounts takes all, .*; "ou-x" is none of those$/ },
      { name: 'accounts selector a malformed root', args: ['--accounts', 'r-'], reason: /^--accounts takes all, .*; "r-" is none of those$/ },
      { name: 'accounts selector with a semicolon', args: ['--accounts', 'all;whoami'], reason: /^--accounts takes all, .*; "all;whoami" is none of those$/ },
      { name: 'accounts selector with --account', args: ['--accounts', 'all', '--account', '<member>'], reason: /^--accounts and --account do not go together/ },
      { name: 'accounts selector an account not in the organization', args: ['--accounts', STRANGER], reason: /^--accounts: account 999999999999 is not in organization o-\w+/ },
      { name: 'accounts selector an OU that does not exist', args: ['--accounts', 'ou-zzzz-zzzzzzzz'], reason: /^--accounts: ou-zzzz-zzzzzzzz is not an OU or root of organization o-\w+/ },
      { name: 'accounts selector a root that does not exist', args: ['--accounts', 'r-zzzz'], reason: /^--accounts: r-zzzz is not an OU or root of organization o-\w+/ },
      { name: 'accounts selector with an id twice', args: ['--accounts', `<member>,<member>`], reason: /^--accounts names \d{12} twice/ },
      { name: 'concurrency of 0', args: ['--accounts', 'all', '--concurrency', '0'], reason: /^--concurrency must be a whole number from 1 to 50$/ },
      { name: 'part size over 2000', args: ['--accounts', 'all', '--part-size', '5000'], reason: /^--part-size must be a whole number from 1 to 2000$/ },
      { name: 'requester with a newline', args: [...base, '--as', 'riley.operator\ndana.approver'], reason: /^--as must name who is acting in one line of printable text \(got "riley\.operator\\ndana\.approver"\)$/ },
      { name: 'requester empty', args: [...base, '--as', ' '], reason: /^--as must name who is acting$/ },
      { name: 'concurrency without --accounts', args: [...base, '--concurrency', '2'], reason: /^--concurrency goes with --accounts$/ },
    ];
  },

  'org-trail': () => {
    const bucket = p('bucket', 'countersign-bad-input-logs');
    const only = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...bucket, ...args], reason });
    const group = (a: string) => `arn:aws:logs:us-east-1:${a}:log-group:CloudTrail/bad-input:*`;
    const role = (a: string) => `arn:aws:iam::${a}:role/CloudTrailToLogs`;
    return [
      { name: 'bucket missing', args: [], reason: /^org-trail needs the parameter bucket \(.*\); pass --param bucket=BUCKET$/ },
      { name: 'bucket empty', args: p('bucket', ''), reason: /^bucket must be an S3 bucket name: 3–63 lowercase letters.* \(got ""\)$/ },
      { name: 'bucket with capitals and _', args: p('bucket', 'Bad_Bucket'), reason: /^bucket must be an S3 bucket name/ },
      { name: 'bucket of 2 characters', args: p('bucket', 'ab'), reason: /^bucket must be an S3 bucket name/ },
      { name: 'bucket of 64 characters', args: p('bucket', long(64)), reason: /^bucket must be an S3 bucket name/ },
      { name: 'bucket an IP address', args: p('bucket', '192.168.1.1'), reason: /^bucket must be an S3 bucket name/ },
      { name: 'bucket with two dots together', args: p('bucket', 'logs..bucket'), reason: /^bucket must be an S3 bucket name/ },
      { name: 'bucket with a newline', args: p('bucket', 'logs\nbucket'), reason: /^bucket contains a control character \(U\+000A\) at position 5 of "logs\\nbucket"/ },
      only('trailName of 1 character', p('trailName', 'a'), /^trailName must be a trail name: 3–128 letters/),
      only('trailName of 129 characters', p('trailName', long(129)), /^trailName must be a trail name/),
      only('trailName with a space', p('trailName', 'org trail'), /^trailName must be a trail name/),
      only('trailName with two special characters together', p('trailName', 'org--trail'), /^trailName must be a trail name/),
      only('trailName with a control character', p('trailName', 'org-trail\u001b'), /^trailName contains a control character \(U\+001B\)/),
      only('homeRegion unknown shape', p('homeRegion', 'mars'), /^homeRegion must be an AWS region such as us-east-1 \(got "mars"\)$/),
      only('homeRegion in capitals', p('homeRegion', 'US-EAST-1'), /^homeRegion must be an AWS region/),
      only('kmsKeyId not a key', p('kmsKeyId', 'my-key'), /^kmsKeyId must be a KMS key: alias\/NAME, a key id, or a key or alias ARN/),
      only('kmsKeyId an ARN of another service', p('kmsKeyId', `arn:aws:s3:::key`), /^kmsKeyId must be a KMS key/),
      only('kmsKeyId ARN of an unknown partition', p('kmsKeyId', 'arn:aws-mars:kms:us-east-1:<management>:key/1234abcd-12ab-34cd-56ef-1234567890ab'), /^kmsKeyId must be a KMS key/),
      only('log group ARN malformed', [...p('cloudWatchLogsGroupArn', 'log-group:CloudTrail'), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^cloudWatchLogsGroupArn must be a logs ARN of a log-group such as/),
      only('log group ARN of another service', [...p('cloudWatchLogsGroupArn', 'arn:aws:s3:::logs'), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^cloudWatchLogsGroupArn must be a logs ARN/),
      only('log group ARN of an unknown partition', [...p('cloudWatchLogsGroupArn', group('<management>').replace('arn:aws:', 'arn:aws-mars:')), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^cloudWatchLogsGroupArn must be a logs ARN/),
      only('log group ARN not of a log group', [...p('cloudWatchLogsGroupArn', `arn:aws:logs:us-east-1:<management>:destination:x`), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^cloudWatchLogsGroupArn must be a logs ARN of a log-group/),
      only('log group ARN of a 13-digit account', [...p('cloudWatchLogsGroupArn', group('1234567890123')), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^cloudWatchLogsGroupArn must be a logs ARN/),
      only('role ARN of a user', [...p('cloudWatchLogsGroupArn', group('<management>')), ...p('cloudWatchLogsRoleArn', `arn:aws:iam::<management>:user/bob`)], /^cloudWatchLogsRoleArn must be an iam ARN of a role/),
      only('role ARN of another service', [...p('cloudWatchLogsGroupArn', group('<management>')), ...p('cloudWatchLogsRoleArn', `arn:aws:sts::<management>:assumed-role/x/y`)], /^cloudWatchLogsRoleArn must be an iam ARN/),
      only('log group without its role', p('cloudWatchLogsGroupArn', group('<management>')), /^org-trail: cloudWatchLogsGroupArn and cloudWatchLogsRoleArn go together/),
      only('log group of another account', [...p('cloudWatchLogsGroupArn', group('<member>')), ...p('cloudWatchLogsRoleArn', role('<management>'))], /^org-trail: cloudWatchLogsGroupArn .* is in account \d{12}; the log group and the role must be in the management account/),
      only('unknown parameter', p('trail', 'x'), /^unknown parameter "trail" for org-trail; its parameters are: bucket, trailName/),
      only('parameter given twice', [...p('trailName', 'one'), ...p('trailName', 'two')], /^--param trailName is given twice/),
      { name: 'account not in the organization', args: [...bucket, '--account', STRANGER], reason: /^account 999999999999 is not in organization/ },
      { name: 'a member account for a management-only kind', args: [...bucket, '--account', '<member>'], reason: /^org-trail runs in the organization's management account \d{12}, not \d{12}/ },
      { name: 'organization-wide for a management-only kind', args: [...bucket, '--accounts', 'all'], reason: /^org-trail runs in the organization's management account only: drop --accounts/ },
    ];
  },

  'retire-default-trails': () => {
    const all = p('accounts', 'all');
    const only = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...all, ...args], reason });
    return [
      { name: 'accounts missing', args: [], reason: /^retire-default-trails needs the parameter accounts \(.*\); pass --param accounts=IDS$/ },
      { name: 'accounts empty', args: p('accounts', ''), reason: /^accounts needs at least one target: a 12-digit account id$/ },
      { name: 'accounts of 11 digits', args: p('accounts', '12345678901'), reason: /^accounts "12345678901" is not a valid target: expected a 12-digit account id, or "all"$/ },
      { name: 'accounts an OU id', args: p('accounts', '<sandboxOu>'), reason: /^accounts "ou-[\w-]+" is not a valid target: expected a 12-digit account id, or "all"$/ },
      { name: 'accounts "all" among ids', args: p('accounts', `all,<member>`), reason: /^accounts "all" is not a valid target/ },
      { name: 'accounts "ALL" in capitals', args: p('accounts', 'ALL'), reason: /^accounts "ALL" is not a valid target/ },
      { name: 'accounts twice', args: p('accounts', `<member>,<member>`), reason: /^accounts \d{12} is listed twice/ },
      { name: 'accounts not in the organization', args: p('accounts', `<member>,${STRANGER}`), reason: /^retire-default-trails: account 999999999999 is not in organization o-\w+/ },
      { name: 'accounts with a newline', args: p('accounts', `<member>\n<management>`), reason: /^accounts contains a control character \(U\+000A\)/ },
      only('soak zero', p('soak', '0d'), /^soak must be between 1s and 365d \(got 0d\)$/),
      only('soak absurd', p('soak', '99999999999d'), /^soak must be between 1s and 365d/),
      only('soak unparseable', p('soak', 'a week'), /^soak must be a duration such as 90d/),
      only('soak negative', p('soak', '-7d'), /^soak must be a duration/),
      only('keep name with a space', p('keep', 'audit copy'), /^keep "audit copy" is not a valid name/),
      only('keep name with a control character', p('keep', 'audit-copy\r'), /^keep contains a control character \(U\+000D\)/),
      only('unknown parameter', p('accountIds', 'all'), /^unknown parameter "accountIds" for retire-default-trails/),
      only('parameter given twice', [...p('keep', 'a'), ...p('keep', 'b')], /^--param keep is given twice/),
      { name: 'a member account for a management-only kind', args: [...all, '--account', '<member>'], reason: /^retire-default-trails runs in the organization's management account/ },
      { name: 'organization-wide for a management-only kind', args: [...all, '--accounts', '<workloadsOu>'], reason: /^retire-default-trails runs in the organization's management account only: drop --accounts/ },
    ];
  },

  'permission-boundary': () => {
    const base = ['--account', '<member>', ...p('roles', '*')];
    const builtin = p('boundary', 'builtin:countersign-workload-boundary');
    const only = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...base, ...builtin, ...args], reason });
    const withRoles = (name: string, args: string[], reason: RegExp): Case => ({ name, args: ['--account', '<member>', ...builtin, ...args], reason });
    const boundary = (name: string, value: string, reason: RegExp): Case => ({ name, args: [...base, ...p('boundary', value)], reason });
    return [
      { name: 'boundary missing', args: base, reason: /^permission-boundary needs the parameter boundary \(.*\); pass --param boundary=ARN\|NAME$/ },
      boundary('boundary empty', '', /^boundary must be a managed policy ARN .* or builtin:countersign-workload-boundary \(got ""\)$/),
      boundary('boundary not an ARN', 'AdministratorAccess', /^boundary must be a managed policy ARN/),
      boundary('boundary ARN of a role', `arn:aws:iam::<member>:role/payments-api`, /^boundary must be a managed policy ARN/),
      boundary('boundary ARN of another service', 'arn:aws:s3:::boundary', /^boundary must be a managed policy ARN/),
      boundary('boundary ARN of an unknown partition', `arn:aws-mars:iam::<member>:policy/x`, /^boundary must be a managed policy ARN/),
      boundary('boundary ARN of a 13-digit account', 'arn:aws:iam::1234567890123:policy/x', /^boundary must be a managed policy ARN/),
      boundary('boundary an unknown built-in', 'builtin:admin', /^boundary must be a managed policy ARN/),
      boundary('boundary of another account', `arn:aws:iam::${STRANGER}:policy/boundary`, /^permission-boundary: arn:aws:iam::999999999999:policy\/boundary is a policy of account 999999999999; a boundary must be an AWS managed policy or a policy of account \d{12}/),
      { name: 'neither users nor roles', args: ['--account', '<member>', ...builtin], reason: /^permission-boundary: select principals: users=… and\/or roles=…/ },
      only('users with a space', p('users', 'bad name'), /^users "bad name" is not "\*", a name, or a path prefix such as \/teams\/data\/$/),
      only('users a path without its last slash', p('users', '/teams/data'), /^users "\/teams\/data" is not "\*", a name, or a path prefix/),
      withRoles('roles with a newline', p('roles', 'app\nrole'), /^roles contains a control character \(U\+000A\)/),
      withRoles('roles with a control character', p('roles', 'app-role\t'), /^roles contains a control character \(U\+0009\)/),
      only('batch zero', p('batch', '0'), /^batch must be a whole number from 1 to 500 \(got "0"\)$/),
      only('batch negative', p('batch', '-5'), /^batch must be a whole number from 1 to 500/),
      only('batch a fraction', p('batch', '2.5'), /^batch must be a whole number from 1 to 500/),
      only('batch absurd', p('batch', '99999999999'), /^batch must be a whole number from 1 to 500/),
      only('batch empty', p('batch', ''), /^batch must be a whole number from 1 to 500 \(got ""\)$/),
      only('soak above its 90d bound', p('soak', '91d'), /^soak must be between 1s and 90d \(got 91d\)$/),
      only('soak zero', p('soak', '0s'), /^soak must be between 1s and 90d/),
      only('unknown parameter', p('wave', '5'), /^unknown parameter "wave" for permission-boundary/),
      only('parameter given twice', [...p('batch', '1'), ...p('batch', '2')], /^--param batch is given twice/),
      { name: 'account not in the organization', args: ['--account', STRANGER, ...builtin, ...p('roles', '*')], reason: /^account 999999999999 is not in organization/ },
    ];
  },

  scp: () => {
    const guardrail = p('guardrail', 'protect-cloudtrail');
    const targets = p('targets', '<sandboxOu>');
    const only = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...guardrail, ...targets, ...args], reason });
    const withGuardrail = (name: string, args: string[], reason: RegExp): Case => ({ name, args: [...targets, ...args], reason });
    const file = (name: string, which: keyof typeof files, reason: RegExp): Case => ({ name, args: [...targets, ...p('name', 'bad-input'), '--param', `policyFile=<${which}>`], reason });
    return [
      { name: 'targets missing', args: guardrail, reason: /^scp needs the parameter targets \(.*\); pass --param targets=IDS$/ },
      { name: 'targets empty', args: [...guardrail, ...p('targets', '')], reason: /^targets needs at least one target: an OU id \(ou-…\) or a 12-digit account id or the root id \(r-…\)$/ },
      { name: 'targets a malformed OU', args: [...guardrail, ...p('targets', 'ou-x')], reason: /^targets "ou-x" is not a valid target: expected an OU id/ },
      { name: 'targets an OU in capitals', args: [...guardrail, ...p('targets', 'OU-ABCD-ABCDEFGH')], reason: /^targets "OU-ABCD-ABCDEFGH" is not a valid target/ },
      { name: 'targets a malformed root', args: [...guardrail, ...p('targets', 'r-')], reason: /^targets "r-" is not a valid target/ },
      { name: 'targets of 13 digits', args: [...guardrail, ...p('targets', '1234567890123')], reason: /^targets "1234567890123" is not a valid target/ },
      { name: 'targets "all"', args: [...guardrail, ...p('targets', 'all')], reason: /^targets "all" is not a valid target: expected an OU id/ },
      { name: 'targets twice', args: [...guardrail, ...p('targets', `<sandboxOu>,<sandboxOu>`)], reason: /^targets ou-[\w-]+ is listed twice; each target appears once, in rollout order$/ },
      { name: 'targets an OU that does not exist', args: [...guardrail, ...p('targets', 'ou-zzzz-zzzzzzzz')], reason: /^scp: .*ou-zzzz-zzzzzzzz/ },
      { name: 'targets a root that does not exist', args: [...guardrail, ...p('targets', 'r-zzzz'), ...p('allowRoot', 'true')], reason: /^scp: .*r-zzzz/ },
      { name: 'targets an account not in the organization', args: [...guardrail, ...p('targets', STRANGER)], reason: /^scp: .*999999999999/ },
      { name: 'targets the root without allowRoot', args: [...guardrail, ...p('targets', '<rootId>')], reason: /^scp: .*allowRoot/ },
      withGuardrail('guardrail not in the list', p('guardrail', 'deny-everything'), /^guardrail must be one of protect-cloudtrail, deny-leave-organization, .* \(got "deny-everything"\)$/),
      withGuardrail('guardrail in capitals', p('guardrail', 'Protect-CloudTrail'), /^guardrail must be one of/),
      withGuardrail('guardrail empty', p('guardrail', ''), /^guardrail must be one of .* \(got ""\)$/),
      { name: 'neither guardrail nor policyFile', args: targets, reason: /^scp: give guardrail=<built-in> or policyFile=<file>: the policy to attach$/ },
      { name: 'guardrail and policyFile both', args: [...only('', [], /x/).args, '--param', 'policyFile=<goodScp>', ...p('name', 'both')], reason: /^scp: give guardrail or policyFile, not both/ },
      { name: 'policyFile without name', args: [...targets, '--param', 'policyFile=<goodScp>'], reason: /^scp: .*name/ },
      file('policyFile not JSON', 'notJson', /^policyFile is not valid JSON: /),
      file('policyFile an array', 'array', /^policyFile must hold a JSON object$/),
      file('policyFile not a policy', 'notPolicy', /^policyFile is not a valid SCP: the document has "hello"; an SCP has only Version and Statement$/),
      file('policyFile with a Principal', 'principalScp', /^policyFile is not a valid SCP: Statement\[0\] has a Principal/),
      file('policyFile too large', 'tooLarge', /^policyFile is \d+ characters minified, over the limit of 5120$/),
      file('policyFile empty', 'empty', /^policyFile is not valid JSON: /),
      file('policyFile missing', 'missing', /^--param policyFile=.*no-such-file\.json: cannot read the file \(ENOENT/),
      file('policyFile a directory', 'directory', /^--param policyFile=.*a-directory: cannot read the file \(EISDIR/),
      only('name with a space', p('name', 'my policy'), /^name must be a policy name: 1–128 letters, digits and \+=,.@_- \(got "my policy"\)$/),
      only('name of 129 characters', p('name', long(129)), /^name must be a policy name/),
      only('name with a newline', p('name', 'a\nb'), /^name contains a control character \(U\+000A\) at position 2 of "a\\nb"/),
      only('soak above its 90d bound', p('soak', '91d'), /^soak must be between 1s and 90d/),
      only('soak negative', p('soak', '-1d'), /^soak must be a duration/),
      only('exemptPrincipals not an ARN', p('exemptPrincipals', 'break-glass'), /^exemptPrincipals "break-glass" is not an IAM principal ARN pattern such as arn:aws:iam::\*:role\/break-glass\*$/),
      only('exemptPrincipals of another service', p('exemptPrincipals', 'arn:aws:s3:::bucket'), /^exemptPrincipals .* is not an IAM principal ARN pattern/),
      only('exemptPrincipals of an unknown partition', p('exemptPrincipals', 'arn:aws-mars:iam::*:role/x'), /^exemptPrincipals .* is not an IAM principal ARN pattern/),
      only('exemptPrincipals of a policy', p('exemptPrincipals', 'arn:aws:iam::*:policy/x'), /^exemptPrincipals .* is not an IAM principal ARN pattern/),
      only('allowRoot not a boolean', p('allowRoot', 'yes'), /^allowRoot must be true or false \(got "yes"\)$/),
      only('unknown parameter', p('target', 'r-abcd'), /^unknown parameter "target" for scp/),
      only('parameter given twice', [...p('soak', '1d'), ...p('soak', '2d')], /^--param soak is given twice/),
      { name: 'a member account for a management-only kind', args: [...guardrail, ...targets, '--account', '<member>'], reason: /^scp runs in the organization's management account/ },
    ];
  },
};

/** Placeholders the tables use for what exists only once the sandbox is seeded. */
function resolveArgs(args: string[]): string[] {
  const values: Record<string, string> = { member, management, sandboxOu, workloadsOu, rootId: org.rootId, ...files };
  return args.map((a) => a.replace(/<(\w+)>/g, (whole, key: string) => values[key] ?? whole));
}

interface Row {
  kind: KindName;
  name: string;
  result: CliResult;
  suffix: string;
  reason: RegExp;
}

async function inParallel<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T);
      }
    }),
  );
  return results;
}

const summary = new Map<string, { cases: number; refused: number; unchanged: boolean | undefined }>();

afterAll(async () => {
  if (summary.size > 0) {
    const rows = [...summary].map(([kind, s]) => [kind, String(s.cases), String(s.refused), s.unchanged === undefined ? '?' : s.unchanged ? 'yes' : 'NO']);
    const header = ['kind', 'cases', 'refused', 'state unchanged'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
    process.stdout.write(`\nbad input, refused per kind\n${[line(header), ...rows.map(line)].join('\n')}\n`);
  }
  await stack?.stop();
});

const CLI_KINDS = Object.keys(TABLES) as KindName[];

describe.each(CLI_KINDS)('%s: bad input through `countersign start`', (kind) => {
  const rows = new Map<string, Row>();
  let before: Record<string, unknown>;
  let after: Record<string, unknown>;
  let started: string[];

  beforeAll(async () => {
    const cases = TABLES[kind]();
    before = await snapshot();
    const results = await inParallel(cases, PARALLEL, async (c) => {
      const suffix = stack.uniqueSuffix();
      // The requester first, so a case can give --as of its own (the last one counts).
      const result = await runCli(['start', kind, '--as', REQUESTER, ...resolveArgs(c.args), '--id-suffix', suffix, '--no-wait'], stack.env);
      return { kind, name: c.name, result, suffix, reason: c.reason };
    });
    for (const r of results) rows.set(r.name, r);
    started = await workflowsOnQueue();
    after = await snapshot();
    summary.set(kind, { cases: cases.length, refused: 0, unchanged: JSON.stringify(after) === JSON.stringify(before) });
  });

  // Placeholders (<member>, <sandboxOu>, …) stand for the ids the sandbox gets when it is seeded.
  const names = TABLES[kind]().map((c) => c.name);
  it.each(names)('refuses %s: exit 2, one line naming the parameter, nothing started', (name) => {
    const row = rows.get(name) as Row;
    const lines = ownStderr(row.result.stderr);
    const detail = `${name}: exit ${row.result.code}\nstderr: ${JSON.stringify(row.result.stderr)}\nstdout: ${JSON.stringify(row.result.stdout)}`;
    expect({ detail, code: row.result.code }).toEqual({ detail, code: 2 });
    expect({ detail, lines: lines.length }).toEqual({ detail, lines: 1 });
    expect(lines[0]).toMatch(/^countersign: /);
    expect((lines[0] as string).replace(/^countersign: /, '')).toMatch(row.reason);
    expect(row.result.stdout).toBe('');
    expect(started.filter((id) => id.includes(row.suffix))).toEqual([]);
    (summary.get(kind) as { refused: number }).refused += 1;
  });

  it('leaves AWS as it was: IAM, Organizations, CloudTrail and S3 in every account', () => {
    expect(after).toEqual(before);
    // The snapshot holds the seeded estate, so a change would show.
    const accounts = [management, ...org.accounts.map((a) => a.id)].map((a) => before[a] as Record<string, unknown[]>);
    const held = Object.fromEntries(['users', 'roles', 'policies', 'trails', 'buckets'].map((list) => [list, accounts.some((a) => (a[list]?.length ?? 0) > 0)]));
    expect(held).toEqual({ users: true, roles: true, policies: true, trails: true, buckets: true });
    expect((before.organization as { scps: unknown[] }).scps.length).toBeGreaterThan(1);
  });
});

// --- past the CLI: the workflow itself refuses ------------------------------------------------------

describe('bad parameters sent to the workflow directly (no CLI)', () => {
  const DIRECT: { kind: KindName; params: () => Record<string, string>; account: () => string; reason: RegExp }[] = [
    { kind: 'stale-iam-users', account: () => member, params: () => ({ maxIdle: '99999999999d' }), reason: /invalid parameter for stale-iam-users: maxIdle must be between 1s and 3650d/ },
    { kind: 'stale-iam-users', account: () => member, params: () => ({ exempt: 'ci-bot\n' }), reason: /invalid parameter for stale-iam-users: exempt contains a control character \(U\+000A\)/ },
    { kind: 'org-trail', account: () => management, params: () => ({ bucket: 'Bad_Bucket' }), reason: /invalid parameter for org-trail: bucket must be an S3 bucket name/ },
    { kind: 'retire-default-trails', account: () => management, params: () => ({ accounts: '12345' }), reason: /invalid parameter for retire-default-trails: accounts "12345" is not a valid target/ },
    { kind: 'permission-boundary', account: () => member, params: () => ({ boundary: 'arn:aws:s3:::boundary', roles: '*' }), reason: /invalid parameter for permission-boundary: boundary must be a managed policy ARN/ },
    { kind: 'scp', account: () => management, params: () => ({ guardrail: 'protect-cloudtrail', targets: 'ou-x' }), reason: /invalid parameter for scp: targets "ou-x" is not a valid target/ },
  ];

  it('each run ends failed naming the parameter, and AWS is unchanged', async () => {
    const before = await snapshot();
    const runs = await Promise.all(
      DIRECT.map(async (d) => {
        const workflowId = `${d.kind}/${d.account()}/direct-${stack.uniqueSuffix()}`;
        const input: RemediationInput = { kind: d.kind, account: d.account(), params: d.params(), requestedBy: REQUESTER };
        await stack.client.workflow.start(KINDS[d.kind].workflowType, { taskQueue: stack.taskQueue, workflowId, args: [input] });
        const final = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 60_000 });
        return { ...d, workflowId, final };
      }),
    );
    const after = await snapshot();
    const refused = runs.filter((r) => r.final.outcome === 'failed' && r.reason.test(r.final.outcomeReason ?? '')).length;
    summary.set('(workflow, no CLI)', { cases: runs.length, refused, unchanged: JSON.stringify(after) === JSON.stringify(before) });
    for (const run of runs) {
      expect({ kind: run.kind, outcome: run.final.outcome, changes: run.final.plan?.changes.length ?? 0, results: run.final.results.length }).toEqual({ kind: run.kind, outcome: 'failed', changes: 0, results: 0 });
      expect(run.final.outcomeReason).toMatch(run.reason);
      expect(run.final.outcomeReason).not.toMatch(/\n/);
    }
    expect(after).toEqual(before);

    // The task queue holds exactly these runs: none of the CLI cases above started one.
    const direct = runs.map((r) => r.workflowId).sort();
    let listed: string[] = [];
    for (let i = 0; i < 20 && !direct.every((id) => listed.includes(id)); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      listed = await workflowsOnQueue();
    }
    expect(listed.sort()).toEqual(direct);
  });
});
