import { query } from '../../db/sql.ts';
import type { Em } from '../../db/orm.ts';
import { validationFailed, type FieldError } from '../../http/problem.ts';
import { parseTimestamp } from '../../http/time.ts';

export const MAX_RANGE_DAYS = 366;
export const DEFAULT_RANGE_DAYS = 30;

/** A resolved range `[from, to)`: RFC 3339 UTC strings with microseconds, as PostgreSQL computed them. */
export interface Range {
  from: string;
  to: string;
  tz: string;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// IANA names: letters, digits, `_`, `-`, `+` in `/`-separated parts. This rules out POSIX strings
// such as `+05:30` or `UTC+3`, which PostgreSQL would accept with the sign inverted.
const ZONE = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCDate() === day && date.getUTCMonth() === month - 1;
}

type Bound = { kind: 'date' | 'datetime'; value: string } | { kind: 'default'; value: null };

function parseBound(value: string | undefined, pointer: string, errors: FieldError[]): Bound {
  if (value === undefined) return { kind: 'default', value: null };
  const date = DATE.exec(value);
  if (date) {
    const [year, month, day] = date.slice(1, 4).map(Number) as [number, number, number];
    if (isCalendarDate(year, month, day)) return { kind: 'date', value };
  }
  if (parseTimestamp(value) !== null) return { kind: 'datetime', value };
  errors.push({ pointer, message: 'must be a date (YYYY-MM-DD) or an RFC 3339 date-time, in the years 0001 to 9999' });
  return { kind: 'default', value: null };
}

/** Whether `tz` is an IANA time zone that both JavaScript and PostgreSQL know (PostgreSQL is asked in resolveRange). */
function isTimeZoneName(tz: string): boolean {
  if (!ZONE.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** An instant as the contract prints it: RFC 3339 in UTC with microseconds. */
export const ISO = (expression: string) => `to_char(${expression} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

// Parameters: tz, to kind, to value, from kind, from value. Dates are days in tz (`to` included
// whole); a missing `to` is the end of today in tz, a missing `from` 30 days before `to`'s day.
const RANGE_SQL = `
with p as (select $1::text as tz, $2::text as to_kind, $3::text as to_value, $4::text as from_kind, $5::text as from_value),
t as (
  select p.*, case to_kind
           when 'date' then (to_value::date + 1)::timestamp at time zone tz
           when 'datetime' then to_value::timestamptz
           else ((now() at time zone tz)::date + 1)::timestamp at time zone tz
         end as to_ts
    from p
),
f as (
  select t.*, case from_kind
           when 'date' then from_value::date::timestamp at time zone tz
           when 'datetime' then from_value::timestamptz
           else (((to_ts - interval '1 microsecond') at time zone tz)::date - ${DEFAULT_RANGE_DAYS - 1})::timestamp at time zone tz
         end as from_ts
    from t
)
select ${ISO('from_ts')} as from_ts, ${ISO('to_ts')} as to_ts,
       from_ts < to_ts as ordered,
       -- RFC 3339 names the years 0001 to 9999 only (a day in tz may start in year 0 in UTC).
       from_ts >= '0001-01-01 00:00:00+00'::timestamptz as from_printable,
       to_ts <= '9999-12-31 23:59:59.999999+00'::timestamptz as to_printable,
       (to_ts at time zone tz) <= (from_ts at time zone tz) + interval '${MAX_RANGE_DAYS} days' as short_enough
  from f`;

/**
 * Validates and resolves `from`, `to` and `tz` to instants. PostgreSQL does the calendar work,
 * so a day in tz is exactly what the bucketing queries call a day (23 or 25 hours across DST).
 */
export async function resolveRange(em: Em, input: { from?: string; to?: string; tz?: string }): Promise<Range> {
  const errors: FieldError[] = [];
  const tz = input.tz ?? 'UTC';
  const from = parseBound(input.from, '/query/from', errors);
  const to = parseBound(input.to, '/query/to', errors);
  if (!isTimeZoneName(tz)) errors.push({ pointer: '/query/tz', message: 'must be an IANA time zone, e.g. Europe/Amsterdam' });
  if (errors.length) throw validationFailed(errors);

  let row: { from_ts: string; to_ts: string; ordered: boolean; from_printable: boolean; to_printable: boolean; short_enough: boolean } | undefined;
  try {
    [row] = await query<typeof row & object>(em, RANGE_SQL, [tz, to.kind, to.value, from.kind, from.value]);
  } catch (error) {
    // 22023: a zone name JavaScript knows but PostgreSQL does not; 22008: a date out of range.
    const message = error instanceof Error ? error.message : '';
    if (/time zone/i.test(message)) throw validationFailed([{ pointer: '/query/tz', message: 'is not a time zone the database knows' }]);
    if (/out of range/i.test(message)) throw validationFailed([{ pointer: input.to !== undefined ? '/query/to' : '/query/from', message: 'is out of range' }]);
    throw error;
  }
  const outOfRange = 'is out of range (years 0001 to 9999 in UTC)';
  if (!row!.from_printable) throw validationFailed([{ pointer: '/query/from', message: outOfRange }]);
  if (!row!.to_printable) throw validationFailed([{ pointer: '/query/to', message: outOfRange }]);
  if (!row!.ordered) throw validationFailed([{ pointer: '/query/to', message: 'must be after from' }]);
  if (!row!.short_enough) throw validationFailed([{ pointer: '/query/to', message: `must be at most ${MAX_RANGE_DAYS} days after from` }]);
  return { from: row!.from_ts, to: row!.to_ts, tz };
}
