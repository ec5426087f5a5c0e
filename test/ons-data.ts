import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The real ONS files the tests read (never copied into the repository): ONS_DATA_DIR when set, else
 * ../shared/data/ons next to the repository, else the workspace's /work/shared/data/ons (a clone elsewhere).
 */
export const ONS_DATA = process.env.ONS_DATA_DIR
  ?? [join(__dirname, '..', '..', 'shared', 'data', 'ons'), '/work/shared/data/ons'].find((dir) => existsSync(dir))
  ?? join(__dirname, '..', '..', 'shared', 'data', 'ons');
