import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { FileSource } from './open';

/** A file on the local disk as a FileSource (CLI, tests, benchmarks). */
export function localFile(path: string): FileSource {
  return {
    stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
    bytes: async () => new Uint8Array(await readFile(path)),
    size: async () => (await stat(path)).size,
    read: (position, length) => readAt(path, position, length),
    head: () => readAt(path, 0, 8),
  };
}

/** A handle per read (the XLSX reader reads 256 KiB blocks): nothing left open if the reader stops early. */
async function readAt(path: string, position: number, length: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const out = new Uint8Array(length);
    const { bytesRead } = await handle.read(out, 0, length, position);
    return out.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
