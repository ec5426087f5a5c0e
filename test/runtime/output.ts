/**
 * What the bundled handlers write: Powertools writes its log lines and EMF documents straight to
 * process.stdout / process.stderr (its own Console, as in Lambda), not through the global console, so the
 * tests capture the streams. One write is one line.
 */

/** A CloudWatch embedded metric format document as Powertools Metrics writes it. */
export interface EmfDocument {
  readonly _aws: {
    readonly Timestamp: number;
    readonly CloudWatchMetrics: Array<{
      readonly Namespace: string;
      readonly Dimensions: string[][];
      readonly Metrics: Array<{ readonly Name: string; readonly Unit: string }>;
    }>;
  };
  readonly [key: string]: unknown;
}

export interface CapturedOutput {
  /** JSON log lines on stdout (DEBUG, INFO), one call per line, without the newline. */
  readonly log: jest.Mock<void, [string]>;
  /** JSON log lines on stderr (WARN, ERROR). */
  readonly error: jest.Mock<void, [string]>;
  /** EMF documents (stdout), parsed, in order. */
  readonly emf: EmfDocument[];
  /** Anything else written (not a JSON object: runtime warnings and the like). */
  readonly other: string[];
  /** Puts the real streams back. */
  restore(): void;
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** Captures (and silences) stdout and stderr until `restore()`. */
export function captureOutput(): CapturedOutput {
  const log = jest.fn<void, [string]>();
  const error = jest.fn<void, [string]>();
  const emf: EmfDocument[] = [];
  const other: string[] = [];
  const route = (into: jest.Mock<void, [string]>) => (chunk: unknown): boolean => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
      const value = parse(line);
      if (value && '_aws' in value) emf.push(value as unknown as EmfDocument);
      else if (value) into(line);
      else other.push(line);
    }
    return true;
  };
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(route(log) as typeof process.stdout.write);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(route(error) as typeof process.stderr.write);
  return {
    log,
    error,
    emf,
    other,
    restore() {
      out.mockRestore();
      err.mockRestore();
    },
  };
}
