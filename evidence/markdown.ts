/** The evidence record as Markdown, for a change ticket or an audit folder. */
import type { EvidenceRecord } from './record';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function evidenceMarkdown(e: EvidenceRecord): string {
  const out: string[] = [];
  out.push(`# Change evidence: ${e.workflow.workflowId}`);
  out.push('');
  out.push(`- Remediation: \`${e.kind}\` (controls ${e.controls.join(', ') || 'n/a'})`);
  out.push(`- Workflow: ${e.workflow.type}, run ${e.workflow.runId}, namespace ${e.workflow.namespace}, ${e.workflow.historyEvents} history events (${e.workflow.state})`);
  out.push(`- Requested by **${e.requestedBy}** at ${e.workflow.startedAt}${e.workflow.closedAt ? `; closed ${e.workflow.closedAt}` : ''}`);
  out.push(`- Outcome: **${e.outcome ?? 'in progress'}**${e.outcomeReason ? ` — ${e.outcomeReason}` : ''}`);
  if (e.target) {
    const t = e.target;
    out.push(
      `- Account: ${t.account}${t.accountName ? ` (${t.accountName})` : ''}${t.organizationId ? ` in organization ${t.organizationId}` : ''}; acted as ${t.actingArn}${t.roleArn ? ` — role ${t.roleArn} assumed by ${t.workerArn}, session name \`${t.sessionName ?? ''}\` (search the account's CloudTrail for it)` : ''}`,
    );
  }
  if (e.policy) out.push(`- Approval policy: ${e.policy.source}; quorum ${e.policy.quorum} of ${e.policy.approvers.join(', ')}`);
  if (e.plan) {
    out.push(`- Plan digest: \`${e.plan.digest}\` (${e.plan.digestVerified ? 'verified against the plan body' : '**does not match the plan body**'})`);
    out.push('');
    out.push('## Planned changes');
    out.push('');
    out.push('| change | stage | resource | summary | reversible |');
    out.push('|---|---|---|---|---|');
    for (const c of e.plan.changes) out.push(`| ${cell(c.id)} | ${c.stage} | ${cell(c.resource)} | ${cell(c.summary)} | ${c.reversible ? 'yes' : 'no'} |`);
    if (e.plan.leftAlone.length) {
      out.push('');
      out.push('## Left alone');
      out.push('');
      for (const l of e.plan.leftAlone) out.push(`- ${l.resource}: ${l.reason}${l.detail ? ` — ${l.detail}` : ''}`);
    }
  }
  out.push('');
  out.push('## Decisions');
  out.push('');
  const inOrder = [
    ...e.decisions.map((d) => ({ seq: d.seq, line: `- ${d.at}: **${d.decision}** by ${d.approver} on plan \`${d.planDigest.slice(0, 12)}…\`${d.comment ? ` — ${d.comment}` : ''}` })),
    ...e.refused.map((r) => ({ seq: r.seq, line: `- ${r.at}: refused ${r.decision ?? 'decision'} from ${r.approver ?? '?'} (${r.reason}): ${r.message}` })),
  ].sort((a, b) => a.seq - b.seq);
  for (const { line } of inOrder) out.push(line);
  if (!e.decisions.length && !e.refused.length) out.push('- none');
  out.push('');
  out.push('## Results');
  out.push('');
  for (const r of e.results) out.push(`- ${r.at}: ${r.changeId} **${r.status}**${r.detail ? ` — ${r.detail}` : ''}${r.snapshot !== undefined ? ' (snapshot recorded)' : ''}`);
  if (!e.results.length) out.push('- none');
  if (e.verification) {
    out.push('');
    out.push(`## Verification: ${e.verification.ok ? 'passed' : 'failed'}`);
    out.push('');
    for (const c of e.verification.checks) out.push(`- ${c.ok ? 'ok' : 'FAIL'} ${c.changeId}: ${c.detail}`);
  }
  out.push('');
  return out.join('\n');
}
