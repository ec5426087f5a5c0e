/* eslint-disable no-bitwise -- hashing and binary search */
/**
 * Series identities and the instants each has had (processTable's duplicate check), kept in typed
 * arrays: per row they cost a hash and a few array reads rather than strings and map entries.
 */
import { sameBytes } from './utf8';

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

/** Fields of a run in SeriesInstants.runs: first instant, step, count, first row, row step. */
const RUN = 5;
/** Runs per series beyond which new instants out of time order go to the series' map (inserting a run moves the later ones). */
const MAX_RUNS = 4096;

/**
 * The instants each series has had, and the row that first had each: exact whatever the order of the
 * rows. Per series, instants are kept as arithmetic runs (first instant, step, count, with their rows as
 * a run too), in time order: a row extends the run before it or the one after it when it continues it,
 * else starts one. So a file in time order with a regular grain costs one run per series, and each
 * irregularity (a gap, a row missing at an instant, a block of rows out of time order) a few more. An
 * instant within a run's span but not on its step (or past MAX_RUNS) goes to a map of its series.
 * Instants are whole milliseconds (parsed times), so the runs' arithmetic is exact.
 */
export class SeriesInstants {
  /** Per series: its latest instant (-Infinity: none yet). */
  private latest = new Float64Array(256).fill(-Infinity);
  /** Per series: its runs, in time order, their spans disjoint. */
  private readonly runsOf: number[][] = [];
  /** Per series: instant → first row, for instants kept outside the runs. */
  private readonly others: Array<Map<number, number> | undefined> = [];
  private runs = new Float64Array(RUN * 256);
  private used = 0;

  /** Runs kept: what memory grows with. */
  get runCount(): number {
    return this.used;
  }

  /**
   * The row that first had the series at the instant; or, when none did, -1 after recording `row` as
   * that row. Constant time for a row later than its series' others; otherwise a binary search.
   */
  claim(id: number, instant: number, row: number): number {
    if (id >= this.latest.length) this.grow(id);
    const runs = this.runs;
    if (instant > this.latest[id]) {
      this.latest[id] = instant;
      const list = this.runsOf[id];
      if (list === undefined) this.runsOf[id] = [this.newRun(instant, row)];
      else if (!this.extend(list[list.length - 1] * RUN, instant, row)) list.push(this.newRun(instant, row));
      return -1;
    }
    const list = this.runsOf[id];
    // The last run starting at or before the instant (-1: none).
    let lo = -1;
    let hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[list[mid] * RUN] <= instant) lo = mid;
      else hi = mid - 1;
    }
    let inSpan = false;
    if (lo >= 0) {
      const r = list[lo] * RUN;
      const start = runs[r];
      const step = runs[r + 1];
      const count = runs[r + 2];
      inSpan = instant <= start + step * (count - 1);
      const k = count === 1 ? 0 : Math.round((instant - start) / step);
      if (inSpan && start + step * k === instant) return runs[r + 3] + runs[r + 4] * k;
    }
    const others = this.others[id];
    const first = others?.get(instant);
    if (first !== undefined) return first;

    // New: continue the run before it, or the one after it (backwards), or start a run between them.
    const continued = !inSpan && ((lo >= 0 && this.extend(list[lo] * RUN, instant, row))
      || (lo + 1 < list.length && this.extendBack(list[lo + 1] * RUN, instant, row)));
    if (continued) return -1;
    if (inSpan || list.length >= MAX_RUNS) (this.others[id] ??= new Map()).set(instant, row);
    else list.splice(lo + 1, 0, this.newRun(instant, row));
    return -1;
  }

  /** Adds the instant after the run's last one, if it continues the run (a run of one takes any step). */
  private extend(r: number, instant: number, row: number): boolean {
    const runs = this.runs;
    const count = runs[r + 2];
    if (count === 1) {
      runs[r + 1] = instant - runs[r];
      runs[r + 4] = row - runs[r + 3];
    } else if (instant !== runs[r] + runs[r + 1] * count || row !== runs[r + 3] + runs[r + 4] * count) {
      return false;
    }
    runs[r + 2] = count + 1;
    return true;
  }

  /** Adds the instant before the run's first one, if it continues the run backwards. */
  private extendBack(r: number, instant: number, row: number): boolean {
    const runs = this.runs;
    const count = runs[r + 2];
    if (count === 1) {
      runs[r + 1] = runs[r] - instant;
      runs[r + 4] = runs[r + 3] - row;
    } else if (instant !== runs[r] - runs[r + 1] || row !== runs[r + 3] - runs[r + 4]) {
      return false;
    }
    runs[r] = instant;
    runs[r + 3] = row;
    runs[r + 2] = count + 1;
    return true;
  }

  private newRun(instant: number, row: number): number {
    if ((this.used + 1) * RUN > this.runs.length) {
      const runs = new Float64Array(this.runs.length * 2);
      runs.set(this.runs);
      this.runs = runs;
    }
    const run = this.used++;
    const r = run * RUN;
    this.runs[r] = instant;
    this.runs[r + 1] = 0;
    this.runs[r + 2] = 1;
    this.runs[r + 3] = row;
    this.runs[r + 4] = 0;
    return run;
  }

  private grow(id: number): void {
    let length = this.latest.length;
    while (length <= id) length *= 2;
    const latest = new Float64Array(length).fill(-Infinity);
    latest.set(this.latest);
    this.latest = latest;
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
