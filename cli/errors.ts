/** CLI failures with stable exit codes (docs/design.md §4): 2 bad input, 1 anything else. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly exitCode = 2;
}

export class CommandFailed extends Error {
  override name = 'CommandFailed';
  readonly exitCode = 1;
}
