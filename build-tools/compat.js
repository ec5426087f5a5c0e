#!/usr/bin/env node
// The jsii compatibility check (`npx projen compat`, run by every compile): jsii-diff of this build's assembly
// against the latest version on npm. Until the first release there is nothing to compare, and the check says so;
// from then on a breaking change fails the build unless its key is in .compatignore.
const { spawnSync } = require('node:child_process');
const { name } = require('../package.json');

const view = spawnSync('npm', ['view', name, 'version'], { encoding: 'utf8' });
if (view.status !== 0) {
  if (/\bE404\b/.test(view.stderr)) {
    console.log(`compat: ${name} has no published version yet: nothing to compare (the first release is the baseline)`);
    process.exit(0);
  }
  // Any other failure (no registry, proxy, auth) must not pass for "nothing published".
  console.error(`compat: cannot ask the npm registry for ${name}: ${view.stderr.trim().split('\n')[0]}`);
  process.exit(1);
}
console.log(`compat: comparing with ${name}@${view.stdout.trim()} on npm`);
const diff = spawnSync('npx', ['jsii-diff', `npm:${name}`, '--keys', '--ignore-file', '.compatignore'], { stdio: 'inherit' });
if (diff.status !== 0) {
  console.error(`compat: breaking changes against ${name}@${view.stdout.trim()}: make them compatible, or add the keys above to .compatignore in a commit whose message says BREAKING CHANGE`);
}
process.exit(diff.status ?? 1);
