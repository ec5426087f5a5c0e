import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every TypeScript snippet compiles: `rosetta:extract` (post-compile, so in `npx projen build` and `.ci/run`) compiles
 * the README's `ts` blocks and the TSDoc `@example`s in jsii-rosetta strict mode. These checks cover what rosetta cannot
 * see: code that escapes it (a block labelled `js` or not at all), fence options it ignores or that switch strict off,
 * and the wiring itself. They need no compile, so they run with `npm test`.
 */
const ROOT = join(__dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const FIXTURES = readdirSync(join(ROOT, 'rosetta')).filter((f) => f.endsWith('.ts-fixture')).map((f) => f.replace(/\.ts-fixture$/, ''));

interface Fence { readonly line: number; readonly info: string }

/** Opening fences of a Markdown file (indented ones in lists too), with their info strings. */
function openingFences(markdown: string): Fence[] {
  const fences: Fence[] = [];
  let open: string | undefined;
  markdown.split('\n').forEach((text, index) => {
    const match = /^\s*(`{3,}|~{3,})(.*)$/.exec(text);
    if (!match) return;
    if (open === undefined) {
      open = match[1];
      fences.push({ line: index + 1, info: match[2].trim() });
    } else if (match[1].startsWith(open) && match[2].trim() === '') {
      open = undefined;
    }
  });
  return fences;
}

/** What is wrong with a rosetta snippet's options (`fixture=name`, `nofixture`), or undefined. */
function optionProblem(options: string[]): string | undefined {
  for (const option of options) {
    const fixture = /^fixture=(.+)$/.exec(option);
    if (fixture && !FIXTURES.includes(fixture[1])) return `fixture=${fixture[1]}: no rosetta/${fixture[1]}.ts-fixture`;
    // jsii-rosetta ignores options it does not know (a `nocompile` compiles all the same) and `infused` turns strict off.
    if (!fixture && option !== 'nofixture') return `'${option}': rosetta knows fixture=<name> and nofixture only`;
  }
  return undefined;
}

describe('README code blocks', () => {
  const fences = openingFences(read('README.md'));

  test('the README has TypeScript blocks for rosetta to compile', () => {
    expect(fences.filter((f) => /^(ts|typescript)\b/.test(f.info)).length).toBeGreaterThanOrEqual(10);
  });

  test('every block names its language (an unlabelled block is neither compiled nor highlighted)', () => {
    expect(fences.filter((f) => f.info === '').map((f) => `README.md:${f.line}`)).toEqual([]);
  });

  test('TypeScript is labelled ts, so rosetta compiles it: no js, javascript, tsx or jsx blocks', () => {
    expect(fences.filter((f) => /^(js|javascript|tsx|jsx)\b/.test(f.info)).map((f) => `README.md:${f.line}: ${f.info}`)).toEqual([]);
  });

  test('ts blocks use existing fixtures and no option that rosetta ignores', () => {
    const problems = fences
      .filter((f) => /^(ts|typescript)\b/.test(f.info))
      .map((f) => ({ f, problem: optionProblem(f.info.split(/\s+/).slice(1)) }))
      .filter(({ problem }) => problem !== undefined)
      .map(({ f, problem }) => `README.md:${f.line}: ${problem}`);
    expect(problems).toEqual([]);
  });
});

describe('@example blocks in the TSDoc', () => {
  const sources = (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: join('src', f), text: read(join('src', f)) }));

  test('the constructs have examples for rosetta to compile', () => {
    expect(sources.filter((s) => s.text.includes('@example')).length).toBeGreaterThanOrEqual(10);
  });

  test('@exampleMetadata names existing fixtures only', () => {
    const problems = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/@exampleMetadata\s+(.*)$/gm)].flatMap((m) => {
        const problem = optionProblem(m[1].trim().split(/\s+/));
        return problem ? [`${file}: ${problem}`] : [];
      }));
    expect(problems).toEqual([]);
  });
});

describe('rosetta is wired in strict mode', () => {
  test('each fixture has one `/// here` where the snippet goes', () => {
    expect(FIXTURES).toEqual(expect.arrayContaining(['default', 'app']));
    for (const name of FIXTURES) {
      expect([name, read(`rosetta/${name}.ts-fixture`).match(/^\s*\/\/\/ here\s*$/gm)?.length]).toEqual([name, 1]);
    }
  });

  test('the assembly carries the strict flag, so Construct Hub and jsii-pacmak fail on a snippet that does not compile', () => {
    expect(JSON.parse(read('package.json')).jsii.metadata.jsii.rosetta.strict).toBe(true);
  });

  test('post-compile runs rosetta:extract --strict, and the package ships the tablet and the fixtures', () => {
    const tasks = JSON.parse(read('.projen/tasks.json')).tasks;
    expect(tasks['post-compile'].steps).toContainEqual({ spawn: 'rosetta:extract' });
    // The assembly named: without one (or with `-b .jsii`, which reads it as the batch size) rosetta extracts nothing and passes.
    expect(tasks['rosetta:extract'].steps).toEqual([{ exec: 'jsii-rosetta extract --strict --batch=1000 .jsii' }]);
    expect(JSON.parse(read('package.json')).files).toEqual(expect.arrayContaining(['.jsii.tabl.json', 'rosetta/*.ts-fixture']));
  });
});
