import { RequestError } from '../../src/runtime/http';
import { checksum, invalidToken, pageTokenCodec } from '../../src/runtime/page-token';

/** A codec like the time-series one: a string cursor bound to the query text. */
const codec = pageTokenCodec<string, string>({
  maxLength: 64,
  cursorField: 't',
  digestField: 'q',
  digest: (_cursor, query) => checksum(query, 'hex', 16),
  isCursor: (t): t is string => typeof t === 'string' && t.length >= 1,
});

const json = (token: string) => JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, unknown>;
const token = (body: unknown) => Buffer.from(JSON.stringify(body)).toString('base64url');

function refusal(decode: () => unknown): { status: number; code: string; message: string } {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    const e = error as RequestError;
    return { status: e.status, code: e.code, message: e.message };
  }
  throw new Error('the token was accepted');
}

const REFUSED = { status: 400, code: 'InvalidNextToken', message: 'nextToken is not a token this API issued for these parameters' };

describe('page tokens', () => {
  test('a token decodes to its cursor with the query it was issued for', () => {
    const issued = codec.encode('cursor-1', 'SELECT 1');
    expect(issued).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(codec.decode(issued, 'SELECT 1')).toBe('cursor-1');
  });

  test('the wire format: base64url JSON { v: 1, fields in name order }', () => {
    const issued = codec.encode('c', 'SELECT 1');
    expect(Buffer.from(issued, 'base64url').toString('utf8')).toBe(`{"v":1,"q":"${checksum('SELECT 1', 'hex', 16)}","t":"c"}`);
  });

  test('used with another query: 400 with the reason', () => {
    expect(refusal(() => codec.decode(codec.encode('c', 'SELECT 1'), 'SELECT 2'))).toEqual(REFUSED);
  });

  test('tampered tokens: 400 with the reason', () => {
    const body = json(codec.encode('c', 'SELECT 1'));
    const tampered = [
      token({ ...body, q: '0123456789abcdef' }),
      token({ ...body, v: 2 }),
      token({ ...body, extra: 1 }),
      token({ v: body.v, q: body.q }),
      token({ ...body, t: 7 }),
      token({ ...body, t: '' }),
      token([body.v, body.q, body.t]),
    ];
    for (const t of tampered) expect(refusal(() => codec.decode(t, 'SELECT 1'))).toEqual(REFUSED);
  });

  test('a digest that covers the cursor refuses an edited cursor', () => {
    const bound = pageTokenCodec<number[], string>({
      maxLength: 256,
      cursorField: 'c',
      digestField: 'h',
      digest: (c, request) => checksum(JSON.stringify([request, c]), 'base64url', 22),
      isCursor: (c): c is number[] => Array.isArray(c) && c.every((n) => typeof n === 'number'),
    });
    const body = json(bound.encode([1, 2], 'r'));
    expect(bound.decode(token(body), 'r')).toEqual([1, 2]);
    expect(refusal(() => bound.decode(token({ ...body, c: [1, 3] }), 'r'))).toEqual(REFUSED);
  });

  test.each([
    ['empty', ''],
    ['not base64url', "abc'; --"],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['JSON null', token(null)],
    ['too long', 'A'.repeat(65)],
  ])('garbage (%s): 400 with the reason', (_, garbage) => {
    expect(refusal(() => codec.decode(garbage, 'SELECT 1'))).toEqual(REFUSED);
  });

  test('an engine refusing a cursor it issued (expired) answers the same error with its own reason', () => {
    const e = invalidToken('nextToken has expired or is not valid for this query');
    expect({ status: e.status, code: e.code, message: e.message })
      .toEqual({ status: 400, code: 'InvalidNextToken', message: 'nextToken has expired or is not valid for this query' });
  });
});
