#!/usr/bin/env node
// Runner shim: the CLI is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
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
