import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import type { components, operations } from '../../generated/openapi.ts';
import { validationFailed } from '../../http/problem.ts';
import { ISO, type Range } from './analytics.range.ts';
import { dayCountsSql, latencySql, slotFiguresSql } from './analytics.rollups.ts';

export { resolveRange, type Range } from './analytics.range.ts';

type Summary = components['schemas']['AnalyticsSummary'];
type Timeseries = components['schemas']['AnalyticsTimeseries'];
export type TimeseriesQuery = operations['getAnalyticsTimeseries']['parameters']['query'];
export type Metric = TimeseriesQuery['metric'];
export type Interval = NonNullable<TimeseriesQuery['interval']>;

export const MAX_BUCKETS = 2000;

/**
 * One analytics statement, with JIT compilation off: the planner cannot know how few rows each
 * piece of a range reads, so its estimates pass the JIT threshold, and compiling would take
 * longer (seconds) than running the statement (milliseconds).
 */
function read<T>(em: Em, sql: string, params: unknown[]): Promise<T[]> {
  return em.transactional(async (tx) => {
    // On Citus a SET LOCAL reaches the workers, where the statement runs, only when asked to;
    // elsewhere this is a setting nobody reads.
    await query(tx, `set local citus.propagate_set_commands = 'local'`, []);
    await query(tx, 'set local jit = off', []);
    return query<T>(tx, sql, params);
  });
}

const num = (value: unknown): number => (value == null ? 0 : Number(value));
const numOrNull = (value: unknown): number | null => (value == null ? null : Number(value));

// Every query starts from `p`: the organization ($1, also named directly wherever a table is read, so
// that Citus sends the statement to the organization's node alone), the range and the zone.
const PARAMS = `p as (select $1::uuid as org, $2::timestamptz as lo, $3::timestamptz as hi, $4::text as tz)`;
const paramsOf = (organizationId: string, range: Range) => [organizationId, range.from, range.to, range.tz];
const CHATS_IN_RANGE = `c.organization_id = $1 and c.created_at >= (select lo from p) and c.created_at < (select hi from p)`;

// ---- summary ---------------------------------------------------------------------------------

const WHOLE_RANGE = `spans as (select 0 as key, lo, hi from p)`;

// The days of the range in tz, each cut to the range: a day's messages come from its slots.
const DAYS = `
days as (
  select d::date as day
    from p, generate_series((p.lo at time zone p.tz)::date::timestamp, ((p.hi - interval '1 microsecond') at time zone p.tz)::date::timestamp, interval '1 day') as d
),
spans as (
  select days.day as key,
         greatest(days.day::timestamp at time zone p.tz, p.lo) as lo,
         least((days.day + 1)::timestamp at time zone p.tz, p.hi) as hi
    from days, p
)`;

const FIGURES = `coalesce(messages, 0)::int as messages,
       coalesce(system_messages, 0)::int as system,
       coalesce(user_messages, 0)::int as "user",
       coalesce(assistant_messages, 0)::int as assistant,
       coalesce(tool_messages, 0)::int as tool,
       coalesce(function_messages, 0)::int as function,
       coalesce(prompt_tokens, 0)::bigint as prompt_tokens,
       coalesce(completion_tokens, 0)::bigint as completion_tokens,
       coalesce(total_tokens, 0)::bigint as total_tokens,
       coalesce(cost_usd, 0)::float8 as cost_usd,
       coalesce(latency_count, 0)::int as latency_count,
       (latency_sum::numeric / nullif(latency_count, 0))::float8 as latency_avg`;

// One row per day (the daily series) and one with a null date (the totals), from the same slots.
const MESSAGES_SQL = `
with ${PARAMS}, ${DAYS},
${slotFiguresSql('spans')},
totals as (
  select sum(messages) as messages, sum(system_messages) as system_messages, sum(user_messages) as user_messages,
         sum(assistant_messages) as assistant_messages, sum(tool_messages) as tool_messages, sum(function_messages) as function_messages,
         sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens, sum(total_tokens) as total_tokens,
         sum(cost_usd) as cost_usd, sum(latency_count) as latency_count, sum(latency_sum) as latency_sum
    from figures
)
select to_char(d.day, 'YYYY-MM-DD') as date, ${FIGURES}
  from days d
  left join figures f on f.key = d.day
union all
select null, ${FIGURES} from totals
 order by 1`;

const LATENCY_SQL = `
with ${PARAMS}, ${WHOLE_RANGE},
${latencySql('spans')}
select p50, p95, p99 from latency`;

// Chats count in the range they were created in; both queries read chats_created_idx alone.
// One pass groups the chats by day, message count and reply: the chats per day (rows with a
// date) and, from the counts per message count, percentile_cont's own arithmetic (the values at
// ranks floor and ceil of fraction * (n - 1), interpolated in float8) in the row without a date.
const CHATS_SQL = `
with ${PARAMS},
groups as (
  select (c.created_at at time zone (select tz from p))::date as day, c.message_count as v, c.has_assistant_reply as replied, count(*) as n
    from chats c
   where ${CHATS_IN_RANGE}
   group by 1, 2, 3
),
counts as (
  select v, sum(n) as n, sum(sum(n)) over (order by v rows unbounded preceding) - sum(n) as below from groups group by v
),
totals as (
  select sum(n) as chats, sum(v::numeric * n) / sum(n) as average, sum(n) filter (where not replied) as without_reply from groups
),
percentiles as (
  select f.fraction, t.position, lo.v::float8 + (t.position - floor(t.position)) * (hi.v::float8 - lo.v::float8) as value
    from totals, unnest(array[0.5, 0.95]::float8[]) as f(fraction)
    cross join lateral (select f.fraction * (totals.chats - 1)::float8 as position) t
    join counts lo on floor(t.position) >= lo.below and floor(t.position) < lo.below + lo.n
    join counts hi on ceil(t.position) >= hi.below and ceil(t.position) < hi.below + hi.n
)
select to_char(day, 'YYYY-MM-DD') as date, sum(n)::int as chats, null::float8 as per_chat_avg, null::float8 as per_chat_p50,
       null::float8 as per_chat_p95, null::int as without_reply
  from groups
 group by day
union all
select null, coalesce(chats, 0)::int, average::float8,
       (select value from percentiles where fraction = 0.5), (select value from percentiles where fraction = 0.95),
       coalesce(without_reply, 0)::int
  from totals`;

const END_USERS_SQL = `
with ${PARAMS}
select count(*)::int as end_users
  from (select distinct c.external_user_id from chats c where ${CHATS_IN_RANGE} and c.external_user_id is not null) u`;

const topSql = (what: 'model' | 'tag') => `
with ${PARAMS}, ${WHOLE_RANGE},
${dayCountsSql('spans', what)}
select name, messages::int as messages
  from counts
 order by messages desc, name collate "C"
 limit 10`;

export async function analyticsSummary(em: Em, organizationId: string, range: Range): Promise<Summary> {
  const params = paramsOf(organizationId, range);
  type Row = Record<string, unknown>;
  // Independent queries: on the server each takes its own pooled connection and they run at once.
  const [messages, chats, [users], [latency], models, tags] = await Promise.all([
    read<Row>(em, MESSAGES_SQL, params),
    read<Row>(em, CHATS_SQL, params),
    read<Row>(em, END_USERS_SQL, params),
    read<Row>(em, LATENCY_SQL, params),
    read<{ name: string; messages: unknown }>(em, topSql('model'), params),
    read<{ name: string; messages: unknown }>(em, topSql('tag'), params),
  ]);
  const totals = messages.find((row) => row.date === null)!;
  const chatTotals = chats.find((row) => row.date === null)!;
  const chatsPerDay = new Map(chats.filter((row) => row.date !== null).map((row) => [row.date, row.chats]));
  const latencyCount = num(totals.latency_count);
  return {
    range,
    totals: {
      chats: num(chatTotals.chats),
      messages: num(totals.messages),
      messagesByRole: {
        system: num(totals.system),
        user: num(totals.user),
        assistant: num(totals.assistant),
        tool: num(totals.tool),
        function: num(totals.function),
      },
      endUsers: num(users!.end_users),
      promptTokens: num(totals.prompt_tokens),
      completionTokens: num(totals.completion_tokens),
      totalTokens: num(totals.total_tokens),
      costUsd: num(totals.cost_usd),
    },
    latency: {
      count: latencyCount,
      avg: latencyCount ? numOrNull(totals.latency_avg) : null,
      p50: latencyCount ? numOrNull(latency?.p50) : null,
      p95: latencyCount ? numOrNull(latency?.p95) : null,
      p99: latencyCount ? numOrNull(latency?.p99) : null,
    },
    conversations: {
      messagesPerChat: {
        avg: numOrNull(chatTotals.per_chat_avg),
        p50: numOrNull(chatTotals.per_chat_p50),
        p95: numOrNull(chatTotals.per_chat_p95),
      },
      chatsWithoutAssistantReply: num(chatTotals.without_reply),
    },
    daily: messages
      .filter((row) => row.date !== null)
      .map((row) => ({
        date: String(row.date),
        chats: num(chatsPerDay.get(row.date)),
        messages: num(row.messages),
        totalTokens: num(row.total_tokens),
      })),
    topTags: tags.map((row) => ({ tag: row.name, messages: num(row.messages) })),
    topModels: models.map((row) => ({ model: row.name, messages: num(row.messages) })),
  };
}

// ---- timeseries ------------------------------------------------------------------------------

/**
 * The buckets' starts as instants. Hours step in absolute time from the hour (in tz) holding
 * `from`, so the repeated hour of a DST fall-back is two buckets and the skipped one none; days and
 * weeks step on the calendar in tz (weeks from Monday) and become instants at their local midnight.
 */
function bucketsSql(interval: Interval): string {
  if (interval === 'hour') {
    return `select b as start
              from p, generate_series(date_trunc('hour', p.lo, p.tz), p.hi - interval '1 microsecond', interval '1 hour') as b`;
  }
  return `select b at time zone p.tz as start
            from p, generate_series(date_trunc('${interval}', p.lo at time zone p.tz),
                                    (p.hi - interval '1 microsecond') at time zone p.tz,
                                    interval '1 ${interval}') as b`;
}

/** Each bucket cut to the range: the span its value is computed over. */
const bucketSpans = (interval: Interval) => `
buckets as (${bucketsSql(interval)}),
spans as (
  select start as key,
         greatest(start, (select lo from p)) as lo,
         least(coalesce(lead(start) over (order by start), (select hi from p)), (select hi from p)) as hi
    from buckets
)`;

type Source = 'chats' | 'slots' | 'latency';

const METRICS: Record<Metric, { source: Source; value: string; empty: 0 | null }> = {
  chats: { source: 'chats', value: 'count(*)::float8', empty: 0 },
  endUsers: { source: 'chats', value: 'count(distinct c.external_user_id)::float8', empty: 0 },
  messages: { source: 'slots', value: 'messages::float8', empty: 0 },
  promptTokens: { source: 'slots', value: 'prompt_tokens::float8', empty: 0 },
  completionTokens: { source: 'slots', value: 'completion_tokens::float8', empty: 0 },
  totalTokens: { source: 'slots', value: 'total_tokens::float8', empty: 0 },
  costUsd: { source: 'slots', value: 'cost_usd::float8', empty: 0 },
  latencyAvg: { source: 'slots', value: '(latency_sum::numeric / nullif(latency_count, 0))::float8', empty: null },
  latencyP50: { source: 'latency', value: 'p50', empty: null },
  latencyP95: { source: 'latency', value: 'p95', empty: null },
};

/** `data(key, value)`: the metric per bucket start. */
function dataSql(metric: Metric, interval: Interval): string {
  const { source, value } = METRICS[metric];
  if (source === 'slots') return `${slotFiguresSql('spans')}, data as (select key, ${value} as value from figures)`;
  if (source === 'latency') return `${latencySql('spans')}, data as (select key, ${value} as value from latency)`;
  // date_trunc with a zone truncates in tz and keeps the instant's own offset below a day, like
  // the hour series; for days and weeks it maps local midnight back exactly as `at time zone` does.
  return `data as (
    select date_trunc('${interval}', c.created_at, (select tz from p)) as key, ${value} as value
      from chats c
     where ${CHATS_IN_RANGE}
     group by 1
  )`;
}

export async function analyticsTimeseries(em: Em, organizationId: string, range: Range, metric: Metric, interval: Interval): Promise<Timeseries> {
  const params = paramsOf(organizationId, range);
  const [{ n } = { n: 0 }] = await query<{ n: unknown }>(em, `with ${PARAMS} select count(*)::int as n from (${bucketsSql(interval)}) b`, params);
  if (num(n) > MAX_BUCKETS) {
    throw validationFailed([{ pointer: '/query/interval', message: `gives ${num(n)} buckets over this range; at most ${MAX_BUCKETS}` }]);
  }
  const rows = await read<{ start: string; value: unknown }>(
    em,
    `with ${PARAMS}, ${bucketSpans(interval)},
     ${dataSql(metric, interval)}
     select ${ISO('s.key')} as start, d.value
       from spans s left join data d on d.key = s.key
      order by s.key`,
    params,
  );
  const empty = METRICS[metric].empty;
  return {
    metric,
    interval,
    range,
    points: rows.map((row) => ({ start: row.start, value: row.value == null ? empty : Number(row.value) })),
  };
}
