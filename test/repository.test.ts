import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ONS_DATA, ONS_FIXTURES_PATH, repositoryOnsData } from './ons-data';
import { LocalInfluxDb } from './timeseries/influxdb/local-influxdb';

/**
 * A fresh clone passes its own tests: the real files the tests read are in the repository (byte-exact, as
 * SOURCES.md records them), nothing reads a path outside it, a missing program fails at once with one line, and
 * the generated workflows install what .ci/run installs and run the README's command.
 */
const ROOT = join(__dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('the real ONS files live in the repository', () => {
  test('ONS_DATA is test/fixtures/ons of this clone unless ONS_DATA_DIR says otherwise', () => {
    if (process.env.ONS_DATA_DIR) expect(ONS_DATA).toBe(process.env.ONS_DATA_DIR);
    else expect(ONS_DATA).toBe(join(ROOT, ONS_FIXTURES_PATH));
  });

  test('found from a bundle deep inside the clone (the benchmarks run from node_modules/.cache/bench)', () => {
    expect(repositoryOnsData(join(ROOT, 'node_modules', '.cache', 'bench'))).toBe(join(ROOT, ONS_FIXTURES_PATH));
  });

  test('outside a clone the error says to set ONS_DATA_DIR', () => {
    const outside = mkdtempSync(join(tmpdir(), 'no-clone-'));
    try {
      expect(() => repositoryOnsData(outside)).toThrow(/test\/fixtures\/ons\/SOURCES.md not found above .*set ONS_DATA_DIR/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  // SOURCES.md records each file's sha256 as taken from its origin: a changed byte (an editor, a line-ending
  // normalization) fails here, not as a puzzling figure in another suite.
  const sources = read(join(ONS_FIXTURES_PATH, 'SOURCES.md'));
  const recorded = sources.split(/^## \d+\. /m).slice(1).map((section) => ({
    file: /^`([^`]+)`/.exec(section)![1],
    sha256: /sha256 `([0-9a-f]{64})`/.exec(section)![1],
  }));

  test('SOURCES.md records nine files, and states their licence', () => {
    expect(recorded).toHaveLength(9);
    expect(sources).toMatch(/^\*\*Licence:\*\* ONS open data\. .*https:\/\/dados\.ons\.org\.br\/about/m);
  });

  test.each(recorded.map((r) => [r.file, r.sha256]))('%s is byte-exact (sha256 %s)', (file, sha256) => {
    const bytes = readFileSync(join(ROOT, ONS_FIXTURES_PATH, file));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
  });

  test('the folder holds the recorded files, their notes and the reference figures, nothing else', () => {
    expect(readdirSync(join(ROOT, ONS_FIXTURES_PATH)).sort()).toEqual(
      [...recorded.map((r) => r.file), 'SOURCES.md', 'REFERENCE.md', 'reference-figures.json'].sort());
  });

  test('no test, benchmark, example or build tool reads a path outside the repository', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          if (name !== 'fixtures' && name !== 'node_modules') walk(path);
        } else if (/\.(ts|js)$/.test(name)) {
          // The sibling shared/ folder, or a machine's absolute workspace path.
          if (/shared['"]?\s*,\s*['"]data|shared\/data|['"`]\/work\//.test(readFileSync(path, 'utf8'))) offenders.push(relative(ROOT, path));
        }
      }
    };
    for (const dir of ['test', 'bench', 'examples', 'build-tools', 'src']) walk(join(ROOT, dir));
    expect(offenders).toEqual([]);
  });
});

describe('a missing program fails at once with one line naming what to install', () => {
  const INFLUXD_LINE = 'influxd not found: install InfluxDB 1.x (apt-get install influxdb)';
  const emptyBin = mkdtempSync(join(tmpdir(), 'no-tools-'));
  afterAll(() => rmSync(emptyBin, { recursive: true, force: true }));
  const checkTools = (path: string) => spawnSync(process.execPath, [join(ROOT, 'build-tools', 'check-tools.js'), 'test'], {
    encoding: 'utf8', env: { ...process.env, PATH: path },
  });

  test('the test task\'s first step, without influxd on PATH: exit 1 and that one line', () => {
    const result = checkTools(emptyBin);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`${INFLUXD_LINE}\n`);
    expect(result.stdout).toBe('');
  });

  test('with an influxd executable on PATH: exit 0, nothing printed', () => {
    const bin = join(emptyBin, 'with-influxd');
    mkdirSync(bin);
    writeFileSync(join(bin, 'influxd'), '#!/bin/sh\n');
    chmodSync(join(bin, 'influxd'), 0o755);
    const result = checkTools(bin);
    expect([result.status, result.stderr]).toEqual([0, '']);
  });

  test('a suite that starts influxd without it on PATH fails (never skips) with the same line', async () => {
    const path = process.env.PATH;
    process.env.PATH = emptyBin;
    try {
      await expect(new LocalInfluxDb().start()).rejects.toThrow(new Error(INFLUXD_LINE));
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('the README, .ci/run and the generated workflows agree', () => {
  const readme = read('README.md');
  const ciRun = read('.ci/run');

  test('the README gives its test command once, and .ci/run runs it', () => {
    expect(readme.match(/npm ci && npm test/g)).toHaveLength(1);
    expect(readme.match(/\bnpm ci\b/g)).toHaveLength(1);
    expect(ciRun).toMatch(/^npm ci\b/m);
    // Run as is, or inside the mount namespace that hides the shared folders.
    expect(ciRun).toMatch(/^ {2}npm test$/m);
    expect(ciRun).toMatch(/exec npm test' _/);
  });

  test.each(['build.yml', 'release.yml'])('%s installs every package .ci/run installs, tests, and synthesizes the example', (file) => {
    const workflow = read(join('.github', 'workflows', file));
    const aptPackages = (text: string) => [...text.matchAll(/apt-get install -y -qq ([^\n]+)/g)]
      .flatMap((m) => m[1].split(/\s+/)).filter((p) => /^[a-z0-9][a-z0-9.+-]*$/.test(p)).sort();
    expect(aptPackages(ciRun).length).toBeGreaterThan(0);
    expect(aptPackages(workflow)).toEqual(expect.arrayContaining(aptPackages(ciRun)));
    // build runs the test task (the README's npm test), release runs build.
    expect(workflow).toMatch(file === 'build.yml' ? /run: npx projen build$/m : /run: npx projen release$/m);
    expect(workflow).toMatch(/run: npx projen synth$/m);
    // jsii 6 needs Node >= 20.16: a pinned 20.0.0 cannot build.
    expect(workflow).not.toMatch(/node-version: 20\.0\.0/);
  });
});

describe('release hygiene', () => {
  const pkg = JSON.parse(read('package.json'));

  test('the whole suite runs against the oldest aws-cdk-lib the peer dependency allows', () => {
    // 2.276.0 is the floor: 2.275.0 lacks CfnInfluxDBInstance's kmsKeyId, and synthesizes the InfluxDB instance
    // without the lake key (the type-check fails; influxdb-store.test.ts's KmsKeyId assertion fails).
    const floor = /^\^(\d+\.\d+\.\d+)$/.exec(pkg.peerDependencies['aws-cdk-lib'])?.[1];
    expect(floor).toBe('2.276.0');
    expect(pkg.devDependencies['aws-cdk-lib']).toBe(floor);
    expect(JSON.parse(readFileSync(require.resolve('aws-cdk-lib/package.json'), 'utf8')).version).toBe(floor);
    expect(read('README.md')).toContain(`aws-cdk-lib ${floor!.replace(/\.0$/, '')} or later`);
  });

  test('every compile runs the jsii compatibility check, which waits for a first release', () => {
    const tasks = JSON.parse(read('.projen/tasks.json')).tasks;
    expect(tasks.compile.steps).toContainEqual({ spawn: 'compat' });
    expect(tasks.compat.steps).toEqual([{ exec: 'node build-tools/compat.js' }]);
    expect(read('build-tools/compat.js')).toMatch(/jsii-diff/);
  });

  test('.ci/run and the build workflow refuse a commit that is not a Conventional Commit', () => {
    expect(read('.ci/run')).toMatch(/^node build-tools\/check-commits\.js$/m);
    expect(read('.github/workflows/build.yml')).toMatch(/run: npx projen check:commits$/m);
    const dir = mkdtempSync(join(tmpdir(), 'commits-'));
    try {
      const git = (...args: string[]) => spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
      git('init', '-q');
      git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'feat(cli): a good one');
      const check = () => spawnSync('node', [join(ROOT, 'build-tools', 'check-commits.js')], { cwd: dir, encoding: 'utf8' });
      expect(check().status).toBe(0);
      git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'Review: tidy up');
      const refused = check();
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('Review: tidy up');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the CHANGELOG has an Unreleased section that tells platforms deployed with the old default how to keep Timestream', () => {
    const changelog = read('CHANGELOG.md');
    expect(changelog).toMatch(/^## Unreleased/m);
    expect(changelog).toContain('TimeSeriesEngine.timestreamLiveAnalytics()');
  });
});
