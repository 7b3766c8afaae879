/**
 * Worker metrics for Prometheus: the Temporal runtime of this process is installed with a metrics
 * endpoint on a free port (as COUNTERSIGN_METRICS_ADDRESS does for `countersign worker`), a dry-run
 * remediation runs on the test stack's worker, and GET /metrics holds Temporal's worker metrics.
 *
 * The runtime can be installed once per process (jest gives each test file its own), and it must be
 * installed before anything instantiates it: beforeAll installs it before startTestStack connects.
 */
import { freePort } from '../../sandbox/processes';
import { installLogging } from '../../worker';
import { metricsAddressFromEnv } from '../../worker/config';
import { createPino } from '../../worker/logger';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

const ACCOUNT = '123456789012';

let stack: TestStack;
let metricsAddress: string;
let logger: ReturnType<typeof createPino>;

beforeAll(async () => {
  metricsAddress = `127.0.0.1:${await freePort()}`;
  logger = installLogging(createPino(process.env.COUNTERSIGN_TEST_LOG_LEVEL ?? 'error'), {
    metricsAddress: metricsAddressFromEnv({ COUNTERSIGN_METRICS_ADDRESS: metricsAddress }),
  });
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scrape(): Promise<string> {
  const response = await fetch(`http://${metricsAddress}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** Metric family names (without _bucket/_sum/_count) with a sample in the exposition text. */
function metricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s/.exec(line);
    if (match?.[1]) names.add(match[1].replace(/_(bucket|sum|count)$/, ''));
  }
  return names;
}

/** The value of `name` for samples whose labels include every given label (summed). */
function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(match[3]);
  }
  return sum;
}

describe('worker metrics', () => {
  it('serves Temporal worker metrics for Prometheus at /metrics once a remediation has run', async () => {
    const { workflowId } = await stack.remediations.start({
      kind: 'stale-iam-users',
      account: ACCOUNT,
      params: { maxIdle: '90d' },
      requestedBy: 'riley.operator',
      idSuffix: stack.uniqueSuffix(),
      dryRun: true,
    });
    const status = await stack.remediations.waitFor(workflowId, (s) => s.phase === 'done', { timeoutMs: 120_000 });
    expect(['planned', 'no-op']).toContain(status.outcome);

    // Core records the completion when the final workflow task completes; give the exporter a moment.
    let text = '';
    for (let i = 0; i < 50; i++) {
      text = await scrape();
      if (sampleSum(text, 'temporal_workflow_completed', { task_queue: stack.taskQueue }) >= 1) break;
      await sleep(200);
    }
    if (process.env.COUNTERSIGN_TEST_PRINT_METRICS) process.stderr.write(`${[...metricNames(text)].sort().join('\n')}\n`);

    const names = metricNames(text);
    expect([...names].every((n) => n.startsWith('temporal_'))).toBe(true);
    for (const name of [
      'temporal_workflow_completed',
      'temporal_workflow_task_execution_latency',
      'temporal_activity_execution_latency',
      'temporal_request',
      'temporal_num_pollers',
      'temporal_worker_task_slots_available',
    ]) {
      expect(names).toContain(name);
    }
    // Labelled by this stack's task queue and namespace; the dry run completed at least one workflow.
    expect(sampleSum(text, 'temporal_workflow_completed', { task_queue: stack.taskQueue, namespace: 'default' })).toBeGreaterThanOrEqual(1);
    expect(sampleSum(text, 'temporal_activity_execution_latency_count', { task_queue: stack.taskQueue })).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^# TYPE temporal_workflow_completed counter$/m);
  });

  it('installing again is a no-op: the same logger, the endpoint unchanged', async () => {
    const again = installLogging(createPino('error'), { metricsAddress: '127.0.0.1:1' });
    expect(again).toBe(logger);
    expect(metricNames(await scrape()).has('temporal_request')).toBe(true);
  });

  it('reads COUNTERSIGN_METRICS_ADDRESS as ip:port, unset meaning no endpoint', () => {
    expect(metricsAddressFromEnv({})).toBeUndefined();
    expect(metricsAddressFromEnv({ COUNTERSIGN_METRICS_ADDRESS: '' })).toBeUndefined();
    expect(metricsAddressFromEnv({ COUNTERSIGN_METRICS_ADDRESS: '0.0.0.0:9464' })).toBe('0.0.0.0:9464');
    expect(metricsAddressFromEnv({ COUNTERSIGN_METRICS_ADDRESS: '[::1]:9464' })).toBe('[::1]:9464');
    for (const bad of ['9464', 'localhost:9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'http://127.0.0.1:9464']) {
      expect(() => metricsAddressFromEnv({ COUNTERSIGN_METRICS_ADDRESS: bad })).toThrow(/COUNTERSIGN_METRICS_ADDRESS must be ip:port/);
    }
  });
});
