/**
 * The catalogue (common/kinds.ts) and what the worker registers agree: every kind's workflow type is
 * exported by workflows/, and every activity its definition (workflows/<kind>.ts) calls is registered
 * by activities/ — so a kind cannot ship with a typo that only shows when a run reaches that step.
 */
import { createActivities } from '../../activities';
import { AwsClients } from '../../activities/aws/clients';
import type { KindParams } from '../../common/kinds';
import { kindNames, kindSpec, resolveKindParams } from '../../common/kinds';
import * as workflows from '../../workflows';
import type { RemediationDefinition } from '../../workflows/lifecycle';

const aws = new AwsClients({ region: 'us-east-1', maxAttempts: 1, accountRole: 'OrganizationAccountAccessRole' });
const registered = new Set(Object.keys(createActivities({ aws })));
afterAll(() => aws.destroy());

function activityNames(def: RemediationDefinition): string[] {
  return [
    def.plan.name,
    def.verify.name,
    ...(def.snapshot ? [def.snapshot.name] : []),
    ...Object.values(def.apply).map((a) => a.name),
    ...Object.values(def.rollback ?? {}).map((a) => a.name),
  ];
}

describe.each(kindNames())('catalogue kind %s', (kind) => {
  const spec = kindSpec(kind);

  it('has its workflow type exported by workflows/', () => {
    expect(typeof (workflows as Record<string, unknown>)[spec.workflowType]).toBe('function');
  });

  it('calls only activities the worker registers, plus the engine\'s own', async () => {
    const { definition } = (await import(`../../workflows/${kind}`)) as { definition: RemediationDefinition };
    expect(definition).toBeDefined();
    const missing = activityNames(definition).filter((name) => !registered.has(name));
    expect(missing).toEqual([]);
    for (const engineActivity of ['loadApprovalPolicy', 'resolveTarget']) expect(registered.has(engineActivity)).toBe(true);
  });

  it('declares every parameter with a description, and its defaults pass its own schema', () => {
    for (const [name, param] of Object.entries(spec.params)) {
      expect(`${name}: ${param.description}`).toMatch(/: \S/);
      if (param.default !== undefined) expect(param.schema.safeParse(param.default).success).toBe(true);
    }
  });
});

it('every workflow exported by workflows/ belongs to a catalogue kind (or is the organization-wide run of any kind)', () => {
  const types = new Set([...kindNames().map((k) => kindSpec(k).workflowType), 'organizationRemediation']);
  for (const [name, value] of Object.entries(workflows)) if (typeof value === 'function') expect(types.has(name)).toBe(true);
});

it('types an optional parameter as possibly absent, and a defaulted one as always there', () => {
  // Compile-time checks (npm test type-checks tests): these assignments fail to compile if the types drift.
  const homeRegion: KindParams<'org-trail'>['homeRegion'] = undefined;
  const soak: KindParams<'stale-iam-users'>['soak'] = '14d';
  // @ts-expect-error a defaulted parameter is never undefined
  const never: KindParams<'stale-iam-users'>['soak'] = undefined;
  expect([homeRegion, soak, never]).toEqual([undefined, '14d', undefined]);
  expect(resolveKindParams('org-trail', { bucket: 'logs-bucket' }).homeRegion).toBeUndefined();
});
