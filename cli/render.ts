/** Human renderings of plans and run status for the terminal. */
import type { RemediationStatus } from '../common/messages';
import type { Json } from '../common/json';
import type { Plan } from '../common/plan';
import { formatDuration } from '../common/duration';

function quote(arg: string): string {
  return /^[\w./:@=,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A typed parameter as the operator would write it; a document is summarised (it is in full in the plan's changes and JSON). */
function paramText(value: Json): string {
  if (Array.isArray(value)) return value.length ? value.map((v) => String(v)).join(',') : '""';
  if (value !== null && typeof value === 'object') return `<JSON document, ${JSON.stringify(value).length} characters>`;
  if (value === '' || value === null) return '""';
  return String(value);
}

export function renderPlan(plan: Plan): string[] {
  const lines: string[] = [];
  lines.push(`Plan ${plan.digest}`);
  lines.push(`  ${plan.kind} in account ${plan.account} (${plan.region}), created ${plan.createdAt}`);
  lines.push(`  parameters: ${Object.entries(plan.params).map(([k, v]) => `${k}=${paramText(v)}`).join(' ')}`);
  for (const stage of plan.stages) {
    const changes = plan.changes.filter((c) => c.stage === stage.name);
    lines.push(`  stage ${stage.name}${stage.soakBefore ? ` (after a ${stage.soakBefore} soak)` : ''}: ${stage.description}`);
    for (const c of changes) lines.push(`    - ${c.summary}${c.reversible ? '' : '  [irreversible]'}`);
    if (changes.length === 0 && !plan.changesNotListed) lines.push('    (nothing)');
  }
  if (plan.changesNotListed) lines.push(`  … and ${plan.changesNotListed} more changes not listed here (\`countersign status <id> --all\` lists every one)`);
  if (plan.pageDigests) lines.push(`  the plan came in ${plan.pageDigests.length} pages; the digest above covers every change of every page`);
  if (plan.leftAlone.length > 0) {
    lines.push(`  left alone (${plan.leftAlone.length + plan.leftAloneNotListed}):`);
    for (const l of plan.leftAlone) lines.push(`    - ${l.resource}: ${l.reason}${l.detail ? ` — ${l.detail}` : ''}${l.review ? '  [needs review]' : ''}`);
    if (plan.leftAloneNotListed > 0) lines.push(`    … and ${plan.leftAloneNotListed} more not listed`);
  }
  for (const note of plan.notes) lines.push(`  note: ${note}`);
  return lines;
}

export function approveHint(status: RemediationStatus): string[] {
  if (!status.plan || status.phase !== 'awaiting-approval') return [];
  const approvers = status.policy?.approvers.filter((a) => a !== status.requestedBy) ?? [];
  const who = approvers[0] ?? 'APPROVER';
  return [
    `Awaiting ${status.policy?.quorum ?? 1} approval(s) from: ${approvers.join(', ') || '(no approvers in the policy)'} until ${status.expiresAt ?? '?'}`,
    `  approve: countersign approve ${quote(status.workflowId)} --as ${quote(who)} --plan ${status.plan.digest}`,
    `  reject:  countersign reject ${quote(status.workflowId)} --as ${quote(who)} --comment 'why'`,
  ];
}

export function renderStatus(status: RemediationStatus, now = Date.now()): string[] {
  const lines: string[] = [];
  lines.push(`${status.workflowId}  ${status.kind}  phase ${status.phase}${status.outcome ? `  outcome ${status.outcome}` : ''}`);
  lines.push(`  requested by ${status.requestedBy} at ${status.startedAt}${status.dryRun ? ' (dry run)' : ''}`);
  if (status.outcomeReason) lines.push(`  ${status.outcomeReason}`);
  if (status.policy) {
    lines.push(`  policy ${status.policy.source}: quorum ${status.policy.quorum} of ${status.policy.approvers.join(', ') || '(none)'}`);
  }
  if (status.plan) lines.push(...renderPlan(status.plan).map((l) => `  ${l}`));
  for (const d of status.decisions) {
    lines.push(`  ${d.decision === 'approve' ? 'approved' : 'rejected'} by ${d.approver} at ${d.at}${d.comment ? ` — ${d.comment}` : ''}`);
  }
  for (const r of status.refused) {
    lines.push(`  refused ${r.decision ?? 'decision'} from ${r.approver ?? '?'} at ${r.at}: ${r.message}`);
  }
  if (status.refusedNotListed) lines.push(`  … and ${status.refusedNotListed} more refused decisions (each in the history)`);
  if (status.stage) lines.push(`  stage ${status.stage}`);
  if (status.soakUntil) {
    lines.push(`  soaking until ${status.soakUntil} (${formatDuration(Date.parse(status.soakUntil) - now)} left)`);
  }
  const p = status.progress;
  if (p.total > 0) {
    lines.push(`  progress: ${p.applied} applied, ${p.leftAlone} left alone, ${p.skipped} skipped, ${p.failed} failed, ${p.rolledBack} rolled back of ${p.total}`);
  }
  if (status.resultsNotListed) lines.push(`    (the newest ${status.results.length} results; ${status.resultsNotListed} earlier ones with --all)`);
  for (const r of status.results) lines.push(`    ${r.status.padEnd(15)} ${r.changeId}${r.detail ? ` — ${r.detail}` : ''}`);
  if (status.verification) {
    lines.push(`  verification ${status.verification.ok ? 'passed' : 'FAILED'}`);
    for (const c of status.verification.checks) lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.changeId}: ${c.detail}`);
    if (status.verification.checksNotListed) lines.push(`    … and ${status.verification.checksNotListed} more checks (--all)`);
  }
  lines.push(...renderAccounts(status));
  lines.push(...approveHint(status).map((l) => `  ${l}`));
  return lines;
}

/** An organization-wide run's accounts: each account's run, its plan and where it stands. */
export function renderAccounts(status: RemediationStatus): string[] {
  if (!status.accounts?.length) return [];
  const lines = [`  accounts (${status.accounts.length}):`];
  for (const a of status.accounts.slice(0, 200)) {
    const plan = a.digest ? `, ${a.changes ?? 0} change(s), plan ${a.digest.slice(0, 12)}…` : '';
    const p = a.progress ? `, ${a.progress.applied} applied, ${a.progress.failed} failed, ${a.progress.rolledBack} rolled back` : '';
    lines.push(`    ${a.account}${a.name ? ` (${a.name})` : ''}${a.part ? ` part ${a.part.number}/${a.part.of}` : ''}  ${a.outcome ?? a.phase}${plan}${p}  run ${a.workflowId}${a.outcomeReason && a.outcome !== 'completed' ? ` — ${a.outcomeReason}` : ''}`);
  }
  if (status.accounts.length > 200) lines.push(`    … and ${status.accounts.length - 200} more`);
  return lines;
}
