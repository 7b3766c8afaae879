import { canonicalJson, planDigest, planDigestMatches, sealPlan } from '../../common/digest';
import type { PlanBody } from '../../common/plan';

const body: PlanBody = {
  kind: 'stale-iam-users',
  account: '123456789012',
  region: 'us-east-1',
  params: { maxIdle: '90d', soak: '14d', exempt: '' },
  createdAt: '2026-11-22T00:00:00.000Z',
  stages: [{ name: 'disable', description: 'd' }],
  changes: [],
  leftAlone: [],
  leftAloneNotListed: 0,
  notes: [],
};

describe('plan digest', () => {
  it('is the SHA-256 of canonical JSON, independent of key order', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1, y: 2 } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}');
    const { notes, ...rest } = body;
    const reordered = { notes, ...rest } as PlanBody;
    expect(planDigest(reordered)).toBe(planDigest(body));
    expect(planDigest(body)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes when anything in the plan changes, and detects tampering', () => {
    const sealed = sealPlan(body);
    expect(planDigestMatches(sealed)).toBe(true);
    expect(planDigest({ ...body, params: { ...body.params, maxIdle: '89d' } })).not.toBe(sealed.digest);
    expect(planDigestMatches({ ...sealed, account: '210987654321' })).toBe(false);
  });
});
