/**
 * Timing of the analytics on a realistic volume:
 *   bun bench/analytics.ts
 * Creates the database chatlogger_bench_analytics on the server of BENCH_DATABASE_URL, migrates
 * it, seeds one organization with 1,000,000 messages over 20,000 chats across 2025 (and another
 * organization with 100,000 that must never be counted), times the summary (30 and 365 days) and
 * two timeseries through the HTTP app, grows the organization to 10,000,000 messages over
 * 200,000 chats and times them again. Each volume is timed twice: with only the initial indexes
 * (messages_created_idx on (organization_id, created_at)) and with the covering
 * messages_analytics_idx of Migration20261124300000_analytics. Drops the database at the end.
 */
import { adminQuery, benchApp, benchTenants as tenants, databaseUrl, log, markdownTable, SERVER_URL } from './support.ts';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { openDatabase, type Database, type Em } from '../src/db/orm.ts';

const DATABASE = 'chatlogger_bench_analytics';
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const BASELINE_RUNS = Number(process.env.BENCH_BASELINE_RUNS ?? 5);
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

// ---- index variants --------------------------------------------------------------------------

const COVERING = `create index messages_analytics_idx on messages (organization_id, created_at)
  include (role, chat_id, model, prompt_tokens, completion_tokens, total_tokens, latency_ms, cost_usd)`;

async function useIndexes(db: Database, variant: 'initial' | 'covering') {
  const em = db.fork();
  await em.execute(`set maintenance_work_mem = '512MB'`);
  if (variant === 'initial') {
    await em.execute(`create index if not exists messages_created_idx on messages (organization_id, created_at)`);
    await em.execute(`drop index if exists messages_analytics_idx`);
  } else {
    const [exists] = await em.execute<{ n: number }[]>(`select count(*)::int as n from pg_class where relname = 'messages_analytics_idx'`);
    if (!exists!.n) await em.execute(COVERING);
    await em.execute(`drop index if exists messages_created_idx`);
  }
  await em.execute('vacuum analyze messages');
}

// ---- measuring -------------------------------------------------------------------------------

type App = ReturnType<typeof createApp>;

interface Result {
  volume: string;
  indexes: string;
  name: string;
  runs: number;
  median: number;
  p95: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function get(app: App, token: string, path: string, query: Record<string, string>) {
  const url = `http://bench.local${path}?${new URLSearchParams(query)}`;
  const response = await app.handle(new Request(url, { headers: { authorization: `Bearer ${token}` } }));
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

async function measure(app: App, token: string, path: string, query: Record<string, string>, runs: number) {
  for (let n = 0; n < WARMUP; n++) await get(app, token, path, query);
  const samples: number[] = [];
  for (let n = 0; n < runs; n++) {
    const started = performance.now();
    await get(app, token, path, query);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { runs, median: percentile(samples, 50), p95: percentile(samples, 95) };
}

const SCENARIOS: { name: string; path: string; query: Record<string, string> }[] = [
  { name: 'summary, 30 days', path: '/analytics/orgs/me/summary', query: { from: '2025-06-01', to: '2025-06-30', tz: TZ } },
  { name: 'summary, 365 days', path: '/analytics/orgs/me/summary', query: { from: '2025-01-01', to: '2025-12-31', tz: TZ } },
  { name: 'timeseries messages/day, 365 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'messages', interval: 'day', from: '2025-01-01', to: '2025-12-31', tz: TZ } },
  { name: 'timeseries latencyP95/hour, 30 days', path: '/analytics/orgs/me/timeseries', query: { metric: 'latencyP95', interval: 'hour', from: '2025-06-01', to: '2025-06-30', tz: TZ } },
];

async function timeAll(app: App, db: Database, token: string, volume: string, results: Result[]) {
  for (const variant of ['initial', 'covering'] as const) {
    log(`${volume}: indexes ${variant}`);
    await useIndexes(db, variant);
    for (const scenario of SCENARIOS) {
      const runs = variant === 'initial' ? BASELINE_RUNS : RUNS;
      const timing = await measure(app, token, scenario.path, scenario.query, runs);
      log(`  ${scenario.name}: median ${timing.median.toFixed(1)} ms, p95 ${timing.p95.toFixed(1)} ms`);
      results.push({ volume, indexes: variant, name: scenario.name, ...timing });
    }
  }
}

function table(results: Result[]): string {
  return markdownTable(['messages (org A)', 'indexes', 'request', 'runs', 'median ms', 'p95 ms'], results.map((r) => [r.volume, r.indexes, r.name, String(r.runs), r.median.toFixed(1), r.p95.toFixed(1)]), 3);
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
    const first = await get(app, token, '/analytics/orgs/me/summary', SCENARIOS[1]!.query);
    log(`365-day summary of A counts ${(first.totals as { messages: number }).messages} messages`);
    await timeAll(app, db, token, '1,000,000', results);

    await grow(db, orgA, 20_000, 199_999);
    await timeAll(app, db, token, '10,000,000', results);

    console.log(`\nGET through createApp().handle on PostgreSQL (${SERVER_URL.replace(/\/\/.*@/, '//')}), median/p95 after ${WARMUP} warm-up runs; tz ${TZ}; org B (100,000 messages) present\n`);
    console.log(table(results));
    log(`done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    await db?.close();
    await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  }
}

await main();
