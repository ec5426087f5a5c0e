import { createWriteStream, WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Rejection } from '../process';
import { Cell } from '../types';

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(?:\d+[.,]?\d*|[.,]\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Makes a cell safe to open in a spreadsheet: text starting with `=`, `+`, `-`, `@`, tab or CR is
 * prefixed with `'` so it is shown, not evaluated (CSV injection). Plain numbers such as `-3.6` are left alone.
 */
export function neutraliseCell(value: string): string {
  return FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

function quote(value: string, delimiter: string): string {
  return value.includes(delimiter) || value.includes('"') || value.includes('\n') || value.includes('\r')
    ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One line of a CSV we write: cells neutralised, quoted where needed. */
export function csvLine(cells: readonly (Cell | undefined)[], delimiter = ';'): string {
  return cells.map((c) => quote(neutraliseCell(c === null || c === undefined ? '' : String(c)), delimiter)).join(delimiter) + '\n';
}

/**
 * Writes rejected rows as CSV (`;`-separated, UTF-8): `row;reason;` then the file's own columns as
 * read. Written under a temporary name and renamed by `finish()`; no file at all when nothing was rejected.
 */
export class RejectedRowsWriter {
  private out?: WriteStream;
  private count = 0;
  private readonly partial: string;

  constructor(private readonly path: string, private readonly header: readonly string[]) {
    this.partial = `${path}.partial`;
  }

  async write(rejection: Rejection): Promise<void> {
    if (!this.out) {
      await mkdir(dirname(this.path), { recursive: true });
      this.out = createWriteStream(this.partial);
      await this.push(csvLine(['row', 'reason', ...this.header]));
    }
    this.count++;
    await this.push(csvLine([rejection.row, rejection.reason, ...rejection.cells]));
  }

  /** Closes and renames the file; returns its path, or undefined when no row was rejected. */
  async finish(): Promise<string | undefined> {
    if (!this.out) return undefined;
    await this.close();
    this.out = undefined;
    await rename(this.partial, this.path);
    return this.path;
  }

  async abort(): Promise<void> {
    if (this.out) await this.close();
    this.out = undefined;
    await rm(this.partial, { force: true });
  }

  get rows(): number {
    return this.count;
  }

  private push(text: string): Promise<void> {
    const out = this.out!;
    return out.write(text) ? Promise.resolve() : new Promise((resolve) => out.once('drain', () => resolve()));
  }

  private close(): Promise<void> {
    const out = this.out!;
    return new Promise((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
