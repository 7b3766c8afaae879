/**
 * Approvers are told (docs/design.md §4, README "Approval policy"): when a run awaits approval, as its
 * window closes (at half and at 90 % of it) and when it ends, a message goes to the kind's SNS topic
 * and/or webhook (Slack-compatible JSON: `text` plus structured fields).
 *
 * A notification never fails a run: every channel is tried once, within a short timeout, and its
 * failure is returned (the workflow records it in status.notifications), never thrown.
 */
import { PublishCommand } from '@aws-sdk/client-sns';
import type { NotifyEvent, NotificationRecord, Outcome } from '../common/messages';
import type { NotifyChannels } from '../common/policy';
import type { AwsClients } from './aws/clients';
import { classifyAwsError } from './aws/errors';

/** Each channel gets this long: a slow receiver delays nobody for longer. */
export const NOTIFY_TIMEOUT_MS = 5_000;

export interface NotifyRequest {
  role: 'notify';
  event: NotifyEvent;
  workflowId: string;
  kind: string;
  account: string;
  /** The plan's digest: what an approver approves. */
  digest: string;
  /** How many changes the plan makes. */
  changes: number;
  /** The exact command that approves this plan (cli/render.ts approveHint). */
  approveCommand: string;
  /** When the approval window closes. */
  expiresAt?: string;
  /** At the end: how the run ended, and why. */
  outcome?: Outcome;
  reason?: string;
  channels: NotifyChannels;
}

/** What one channel did; the workflow adds when and for which event. */
export type NotifyResult = Pick<NotificationRecord, 'channel' | 'ok' | 'detail'>;

/** The webhook body (Slack-compatible) and, as JSON, the SNS message: the request's facts plus a line for people. */
export type NotifyPayload = Omit<NotifyRequest, 'role' | 'channels'> & { text: string };

const MAX_DETAIL = 300;
const MAX_REASON = 500;

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function notifyPayload(r: NotifyRequest): NotifyPayload {
  const what = `${r.kind} run ${r.workflowId}: ${r.changes} change(s) in account ${r.account}, plan ${r.digest}`;
  const until = r.expiresAt ? ` before ${r.expiresAt}` : '';
  let text: string;
  switch (r.event) {
    case 'awaiting-approval':
      text = `Countersign: approval needed for ${what}. Approve${until} with: ${r.approveCommand}`;
      break;
    case 'reminder-50':
    case 'reminder-90':
      text = `Countersign reminder (${r.event === 'reminder-50' ? 'half' : '90%'} of the approval window gone): ${what} still awaits approval${until}. Approve with: ${r.approveCommand}`;
      break;
    case 'end':
      text = `Countersign: ${what} ended ${r.outcome ?? 'unknown'}${r.reason ? `: ${clip(r.reason, MAX_REASON)}` : ''}`;
      break;
  }
  return {
    text,
    event: r.event,
    workflowId: r.workflowId,
    kind: r.kind,
    account: r.account,
    digest: r.digest,
    changes: r.changes,
    approveCommand: r.approveCommand,
    ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}),
    ...(r.outcome ? { outcome: r.outcome } : {}),
    ...(r.reason ? { reason: clip(r.reason, MAX_REASON) } : {}),
  };
}

/** arn:aws:sns:<region>:<account>:<name> → region. */
export function topicRegion(arn: string): string {
  const region = arn.split(':')[3];
  if (!region) throw new Error(`not an SNS topic ARN: ${arn}`);
  return region;
}

/** An SNS failure as the status shows it: the AWS error name, its category (activities/aws/errors.ts) and message. */
export function describeSnsError(err: unknown): string {
  const c = classifyAwsError(err);
  const message = err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string' ? (err as { message: string }).message : String(err);
  return clip(`${c.name} (${c.category}${c.retryable ? ', retryable' : ''}): ${message}`, MAX_DETAIL);
}

/** A webhook failure as the status shows it. The URL is never repeated (a Slack webhook URL is a secret). */
export function describeWebhookError(err: unknown): string {
  // A DOMException (AbortSignal.timeout) is not an Error in every realm: compared by name.
  const name = err && typeof err === 'object' ? (err as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${NOTIFY_TIMEOUT_MS / 1000}s`;
  // Errors from fetch (undici) may come from another realm: read by shape, not instanceof.
  const e = err && typeof err === 'object' ? (err as { message?: unknown; cause?: { code?: unknown; message?: unknown } }) : undefined;
  const cause = e?.cause && typeof e.cause === 'object' ? e.cause : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return clip(code ? `${code}: ${typeof cause?.message === 'string' ? cause.message : message}` : message, MAX_DETAIL);
}

export interface NotifyDeps {
  aws: AwsClients;
  /** Injected by tests. */
  fetch?: typeof fetch;
}

export function createNotifyActivities(deps: NotifyDeps) {
  const doFetch = deps.fetch ?? fetch;

  async function publish(topicArn: string, payload: NotifyPayload): Promise<NotifyResult> {
    try {
      const out = await deps.aws.own.sns(topicRegion(topicArn)).send(
        new PublishCommand({
          TopicArn: topicArn,
          // Subject: ASCII, at most 100 characters, no line breaks.
          Subject: clip(`Countersign ${payload.event}: ${payload.kind}`.replace(/[^\x20-\x7e]/g, '?'), 100),
          Message: JSON.stringify(payload),
          ...(topicArn.endsWith('.fifo') ? { MessageGroupId: payload.workflowId, MessageDeduplicationId: `${payload.workflowId}:${payload.event}`.slice(0, 128) } : {}),
        }),
        { abortSignal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS) },
      );
      return { channel: 'sns', ok: true, ...(out.MessageId ? { detail: `message ${out.MessageId}` } : {}) };
    } catch (err) {
      return { channel: 'sns', ok: false, detail: describeSnsError(err) };
    }
  }

  async function post(url: string, payload: NotifyPayload): Promise<NotifyResult> {
    try {
      const res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
        redirect: 'error',
      });
      // Drain the body so the connection is released.
      await res.text().catch(() => '');
      return res.ok ? { channel: 'webhook', ok: true, detail: `HTTP ${res.status}` } : { channel: 'webhook', ok: false, detail: `HTTP ${res.status} ${res.statusText}`.trim() };
    } catch (err) {
      return { channel: 'webhook', ok: false, detail: describeWebhookError(err) };
    }
  }

  return {
    /** Tell approvers on every configured channel, concurrently; failures are returned, never thrown. */
    async notifyApprovers(request: NotifyRequest): Promise<NotifyResult[]> {
      const payload = notifyPayload(request);
      const sends: Promise<NotifyResult>[] = [];
      if (request.channels.snsTopicArn) sends.push(publish(request.channels.snsTopicArn, payload));
      if (request.channels.webhookUrl) sends.push(post(request.channels.webhookUrl, payload));
      return Promise.all(sends);
    },
  };
}
