import { basename } from 'node:path';
import { Progress } from '../ons/types';

/** Where progress goes: stderr, or a test's recorder. */
export interface ProgressStream {
  /** A terminal: the bar is redrawn in place with `\r`; otherwise plain lines. */
  readonly isTTY?: boolean;
  /** The terminal's width: the bar's line is cut to it, so a redraw never wraps. */
  readonly columns?: number;
  write(text: string): unknown;
}

/** When progress is shown; the defaults are the command's (see its usage text). */
export interface ProgressSettings {
  /** On a terminal: no bar until the work has run this long, so a file read in a blink shows none. @default 500 */
  readonly delayMs?: number;
  /** On a terminal: the bar is redrawn at most this often. @default 100 */
  readonly redrawMs?: number;
  /** Not a terminal: lines only for files at least this large. @default 32 MiB */
  readonly minBytes?: number;
  /** Not a terminal: a line at most this often (and the last one, at 100 %). @default 5000 */
  readonly lineMs?: number;
  /** The clock, in milliseconds (tests inject one). @default Date.now */
  readonly now?: () => number;
}

export const PROGRESS_DEFAULTS = { delayMs: 500, redrawMs: 100, minBytes: 32 * 1024 * 1024, lineMs: 5000 } as const;

/** What the usage texts say about progress: one wording for every command. */
export const PROGRESS_HELP = `Progress (on stderr):
  on a terminal  one line redrawn in place (bar, percent, counts, phase), shown once the work has
                 run ${PROGRESS_DEFAULTS.delayMs / 1000} s (a small file finishes first and shows none), ended with a newline
  otherwise      plain lines, for files of ${PROGRESS_DEFAULTS.minBytes / 1024 / 1024} MiB or more, at most one every ${PROGRESS_DEFAULTS.lineMs / 1000} s, the last at 100%
  What is counted is the work done, not bytes read ahead: CSV bytes parsed; XLSX bytes inflated of the
  shared strings, then of the sheet (against their sizes in the zip directory); Parquet rows.`;

const BAR_WIDTH = 24;

/** Draws Progress reports of one file: a bar on a terminal, throttled plain lines otherwise. */
export class ProgressDisplay {
  private readonly now: () => number;
  private readonly settings: Required<Omit<ProgressSettings, 'now'>>;
  private readonly started: number;
  private readonly enabled: boolean;
  private latest?: Progress;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawnWidth = 0;
  /** The line on the terminal, undefined when none is. */
  private drawn?: string;
  private lastLine?: string;

  constructor(private readonly file: string, fileSize: number, private readonly stream: ProgressStream, settings: ProgressSettings = {}) {
    this.now = settings.now ?? Date.now;
    this.settings = { ...PROGRESS_DEFAULTS, ...settings };
    this.started = this.now();
    this.enabled = stream.isTTY === true || fileSize >= this.settings.minBytes;
  }

  /** The listener to hand the domain core, or undefined when nothing would be shown (the core then reports nothing). */
  get listener(): ((progress: Progress) => void) | undefined {
    return this.enabled ? (p) => this.update(p) : undefined;
  }

  update(progress: Progress): void {
    this.latest = progress;
    const now = this.now();
    const complete = progress.total !== undefined && progress.done >= progress.total;
    if (this.stream.isTTY) {
      if (now - this.started < this.settings.delayMs) return;
      if (!complete && now - this.lastDraw < this.settings.redrawMs) return;
      this.lastDraw = now;
      this.draw(progress);
    } else {
      if (!complete && now - this.lastDraw < this.settings.lineMs) return;
      const line = `ons-data-platform: ${this.file}: ${describe(progress)}`;
      if (line === this.lastLine) return;
      this.lastDraw = now;
      this.lastLine = line;
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the bar's line (after drawing the last state if it was held back, on success) so what follows starts on a line of its own. */
  end(success: boolean): void {
    if (!this.stream.isTTY || !this.drawn) return;
    if (success && this.latest) this.draw(this.latest);
    this.stream.write('\n');
    this.drawn = undefined;
  }

  private draw(progress: Progress): void {
    const fraction = progress.total ? Math.min(1, progress.done / progress.total) : undefined;
    const filled = fraction === undefined ? 0 : Math.round(fraction * BAR_WIDTH);
    const bar = fraction === undefined ? '' : `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] `;
    let line = `${bar}${describe(progress)} ${basename(this.file)}`;
    const max = (this.stream.columns ?? 80) - 1;
    if (line.length > max) line = line.slice(0, max);
    if (line === this.drawn) return; // a report too small to show
    // Spaces over what the last draw left longer: no ANSI needed to clear the line.
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.drawnWidth - line.length))}`);
    this.drawnWidth = line.length;
    this.drawn = line;
  }
}

/** `45% (1.7 of 3.7 MB, parsing)`; without a total, `1.7 MB, parsing`. */
function describe(p: Progress): string {
  const count = (n: number) => (p.unit === 'bytes' ? (n / 1e6).toFixed(1) : String(n));
  const unit = p.unit === 'bytes' ? 'MB' : 'rows';
  if (!p.total) return `${count(p.done)} ${unit}, ${p.phase}`;
  const percent = Math.min(100, Math.floor((p.done / p.total) * 100));
  return `${percent}% (${count(Math.min(p.done, p.total))} of ${count(p.total)} ${unit}, ${p.phase})`;
}
