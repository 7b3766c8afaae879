/** The evidence record as Markdown, for a change ticket or an audit folder. */
import type { EvidenceRecord } from './record';
import { approverIdentity } from './record';

/**
 * Every value in the record is printed through this: names, comments, reasons and AWS strings come
 * from outside, and must read as text — never as a heading, a list item, a link or HTML. Line breaks
 * become spaces (a new line could start a forged section, and every value sits mid-line after a fixed
 * prefix, where `#`, `-` or `1.` mean nothing); emphasis, code, link and table characters are
 * backslash-escaped; HTML's angle brackets and ampersands become entities.
 */
export function mdText(value: unknown): string {
  return String(value ?? '')
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~])/g, '\\$1');
}

const t = mdText;

export function evidenceMarkdown(e: EvidenceRecord): string {
  const out: string[] = [];
  const w = e.workflow;
  out.push(`# Change evidence: ${t(w.workflowId)}`);
  out.push('');
  out.push(`- Remediation: ${t(e.kind)} (controls ${t(e.controls.join(', ') || 'n/a')})`);
  out.push(`- Workflow: ${t(w.type)}, run ${t(w.runId)}, namespace ${t(w.namespace)}, ${w.historyEvents} history events (${w.state})`);
  out.push(`- Requested by **${t(e.requestedBy)}** at ${t(w.startedAt)}${w.closedAt ? `; closed ${t(w.closedAt)}` : ''}`);
  out.push(`- Outcome: **${t(e.outcome ?? 'in progress')}**${e.outcomeReason ? ` — ${t(e.outcomeReason)}` : ''}`);
  if (e.target) {
    const a = e.target;
    const reached = a.roleArn
      ? ` — role ${t(a.roleArn)} assumed by ${t(a.workerArn)}, session name ${t(a.sessionName)} (search the account's CloudTrail for it)`
      : '';
    out.push(`- Account: ${t(a.account)}${a.accountName ? ` (${t(a.accountName)})` : ''}${a.organizationId ? ` in organization ${t(a.organizationId)}` : ''}; acted as ${t(a.actingArn)}${reached}`);
  }
  if (e.policy) {
    out.push(
      `- Approval policy: ${t(e.policy.source)}; quorum ${e.policy.quorum} of ${t(e.policy.approvers.join(', '))}; approver identity ${e.policy.identity === 'aws-sts' ? 'proven (aws-sts)' : 'by name'}`,
    );
  }
  if (e.plan) {
    out.push(`- Plan digest: ${t(e.plan.digest)} (${e.plan.digestVerified ? 'verified against the plan body' : '**does not match the plan body**'})`);
    out.push('');
    out.push('## Planned changes');
    out.push('');
    out.push('| change | stage | resource | summary | reversible |');
    out.push('|---|---|---|---|---|');
    for (const c of e.plan.changes) out.push(`| ${t(c.id)} | ${t(c.stage)} | ${t(c.resource)} | ${t(c.summary)} | ${c.reversible ? 'yes' : 'no'} |`);
    if (e.plan.leftAlone.length) {
      out.push('');
      out.push('## Left alone');
      out.push('');
      for (const l of e.plan.leftAlone) out.push(`- ${t(l.resource)}: ${t(l.reason)}${l.detail ? ` — ${t(l.detail)}` : ''}`);
    }
  }
  out.push('');
  out.push('## Decisions');
  out.push('');
  const inOrder = [
    ...e.decisions.map((d) => ({
      seq: d.seq,
      line: `- ${t(d.at)}: **${t(d.decision)}** by ${t(d.approver)} (${t(approverIdentity(d))}${d.claimedAs ? `, claimed ${t(d.claimedAs)}` : ''}) on plan ${t(d.planDigest.slice(0, 12))}…${d.comment ? ` — ${t(d.comment)}` : ''}`,
    })),
    ...e.refused.map((r) => ({
      seq: r.seq,
      line: `- ${t(r.at)}: refused ${t(r.decision ?? 'decision')} from ${t(r.approver ?? r.verifiedArn ?? '?')}${r.verifiedArn ? ` (verified as ${t(r.verifiedArn)})` : ''} (${t(r.reason)}): ${t(r.message)}`,
    })),
  ].sort((a, b) => a.seq - b.seq);
  for (const { line } of inOrder) out.push(line);
  if (e.refusedNotListed) out.push(`- … and ${e.refusedNotListed} more refused decisions, each in the history (see messages in the JSON evidence)`);
  if (!e.decisions.length && !e.refused.length) out.push('- none');
  out.push('');
  out.push('## Results');
  out.push('');
  for (const r of e.results) {
    const partial = r.status === 'failed' && r.observed !== undefined ? `; before failing it did: ${t(JSON.stringify(r.observed).slice(0, 1_000))}` : '';
    out.push(`- ${t(r.at)}: ${t(r.changeId)} **${t(r.status)}**${r.detail ? ` — ${t(r.detail)}` : ''}${partial}${r.snapshot !== undefined ? ' (snapshot recorded)' : ''}`);
  }
  if (!e.results.length) out.push('- none');
  if (e.verification) {
    out.push('');
    out.push(`## Verification: ${e.verification.ok ? 'passed' : 'failed'}`);
    out.push('');
    for (const c of e.verification.checks) out.push(`- ${c.ok ? 'ok' : 'FAIL'} ${t(c.changeId)}: ${t(c.detail)}`);
  }
  out.push('');
  return out.join('\n');
}
