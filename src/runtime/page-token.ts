import { createHash } from 'node:crypto';
import { RequestError } from './http';

/**
 * The one page-token codec of the API: a token is base64url JSON `{ v: 1, <cursor>, <digest> }`, where the
 * cursor says where the next page starts and the digest binds the token to the request it was issued for.
 * The digest is a checksum, not a secret: it catches a token used with other parameters or edited by hand,
 * while a forged one can only start a listing the caller may read anyway. Each API names the two fields
 * and says what its digest covers (its documented wire format); encoding, checks and the 400 are shared.
 */

const VERSION = 1;
const DEFAULT_REASON = 'nextToken is not a token this API issued for these parameters';

/** The API's answer to a page token it cannot use: 400 `InvalidNextToken`, with the reason given. */
export function invalidToken(reason = DEFAULT_REASON): RequestError {
  return new RequestError(400, 'InvalidNextToken', reason);
}

/** The first `length` characters of the SHA-256 of `text`, in `encoding`. */
export function checksum(text: string, encoding: 'hex' | 'base64url', length: number): string {
  return createHash('sha256').update(text).digest(encoding).slice(0, length);
}

/** What one API's tokens look like. `C` is its cursor, `R` what a token is bound to (the request). */
export interface PageTokenFormat<C, R> {
  /** Longest token accepted, in characters. */
  readonly maxLength: number;
  /** JSON field of the cursor. */
  readonly cursorField: string;
  /** JSON field of the digest. */
  readonly digestField: string;
  /** The digest of `cursor` issued for `request`. */
  digest(cursor: C, request: R): string;
  /** True for a cursor this API may have issued for `request` (anything else is refused as it is). */
  isCursor(value: unknown, request: R): value is C;
}

export interface PageTokenCodec<C, R> {
  encode(cursor: C, request: R): string;
  /** The cursor of a token issued for `request`; anything else throws `invalidToken()`. */
  decode(token: string, request: R): C;
}

export function pageTokenCodec<C, R>(format: PageTokenFormat<C, R>): PageTokenCodec<C, R> {
  const { cursorField, digestField } = format;
  const wellFormed = new RegExp(`^[A-Za-z0-9_-]{1,${format.maxLength}}$`);
  const fields = ['v', cursorField, digestField].sort().join();
  return {
    encode(cursor, request) {
      // Fields after `v` in name order: the bytes of the tokens each API issued before stay the same.
      const entries = [[cursorField, cursor], [digestField, format.digest(cursor, request)]].sort(([a], [b]) => (a < b ? -1 : 1));
      return Buffer.from(JSON.stringify({ v: VERSION, ...Object.fromEntries(entries) })).toString('base64url');
    },
    decode(token, request) {
      if (typeof token !== 'string' || !wellFormed.test(token)) throw invalidToken();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
      } catch {
        throw invalidToken();
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidToken();
      const p = parsed as Record<string, unknown>;
      if (Object.keys(p).sort().join() !== fields || p.v !== VERSION) throw invalidToken();
      const cursor = p[cursorField];
      if (!format.isCursor(cursor, request) || p[digestField] !== format.digest(cursor, request)) throw invalidToken();
      return cursor;
    },
  };
}
