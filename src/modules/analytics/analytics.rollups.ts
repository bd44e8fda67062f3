/*
 * Reading the rollups of Migration20261124300000_analytics_rollups, exactly.
 *
 * Every figure is asked for over spans: a CTE `spans(key, lo, hi)` of half-open instants (one
 * span for a summary, one per day or bucket for a series), next to a CTE `p` of the range; the
 * organization is parameter $1, named on every table read. A span is read from the rollup rows
 * of the whole grains (15-minute slots, UTC days) between the grain boundaries nearest to its bounds, corrected with the raw messages
 * between each bound and its nearest boundary: added where the bound lies before the boundary
 * (lo) or after it (hi), subtracted where the rollup rows cover more than the span. So a span
 * never reads more than half a grain of raw messages at each end, and none when its bounds are
 * on the grain, as every hour, day or week of a time zone is on the 15-minute grain. A span
 * shorter than one grain is read from raw messages alone.
 *
 * The rollups and the messages are read by one statement, in one snapshot, and the write
 * functions change both in the same transactions: the corrections always match the rollup rows.
 */

export type Grain = 'slot' | 'day';

const GRAIN: Record<Grain, { length: string; round: (at: string) => string }> = {
  slot: { length: `interval '15 minutes'`, round: (at) => `analytics_slot(${at} + interval '450 seconds')` },
  day: { length: `interval '24 hours'`, round: (at) => `analytics_day(${at} + interval '12 hours')` },
};

/**
 * `(key, sign, rollup, lo, hi)`: the pieces of every span. A rollup piece reads the rollup rows
 * whose period starts in [lo, hi); a raw piece the messages created in [lo, hi). Each counts
 * `sign` (1 or -1) times. A span of its own raw piece only has `rollup` false in every piece.
 */
export function piecesSql(spans: string, grain: Grain): string {
  const { length, round } = GRAIN[grain];
  return `
    select s.key, x.sign, x.rollup, x.lo, x.hi
      from ${spans} s
      cross join lateral (select ${round('s.lo')} as a, ${round('s.hi')} as b) g
      cross join lateral (values (1, true, g.a, g.b),
                                 (1, false, s.lo, g.a), (-1, false, g.a, s.lo),
                                 (-1, false, s.hi, g.b), (1, false, g.b, s.hi)) as x(sign, rollup, lo, hi)
     where s.hi - s.lo >= ${length} and x.lo < x.hi
    union all
    select s.key, 1, false, s.lo, s.hi
      from ${spans} s
     where s.hi - s.lo < ${length} and s.lo < s.hi`;
}

// Each piece is read by a subquery of its own (LATERAL), so every read is an index range scan
// bounded by the piece, whatever the planner guesses about the pieces.
const ORG = `$1::uuid`;
const RAW_MESSAGES = `messages m where m.organization_id = ${ORG} and m.created_at >= x.lo and m.created_at < x.hi`;

const SLOT_SUMS = [
  'messages',
  'system_messages',
  'user_messages',
  'assistant_messages',
  'tool_messages',
  'function_messages',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'cost_usd',
  'latency_count',
  'latency_sum',
];

/** The sums of analytics_slots per span key, as CTE `figures(key, <sums>)` (and its helpers). */
export function slotFiguresSql(spans: string): string {
  return `
    figure_pieces as (${piecesSql(spans, 'slot')}),
    figure_parts as (
      select x.key, x.sign, f.*
        from figure_pieces x
        cross join lateral (
          select ${SLOT_SUMS.map((c) => `sum(r.${c}) as ${c}`).join(', ')}
            from analytics_slots r
           where r.organization_id = ${ORG} and r.slot >= x.lo and r.slot < x.hi
        ) f
       where x.rollup
      union all
      select x.key, x.sign, f.*
        from figure_pieces x
        cross join lateral (
          select count(*) as messages,
                 count(*) filter (where m.role = 'system') as system_messages,
                 count(*) filter (where m.role = 'user') as user_messages,
                 count(*) filter (where m.role = 'assistant') as assistant_messages,
                 count(*) filter (where m.role = 'tool') as tool_messages,
                 count(*) filter (where m.role = 'function') as function_messages,
                 sum(m.prompt_tokens) as prompt_tokens,
                 sum(m.completion_tokens) as completion_tokens,
                 sum(m.total_tokens) as total_tokens,
                 sum(m.cost_usd) as cost_usd,
                 count(m.latency_ms) filter (where m.role = 'assistant') as latency_count,
                 sum(m.latency_ms) filter (where m.role = 'assistant') as latency_sum
            from ${RAW_MESSAGES}
        ) f
       where not x.rollup
    ),
    figures as (
      select key, ${SLOT_SUMS.map((c) => `sum(sign * ${c}) as ${c}`).join(', ')}
        from figure_parts
       group by key
    )`;
}

/**
 * Messages per model (`what = 'model'`) or per tag of their chat (`what = 'tag'`) and span key,
 * as CTE `counts(key, name, messages)`, zero counts left out. Raw messages count once per current
 * tag of their chat, like the rows of analytics_tag_days.
 */
export function dayCountsSql(spans: string, what: 'model' | 'tag'): string {
  const raw =
    what === 'model'
      ? `select m.model as name, count(*) as messages from ${RAW_MESSAGES} and m.model is not null group by m.model`
      : `select t.tag as name, sum(per_chat.messages) as messages
           from (select m.chat_id, count(*) as messages from ${RAW_MESSAGES} group by m.chat_id) per_chat
           -- LIMIT keeps this a lookup by primary key per chat (not a join over all chats).
           cross join lateral (select c.tags from chats c where c.organization_id = ${ORG} and c.id = per_chat.chat_id limit 1) c
           cross join lateral unnest(c.tags) as t(tag)
          where t.tag is not null
          group by t.tag`;
  return `
    count_pieces as (${piecesSql(spans, 'day')}),
    count_parts as (
      select x.key, n.name, x.sign * n.messages as messages
        from count_pieces x
        cross join lateral (
          select r.${what} as name, sum(r.messages) as messages
            from analytics_${what}_days r
           where r.organization_id = ${ORG} and r.day >= x.lo and r.day < x.hi
           group by r.${what}
        ) n
       where x.rollup
      union all
      select x.key, n.name, x.sign * n.messages
        from count_pieces x
        cross join lateral (${raw}) n
       where not x.rollup
    ),
    counts as (
      select key, name, sum(messages) as messages
        from count_parts
       group by key, name
      having sum(messages) <> 0
    )`;
}

// The whole UTC months inside a day piece: the first month start at or after lo, the last at or
// before hi (none: both at hi).
const MONTH_AFTER = (at: string) => `((date_trunc('month', (${at} at time zone 'UTC') - interval '1 microsecond') + interval '1 month') at time zone 'UTC')`;
const MONTH_BEFORE = (at: string) => `analytics_month(${at})`;

const FRACTIONS = [0.5, 0.95, 0.99];
const ASSISTANT_LATENCY = `m.role = 'assistant' and m.latency_ms is not null`;

/**
 * Latency percentiles of assistant messages per span key, as CTE `latency(key, count, p50, p95,
 * p99)`, exactly as percentile_cont over the messages: the values at ranks floor and ceil of
 * `fraction * (count - 1)`, interpolated in float8.
 *
 * A rank is found in two steps. First the counts per bin of values (whole UTC months, single
 * days, raw messages through messages_latency_idx) tell which bin holds the rank and its rank
 * inside the bin; then the counts per value of that bin alone tell the value. So a year reads a
 * few thousand rows, not a count for every latency value of every day. A span shorter than a day
 * (an hour) is read from messages_latency_idx by percentile_cont itself.
 */
export function latencySql(spans: string): string {
  const value = (fraction: number, rank: 'lo' | 'hi') => `max(v) filter (where fraction = ${fraction} and rank_of = '${rank}')::float8`;
  const percentile = (fraction: number) => {
    const position = `max(position) filter (where fraction = ${fraction})`;
    return `${value(fraction, 'lo')} + (${position} - floor(${position})) * (${value(fraction, 'hi')} - ${value(fraction, 'lo')})`;
  };
  // The counts of one month or day (x.lo) of `table`, per `key`, within the bin x.bin if `inBin`.
  const periodCounts = (table: string, period: 'month' | 'day', key: 'bin' | 'latency_ms', inBin: boolean) => `
      select x.key, x.sign, ${inBin ? 'x.bin, ' : ''}c.k, c.n
        from ${inBin ? 'latency_needed_sources' : 'latency_sources'} x
        cross join lateral (
          select r.${key} as k, sum(r.messages) as n
            from ${table} r
           where r.organization_id = ${ORG} and r.${period} = x.lo
                 ${inBin ? 'and r.latency_ms >= x.bin and r.latency_ms < x.bin + analytics_latency_bin_width(x.bin)' : ''}
           group by r.${key}
        ) c
       where x.source = '${period}'`;
  return `
    latency_pieces as (
      select x.*, case when m.m0 < m.m1 then m.m0 else x.hi end as m0, case when m.m0 < m.m1 then m.m1 else x.hi end as m1
        from (${piecesSql(spans, 'day')}) x
        cross join lateral (select ${MONTH_AFTER('x.lo')} as m0, ${MONTH_BEFORE('x.hi')} as m1) m
    ),
    -- A span read from raw messages alone needs no counts: percentile_cont reads it directly.
    latency_raw_keys as (
      select key from latency_pieces group by key having not bool_or(rollup)
    ),
    latency_direct as (
      select x.key, count(*) as count,
             ${FRACTIONS.map((f) => `percentile_cont(${f}) within group (order by v.v) as p${Math.round(f * 100)}`).join(',\n             ')}
        from latency_pieces x
        cross join lateral (select m.latency_ms as v from ${RAW_MESSAGES} and ${ASSISTANT_LATENCY}) v
       where x.key in (select key from latency_raw_keys)
       group by x.key
    ),
    -- Single months and days (each read by equality, so the index gives its values in order), and raw pieces.
    latency_sources as (
      select x.key, x.sign, 'month' as source, g.month at time zone 'UTC' as lo, (g.month + interval '1 month') at time zone 'UTC' as hi
        from latency_pieces x
        cross join generate_series(x.m0 at time zone 'UTC', (x.m1 at time zone 'UTC') - interval '1 month', interval '1 month') as g(month)
       where x.rollup
      union all
      select x.key, x.sign, 'day', g.day, g.day + interval '24 hours'
        from latency_pieces x
        cross join lateral (values (x.lo, x.m0), (x.m1, x.hi)) as d(lo, hi)
        cross join generate_series(d.lo, d.hi - interval '24 hours', interval '24 hours') as g(day)
       where x.rollup
      union all
      select x.key, x.sign, 'raw', x.lo, x.hi from latency_pieces x where not x.rollup and x.key not in (select key from latency_raw_keys)
    ),
    -- Each raw piece is read once, though the pieces at the ends of adjacent days are the same.
    latency_raw_bins as (
      select x.lo, x.hi, b.bin, b.n
        from (select distinct lo, hi from latency_sources where source = 'raw') x
        cross join lateral (
          select analytics_latency_bin(m.latency_ms) as bin, count(*) as n
            from ${RAW_MESSAGES} and ${ASSISTANT_LATENCY}
           group by 1
        ) b
    ),
    latency_bin_parts as (
      ${periodCounts('analytics_latency_month_bins', 'month', 'bin', false)}
      union all
      ${periodCounts('analytics_latency_day_bins', 'day', 'bin', false)}
      union all
      select x.key, x.sign, b.bin, b.n
        from latency_sources x
        join latency_raw_bins b on b.lo = x.lo and b.hi = x.hi
       where x.source = 'raw'
    ),
    latency_bin_counts as (
      select key, k as bin, sum(sign * n)::bigint as n from latency_bin_parts group by key, k having sum(sign * n) <> 0
    ),
    latency_bins as (
      select key, bin, n, sum(n) over (partition by key order by bin rows unbounded preceding) - n as below
        from latency_bin_counts
    ),
    latency_totals as (
      select key, sum(n)::bigint as total from latency_bin_counts group by key
    ),
    latency_targets as (
      select t.key, f.fraction, f.fraction * (t.total - 1)::float8 as position, r.rank_of, r.rank
        from latency_totals t
        cross join unnest(array[${FRACTIONS.join(', ')}]::float8[]) as f(fraction)
        cross join lateral (values ('lo', floor(f.fraction * (t.total - 1)::float8)::bigint),
                                   ('hi', ceil(f.fraction * (t.total - 1)::float8)::bigint)) as r(rank_of, rank)
    ),
    -- The bin holding each target rank, and the rank inside that bin.
    latency_target_bins as (
      select t.*, b.bin, t.rank - b.below as rank_in_bin
        from latency_targets t
        join latency_bins b on b.key = t.key and t.rank >= b.below and t.rank < b.below + b.n
    ),
    latency_needed as (
      select distinct t.key, t.bin from latency_target_bins t
    ),
    latency_needed_sources as (
      select x.*, n.bin from latency_sources x join latency_needed n on n.key = x.key
    ),
    latency_raw_values as (
      select x.lo, x.hi, analytics_latency_bin(v.v) as bin, v.v, v.n
        from (select lo, hi, array_agg(distinct bin) as bins from latency_needed_sources where source = 'raw' group by lo, hi) x
        cross join lateral (
          select m.latency_ms as v, count(*) as n
            from ${RAW_MESSAGES} and ${ASSISTANT_LATENCY} and analytics_latency_bin(m.latency_ms) = any(x.bins)
           group by 1
        ) v
    ),
    latency_value_parts as (
      ${periodCounts('analytics_latency_months', 'month', 'latency_ms', true)}
      union all
      ${periodCounts('analytics_latency_days', 'day', 'latency_ms', true)}
      union all
      select x.key, x.sign, v.bin, v.v, v.n
        from latency_needed_sources x
        join latency_raw_values v on v.lo = x.lo and v.hi = x.hi and v.bin = x.bin
       where x.source = 'raw'
    ),
    latency_values as (
      select key, bin, v, n, sum(n) over (partition by key, bin order by v rows unbounded preceding) - n as below
        from (select key, bin, k as v, sum(sign * n)::bigint as n from latency_value_parts group by key, bin, k having sum(sign * n) <> 0) c
    ),
    latency_picks as (
      select t.key, t.fraction, t.position, t.rank_of, v.v
        from latency_target_bins t
        join latency_values v on v.key = t.key and v.bin = t.bin and t.rank_in_bin >= v.below and t.rank_in_bin < v.below + v.n
    ),
    latency as (
      select p.key, max(s.total) as count,
             ${FRACTIONS.map((f) => `${percentile(f)} as p${Math.round(f * 100)}`).join(',\n             ')}
        from latency_picks p
        join latency_totals s on s.key = p.key
       group by p.key
      union all
      select key, count, ${FRACTIONS.map((f) => `p${Math.round(f * 100)}`).join(', ')} from latency_direct
    )`;
}
