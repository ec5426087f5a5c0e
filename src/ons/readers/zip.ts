/**
 * Zip archives (the XLSX container) read by random access: the central directory from the file's tail, then
 * each entry's compressed range read and inflated chunk by chunk, so memory stays bounded whatever the archive's
 * size. ZIP64 sizes and offsets are read; split archives, encryption and methods other than stored and deflate
 * are refused.
 */
import { Inflate } from 'fflate';
import { RefusedFileError } from '../types';

/** Random access to a file: all the XLSX reader needs (a local file handle, ranged S3 reads, a buffer). */
export interface RandomAccess {
  /** The file's size in bytes. */
  size(): Promise<number>;
  /** `length` bytes from `position` (fewer only past the end of the file). */
  read(position: number, length: number): Promise<Uint8Array>;
}

/** Starts with a zip local file header (50 4b 03 04): the content the XLSX reader takes, whatever the file's name. */
export function isZip(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** A buffer already in memory as RandomAccess. */
export function bytesAccess(data: Uint8Array): RandomAccess {
  return { size: async () => data.length, read: async (position, length) => data.subarray(position, position + length) };
}

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflate. */
  readonly method: number;
  readonly flags: number;
  readonly compressedSize: number;
  /** Uncompressed size as the central directory declares it (a zip bomb may lie). */
  readonly size: number;
  /** Offset of the entry's local header. */
  readonly offset: number;
}

export interface ZipDirectory {
  readonly fileSize: number;
  /** Entries by name, in directory order. */
  readonly entries: Map<string, ZipEntry>;
}

const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
/** The end record (22 bytes) with the longest comment, and the ZIP64 locator before it. */
const TAIL = 22 + 0xffff + 20;
/** Largest central directory read (an XLSX lists a few dozen parts; this is tens of thousands of entries). */
const MAX_DIRECTORY = 16 * 1024 * 1024;
/**
 * Compressed bytes pushed to the inflater at a time. Small chunks bound what one push can expand to (deflate tops
 * out near 1032:1, so ~4 MiB past the limit) and measured faster and leaner than 16-64 KiB on the real file.
 */
const CHUNK = 4 * 1024;
/** Compressed bytes read from the file at a time (one read call per block, pushed to the inflater CHUNK by CHUNK). */
const BLOCK = 256 * 1024;

function damaged(reason: string): RefusedFileError {
  return new RefusedFileError(`not a readable XLSX: the zip archive is damaged or truncated (${reason})`);
}

/** The central directory, found from the end record in the file's last 64 KiB. */
export async function readZipDirectory(file: RandomAccess): Promise<ZipDirectory> {
  const fileSize = await file.size();
  const tailStart = Math.max(0, fileSize - TAIL);
  const tail = await file.read(tailStart, fileSize - tailStart);
  const tv = view(tail);
  let end = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_END) {
      end = i;
      break;
    }
  }
  if (end < 0) throw damaged('no end of central directory record');
  let count = tv.getUint16(end + 10, true);
  let dirSize = tv.getUint32(end + 12, true);
  let dirOffset = tv.getUint32(end + 16, true);
  if (tv.getUint16(end + 4, true) !== 0 || tv.getUint16(end + 6, true) !== 0) {
    throw new RefusedFileError('not a readable XLSX: the zip archive is split over several files (a multi-part zip); save it as one file');
  }
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    // ZIP64: the locator just before the end record points to the 64-bit end record.
    if (end < 20 || tv.getUint32(end - 20, true) !== SIG_LOCATOR64) throw damaged('ZIP64 sizes without a ZIP64 locator');
    const at = safe(tv.getBigUint64(end - 12, true));
    const r = view(await file.read(at, 56));
    if (r.byteLength < 56 || r.getUint32(0, true) !== SIG_END64) throw damaged('no ZIP64 end of central directory record');
    count = safe(r.getBigUint64(32, true));
    dirSize = safe(r.getBigUint64(40, true));
    dirOffset = safe(r.getBigUint64(48, true));
  }
  if (dirOffset + dirSize > fileSize) throw damaged(`the central directory (${dirSize} bytes at ${dirOffset}) lies past the end of the file`);
  if (dirSize > MAX_DIRECTORY) {
    throw new RefusedFileError(`not a readable XLSX: its zip directory is ${dirSize} bytes (${count} entries), over the ${MAX_DIRECTORY} bytes `
      + 'a workbook needs');
  }
  const dir = dirOffset >= tailStart ? tail.subarray(dirOffset - tailStart, dirOffset - tailStart + dirSize) : await file.read(dirOffset, dirSize);
  const dv = view(dir);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== SIG_CENTRAL) throw damaged(`central directory entry ${i + 1} of ${count} is malformed`);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const next = p + 46 + nameLength + extraLength + dv.getUint16(p + 32, true);
    if (next > dir.length) throw damaged(`central directory entry ${i + 1} of ${count} is malformed`);
    const name = decoder.decode(dir.subarray(p + 46, p + 46 + nameLength));
    let size = dv.getUint32(p + 24, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let offset = dv.getUint32(p + 42, true);
    if (size === 0xffffffff || compressedSize === 0xffffffff || offset === 0xffffffff) {
      // ZIP64 extended information (header 0x0001): the 64-bit values, in this order, of the fields that overflowed.
      for (let x = p + 46 + nameLength; x + 4 <= p + 46 + nameLength + extraLength;) {
        const id = dv.getUint16(x, true);
        const length = dv.getUint16(x + 2, true);
        if (id === 0x0001) {
          let f = x + 4;
          const field = () => {
            if (f + 8 > x + 4 + length) throw damaged(`${name}: its ZIP64 extra field is too short`);
            const v = safe(dv.getBigUint64(f, true));
            f += 8;
            return v;
          };
          if (size === 0xffffffff) size = field();
          if (compressedSize === 0xffffffff) compressedSize = field();
          if (offset === 0xffffffff) offset = field();
          break;
        }
        x += 4 + length;
      }
    }
    entries.set(name, { name, method: dv.getUint16(p + 10, true), flags: dv.getUint16(p + 8, true), compressedSize, size, offset });
    p = next;
  }
  return { fileSize, entries };
}

/**
 * Inflates one entry: each call of the returned pump pushes the next CHUNK of compressed bytes (reading a BLOCK from
 * the file when needed) and resolves to false once everything was pushed. `onData` gets the expanded bytes; an error
 * it throws reaches the pump's caller.
 */
export async function entryPump(
  file: RandomAccess, directory: ZipDirectory, entry: ZipEntry, onData: (chunk: Uint8Array, final: boolean) => void,
): Promise<() => Promise<boolean>> {
  const { name } = entry;
  if (entry.flags % 2 === 1) throw new RefusedFileError(`not a readable XLSX: ${name} is encrypted; save the workbook without a password`);
  if (entry.method !== 0 && entry.method !== 8) {
    throw new RefusedFileError(`not a readable XLSX: ${name} uses zip compression method ${entry.method}; only stored (0) and deflate (8) are read`);
  }
  const missing = () => new RefusedFileError(`${name} is listed in the zip directory but its data cannot be found or ends early`);
  const header = view(await file.read(entry.offset, 30));
  if (header.byteLength < 30 || header.getUint32(0, true) !== SIG_LOCAL) throw missing();
  const start = entry.offset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
  const end = start + entry.compressedSize;
  if (end > directory.fileSize) throw missing();

  const inflater = entry.method === 8 ? new Inflate((chunk, final) => onData(chunk, final)) : undefined;
  let position = start;
  let block: Uint8Array = new Uint8Array(0);
  let used = 0;
  let done = false;
  return async () => {
    if (done) return false;
    if (used === block.length) {
      block = await file.read(position, Math.min(BLOCK, end - position));
      used = 0;
      if (block.length < Math.min(BLOCK, end - position)) throw missing();
      position += block.length;
    }
    const chunk = block.subarray(used, used + CHUNK);
    used += chunk.length;
    done = used === block.length && position === end;
    try {
      if (inflater) inflater.push(chunk, done);
      else onData(chunk, done);
    } catch (e) {
      throw e instanceof RefusedFileError ? e : new RefusedFileError(`not a readable XLSX: ${name}: ${(e as Error).message}`);
    }
    return !done;
  };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function safe(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw damaged(`a ZIP64 size or offset of ${n} bytes`);
  return Number(n);
}
