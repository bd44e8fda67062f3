/*
 * Timestamps: what the API accepts, and how it prints what the database holds.
 *
 * Every timestamp the API prints is RFC 3339, so it must lie in the years 0001 to 9999 in UTC.
 * What a client writes as the time of an event (a message's `createdAt`, an OTLP span) must also
 * be plausible: not before EVENT_TIME_MIN and not more than EVENT_TIME_MAX_AHEAD_MS ahead of the
 * server's clock. Otherwise one message could sit at the top of every list for ever, escape
 * retention, or (before year 1 in UTC) be stored as a BC date that no RFC 3339 string can name.
 */

const PG_FRACTION = /\.(\d{1,6})/;

/** Microseconds since the epoch of the first and last instant an RFC 3339 string in UTC can name. */
export const MIN_PRINTABLE_US = utcMicros(1, 1, 1, 0, 0, 0, 0);
export const MAX_PRINTABLE_US = utcMicros(9999, 12, 31, 23, 59, 59, 999_999);
const MIN_PRINTABLE = '0001-01-01T00:00:00.000000Z';
const MAX_PRINTABLE = '9999-12-31T23:59:59.999999Z';

/** Client event times: not before this instant. */
export const EVENT_TIME_MIN = '2000-01-01T00:00:00Z';
export const EVENT_TIME_MIN_US = utcMicros(2000, 1, 1, 0, 0, 0, 0);
/** Client event times: not more than this far ahead of the server's clock (clock skew, buffering). */
export const EVENT_TIME_MAX_AHEAD_MS = 24 * 60 * 60 * 1000;
export const EVENT_TIME_RULE = `must be between ${EVENT_TIME_MIN} and one day after the server's clock`;

function utcMicros(year: number, month: number, day: number, hour: number, minute: number, second: number, micros: number): bigint {
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  date.setUTCFullYear(year);
  return BigInt(date.getTime()) * 1000n + BigInt(micros);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 timestamp as microseconds since the epoch in UTC, as PostgreSQL stores it (fractions
 * rounded to microseconds), or null when it is not one PostgreSQL takes unchanged: a real
 * calendar date, an offset within +-15:59, and an instant in the years 0001 to 9999 in UTC
 * (`0001-01-01T00:00:00+01:00` is in year 0 in UTC: PostgreSQL would store a BC date).
 */
export function parseTimestamp(value: string): bigint | null {
  const m = RFC3339.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const probe = new Date(Date.UTC(2000, month - 1, day));
  probe.setUTCFullYear(year);
  if (probe.getUTCDate() !== day || probe.getUTCMonth() !== month - 1) return null;
  let offsetMinutes = 0;
  if (m[8] !== undefined) {
    const hours = Number(m[9]);
    const minutes = Number(m[10]);
    if (hours > 15 || minutes > 59) return null;
    offsetMinutes = (m[8] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  // PostgreSQL rounds to the microsecond, which may carry into the next second (or year).
  const fraction = (m[7] ?? '').padEnd(9, '0');
  const micros = Math.round(Number(fraction) / 1000);
  const at = utcMicros(year, month, day, hour, minute, second, 0) + BigInt(micros) - BigInt(offsetMinutes) * 60_000_000n;
  return at < MIN_PRINTABLE_US || at > MAX_PRINTABLE_US ? null : at;
}

/** Whether `value` is a client event time the API accepts now (see EVENT_TIME_RULE). */
export function isPlausibleEventTime(value: string, nowMs = Date.now()): boolean {
  const at = parseTimestamp(value);
  return at !== null && isPlausibleEventMicros(at, nowMs);
}

export function isPlausibleEventMicros(at: bigint, nowMs = Date.now()): boolean {
  return at >= EVENT_TIME_MIN_US && at <= BigInt(nowMs + EVENT_TIME_MAX_AHEAD_MS) * 1000n;
}

// timestamptz as PostgreSQL prints it (DateStyle ISO): `2026-11-24 04:10:50.7865+00`, with more
// year digits after 9999 and ` BC` before year 1.
const PG_TEXT = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?( BC)?$/;

function microsOfPgText(text: string): bigint | null {
  const m = PG_TEXT.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || year > (m[12] ? 4713 : 294276) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  if (m[9] !== undefined && Number(m[9]) > 15) return null;
  if ((m[10] !== undefined && Number(m[10]) > 59) || (m[11] !== undefined && Number(m[11]) > 59)) return null;
  const astronomical = m[12] ? 1 - year : year;
  const probe = new Date(Date.UTC(2000, month - 1, day));
  probe.setUTCFullYear(astronomical);
  if (probe.getUTCDate() !== day || probe.getUTCMonth() !== month - 1) return null;
  const micros = Number((m[7] ?? '').padEnd(6, '0'));
  const offsetSeconds = m[8] ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) : 0;
  return utcMicros(astronomical, month, day, hour, minute, second, micros) - BigInt(offsetSeconds) * 1_000_000n;
}

/**
 * Whether `text` is a timestamp as PostgreSQL prints one it holds (a keyset cursor's part): any
 * instant PostgreSQL can store, BC dates and years after 9999 included, since rows stored before
 * the input was bounded must still page.
 */
export const isPgTimestampText = (text: string): boolean => microsOfPgText(text) !== null;

function printMicros(at: bigint): string {
  if (at < MIN_PRINTABLE_US) return MIN_PRINTABLE;
  if (at > MAX_PRINTABLE_US) return MAX_PRINTABLE;
  const ms = at / 1000n - (at % 1000n < 0n ? 1n : 0n);
  const rest = at - ms * 1000n;
  return new Date(Number(ms)).toISOString().replace('Z', `${rest.toString().padStart(3, '0')}Z`);
}

/**
 * Every timestamp of the API: RFC 3339 in UTC with six fractional digits, so that the strings
 * sort like the instants. PostgreSQL keeps microseconds but JavaScript dates only milliseconds:
 * the extra digits of a timestamp read as text are carried over (they order a batch's messages).
 *
 * It never throws on what the database holds: an instant outside the years 0001 to 9999 in UTC
 * (a BC date, year 10000 and later, stored before the API bounded its input) is printed as the
 * nearest instant RFC 3339 can name.
 */
export function iso(value: string | Date): string {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new RangeError('Invalid date');
    return printMicros(BigInt(ms) * 1000n);
  }
  const micros = microsOfPgText(value);
  if (micros !== null) return printMicros(micros);
  const parsed = new Date(value).getTime();
  if (Number.isNaN(parsed)) throw new RangeError(`Not a timestamp: ${value}`);
  const extra = (PG_FRACTION.exec(value)?.[1] ?? '').padEnd(6, '0').slice(3);
  return printMicros(BigInt(parsed) * 1000n + BigInt(extra));
}

export const isoOrNull = (value: string | Date | null | undefined) => (value == null ? null : iso(value));
