/**
 * The client side of a remediation: start, read status, send decisions and confirm them, list, and
 * wait with progress. Used by the CLI, the demo and the tests, so all three speak the same contract.
 */
import type { Client, WorkflowExecutionInfo, WorkflowHandle } from '@temporalio/client';
import { ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { KINDS } from '../common/kinds';
import type { KindName } from '../common/kinds';
import type { DecideReply, DecideSignal, Outcome, Phase, RefusedDecision, RecordedDecision, RemediationInput, RemediationStatus } from '../common/messages';
import { decideUpdate, detailsQuery, statusQuery, workflowIdFor } from '../common/messages';
import type { DetailsRequest, OrganizationInput } from '../common/messages';
import { ACCOUNT_ATTRIBUTE, KIND_ATTRIBUTE, OUTCOME_ATTRIBUTE, PHASE_ATTRIBUTE, REQUESTED_BY_ATTRIBUTE, queryLiteral } from '../common/search-attributes';
import { CommandFailed } from './errors';
import type { SignOptions } from '../activities/approver-proof';
import { signApproverProof } from '../activities/approver-proof';

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
  account?: string;
  status: string;
  phase: string;
  outcome?: string;
  requestedBy?: string;
  startTime: string;
  closeTime?: string;
}

export interface ListFilter {
  kind?: KindName;
  phase?: Phase;
  account?: string;
  outcome?: Outcome;
  requestedBy?: string;
  limit?: number;
}

export interface ListResult {
  /** Newest first (by start time). */
  runs: ListedRun[];
  /**
   * `server`: the filters ran as a visibility query on Countersign's search attributes. `client`: the
   * namespace has no such attributes, so every Countersign run was read and filtered here (on the memo).
   */
  filtered: 'server' | 'client';
}

/** A run as addressed by the CLI: a workflow id, and a run id or (absent) the latest run of that id. */
export interface RunStatus {
  runId: string;
  status: RemediationStatus;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The server's refusal of a search attribute its namespace has not registered (on start or in a query). */
function unknownSearchAttribute(err: unknown): boolean {
  if (!(err instanceof ServiceError)) return false;
  const cause = err.cause as { code?: number; details?: string; message?: string } | undefined;
  const text = `${cause?.details ?? cause?.message ?? ''} ${err.message}`;
  // gRPC INVALID_ARGUMENT: "no mapping defined for search attribute X", "'X' is not a valid search attribute"
  return cause?.code === 3 && /search attribute/i.test(text) && /Countersign/.test(text);
}

function memoString(memo: Record<string, unknown>, key: string): string | undefined {
  const v = memo[key];
  return typeof v === 'string' ? v : undefined;
}

function listedRun(w: WorkflowExecutionInfo): ListedRun {
  const memo = (w.memo ?? {}) as Record<string, unknown>;
  const attrs = w.typedSearchAttributes;
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    kind: attrs.get(KIND_ATTRIBUTE) ?? memoString(memo, 'kind') ?? w.type,
    account: attrs.get(ACCOUNT_ATTRIBUTE) ?? memoString(memo, 'account'),
    status: w.status.name,
    phase: attrs.get(PHASE_ATTRIBUTE) ?? memoString(memo, 'phase') ?? (w.status.name === 'RUNNING' ? 'running' : 'done'),
    outcome: attrs.get(OUTCOME_ATTRIBUTE) ?? memoString(memo, 'outcome'),
    requestedBy: attrs.get(REQUESTED_BY_ATTRIBUTE) ?? memoString(memo, 'requestedBy'),
    startTime: w.startTime.toISOString(),
    closeTime: w.closeTime?.toISOString(),
  };
}


export class RemediationClient {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async start(request: StartRequest): Promise<{ workflowId: string; runId: string }> {
    const workflowId = workflowIdFor(request.kind, request.account, request.idSuffix);
    const { idSuffix: _ignored, ...input } = request;
    return this.launch(KINDS[request.kind].workflowType, workflowId, input satisfies RemediationInput, {
      kind: request.kind,
      account: request.account,
      requestedBy: request.requestedBy,
      memo: { kind: request.kind, requestedBy: request.requestedBy, account: request.account, dryRun: request.dryRun === true, phase: 'starting' },
      running: `a ${request.kind} remediation for account ${request.account} is already running (${workflowId}); watch it with \`countersign status ${workflowId}\`, or reject it before starting another`,
    });
  }

  /**
   * Start an organization-wide run: the kind in every selected account, one consolidated plan, one
   * approval (workflows/organization.ts). Workflow id `<kind>/organization[/<suffix>]`.
   */
  async startOrganization(request: OrganizationInput & { kind: KindName; idSuffix?: string }): Promise<{ workflowId: string; runId: string }> {
    const workflowId = workflowIdFor(request.kind, 'organization', request.idSuffix);
    const { idSuffix: _ignored, ...input } = request;
    return this.launch('organizationRemediation', workflowId, input satisfies OrganizationInput, {
      kind: request.kind,
      account: 'organization',
      requestedBy: request.requestedBy,
      memo: { kind: request.kind, requestedBy: request.requestedBy, account: 'organization', accounts: request.accounts, dryRun: request.dryRun === true, phase: 'starting' },
      running: `an organization-wide ${request.kind} run is already running as ${workflowId}; \`countersign status ${workflowId}\` shows it (or use --id-suffix for a separate one)`,
    });
  }

  /**
   * Start a workflow with Countersign's search attributes — or, on a namespace without them, without
   * (the engine then keeps to the memo, and `list` filters client-side). A second run of the same id
   * fails with `running`.
   */
  private async launch(
    workflowType: string,
    workflowId: string,
    input: RemediationInput | OrganizationInput,
    meta: { kind: string; account: string; requestedBy: string; memo: Record<string, unknown>; running: string },
  ): Promise<{ workflowId: string; runId: string }> {
    const typedSearchAttributes: SearchAttributePair[] = [
      { key: KIND_ATTRIBUTE, value: meta.kind },
      { key: ACCOUNT_ATTRIBUTE, value: meta.account },
      { key: REQUESTED_BY_ATTRIBUTE, value: meta.requestedBy },
      { key: PHASE_ATTRIBUTE, value: 'starting' },
    ];
    const startWith = (searchAttributes: SearchAttributePair[] | undefined) =>
      this.client.workflow.start(workflowType, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        memo: meta.memo,
        ...(searchAttributes ? { typedSearchAttributes: searchAttributes } : {}),
      });
    try {
      const handle = await startWith(typedSearchAttributes).catch((err: unknown) => {
        if (unknownSearchAttribute(err)) return startWith(undefined);
        throw err;
      });
      return { workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CommandFailed(meta.running);
      throw err;
    }
  }

  private handle(workflowId: string, runId?: string): WorkflowHandle {
    return this.client.workflow.getHandle(workflowId, runId);
  }

  /** The status: the live query while running, the recorded result once closed (no worker needed). */
  async status(workflowId: string, runId?: string): Promise<RemediationStatus> {
    return (await this.runStatus(workflowId, runId)).status;
  }

  /**
   * Every item of one of a run's lists (changes, left alone, results, checks), page by page through the
   * `details` query, however long the list: the status answer lists only the first or newest 200.
   */
  async *details(workflowId: string, runId: string, list: DetailsRequest['list']): AsyncGenerator<unknown> {
    const handle = this.handle(workflowId, runId);
    for (let offset = 0; ; ) {
      const page = await handle.query(detailsQuery, { list, offset });
      for (const item of page.items) yield item;
      offset += page.items.length;
      if (page.items.length === 0 || offset >= page.total) return;
    }
  }

  /**
   * The status of one run of a workflow id — `runId`, or the latest run without it (a workflow id is
   * reused once its run closed) — with the run id it belongs to.
   */
  async runStatus(workflowId: string, runId?: string): Promise<RunStatus> {
    let description;
    try {
      description = await this.handle(workflowId, runId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new CommandFailed(
          runId
            ? `no run ${runId} of workflow id ${workflowId}; \`countersign list\` shows the runs with their run ids`
            : `no remediation with workflow id ${workflowId}; \`countersign list\` shows them`,
        );
      }
      throw err;
    }
    // Pinned to the described run, so the status cannot come from a run started in between.
    const handle = this.handle(workflowId, description.runId);
    if (description.status.name === 'RUNNING') return { runId: description.runId, status: await handle.query(statusQuery) };
    if (description.status.name === 'COMPLETED') return { runId: description.runId, status: (await handle.result()) as RemediationStatus };
    throw new CommandFailed(
      `${workflowId} (run ${description.runId}) ended ${description.status.name.toLowerCase()} without a result; see \`temporal workflow show --workflow-id ${workflowId} --run-id ${description.runId}\``,
    );
  }

  /**
   * Send a decision through the `decide` update: the workflow answers at once whether it accepted or
   * refused it (and records either in history). The full record is then read from the status.
   *
   * When the run's policy requires proven identity (`identity: "aws-sts"`), or `signing.sign` is set,
   * the decision carries a proof: an sts:GetCallerIdentity request signed — not sent — with the
   * approver's AWS credentials (`signing`: profile, explicit credentials, else the SDK's default
   * chain), its signed headers binding this workflow id, run id and the decision's plan digest.
   * `signing.sign: false` never signs (the workflow then refuses the decision if a proof is required).
   */
  async decide(
    workflowId: string,
    decision: DecideSignal,
    timeoutMs = 30_000,
    signing: SignOptions & { sign?: boolean; endpoint?: string; region?: string } = {},
  ): Promise<DecisionReply> {
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
      // Pinned to the described run: a proof is bound to its run id.
      const run = this.handle(workflowId, description.runId);
      let sent = decision;
      const mustSign =
        signing.sign ?? (decision.proof === undefined && (await Promise.race([run.query(statusQuery), timedOut])).policy?.identity === 'aws-sts');
      if (mustSign && decision.proof === undefined) {
        const proof = await signApproverProof(
          { workflowId, runId: description.runId, planDigest: decision.planDigest },
          { ...signing, region: signing.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1', endpoint: signing.endpoint ?? process.env.AWS_ENDPOINT_URL },
        ).catch((err: unknown) => {
          throw new CommandFailed(`could not sign a proof of your AWS identity (${(err as Error).message}); check your AWS credentials or --profile`);
        });
        sent = { ...decision, proof };
      }
      reply = await Promise.race([run.executeUpdate(decideUpdate, { args: [sent] }), timedOut]);
    } finally {
      clearTimeout(timer);
    }
    const status = await this.status(workflowId);
    if (reply.accepted) {
      const recorded = status.decisions.find((d) => d.seq === reply.seq);
      if (recorded) return { accepted: true, decision: recorded, status };
      const { proof: _proof, ...sentDecision } = decision;
      return { accepted: true, decision: { ...sentDecision, approver: decision.approver ?? '(verified)', seq: reply.seq, at: new Date().toISOString() }, status };
    }
    const refused = status.refused.find((r) => r.seq === reply.seq);
    return { accepted: false, refusal: refused ?? { reason: reply.reason ?? 'refused', message: reply.message ?? 'refused' }, status };
  }

  /**
   * Every run of Countersign's kinds, running and finished (each run of a reused workflow id on its
   * own), newest first. The filters are a visibility query on Countersign's search attributes, so
   * the server does the filtering; a namespace without them gets the WorkflowType query and the
   * filters applied here instead (`filtered: 'client'`).
   */
  async list(filter: ListFilter = {}): Promise<ListResult> {
    const limit = filter.limit ?? 100;
    const types = filter.kind ? [KINDS[filter.kind].workflowType] : Object.values(KINDS).map((k) => k.workflowType);
    const byType = `WorkflowType IN (${types.map(queryLiteral).join(', ')})`;
    const clauses = [
      // Runs started before the attributes existed carry none: the workflow type stands for the kind.
      filter.kind ? `(${KIND_ATTRIBUTE.name} = ${queryLiteral(filter.kind)} OR ${KIND_ATTRIBUTE.name} IS NULL)` : undefined,
      filter.phase ? `${PHASE_ATTRIBUTE.name} = ${queryLiteral(filter.phase)}` : undefined,
      filter.account ? `${ACCOUNT_ATTRIBUTE.name} = ${queryLiteral(filter.account)}` : undefined,
      filter.outcome ? `${OUTCOME_ATTRIBUTE.name} = ${queryLiteral(filter.outcome)}` : undefined,
      filter.requestedBy ? `${REQUESTED_BY_ATTRIBUTE.name} = ${queryLiteral(filter.requestedBy)}` : undefined,
    ].filter((c): c is string => c !== undefined);
    try {
      return { runs: await this.query([byType, ...clauses].join(' AND '), limit, () => true), filtered: 'server' };
    } catch (err) {
      if (clauses.length === 0 || !unknownSearchAttribute(err)) throw err;
    }
    const matches = (r: ListedRun) =>
      (!filter.kind || r.kind === filter.kind) &&
      (!filter.phase || r.phase === filter.phase) &&
      (!filter.account || r.account === filter.account) &&
      (!filter.outcome || r.outcome === filter.outcome) &&
      (!filter.requestedBy || r.requestedBy === filter.requestedBy);
    return { runs: await this.query(byType, limit, matches), filtered: 'client' };
  }

  private async query(query: string, limit: number, keep: (run: ListedRun) => boolean): Promise<ListedRun[]> {
    const runs: ListedRun[] = [];
    // Visibility returns open runs first, then closed ones by close time (SQL visibility has no ORDER
    // BY); the page read is put in start order here.
    for await (const w of this.client.workflow.list({ query })) {
      const run = listedRun(w);
      if (!keep(run)) continue;
      runs.push(run);
      if (runs.length >= limit) break;
    }
    return runs.sort((a, b) => b.startTime.localeCompare(a.startTime) || a.workflowId.localeCompare(b.workflowId));
  }

  /**
   * Poll the status until `done` says so, calling `onChange` whenever the phase, stage or progress
   * moves (and at least every `heartbeatMs` during long waits such as soaks).
   */
  async waitFor(
    workflowId: string,
    done: (status: RemediationStatus) => boolean,
    options: { timeoutMs?: number; onChange?: (status: RemediationStatus, previous?: RemediationStatus) => void; heartbeatMs?: number; runId?: string } = {},
  ): Promise<RemediationStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    let previous: RemediationStatus | undefined;
    let lastReport = 0;
    for (;;) {
      const status = await this.status(workflowId, options.runId);
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
