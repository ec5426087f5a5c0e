import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { FileSource } from './open';

/** A file on the local disk as a FileSource (CLI, tests, benchmarks). */
export function localFile(path: string): FileSource {
  return {
    stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
    bytes: async () => new Uint8Array(await readFile(path)),
    head: async () => {
      const handle = await open(path, 'r');
      try {
        const head = new Uint8Array(8);
        const { bytesRead } = await handle.read(head, 0, 8, 0);
        return head.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    },
  };
}
