// Writes openapi/ons-data-platform.json from the API's route table, so the shipped document cannot drift from the construct.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApiDocument } from '../src/api/openapi';

const root = join(__dirname, '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
mkdirSync(join(root, 'openapi'), { recursive: true });
writeFileSync(join(root, 'openapi', 'ons-data-platform.json'), `${JSON.stringify(openApiDocument(version), null, 2)}\n`);
