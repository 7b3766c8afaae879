/**
 * Approvers are told, end to end: a real moto SNS topic (read back through a subscribed SQS queue with
 * raw message delivery) and a local HTTP receiver. A run of stale-iam-users awaits approval under a 6 s
 * window: the awaiting-approval message, both reminders and the end message with the outcome arrive on
 * both channels; a dead webhook is recorded in status.notifications and delays nothing.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { NotifyPayload } from '../../activities/notify';
import type { RemediationStatus } from '../../common/messages';
import { seedEstate, useKeys } from '../../sandbox/seed';
import type { TestStack } from '../harness/stack';
import { startTestStack, TEST_POLICY } from '../harness/stack';

const ACCOUNT = '123456789012';
const TOPIC_NAME = 'countersign-approvals';
// moto's default account and region: the ARN is known before the topic exists (it is created after each reset).
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:${TOPIC_NAME}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: TestStack;
let receiver: Server;
let webhookUrl: string;
const posted: NotifyPayload[] = [];
let sns: SNSClient;
let sqs: SQSClient;

const policyWith = (hook: string) => ({ ...TEST_POLICY, approvalTimeout: '6s', notify: { '*': { snsTopicArn: TOPIC_ARN, webhookUrl: hook } } });

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      posted.push(JSON.parse(body) as NotifyPayload);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/approvals`;
  stack = await startTestStack({ policy: policyWith(webhookUrl) });
  const common = { region: 'us-east-1', endpoint: stack.moto.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  sns = new SNSClient(common);
  sqs = new SQSClient(common);
});
afterAll(async () => {
  sns?.destroy();
  sqs?.destroy();
  await stack?.stop();
  await new Promise((r) => receiver?.close(r));
});

/** A fresh estate with idle users, and the topic with a queue subscribed (raw delivery: the body is our JSON). */
async function freshEstate(): Promise<string> {
  await stack.moto.reset();
  const topic = await sns.send(new CreateTopicCommand({ Name: TOPIC_NAME }));
  expect(topic.TopicArn).toBe(TOPIC_ARN);
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'approvers' }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }));
  await sns.send(new SubscribeCommand({ TopicArn: TOPIC_ARN, Protocol: 'sqs', Endpoint: attrs.Attributes?.QueueArn, Attributes: { RawMessageDelivery: 'true' } }));
  const estate = await seedEstate(stack.iam, 'n');
  await sleep(3_000); // idle past maxIdle=2s
  await useKeys(estate, stack.moto.endpoint);
  return queue.QueueUrl as string;
}

async function drain(queueUrl: string): Promise<NotifyPayload[]> {
  const out: NotifyPayload[] = [];
  for (;;) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    if (!r.Messages?.length) return out;
    out.push(...r.Messages.map((m) => JSON.parse(m.Body ?? '{}') as NotifyPayload));
  }
}

async function startRun(): Promise<string> {
  const { workflowId } = await stack.remediations.start({
    kind: 'stale-iam-users',
    account: ACCOUNT,
    params: { maxIdle: '2s', soak: '1s' },
    requestedBy: 'riley.operator',
    idSuffix: stack.uniqueSuffix(),
  });
  return workflowId;
}

const events = (messages: NotifyPayload[], workflowId: string) => messages.filter((m) => m.workflowId === workflowId).map((m) => m.event);

describe('approver notifications', () => {
  it('tells approvers on SNS and the webhook: awaiting approval, reminders at 50% and 90%, and the outcome', async () => {
    const queueUrl = await freshEstate();
    posted.length = 0;
    const id = await startRun();
    const awaiting = await stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
    expect(awaiting.phase).toBe('awaiting-approval');
    const digest = awaiting.plan?.digest as string;
    const approve = `countersign approve ${id} --as dana.approver --plan ${digest}`;

    const done: RemediationStatus = await stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 60_000 });
    expect(done.outcome).toBe('expired');
    const viaSns = await drain(queueUrl);
    const order = ['awaiting-approval', 'reminder-50', 'reminder-90', 'end'];
    expect(events(viaSns, id)).toEqual(order);
    expect(events(posted, id)).toEqual(order);

    for (const messages of [viaSns, posted]) {
      const first = messages.find((m) => m.event === 'awaiting-approval');
      expect(first).toMatchObject({ kind: 'stale-iam-users', account: ACCOUNT, digest, changes: awaiting.plan?.changes.length, approveCommand: approve, expiresAt: awaiting.expiresAt });
      expect(first?.text).toContain(digest);
      expect(first?.text).toContain(approve);
      expect(messages.find((m) => m.event === 'reminder-90')?.text).toContain('still awaits approval');
      const end = messages.find((m) => m.event === 'end');
      expect(end).toMatchObject({ outcome: 'expired', digest });
      expect(end?.text).toContain('ended expired');
    }

    // Recorded in the status, every channel ok; the reminders went out at half and 90% of the window.
    const notes = done.notifications ?? [];
    expect(notes.map((n) => `${n.event}/${n.channel}/${n.ok}`).sort()).toEqual(
      order.flatMap((e) => [`${e}/sns/true`, `${e}/webhook/true`]).sort(),
    );
    const expiresAt = Date.parse(done.expiresAt as string);
    const sentAt = (event: string) => Date.parse(notes.find((n) => n.event === event)?.at as string);
    expect(Math.abs(sentAt('reminder-50') - (expiresAt - 3_000))).toBeLessThan(1_500);
    expect(Math.abs(sentAt('reminder-90') - (expiresAt - 600))).toBeLessThan(1_500);
  });

  it('tells the outcome at once when the plan is rejected, with no reminders', async () => {
    const queueUrl = await freshEstate();
    posted.length = 0;
    const id = await startRun();
    const awaiting = await stack.remediations.waitFor(id, (s) => s.phase === 'awaiting-approval' || s.phase === 'done', { timeoutMs: 60_000 });
    await stack.remediations.decide(id, { decision: 'reject', approver: 'sam.security', planDigest: awaiting.plan?.digest as string, comment: 'not now' });
    const done = await stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 60_000 });
    expect(done.outcome).toBe('rejected');
    const viaSns = await drain(queueUrl);
    expect(events(viaSns, id)).toEqual(['awaiting-approval', 'end']);
    expect(events(posted, id)).toEqual(['awaiting-approval', 'end']);
    expect(posted.find((m) => m.event === 'end')).toMatchObject({ outcome: 'rejected', reason: 'rejected by sam.security (not now)' });
  });

  it('schedules nothing when the policy has no notify', async () => {
    writeFileSync(stack.policyPath, JSON.stringify({ ...TEST_POLICY, approvalTimeout: '2s' }));
    try {
      const queueUrl = await freshEstate();
      posted.length = 0;
      const id = await startRun();
      const done = await stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 60_000 });
      expect(done.outcome).toBe('expired');
      expect(done.notifications).toBeUndefined();
      const history = await stack.client.workflow.getHandle(id).fetchHistory();
      const ids = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityId ? [e.activityTaskScheduledEventAttributes.activityId] : []));
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.filter((a) => a.startsWith('notify'))).toEqual([]);
      expect(await drain(queueUrl)).toEqual([]);
      expect(posted).toEqual([]);
    } finally {
      writeFileSync(stack.policyPath, JSON.stringify(policyWith(webhookUrl)));
    }
  });

  it('records a dead webhook in status.notifications and does not delay the run', async () => {
    // A closed port: bound, then released.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    writeFileSync(stack.policyPath, JSON.stringify(policyWith(`http://127.0.0.1:${deadPort}/hook`)));
    try {
      const queueUrl = await freshEstate();
      posted.length = 0;
      const id = await startRun();
      const done = await stack.remediations.waitFor(id, (s) => s.phase === 'done', { timeoutMs: 60_000 });
      expect(done.outcome).toBe('expired');
      // Expired on time: the failed webhook held nothing up.
      expect(Date.parse(done.finishedAt as string) - Date.parse(done.expiresAt as string)).toBeLessThan(3_000);
      const notes = done.notifications ?? [];
      const webhook = notes.filter((n) => n.channel === 'webhook');
      expect(webhook.map((n) => n.event)).toEqual(['awaiting-approval', 'reminder-50', 'reminder-90', 'end']);
      for (const n of webhook) {
        expect(n.ok).toBe(false);
        expect(n.detail).toMatch(/ECONNREFUSED/);
      }
      expect(notes.filter((n) => n.channel === 'sns').every((n) => n.ok)).toBe(true);
      expect(events(await drain(queueUrl), id)).toEqual(['awaiting-approval', 'reminder-50', 'reminder-90', 'end']);
      expect(posted).toEqual([]);
    } finally {
      writeFileSync(stack.policyPath, JSON.stringify(policyWith(webhookUrl)));
    }
  });
});
