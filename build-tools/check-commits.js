#!/usr/bin/env node
// Release notes are written from Conventional Commits (projen's release reads `type(scope): subject`), so CI refuses
// a commit on main whose header is not one. Commits up to SINCE predate the rule and are not checked.
const { execFileSync } = require('node:child_process');

/** The last commit before the rule (the history before it is kept as it is). */
const SINCE = '028a31e';
const TYPES = ['feat', 'fix', 'perf', 'refactor', 'docs', 'test', 'build', 'ci', 'chore', 'style', 'revert'];
const HEADER = new RegExp(`^(${TYPES.join('|')})(\\([a-z0-9][a-z0-9,./-]*\\))?!?: \\S`);

const git = (...args) => execFileSync('git', args, { encoding: 'utf8' }).trim();
let range = 'HEAD';
try {
  git('cat-file', '-e', `${SINCE}^{commit}`);
  range = `${SINCE}..HEAD`;
} catch {
  // A shallow clone (GitHub's default checkout) lacks the old history: check the commits it has.
}
const bad = git('log', '--format=%h %s', '--no-merges', range).split('\n').filter((line) => line && !HEADER.test(line.replace(/^\S+ /, '')));
if (bad.length) {
  console.error(`Not Conventional Commits (type(scope): subject, types ${TYPES.join(', ')}):\n${bad.map((l) => `  ${l}`).join('\n')}`);
  process.exit(1);
}
console.log(`commits: every commit in ${range} is a Conventional Commit`);
