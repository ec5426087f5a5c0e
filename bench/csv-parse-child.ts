/**
 * Baseline for the benchmark, run in its own process like the CLI: a plain streaming parse of the file
 * with csv-parse (delimiter ';', no casting, no column names), counting records. Prints
 * `{"records": N}` (the header included) to stdout.
 */
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: csv-parse-child FILE\n');
  process.exit(1);
}
let records = 0;
const parser = parse({ delimiter: ';' });
parser.on('readable', () => {
  while (parser.read() !== null) records++;
});
parser.on('error', (error) => {
  process.stderr.write(`csv-parse: ${error.message}\n`);
  process.exitCode = 1;
});
parser.on('end', () => {
  process.stdout.write(`${JSON.stringify({ records })}\n`);
});
// Same read size as the CLI's localFile().
createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(parser);
