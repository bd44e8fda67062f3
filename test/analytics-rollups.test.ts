import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components, operations } from '../src/generated/openapi.ts';
import { openDatabase, type Database, type Em } from '../src/db/orm.ts';
import { runRetention } from '../src/modules/lifecycle/retention.ts';
import * as conversations from '../src/modules/conversations/conversations.repository.ts';
import type { NewMessage } from '../src/modules/conversations/conversations.repository.ts';
import { query } from '../src/db/sql.ts';
import { directSummary, directTimeseries } from './support/analytics-direct.ts';
import { appendBatch, createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

/*
 * The rollups against the raw data: after every kind of write (appends, tag edits, deletions,
 * erasure, retention, concurrent appends) each rollup table must equal an aggregate
 * over the messages, and the API must answer exactly what plain SQL over the messages answers,
 * in zones with 45-minute offsets, across DST changes and with bounds anywhere in a slot.
 */

type MessageCreate = components['schemas']['MessageCreate'];
type SummaryQuery = NonNullable<operations['getAnalyticsSummary']['parameters']['query']>;
type TimeseriesQuery = operations['getAnalyticsTimeseries']['parameters']['query'];

const onPostgres = testDatabaseKind === 'postgresql';
let t: TestApp;
let tenant: Tenant;
let other: Tenant;
const as = (token: string) => t.client({ token });

// ---- the rollups against the raw data ----------------------------------------------------------

const SLOT_SUMS = ['messages', 'system_messages', 'user_messages', 'assistant_messages', 'tool_messages', 'function_messages', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost_usd', 'latency_count', 'latency_sum'];

/** Each rollup as its rows summed over shards (rows summing to zero left out), and the same from the raw data. */
const CHECKS: Record<string, { rolled: string; direct: string }> = {
  slots: {
    rolled: `select slot, ${SLOT_SUMS.map((c) => `sum(${c}) as ${c}`).join(', ')}
               from analytics_slots where organization_id = ? group by slot
             having ${SLOT_SUMS.map((c) => `sum(${c}) <> 0`).join(' or ')}`,
    direct: `select analytics_slot(created_at) as slot, count(*) as messages,
                    count(*) filter (where role = 'system') as system_messages, count(*) filter (where role = 'user') as user_messages,
                    count(*) filter (where role = 'assistant') as assistant_messages, count(*) filter (where role = 'tool') as tool_messages,
                    count(*) filter (where role = 'function') as function_messages,
                    coalesce(sum(prompt_tokens), 0) as prompt_tokens, coalesce(sum(completion_tokens), 0) as completion_tokens,
                    coalesce(sum(total_tokens), 0) as total_tokens, coalesce(sum(cost_usd), 0) as cost_usd,
                    count(latency_ms) filter (where role = 'assistant') as latency_count,
                    coalesce(sum(latency_ms) filter (where role = 'assistant'), 0) as latency_sum
               from messages where organization_id = ? group by 1`,
  },
  models: {
    rolled: `select day, model, sum(messages) from analytics_model_days where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_day(created_at), model, count(*) from messages where organization_id = ? and model is not null group by 1, 2`,
  },
  tags: {
    rolled: `select day, tag, sum(messages) from analytics_tag_days where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_day(m.created_at), t.tag, count(*)
               from messages m join chats c on c.organization_id = m.organization_id and c.id = m.chat_id, unnest(c.tags) as t(tag)
              where m.organization_id = ? group by 1, 2`,
  },
  latencyDays: {
    rolled: `select day, latency_ms, sum(messages) from analytics_latency_days where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_day(created_at), latency_ms, count(*) from messages
              where organization_id = ? and role = 'assistant' and latency_ms is not null group by 1, 2`,
  },
  latencyMonths: {
    rolled: `select month, latency_ms, sum(messages) from analytics_latency_months where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_month(created_at), latency_ms, count(*) from messages
              where organization_id = ? and role = 'assistant' and latency_ms is not null group by 1, 2`,
  },
  latencyDayBins: {
    rolled: `select day, bin, sum(messages) from analytics_latency_day_bins where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_day(created_at), analytics_latency_bin(latency_ms), count(*) from messages
              where organization_id = ? and role = 'assistant' and latency_ms is not null group by 1, 2`,
  },
  latencyMonthBins: {
    rolled: `select month, bin, sum(messages) from analytics_latency_month_bins where organization_id = ? group by 1, 2 having sum(messages) <> 0`,
    direct: `select analytics_month(created_at), analytics_latency_bin(latency_ms), count(*) from messages
              where organization_id = ? and role = 'assistant' and latency_ms is not null group by 1, 2`,
  },
  replies: {
    rolled: `select id, has_assistant_reply from chats where organization_id = ?`,
    direct: `select c.id, exists (select 1 from messages m where m.organization_id = c.organization_id and m.chat_id = c.id and m.role = 'assistant')
               from chats c where c.organization_id = ?`,
  },
};

/** Rows that differ between each rollup and the raw data, by rollup; `{}` when all agree. */
async function mismatches(em: Em, organizationId: string): Promise<Record<string, unknown[]>> {
  const found: Record<string, unknown[]> = {};
  for (const [name, { rolled, direct }] of Object.entries(CHECKS)) {
    const rows = await em.execute<{ side: string }[]>(
      `with rolled as (${rolled}), direct as (${direct})
       (select 'rollup only' as side, r::text as row from (select * from rolled except all select * from direct) r)
       union all
       (select 'raw only', d::text from (select * from direct except all select * from rolled) d)`,
      [organizationId, organizationId],
    );
    if (rows.length) found[name] = rows;
  }
  return found;
}

/** Rollup rows of the organization whose every sum is zero: deletions must remove them. */
async function zeroRows(em: Em, organizationId: string): Promise<number> {
  const [row] = await em.execute<{ n: number }[]>(
    `select (select count(*) from analytics_slots where organization_id = ? and ${SLOT_SUMS.map((c) => `${c} = 0`).join(' and ')})
          + (select count(*) from analytics_model_days where organization_id = ? and messages = 0)
          + (select count(*) from analytics_tag_days where organization_id = ? and messages = 0)
          + (select count(*) from analytics_latency_days where organization_id = ? and messages = 0)
          + (select count(*) from analytics_latency_months where organization_id = ? and messages = 0)
          + (select count(*) from analytics_latency_day_bins where organization_id = ? and messages = 0)
          + (select count(*) from analytics_latency_month_bins where organization_id = ? and messages = 0) as n`,
    Array(7).fill(organizationId),
  );
  return Number(row!.n);
}

async function expectRollupsExact(organizationId: string, db: Database = t.db) {
  expect(await mismatches(db.fork(), organizationId)).toEqual({});
}

// ---- the API against plain SQL over the messages -----------------------------------------------

const SUMMARIES: SummaryQuery[] = [
  { from: '2025-01-01', to: '2025-12-31', tz: 'Asia/Kathmandu' },
  { from: '2025-06-14', to: '2025-06-16', tz: 'Asia/Kathmandu' },
  { from: '2025-03-29', to: '2025-03-31', tz: 'Europe/Amsterdam' },
  { from: '2025-10-25', to: '2025-10-27', tz: 'Europe/Amsterdam' },
  { from: '2025-02-01', to: '2025-07-31', tz: 'Pacific/Chatham' },
  // Bounds inside slots, on rounding points, a few microseconds apart.
  { from: '2025-04-30T23:59:59.5Z', to: '2025-06-14T18:14:59.999999Z', tz: 'Asia/Kathmandu' },
  { from: '2025-05-10T11:59:59.999999Z', to: '2025-05-10T12:07:30Z' },
  { from: '2025-05-10T12:00:00Z', to: '2025-05-11T12:00:00.000001Z', tz: 'Europe/Amsterdam' },
  { from: '2025-03-15T07:07:07.123456+01:00', to: '2025-11-20T21:13:00-08:00', tz: 'America/Los_Angeles' },
  { from: '2025-06-14T18:07:30Z', to: '2025-06-14T18:22:29.999999Z', tz: 'Asia/Kathmandu' },
];

const SERIES: TimeseriesQuery[] = [
  { metric: 'messages', interval: 'hour', from: '2025-06-14', to: '2025-06-15', tz: 'Asia/Kathmandu' },
  { metric: 'latencyP95', interval: 'hour', from: '2025-06-14', to: '2025-06-15', tz: 'Asia/Kathmandu' },
  { metric: 'latencyP50', interval: 'day', from: '2025-03-20', to: '2025-06-20', tz: 'Europe/Amsterdam' },
  { metric: 'latencyP95', interval: 'day', from: '2025-04-25', to: '2025-05-15' },
  { metric: 'latencyP50', interval: 'week', from: '2025-01-01', to: '2025-12-31', tz: 'Asia/Kathmandu' },
  { metric: 'latencyAvg', interval: 'week', from: '2025-01-01', to: '2025-12-31', tz: 'Europe/Amsterdam' },
  { metric: 'totalTokens', interval: 'day', from: '2025-10-20', to: '2025-11-02', tz: 'Europe/Amsterdam' },
  { metric: 'costUsd', interval: 'hour', from: '2025-10-25T20:10:00Z', to: '2025-10-26T03:50:00.5Z', tz: 'Europe/Amsterdam' },
  { metric: 'promptTokens', interval: 'day', from: '2025-04-29T13:13:13Z', to: '2025-05-12T00:00:00.000001Z', tz: 'Asia/Kathmandu' },
  { metric: 'completionTokens', interval: 'week', from: '2025-05-01', to: '2025-06-30', tz: 'Pacific/Chatham' },
  { metric: 'chats', interval: 'day', from: '2025-03-25', to: '2025-04-05', tz: 'Asia/Kathmandu' },
  { metric: 'endUsers', interval: 'week', from: '2025-01-01', to: '2025-12-31', tz: 'Europe/Amsterdam' },
];

/** Deep equality, floating-point values to 12 significant digits. */
function expectSame(actual: unknown, expected: unknown, path = '$') {
  if (typeof expected === 'number' && typeof actual === 'number') {
    expect({ path, close: Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)) }).toEqual({ path, close: true });
    return;
  }
  if (expected === null || typeof expected !== 'object') {
    expect({ path, value: actual }).toEqual({ path, value: expected });
    return;
  }
  expect({ path, keys: Object.keys(actual as object).sort() }).toEqual({ path, keys: Object.keys(expected).sort() });
  for (const key of Object.keys(expected)) expectSame((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
}

/** Every summary and series of the lists answers what plain SQL over the messages answers. */
async function expectAnswersExact(who: Tenant, summaries = SUMMARIES, series = SERIES) {
  for (const query of summaries) {
    const { data, response } = await as(who.adminToken).GET('/analytics/orgs/{org}/summary', { params: { path: { org: 'me' }, query } });
    expect({ query, status: response.status }).toEqual({ query, status: 200 });
    expectSame(data, await directSummary(t.db.fork(), who.orgId, data!.range), JSON.stringify(query));
  }
  for (const query of series) {
    const { data, response } = await as(who.adminToken).GET('/analytics/orgs/{org}/timeseries', { params: { path: { org: 'me' }, query } });
    expect({ query, status: response.status }).toEqual({ query, status: 200 });
    expectSame(data, await directTimeseries(t.db.fork(), who.orgId, data!.range, query.metric, query.interval ?? 'day'), JSON.stringify(query));
  }
}

// ---- fixture -----------------------------------------------------------------------------------

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Instants on and next to the edges of slots, zone days, UTC days and months, and rounding points. */
const EDGES = [
  '2025-06-14T18:14:59.999999Z', // Kathmandu Jun 14 23:59:59.999999 (+05:45)
  '2025-06-14T18:15:00Z', // Kathmandu Jun 15 00:00
  '2025-06-14T18:29:59.999999Z',
  '2025-06-14T18:30:00Z',
  '2025-03-30T00:59:59.999999Z', // Amsterdam, the last CET instant
  '2025-03-30T01:00:00Z', // 03:00 CEST
  '2025-10-26T00:30:00Z', // 02:30 CEST
  '2025-10-26T01:30:00Z', // 02:30 CET
  '2025-04-30T23:59:59.999999Z', // the last instant of April (UTC)
  '2025-05-01T00:00:00Z',
  '2025-05-10T11:59:59.999999Z', // rounding point of a UTC day
  '2025-05-10T12:00:00Z',
  '2025-05-10T12:07:29.999999Z', // rounding point of a slot
  '2025-05-10T12:07:30Z',
];
const WINDOW_START = Date.parse('2025-01-01T00:00:00Z');
const WINDOW_END = Date.parse('2026-01-01T00:00:00Z');
// Repeated values, and values sharing a bin of analytics_latency_bin (101-109, 1000-1099).
const LATENCIES = [0, 7, 99, 100, 101, 105, 105, 109, 200, 250, 1000, 1010, 1090, 1099, 1099, 5000, 123456];
const MODELS = ['m-a', 'm-b', 'm-c', ''];
const TAGS = ['red', 'green', 'blue', 'cyan'];
const ROLES = ['system', 'user', 'assistant', 'assistant', 'tool', 'function'] as const;

interface SeededChat {
  id: string;
  externalUserId: string | null;
}

async function createChat(who: Tenant, tags: string[], externalUserId: string | null, createdAt: string): Promise<string> {
  const { data, response } = await t.client({ apiKey: who.apiKey }).POST('/api/v1/orgs/{slug}/chats', {
    params: { path: { slug: who.slug } },
    body: { tags, externalUserId, title: 'rollups' },
  });
  expect(response.status).toBe(201);
  await t.db.fork().execute(`update chats set created_at = ? where organization_id = ? and id = ?`, [createdAt, who.orgId, data!.id]);
  return data!.id;
}

function randomMessages(random: () => number, count: number, edge: { next: number }): MessageCreate[] {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  return Array.from({ length: count }, (_, k) => {
    const role = pick(ROLES);
    const assistant = role === 'assistant';
    return {
      role,
      content: `message ${k}`,
      model: assistant || random() < 0.2 ? pick(MODELS) : null,
      promptTokens: random() < 0.8 ? Math.floor(random() * 500) : null,
      completionTokens: random() < 0.7 ? Math.floor(random() * 900) : null,
      latencyMs: (assistant && random() < 0.9) || random() < 0.1 ? pick(LATENCIES) : null,
      costUsd: random() < 0.7 ? Math.round(random() * 1e6) / 1e8 : null,
      createdAt: random() < 0.3 ? EDGES[edge.next++ % EDGES.length]! : new Date(WINDOW_START + Math.floor(random() * (WINDOW_END - WINDOW_START))).toISOString(),
    };
  });
}

/** Chats with tags (or none) and messages, singly and in batches, at the edges. */
async function seed(who: Tenant, seedValue: number, chatCount: number): Promise<SeededChat[]> {
  const random = prng(seedValue);
  const edge = { next: 0 };
  const chats: SeededChat[] = [];
  for (let c = 0; c < chatCount; c++) {
    const tags = TAGS.filter(() => random() < 0.4);
    const externalUserId = c % 4 === 3 ? null : `end-user-${c % 5}`;
    const id = await createChat(who, tags, externalUserId, c < EDGES.length ? EDGES[c]! : new Date(WINDOW_START + Math.floor(random() * (WINDOW_END - WINDOW_START))).toISOString());
    const messages = randomMessages(random, c % 8 === 7 ? 0 : 2 + Math.floor(random() * 14), edge);
    if (messages.length) {
      // The first one alone, the rest as a batch.
      await appendBatch(t, who, id, messages.slice(0, 1));
      if (messages.length > 1) await appendBatch(t, who, id, messages.slice(1));
    }
    chats.push({ id, externalUserId });
  }
  return chats;
}

let chats: SeededChat[];

beforeAll(async () => {
  t = await createTestApp();
  [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
  chats = await seed(tenant, 11, 40);
  await seed(other, 12, 8);
}, 120_000);

// ---- the tests ---------------------------------------------------------------------------------

describe('rollups stay exact', () => {
  test('after single and batch appends, for both organizations', async () => {
    await expectRollupsExact(tenant.orgId);
    await expectRollupsExact(other.orgId);
    const [{ n }] = (await t.db.fork().execute<{ n: number }[]>(`select count(*)::int as n from messages where organization_id = ?`, [tenant.orgId])) as [{ n: number }];
    expect(n).toBeGreaterThan(200);
    await expectAnswersExact(tenant);
  });

  test('after tag edits: added, removed, cleared, and edited again', async () => {
    const admin = as(tenant.adminToken);
    const edits: [number, string[]][] = [
      [0, ['violet']],
      [1, []],
      [2, ['red', 'green', 'violet']],
      [3, ['blue']],
      [4, ['green', 'red']],
      [5, ['red', 'blue']],
    ];
    for (const [index, tags] of edits) {
      const { response } = await admin.PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: chats[index]!.id } }, body: { tags } });
      expect(response.status).toBe(200);
    }
    await expectRollupsExact(tenant.orgId);
    const { response } = await admin.PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: chats[5]!.id } }, body: { tags: ['blue', 'cyan'] } });
    expect(response.status).toBe(200);
    await expectRollupsExact(tenant.orgId);
    expect(await zeroRows(t.db.fork(), tenant.orgId)).toBe(0);
    await expectAnswersExact(tenant, SUMMARIES.slice(0, 3), []);
  });

  test('after a chat is deleted with its messages', async () => {
    const victim = chats.find((c, i) => i > 5 && i % 8 !== 7)!;
    const { response } = await as(tenant.adminToken).DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: victim.id } } });
    expect(response.status).toBe(204);
    chats = chats.filter((c) => c !== victim);
    await expectRollupsExact(tenant.orgId);
    expect(await zeroRows(t.db.fork(), tenant.orgId)).toBe(0);
    await expectAnswersExact(tenant, SUMMARIES.slice(0, 2), SERIES.slice(0, 3));
  });

  test('after an end user is erased', async () => {
    const { data, response } = await as(tenant.adminToken).DELETE('/orgs/{org}/end-users/{externalUserId}', {
      params: { path: { org: 'me', externalUserId: 'end-user-2' } },
    });
    expect(response.status).toBe(200);
    expect(data!.chats).toBeGreaterThan(1);
    expect(data!.messages).toBeGreaterThan(0);
    chats = chats.filter((c) => c.externalUserId !== 'end-user-2');
    await expectRollupsExact(tenant.orgId);
    expect(await zeroRows(t.db.fork(), tenant.orgId)).toBe(0);
    await expectAnswersExact(tenant, SUMMARIES.slice(0, 1), SERIES.slice(4, 6));
  });

  test('after a retention run', async () => {
    const { response } = await as(tenant.adminToken).PATCH('/orgs/{org}', { params: { path: { org: 'me' } }, body: { settings: { retentionDays: 30 } } });
    expect(response.status).toBe(200);
    // Chats whose last activity is before 2025-12-21 go, in batches of 3.
    const result = await runRetention(t.db, new Date('2026-01-20T00:00:00Z'), { batchSize: 3 });
    expect(result.skipped).toBe(false);
    const mine = !result.skipped && result.organizations.find((o) => o.organizationId === tenant.orgId);
    expect(mine && mine.chats).toBeGreaterThan(3);
    const [{ n }] = (await t.db.fork().execute<{ n: number }[]>(`select count(*)::int as n from chats where organization_id = ?`, [tenant.orgId])) as [{ n: number }];
    expect(n).toBeGreaterThan(0);
    await as(tenant.adminToken).PATCH('/orgs/{org}', { params: { path: { org: 'me' } }, body: { settings: { retentionDays: null } } });
    await expectRollupsExact(tenant.orgId);
    await expectRollupsExact(other.orgId);
    expect(await zeroRows(t.db.fork(), tenant.orgId)).toBe(0);
    await expectAnswersExact(tenant);
  });

  test('after 20 concurrent appends to the same organization and time slot', async () => {
    const fresh = await createTenant(t);
    const now = new Date().toISOString();
    const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => createChat(fresh, i % 2 ? ['hot'] : ['hot', 'cold'], `u${i}`, now)));
    const random = prng(5);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        appendBatch(
          t,
          fresh,
          ids[i % ids.length]!,
          randomMessages(random, 25, { next: 0 }).map(({ createdAt: _, ...m }) => m),
        ),
      ),
    );
    await expectRollupsExact(fresh.orgId);
    const today = now.slice(0, 10);
    await expectAnswersExact(
      fresh,
      [{ from: today, to: today }, { from: today, to: today, tz: 'Asia/Kathmandu' }, {}],
      [{ metric: 'messages', interval: 'hour', from: today, to: today }, { metric: 'latencyP95', interval: 'hour', from: today, to: today, tz: 'Asia/Kathmandu' }],
    );
    const { data } = await as(fresh.adminToken).GET('/analytics/orgs/{org}/summary', { params: { path: { org: 'me' }, query: { from: today, to: today } } });
    expect(data!.totals.messages).toBe(500);
    expect(data!.topTags[0]).toEqual({ tag: 'hot', messages: 500 });
  });
});

describe('concurrent writers', () => {
  const message = (chatId: string, at: string, k: number): NewMessage => ({
    id: Bun.randomUUIDv7(),
    chatId,
    role: 'assistant',
    content: 'x',
    name: null,
    model: 'm-hot',
    promptTokens: 1,
    completionTokens: null,
    totalTokens: 10,
    latencyMs: 100 + (k % 3),
    costUsd: null,
    toolCalls: null,
    metadata: {},
    createdAt: at,
  });

  /**
   * The rollup shard this transaction holds. It is a setting of the transaction on the node that
   * wrote the rollups: on Citus the organization's worker, which a query about the organization
   * reaches (within the same transaction, on the same connection).
   */
  async function shardOf(tx: Em, organizationId: string): Promise<number> {
    const [row] = await query<{ shard: string }>(
      tx,
      `select current_setting('chatlogger.analytics_shard') as shard from organizations o
         left join lateral (select 1 from analytics_slots s where s.organization_id = $1 limit 1) s on true
        where o.id = $1`,
      [organizationId],
    );
    return Number(row!.shard);
  }

  /** Messages appended in one transaction of its own connection, held open for `holdMs`. */
  async function appendAndHold(organizationId: string, chatId: string, holdMs: number, at: string) {
    return t.db.fork().transactional(async (tx) => {
      await conversations.appendMessages(tx, organizationId, Array.from({ length: 50 }, (_, k) => message(chatId, at, k)));
      const shard = await shardOf(tx, organizationId);
      await query(tx, `select pg_sleep($1)`, [holdMs / 1000]);
      return shard;
    });
  }

  test.skipIf(!onPostgres)('never wait for each other on a hot rollup row: each transaction writes its own shard', async () => {
    const fresh = await createTenant(t);
    const at = '2025-08-01T10:00:00Z';
    const chatIds = await Promise.all(Array.from({ length: 6 }, () => createChat(fresh, ['hot'], null, at)));
    const started = performance.now();
    const shards = await Promise.all(chatIds.map((chatId) => appendAndHold(fresh.orgId, chatId, 600, at)));
    const elapsed = performance.now() - started;
    expect(new Set(shards).size).toBe(6);
    // Serialized on one row, six transactions holding it for 0.6 s each would take 3.6 s.
    expect(elapsed).toBeLessThan(2500);
    await expectRollupsExact(fresh.orgId);
    const [{ rows }] = (await t.db.fork().execute<{ rows: number }[]>(
      `select count(*)::int as rows from analytics_slots where organization_id = ? and slot = ?::timestamptz`,
      [fresh.orgId, at],
    )) as [{ rows: number }];
    expect(rows).toBe(6);
  });

  test.skipIf(!onPostgres)('never deadlock when they write the same rollup rows in opposite orders', async () => {
    const [a, b] = await Promise.all([createTenant(t), createTenant(t)]);
    const at = '2025-08-02T10:00:00Z';
    // Each transaction appends to chats of its own (as ingestion does: it locks its chats), but
    // to the same organizations, slot, day, model, latency and tag: the same rollup keys.
    const chat = async (who: Tenant) => createChat(who, ['x'], null, at);
    const [a1, a2, b1, b2] = await Promise.all([chat(a), chat(a), chat(b), chat(b)]);
    const write = (tx: Em, organizationId: string, chatId: string) => conversations.appendMessages(tx, organizationId, [message(chatId, at, 0)]);
    // One writes a then b, the other b then a, each pausing in between: on shared rows this is the
    // textbook deadlock.
    const run = (first: [string, string], second: [string, string]) =>
      t.db.fork().transactional(async (tx) => {
        await write(tx, ...first);
        await query(tx, `select pg_sleep(0.3)`, []);
        await write(tx, ...second);
      });
    await Promise.all([run([a.orgId, a1], [b.orgId, b1]), run([b.orgId, b2], [a.orgId, a2])]);
    for (const org of [a.orgId, b.orgId]) await expectRollupsExact(org);
    // And deletions of the same rows at the same time as appends.
    await Promise.all([
      t.db.fork().transactional(async (tx) => {
        await conversations.deleteChat(tx, a.orgId, a1);
        await query(tx, `select pg_sleep(0.3)`, []);
        await conversations.deleteChat(tx, b.orgId, b1);
      }),
      run([b.orgId, b2], [a.orgId, a2]),
    ]);
    for (const org of [a.orgId, b.orgId]) await expectRollupsExact(org);
  });

  test('a transaction keeps its shard across statements and gives it back at the end', async () => {
    const fresh = await createTenant(t);
    const at = '2025-08-03T10:00:00Z';
    const chatId = await createChat(fresh, [], null, at);
    const shards = await t.db.fork().transactional(async (tx) => {
      const seen: number[] = [];
      for (let i = 0; i < 3; i++) {
        await conversations.appendMessages(tx, fresh.orgId, [message(chatId, at, i)]);
        seen.push(await shardOf(tx, fresh.orgId));
      }
      return seen;
    });
    expect(new Set(shards).size).toBe(1);
    // Given back: no advisory lock of the shards' class is held by anyone once it committed.
    const [row] = await query<{ held: number }>(
      t.db.fork(),
      `select count(*)::int as held from pg_locks l
         join organizations o on o.id = $1
         left join lateral (select 1 from analytics_slots s where s.organization_id = $1 limit 1) s on true
        where l.locktype = 'advisory' and l.classid = 20261124`,
      [fresh.orgId],
    );
    expect(row).toEqual({ held: 0 });
    await expectRollupsExact(fresh.orgId);
  });
});

describe('the migration', () => {
  let db: Database | undefined;
  afterAll(async () => {
    await db?.close();
  });

  test('backfills the rollups from the data already stored; later writes keep them; deleting an organization clears them', async () => {
    const chatId = async (organizationId: string, n: number) =>
      (await db!.fork().execute<{ id: string }[]>(`select md5(? || ?::int)::uuid::text as id`, [organizationId, n]))[0]!.id;
    db = await openDatabase({ databaseUrl: onPostgres ? await createServerDatabase() : undefined, dataDir: 'memory://', databasePoolSize: 2 });
    await db.orm.migrator.up({ to: 'Migration20261124200000_snapshots_and_lifecycle' });
    const em = db.fork();
    const orgs = ['0193a000-0000-7000-8000-000000000001', '0193a000-0000-7000-8000-000000000002'];
    for (const [i, id] of orgs.entries()) {
      await em.execute(`insert into organizations (id, name, slug) values (?, ?, ?)`, [id, `Backfill ${i}`, `backfill-${i}`]);
      await em.execute(
        `insert into chats (organization_id, id, tags, external_user_id, created_at)
         select ?, md5(? || n)::uuid, case n % 3 when 0 then array['a'] when 1 then array['a', 'b'] else '{}'::text[] end, 'u' || n % 4,
                timestamptz '2025-01-01' + n * interval '7 hours'
           from generate_series(1, 40) as n`,
        [id, id],
      );
      await em.execute(
        `insert into messages (organization_id, id, chat_id, role, content, model, prompt_tokens, total_tokens, latency_ms, cost_usd, created_at)
         select ?, gen_random_uuid(), md5(? || (1 + n % 40))::uuid, (array['user', 'assistant', 'system'])[1 + n % 3], 'x',
                case when n % 3 = 1 then 'm' || n % 2 end, n % 50, n % 70, case when n % 3 = 1 then n % 13 * 100 end,
                (n % 9) * 0.001, timestamptz '2025-01-01' + n * interval '37 minutes'
           from generate_series(1, 600) as n`,
        [id, id],
      );
    }
    await db.migrate();
    for (const id of orgs) {
      expect(await mismatches(db.fork(), id)).toEqual({});
      const [row] = await db.fork().execute<{ n: number }[]>(`select count(*)::int as n from analytics_slots where organization_id = ?`, [id]);
      expect(row!.n).toBeGreaterThan(100);
    }
    // From here on the write functions keep them.
    await conversations.deleteChat(db.fork(), orgs[0]!, await chatId(orgs[0]!, 5));
    await conversations.updateChat(db.fork(), orgs[0]!, await chatId(orgs[0]!, 6), { tags: { removed: ['a'], added: ['c'], now: ['c'] } });
    expect(await mismatches(db.fork(), orgs[0]!)).toEqual({});

    await db.fork().execute(`delete from organizations where id = ?`, [orgs[1]]);
    const [left] = await db.fork().execute<{ n: number }[]>(
      `select (select count(*) from analytics_slots where organization_id = ?) + (select count(*) from analytics_tag_days where organization_id = ?)
            + (select count(*) from analytics_latency_days where organization_id = ?) as n`,
      [orgs[1], orgs[1], orgs[1]],
    );
    expect(Number(left!.n)).toBe(0);
  }, 60_000);
});
