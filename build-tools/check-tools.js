#!/usr/bin/env node
// The programs outside npm that a task needs (`node build-tools/check-tools.js test|package:python`): a missing
// one fails at once, before any bundling, with one line naming what to install. .ci/run and the generated
// workflows install them all; the test helpers that start them call requireTool() too.
const { spawnSync } = require('node:child_process');
const { accessSync, constants } = require('node:fs');
const { delimiter, join } = require('node:path');

/** What each task needs, and the one line that says how to get it on Debian/Ubuntu. */
const TOOLS = {
  influxd: {
    tasks: ['test'],
    present: () => onPath('influxd'),
    message: 'influxd not found: install InfluxDB 1.x (apt-get install influxdb)',
  },
  'python3-wheel-tools': {
    tasks: ['package:python'],
    // The wheel is built offline with the system Python (see the package:python task).
    present: () => spawnSync('/usr/bin/python3', ['-c', 'import setuptools, wheel, pip'], { stdio: 'ignore' }).status === 0,
    message: '/usr/bin/python3 with setuptools, wheel and pip not found: install them (apt-get install python3-setuptools python3-wheel python3-pip)',
  },
};

/** Whether an executable of that name is on PATH. */
function onPath(command, path = process.env.PATH || '') {
  return path.split(delimiter).filter(Boolean).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Throws an error whose message is the tool's one line when it is missing. */
function requireTool(name) {
  const tool = TOOLS[name];
  if (!tool) throw new Error(`unknown tool ${name}: one of ${Object.keys(TOOLS).join(', ')}`);
  if (!tool.present()) throw new Error(tool.message);
}

/** The lines for the missing tools of a task (empty when it has everything). */
function missingFor(task) {
  return Object.values(TOOLS).filter((t) => t.tasks.includes(task) && !t.present()).map((t) => t.message);
}

module.exports = { TOOLS, onPath, requireTool, missingFor };

if (require.main === module) {
  const task = process.argv[2];
  if (!Object.values(TOOLS).some((t) => t.tasks.includes(task))) {
    console.error(`usage: check-tools.js ${[...new Set(Object.values(TOOLS).flatMap((t) => t.tasks))].join('|')}`);
    process.exit(2);
  }
  const missing = missingFor(task);
  for (const line of missing) console.error(line);
  process.exit(missing.length > 0 ? 1 : 0);
}
