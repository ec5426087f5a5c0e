/* eslint-disable no-bitwise -- hashing and bit sets */
/**
 * Series identities and the duplicate window of processTable, kept in typed arrays: per row they cost
 * a hash and a bit test rather than strings and map entries.
 */
import { sameBytes } from './utf8';

/**
 * Rows of one (series, instant) after the first are rejected as duplicates. Detection keeps the
 * series of the most recent DUPLICATE_WINDOW distinct instants, so memory stays flat: exact for files
 * ordered by time, as ONS publishes them.
 */
export const DUPLICATE_WINDOW = 64;

/**
 * Series numbered from 0 by their identity: the trimmed dimension values joined by U+0001, as text or,
 * for a table read as bytes, as UTF-8 (one encoding of the other: UTF-8 text has no lone surrogates).
 */
export class SeriesIndex {
  size = 0;
  private readonly byText = new Map<string, number>();
  private readonly texts: Array<string | undefined> = [];
  // Open addressing over the UTF-8 keys: slot → id + 1 (0: empty); the keys in one arena.
  private slots = new Int32Array(1024);
  private hashes = new Int32Array(256);
  private keyStarts = new Int32Array(256);
  private keyEnds = new Int32Array(256);
  private arena = Buffer.alloc(16 * 1024);
  private arenaUsed = 0;

  constructor(private readonly bytes: boolean) {}

  find(text: string): number {
    const id = this.byText.get(text);
    if (id !== undefined || !this.bytes) return id ?? -1;
    const found = this.findBytes(...keyOf(text));
    if (found >= 0) this.byText.set(text, found);
    return found;
  }

  add(text: string): number {
    const id = this.bytes ? this.addBytes(...keyOf(text)) : this.size++;
    this.byText.set(text, id);
    this.texts[id] = text;
    return id;
  }

  /** The identity text of a series. */
  text(id: number): string {
    return (this.texts[id] ??= this.arena.toString('utf8', this.keyStarts[id], this.keyEnds[id]));
  }

  findBytes(bytes: Uint8Array, starts: Int32Array, ends: Int32Array, hash: number): number {
    const mask = this.slots.length - 1;
    for (let s = hash & mask; this.slots[s] !== 0; s = (s + 1) & mask) {
      const id = this.slots[s] - 1;
      if (this.hashes[id] === hash && this.equals(id, bytes, starts, ends)) return id;
    }
    return -1;
  }

  addBytes(bytes: Uint8Array, starts: Int32Array, ends: Int32Array, hash: number): number {
    const id = this.size++;
    if (id === this.hashes.length) {
      this.hashes = grow(this.hashes);
      this.keyStarts = grow(this.keyStarts);
      this.keyEnds = grow(this.keyEnds);
    }
    let length = Math.max(starts.length - 1, 0);
    for (let k = 0; k < starts.length; k++) length += ends[k] - starts[k];
    if (this.arenaUsed + length > this.arena.length) {
      const arena = Buffer.alloc(Math.max(this.arena.length * 2, this.arenaUsed + length));
      this.arena.copy(arena, 0, 0, this.arenaUsed);
      this.arena = arena;
    }
    this.keyStarts[id] = this.arenaUsed;
    for (let k = 0; k < starts.length; k++) {
      if (k > 0) this.arena[this.arenaUsed++] = 1;
      for (let i = starts[k]; i < ends[k]; i++) this.arena[this.arenaUsed++] = bytes[i];
    }
    this.keyEnds[id] = this.arenaUsed;
    this.hashes[id] = hash;
    if (this.size * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.place(id);
    return id;
  }

  private equals(id: number, bytes: Uint8Array, starts: Int32Array, ends: Int32Array): boolean {
    let at = this.keyStarts[id];
    const keyEnd = this.keyEnds[id];
    for (let k = 0; k < starts.length; k++) {
      if (k > 0 && (at >= keyEnd || this.arena[at++] !== 1)) return false;
      const length = ends[k] - starts[k];
      if (at + length > keyEnd || !sameBytes(this.arena, at, at + length, bytes, starts[k], ends[k])) return false;
      at += length;
    }
    return at === keyEnd;
  }

  private place(id: number): void {
    const mask = this.slots.length - 1;
    let s = this.hashes[id] & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = id + 1;
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity);
    for (let id = 0; id < this.size; id++) this.place(id);
  }
}

function grow(array: Int32Array): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/** Bits per word of DuplicateWindow's per-series masks. */
const WORDS = Math.ceil(DUPLICATE_WINDOW / 32);

/**
 * The series seen at each of the last DUPLICATE_WINDOW distinct instants (in the order they first came):
 * a bit per instant for each series says whether it was seen there, so checking a row costs no lookup;
 * each instant's series and first rows are listed, to name the row a duplicate repeats and to clear the
 * bits when the instant leaves the window.
 */
export class DuplicateWindow {
  private readonly instants = new Float64Array(DUPLICATE_WINDOW);
  private readonly ids: Int32Array[] = [];
  private readonly rows: Float64Array[] = [];
  private readonly lengths = new Int32Array(DUPLICATE_WINDOW);
  private bits = new Int32Array(256 * WORDS);
  private used = 0;
  private next = 0;
  private lastInstant = NaN;
  private lastSlot = 0;
  private latest = -Infinity;

  constructor() {
    for (let slot = 0; slot < DUPLICATE_WINDOW; slot++) {
      this.ids.push(new Int32Array(64));
      this.rows.push(new Float64Array(64));
    }
  }

  /** The window slot of an instant, which enters the window (and the oldest leaves) if it is new. */
  slot(instant: number): number {
    if (instant === this.lastInstant) return this.lastSlot;
    // Later than every instant so far (a file in time order): new, no search needed.
    let slot = instant > this.latest ? -1 : this.instants.indexOf(instant);
    if (slot >= this.used) slot = -1;
    if (instant > this.latest) this.latest = instant;
    if (slot < 0) {
      slot = this.next;
      this.next = (slot + 1) % DUPLICATE_WINDOW;
      if (this.used === DUPLICATE_WINDOW) this.clear(slot);
      else this.used++;
      this.instants[slot] = instant;
    }
    this.lastInstant = instant;
    this.lastSlot = slot;
    return slot;
  }

  seen(slot: number, id: number): boolean {
    const word = id * WORDS + (slot >> 5);
    return word < this.bits.length && (this.bits[word] & (1 << (slot & 31))) !== 0;
  }

  /** The row that first had the series at the slot's instant, or -1. */
  firstRow(slot: number, id: number): number {
    if (!this.seen(slot, id)) return -1;
    const ids = this.ids[slot];
    let i = 0;
    while (ids[i] !== id) i++;
    return this.rows[slot][i];
  }

  add(slot: number, id: number, row: number): void {
    const word = id * WORDS + (slot >> 5);
    while (word >= this.bits.length) this.bits = grow(this.bits);
    this.bits[word] |= 1 << (slot & 31);
    const n = this.lengths[slot]++;
    if (n === this.ids[slot].length) {
      this.ids[slot] = grow(this.ids[slot]);
      const rows = new Float64Array(n * 2);
      rows.set(this.rows[slot]);
      this.rows[slot] = rows;
    }
    this.ids[slot][n] = id;
    this.rows[slot][n] = row;
  }

  private clear(slot: number): void {
    const ids = this.ids[slot];
    const word = slot >> 5;
    const keep = ~(1 << (slot & 31));
    for (let i = 0; i < this.lengths[slot]; i++) this.bits[ids[i] * WORDS + word] &= keep;
    this.lengths[slot] = 0;
  }
}

/** FNV-1a over the pieces `bytes[starts[k], ends[k])` joined by 0x01: a series key in SeriesIndex. */
export function hashKey(bytes: Uint8Array, starts: Int32Array, ends: Int32Array): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < starts.length; k++) {
    if (k > 0) h = Math.imul(h ^ 1, 0x01000193);
    for (let i = starts[k]; i < ends[k]; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  }
  return h | 0; // as SeriesIndex stores it, also when there are no bytes (a dataset without dimensions)
}

/** A text key as one piece of UTF-8, with its hash. */
function keyOf(text: string): [Buffer, Int32Array, Int32Array, number] {
  const key = Buffer.from(text, 'utf8');
  const starts = Int32Array.of(0);
  const ends = Int32Array.of(key.length);
  return [key, starts, ends, hashKey(key, starts, ends)];
}
