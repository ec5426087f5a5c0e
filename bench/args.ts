/** One option of a bench's command line, with what reads its value (the next argument). */
export interface BenchOption {
  /** As given, e.g. `--runs`. */
  readonly name: string;
  /** The next argument; an error naming the option when there is none. */
  value(): string;
  /** value() as a positive integer; an error otherwise. */
  positive(): number;
}

/** Calls `read` for each option of `argv`, in order; an option's value is taken only when `read` asks for it. */
export function eachOption(argv: readonly string[], read: (option: BenchOption) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    const positive = () => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, not '${v}'`);
      return n;
    };
    read({ name, value, positive });
  }
}
