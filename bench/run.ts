/**
 * Benchmarks that print figures (never assertions): `npm run bench` (add `-- --quick` for a short run).
 *  1. credential report: parse + staleness for synthetic accounts of 1k / 10k / 50k users;
 *  2. plan digest: canonical JSON + SHA-256 of a maxChanges-sized plan;
 *  3. end to end on the embedded stack: plan latency, approval → completed, history size per user.
 */
import { historySize } from './history-size';
import { IAMClient, CreateAccessKeyCommand, CreateUserCommand } from '@aws-sdk/client-iam';
import { assessStaleness, parseCredentialReport } from '../activities/iam/credential-report';
import { planDigest } from '../common/digest';
import type { PlanBody } from '../common/plan';
import { RemediationClient } from '../cli/remediation-client';
import { startStack } from '../sandbox/stack';
import { createPino } from '../worker/logger';

const HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

function syntheticReport(users: number): string {
  const lines = [HEADER, '<root_account>,arn:aws:iam::123456789012:root,2019-03-14T10:00:00+00:00,not_supported,2024-05-01T09:12:44+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A'];
  for (let i = 0; i < users; i++) {
    const used = i % 3 === 0 ? '2026-11-01T10:00:00+00:00' : i % 3 === 1 ? '2025-01-01T10:00:00+00:00' : 'N/A';
    lines.push(
      `user-${i},arn:aws:iam::123456789012:user/team-${i % 50}/user-${i},2023-01-01T00:00:00+00:00,${i % 2 === 0},no_information,2023-01-01T00:00:00+00:00,N/A,false,true,2023-01-01T00:00:00+00:00,${used},us-east-1,s3,${i % 4 === 0},2023-06-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A`,
    );
  }
  return lines.join('\n');
}

function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

function benchCredentialReport(sizes: number[]): void {
  console.log('credential report: parse + assess staleness (maxIdle 90d)');
  const now = new Date('2026-11-22T00:00:00Z');
  for (const users of sizes) {
    const csv = syntheticReport(users);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const start = process.hrtime.bigint();
    const rows = parseCredentialReport(csv);
    let stale = 0;
    for (const row of rows) if (!row.isRoot && assessStaleness(row, { now, maxIdleMs: 90 * 86_400_000 }).verdict === 'stale') stale++;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const heap = process.memoryUsage().heapUsed - heapBefore;
    console.log(
      `  ${String(users).padStart(6)} users  ${mb(csv.length).padStart(9)} CSV  ${ms.toFixed(1).padStart(8)} ms  ${Math.round(users / (ms / 1000)).toLocaleString('en').padStart(10)} users/s  heap +${mb(heap)}  (${stale} stale)`,
    );
  }
}

function benchDigest(changes: number, iterations: number): void {
  const body: PlanBody = {
    kind: 'stale-iam-users',
    account: '123456789012',
    region: 'us-east-1',
    params: { maxIdle: '90d', soak: '14d', exempt: '' },
    createdAt: new Date(0).toISOString(),
    stages: [{ name: 'disable', description: 'x' }, { name: 'delete', description: 'y', soakBefore: '14d' }],
    changes: Array.from({ length: changes }, (_, i) => ({
      id: `disable-user/user-${i}`,
      stage: 'disable',
      action: 'disable-user',
      resource: `arn:aws:iam::123456789012:user/user-${i}`,
      summary: `disable user-${i}: deactivate 2 access key(s), delete the console password`,
      before: { userName: `user-${i}`, userId: `AIDA${i}`, accessKeys: [{ id: `AKIA${i}A`, status: 'Active', lastUsed: null }, { id: `AKIA${i}B`, status: 'Active', lastUsed: '2025-01-01T00:00:00.000Z' }], loginProfile: true, passwordLastUsed: null },
      after: { userName: `user-${i}`, userId: `AIDA${i}`, accessKeys: [{ id: `AKIA${i}A`, status: 'Inactive', lastUsed: null }, { id: `AKIA${i}B`, status: 'Inactive', lastUsed: '2025-01-01T00:00:00.000Z' }], loginProfile: false, passwordLastUsed: null },
      reversible: true,
      destructive: true,
    })),
    leftAlone: Array.from({ length: 500 }, (_, i) => ({ resource: `arn:aws:iam::123456789012:user/active-${i}`, reason: 'active', detail: 'access_key_1 last active 2026-11-01T10:00:00.000Z' })),
    leftAloneNotListed: 0,
    notes: [],
  };
  const json = JSON.stringify(body);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) planDigest(body);
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / iterations;
  console.log(`plan digest: ${changes} changes + 500 left alone (${(json.length / 1024).toFixed(0)} KiB JSON): ${ms.toFixed(2)} ms per digest`);
}

async function benchEndToEnd(users: number): Promise<void> {
  console.log(`end to end on the embedded stack (Temporal dev server + moto + in-process worker), ${users} idle users:`);
  const stack = await startStack({ logger: createPino('warn'), say: () => undefined });
  const iam = new IAMClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1 });
  try {
    for (let i = 0; i < users; i++) {
      await iam.send(new CreateUserCommand({ UserName: `bench-${i}` }));
      await iam.send(new CreateAccessKeyCommand({ UserName: `bench-${i}` }));
    }
    await new Promise((r) => setTimeout(r, 2_100));
    const client = new RemediationClient(stack.client, stack.taskQueue);
    const t0 = Date.now();
    const { workflowId } = await client.start({ kind: 'stale-iam-users', account: '123456789012', params: { maxIdle: '2s', soak: '1s' }, requestedBy: 'bench' });
    const awaiting = await client.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 300_000 });
    const planMs = Date.now() - t0;
    const t1 = Date.now();
    await client.decide(workflowId, { decision: 'approve', approver: 'dana.approver', planDigest: awaiting.plan!.digest });
    const done = await client.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 600_000 });
    const applyMs = Date.now() - t1;
    const size = await historySize(stack.client, workflowId);
    console.log(`  start → plan awaiting approval: ${planMs} ms (${(planMs / users).toFixed(0)} ms per user planned)`);
    console.log(`  approval → ${done.outcome}: ${applyMs} ms including a 1 s soak (${((applyMs - 1000) / users).toFixed(0)} ms per user for snapshot, disable, snapshot, delete, verify)`);
    console.log(`  history: ${size.events} events, ${(size.bytes / 1024).toFixed(0)} KiB (${(size.bytes / users / 1024).toFixed(1)} KiB and ${(size.events / users).toFixed(1)} events per user)`);
    console.log(`  worker RSS after the run: ${mb(process.memoryUsage().rss)}`);
  } finally {
    iam.destroy();
    await stack.stop();
  }
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as in the CLI: the pinned SDK supports Node 20
  const quick = process.argv.includes('--quick');
  benchCredentialReport(quick ? [1_000, 10_000] : [1_000, 10_000, 50_000]);
  benchDigest(200, quick ? 20 : 100);
  await benchEndToEnd(quick ? 10 : 40);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
