/**
 * The sandbox tells the truth: the estate `countersign dev --seed` seeds for stale-iam-users, with its
 * active keys kept in use as runDev does, planned by the README's example command through the built
 * CLI some seconds after seeding (as a person would run it): the active users stay active however
 * late the run, the exempt name of the example exists and is honoured, and an exempt name that
 * matches no user is a warning note in the plan.
 */
import type { KindPlan } from '../../common/plan';
import type { ScenarioContext } from '../../sandbox/scenarios';
import { createScenarioContext } from '../../sandbox/scenarios';
import type { StaleIamUsersState } from '../../sandbox/scenarios/stale-iam-users';
import { keepKeysInUse, staleIamUsers } from '../../sandbox/scenarios/stale-iam-users';
import { ownStderr, runCli } from '../harness/cli';
import type { TestStack } from '../harness/stack';
import { startTestStack } from '../harness/stack';

let stack: TestStack;
let context: ScenarioContext & { close(): void };
let state: StaleIamUsersState;
let stopUsingKeys: () => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startTestStack();
  context = createScenarioContext(stack.moto.endpoint);
  state = await staleIamUsers.seed(context);
  stopUsingKeys = keepKeysInUse(state, stack.moto.endpoint);
});
afterAll(async () => {
  stopUsingKeys?.();
  context?.close();
  await stack?.stop();
});

describe('the seeded sandbox and the README example', () => {
  it('plans only the idle users long after seeding, honours the example exempt name, and warns about one that matches no user', async () => {
    // Later than maxIdle=2s after the seed's own use of the keys: without runDev's keep-alive the
    // active users would be planned for removal here.
    await sleep(4_000);
    const { member, estate } = state;
    const exempt = 'demo-idle-ci-bot';
    expect(estate.idle).toContain(exempt);
    const result = await runCli(
      [
        'start', 'stale-iam-users', '--account', member.id,
        '--param', 'maxIdle=2s', '--param', 'soak=30s', '--param', `exempt=${exempt},ci-bot`,
        '--dry-run', '--json', '--id-suffix', stack.uniqueSuffix(),
      ],
      stack.env,
    );
    expect({ code: result.code, stderr: ownStderr(result.stderr).filter((l) => /countersign:/.test(l)) }).toEqual({ code: 0, stderr: [] });
    const plan = (JSON.parse(result.stdout) as { status?: { plan?: KindPlan } }).status?.plan;
    expect(plan).toBeDefined();
    const arn = (user: string) => `arn:aws:iam::${member.id}:user/${user}`;

    const deleted = (plan?.changes ?? []).filter((c) => c.action === 'delete-user').map((c) => c.resource).sort();
    expect(deleted).toEqual(estate.idle.filter((u) => u !== exempt).map(arn).sort());

    const leftAlone = new Map((plan?.leftAlone ?? []).map((l) => [l.resource, l.reason]));
    for (const user of estate.active) expect(leftAlone.get(arn(user))).toBe('active');
    expect(leftAlone.get(arn(exempt))).toBe('exempt');
    expect(leftAlone.get(arn(estate.exempt))).toBe('exempt');

    expect(plan?.notes).toContain('warning: exempt name ci-bot matches no user');
    expect((plan?.notes ?? []).filter((n) => n.includes(exempt))).toEqual([]);
  });
});
