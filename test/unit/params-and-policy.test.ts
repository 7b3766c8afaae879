import { formatDuration, parseDuration, tryParseDuration } from '../../common/duration';
import { ParamError, resolveParams } from '../../common/kinds';
import { effectivePolicy, parseApprovalPolicy, principalMatches } from '../../common/policy';

describe('durations', () => {
  it('parses Temporal duration strings and rejects anything else', () => {
    expect(parseDuration('90d')).toBe(90 * 86_400_000);
    expect(parseDuration('2s')).toBe(2_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(tryParseDuration('banana')).toBeUndefined();
    expect(tryParseDuration('90')).toBeUndefined();
    expect(() => parseDuration('-1d', 'maxIdle')).toThrow(/maxIdle must be a duration/);
    expect(formatDuration(93_784_000)).toBe('1d 2h 3m 4s');
  });
});

describe('stale-iam-users parameters', () => {
  it('fills in defaults', () => {
    expect(resolveParams('stale-iam-users', {})).toEqual({ maxIdle: '90d', soak: '14d', exempt: '' });
  });
  it('rejects a bad duration, an unknown parameter and a bad user name with one-line reasons', () => {
    expect(() => resolveParams('stale-iam-users', { maxIdle: 'banana' })).toThrow(new ParamError('maxIdle must be a positive duration such as 90d, 12h or 2s (got "banana")'));
    expect(() => resolveParams('stale-iam-users', { maxidle: '9d' })).toThrow(/unknown parameter "maxidle".*maxIdle, soak, exempt/);
    expect(() => resolveParams('stale-iam-users', { exempt: 'ok,not ok' })).toThrow(/"not ok" is not a valid IAM name/);
    expect(() => resolveParams('stale-iam-users', { soak: '0s' })).toThrow(/positive/);
  });
});

describe('approval policy', () => {
  it('resolves per-kind approvers and quorum with "*" as the default, and keeps built-in protections', () => {
    const file = parseApprovalPolicy(
      JSON.stringify({ approvers: { '*': ['alice', 'bob'], scp: ['cto', 'ciso'] }, quorum: { '*': 2 }, protectedPrincipals: ['arn:aws:iam::*:user/ops-*'] }),
      'p.json',
    );
    const policy = effectivePolicy(file, 'stale-iam-users', 'p.json');
    expect(policy).toMatchObject({ approvers: ['alice', 'bob'], quorum: 2, approvalTimeout: '7d', maxChanges: 200 });
    expect(policy.protectedPrincipals).toEqual(expect.arrayContaining(['arn:aws:iam::*:user/ops-*', 'arn:aws:iam::*:user/break-glass*']));
  });
  it('lists each approver once however their name is cased, and counts them so for the quorum', () => {
    const file = parseApprovalPolicy(JSON.stringify({ approvers: { '*': ['Dana', 'dana', 'sam'] }, quorum: { '*': 2 } }), 'p.json');
    expect(effectivePolicy(file, 'stale-iam-users', 'p.json').approvers).toEqual(['Dana', 'sam']);
    expect(() => parseApprovalPolicy(JSON.stringify({ approvers: { '*': ['Dana', 'dana'] }, quorum: { '*': 2 } }), 'p.json')).toThrow(/only 1 approver/);
  });

  it('names the offending field of an invalid policy', () => {
    expect(() => parseApprovalPolicy('{"approvalTimeout":"soon"}', 'p.json')).toThrow(/p.json is invalid at approvalTimeout/);
    expect(() => parseApprovalPolicy('{"quorum":{"*":3},"approvers":{"*":["a","b"]}}', 'p.json')).toThrow(/quorum for "\*" is 3 but only 2/);
    expect(() => parseApprovalPolicy('{"approver":{}}', 'p.json')).toThrow(/p.json is invalid/);
    expect(() => parseApprovalPolicy('{nope', 'p.json')).toThrow(/not valid JSON/);
  });
  it('matches protected principal globs on whole ARNs', () => {
    expect(principalMatches('arn:aws:iam::*:user/break-glass*', 'arn:aws:iam::123456789012:user/break-glass-admin')).toBe(true);
    expect(principalMatches('arn:aws:iam::*:user/break-glass*', 'arn:aws:iam::123456789012:user/not-break-glass')).toBe(false);
    expect(principalMatches('arn:aws:iam::*:role/a.b', 'arn:aws:iam::1:role/aXb')).toBe(false);
  });
  it('fails closed: protects across IAM paths, letter case and partitions', () => {
    const pattern = 'arn:aws:iam::*:user/break-glass*';
    expect(principalMatches(pattern, 'arn:aws:iam::123456789012:user/emergency/break-glass-admin')).toBe(true);
    expect(principalMatches(pattern, 'arn:aws:iam::123456789012:user/Break-Glass-Admin')).toBe(true);
    expect(principalMatches(pattern, 'arn:aws-us-gov:iam::123456789012:user/break-glass-admin')).toBe(true);
    expect(principalMatches('arn:aws:iam::*:role/aws-service-role/*', 'arn:aws:iam::1:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport')).toBe(true);
    expect(principalMatches(pattern, 'arn:aws:iam::123456789012:user/emergency/alice')).toBe(false);
  });
  it("checks every kind's quorum against the approvers it falls back to", () => {
    expect(() => parseApprovalPolicy('{"approvers":{"scp":["a"]},"quorum":{"*":2}}', 'p.json')).toThrow(/quorum for "scp" is 2 but only 1/);
  });
});
