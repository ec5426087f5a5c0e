#!/usr/bin/env node
// Checks the offline-built Python wheel: the package and the jsii assembly are inside, the generated
// sources and the Python example compile, and the public classes are there. Prints a JSON summary.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const PYTHON = '/usr/bin/python3';
const MODULE = 'ons_data_platform';
const { version } = require('../package.json');

function fail(message) {
  console.error(`check-python-wheel: ${message}`);
  process.exit(1);
}

const wheelDir = 'dist/python';
const wheels = fs.existsSync(wheelDir) ? fs.readdirSync(wheelDir).filter((f) => f.endsWith('.whl')) : [];
if (wheels.length !== 1) fail(`expected one wheel in ${wheelDir}, found ${wheels.length}`);
const wheel = path.join(wheelDir, wheels[0]);

const names = execFileSync(PYTHON, ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', wheel])
  .toString().trim().split('\n');
const required = [
  `${MODULE}/__init__.py`,
  `${MODULE}/py.typed`,
  `${MODULE}/_jsii/__init__.py`,
  `${MODULE}/_jsii/ons-data-platform@${version}.jsii.tgz`,
];
const missing = required.filter((n) => !names.includes(n));
if (missing.length) fail(`${wheel} lacks ${missing.join(', ')}`);

const sourceDir = path.join('dist/python-src/python/src', MODULE);
const sources = fs.readdirSync(sourceDir, { recursive: true }).filter((f) => String(f).endsWith('.py')).map((f) => path.join(sourceDir, String(f)));
const compiled = [...sources, 'examples/python/app.py'];
try {
  execFileSync(PYTHON, ['-m', 'py_compile', ...compiled], { stdio: 'inherit', env: { ...process.env, PYTHONPYCACHEPREFIX: fs.mkdtempSync('/tmp/pycache-') } });
} catch {
  fail('python -m py_compile failed (see above)');
}

const init = fs.readFileSync(path.join(sourceDir, '__init__.py'), 'utf8');
const classes = ['OnsDataPlatform', 'DataLake', 'PlatformStage'];
const absent = classes.filter((c) => !new RegExp(`^class ${c}\\(`, 'm').test(init));
if (absent.length) fail(`generated module lacks classes ${absent.join(', ')}`);

console.log(JSON.stringify({
  wheel,
  wheelBytes: fs.statSync(wheel).size,
  filesInWheel: names.length,
  pyCompiled: compiled.length,
  classes,
}));
