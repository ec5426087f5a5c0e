#!/usr/bin/env node
// Checks what the npm package ships: lib/ (no handler sources), assets/, the jsii assembly with its rosetta tablet
// and fixtures, API.md, README.md, LICENSE, package.json and the OpenAPI document, and nothing else. Prints a JSON summary.
const { execFileSync } = require('child_process');

const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }));
const files = pack.files.map((f) => f.path);
const allowed = [/^lib\/.+\.(js|d\.ts)$/, /^assets\/.+\.lambda\/index\.js$/, /^assets\/cli\/ons-data-platform\/ons-data-platform\.js$/, /^assets\/ingestion\/batch\/(entrypoint|bootstrap)\/index\.js$/, /^openapi\/ons-data-platform\.json$/, /^eval\/questions\.json$/, /^\.jsii$/, /^\.jsii\.tabl\.json$/, /^rosetta\/[\w-]+\.ts-fixture$/, /^(API|README)\.md$/, /^LICENSE$/, /^package\.json$/];
const unexpected = files.filter((f) => !allowed.some((re) => re.test(f)) || /\.lambda\.(js|d\.ts)$/.test(f));
// The tablet is written by rosetta:extract (post-compile): without it, the Python docs would show TypeScript.
// The Batch job's code and bootstrap are read at synth by the construct (no Docker build context any more).
const required = ['.jsii', '.jsii.tabl.json', 'rosetta/default.ts-fixture', 'API.md', 'README.md', 'LICENSE', 'lib/index.js', 'lib/index.d.ts', 'openapi/ons-data-platform.json',
  'assets/ingestion/batch/entrypoint/index.js', 'assets/ingestion/batch/bootstrap/index.js', 'eval/questions.json'];
const missing = required.filter((f) => !files.includes(f));
if (!files.some((f) => f.startsWith('assets/'))) missing.push('assets/**');
// Every relative require of a shipped module is shipped too (handler-side folders are left out by pattern).
const path = require('path');
const fs = require('fs');
for (const file of files.filter((f) => /^lib\/.+\.js$/.test(f))) {
  for (const [, spec] of fs.readFileSync(file, 'utf8').matchAll(/require\("(\.{1,2}\/[^"]+)"\)/g)) {
    const target = path.posix.join(path.posix.dirname(file), spec);
    if (![`${target}.js`, `${target}/index.js`, target].some((t) => files.includes(t))) missing.push(`${target}.js (required by ${file})`);
  }
}
if (unexpected.length || missing.length) {
  console.error(`check-npm-package: unexpected ${JSON.stringify(unexpected)}, missing ${JSON.stringify(missing)}`);
  process.exit(1);
}
console.log(JSON.stringify({ package: pack.filename, packedBytes: pack.size, unpackedBytes: pack.unpackedSize, files: files.length }));
