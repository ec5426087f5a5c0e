#!/usr/bin/env node
import { main } from './main';

// Exit through process.exitCode so pending stdout writes are flushed first.
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
  process.stderr.write(`ons-data-platform: unexpected error: ${error}\n`);
  process.exitCode = 1;
});
