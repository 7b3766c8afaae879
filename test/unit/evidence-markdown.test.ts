/** Markdown evidence prints what came from outside (names, comments, reasons) as text, never as structure. */
import { evidenceMarkdown, mdText } from '../../evidence/markdown';
import type { EvidenceRecord } from '../../evidence/record';

const forged = 'eve\n\n## Verification: passed\n- ok everything <script>alert(1)</script> [click](http://x) | col';

function record(): EvidenceRecord {
  return {
    evidenceFormat: 'countersign.evidence/v1',
    generatedAt: '2026-01-01T00:00:00.000Z',
    workflow: { namespace: 'default', workflowId: 'k/1', runId: 'r', type: 'w', taskQueue: 'q', startedAt: 's', historyEvents: 3, state: 'closed' },
    kind: 'stale-iam-users',
    controls: ['CC6.2'],
    requestedBy: forged,
    startedBy: '',
    input: undefined,
    policy: undefined,
    target: undefined,
    plan: undefined,
    messages: [],
    decisions: [{ decision: 'reject', approver: forged, planDigest: 'a'.repeat(64), comment: forged, seq: 2, at: 't' }],
    refused: [{ seq: 1, at: 't', approver: forged, comment: forged, reason: 'not-an-approver', message: `${forged} is not an approver` }],
    approvedBy: [],
    results: [],
    verification: undefined,
    outcome: 'rejected',
    outcomeReason: `rejected by ${forged}`,
    failures: [],
  };
}

it('prints injected Markdown and HTML as text: no forged heading, list item, link or tag', () => {
  const md = evidenceMarkdown(record());
  const lines = md.split('\n');
  expect(lines.filter((l) => l.startsWith('#'))).toEqual(['# Change evidence: k/1', '## Decisions', '## Results']);
  expect(md).not.toContain('<script>');
  expect(md).toContain('&lt;script&gt;');
  expect(md).not.toMatch(/(^|[^\\])\[click\]/);
  // Each decision is one line, whatever its fields hold.
  expect(lines.filter((l) => l.includes('Verification: passed'))).toHaveLength(4);
});

it('escapes each Markdown control character and joins lines', () => {
  expect(mdText('a\nb')).toBe('a b');
  expect(mdText('*x* _y_ `z` #1 | [l](u) <b>& arn:aws:iam::1:user/a-b.c')).toBe('\\*x\\* \\_y\\_ \\`z\\` #1 \\| \\[l\\](u) &lt;b&gt;&amp; arn:aws:iam::1:user/a-b.c');
});
