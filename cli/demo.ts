/**
 * `countersign demo` and `countersign dev`: the embedded default. The demo seeds an estate in the
 * AWS sandbox and runs stale-iam-users end to end, saying what happens at each step.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { isAwsError } from '../activities/aws/errors';
import { formatDuration } from '../common/duration';
import type { RemediationStatus } from '../common/messages';
import { buildEvidence } from '../evidence/record';
import { seedEstate, useKeys } from '../sandbox/seed';
import { startStack } from '../sandbox/stack';
import type { Stack } from '../sandbox/stack';
import { createPino } from '../worker/logger';
import type { Output } from './output';
import { RemediationClient } from './remediation-client';
import { renderPlan } from './render';

const REQUESTER = 'riley.operator';
const APPROVER = 'dana.approver';
const OUTSIDER = 'mallory.contractor';
const MAX_IDLE = '2s';
const SOAK = '3s';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function printEnv(stack: Stack, out: Output): void {
  out.note('Use this stack from another shell:');
  for (const [k, v] of Object.entries(stack.env)) out.note(`  export ${k}=${v}`);
  if (stack.temporal.uiUrl) out.note(`Temporal Web UI: ${stack.temporal.uiUrl}`);
}

async function userExists(iam: IAMClient, userName: string): Promise<boolean> {
  try {
    await iam.send(new GetUserCommand({ UserName: userName }));
    return true;
  } catch (err) {
    if (isAwsError(err, 'NoSuchEntityException')) return false;
    throw err;
  }
}

export async function runDemo(options: { keep: boolean }, out: Output): Promise<number> {
  const say = (line: string) => out.note(line);
  say('Countersign demo: a Temporal dev server, an AWS sandbox (moto), a worker, a seeded estate, and');
  say('the stale-iam-users remediation end to end. Every step is a Temporal workflow event.');
  const stack = await startStack({ ui: options.keep, say, logger: createPino(process.env.COUNTERSIGN_LOG_LEVEL ?? 'warn') });
  const iam = new IAMClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1 });
  try {
    say('\n1. Seeding the AWS sandbox with an estate');
    const estate = await seedEstate(iam);
    say(`   idle users (console password, 2 access keys, virtual MFA, inline + managed policy, group): ${estate.idle.join(', ')}`);
    say(`   idle user holding an SSH key: ${estate.sshKeyHolder}; users with keys in use: ${estate.active.join(', ')}`);
    say(`   exempt (tagged countersign:exempt): ${estate.exempt}; protected: ${estate.breakGlass}`);
    say(`\n2. Waiting ${MAX_IDLE} plus a second so the seeded credentials are idle past maxIdle=${MAX_IDLE}, then using the active keys`);
    await sleep(3_000);
    await useKeys(estate, stack.moto.endpoint);

    const client = new RemediationClient(stack.client, stack.taskQueue);
    say(`\n3. ${REQUESTER} starts: countersign start stale-iam-users --param maxIdle=${MAX_IDLE} --param soak=${SOAK}`);
    const { workflowId } = await client.start({
      kind: 'stale-iam-users',
      account: '123456789012',
      params: { maxIdle: MAX_IDLE, soak: SOAK },
      requestedBy: REQUESTER,
    });
    say(`   workflow ${workflowId}`);
    const awaiting = await client.waitFor(workflowId, (s) => s.phase === 'awaiting-approval', { timeoutMs: 120_000 });
    const plan = awaiting.plan;
    if (!plan) throw new Error('the run has no plan');
    for (const line of renderPlan(plan)) say(`   ${line}`);

    say('\n4. Decisions on the plan');
    for (const [who, why] of [
      [REQUESTER, 'the requester approves their own run'],
      [OUTSIDER, 'someone outside the approval policy approves'],
    ] as const) {
      const reply = await client.decide(workflowId, { decision: 'approve', approver: who, planDigest: plan.digest });
      say(`   ${why}: ${reply.accepted ? 'ACCEPTED (unexpected)' : `refused — ${reply.refusal.message}`}`);
      if (reply.accepted) throw new Error('a decision that must be refused was accepted');
    }
    const approval = await client.decide(workflowId, { decision: 'approve', approver: APPROVER, planDigest: plan.digest, comment: 'reviewed: all three are leavers' });
    if (!approval.accepted) throw new Error(`the demo approval was refused: ${approval.refusal.message}`);
    say(`   ${APPROVER} approves plan ${plan.digest.slice(0, 12)}…: accepted`);

    say('\n5. Applying (disable → soak → re-check → delete → verify)');
    const seen = new Set<string>();
    const final: RemediationStatus = await client.waitFor(workflowId, (s) => s.phase === 'done', {
      timeoutMs: 300_000,
      heartbeatMs: 1_000,
      onChange: (s, prev) => {
        for (const r of s.results) {
          const key = `${r.changeId}:${r.status}`;
          if (!seen.has(key)) {
            seen.add(key);
            say(`     ${r.status.padEnd(12)} ${r.changeId}${r.detail ? ` — ${r.detail}` : ''}`);
          }
        }
        if (!prev || prev.phase !== s.phase || prev.stage !== s.stage) {
          say(`   phase ${s.phase}${s.stage ? ` (stage ${s.stage})` : ''}${s.soakUntil ? `, soaking until ${s.soakUntil}` : ''}`);
        } else if (s.soakUntil) {
          say(`   … soaking, ${formatDuration(Date.parse(s.soakUntil) - Date.now())} left`);
        }
      },
    });
    say(`\n6. Outcome: ${final.outcome}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`);
    for (const c of final.verification?.checks ?? []) say(`   verify ${c.ok ? 'ok' : 'FAILED'} ${c.changeId}: ${c.detail}`);

    const gone = await Promise.all(estate.idle.map(async (u) => !(await userExists(iam, u))));
    const kept = [estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass];
    const stillThere = await Promise.all(kept.map((u) => userExists(iam, u)));
    say(`   in AWS: removed ${estate.idle.filter((_, i) => gone[i]).join(', ') || 'none'}; untouched ${kept.filter((_, i) => stillThere[i]).join(', ')}`);

    const handle = stack.client.workflow.getHandle(workflowId);
    const record = buildEvidence(await handle.fetchHistory(), { namespace: stack.namespace, workflowId, runId: (await handle.describe()).runId });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-demo-'));
    const evidencePath = path.join(dir, 'evidence.json');
    writeFileSync(evidencePath, `${JSON.stringify(record, null, 2)}\n`);
    say(`\n7. Evidence from the workflow history (${record.workflow.historyEvents} events): approved by ${record.approvedBy.join(', ')}, plan digest ${record.plan?.digestVerified ? 'verified' : 'NOT verified'}, ${record.refused.length} refusals, ${record.results.filter((r) => r.snapshot !== undefined).length} snapshots`);
    say(`   written to ${evidencePath}  (same as: countersign evidence ${workflowId} --format json)`);

    const ok = final.outcome === 'completed' && gone.every(Boolean) && stillThere.every(Boolean);
    out.result({ workflowId, outcome: final.outcome, removed: estate.idle, evidence: evidencePath, ok });
    if (options.keep) {
      say('\nThe stack keeps running (Ctrl-C to stop).');
      printEnv(stack, out);
      say(`Browse the history: ${stack.temporal.uiUrl}/namespaces/${stack.namespace}/workflows/${encodeURIComponent(workflowId)}`);
      await untilSignal();
    }
    say(ok ? '\nDemo finished: the plan was approved, applied, verified, and recorded.' : '\nDemo FAILED: see above.');
    return ok ? 0 : 1;
  } finally {
    iam.destroy();
    await stack.stop();
  }
}

export async function runDev(options: { seed: boolean }, out: Output): Promise<number> {
  const stack = await startStack({ ui: true, say: (l) => out.note(l) });
  try {
    if (options.seed) {
      const iam = new IAMClient({ region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1 });
      const estate = await seedEstate(iam);
      iam.destroy();
      out.note(`seeded: ${[...estate.idle, estate.sshKeyHolder, ...estate.active, estate.exempt, estate.breakGlass].join(', ')}`);
    }
    printEnv(stack, out);
    out.result({ env: stack.env, ui: stack.temporal.uiUrl });
    out.note('Running until Ctrl-C.');
    await untilSignal();
    return 0;
  } finally {
    await stack.stop();
  }
}
