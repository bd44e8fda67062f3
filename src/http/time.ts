const PG_FRACTION = /\.(\d{1,6})/;

/**
 * Every timestamp of the API: RFC 3339 in UTC with six fractional digits, so that the strings
 * sort like the instants. PostgreSQL keeps microseconds but JavaScript dates only milliseconds:
 * the extra digits of a timestamp read as text are carried over (they order a batch's messages).
 */
export function iso(value: string | Date): string {
  const text = new Date(value).toISOString();
  const micro = typeof value === 'string' ? (PG_FRACTION.exec(value)?.[1] ?? '').padEnd(6, '0').slice(3) : '000';
  return text.replace('Z', `${micro}Z`);
}

export const isoOrNull = (value: string | Date | null | undefined) => (value == null ? null : iso(value));
