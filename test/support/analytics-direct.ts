import type { Em } from '../../src/db/orm.ts';
import type { components, operations } from '../../src/generated/openapi.ts';

/*
 * The analytics computed directly over the raw messages and chats, with plain SQL aggregates
 * (percentile_cont, count(distinct), date_trunc in the zone): the reference that the rollups
 * must always equal. Tests and the analytics bench compare the API's answers with these.
 */

type Summary = components['schemas']['AnalyticsSummary'];
type Timeseries = components['schemas']['AnalyticsTimeseries'];
type TimeseriesQuery = operations['getAnalyticsTimeseries']['parameters']['query'];
type Metric = TimeseriesQuery['metric'];
type Interval = NonNullable<TimeseriesQuery['interval']>;
type Range = Summary['range'];

const ISO = (expression: string) => `to_char(${expression} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const num = (value: unknown): number => (value == null ? 0 : Number(value));
const numOrNull = (value: unknown): number | null => (value == null ? null : Number(value));

// Every query names the organization and the range the same way, so the (organization_id,
// created_at) indexes of messages and chats bound what they read.
const MESSAGES_IN_RANGE = `m.organization_id = ? and m.created_at >= ?::timestamptz and m.created_at < ?::timestamptz`;
const CHATS_IN_RANGE = `c.organization_id = ? and c.created_at >= ?::timestamptz and c.created_at < ?::timestamptz`;

const TOTALS_SQL = `
select count(*)::int as messages,
       count(*) filter (where m.role = 'system')::int as system,
       count(*) filter (where m.role = 'user')::int as "user",
       count(*) filter (where m.role = 'assistant')::int as assistant,
       count(*) filter (where m.role = 'tool')::int as tool,
       count(*) filter (where m.role = 'function')::int as function,
       coalesce(sum(m.prompt_tokens), 0)::bigint as prompt_tokens,
       coalesce(sum(m.completion_tokens), 0)::bigint as completion_tokens,
       coalesce(sum(m.total_tokens), 0)::bigint as total_tokens,
       coalesce(sum(m.cost_usd), 0)::float8 as cost_usd,
       count(m.latency_ms) filter (where m.role = 'assistant')::int as latency_count,
       (avg(m.latency_ms) filter (where m.role = 'assistant'))::float8 as latency_avg,
       percentile_cont(0.5) within group (order by m.latency_ms) filter (where m.role = 'assistant') as latency_p50,
       percentile_cont(0.95) within group (order by m.latency_ms) filter (where m.role = 'assistant') as latency_p95,
       percentile_cont(0.99) within group (order by m.latency_ms) filter (where m.role = 'assistant') as latency_p99
  from messages m
 where ${MESSAGES_IN_RANGE}`;

// "Chats without an assistant reply" looks at all their messages, whenever they were written.
const CHATS_SQL = `
select count(*)::int as chats,
       count(distinct c.external_user_id)::int as end_users,
       avg(c.message_count)::float8 as per_chat_avg,
       percentile_cont(0.5) within group (order by c.message_count) as per_chat_p50,
       percentile_cont(0.95) within group (order by c.message_count) as per_chat_p95,
       count(*) filter (where not exists (
         select 1 from messages r where r.organization_id = c.organization_id and r.chat_id = c.id and r.role = 'assistant'
       ))::int as without_reply
  from chats c
 where ${CHATS_IN_RANGE}`;

// Parameters: tz, from, to (the days), then organization, from, to, tz twice (messages), then
// organization, from, to, tz (chats).
const DAILY_SQL = `
with days as (
  select d::date as day
    from generate_series((?::timestamptz at time zone ?)::date, ((?::timestamptz - interval '1 microsecond') at time zone ?)::date, interval '1 day') as d
),
m as (
  select (m.created_at at time zone ?)::date as day, count(*) as messages, coalesce(sum(m.total_tokens), 0) as total_tokens
    from messages m
   where ${MESSAGES_IN_RANGE}
   group by 1
),
c as (
  select (c.created_at at time zone ?)::date as day, count(*) as chats
    from chats c
   where ${CHATS_IN_RANGE}
   group by 1
)
select to_char(days.day, 'YYYY-MM-DD') as date, coalesce(c.chats, 0)::int as chats,
       coalesce(m.messages, 0)::int as messages, coalesce(m.total_tokens, 0)::bigint as total_tokens
  from days left join m using (day) left join c using (day)
 order by days.day`;

const TOP_MODELS_SQL = `
select m.model, count(*)::int as messages
  from messages m
 where ${MESSAGES_IN_RANGE} and m.model is not null
 group by m.model
 order by 2 desc, m.model collate "C"
 limit 10`;

// A message counts once for each tag of its chat: messages are counted per chat first (from the
// index), and only then joined to their chats' tags.
const TOP_TAGS_SQL = `
with per_chat as (
  select m.chat_id, count(*) as messages
    from messages m
   where ${MESSAGES_IN_RANGE}
   group by m.chat_id
)
select t.tag, sum(p.messages)::int as messages
  from per_chat p
  join chats c on c.organization_id = ? and c.id = p.chat_id
  cross join lateral unnest(c.tags) as t(tag)
 group by t.tag
 order by 2 desc, t.tag collate "C"
 limit 10`;

export async function directSummary(em: Em, organizationId: string, range: Range): Promise<Summary> {
  const inRange = [organizationId, range.from, range.to];
  // Independent queries: on the server each takes its own pooled connection and they run at once.
  const [[totals], [chats], daily, models, tags] = await Promise.all([
    em.execute<Record<string, unknown>[]>(TOTALS_SQL, inRange),
    em.execute<Record<string, unknown>[]>(CHATS_SQL, inRange),
    em.execute<Record<string, unknown>[]>(DAILY_SQL, [range.from, range.tz, range.to, range.tz, range.tz, ...inRange, range.tz, ...inRange]),
    em.execute<{ model: string; messages: unknown }[]>(TOP_MODELS_SQL, inRange),
    em.execute<{ tag: string; messages: unknown }[]>(TOP_TAGS_SQL, [...inRange, organizationId]),
  ]);
  const latencyCount = num(totals!.latency_count);
  return {
    range,
    totals: {
      chats: num(chats!.chats),
      messages: num(totals!.messages),
      messagesByRole: {
        system: num(totals!.system),
        user: num(totals!.user),
        assistant: num(totals!.assistant),
        tool: num(totals!.tool),
        function: num(totals!.function),
      },
      endUsers: num(chats!.end_users),
      promptTokens: num(totals!.prompt_tokens),
      completionTokens: num(totals!.completion_tokens),
      totalTokens: num(totals!.total_tokens),
      costUsd: num(totals!.cost_usd),
    },
    latency: {
      count: latencyCount,
      avg: latencyCount ? numOrNull(totals!.latency_avg) : null,
      p50: latencyCount ? numOrNull(totals!.latency_p50) : null,
      p95: latencyCount ? numOrNull(totals!.latency_p95) : null,
      p99: latencyCount ? numOrNull(totals!.latency_p99) : null,
    },
    conversations: {
      messagesPerChat: {
        avg: numOrNull(chats!.per_chat_avg),
        p50: numOrNull(chats!.per_chat_p50),
        p95: numOrNull(chats!.per_chat_p95),
      },
      chatsWithoutAssistantReply: num(chats!.without_reply),
    },
    daily: daily.map((row) => ({
      date: String(row.date),
      chats: num(row.chats),
      messages: num(row.messages),
      totalTokens: num(row.total_tokens),
    })),
    topTags: tags.map((row) => ({ tag: row.tag, messages: num(row.messages) })),
    topModels: models.map((row) => ({ model: row.model, messages: num(row.messages) })),
  };
}

interface MetricSql {
  source: 'messages' | 'chats';
  value: string;
  /** The value of an empty bucket. */
  empty: 0 | null;
}

const METRICS: Record<Metric, MetricSql> = {
  chats: { source: 'chats', value: 'count(*)::float8', empty: 0 },
  endUsers: { source: 'chats', value: 'count(distinct x.external_user_id)::float8', empty: 0 },
  messages: { source: 'messages', value: 'count(*)::float8', empty: 0 },
  promptTokens: { source: 'messages', value: 'coalesce(sum(x.prompt_tokens), 0)::float8', empty: 0 },
  completionTokens: { source: 'messages', value: 'coalesce(sum(x.completion_tokens), 0)::float8', empty: 0 },
  totalTokens: { source: 'messages', value: 'coalesce(sum(x.total_tokens), 0)::float8', empty: 0 },
  costUsd: { source: 'messages', value: 'coalesce(sum(x.cost_usd), 0)::float8', empty: 0 },
  latencyAvg: { source: 'messages', value: `(avg(x.latency_ms) filter (where x.role = 'assistant'))::float8`, empty: null },
  latencyP50: { source: 'messages', value: `percentile_cont(0.5) within group (order by x.latency_ms) filter (where x.role = 'assistant')`, empty: null },
  latencyP95: { source: 'messages', value: `percentile_cont(0.95) within group (order by x.latency_ms) filter (where x.role = 'assistant')`, empty: null },
};

/**
 * The buckets' starts as instants. Hours step in absolute time from the hour (in tz) holding
 * `from`, so the repeated hour of a DST fall-back is two buckets and the skipped one none; days and
 * weeks step on the calendar in tz (weeks from Monday) and become instants at their local midnight.
 * Parameters: unit, from, tz, to, tz, tz  (hour: from, tz, to).
 */
function bucketsSql(interval: Interval): string {
  if (interval === 'hour') {
    return `select b as start
              from generate_series(date_trunc('hour', ?::timestamptz, ?), ?::timestamptz - interval '1 microsecond', interval '1 hour') as b`;
  }
  return `select b at time zone ? as start
            from generate_series(date_trunc('${interval}', ?::timestamptz at time zone ?),
                                 (?::timestamptz - interval '1 microsecond') at time zone ?,
                                 interval '1 ${interval}') as b`;
}
const bucketsParams = (interval: Interval, range: Range) =>
  interval === 'hour' ? [range.from, range.tz, range.to] : [range.tz, range.from, range.tz, range.to, range.tz];

export async function directTimeseries(em: Em, organizationId: string, range: Range, metric: Metric, interval: Interval): Promise<Timeseries> {
  const buckets = bucketsSql(interval);
  const { source, value } = METRICS[metric];
  const where = source === 'messages' ? MESSAGES_IN_RANGE.replaceAll('m.', 'x.') : CHATS_IN_RANGE.replaceAll('c.', 'x.');
  // date_trunc with a zone truncates in tz and keeps the instant's own offset below a day, like
  // the hour series; for days and weeks it maps local midnight back exactly as `at time zone` does.
  const rows = await em.execute<{ start: string; value: unknown }[]>(
    `with buckets as (${buckets}),
          data as (
            select date_trunc('${interval}', x.created_at, ?) as start, ${value} as value
              from ${source} x
             where ${where}
             group by 1
          )
     select ${ISO('b.start')} as start, d.value
       from buckets b left join data d on d.start = b.start
      order by b.start`,
    [...bucketsParams(interval, range), range.tz, organizationId, range.from, range.to],
  );
  const empty = METRICS[metric].empty;
  return {
    metric,
    interval,
    range,
    points: rows.map((row) => ({ start: row.start, value: row.value == null ? empty : Number(row.value) })),
  };
}
