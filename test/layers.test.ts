import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * The house rules of docs/architecture.md, checked on every import of src/: folders are layers and imports only
 * go down; handler code and construct code meet only in `contract.ts` files; the domain core imports no AWS.
 */
const SRC = join(__dirname, '..', 'src');

/**
 * Layers from the bottom up, read from docs/architecture.md (the block after `<!-- layers`), so the page a newcomer
 * reads is the rule the test applies. A file may import its own folder and any folder of a lower layer.
 */
function readLayers(): string[][] {
  const page = readFileSync(join(__dirname, '..', 'docs', 'architecture.md'), 'utf8');
  const block = /<!-- layers[^\n]*-->\n```\n([\s\S]*?)```/.exec(page);
  if (!block) throw new Error('docs/architecture.md: the layers block is missing');
  // The top layer is platform.ts; index.ts (the public exports) sits beside it.
  return block[1].trim().split('\n').map((line) => line.split(/\s+/)[0]).map((name) => name === 'platform.ts' ? [name, 'index.ts'] : [name]);
}
const LAYERS = readLayers();

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? files(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

function folderOf(file: string): string {
  return relative(SRC, file).split(/[\\/]/)[0];
}

function layerOf(file: string, layers: ReadonlyArray<readonly string[]> = LAYERS): number {
  const folder = folderOf(file);
  const layer = layers.findIndex((l) => l.includes(folder));
  if (layer < 0) throw new Error(`${relative(SRC, file)}: its folder '${folder}' has no layer in test/layers.test.ts`);
  return layer;
}

/** Code that runs in a handler (bundled into an asset): the handler toolkit, any runtime/ folder, the handlers, the Batch entrypoint. */
function isHandlerSide(file: string): boolean {
  const path = relative(SRC, file).split(/[\\/]/);
  return path[0] === 'runtime' || path.includes('runtime') || file.endsWith('.lambda.ts') || path.includes('batch');
}

const isContract = (file: string) => /(^|[\\/])contract\.ts$/.test(file);

function imports(file: string, text = readFileSync(file, 'utf8')): Array<{ spec: string; target?: string }> {
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)].map(([, spec]) => ({
    spec,
    target: spec.startsWith('.') ? normalize(join(dirname(file), spec)) + '.ts' : undefined,
  }));
}

const all = files(SRC);

test('every folder of src/ has a layer', () => {
  for (const file of all) expect(() => layerOf(file)).not.toThrow();
});

/** Imports of `file` that go up the layers. */
function upward(file: string, text?: string): string[] {
  return imports(file, text).filter((i) => i.target && layerOf(i.target) > layerOf(file))
    .map((i) => `${relative(SRC, file)} imports ${i.spec} (${folderOf(i.target!)} is above ${folderOf(file)})`);
}

test('the layers are the folders of src/, in the order docs/architecture.md gives', () => {
  const folders = new Set(all.map(folderOf));
  expect(new Set(LAYERS.flat())).toEqual(folders);
  expect(LAYERS.slice(0, 4).flat()).toEqual(['ons', 'cli', 'runtime', 'core']);
  expect(LAYERS[LAYERS.length - 1]).toEqual(['platform.ts', 'index.ts']);
});

test('imports only go down the layers', () => {
  expect(all.flatMap((file) => upward(file))).toEqual([]);
});

test('handler code and construct code meet only in contract.ts files (and the domain core)', () => {
  const crossing = all.flatMap((file) => imports(file).filter((i) => {
    if (!i.target || isContract(i.target) || folderOf(i.target) === 'ons') return false;
    return isHandlerSide(file) !== isHandlerSide(i.target);
  }).map((i) => `${relative(SRC, file)} imports ${i.spec}`));
  expect(crossing).toEqual([]);
});

test('handler code never imports aws-cdk-lib or constructs, and the domain core no AWS at all', () => {
  const wrong = all.flatMap((file) => imports(file).filter((i) => {
    if (folderOf(file) === 'ons' || folderOf(file) === 'cli') return /^(aws-cdk-lib|constructs|@aws-sdk|@aws-lambda-powertools|aws-lambda)/.test(i.spec);
    return isHandlerSide(file) && /^(aws-cdk-lib|constructs)(\/|$)/.test(i.spec);
  }).map((i) => `${relative(SRC, file)} imports ${i.spec}`));
  expect(wrong).toEqual([]);
});

test('the check sees a violation: a lower layer importing a higher one is reported, a lower one is not', () => {
  const lake = join(SRC, 'lake', 'data-lake.ts');
  expect(upward(lake, "import { OnsDataPlatform } from '../platform';\nimport { PlatformStage } from '../core/stage';\n"))
    .toEqual(['lake/data-lake.ts imports ../platform (platform.ts is above lake)']);
  expect(isHandlerSide(join(SRC, 'ingestion', 'route.lambda.ts'))).toBe(true);
  expect(isHandlerSide(join(SRC, 'ingestion', 'pipeline.ts'))).toBe(false);
});
