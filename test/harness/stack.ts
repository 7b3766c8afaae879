/**
 * Per test file: a private moto server, a worker on a unique task queue of the shared Temporal dev
 * server (global setup), a client, and the approval policy the test asks for.
 */
import { CLIENT_CHANNEL_ARGS } from '../../worker/config';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IAMClient } from '@aws-sdk/client-iam';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import { awsSettingsFromEnv } from '../../activities/aws/clients';
import type { AwsClients } from '../../activities/aws/clients';
import { RemediationClient } from '../../cli/remediation-client';
import type { MotoSandbox } from '../../sandbox/moto';
import { SANDBOX_CREDENTIALS, startMoto } from '../../sandbox/moto';
import { createCountersignWorker, installLogging } from '../../worker';
import { createPino } from '../../worker/logger';

export const TEST_POLICY = {
  approvers: { '*': ['dana.approver', 'sam.security'] },
  quorum: { '*': 1 },
  approvalTimeout: '1h',
  protectedPrincipals: ['arn:aws:iam::*:user/break-glass*'],
  maxChanges: 200,
};

export interface TestStack {
  moto: MotoSandbox;
  iam: IAMClient;
  client: Client;
  remediations: RemediationClient;
  taskQueue: string;
  temporalAddress: string;
  /** Environment for a CLI or worker child process pointed at this stack. */
  env: Record<string, string>;
  policyPath: string;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /** A unique workflow id suffix per test. */
  uniqueSuffix(): string;
  stop(): Promise<void>;
}

export async function startTestStack(options: { policy?: object; worker?: boolean } = {}): Promise<TestStack> {
  const temporalAddress = process.env.COUNTERSIGN_TEST_TEMPORAL_ADDRESS;
  const bundle = process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE;
  if (!temporalAddress || !bundle) throw new Error('the integration global setup did not run (run through jest --selectProjects integration)');
  installLogging(createPino(process.env.COUNTERSIGN_TEST_LOG_LEVEL ?? 'error'));
  // Activities use the SDK's default credential chain; every AWS endpoint in this process is a moto sandbox.
  Object.assign(process.env, SANDBOX_CREDENTIALS);
  const moto = await startMoto();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'countersign-policy-'));
  const policyPath = path.join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify(options.policy ?? TEST_POLICY));
  const taskQueue = `test-${randomUUID()}`;
  const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
  const connection = await Connection.connect({ address: temporalAddress, channelArgs: CLIENT_CHANNEL_ARGS });
  const client = new Client({ connection, namespace: 'default' });
  const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });

  let running: { worker: Worker; done: Promise<void>; aws: AwsClients } | undefined;
  const stack: TestStack = {
    moto,
    iam,
    client,
    remediations: new RemediationClient(client, taskQueue),
    taskQueue,
    temporalAddress,
    policyPath,
    env: {
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      COUNTERSIGN_TASK_QUEUE: taskQueue,
      COUNTERSIGN_POLICY: policyPath,
      COUNTERSIGN_LOG_LEVEL: 'warn',
      ...moto.env,
    },
    async startWorker() {
      if (running) return;
      const { worker, aws } = await createCountersignWorker({
        connection: nativeConnection,
        namespace: 'default',
        taskQueue,
        aws: awsSettingsFromEnv({ ...moto.env }),
        policyPath,
        workflowBundle: { codePath: bundle },
      });
      running = { worker, aws, done: worker.run() };
    },
    async stopWorker() {
      if (!running) return;
      const { worker, done, aws } = running;
      running = undefined;
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
      aws.destroy();
    },
    uniqueSuffix: () => randomUUID().slice(0, 8),
    async stop() {
      await stack.stopWorker();
      iam.destroy();
      await connection.close();
      await nativeConnection.close();
      await moto.stop();
    },
  };
  if (options.worker !== false) await stack.startWorker();
  return stack;
}
