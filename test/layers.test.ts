import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * The house rules of docs/architecture.md, checked on every import of src/: folders are layers and imports only
 * go down; handler code and construct code meet only in `contract.ts` files; the domain core imports no AWS.
 */
const SRC = join(__dirname, '..', 'src');

/** Layers from the bottom up; a file may import its own folder and any folder of a lower layer. */
export const LAYERS: ReadonlyArray<readonly string[]> = [
  ['ons'], // the domain core: ONS files, the lake layout; no AWS, no CDK
  ['cli'], // the command, on the domain core only
  ['runtime'], // the handler toolkit
  ['core'], // the construct toolkit
  // the areas; health above the stores, whose engines' probes its one handler bundles (timeseries/runtime/health.ts)
  ['lake'], ['ledger'], ['timeseries'], ['health'], ['knowledge'], ['ingestion'], ['api'], ['operations'],
  ['platform.ts', 'index.ts'], // OnsDataPlatform alone, and the public exports
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? files(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

function folderOf(file: string): string {
  return relative(SRC, file).split(/[\\/]/)[0];
}

function layerOf(file: string): number {
  const folder = folderOf(file);
  const layer = LAYERS.findIndex((l) => l.includes(folder));
  if (layer < 0) throw new Error(`${relative(SRC, file)}: its folder '${folder}' has no layer in test/layers.test.ts`);
  return layer;
}

/** Code that runs in a handler (bundled into an asset): the handler toolkit, any runtime/ folder, the handlers, the Batch entrypoint. */
function isHandlerSide(file: string): boolean {
  const path = relative(SRC, file).split(/[\\/]/);
  return path[0] === 'runtime' || path.includes('runtime') || file.endsWith('.lambda.ts') || path.includes('batch');
}

const isContract = (file: string) => /(^|[\\/])contract\.ts$/.test(file);

function imports(file: string): Array<{ spec: string; target?: string }> {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)].map(([, spec]) => ({
    spec,
    target: spec.startsWith('.') ? normalize(join(dirname(file), spec)) + '.ts' : undefined,
  }));
}

const all = files(SRC);

test('every folder of src/ has a layer', () => {
  for (const file of all) expect(() => layerOf(file)).not.toThrow();
});

test('imports only go down the layers', () => {
  const upward = all.flatMap((file) => imports(file).filter((i) => i.target && layerOf(i.target) > layerOf(file))
    .map((i) => `${relative(SRC, file)} imports ${i.spec} (${folderOf(i.target!)} is above ${folderOf(file)})`));
  expect(upward).toEqual([]);
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

test('the check sees a violation: a lower layer importing a higher one is reported', () => {
  const lake = join(SRC, 'lake', 'data-lake.ts');
  const platform = normalize(join(SRC, 'platform')) + '.ts';
  expect(layerOf(platform)).toBeGreaterThan(layerOf(lake));
  expect(isHandlerSide(join(SRC, 'ingestion', 'route.lambda.ts'))).toBe(true);
  expect(isHandlerSide(join(SRC, 'ingestion', 'pipeline.ts'))).toBe(false);
});
