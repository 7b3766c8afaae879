/** Where the CLI writes: results on stdout (one JSON document with --json), everything else on stderr. */
export interface Output {
  json: boolean;
  /** A result line for people (suppressed with --json). */
  line(text?: string): void;
  /** Progress and notices: always stderr, so stdout stays clean. */
  note(text: string): void;
  /** The one JSON document of --json. */
  result(value: unknown): void;
}

export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    line(text = '') {
      if (!json) stdout.write(`${text}\n`);
    },
    note(text) {
      stderr.write(`${text}\n`);
    },
    result(value) {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
  };
}
