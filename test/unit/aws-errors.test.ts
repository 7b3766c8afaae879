/**
 * The error classifier (docs/aws.md §6.3). Errors are built the way SDK v3 builds them: modelled
 * errors as their exception classes, unmodelled wire codes as the service base class with that name.
 */
import { ConcurrentModificationException as OrgConcurrent } from '@aws-sdk/client-organizations';
import { DeleteConflictException, IAMServiceException, LimitExceededException, NoSuchEntityException } from '@aws-sdk/client-iam';
import { ApplicationFailure } from '@temporalio/common';
import { classifyAwsError, isAwsError, toActivityFailure } from '../../activities/aws/errors';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode, requestId: 'req-1', attempts: 3 } });
const unmodelled = (name: string, status: number) =>
  new IAMServiceException({ name, $fault: status >= 500 ? 'server' : 'client', message: name, ...meta(status) });

describe('classifyAwsError', () => {
  it.each([
    ['Throttling', 400, 'throttle', true],
    ['ThrottlingException', 400, 'throttle', true],
    ['TooManyRequestsException', 400, 'throttle', true],
    ['ServiceFailureException', 500, 'transient', true],
    ['InternalFailure', 500, 'transient', true],
    ['EntityTemporarilyUnmodifiableException', 409, 'conflict', true],
    ['CredentialReportNotReadyException', 404, 'conflict', true],
    ['ExpiredToken', 403, 'expired-credentials', true],
    ['AccessDenied', 403, 'permanent', false],
    ['AccessDeniedException', 400, 'permanent', false],
    ['ValidationError', 400, 'permanent', false],
    ['MalformedPolicyDocumentException', 400, 'permanent', false],
    ['UnmodifiableEntityException', 400, 'permanent', false],
  ])('%s (HTTP %d) is %s', (name, status, category, retryable) => {
    const c = classifyAwsError(unmodelled(name, status));
    expect(c).toMatchObject({ name, category, retryable, httpStatusCode: status, requestId: 'req-1', attempts: 3 });
  });

  it("treats IAM's LimitExceededException as a permanent quota error although the SDK retries it as throttling", () => {
    const err = new LimitExceededException({ message: 'Cannot exceed quota for AccessKeysPerUser: 2', ...meta(409) });
    expect(classifyAwsError(err)).toMatchObject({ name: 'LimitExceededException', category: 'permanent', retryable: false });
  });

  it('retries concurrent modification as a conflict', () => {
    const conflict = classifyAwsError(new OrgConcurrent({ message: 'busy', ...meta(400) }));
    expect(conflict).toMatchObject({ category: 'conflict', retryable: true });
  });

  it('retries a 5xx without an AWS body from AWS, but not from moto, where it means "not implemented"', () => {
    const html = Object.assign(new Error('Deserialization error: <html>'), meta(500));
    expect(classifyAwsError(html)).toMatchObject({ category: 'transient', retryable: true });
    expect(classifyAwsError(html, { emulator: 'moto' })).toMatchObject({ category: 'unimplemented', retryable: false });
    const json = Object.assign(new SyntaxError('Unexpected token <'), meta(500));
    expect(classifyAwsError(json, { emulator: 'moto' })).toMatchObject({ category: 'unimplemented', retryable: false });
  });

  it('retries Node network errors', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(classifyAwsError(refused)).toMatchObject({ name: 'ECONNREFUSED', category: 'transient', retryable: true });
  });

  it('recognises modelled "already done" answers by name', () => {
    expect(isAwsError(new NoSuchEntityException({ message: 'gone', ...meta(404) }), 'NoSuchEntityException')).toBe(true);
    expect(isAwsError(new DeleteConflictException({ message: 'x', ...meta(409) }), 'NoSuchEntityException')).toBe(false);
  });
});

describe('toActivityFailure', () => {
  it('types the failure AWS.<name> and decides retryability at throw time', () => {
    const failure = toActivityFailure(new DeleteConflictException({ message: 'must detach all policies first', ...meta(409) }));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'AWS.DeleteConflictException', nonRetryable: true });
    const throttled = toActivityFailure(unmodelled('Throttling', 400));
    expect(throttled).toMatchObject({ type: 'AWS.Throttling', nonRetryable: false });
  });

  it('passes an ApplicationFailure through unchanged', () => {
    const own = ApplicationFailure.create({ type: 'ProtectedPrincipal', nonRetryable: true, message: 'no' });
    expect(toActivityFailure(own)).toBe(own);
  });
});
