/**
 * Timing of the analytics on a realistic volume:
 *   bun bench/analytics.ts
 * Creates the database chatlogger_bench_analytics on the server of BENCH_DATABASE_URL, migrates
 * it, seeds one organization with 1,000,000 messages over 20,000 chats across 2025 (and another
 * organization with 100,000 that must never be counted), times the summary and timeseries through
 * the HTTP app (read from the rollups), grows the organization to 10,000,000 messages over 200,000
 * chats and times them again. Each request is also computed with plain SQL over the raw messages
 * (the previous implementation, test/support/analytics-direct.ts): its time is the baseline, and
 * its answer must equal the rollups' answer, or the bench fails. Then the cost of the rollup
 * triggers on writes: appends of 300 messages across 30 chats, with the triggers and without.
 * Drops the database at the end.
 */
import { adminQuery, benchApp, benchTenants as tenants, databaseUrl, log, markdownTable, SERVER_URL } from './support.ts';
import { createApp } from '../src/app.ts';
import { openDatabase, type Database, type Em } from '../src/db/orm.ts';
import { directSummary, directTimeseries } from '../test/support/analytics-direct.ts';

const DATABASE = 'chatlogger_bench_analytics';
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const BASELINE_RUNS = Number(process.env.BENCH_BASELINE_RUNS ?? 3);
const WARMUP = 2;
const TZ = 'Europe/Amsterdam';

const benchUrl = () => databaseUrl(DATABASE);

// ---- seeding ---------------------------------------------------------------------------------

const TAGS = ['refund', 'bug', 'feature', 'account', 'login', 'urgent', 'sales', 'support', 'mobile', 'web', 'api', 'churn', 'onboarding', 'feedback', 'security', 'pricing', 'integration'];
const tagsLiteral = `array[${TAGS.map((w) => `'${w}'`).join(',')}]`;
const MODELS = `array['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'llama-70b', 'mistral-large']`;
const chatIdOf = (n: string) => `md5(?::text || ':' || ${n})::uuid`;
// Chat n is created at a golden-ratio point of 2025, so any prefix of chats covers the year evenly.
const chatCreatedAt = (n: string) => `(timestamptz '2025-01-01 00:00:00+00' + ((${n} * 0.6180339887) - floor(${n} * 0.6180339887)) * interval '364 days')`;
const MESSAGES_PER_CHAT = 50;

/** Chats firstChat..lastChat, each with MESSAGES_PER_CHAT messages a few minutes apart. */
async function seedChats(em: Em, organizationId: string, firstChat: number, lastChat: number) {
  await em.execute(
    `insert into chats (organization_id, id, title, tags, external_user_id, source, created_at, updated_at)
     select ?, ${chatIdOf('n')}, 'chat ' || n,
            array_remove(array[case when n % 10 = 0 then 'billing' end, (${tagsLiteral})[1 + n % ${TAGS.length}],
                               case when n % 53 = 0 then 'vip' end], null),
            'user-' || (n % 30000), (array['web', 'ios', 'android', 'api'])[1 + n % 4],
            ${chatCreatedAt('n')}, ${chatCreatedAt('n')}
       from generate_series(${firstChat}, ${lastChat}) as n`,
    [organizationId, organizationId],
  );
  // Message k of chat c; 1 chat in 25 never gets an assistant reply.
  await em.execute(
    `insert into messages (organization_id, id, chat_id, role, content, model, prompt_tokens, completion_tokens,
                           total_tokens, latency_ms, cost_usd, created_at)
     select ?, gen_random_uuid(), ${chatIdOf('c')}, role,
            (array['hello', 'thanks', 'my invoice is wrong', 'ok', 'let me check that for you'])[1 + n % 5],
            case when role = 'assistant' then (${MODELS})[1 + c % 5] end,
            20 + n % 400, 50 + n % 700, 70 + n % 1100,
            case when role = 'assistant' and n % 11 <> 0 then 300 + (n * 7919) % 4000 end,
            case when role = 'assistant' then (n % 1000) * 0.000001 end,
            ${chatCreatedAt('c')} + k * (1 + c * 31 % 90) * interval '1 minute'
       from generate_series(${firstChat}::bigint * ${MESSAGES_PER_CHAT}, (${lastChat}::bigint + 1) * ${MESSAGES_PER_CHAT} - 1) as n,
            lateral (select n / ${MESSAGES_PER_CHAT} as c, n % ${MESSAGES_PER_CHAT} as k) as pos,
            lateral (select case when k = 0 then 'system'
                                 when k % 2 = 1 and c % 25 <> 0 then 'assistant'
                                 when n % 7 = 0 then 'tool'
                                 else 'user' end as role) as r`,
    [organizationId, organizationId],
  );
  await em.execute(
    `update chats c
        set last_message_at = m.last_at, message_count = m.count
       from (select chat_id, max(created_at) as last_at, count(*) as count
               from messages where organization_id = ? and chat_id in (select ${chatIdOf('n')} from generate_series(${firstChat}, ${lastChat}) n)
              group by chat_id) m
      where c.organization_id = ? and c.id = m.chat_id`,
    [organizationId, organizationId, organizationId],
  );
}

/** Secondary indexes are built once after the bulk load, as a restore would. */
async function withIndexesRebuilt(em: Em, load: () => Promise<void>) {
  const indexes = await em.execute<{ name: string; definition: string }[]>(
    `select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
       from pg_index i
      where i.indrelid in ('chats'::regclass, 'messages'::regclass)
        and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
  );
  for (const index of indexes) await em.execute(`drop index ${index.name}`);
  await load();
  log('building indexes');
  for (const index of indexes) await em.execute(index.definition);
}

async function grow(db: Database, orgA: string, fromChat: number, toChat: number, extra?: (tx: Em) => Promise<void>) {
  await db.fork().transactional(async (tx) => {
    await tx.execute(`set local maintenance_work_mem = '512MB'`);
    await withIndexesRebuilt(tx, async () => {
      log(`seeding chats ${fromChat}..${toChat} (${((toChat - fromChat + 1) * MESSAGES_PER_CHAT).toLocaleString('en')} messages)`);
      await seedChats(tx, orgA, fromChat, toChat);
      await extra?.(tx);
    });
  });
  log('vacuum analyze');
  await db.fork().execute('vacuum analyze chats');
  await db.fork().execute('vacuum analyze messages');
}

// ---- measuring -------------------------------------------------------------------------------

type App = ReturnType<typeof createApp>;
type Answer = Record<string, unknown>;

interface Result {
  volume: string;
  name: string;
  rollups: Timing;
  direct: Timing;
}
interface Timing {
  runs: number;
  median: number;
  p95: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function get(app: App, token: string, path: string, query: Record<string, string>): Promise<Answer> {
  const url = `http://bench.local${path}?${new URLSearchParams(query)}`;
  const response = await app.handle(new Request(url, { headers: { authorization: `Bearer ${token}` } }));
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Answer;
}

async function time(run: () => Promise<unknown>, warmup: number, runs: number): Promise<Timing> {
  for (let n = 0; n < warmup; n++) await run();
  const samples: number[] = [];
  for (let n = 0; n < runs; n++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { runs, median: percentile(samples, 50), p95: percentile(samples, 95) };
}

/** Deep equality, floating-point values to 12 significant digits; throws on the first difference. */
function assertSame(actual: unknown, expected: unknown, path: string) {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected))) return;
  } else if (expected !== null && typeof expected === 'object' && actual !== null && typeof actual === 'object') {
    const keys = Object.keys(expected);
    if (keys.length === Object.keys(actual).length) {
      for (const key of keys) assertSame((actual as Answer)[key], (expected as Answer)[key], `${path}.${key}`);
      return;
    }
  } else if (actual === expected) return;
  throw new Error(`rollups and raw SQL differ at ${path}: ${JSON.stringify(actual)} <> ${JSON.stringify(expected)}`);
}

interface Scenario {
  name: string;
  path: '/analytics/orgs/me/summary' | '/analytics/orgs/me/timeseries';
  query: Record<string, string>;
}

const SCENARIOS: Scenario[] = [
  { name: 'summary, 30 days', path: '/analytics/orgs/me/summary', query: { from: '2025-06-01', to: '2025-06-30', tz: TZ } },
  { name: 'summary, 365 days', path: '/analytics/orgs/me/summary', query: { from: '2025-01-01', to: '2025-12-31', tz: TZ } },
  {
    name: 'summary, 365 days, date-time bounds',
    path: '/analytics/orgs/me/summary',
    query: { from: '2025-01-01T07:07:07.123456Z', to: '2026-01-01T03:03:03Z', tz: 'Asia/Kathmandu' },
  },
  { name: 'timeseries messages/day, 365 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'messages', interval: 'day', from: '2025-01-01', to: '2025-12-31', tz: TZ } },
  { name: 'timeseries latencyP95/hour, 30 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'latencyP95', interval: 'hour', from: '2025-06-01', to: '2025-06-30', tz: TZ } },
  { name: 'timeseries latencyP95/day, 365 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'latencyP95', interval: 'day', from: '2025-01-01', to: '2025-12-31', tz: TZ } },
  { name: 'timeseries latencyP50/week, 365 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'latencyP50', interval: 'week', from: '2025-01-01', to: '2025-12-31', tz: TZ } },
];

/** The same request computed with plain SQL over the raw messages. */
function direct(db: Database, orgA: string, scenario: Scenario, range: Answer['range']) {
  const em = db.fork();
  if (scenario.path.endsWith('/summary')) return directSummary(em, orgA, range as never);
  const { metric, interval } = scenario.query as { metric: never; interval: never };
  return directTimeseries(em, orgA, range as never, metric, interval);
}

async function timeAll(app: App, db: Database, orgA: string, token: string, volume: string, results: Result[]) {
  for (const scenario of SCENARIOS) {
    const answer = await get(app, token, scenario.path, scenario.query);
    const rollups = await time(() => get(app, token, scenario.path, scenario.query), WARMUP, RUNS);
    const rawTiming = await time(() => direct(db, orgA, scenario, answer.range), 1, BASELINE_RUNS);
    assertSame(answer, JSON.parse(JSON.stringify(await direct(db, orgA, scenario, answer.range))), `${volume} ${scenario.name}`);
    log(`  ${scenario.name}: rollups median ${rollups.median.toFixed(1)} ms, raw SQL median ${rawTiming.median.toFixed(1)} ms; answers equal`);
    results.push({ volume, name: scenario.name, rollups, direct: rawTiming });
  }
}

function table(results: Result[]): string {
  return markdownTable(
    ['messages (org A)', 'request', 'rollups median ms', 'rollups p95 ms', 'raw SQL median ms', 'speed-up'],
    results.map((r) => [r.volume, r.name, r.rollups.median.toFixed(1), r.rollups.p95.toFixed(1), r.direct.median.toFixed(1), `${(r.direct.median / r.rollups.median).toFixed(0)}x`]),
    2,
  );
}

// ---- the cost on writes ----------------------------------------------------------------------

const WRITE_STATEMENTS = Number(process.env.BENCH_WRITE_STATEMENTS ?? 100);
const WRITE_CONCURRENCY = 8;

// Like the ingestion statement: 300 messages over 30 chats of one writer (conversations of its
// own, as concurrent requests have), and their chats' counters. All writers append to the same
// organization in the same time slot, so they all change the same rollup keys.
const APPEND = `
with inserted as (
  insert into messages (organization_id, id, chat_id, role, content, model, prompt_tokens, completion_tokens,
                        total_tokens, latency_ms, cost_usd, created_at)
  select ?, gen_random_uuid(), md5(?::text || ':' || ?::text || ':' || (n % 30))::uuid, case when n % 2 = 0 then 'assistant' else 'user' end,
         'hello', 'gpt-4o', 20 + n, 50 + n, 70 + 2 * n, 300 + (n * 7919) % 4000, 0.000123, now() + n * interval '1 microsecond'
    from generate_series(1, 300) as n
  returning chat_id, created_at
)
update chats c set message_count = c.message_count + i.count, last_message_at = greatest(c.last_message_at, i.last)
  from (select chat_id, count(*) as count, max(created_at) as last from inserted group by 1) i
 where c.organization_id = ? and c.id = i.chat_id`;

async function timeWrites(db: Database, organizationId: string): Promise<string[][]> {
  await db.fork().execute(
    `insert into chats (organization_id, id, tags)
     select ?, md5(?::text || ':' || w || ':' || n)::uuid, array['writes', 'bench'] from generate_series(0, ${WRITE_CONCURRENCY - 1}) as w, generate_series(0, 29) as n`,
    [organizationId, organizationId],
  );
  const rows: string[][] = [];
  for (const triggers of ['with rollup triggers', 'without']) {
    if (triggers === 'without') await db.fork().execute('alter table messages disable trigger user');
    for (const concurrency of [1, WRITE_CONCURRENCY]) {
      const samples: number[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async (_, writer) => {
          for (let n = 0; n < WRITE_STATEMENTS / concurrency; n++) {
            const begun = performance.now();
            await db.fork().execute(APPEND, [organizationId, organizationId, writer, organizationId]);
            samples.push(performance.now() - begun);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      samples.sort((a, b) => a - b);
      const row = [triggers, String(concurrency), percentile(samples, 50).toFixed(1), percentile(samples, 95).toFixed(1), Math.round((samples.length * 300) / seconds).toLocaleString('en')];
      log(`  writes ${row.join(', ')}`);
      rows.push(row);
    }
  }
  await db.fork().execute('alter table messages enable trigger user');
  return rows;
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  const startedAt = performance.now();
  log(`creating database ${DATABASE}`);
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  await adminQuery(`create database ${DATABASE}`);
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: benchUrl(), dataDir: 'memory://', databasePoolSize: 8 });
    await db.migrate();
    const app = benchApp(db, benchUrl());
    const { orgA, orgB, token } = await tenants(app, db);
    const results: Result[] = [];

    await grow(db, orgA, 0, 19_999, async (tx) => {
      log('seeding organization B: 2,000 chats, 100,000 messages');
      await seedChats(tx, orgB, 0, 1_999);
    });
    await timeAll(app, db, orgA, token, '1,000,000', results);

    await grow(db, orgA, 20_000, 199_999);
    const year = await get(app, token, SCENARIOS[1]!.path, SCENARIOS[1]!.query);
    log(`365-day summary of A counts ${(year.totals as { messages: number }).messages.toLocaleString('en')} messages`);
    await timeAll(app, db, orgA, token, '10,000,000', results);

    log('writes: appends of 300 messages over 30 chats per writer');
    const orgC = String((await db.fork().execute<{ id: string }[]>(`insert into organizations (id, name, slug) values (gen_random_uuid(), 'Bench C', 'bench-c') returning id`))[0]!.id);
    const writes = await timeWrites(db, orgC);
    const [sizes] = await db.fork().execute<Record<string, string>[]>(
      `select pg_size_pretty(pg_total_relation_size('messages')) as messages,
              pg_size_pretty(pg_total_relation_size('analytics_slots') + pg_total_relation_size('analytics_model_days') + pg_total_relation_size('analytics_tag_days')
                             + pg_total_relation_size('analytics_latency_days') + pg_total_relation_size('analytics_latency_months')) as rollups,
              pg_size_pretty(pg_total_relation_size('messages_latency_idx')) as latency_index`,
    );

    console.log(`\nGET through createApp().handle on PostgreSQL (${SERVER_URL.replace(/\/\/.*@/, '//')}), median/p95 of ${RUNS} runs after ${WARMUP} warm-up runs;`);
    console.log(`raw SQL: the same figures with plain SQL over the messages (no HTTP), median of ${BASELINE_RUNS} runs; tz ${TZ} unless named; org B (100,000 messages) present\n`);
    console.log(table(results));
    console.log(`\nAppends of 300 messages over 30 chats of the writer (and their counters), ${WRITE_STATEMENTS} statements, all in one organization and slot; ms per statement\n`);
    console.log(markdownTable(['triggers', 'connections', 'median ms', 'p95 ms', 'messages/s'], writes, 2));
    console.log(`\nSizes: messages ${sizes!.messages} (with indexes), rollup tables ${sizes!.rollups}, messages_latency_idx ${sizes!.latency_index}`);
    log(`done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    await db?.close();
    await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  }
}

await main();
