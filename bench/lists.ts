/**
 * Timing of the dashboard's lists and of conversation search on a realistic volume:
 *   bun bench/lists.ts                          1,000,000 messages in organization A
 *   BENCH_MESSAGES=10000000 bun bench/lists.ts  10,000,000
 * Creates the database chatlogger_bench_lists on the server of BENCH_DATABASE_URL and migrates it.
 * Seeds a small organization B (1,000 chats, 20,000 messages) and times its searches alone; then
 * seeds organization A (one chat per 50 messages, one chat of 5,000) beside it, times A's lists and
 * searches, and B's searches again: a small tenant's search must not feel the large one. Every
 * list is timed through the HTTP app and, as the baseline, its SQL alone on the same pool.
 * Prints EXPLAIN ANALYZE of each of A's lists, and drops the database.
 *
 * Messages are Zipf-distributed sentences of a support vocabulary, plus words planted at known
 * rates: `quokka` in 10% of the messages (common), `zeppelin` in 0.01% (rare), the Chinese
 * sentence 我的发票在哪里？ in 5% (searched for 发票, a substring), `xylophone` nowhere.
 */
import { adminQuery, benchApp, benchTenants as tenants, databaseUrl, log, markdownTable } from './support.ts';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { openDatabase, type Database, type Em } from '../src/db/orm.ts';
import { decodeTimeIdCursor } from '../src/http/cursor.ts';
import { chatFilters, type ListChatsQuery } from '../src/modules/chats/chats.service.ts';
import { query } from '../src/db/sql.ts';
import { listChatsSql, listMessagesSql, type Sql } from '../src/modules/conversations/conversations.repository.ts';

const DATABASE = 'chatlogger_bench_lists';
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
const SMALL = { chats: 1_000, messages: 20_000 };
const RUNS = 50;
const WARMUP = 5;
const DEEP_PAGE = 20;

const benchUrl = () => databaseUrl(DATABASE);

// ---- seeding ---------------------------------------------------------------------------------

const WORDS = `
the a to and of i you it is in for my that this on with be can not have please what how do
order account help thanks hello password reset refund invoice payment card charge billing plan
subscription upgrade downgrade cancel renew trial price discount coupon shipping delivery
tracking package address return exchange warranty broken error crash bug login email phone
app website page button screen update version install download sync backup export import
report dashboard setting notification alert message chat agent support ticket issue problem
question answer time day week month today tomorrow yesterday morning evening weekend holiday
fast slow quickly wait still again already never always sometimes maybe sure great fine ok
sorry unfortunately apologize understand check look see find try fix solve resolve escalate
manager team customer user admin owner member invite share permission access security
verify code token key api integration webhook limit quota storage upload file image photo
document pdf spreadsheet language translate english spanish german french localization
mobile android iphone tablet browser chrome firefox safari desktop windows mac linux
`.trim().split(/\s+/);

const TAGS = ['refund', 'bug', 'feature', 'account', 'login', 'urgent', 'sales', 'support', 'mobile', 'web', 'api', 'churn', 'onboarding', 'feedback', 'security', 'pricing', 'integration'];

const wordsLiteral = `array[${WORDS.map((w) => `'${w}'`).join(',')}]`;
const tagsLiteral = `array[${TAGS.map((w) => `'${w}'`).join(',')}]`;

// A Zipf-like pick: early words are common, late ones rare, as in real text. `length` must
// depend on the row, which makes the subquery correlated: evaluated per row, not once.
const sentence = (length: string) => `(
  select string_agg(w[1 + floor(power(random(), 3) * array_length(w, 1))::int], ' ')
    from (select ${wordsLiteral} as w) words, generate_series(1, ${length})
)`;

// Chat ids derive from the chat's number, so messages can name their chat without a lookup.
const chatIdOf = (n: string) => `md5(?::text || ':' || ${n})::uuid`;
const START = `timestamptz '2025-01-01 00:00:00+00'`;
const chatCreatedAt = (n: string, chats: number) => `${START} + ${n} * (interval '365 days' / ${chats})`;

interface OrgSeed {
  organizationId: string;
  chats: number;
  messages: number;
  /** Messages of chat number 1 (included in `messages`). */
  bigChat: number;
}

async function seedOrganization(em: Em, { organizationId, chats, messages, bigChat }: OrgSeed) {
  await em.execute(
    `insert into chats (organization_id, id, title, tags, external_user_id, source, created_at, updated_at)
     select ?, ${chatIdOf('n')}, initcap(${sentence('2 + n % 5')}),
            array_remove(array[case when n % 10 = 0 then 'billing' end, (${tagsLiteral})[1 + n % ${TAGS.length}],
                               case when n % 53 = 0 then 'vip' end], null),
            'user-' || (n % 3000), (array['web', 'ios', 'android', 'api'])[1 + n % 4],
            ${chatCreatedAt('n', chats)}, ${chatCreatedAt('n', chats)}
       from generate_series(1, ${chats}) as n`,
    [organizationId, organizationId],
  );
  // Message k of chat c: chats talk at their own pace (1 to 90 minutes between messages).
  const others = chats - 1;
  await em.execute(
    `insert into messages (organization_id, id, chat_id, role, content, model, prompt_tokens, completion_tokens,
                           total_tokens, latency_ms, created_at)
     select ?, gen_random_uuid(), ${chatIdOf('c')},
            case when k % 2 = 0 then 'user' else 'assistant' end,
            ${sentence('4 + (n % 29)')}
              || case when n % 10 = 3 then ' quokka' else '' end
              || case when n % 10000 = 7 then ' zeppelin' else '' end
              || case when n % 20 = 11 then ' 我的发票在哪里？' else '' end,
            case when k % 2 = 1 then 'gpt-4o' end, 20 + n % 400, 50 + n % 700, 70 + n % 1100, 300 + n % 4000,
            ${chatCreatedAt('c', chats)} + k * (1 + c * 31 % 90) * interval '1 minute' + (n % 1000) * interval '1 microsecond'
       from generate_series(1, ${messages}) as n,
            lateral (select case when n <= ${bigChat} then 1 else 2 + (n - ${bigChat}) % ${others} end as c,
                            case when n <= ${bigChat} then n else (n - ${bigChat}) / ${others} end as k) as pos`,
    [organizationId, organizationId],
  );
  // Statistics of what was just loaded, or the planner joins the counts below row by row.
  await em.execute(`analyze chats`);
  await em.execute(`analyze messages`);
  await em.execute(
    `update chats c
        set last_message_at = m.last_at, message_count = m.count
       from (select chat_id, max(created_at) as last_at, count(*) as count
               from messages where organization_id = ? group by chat_id) m
      where c.organization_id = ? and c.id = m.chat_id`,
    [organizationId, organizationId],
  );
}

/** Secondary indexes are built once after the bulk load, as a restore would (much faster than row by row). */
async function withIndexesRebuilt(em: Em, load: () => Promise<void>) {
  const indexes = await em.execute<{ name: string; definition: string }[]>(
    `select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
       from pg_index i
      where i.indrelid in ('chats'::regclass, 'messages'::regclass)
        and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
  );
  for (const index of indexes) await em.execute(`drop index ${index.name}`);
  await load();
  for (const index of indexes) await em.execute(index.definition);
}

async function seed(db: Database, label: string, org: OrgSeed) {
  await db.fork().transactional(async (tx) => {
    await tx.execute(`set local maintenance_work_mem = '1GB'`);
    await tx.execute(`select setseed(0.42)`);
    await withIndexesRebuilt(tx, async () => {
      log(`seeding organization ${label}: ${org.chats.toLocaleString('en')} chats, ${org.messages.toLocaleString('en')} messages`);
      await seedOrganization(tx, org);
      log('building indexes');
    });
  });
  log('vacuum analyze');
  await db.fork().execute('vacuum analyze chats');
  await db.fork().execute('vacuum analyze messages');
}

// ---- measuring -------------------------------------------------------------------------------

type App = ReturnType<typeof createApp>;

interface Scenario {
  name: string;
  /** Time the 21st page too (lists long enough to have one). */
  deep?: boolean;
  /** Path without query string, and the list's query. */
  path: string;
  query: Record<string, string>;
  sqlFor(cursor: string | undefined): Sql;
}

interface Result {
  name: string;
  page: string;
  rows: number;
  median: number;
  p95: number;
  /** The list's SQL alone, on the same pool: what PostgreSQL takes of it. */
  sqlMedian: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function get(app: App, token: string, path: string, query: Record<string, string>) {
  const url = `http://bench.local${path}?${new URLSearchParams(query)}`;
  const response = await app.handle(new Request(url, { headers: { authorization: `Bearer ${token}` } }));
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { items: { id: string }[]; nextCursor: string | null };
}

async function measure(app: App, token: string, path: string, query: Record<string, string>) {
  for (let n = 0; n < WARMUP; n++) await get(app, token, path, query);
  const samples: number[] = [];
  let rows = 0;
  for (let n = 0; n < RUNS; n++) {
    const started = performance.now();
    rows = (await get(app, token, path, query)).items.length;
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { rows, median: percentile(samples, 50), p95: percentile(samples, 95) };
}

/** The cursor of page DEEP_PAGE + 1, reached by following the cursors like a client. */
async function deepCursor(app: App, token: string, scenario: Scenario): Promise<string> {
  let cursor: string | undefined;
  for (let n = 0; n < DEEP_PAGE; n++) {
    const page = await get(app, token, scenario.path, { ...scenario.query, ...(cursor ? { cursor } : {}) });
    if (!page.nextCursor) throw new Error(`${scenario.name} has fewer than ${DEEP_PAGE + 1} pages`);
    cursor = page.nextCursor;
  }
  return cursor!;
}

/** The median of the SQL alone, run as the repository runs it (bind parameters, one round trip). */
async function measureSql(db: Database, { sql, params }: Sql): Promise<number> {
  const em = db.fork();
  for (let n = 0; n < WARMUP; n++) await query(em, sql, params);
  const samples: number[] = [];
  for (let n = 0; n < RUNS; n++) {
    const started = performance.now();
    await query(em, sql, params);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return percentile(samples, 50);
}

async function explain(db: Database, { sql, params }: Sql): Promise<string> {
  const rows = await query<Record<string, string>>(db.fork(), `explain (analyze, buffers) ${sql}`, params);
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

function table(results: Result[]): string {
  return markdownTable(
    ['list', 'page', 'rows', 'HTTP median ms', 'HTTP p95 ms', 'SQL alone median ms'],
    results.map((r) => [r.name, r.page, String(r.rows), r.median.toFixed(2), r.p95.toFixed(2), r.sqlMedian.toFixed(2)]),
    2,
  );
}

async function run(db: Database, app: App, token: string, scenarios: Scenario[], prefix = '', plans?: string[]): Promise<Result[]> {
  const results: Result[] = [];
  for (const scenario of scenarios) {
    log(`timing ${prefix}${scenario.name}`);
    const first = await measure(app, token, scenario.path, scenario.query);
    results.push({ name: `${prefix}${scenario.name}`, page: 'first', ...first, sqlMedian: await measureSql(db, scenario.sqlFor(undefined)) });
    plans?.push(`### ${prefix}${scenario.name}, first page\n${await explain(db, scenario.sqlFor(undefined))}`);
    if (!scenario.deep) continue;
    const cursor = await deepCursor(app, token, scenario);
    const deep = await measure(app, token, scenario.path, { ...scenario.query, cursor });
    results.push({ name: `${prefix}${scenario.name}`, page: `${DEEP_PAGE + 1}st`, ...deep, sqlMedian: await measureSql(db, scenario.sqlFor(cursor)) });
    plans?.push(`### ${prefix}${scenario.name}, page ${DEEP_PAGE + 1}\n${await explain(db, scenario.sqlFor(cursor))}`);
  }
  return results;
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  const startedAt = performance.now();
  log(`creating database ${DATABASE}`);
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  await adminQuery(`create database ${DATABASE}`);
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: benchUrl(), dataDir: 'memory://', databasePoolSize: 4 });
    await db.migrate();
    const app = benchApp(db, benchUrl());
    const { orgA, orgB, token, tokenB } = await tenants(app, db);
    await seed(db, 'B', { organizationId: orgB, ...SMALL, bigChat: 1_000 });
    const alone = await run(db, app, tokenB, searchScenarios(orgB), 'B alone: ');

    const chats = Math.round(MESSAGES / 50);
    await seed(db, 'A', { organizationId: orgA, chats, messages: MESSAGES, bigChat: 5_000 });
    const [bigChat] = await db.fork().execute<{ id: string; message_count: number }[]>(
      `select id, message_count from chats where organization_id = ? order by message_count desc limit 1`,
      [orgA],
    );
    const plans: string[] = [];
    const results = await run(db, app, token, [...listScenarios(orgA, bigChat!.id), ...searchScenarios(orgA)], '', plans);
    const beside = await run(db, app, tokenB, searchScenarios(orgB), 'B beside A: ');
    await checkIsolation(app, token, db, orgA);

    const size = (n: number) => n.toLocaleString('en');
    console.log(
      `\nGET through createApp().handle, ${RUNS} runs after ${WARMUP} warm-up, limit 50; organization A: ${size(chats)} chats / ${size(MESSAGES)} messages, ` +
        `B: ${size(SMALL.chats)} / ${size(SMALL.messages)}; SQL alone: the same statement through the same pool, without HTTP\n`,
    );
    console.log(table([...results, ...alone, ...beside]));
    console.log(`\n${plans.join('\n\n')}\n`);
    log(`done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    await db?.close();
    await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  }
}

function listScenarios(orgA: string, bigChatId: string): Scenario[] {
  const chats = (name: string, query: Omit<ListChatsQuery, 'limit'>): Scenario => ({
    name,
    deep: true,
    path: '/orgs/me/chats',
    query: { limit: '50', ...(query as Record<string, string>) },
    sqlFor: (cursor) => listChatsSql(orgA, chatFilters(query), decodeTimeIdCursor(cursor), 50),
  });
  return [
    chats('chats by lastActivity', { sort: 'lastActivity' }),
    chats('chats by createdAt', { sort: 'createdAt' }),
    chats('chats tags=billing', { tags: 'billing' }),
    {
      name: 'messages of a 5,000-message chat',
      deep: true,
      path: `/orgs/me/chats/${bigChatId}/messages`,
      query: { limit: '50' },
      sqlFor: (cursor) => listMessagesSql(orgA, bigChatId, decodeTimeIdCursor(cursor), 50),
    },
  ];
}

/** The searches of the issue, each on the default sort (last activity), first page. */
function searchScenarios(org: string): Scenario[] {
  const search = (name: string, q: string): Scenario => ({
    name,
    path: '/orgs/me/chats',
    query: { limit: '50', q },
    sqlFor: (cursor) => listChatsSql(org, chatFilters({ q }), decodeTimeIdCursor(cursor), 50),
  });
  return [
    search('q common word (10% of messages)', 'quokka'),
    search('q zipf word (refund)', 'refund'),
    search('q rare word (0.01%)', 'zeppelin'),
    search('q phrase', '"password reset"'),
    search('q CJK substring', '发票'),
    search('q no match', 'xylophone'),
  ];
}

/** The search must find only organization A's chats although B's messages use the same words. */
async function checkIsolation(app: App, token: string, db: Database, orgA: string) {
  const page = await get(app, token, '/orgs/me/chats', { q: 'refund', limit: '200' });
  const ids = page.items.map((chat) => chat.id);
  const [row] = await db.fork().execute<{ n: number }[]>(
    `select count(*)::int as n from chats where organization_id = ? and id in (${ids.map(() => '?').join(',')})`,
    [orgA, ...ids],
  );
  if (ids.length === 0 || row!.n !== ids.length) throw new Error('q returned chats of another organization');
}

await main();
