/**
 * Peak-memory wrapper, used when /usr/bin/time is not available:
 *   node max-rss.js OUT_FILE SCRIPT [ARGS...]
 * runs SCRIPT in this process (as `node SCRIPT ARGS...` would) and, when the process exits, writes
 * `process.resourceUsage().maxRSS` (KiB, the same figure as `/usr/bin/time -f %M`) to OUT_FILE.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const [out, script, ...args] = process.argv.slice(2);
if (!out || !script) {
  process.stderr.write('usage: max-rss OUT_FILE SCRIPT [ARGS...]\n');
  process.exit(1);
}
const target = resolve(script);
process.argv = [process.argv[0], target, ...args];
process.on('exit', () => writeFileSync(out, `${process.resourceUsage().maxRSS}\n`));
createRequire(__filename)(target);
