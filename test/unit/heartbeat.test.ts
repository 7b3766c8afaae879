/**
 * Heartbeats (activities/heartbeat.ts) in an activity context (MockActivityEnvironment records what the
 * activity hands the SDK): throttled to one per HEARTBEAT_EVERY_MS, the newest always sent in the end.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { HEARTBEAT_EVERY_MS, checkpoint, keepAlive, withPeriodicHeartbeat } from '../../activities/heartbeat';

const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recording(): { env: MockActivityEnvironment; beats: unknown[] } {
  const env = new MockActivityEnvironment({}, { logger: quiet });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  return { env, beats };
}

it('hands the SDK one heartbeat per interval however often the activity beats, and then the newest', async () => {
  const { env, beats } = recording();
  await env.run(async () => {
    for (let i = 1; i <= 200; i++) checkpoint({ done: i });
    expect(beats).toEqual([{ checkpoint: { done: 1 } }]);
    await sleep(HEARTBEAT_EVERY_MS + 200);
  });
  expect(beats).toEqual([{ checkpoint: { done: 1 } }, { checkpoint: { done: 200 } }]);
});

it('keeps the checkpoint in a later progress beat', async () => {
  const { env, beats } = recording();
  await env.run(async () => {
    checkpoint({ done: 3 });
    await sleep(HEARTBEAT_EVERY_MS + 50);
    keepAlive({ change: 'c/4' });
  });
  expect(beats.at(-1)).toEqual({ checkpoint: { done: 3 }, progress: { change: 'c/4' } });
});

it('sends a held-back heartbeat when the activity ends, so its last progress is on the server', async () => {
  const { env, beats } = recording();
  await env.run(() =>
    withPeriodicHeartbeat(async () => {
      for (let i = 1; i <= 10; i++) checkpoint({ done: i });
      throw new Error('the attempt fails');
    }),
  ).catch(() => undefined);
  expect(beats).toEqual([{ checkpoint: { done: 1 } }, { checkpoint: { done: 10 } }]);
});
