/** The chaos suite's summary table, from the summaries each kind's file left; then the integration teardown. */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import integrationTeardown from '../harness/global-teardown';
import type { KindSummary } from './chaos';
import { CHAOS_FAULTS, CHAOS_LATENCY_MS, summaryTable } from './chaos';
import { IDEMPOTENT_DUPLICATES, describeFaults } from '../harness/scenario-run';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.COUNTERSIGN_CHAOS_RESULTS;
  if (dir && existsSync(dir)) {
    const summaries = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as KindSummary);
    if (summaries.length > 0) {
      const wall = Math.round((Date.now() - Number(process.env.COUNTERSIGN_CHAOS_STARTED ?? Date.now())) / 1000);
      const lines = [
        '',
        `Chaos: worker SIGKILLed and restarted at randomised points; AWS ${describeFaults(CHAOS_FAULTS)}, latency ${CHAOS_LATENCY_MS} ms; seed ${summaries[0]?.seed} (COUNTERSIGN_CHAOS_SEED=${summaries[0]?.seed} to reproduce); ${wall}s wall`,
        summaryTable(summaries),
        'Mutations accepted when repeated (idempotent in AWS), per kind:',
        ...summaries.map((s) => `  ${s.kind}: ${(IDEMPOTENT_DUPLICATES[s.kind] ?? []).map((a) => `${a.action.source} (${a.why})`).join('; ') || 'none'}`),
        ...summaries.flatMap((s) => s.failures.map((f) => `  FAILED ${s.kind} ${f}`)),
        '',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  if (process.env.COUNTERSIGN_CHAOS_DIST) rmSync(process.env.COUNTERSIGN_CHAOS_DIST, { recursive: true, force: true });
  await integrationTeardown();
}
