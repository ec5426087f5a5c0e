import { awscdk, javascript } from 'projen';

/** Debian/Ubuntu packages the build needs beyond npm, as .ci/run installs them (`sudo`: GitHub runners are not root). */
const aptInstall = (name: string, packages: string[]) => ({
  name,
  run: `sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages.join(' ')}`,
});
const SYSTEM_PYTHON_STEP = aptInstall('System Python wheel tools (package:python builds the wheel offline)', ['python3-setuptools', 'python3-wheel', 'python3-pip']);
// Ubuntu's universe has InfluxDB 1.6.7 (the package Debian ships); the tests start their own influxd.
const INFLUXDB_STEP = aptInstall('InfluxDB 1.x server for the InfluxDB engine tests', ['influxdb']);

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'ons-data-platform',
  description:
    'AWS CDK constructs for a serverless data platform over the open data of ONS (Operador Nacional do Sistema Elétrico): ' +
    'a data lake, ingestion, time series, a knowledge base and a REST API.',
  keywords: ['cdk', 'aws-cdk', 'awscdk', 'ons', 'energy', 'data-lake', 'timestream', 'bedrock'],
  author: 'ONS Data Platform contributors',
  authorAddress: 'ons-data-platform@example.com',
  repositoryUrl: 'https://github.com/ons-data-platform/ons-data-platform.git',
  license: 'Apache-2.0',
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,

  cdkVersion: '2.276.0',
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',
  minNodeVersion: '20.0.0',
  // The toolchain needs more than the library's floor: jsii 6 wants Node >= 20.16, ESLint 9 >= 20.9.
  workflowNodeVersion: '20.x',

  publishToPypi: { distName: 'ons-data-platform', module: 'ons_data_platform' },
  // Every compile compares the assembly with the latest release on npm (jsii-diff; see build-tools/compat.js).
  compat: true,

  // The generated workflows install what .ci/run installs (the same Debian/Ubuntu packages) and run its checks.
  // Every job (build, release, package-*) builds the Python wheel offline with the system Python.
  workflowBootstrapSteps: [SYSTEM_PYTHON_STEP],
  // The tests need influxd; the build and release jobs run them (the package-* jobs do not).
  buildWorkflowOptions: { preBuildSteps: [INFLUXDB_STEP, { name: 'Conventional Commits', run: 'npx projen check:commits' }] },
  releaseWorkflowSetupSteps: [INFLUXDB_STEP],
  // .ci/run synthesizes the reference example after the build.
  postBuildSteps: [{ name: 'Synthesize the reference example', run: 'npx projen synth' }],

  // Handlers are bundled at build time so consumers (Python included) need neither esbuild nor Docker.
  lambdaOptions: {
    runtime: awscdk.LambdaRuntime.NODEJS_24_X,
    // Bundle every SDK client: the runtime's built-in SDK version drifts.
    bundlingOptions: { externals: [] },
  },

  // Bundled into handler assets, never jsii dependencies.
  devDeps: [
    '@aws-sdk/client-bedrock-agent',
    '@aws-sdk/client-bedrock-agent-runtime',
    // The question handler's numeric path: Converse with tools, and the time-series query function it invokes.
    '@aws-sdk/client-bedrock-runtime',
    '@aws-sdk/client-lambda',
    '@aws-sdk/client-dynamodb',
    '@aws-sdk/client-s3',
    '@aws-sdk/lib-dynamodb',
    '@aws-sdk/lib-storage',
    '@aws-sdk/client-timestream-write',
    '@aws-sdk/client-timestream-query',
    // The lake engine: Athena queries through the platform's workgroup.
    '@aws-sdk/client-athena',
    // Timestream for InfluxDB: the health check's GetDbInstance; the token secrets of the bootstrap and the functions.
    '@aws-sdk/client-timestream-influxdb',
    '@aws-sdk/client-secrets-manager',
    '@types/aws-lambda',
    // Structured logs and custom metrics (EMF) of every handler: bundled, never runtime dependencies.
    '@aws-lambda-powertools/logger@^2.36.0',
    '@aws-lambda-powertools/metrics@^2.36.0',
    // X-Ray subsegments of every AWS SDK call where the stage turns tracing on (a no-op otherwise).
    '@aws-lambda-powertools/tracer@^2.36.0',
    // Feature flags from AppConfig (Powertools Parameters' AppConfig provider, cached).
    '@aws-lambda-powertools/parameters@^2.35.0',
    '@aws-sdk/client-appconfigdata',
    'cdk-nag@^3.0.2',
    // The permission-closure test: evaluates the synthesized identity, resource and key policies (AGPL: tests only, never bundled).
    '@cloud-copilot/iam-simulate@^0.1.173',
    's3rver@^3.7.1',
    // Local engines for the ingestion tests (toolchain.md): DynamoDB, Step Functions, ASL validation.
    'dynalite@^4.0.0',
    'aws-local-stepfunctions@^3.0.0',
    'asl-validator@^4.0.0',
    'aws-sdk-client-mock@^4.1.0',
    // Response bodies of the handler tests checked against the schemas of the shipped OpenAPI document.
    'ajv@^8.17.1',
    // Independent oracle: DuckDB reads the processed zone as the Glue table does (test only).
    '@duckdb/node-api@^1.5.6-r.1',
    // Domain core and command: bundled into the handlers and the CLI, never runtime dependencies.
    'hyparquet@^1.33.0',
    'hyparquet-writer@^0.17.0',
    'hyparquet-compressors@^1.1.2',
    'fflate@^0.8.3',
    'saxes@^6.0.0',
    // Benchmark baseline only.
    'csv-parse@^6',
  ],

  tsconfigDevFile: 'tsconfig.dev.json',
  // ts-jest transpiles the ESM-only hyparquet packages (JavaScript) for the tests.
  tsconfigDev: { compilerOptions: { allowJs: true } },
  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'examples', 'bench', 'build-tools', 'projenrc', '.projenrc.ts'],
    // One dev tsconfig covers every linted file, so lint with it rather than the nearest tsconfig.json.
    projectService: false,
    tsconfigPath: './tsconfig.dev.json',
  },

  jestOptions: {
    // Handlers log JSON lines by design; printed with Jest's code frames of minified bundles they bury the results.
    extraCliOptions: ['--silent'],
    jestConfig: {
      // hyparquet and hyparquet-writer are ESM-only: let ts-jest transpile them to CommonJS.
      transform: {
        '^.+\\.[tj]s$': new javascript.Transform('ts-jest', {
          tsconfig: 'tsconfig.dev.json',
          diagnostics: false,
        }),
      },
      // Handler bundles in assets/ are plain CommonJS already: transpiling a 1 MB bundle costs seconds.
      transformIgnorePatterns: ['/node_modules/(?!(hyparquet|hyparquet-writer|hyparquet-compressors|hysnappy|fzstd)/)', '/assets/'],
      testTimeout: 60_000,
      // Each test file in a fresh worker once one has grown past this: handler bundles loaded again and again and the
      // local servers' data otherwise accumulate in one long-lived process, whose GC then slows later files tenfold.
      workerIdleMemoryLimit: '300MB',
      // aws-local-stepfunctions needs Promise.withResolvers (Node 22) for Task states.
      setupFiles: ['<rootDir>/test/polyfills.js'],
      // Handler bundles are tested as shipped, but minified code makes a meaningless coverage figure.
      coveragePathIgnorePatterns: ['/node_modules/', '/test/', '/assets/', '/build-tools/'],
    },
  },

  // The package ships an allow-list (see `files` below), not a deny-list.
  npmignoreEnabled: false,
  // jsii writes a default .npmignore when there is none; `files` decides what ships, so it is ignored.
  // The rosetta tablet (translated snippets) is built from the .jsii by `rosetta:extract`, like the .jsii itself.
  // '/node_modules' without the slash also matches a symlinked node_modules (a git worktree's), which 'node_modules/' does not.
  gitignore: ['cdk.out', '/dist/', '.DS_Store', '*.pyc', '__pycache__/', '/.npmignore', '/.jsii.tabl.json', '/node_modules'],
});

// jsii 6 prints a Node 20 end-of-life banner on every run; these machines run Node 20.
project.tasks.addEnvironment('JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION', '20');

// What the npm package ships: compiled code, handler bundles, the jsii assembly and the docs.
// Handler sources compile into lib/ too, but only their bundles in assets/ are used.
project.package.addField('files', [
  'lib/**/*.js', 'lib/**/*.d.ts', '!lib/**/*.lambda.js', '!lib/**/*.lambda.d.ts', '!lib/cli/**',
  // Handler-side code (the handler toolkit in runtime/, each area's runtime/, the Batch entrypoint) ships only in its bundles.
  '!lib/runtime/**', '!lib/**/runtime/**', '!lib/ingestion/batch/**',
  // ... except the constants a construct shares with its handlers (environment, metric and flag names).
  'lib/runtime/contract.js', 'lib/runtime/contract.d.ts',
  'assets/**', 'openapi/**', '.jsii', 'API.md', 'README.md', 'LICENSE',
  // The evaluation set that `ons-data-platform evaluate` runs by default (found beside package.json).
  'eval/questions.json',
  // The snippets' translations and their fixtures: Construct Hub and jsii-pacmak reuse the tablet, or compile again with the fixtures.
  '.jsii.tabl.json', 'rosetta/*.ts-fixture',
]);
project.tasks.tryFind('package:js')!.exec('node build-tools/check-npm-package.js');
// Before the first release there is no npm version to compare with: the script says so instead of failing.
project.tasks.tryFind('compat')!.reset('node build-tools/compat.js');
// Release notes come from Conventional Commits: .ci/run refuses a commit header that is not one.
project.addTask('check:commits', { description: 'Every commit since the rule is a Conventional Commit', exec: 'node build-tools/check-commits.js' });

// The real ONS files the tests read are byte-exact copies: never normalized (line endings) nor shown as text diffs.
for (const ext of ['csv', 'xlsx', 'pdf']) project.gitattributes.addAttributes(`/test/fixtures/ons/*.${ext}`, 'binary');

// Type-check what we own (projen's default `**/*.ts` would also reach lib/ and cdk.out/).
project.tsconfigDev.file.addOverride('include', [
  'src/**/*.ts', 'test/**/*.ts', 'examples/**/*.ts', 'bench/**/*.ts', 'build-tools/**/*.ts', '.projenrc.ts', 'projenrc/**/*.ts',
]);

// Minify handler bundles (projen's lambda bundlingOptions have no minify switch).
for (const task of project.tasks.all.filter((t) => t.name.startsWith('bundle:'))) {
  const steps = task.steps.map((s) => ({ ...s, execArgs: s.execArgs ? [...s.execArgs, '--minify'] : undefined }));
  task.reset();
  task.addSteps(...steps);
}

// The domain core and the command import libraries that esbuild bundles into the handlers and the
// command (never runtime dependencies of the construct library).
project.eslint?.allowDevDeps('src/ons/**/*.ts');
project.eslint?.allowDevDeps('src/cli/**/*.ts');
// Handler-side code (the handler toolkit, each area's runtime/, the Batch entrypoint), bundled into the assets;
// the constructs import only contract.ts files (checked by test/layers.test.ts).
project.eslint?.allowDevDeps('src/runtime/**/*.ts');
project.eslint?.allowDevDeps('src/*/runtime/**/*.ts');
project.eslint?.allowDevDeps('src/*/*/runtime/**/*.ts');
project.eslint?.allowDevDeps('src/ingestion/batch/**/*.ts');

// The command-line tool: one pre-bundled file (domain core and Parquet/XLSX libraries inside), so
// `npx ons-data-platform` needs nothing else installed.
const cli = project.bundler.addBundle('src/cli/ons-data-platform.ts', {
  platform: 'node',
  target: 'node20',
  outfile: 'ons-data-platform.js',
  executable: true,
  minify: true,
  tsconfigPath: 'tsconfig.dev.json',
});
project.addBins({ 'ons-data-platform': cli.outfile });

// ProcessFile on AWS Batch: the bundled entrypoint (a file asset the job downloads, no Docker build) and the
// bootstrap the job definition runs with `node -e` on a published Node.js image (read by the construct at synth).
project.bundler.addBundle('src/ingestion/batch/entrypoint.ts', {
  platform: 'node',
  target: 'node24',
  outfile: 'index.js',
  minify: true,
  tsconfigPath: 'tsconfig.dev.json',
});
project.bundler.addBundle('src/ingestion/batch/bootstrap.ts', {
  platform: 'node',
  target: 'node24',
  outfile: 'index.js',
  minify: true,
  tsconfigPath: 'tsconfig.dev.json',
});

// Every TypeScript snippet of the README and of the TSDoc @example blocks compiles (jsii-rosetta strict mode, with the
// fixtures in rosetta/), so Construct Hub and the Python package show Python translations of checked code. The strict flag
// lives in the assembly, so whoever translates it (Construct Hub, jsii-pacmak) fails on a snippet that does not compile.
project.package.file.addOverride('jsii.metadata', { jsii: { rosetta: { strict: true } } });
const rosettaExtract = project.addTask('rosetta:extract', {
  description: 'Compile every README and @example TypeScript snippet against rosetta/*.ts-fixture (strict: fails on any error) and translate them into .jsii.tabl.json (needs the .jsii of `npx projen compile`)',
  // --batch: all snippets in one TypeScript program, about a third of the time of one program each (28 s vs 100 s on 2 cores).
  // It takes a value: a bare `-b .jsii` reads the assembly as the batch size, extracts nothing and passes.
  exec: 'jsii-rosetta extract --strict --batch=1000 .jsii',
});
// The build and .ci/run compile, then post-compile: the cheapest place, as the test command compiles nothing.
project.postCompileTask.spawn(rosettaExtract);

// docs/catalog.md is generated from the catalog, with the API docs.
project.tasks.tryFind('docgen')!.exec('ts-node --transpile-only --project tsconfig.dev.json build-tools/catalog-doc.ts');
// The OpenAPI document of the REST API is generated from its route table, and shipped.
project.tasks.tryFind('docgen')!.exec('ts-node --transpile-only --project tsconfig.dev.json build-tools/openapi.ts');

// Tests load the pre-bundled handler assets, so bundle first; then type-check everything jsii does not compile.
const bundle = project.tasks.tryFind('bundle');
if (bundle) project.testTask.prependSpawn(bundle);
// A missing program (influxd) fails the tests at once, before bundling, with one line naming what to install.
project.testTask.prependExec('node build-tools/check-tools.js test');
project.testTask.spawn(project.addTask('typecheck', {
  description: 'Type-check tests, examples and benchmarks (jsii compiles only src/)',
  exec: 'tsc --noEmit -p tsconfig.dev.json',
}));

// Offline Python packaging (toolchain.md): jsii-pacmak's default target pip-installs from PyPI.
const packagePython = project.tasks.tryFind('package:python')!;
packagePython.reset();
packagePython.exec('node build-tools/check-tools.js package:python');
packagePython.exec('rm -rf dist/python-src dist/python');
packagePython.exec('jsii-pacmak -v --code-only --targets python --outdir dist/python-src');
packagePython.exec('/usr/bin/python3 -m pip wheel --no-deps --no-build-isolation --no-index -w dist/python dist/python-src/python');
packagePython.exec('node build-tools/check-python-wheel.js');

const synth = project.addTask('synth', {
  description: 'Synthesize the reference example (dev, staging, prod) with cdk-nag, offline, and print a summary',
});
if (bundle) synth.spawn(bundle);
synth.exec('ts-node --transpile-only --project tsconfig.dev.json examples/reference/app.ts');

// README "What it costs": every stage x time-series engine x vector store synthesized, what each bills idle and per file
// priced from build-tools/prices.json (`-- --check` only compares; test/costs.test.ts fails when the README is out of date).
const docsCosts = project.addTask('docs:costs', {
  description: 'Regenerate the idle and per-file cost tables in README.md from the synthesized templates and build-tools/prices.json',
});
if (bundle) docsCosts.spawn(bundle);
docsCosts.exec('ts-node --transpile-only --project tsconfig.dev.json build-tools/costs.ts', { receiveArgs: true });

// README "cdk-nag": every acknowledgement of the synthesized PROD platform (all engines) with its rule id, construct
// paths and reason (`-- --check` only compares; test/nag-table.test.ts fails when the README is out of date).
const docsNag = project.addTask('docs:nag', {
  description: 'Regenerate the cdk-nag acknowledgement table in README.md from the synthesized PROD platform',
});
if (bundle) docsNag.spawn(bundle);
docsNag.exec('ts-node --transpile-only --project tsconfig.dev.json build-tools/nag-table.ts', { receiveArgs: true });

// Benchmarks (not tests): the bundled command against csv-parse on >= 200 MiB inputs; prints JSON.
const bench = project.addTask('bench', {
  description: 'Benchmark the bundled ons-data-platform command (inspect, convert) against csv-parse on inputs built from real ONS rows',
});
if (bundle) bench.spawn(bundle);
bench.exec('ts-node --transpile-only --project tsconfig.dev.json bench/run.ts', { receiveArgs: true });

// Large XLSX workbooks: peak memory of the bundled inspect at two sizes, and its time per expanded byte against CSV.
const benchXlsx = project.addTask('bench:xlsx', {
  description: 'Benchmark the bundled inspect on XLSX workbooks built from CURVA_CARGA_2021.xlsx (peak RSS 25 vs 100 MiB, time per expanded byte vs CSV); prints JSON',
});
if (bundle) benchXlsx.spawn(bundle);
benchXlsx.exec('ts-node --transpile-only --project tsconfig.dev.json bench/xlsx.ts', { receiveArgs: true });

// The time-series loader's write path against a local WriteRecords server with a fixed latency, and the write cost model.
const benchTimeseries = project.addTask('bench:timeseries', {
  description: 'Benchmark the Timestream loader write path (throughput vs the in-flight bound) and its write cost per million points; prints JSON',
});
// Bundled first: the domain core's readers are ESM-only packages, which ts-node cannot require.
benchTimeseries.exec('esbuild bench/timeseries.ts --bundle --platform=node --target=node20 --log-level=warning --outfile=node_modules/.cache/bench/timeseries.js');
benchTimeseries.exec('node node_modules/.cache/bench/timeseries.js', { receiveArgs: true });

// What Powertools Tracer costs the data-heavy handlers: the processor's and the loader's work, with and without the X-Ray SDK.
const benchTracing = project.addTask('bench:tracing', {
  description: 'Benchmark the cost of call tracing (X-Ray SDK async hooks) on the processor and loader work of a real ONS file; prints JSON',
});
benchTracing.exec('esbuild bench/tracing.ts --bundle --platform=node --target=node20 --log-level=warning --outfile=node_modules/.cache/bench/tracing.js');
benchTracing.exec('node node_modules/.cache/bench/tracing.js', { receiveArgs: true });

// The lake engine: Parquet bytes each typical request's partition filter selects (Athena's bill), and the local engine's time against no pruning.
const benchLake = project.addTask('bench:lake', {
  description: 'Benchmark the lake engine on 25 years of curva_carga and a year of geracao_usina_2: bytes selected and cost per 1,000 requests on Athena, local DuckDB time with and without partition pruning; prints JSON',
});
if (bundle) benchLake.spawn(bundle);
// ts-node, not a bundle: DuckDB is a native module (the local Athena runs it in process).
benchLake.exec('ts-node --transpile-only --project tsconfig.dev.json bench/lake-query.ts', { receiveArgs: true });

project.synth();
