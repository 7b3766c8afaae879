/**
 * Approver notifications (activities/notify.ts): payload content, failures recorded not thrown, SNS
 * errors classified; the policy's `notify` section; the approve command worded as the CLI words it.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsClients } from '../../activities/aws/clients';
import type { NotifyRequest } from '../../activities/notify';
import { createNotifyActivities, describeSnsError, notifyPayload, topicRegion } from '../../activities/notify';
import { approveHint } from '../../cli/render';
import type { RemediationStatus } from '../../common/messages';
import { effectivePolicy, parseApprovalPolicy } from '../../common/policy';
import { approveCommand } from '../../workflows/lifecycle';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:approvals';
const DIGEST = 'sha256:0123456789abcdef';

const request = (over: Partial<NotifyRequest> = {}): NotifyRequest => ({
  role: 'notify',
  event: 'awaiting-approval',
  workflowId: 'stale-iam-users-abc',
  kind: 'stale-iam-users',
  account: '123456789012',
  digest: DIGEST,
  changes: 3,
  approveCommand: `countersign approve stale-iam-users-abc --as dana.approver --plan ${DIGEST}`,
  expiresAt: '2026-01-08T00:00:00.000Z',
  channels: { snsTopicArn: TOPIC, webhookUrl: 'https://hooks.example.com/T000/B000/secret' },
  ...over,
});

const sns = mockClient(SNSClient);
let aws: AwsClients;
beforeEach(() => {
  sns.reset();
  aws = new AwsClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' });
});
afterEach(() => aws.destroy());

const okFetch = (calls: { url: string; body: unknown }[]) =>
  (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    return new Response('ok', { status: 200 });
  }) as typeof fetch;

describe('notifyPayload', () => {
  it('holds the plan summary and the exact approve command while awaiting approval', () => {
    const p = notifyPayload(request());
    expect(p).toMatchObject({ event: 'awaiting-approval', kind: 'stale-iam-users', account: '123456789012', digest: DIGEST, changes: 3, approveCommand: request().approveCommand });
    expect(p.text).toContain(DIGEST);
    expect(p.text).toContain(request().approveCommand);
    expect(p.text).toContain('3 change(s) in account 123456789012');
    expect(p.text).toContain('before 2026-01-08T00:00:00.000Z');
    expect(p.outcome).toBeUndefined();
  });

  it('names the reminders and, at the end, the outcome and its reason', () => {
    expect(notifyPayload(request({ event: 'reminder-90' })).text).toMatch(/reminder \(90% .*still awaits approval/);
    const end = notifyPayload(request({ event: 'end', outcome: 'expired', reason: 'no quorum of approvals before …' }));
    expect(end).toMatchObject({ outcome: 'expired', reason: 'no quorum of approvals before …' });
    expect(end.text).toContain('ended expired: no quorum');
  });
});

describe('notifyApprovers', () => {
  it('publishes to the topic in its own region and posts the same payload to the webhook', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const calls: { url: string; body: unknown }[] = [];
    const { notifyApprovers } = createNotifyActivities({ aws, fetch: okFetch(calls) });
    const results = await notifyApprovers(request());
    expect(results).toEqual([
      { channel: 'sns', ok: true, detail: 'message m-1' },
      { channel: 'webhook', ok: true, detail: 'HTTP 200' },
    ]);
    const input = sns.commandCalls(PublishCommand)[0]?.args[0].input;
    expect(input?.TopicArn).toBe(TOPIC);
    expect(JSON.parse(input?.Message ?? '{}')).toEqual(notifyPayload(request()));
    expect(input?.Subject).toBe('Countersign awaiting-approval: stale-iam-users');
    expect(await sns.commandCalls(PublishCommand)[0]?.thisValue.config.region()).toBe('eu-west-1');
    expect(calls).toEqual([{ url: request().channels.webhookUrl, body: notifyPayload(request()) }]);
    expect((calls[0]?.body as { text: string }).text).toContain(DIGEST);
  });

  it('records a webhook that refuses, errs or answers non-2xx, and never throws', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    const failing = createNotifyActivities({ aws, fetch: (async () => Promise.reject(refused)) as typeof fetch });
    await expect(failing.notifyApprovers(request())).resolves.toEqual([
      { channel: 'sns', ok: true, detail: 'message m-1' },
      { channel: 'webhook', ok: false, detail: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9' },
    ]);
    const slow = createNotifyActivities({ aws, fetch: (async () => Promise.reject(new DOMException('timed out', 'TimeoutError'))) as typeof fetch });
    expect((await slow.notifyApprovers(request({ channels: { webhookUrl: 'http://127.0.0.1:9/' } })))[0]).toEqual({ channel: 'webhook', ok: false, detail: 'no answer within 5s' });
    const http500 = createNotifyActivities({ aws, fetch: (async () => new Response('nope', { status: 500, statusText: 'Internal Server Error' })) as typeof fetch });
    expect(await http500.notifyApprovers(request({ channels: { webhookUrl: 'http://127.0.0.1:9/' } }))).toEqual([{ channel: 'webhook', ok: false, detail: 'HTTP 500 Internal Server Error' }]);
  });

  it('never repeats the webhook URL (a Slack webhook URL is a secret)', async () => {
    const err = new TypeError('fetch failed');
    const { notifyApprovers } = createNotifyActivities({ aws, fetch: (async () => Promise.reject(err)) as typeof fetch });
    const [result] = await notifyApprovers(request({ channels: { webhookUrl: 'https://hooks.example.com/T000/B000/secret' } }));
    expect(result?.detail).not.toContain('secret');
  });

  it('classifies SNS errors in the recorded detail, and still posts the webhook', async () => {
    sns.on(PublishCommand).rejects(Object.assign(new Error('Topic does not exist'), { name: 'NotFoundException', $metadata: { httpStatusCode: 404 } }));
    const calls: { url: string; body: unknown }[] = [];
    const { notifyApprovers } = createNotifyActivities({ aws, fetch: okFetch(calls) });
    const results = await notifyApprovers(request());
    expect(results[0]).toEqual({ channel: 'sns', ok: false, detail: 'NotFoundException (permanent): Topic does not exist' });
    expect(results[1]).toMatchObject({ channel: 'webhook', ok: true });
    expect(describeSnsError(Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } }))).toBe('Throttling (throttle, retryable): Rate exceeded');
    expect(describeSnsError(Object.assign(new Error('Internal'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } }))).toBe('InternalError (transient, retryable): Internal');
    expect(describeSnsError(Object.assign(new Error('not allowed'), { name: 'AuthorizationErrorException', $metadata: { httpStatusCode: 403 } }))).toBe('AuthorizationErrorException (permanent): not allowed');
  });

  it('sends nothing when no channel is configured', async () => {
    const calls: { url: string; body: unknown }[] = [];
    const { notifyApprovers } = createNotifyActivities({ aws, fetch: okFetch(calls) });
    expect(await notifyApprovers(request({ channels: {} }))).toEqual([]);
    expect(calls).toEqual([]);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('takes the region from the topic ARN', () => {
    expect(topicRegion(TOPIC)).toBe('eu-west-1');
    expect(topicRegion('arn:aws-us-gov:sns:us-gov-west-1:123456789012:t.fifo')).toBe('us-gov-west-1');
  });
});

describe('the policy notify section', () => {
  const base = { approvers: { '*': ['dana'] } };
  const parse = (notify: unknown) => parseApprovalPolicy(JSON.stringify({ ...base, notify }), 'p.json');

  it('applies per kind, "*" as the default, and is absent when not configured', () => {
    const file = parse({ '*': { snsTopicArn: TOPIC }, scp: { webhookUrl: 'https://hooks.example.com/x' } });
    expect(effectivePolicy(file, 'stale-iam-users', 'p.json').notify).toEqual({ snsTopicArn: TOPIC });
    expect(effectivePolicy(file, 'scp', 'p.json').notify).toEqual({ webhookUrl: 'https://hooks.example.com/x' });
    const none = effectivePolicy(parseApprovalPolicy(JSON.stringify(base), 'p.json'), 'scp', 'p.json');
    expect('notify' in none).toBe(false);
    expect('notify' in effectivePolicy(parse({ '*': {} }), 'scp', 'p.json')).toBe(false);
  });

  it('refuses a topic that is not an SNS ARN, a non-http(s) webhook and unknown keys', () => {
    expect(() => parse({ '*': { snsTopicArn: 'arn:aws:sqs:us-east-1:123456789012:q' } })).toThrow(/notify\.\*\.snsTopicArn: must be an SNS topic ARN/);
    expect(() => parse({ '*': { webhookUrl: 'ftp://example.com/x' } })).toThrow(/notify\.\*\.webhookUrl: must be an http\(s\) URL/);
    expect(() => parse({ '*': { webhookUrl: 'not a url' } })).toThrow(/must be an http\(s\) URL/);
    expect(() => parse({ '*': { email: 'a@b.c' } })).toThrow(/notify\.\*/);
  });
});

describe('approveCommand', () => {
  it('is worded exactly as the CLI status hint words it', () => {
    const status = {
      kind: 'scp',
      workflowId: "scp-it's-1",
      phase: 'awaiting-approval',
      requestedBy: 'riley',
      dryRun: false,
      startedAt: '2026-01-01T00:00:00.000Z',
      policy: { kind: 'scp', source: 'p', approvers: ['riley', 'dana approver'], quorum: 1, approvalTimeout: '7d', protectedPrincipals: [], maxChanges: 200 },
      plan: { digest: DIGEST },
      decisions: [],
      refused: [],
      decisionsReceived: 0,
      progress: { total: 1, applied: 0, leftAlone: 0, skipped: 0, failed: 0, rolledBack: 0 },
      results: [],
    } as unknown as RemediationStatus;
    expect(approveHint(status)[1]).toBe(`  approve: ${approveCommand(status)}`);
  });
});
