/**
 * Saved histories of real runs (test/replay/*.json) must replay on the current workflow code: a change
 * that would break running workflows fails here. There is one of every kind of the catalogue for every
 * outcome RECORDED_OUTCOMES names, and one organization-wide run; `npm run record:histories`
 * (sandbox/record-histories.ts) records them (`-- --kind K [--outcome O]` re-records some).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { KINDS } from '../../common/kinds';
import type { RemediationStatus } from '../../common/messages';
import { ORGANIZATION, RECORDED_OUTCOMES, REPLAY_DIR, fixtureName, recordedWorkflowId } from '../../sandbox/record-histories';
import { installLogging } from '../../worker';
import { createPino } from '../../worker/logger';

const kinds = Object.keys(KINDS) as (keyof typeof KINDS)[];
/** Every fixture there must be: each kind × each outcome, and the organization-wide run completed. */
const expected = [...kinds.flatMap((kind) => RECORDED_OUTCOMES.map((outcome) => ({ kind: kind as string, outcome: outcome as string }))), { kind: ORGANIZATION, outcome: 'completed' }];
const files = readdirSync(REPLAY_DIR).filter((f) => f.endsWith('.json')).sort();

/** The kind (or `organization`) and outcome a fixture's name claims. */
function claimed(file: string): { kind: string; outcome: string } | undefined {
  return expected.find((e) => fixtureName(e.kind, e.outcome) === file);
}

function load(file: string): unknown {
  // The JSON of `temporal workflow show --output json`; runReplayHistory converts it.
  return JSON.parse(readFileSync(path.join(REPLAY_DIR, file), 'utf8'));
}

const decode = <T>(payload: Payload | null | undefined): T => defaultPayloadConverter.fromPayload(payload as Payload) as T;

/** What a history says of its run: the workflow type, the memo's kind and account, and the completion result. */
function recorded(history: History): { workflowType: string; kind: string; account: string; result?: RemediationStatus } {
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (!started) throw new Error('the history does not begin with WorkflowExecutionStarted');
  const memo = started.memo?.fields ?? {};
  const completed = events.at(-1)?.workflowExecutionCompletedEventAttributes;
  return {
    workflowType: started.workflowType?.name ?? '',
    kind: decode<string>(memo.kind),
    account: decode<string>(memo.account),
    ...(completed ? { result: decode<RemediationStatus>(completed.result?.payloads?.[0]) } : {}),
  };
}

/** The workflow id the run had (the organization run derives its children's ids from its own). */
function workflowIdOf(file: string, history: History): string {
  const { kind, account } = recorded(history);
  return recordedWorkflowId(kind, account, claimed(file)?.outcome ?? 'unknown');
}

const replay = (history: unknown, workflowId: string) =>
  Worker.runReplayHistory({ workflowBundle: { codePath: process.env.COUNTERSIGN_TEST_WORKFLOW_BUNDLE! } }, history, workflowId);

beforeAll(() => {
  installLogging(createPino('error'));
});

it('has a saved history of every kind for every outcome', () => {
  const missing = expected.filter((e) => !existsSync(path.join(REPLAY_DIR, fixtureName(e.kind, e.outcome))));
  if (missing.length > 0) {
    const byKind = new Map<string, string[]>();
    for (const m of missing) byKind.set(m.kind, [...(byKind.get(m.kind) ?? []), m.outcome]);
    const commands = [...byKind].map(([kind, outcomes]) =>
      outcomes.length === (kind === ORGANIZATION ? 1 : RECORDED_OUTCOMES.length)
        ? `npm run record:histories -- --kind ${kind}`
        : outcomes.map((o) => `npm run record:histories -- --kind ${kind} --outcome ${o}`).join('\n  '),
    );
    throw new Error(`no saved history ${missing.map((m) => `test/replay/${fixtureName(m.kind, m.outcome)}`).join(', ')}; record with:\n  ${commands.join('\n  ')}`);
  }
});

it('holds only histories named <kind>-<outcome>.json', () => {
  expect(files.filter((f) => !claimed(f))).toEqual([]);
});

describe.each(files)('%s', (file) => {
  it('replays without non-determinism', async () => {
    const json = load(file);
    await expect(replay(json, workflowIdOf(file, historyFromJSON(json)))).resolves.toBeUndefined();
  });

  it('is a run of the kind and outcome its name says', () => {
    const name = claimed(file);
    const run = recorded(historyFromJSON(load(file)));
    expect(name).toBeDefined();
    expect(run.kind === name!.kind || name!.kind === ORGANIZATION).toBe(true);
    expect(run.workflowType).toBe(name!.kind === ORGANIZATION ? 'organizationRemediation' : KINDS[name!.kind as keyof typeof KINDS].workflowType);
    expect(run.result?.outcome).toBe(name!.outcome);
  });
});

describe('the replay check', () => {
  const file = fixtureName(kinds[0]!, 'completed');

  type JsonEvent = { eventType: string; activityTaskScheduledEventAttributes?: { activityId: string; activityType: { name: string } } };
  const firstScheduled = (history: { events: JsonEvent[] }) => {
    const event = history.events.find((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')?.activityTaskScheduledEventAttributes;
    if (!event) throw new Error(`${file} schedules no activity`);
    return event;
  };

  it.each([
    ['an activity the code does not schedule', (e: NonNullable<JsonEvent['activityTaskScheduledEventAttributes']>) => (e.activityType.name = 'notAnActivityOfThisWorkflow')],
    ['an activity id the code does not use', (e: NonNullable<JsonEvent['activityTaskScheduledEventAttributes']>) => (e.activityId = `${e.activityId}-moved`)],
  ])('fails on a history with %s', async (_what, alter) => {
    const history = load(file) as { events: JsonEvent[] };
    const workflowId = workflowIdOf(file, historyFromJSON(history));
    await expect(replay(history, workflowId)).resolves.toBeUndefined();
    alter(firstScheduled(history));
    await expect(replay(history, workflowId)).rejects.toThrow(DeterminismViolationError);
  });
});
