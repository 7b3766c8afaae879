#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
// Runner shim: the CLI is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
//
// The first line sets, before node starts, what only a process's start can set, for `countersign
// worker` above all (harmless for the short commands): glibc's malloc keeps at most 2 arenas instead of
// 8 per core for the worker's many native threads (Temporal's core, libuv), whose scattered free memory
// otherwise stays resident; and V8's young generation is capped at 4 MiB semi-spaces instead of 16, so
// the garbage of AWS answers is collected young. Measured with `npm run bench:scale`: at 20 accounts ×
// 500 users the worker's peak RSS went from 310 to 251 MiB with these (worker/config.ts sets when V8
// collects the old generation). `node bin/countersign.js …` skips this line: run the script
// itself (as the Dockerfile does) or through npx.
const path = require('node:path');
const fs = require('node:fs');
// The stack is Node 20 with pinned AWS SDK versions that support it; the SDK's notice that *future*
// versions will need Node 22 would print on every command. Set the variable to "false" to see it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const entry = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('countersign: not built yet; run `npm run build` (or `npm ci`) in ' + path.join(__dirname, '..') + '\n');
  process.exit(1);
}
require(entry).main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
