import { isUuid } from './ids.ts';
import { validationFailed } from './problem.ts';
import { isPgTimestampText } from './time.ts';

/**
 * Keyset cursors: the sort key of the last row of a page, opaque to clients (base64url JSON).
 * Timestamps travel as PostgreSQL printed them, so microseconds survive the round trip.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

const invalidCursor = () => validationFailed([{ pointer: '/query/cursor', message: 'is not a cursor of this list' }]);

/**
 * `isValid` checks the parts before they reach SQL: a forged part that the database cannot cast
 * must be a 422 like a garbled cursor, not a 500.
 */
export function decodeCursor(cursor: string | undefined, arity: number, isValid: (key: string[]) => boolean = () => true): string[] | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  // PostgreSQL text cannot hold NUL: such a part would break the query's protocol message.
  const storable = (part: unknown) => typeof part === 'string' && part.length <= 100 && !part.includes('\u0000') && part.isWellFormed();
  if (Array.isArray(key) && key.length === arity && key.every(storable) && isValid(key)) {
    return key as string[];
  }
  throw invalidCursor();
}

export interface TimeIdKey {
  /** As PostgreSQL printed it. */
  at: string;
  id: string;
}

/** The cursor of a list ordered by (a timestamp, a uuid): both parts checked, or a 422. */
export function decodeTimeIdCursor(cursor: string | undefined): TimeIdKey | undefined {
  const key = decodeCursor(cursor, 2, ([at, id]) => isPgTimestampText(at!) && isUuid(id!));
  return key && { at: key[0]!, id: key[1]! };
}

/** Reads one row more than the page size to know whether another page follows. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => (string | number)[]): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null };
}
