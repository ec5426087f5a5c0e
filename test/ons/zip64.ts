import { constants, crc32, deflateRawSync } from 'node:zlib';

/** One entry written as given: its deflated chunks, and the size and CRC it declares. */
export interface RawEntry {
  readonly name: string;
  readonly compressed: readonly Uint8Array[];
  readonly size: number;
  readonly crc: number;
}

/** An entry deflated whole. */
export function deflated(name: string, data: Uint8Array): RawEntry {
  return { name, compressed: [deflateRawSync(data)], size: data.length, crc: crc32(data) };
}

/**
 * An entry of `head`, then `blankMiB` MiB of spaces, then `tail`: XML that stays well-formed and expands to GiBs from a
 * few MiB (1 MiB of spaces deflates to about 1 KiB, ending on a sync flush, and the block is repeated).
 */
export function padded(name: string, head: Uint8Array, blankMiB: number, tail: Uint8Array): RawEntry {
  const block = new Uint8Array(1024 * 1024).fill(0x20);
  const blockDeflated = deflateRawSync(block, { finishFlush: constants.Z_SYNC_FLUSH });
  const blockCrcs: number[] = [];
  let crc = crc32(head);
  for (let i = 0; i < blankMiB; i++) {
    crc = crc32(block, crc);
    blockCrcs.push(crc);
  }
  crc = crc32(tail, crc);
  return {
    name,
    compressed: [deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH }), ...blockCrcs.map(() => blockDeflated), deflateRawSync(tail)],
    size: head.length + blankMiB * block.length + tail.length,
    crc,
  };
}

/**
 * A ZIP64 archive, as tools write workbooks over 4 GiB: every size and offset in the ZIP64 extra field (the 32-bit
 * fields all 0xFFFFFFFF), then the ZIP64 end record and locator before the classic end record. Returned as chunks.
 */
export function zip64(entries: readonly RawEntry[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  const emit = (b: Uint8Array) => {
    out.push(b);
    offset += b.length;
  };
  const central: Buffer[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const compressedSize = e.compressed.reduce((n, c) => n + c.length, 0);
    const local = Buffer.alloc(30 + name.length + 20);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(e.crc, 14);
    local.writeUInt32LE(0xffffffff, 18);
    local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(20, 28);
    name.copy(local, 30);
    local.writeUInt16LE(1, 30 + name.length);
    local.writeUInt16LE(16, 32 + name.length);
    local.writeBigUInt64LE(BigInt(e.size), 34 + name.length);
    local.writeBigUInt64LE(BigInt(compressedSize), 42 + name.length);
    const at = offset;
    emit(local);
    e.compressed.forEach(emit);
    const c = Buffer.alloc(46 + name.length + 28);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(45, 6);
    c.writeUInt16LE(8, 10);
    c.writeUInt32LE(e.crc, 16);
    c.writeUInt32LE(0xffffffff, 20);
    c.writeUInt32LE(0xffffffff, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(28, 30);
    c.writeUInt32LE(0xffffffff, 42);
    name.copy(c, 46);
    c.writeUInt16LE(1, 46 + name.length);
    c.writeUInt16LE(24, 48 + name.length);
    c.writeBigUInt64LE(BigInt(e.size), 50 + name.length);
    c.writeBigUInt64LE(BigInt(compressedSize), 58 + name.length);
    c.writeBigUInt64LE(BigInt(at), 66 + name.length);
    central.push(c);
  }
  const dirOffset = offset;
  const dir = Buffer.concat(central);
  emit(dir);
  const end64At = offset;
  const end64 = Buffer.alloc(56);
  end64.writeUInt32LE(0x06064b50, 0);
  end64.writeBigUInt64LE(44n, 4);
  end64.writeUInt16LE(45, 12);
  end64.writeUInt16LE(45, 14);
  end64.writeBigUInt64LE(BigInt(entries.length), 24);
  end64.writeBigUInt64LE(BigInt(entries.length), 32);
  end64.writeBigUInt64LE(BigInt(dir.length), 40);
  end64.writeBigUInt64LE(BigInt(dirOffset), 48);
  emit(end64);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(end64At), 8);
  locator.writeUInt32LE(1, 16);
  emit(locator);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0xffff, 8);
  end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12);
  end.writeUInt32LE(0xffffffff, 16);
  emit(end);
  return out;
}
