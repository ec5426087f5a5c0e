/**
 * Where Athena's SQL (Trino, engine version 3) and DuckDB's differ, the local Athena rewrites the query text here,
 * and only here: a tokenizer, the execution parameters bound as Athena binds them, then one list of rewrites
 * (`REWRITES`), each with the Trino/Athena documentation it follows; the local Timestream runs its SQL through them
 * too, after its own few (`TIMESTREAM_REWRITES`, `timestreamToDuckDb`). Only what the engines plausibly need:
 * calendar buckets in America/Sao_Paulo (day, month, year, ISO week, ONS week Saturday–Friday), filters on
 * instants, ORDER BY, LIMIT/OFFSET.
 *
 * The representation the rewrites keep: a DuckDB TIMESTAMP is a Trino `timestamp` (the wall clock of the
 * session zone, UTC in Athena); a DuckDB TIMESTAMPTZ is a Trino `timestamp with time zone` in the one zone the
 * query names with AT TIME ZONE, which becomes the DuckDB session TimeZone (so date_trunc, casts to date,
 * day_of_week... work on that zone's civil calendar, DST included, as Trino's do on a zoned value).
 */

export interface Token {
  readonly kind: 'ws' | 'comment' | 'string' | 'quoted' | 'word' | 'number' | 'param' | 'punct';
  readonly text: string;
}

/** A query the local Athena refuses to run, with the reason it reports (FAILED, StateChangeReason). */
export class QueryFailure extends Error {}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const rest = sql.slice(i);
    const m = /^\s+/.exec(rest)
      ?? /^--[^\n]*/.exec(rest)
      ?? /^\/\*[\s\S]*?\*\//.exec(rest)
      ?? /^'(?:[^']|'')*'/.exec(rest)
      ?? /^"(?:[^"]|"")*"/.exec(rest)
      ?? /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)
      ?? /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(rest)
      ?? /^(?:<=|>=|<>|!=|\|\||::|.)/.exec(rest)!;
    const text = m[0];
    if (text.startsWith("'") && !/^'(?:[^']|'')*'$/.test(text)) throw new QueryFailure(`line 1:${i + 1}: unterminated string literal`);
    const c = text[0];
    const kind: Token['kind'] = /\s/.test(c) ? 'ws'
      : text.startsWith('--') || text.startsWith('/*') ? 'comment'
        : c === "'" ? 'string'
          : c === '"' ? 'quoted'
            : /[A-Za-z_]/.test(c) ? 'word'
              : /[\d.]/.test(c) && text !== '.' ? 'number'
                : c === '?' ? 'param' : 'punct';
    if (text === "'" || text === '"') throw new QueryFailure(`line 1:${i + 1}: unterminated ${text === "'" ? 'string literal' : 'quoted identifier'}`);
    tokens.push({ kind, text });
    i += text.length;
  }
  return tokens;
}

export const render = (tokens: readonly Token[]): string => tokens.map((t) => t.text).join('');
const word = (t: Token | undefined, w: string) => t?.kind === 'word' && t.text.toLowerCase() === w;
const code = (tokens: readonly Token[]) => tokens.map((t, i) => ({ t, i })).filter(({ t }) => t.kind !== 'ws' && t.kind !== 'comment');

/**
 * One execution parameter as Athena takes it: a SQL literal, substituted for its `?` (the user guide, "Use
 * parameterized queries": "To treat SQL execution parameters as strings, they must be enclosed in single
 * quotes"; a value may be `CAST('2014-07-05' AS DATE)`). Accepted: a string literal, a number, `true`/`false`/
 * `null`, `DATE|TIMESTAMP '...'`, `CAST(<one of those> AS <type>)`. Anything else (`1; DROP TABLE t`, `x'`...)
 * fails the query: it never becomes SQL text.
 */
export function parameterLiteral(value: string, index: number): string {
  const tokens = code(tokenize(value)).map(({ t }) => t);
  const literal = (ts: Token[]): boolean => {
    if (ts.length === 1) return ts[0].kind === 'string' || ts[0].kind === 'number' || ['true', 'false', 'null'].some((w) => word(ts[0], w));
    if (ts.length === 2 && ts[0].text === '-' && ts[1].kind === 'number') return true;
    return ts.length === 2 && ['date', 'timestamp'].some((w) => word(ts[0], w)) && ts[1].kind === 'string';
  };
  const cast = word(tokens[0], 'cast') && tokens[1]?.text === '(' && tokens[tokens.length - 1]?.text === ')';
  if (cast) {
    const as = tokens.findIndex((t) => word(t, 'as'));
    const type = tokens.slice(as + 1, -1);
    if (as > 2 && literal(tokens.slice(2, as)) && type.length > 0 && type.every((t) => t.kind === 'word' || t.kind === 'number' || ['(', ')', ','].includes(t.text))) return value.trim();
  } else if (literal(tokens)) {
    return value.trim();
  }
  throw new QueryFailure(`Execution parameter ${index + 1} is not a literal value: ${JSON.stringify(value)}`);
}

/**
 * Binds `parameters` to the `?` of `tokens` in order. As the user guide says ("Use parameterized queries"): the
 * count must match, and "the ? parameter can be placed only in the WHERE clause" (this fake is strict about it).
 */
export function bindParameters(tokens: Token[], parameters: readonly string[]): Token[] {
  const places = tokens.map((t, i) => (t.kind === 'param' ? i : -1)).filter((i) => i >= 0);
  if (places.length !== parameters.length) {
    throw new QueryFailure(`Incorrect number of parameters: expected ${places.length} but found ${parameters.length}`);
  }
  // The clause each `?` lies in: the last clause keyword at its nesting depth, or at an enclosing one.
  const clauses = ['select', 'from', 'where', 'group', 'having', 'order', 'limit', 'offset', 'on', 'join', 'window', 'union'];
  const stack: (string | undefined)[] = [undefined];
  const clauseOf = new Map<number, string | undefined>();
  tokens.forEach((t, i) => {
    if (t.text === '(') stack.push(undefined);
    else if (t.text === ')') stack.pop();
    else if (t.kind === 'word' && clauses.includes(t.text.toLowerCase())) stack[stack.length - 1] = t.text.toLowerCase();
    else if (t.kind === 'param') clauseOf.set(i, [...stack].reverse().find((c) => c !== undefined));
  });
  const out = [...tokens];
  places.forEach((i, n) => {
    if (clauseOf.get(i) !== 'where') {
      throw new QueryFailure(`Execution parameter ${n + 1} is in the ${(clauseOf.get(i) ?? 'no').toUpperCase()} clause: Athena takes ? placeholders only in the WHERE clause`);
    }
    out[i] = { kind: 'string', text: parameterLiteral(parameters[n], n) };
  });
  return out;
}

/** Index of the token closing the parenthesis opened at `open`. */
function closing(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i].text === '(') depth++;
    else if (tokens[i].text === ')' && --depth === 0) return i;
  }
  throw new QueryFailure('mismatched input: a parenthesis is not closed');
}

/** The top-level arguments of the call whose `(` is at `open`, as token ranges [from, to). */
function callArguments(tokens: readonly Token[], open: number): Array<[number, number]> {
  const end = closing(tokens, open);
  const args: Array<[number, number]> = [];
  let depth = 0;
  let from = open + 1;
  for (let i = open + 1; i < end; i++) {
    if (tokens[i].text === '(') {depth++;} else if (tokens[i].text === ')') {depth--;} else if (tokens[i].text === ',' && depth === 0) {
      args.push([from, i]);
      from = i + 1;
    }
  }
  args.push([from, end]);
  return args;
}

/** What a rewrite sees: the tokens, and what it learns of the query (its time zone). */
export interface RewriteContext {
  /** Zones named by AT TIME ZONE, lower-cased id → as written. */
  readonly zones: Map<string, string>;
}

interface Rewrite {
  /** What differs, and the documentation the rewrite follows. */
  readonly why: string;
  readonly apply: (tokens: Token[], context: RewriteContext) => Token[];
}

/** Replaces every call of `name(...)` (not a quoted identifier, not a column) by `replace(args)`. */
function rewriteCalls(name: string, replace: (args: string[], tokens: Token[]) => string): (tokens: Token[]) => Token[] {
  return (tokens) => {
    let out = tokens;
    for (;;) {
      const at = out.findIndex((t, i) => word(t, name) && code(out.slice(i + 1))[0]?.t.text === '(');
      if (at < 0) return out;
      const open = out.findIndex((t, i) => i > at && t.text === '(');
      const end = closing(out, open);
      const args = callArguments(out, open).map(([a, b]) => render(out.slice(a, b)).trim());
      // Re-tokenized, so that later rewrites see the calls nested in the arguments.
      out = [...out.slice(0, at), ...tokenize(`(${replace(args, out)})`), ...out.slice(end + 1)];
    }
  };
}

const rename = (from: string, to: string) => rewriteCalls(from, (args) => `${to}(${args.join(', ')})`);

/** Trino's interval units (date_add, date_diff), as DuckDB names them; `quarter` is three months. */
const UNITS: Record<string, { unit: string; times: number }> = {
  millisecond: { unit: 'MILLISECOND', times: 1 },
  second: { unit: 'SECOND', times: 1 },
  minute: { unit: 'MINUTE', times: 1 },
  hour: { unit: 'HOUR', times: 1 },
  day: { unit: 'DAY', times: 1 },
  week: { unit: 'DAY', times: 7 },
  month: { unit: 'MONTH', times: 1 },
  quarter: { unit: 'MONTH', times: 3 },
  year: { unit: 'YEAR', times: 1 },
};

function unitOf(literal: string, fn: string): { unit: string; times: number } {
  const unit = UNITS[literal.replace(/^'|'$/g, '').toLowerCase()];
  if (!unit || !/^'[a-z]+'$/i.test(literal)) throw new QueryFailure(`${fn}: unit must be a string literal of ${Object.keys(UNITS).join(', ')}, got ${literal}`);
  return unit;
}

/**
 * The rewrites, in the order they apply. Functions DuckDB lacks are macros (`MACROS`) named `trino_*`.
 */
export const REWRITES: readonly Rewrite[] = [
  {
    why: '`x AT TIME ZONE zone` (Trino "Date and time functions and operators", AT TIME ZONE): a timestamp is taken as an '
      + 'instant in the session zone (UTC in Athena) and the result is that instant as a timestamp with time zone in `zone`. '
      + "DuckDB's AT TIME ZONE does the reverse for a TIMESTAMP (reads it as wall clock of `zone`); so the operand becomes "
      + 'the instant (trino_instant) and `zone` the session TimeZone, one zone per query.',
    apply: (tokens, context) => {
      let out = tokens;
      for (;;) {
        const c = code(out);
        const k = c.findIndex(({ t }, j) => word(t, 'at') && word(c[j + 1]?.t, 'time') && word(c[j + 2]?.t, 'zone'));
        if (k < 0) return out;
        const zone = c[k + 3]?.t;
        if (zone?.kind !== 'string') throw new QueryFailure('AT TIME ZONE: the local Athena takes a zone literal, e.g. \'America/Sao_Paulo\'');
        // The operand ends before AT: an identifier chain, or a parenthesised group with its function name.
        let start = c[k - 1].i;
        if (out[start].text === ')') {
          let depth = 0;
          for (let i = start; i >= 0; i--) {
            if (out[i].text === ')') {depth++;} else if (out[i].text === '(' && --depth === 0) {
              start = i;
              break;
            }
          }
          const before = code(out.slice(0, start)).pop();
          if (before?.t.kind === 'word' && !['select', 'where', 'and', 'or', 'on', 'by', 'not', 'in'].includes(before.t.text.toLowerCase())) start = before.i;
        } else {
          while (start >= 2 && out[start - 1].text === '.' && (out[start - 2].kind === 'word' || out[start - 2].kind === 'quoted')) start -= 2;
        }
        const zoneName = zone.text.slice(1, -1).replace(/''/g, "'");
        context.zones.set(zoneName.toLowerCase(), zoneName);
        out = [...out.slice(0, start), ...tokenize(`trino_instant(${render(out.slice(start, c[k].i)).trim()})`), ...out.slice(c[k + 3].i + 1)];
      }
    },
  },
  {
    why: 'from_iso8601_timestamp(string) (Trino "Date and time functions"): an instant; compared with a `timestamp` column '
      + 'Trino reads the column in the session zone (UTC). DuckDB would read the column in its session TimeZone, so the '
      + 'instant becomes a UTC wall-clock TIMESTAMP (trino_from_iso8601_timestamp). from_iso8601_date is a date cast.',
    apply: (tokens) => rename('from_iso8601_date', 'trino_from_iso8601_date')(rename('from_iso8601_timestamp', 'trino_from_iso8601_timestamp')(tokens)),
  },
  {
    why: "to_iso8601(x) (Trino): '2023-01-01T00:00:00.000-03:00' for a zoned value ('Z' in UTC), without offset for a "
      + 'timestamp; DuckDB has no such function (trino_to_iso8601). to_unixtime(x) is DuckDB epoch(x).',
    apply: (tokens) => rename('to_unixtime', 'epoch')(rename('to_iso8601', 'trino_to_iso8601')(tokens)),
  },
  {
    why: 'day_of_week/dow (Trino: ISO, Monday = 1 … Sunday = 7) is DuckDB isodow (DuckDB dow is Sunday = 0); '
      + 'week_of_year/week (ISO week) is DuckDB weekofyear; year_of_week/yow (ISO week-year) is isoyear; '
      + 'day_of_month, day_of_year/doy are dayofmonth, dayofyear.',
    apply: (tokens) => [
      ['day_of_week', 'isodow'], ['dow', 'isodow'], ['week_of_year', 'weekofyear'], ['year_of_week', 'isoyear'], ['yow', 'isoyear'],
      ['day_of_month', 'dayofmonth'], ['day_of_year', 'dayofyear'], ['doy', 'dayofyear'],
    ].reduce((t, [from, to]) => rename(from, to)(t), tokens),
  },
  {
    why: "date_add(unit, value, x) (Trino: adds in x's zone, a day being a civil day) is DuckDB `x + INTERVAL (value) UNIT` "
      + '(ICU calendar arithmetic in the session TimeZone for a TIMESTAMPTZ); `week` is 7 days, `quarter` 3 months.',
    apply: rewriteCalls('date_add', ([unit, value, x]) => {
      const u = unitOf(unit, 'date_add');
      return `${x} + INTERVAL (${u.times === 1 ? value : `(${value}) * ${u.times}`}) ${u.unit}`;
    }),
  },
  {
    why: 'date_diff(unit, a, b) (Trino: whole units elapsed from a to b) is DuckDB date_sub(unit, a, b); DuckDB date_diff '
      + 'counts unit boundaries crossed instead (23:00 to 01:00 is 1 day there, 0 in Trino).',
    apply: rewriteCalls('date_diff', ([unit, a, b]) => {
      const u = unitOf(unit, 'date_diff');
      const diff = `date_sub('${u.unit.toLowerCase()}', ${a}, ${b})`;
      return u.times === 1 ? diff : `${diff} // ${u.times}`;
    }),
  },
  {
    why: 'timestamp(p) with time zone (Trino types: a precision on the zoned type) is DuckDB TIMESTAMPTZ, which takes no '
      + 'precision; timestamp(p) itself DuckDB accepts.',
    apply: (tokens) => {
      const out = [...tokens];
      for (let i = 0; i < out.length; i++) {
        if (!word(out[i], 'timestamp') || code(out.slice(i + 1))[0]?.t.text !== '(') continue;
        const open = out.findIndex((t, j) => j > i && t.text === '(');
        const end = closing(out, open);
        const after = code(out.slice(end + 1)).slice(0, 3);
        if (word(after[0]?.t, 'with') && word(after[1]?.t, 'time') && word(after[2]?.t, 'zone')) {
          out.splice(i, end + 1 + after[2].i + 1 - i, { kind: 'word', text: 'TIMESTAMPTZ' });
        }
      }
      return out;
    },
  },
];

/** Timestream's duration literals (`1h`, `30m`, `7d`: "Interval and duration", Timestream developer guide) in microseconds. */
const DURATION_MICROS: Record<string, bigint> = { us: 1n, ms: 1000n, s: 1_000_000n, m: 60_000_000n, h: 3_600_000_000n, d: 86_400_000_000n };

/**
 * Timestream for LiveAnalytics' SQL is Trino's with a few functions of its own; the local Timestream applies these,
 * then REWRITES (its other functions, `from_iso8601_timestamp`, `date_add`, `date_trunc`, are Trino's and behave as
 * documented there: "Date / time functions", Timestream developer guide; Timestream's session zone is UTC).
 */
export const TIMESTREAM_REWRITES: readonly Rewrite[] = [
  {
    why: 'bin(timestamp, interval) (Timestream "Date / time functions", Interval and duration: "Rounds down the timestamp '
      + 'to the given interval", bins from the Unix epoch) with a duration literal (`1h`, `15m`, `7d`) has no DuckDB '
      + 'equivalent of that name: trino_bin(x, microseconds) floors the epoch microseconds.',
    apply: rewriteCalls('bin', ([x, duration]) => {
      const m = /^(\d+)\s*(us|ms|s|m|h|d)$/.exec(duration);
      if (!m) throw new QueryFailure(`bin: the interval must be a duration literal such as 1h, got ${duration}`);
      return `trino_bin(${x}, ${BigInt(m[1]) * DURATION_MICROS[m[2]]})`;
    }),
  },
];

/** DuckDB macros the rewrites call. */
export const MACROS: readonly string[] = [
  // An instant as TIMESTAMPTZ, whether x is a TIMESTAMP (UTC wall clock, as Athena's session zone reads it) or a TIMESTAMPTZ.
  "CREATE MACRO trino_instant(x) AS timezone('UTC', make_timestamp(epoch_us(x)))",
  "CREATE MACRO trino_from_iso8601_timestamp(s) AS timezone('UTC', CAST(s AS TIMESTAMPTZ))",
  'CREATE MACRO trino_from_iso8601_date(s) AS CAST(s AS DATE)',
  // Timestream bin(): floor to a multiple of n microseconds from the epoch (before 1970 too).
  'CREATE MACRO trino_bin(x, n) AS make_timestamp(CAST(floor(epoch_us(x) / n) AS BIGINT) * n)',
  `CREATE MACRO trino_to_iso8601(x) AS CASE WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE'
     THEN strftime(x, '%Y-%m-%dT%H:%M:%S.%g') || CASE WHEN date_part('timezone', x) = 0 THEN 'Z'
       ELSE (CASE WHEN date_part('timezone', x) < 0 THEN '-' ELSE '+' END)
         || lpad(CAST(abs(date_part('timezone', x)) // 3600 AS VARCHAR), 2, '0') || ':'
         || lpad(CAST(abs(date_part('timezone', x)) % 3600 // 60 AS VARCHAR), 2, '0') END
     WHEN typeof(x) = 'DATE' THEN strftime(x, '%Y-%m-%d')
     ELSE strftime(x, '%Y-%m-%dT%H:%M:%S.%g') END`,
];

/**
 * The DuckDB text of an Athena query: parameters bound, then every rewrite. Returns the session time zone the
 * query needs (the one AT TIME ZONE names; UTC, Athena's session zone, when none).
 */
export function toDuckDb(sql: string, parameters: readonly string[] = []): { sql: string; timeZone: string } {
  const context: RewriteContext = { zones: new Map() };
  const tokens = REWRITES.reduce((t, r) => r.apply(t, context), bindParameters(tokenize(sql), parameters));
  if (context.zones.size > 1) {
    throw new QueryFailure(`local Athena: one AT TIME ZONE zone per query, got ${[...context.zones.values()].join(', ')}`);
  }
  return { sql: render(tokens), timeZone: [...context.zones.values()][0] ?? 'UTC' };
}

/** The DuckDB text of a Timestream query: its own functions (TIMESTREAM_REWRITES), then Trino's (REWRITES); no parameters. */
export function timestreamToDuckDb(sql: string): string {
  const context: RewriteContext = { zones: new Map() };
  const tokens = [...TIMESTREAM_REWRITES, ...REWRITES].reduce((t, r) => r.apply(t, context), tokenize(sql));
  if (context.zones.size > 0) throw new QueryFailure('the local Timestream does not take AT TIME ZONE (Timestream computes in UTC)');
  if (tokens.some((t) => t.kind === 'param')) throw new QueryFailure('Timestream queries take no ? parameters');
  return render(tokens);
}
