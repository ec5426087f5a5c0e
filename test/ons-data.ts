import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where the real ONS files live inside the repository (origin, licence and quirks in its SOURCES.md). */
export const ONS_FIXTURES_PATH = join('test', 'fixtures', 'ons');

/**
 * The repository's real ONS files: the nearest `test/fixtures/ons` above `from`. Searched upwards rather than
 * fixed relative to this file because the benchmarks bundle this module into node_modules/.cache/bench/.
 */
export function repositoryOnsData(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, ONS_FIXTURES_PATH);
    if (existsSync(join(candidate, 'SOURCES.md'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`${ONS_FIXTURES_PATH}/SOURCES.md not found above ${from}: run from a clone of the repository or set ONS_DATA_DIR`);
  }
}

/**
 * The real ONS files the tests and benchmarks read: ONS_DATA_DIR when set, else the repository's test/fixtures/ons,
 * above this module or else above the working directory (a bundle under a symlinked node_modules resolves elsewhere).
 */
export const ONS_DATA = process.env.ONS_DATA_DIR ?? (() => {
  try {
    return repositoryOnsData();
  } catch (error) {
    try {
      return repositoryOnsData(process.cwd());
    } catch {
      throw error;
    }
  }
})();
