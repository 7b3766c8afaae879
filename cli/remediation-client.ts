/**
 * The client side of a remediation: start, read status, send decisions and confirm them, list, and
 * wait with progress. Used by the CLI, the demo and the tests, so all three speak the same contract.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { KINDS } from '../common/kinds';
import type { KindName } from '../common/kinds';
import type { DecideReply, DecideSignal, RefusedDecision, RecordedDecision, RemediationInput, RemediationStatus } from '../common/messages';
import { decideUpdate, statusQuery, workflowIdFor } from '../common/messages';
import { CommandFailed } from './errors';

export interface StartRequest extends RemediationInput {
  kind: KindName;
  account: string;
  idSuffix?: string;
}

export type DecisionReply =
  | { accepted: true; decision: RecordedDecision; status: RemediationStatus }
  | { accepted: false; refusal: RefusedDecision | { reason: string; message: string }; status?: RemediationStatus };

export interface ListedRun {
  workflowId: string;
  runId: string;
  kind: string;
  status: string;
  phase: string;
  outcome?: string;
  requestedBy?: string;
  startTime: string;
  closeTime?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


export class RemediationClient {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async start(request: StartRequest): Promise<{ workflowId: string; runId: string }> {
    const workflowId = workflowIdFor(request.kind, request.account, request.idSuffix);
    const { idSuffix: _ignored, ...input } = request;
    try {
      const handle = await this.client.workflow.start(KINDS[request.kind].workflowType, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [input satisfies RemediationInput],
        workflowIdConflictPolicy: 'FAIL',
        memo: { kind: request.kind, requestedBy: request.requestedBy, account: request.account, dryRun: request.dryRun === true, phase: 'starting' },
      });
      return { workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new CommandFailed(
          `a ${request.kind} remediation for account ${request.account} is already running (${workflowId}); watch it with \`countersign status ${workflowId}\`, or reject it before starting another`,
        );
      }
      throw err;
    }
  }

  private handle(workflowId: string): WorkflowHandle {
    return this.client.workflow.getHandle(workflowId);
  }

  /** The status: the live query while running, the recorded result once closed (no worker needed). */
  async status(workflowId: string): Promise<RemediationStatus> {
    const handle = this.handle(workflowId);
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new CommandFailed(`no remediation with workflow id ${workflowId}; \`countersign list\` shows them`);
      throw err;
    }
    if (description.status.name === 'RUNNING') return handle.query(statusQuery);
    if (description.status.name === 'COMPLETED') return (await handle.result()) as RemediationStatus;
    throw new CommandFailed(`${workflowId} ended ${description.status.name.toLowerCase()} without a result; see \`temporal workflow show --workflow-id ${workflowId}\``);
  }

  /**
   * Send a decision through the `decide` update: the workflow answers at once whether it accepted or
   * refused it (and records either in history). The full record is then read from the status.
   */
  async decide(workflowId: string, decision: DecideSignal, timeoutMs = 30_000): Promise<DecisionReply> {
    const handle = this.handle(workflowId);
    const description = await handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) throw new CommandFailed(`no remediation with workflow id ${workflowId}`);
      throw err;
    });
    if (description.status.name !== 'RUNNING') {
      const status = description.status.name === 'COMPLETED' ? ((await handle.result()) as RemediationStatus) : undefined;
      return {
        accepted: false,
        status,
        refusal: {
          reason: status?.outcome === 'expired' ? 'expired' : 'not-awaiting-decision',
          message: status
            ? `the run has ended (${status.outcome}${status.outcomeReason ? `: ${status.outcomeReason}` : ''}); nothing awaits a decision`
            : `the run is ${description.status.name.toLowerCase()}; nothing awaits a decision`,
        },
      };
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CommandFailed(`the decision was sent but not answered within ${timeoutMs / 1000}s; is a worker running on task queue "${this.taskQueue}"?`)),
        timeoutMs,
      );
    });
    let reply: DecideReply;
    try {
      reply = await Promise.race([handle.executeUpdate(decideUpdate, { args: [decision] }), timedOut]);
    } finally {
      clearTimeout(timer);
    }
    const status = await this.status(workflowId);
    if (reply.accepted) {
      const recorded = status.decisions.find((d) => d.seq === reply.seq);
      if (recorded) return { accepted: true, decision: recorded, status };
      return { accepted: true, decision: { ...decision, seq: reply.seq, at: new Date().toISOString() }, status };
    }
    const refused = status.refused.find((r) => r.seq === reply.seq);
    return { accepted: false, refusal: refused ?? { reason: reply.reason ?? 'refused', message: reply.message ?? 'refused' }, status };
  }

  async list(filter: { kind?: KindName; limit?: number } = {}): Promise<ListedRun[]> {
    const types = filter.kind ? [KINDS[filter.kind].workflowType] : Object.values(KINDS).map((k) => k.workflowType);
    const query = `WorkflowType IN (${types.map((t) => `'${t}'`).join(', ')})`;
    const runs: ListedRun[] = [];
    for await (const w of this.client.workflow.list({ query })) {
      const memo = (w.memo ?? {}) as Record<string, unknown>;
      runs.push({
        workflowId: w.workflowId,
        runId: w.runId,
        kind: typeof memo.kind === 'string' ? memo.kind : w.type,
        status: w.status.name,
        phase: typeof memo.phase === 'string' ? memo.phase : w.status.name === 'RUNNING' ? 'running' : 'done',
        outcome: typeof memo.outcome === 'string' ? memo.outcome : undefined,
        requestedBy: typeof memo.requestedBy === 'string' ? memo.requestedBy : undefined,
        startTime: w.startTime.toISOString(),
        closeTime: w.closeTime?.toISOString(),
      });
      if (runs.length >= (filter.limit ?? 100)) break;
    }
    return runs;
  }

  /**
   * Poll the status until `done` says so, calling `onChange` whenever the phase, stage or progress
   * moves (and at least every `heartbeatMs` during long waits such as soaks).
   */
  async waitFor(
    workflowId: string,
    done: (status: RemediationStatus) => boolean,
    options: { timeoutMs?: number; onChange?: (status: RemediationStatus, previous?: RemediationStatus) => void; heartbeatMs?: number } = {},
  ): Promise<RemediationStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    let previous: RemediationStatus | undefined;
    let lastReport = 0;
    for (;;) {
      const status = await this.status(workflowId);
      const moved =
        !previous ||
        previous.phase !== status.phase ||
        previous.stage !== status.stage ||
        previous.results.length !== status.results.length ||
        previous.decisionsReceived !== status.decisionsReceived;
      if (options.onChange && (moved || Date.now() - lastReport >= (options.heartbeatMs ?? 5_000))) {
        options.onChange(status, previous);
        lastReport = Date.now();
      }
      previous = status;
      if (done(status)) return status;
      if (status.phase === 'done') {
        throw new CommandFailed(`${workflowId} ended ${status.outcome ?? ''} before the awaited state${status.outcomeReason ? `: ${status.outcomeReason}` : ''}`);
      }
      if (Date.now() > deadline) throw new CommandFailed(`timed out waiting for ${workflowId} (phase ${status.phase})`);
      await sleep(300);
    }
  }
}
