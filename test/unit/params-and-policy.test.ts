import { formatDuration, parseDuration, tryParseDuration } from '../../common/duration';
import { ParamError, resolveKindParams } from '../../common/kinds';
import { arn, arnPatterns, choice, flag, integer, jsonDocument, orgIds, principalSelectors, resolveParams, text } from '../../common/params';
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
  it('fills in defaults and types the values', () => {
    expect(resolveKindParams('stale-iam-users', {})).toEqual({ maxIdle: '90d', soak: '14d', exempt: [] });
    expect(resolveKindParams('stale-iam-users', { exempt: 'ci-bot, backup,ci-bot' }).exempt).toEqual(['ci-bot', 'backup']);
  });
  it('rejects a bad duration, an unknown parameter and a bad user name with one-line reasons', () => {
    expect(() => resolveKindParams('stale-iam-users', { maxIdle: 'banana' })).toThrow(new ParamError('maxIdle must be a duration such as 90d, 12h or 2s (got "banana")'));
    expect(() => resolveKindParams('stale-iam-users', { maxidle: '9d' })).toThrow(/unknown parameter "maxidle".*maxIdle, soak, exempt/);
    expect(() => resolveKindParams('stale-iam-users', { exempt: 'ok,not ok' })).toThrow(/"not ok" is not a valid name/);
    expect(() => resolveKindParams('stale-iam-users', { soak: '0s' })).toThrow(/soak must be between 1s and 365d/);
  });
  it('refuses absurd durations that would overflow a date', () => {
    expect(() => resolveKindParams('stale-iam-users', { soak: '99999999999d' })).toThrow(/soak must be between/);
    expect(() => resolveKindParams('stale-iam-users', { maxIdle: '4000d' })).toThrow(/maxIdle must be between 1s and 3650d/);
  });
});

describe('parameter types for the next kinds', () => {
  const specs = {
    targets: orgIds({ description: 'waves', accepts: ['ou', 'account', 'root'] }),
    accounts: orgIds({ description: 'accounts', accepts: ['account'], allowAll: true, default: 'all' }),
    boundary: arn({ description: 'a policy', service: 'iam', optional: true }),
    policyFile: jsonDocument({ description: 'an SCP', maxChars: 60 }),
    mode: choice({ description: 'how', options: ['audit', 'enforce'] as const, default: 'audit' }),
    region: text({ description: 'where', label: 'REGION', pattern: /^[a-z]{2}-[a-z]+-\d$/, expected: 'an AWS region such as eu-west-1', optional: true }),
  };
  const doc = '{"Version":"2012-10-17","Statement":[]}';

  it('keeps the operator\'s order of targets and types every value', () => {
    const p = resolveParams('scp', specs, { targets: 'ou-ab12-abcdefgh, 111122223333,r-ab12', policyFile: doc });
    expect(p).toEqual({ targets: ['ou-ab12-abcdefgh', '111122223333', 'r-ab12'], accounts: ['all'], policyFile: { Version: '2012-10-17', Statement: [] }, mode: 'audit' });
  });
  it('refuses duplicates, malformed ids, a non-IAM ARN, invalid or oversized JSON, a missing required parameter', () => {
    expect(() => resolveParams('scp', specs, { targets: 'ou-ab12-abcdefgh,ou-ab12-abcdefgh', policyFile: doc })).toThrow(/listed twice/);
    expect(() => resolveParams('scp', specs, { targets: 'ou-x', policyFile: doc })).toThrow(/"ou-x" is not a valid target: expected an OU id \(ou-…\) or a 12-digit account id or the root id/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', accounts: '12345', policyFile: doc })).toThrow(/accounts "12345" is not a valid target: expected a 12-digit account id, or "all"/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', boundary: 'arn:aws:s3:::bucket', policyFile: doc })).toThrow(/boundary must be an iam ARN/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', policyFile: '{nope' })).toThrow(/policyFile is not valid JSON/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', policyFile: `{"a":"${'x'.repeat(80)}"}` })).toThrow(/over the limit of 60/);
    expect(() => resolveParams('scp', specs, { policyFile: doc })).toThrow(/scp needs the parameter targets/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', policyFile: doc, mode: 'yolo' })).toThrow(/mode must be one of audit, enforce/);
    expect(() => resolveParams('scp', specs, { targets: 'r-ab12', policyFile: doc, region: 'mars' })).toThrow(/region must be an AWS region such as eu-west-1 \(got "mars"\)/);
    expect(resolveParams('scp', specs, { targets: 'r-ab12', policyFile: doc, region: ' eu-west-1 ' }).region).toBe('eu-west-1');
  });
});

describe('bad input the declarations refuse whatever the kind (issue 10)', () => {
  const specs = {
    name: text({ description: 'a name', label: 'NAME', pattern: /^[\w-]{1,64}$/, expected: 'a name', optional: true }),
    any: arn({ description: 'any ARN', optional: true }),
    role: arn({ description: 'a role', service: 'iam', resource: 'role/', optional: true }),
    group: arn({ description: 'a log group', service: 'logs', resource: 'log-group:', optional: true }),
    exempt: arnPatterns({ description: 'never restricted' }),
    policyFile: jsonDocument({ description: 'a document', optional: true }),
  };
  it('refuses a control character anywhere in a value, naming the parameter, the character and where it is', () => {
    expect(() => resolveParams('k', specs, { name: 'ci-bot\n' })).toThrow(new ParamError('name contains a control character (U+000A) at position 7 of "ci-bot\\n"; give it as one line of printable text'));
    expect(() => resolveParams('k', specs, { name: 'a\u0007b' })).toThrow(/name contains a control character \(U\+0007\) at position 2/);
    expect(() => resolveParams('k', specs, { name: '\u0085x' })).toThrow(/U\+0085/);
    expect(() => resolveParams('k', specs, { name: 'x\u2028' })).toThrow(/U\+2028/);
    // Spaces around a value are still trimmed; a document read from a file spans lines.
    expect(resolveParams('k', specs, { name: ' ci-bot ', policyFile: '{\n  "a": 1\n}\n' })).toMatchObject({ name: 'ci-bot', policyFile: { a: 1 } });
  });
  it('names an unknown parameter as JSON, so a newline in it stays on the line', () => {
    expect(() => resolveParams('k', specs, { 'max\nIdle': '1d' })).toThrow(/^unknown parameter "max\\nIdle" for k/);
  });
  it('takes the AWS partitions only, and a resource type where one is declared', () => {
    expect(resolveParams('k', specs, { role: 'arn:aws-us-gov:iam::123456789012:role/ct' }).role).toBe('arn:aws-us-gov:iam::123456789012:role/ct');
    expect(resolveParams('k', specs, { role: 'arn:aws-iso-b:iam::123456789012:role/ct' }).role).toBe('arn:aws-iso-b:iam::123456789012:role/ct');
    expect(() => resolveParams('k', specs, { role: 'arn:aws-mars:iam::123456789012:role/ct' })).toThrow(/role must be an iam ARN of a role such as arn:aws:iam::123456789012:role\/… \(got "arn:aws-mars/);
    expect(() => resolveParams('k', specs, { any: 'arn:awsx:s3:::b' })).toThrow(/any must be an ARN such as/);
    expect(() => resolveParams('k', specs, { role: 'arn:aws:iam::123456789012:user/bob' })).toThrow(/role must be an iam ARN of a role/);
    expect(() => resolveParams('k', specs, { group: 'arn:aws:logs:us-east-1:123456789012:destination:x' })).toThrow(/group must be a logs ARN of a log-group such as arn:aws:logs:us-east-1:123456789012:log-group:…/);
    expect(resolveParams('k', specs, { group: 'arn:aws:logs:us-east-1:123456789012:log-group:ct:*' }).group).toBe('arn:aws:logs:us-east-1:123456789012:log-group:ct:*');
    expect(() => resolveParams('k', specs, { exempt: 'arn:aws-mars:iam::*:role/x' })).toThrow(/is not an IAM principal ARN pattern/);
    expect(resolveParams('k', specs, { exempt: 'arn:aws-cn:iam::*:role/x,arn:*:iam::*:role/y' }).exempt).toEqual(['arn:aws-cn:iam::*:role/x', 'arn:*:iam::*:role/y']);
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

describe('approval policy size', () => {
  it('de-duplicates approvers case-insensitively, keeping the first spelling and the order', () => {
    const file = parseApprovalPolicy(JSON.stringify({ approvers: { '*': ['Alice', 'bob', 'alice ', 'Carol', 'BOB'] } }), 'p.json');
    expect(effectivePolicy(file, 'k', 'p.json').approvers).toEqual(['Alice', 'bob', 'Carol']);
  });
  it('refuses an oversized approver list with a clear error', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => `approver-${i}`);
    expect(() => parseApprovalPolicy(JSON.stringify({ approvers: { '*': many } }), 'p.json')).toThrow(/invalid at approvers\.\*: at most 500 approvers per kind/);
  });
});

describe('parameter types for guardrails', () => {
  const specs = {
    allowRoot: flag({ description: 'attach to the root' }),
    batch: integer({ description: 'per wave', default: '10', min: 1, max: 100 }),
    exempt: arnPatterns({ description: 'never restricted' }),
    roles: principalSelectors({ description: 'which roles' }),
  };
  it('types flags, numbers, ARN patterns and selectors', () => {
    expect(resolveParams('k', specs, { allowRoot: 'TRUE', exempt: 'arn:aws:iam::*:role/break-glass*,arn:aws:iam::123456789012:user/ci', roles: '*,/teams/data/,app-role' })).toEqual({
      allowRoot: true,
      batch: 10,
      exempt: ['arn:aws:iam::*:role/break-glass*', 'arn:aws:iam::123456789012:user/ci'],
      roles: ['*', '/teams/data/', 'app-role'],
    });
  });
  it('refuses what is not one', () => {
    expect(() => resolveParams('k', specs, { allowRoot: 'yes' })).toThrow(/allowRoot must be true or false/);
    expect(() => resolveParams('k', specs, { batch: '0' })).toThrow(/batch must be a whole number from 1 to 100/);
    expect(() => resolveParams('k', specs, { batch: '2.5' })).toThrow(/batch must be a whole number/);
    expect(() => resolveParams('k', specs, { exempt: 'break-glass' })).toThrow(/is not an IAM principal ARN pattern/);
    expect(() => resolveParams('k', specs, { roles: 'teams/data' })).toThrow(/is not "\*", a name, or a path prefix/);
  });
  it('runs a document check of its own', () => {
    const doc = { policy: jsonDocument({ description: 'p', check: (d) => ((d as { Version?: string }).Version === '2012-10-17' ? undefined : 'needs "Version": "2012-10-17"') }) };
    expect(() => resolveParams('k', doc, { policy: '{}' })).toThrow(/policy needs "Version": "2012-10-17"/);
    expect(resolveParams('k', doc, { policy: '{"Version":"2012-10-17"}' }).policy).toEqual({ Version: '2012-10-17' });
  });
});
