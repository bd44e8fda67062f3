import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { query } from '../src/db/sql.ts';
import { DISTRIBUTED_TABLES, REFERENCE_TABLES } from '../src/db/distribution.ts';
import { chatFilters } from '../src/modules/chats/chats.service.ts';
import {
  listChatsSql,
  listMessagesSql,
  snapshotChatMessagesSql,
  snapshotChatsSql,
  snapshotMessagesSql,
  type Sql,
} from '../src/modules/conversations/conversations.repository.ts';
import { runRetention } from '../src/modules/lifecycle/retention.ts';
import { createServerDatabase, onCitus } from './support/database.ts';
import { createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';

/*
 * On a Citus coordinator (TEST_DATABASE_URL pointing at one), the schema is distributed by
 * organization and every request of one organization is answered by the one node that holds it.
 *
 * The proof is Citus's own: PostgreSQL counts, per shard table on each worker, the scans and the
 * rows written (pg_stat_user_tables). After one organization goes through every operation of the
 * API, only that organization's shards (one per table, all on one node) have moved; the shards of
 * every other organization, on every node, have not. The statements the repository builds are also
 * checked with EXPLAIN: one task, on that node.
 *
 * Elsewhere (PGlite, plain PostgreSQL) there is nothing to distribute and these tests are skipped.
 */

const citus = await onCitus();
setDefaultTimeout(180_000);

let db: Database;
let t: TestApp;
let a: Tenant;
let b: Tenant;

/** Per shard of every distributed table: scans plus rows inserted, updated and deleted. */
async function shardActivity(): Promise<Map<string, number>> {
  const activity = new Map<string, number>();
  for (const table of DISTRIBUTED_TABLES) {
    const rows = await query<{ shardid: string; result: string }>(
      db.fork(),
      `select shardid::text, result
         from run_command_on_shards($1, $$select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd + n_tup_del
                                          from pg_stat_user_tables where relid = '%s'::regclass$$)`,
      [table],
    );
    for (const row of rows) activity.set(`${table}/${row.shardid}`, Number(row.result));
  }
  return activity;
}

/**
 * Workers report their table statistics when a backend goes idle, at most every 10 s
 * (PGSTAT_IDLE_INTERVAL): waiting that long makes the counters complete.
 */
const settle = () => Bun.sleep(11_000);

/** The shard of `organizationId` in each distributed table, and the node that holds them. */
async function placement(organizationId: string) {
  const rows = await query<{ table_name: string; shardid: string; node: string }>(
    db.fork(),
    `select s.table_name::text, s.shardid::text, s.nodename || ':' || s.nodeport as node
       from citus_shards s
      where s.citus_table_type = 'distributed' and s.shardid = get_shard_id_for_distribution_column(s.table_name, $1::uuid)`,
    [organizationId],
  );
  return { shards: new Set(rows.map((row) => `${row.table_name}/${row.shardid}`)), nodes: new Set(rows.map((row) => row.node)) };
}

beforeAll(async () => {
  if (!citus) return;
  db = await openDatabase({ databaseUrl: await createServerDatabase(), dataDir: 'memory://', databasePoolSize: 10 });
  await db.migrate();
  t = await createTestApp({}, db);
  a = await createTenant(t);
  // B's shards must not be A's (two organizations share a shard one time in 32).
  const shardsOfA = (await placement(a.orgId)).shards;
  do b = await createTenant(t);
  while ([...(await placement(b.orgId)).shards].some((shard) => shardsOfA.has(shard)));
  // B has data of its own on its shards, whose counters must not move while A works.
  const chat = await t.client({ apiKey: b.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: b.slug } }, body: { tags: ['b'] } });
  await t.client({ apiKey: b.apiKey }).POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', {
    params: { path: { slug: b.slug, chatId: chat.data!.id } },
    body: { messages: [{ role: 'user', content: 'from b' }, { role: 'assistant', content: 'to b', latencyMs: 10 }] },
  });
});

afterAll(async () => {
  await db?.close();
});

describe.skipIf(!citus)('Citus: distributed by organization', () => {
  test('the migrations distributed every table: reference tables and co-located distributed ones', async () => {
    const rows = await query<{ table_name: string; kind: string; colocation_id: number; column: string | null }>(
      db.fork(),
      `select table_name::text, citus_table_type as kind, colocation_id, distribution_column as column from citus_tables`,
      [],
    );
    const byName = new Map(rows.map((row) => [row.table_name, row]));
    for (const table of REFERENCE_TABLES) expect({ table, kind: byName.get(table)?.kind }).toEqual({ table, kind: 'reference' });
    const colocation = byName.get('chats')!.colocation_id;
    for (const table of DISTRIBUTED_TABLES) {
      expect({ table, kind: byName.get(table)?.kind, column: byName.get(table)?.column, colocation: byName.get(table)?.colocation_id }).toEqual({
        table,
        kind: 'distributed',
        column: 'organization_id',
        colocation,
      });
    }
    // Running the migrations again changes nothing.
    expect(await db.migrate()).toEqual([]);
  });

  test("every operation of one organization touches only that organization's shards, on one node", async () => {
    const { shards, nodes } = await placement(a.orgId);
    expect(nodes.size).toBe(1);
    const other = await placement(b.orgId);
    expect([...other.shards].some((shard) => shards.has(shard))).toBe(false);

    await settle();
    const before = await shardActivity();
    await tour(a);
    await settle();
    const after = await shardActivity();

    const moved = [...after].filter(([shard, n]) => n !== before.get(shard)).map(([shard]) => shard);
    // Everything A did moved A's shards of the tables it wrote and read...
    for (const table of ['chats', 'messages', 'exports', 'audit_events', 'analytics_slots', 'analytics_tag_days', 'analytics_latency_days']) {
      expect(moved.some((shard) => shard.startsWith(`${table}/`) && shards.has(shard))).toBe(true);
    }
    // ...and nothing else, on any node.
    expect(moved.filter((shard) => !shards.has(shard))).toEqual([]);
  });

  test('the statements the repository builds are router queries: one task, on the organization\'s node', async () => {
    const { nodes } = await placement(a.orgId);
    const [node] = [...nodes];
    const [host, port] = node!.split(':');
    const { data: chat } = await t.client({ apiKey: a.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: a.slug } }, body: {} });
    const [{ snapshot }] = (await query<{ snapshot: string }>(db.fork(), `select chatlogger_snapshot($1) as snapshot`, [a.orgId])) as [{ snapshot: string }];
    const after = { at: '2000-01-01 00:00:00+00', id: '00000000-0000-0000-0000-000000000000' };
    const statements: [string, Sql][] = [
      ['chats by activity', listChatsSql(a.orgId, chatFilters({}), undefined, 50)],
      ['chats by creation, filtered, after a cursor', listChatsSql(a.orgId, chatFilters({ sort: 'createdAt', order: 'asc', tags: 'x,y', source: 's', externalUserId: 'u', from: '2025-01-01T00:00:00Z' }), after, 50)],
      ['chats matching a search', listChatsSql(a.orgId, chatFilters({ q: 'refund' }), undefined, 50)],
      ['messages of a chat', listMessagesSql(a.orgId, chat!.id, after, 50)],
      ['chats of a snapshot', snapshotChatsSql(a.orgId, snapshot, { tags: ['x'], externalUserId: 'u' }, after, 1000)],
      ['messages of a snapshot', snapshotMessagesSql(a.orgId, snapshot, { from: '2025-01-01T00:00:00Z' }, after, 1000)],
      ['messages of a chat in a snapshot', snapshotChatMessagesSql(a.orgId, chat!.id, snapshot, after, 1000)],
      ['the append call', { sql: `select * from chatlogger_append_messages($1, $2::jsonb)`, params: [a.orgId, '[]'] }],
    ];
    for (const [name, { sql, params }] of statements) {
      const plan = (await query<{ 'QUERY PLAN': string }>(db.fork(), `explain ${sql}`, params)).map((row) => row['QUERY PLAN']).join('\n');
      expect({ name, tasks: /Task Count: (\d+)/.exec(plan)?.[1], node: /Node: host=(\S+) port=(\d+)/.exec(plan)?.slice(1, 3), subplans: plan.includes('Distributed Subplan') }).toEqual({
        name,
        tasks: '1',
        node: [host!, port!],
        subplans: false,
      });
    }
  });
});

/** Every operation of the API that reads or writes an organization's data, as that organization. */
async function tour(tenant: Tenant) {
  const key = t.client({ apiKey: tenant.apiKey });
  const admin = t.client({ token: tenant.adminToken });
  const slug = { slug: tenant.slug };
  const ok = (what: string, status: number, expected = [200, 201, 204]) => expect({ what, status: expected.includes(status) }).toEqual({ what, status: true });

  // Ingestion: chat creation (and its retry), single messages in groups (with a retry and the
  // same id twice in one group), a batch.
  const chatId = crypto.randomUUID();
  for (let i = 0; i < 2; i++) {
    const created = await key.POST('/api/v1/orgs/{slug}/chats', { params: { path: slug }, body: { id: chatId, title: 'Refund please', tags: ['x', 'y'], externalUserId: 'u', source: 's' } });
    ok('create chat', created.response.status);
  }
  const more = await Promise.all(Array.from({ length: 4 }, (_, i) => key.POST('/api/v1/orgs/{slug}/chats', { params: { path: slug }, body: { title: `chat ${i}`, externalUserId: i % 2 ? 'u' : 'v' } })));
  more.forEach((r) => ok('create chats at once', r.response.status));
  const twice = crypto.randomUUID();
  const singles = await Promise.all([
    ...Array.from({ length: 8 }, (_, i) =>
      key.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', {
        params: { path: { ...slug, chatId: i % 2 ? chatId : more[i % 4]!.data!.id } },
        body: { role: i % 2 ? 'assistant' : 'user', content: `where is my refund ${i}`, model: 'm', latencyMs: 100 + i, promptTokens: 3, completionTokens: 4, costUsd: 0.001 },
      }),
    ),
    key.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', { params: { path: { ...slug, chatId } }, body: { id: twice, role: 'user', content: 'twice' } }),
    key.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', { params: { path: { ...slug, chatId } }, body: { id: twice, role: 'user', content: 'twice' } }),
  ]);
  singles.forEach((r) => ok('single message', r.response.status));
  const batch = { messages: [{ role: 'user' as const, content: 'a batch' }, { role: 'assistant' as const, content: 'of two', latencyMs: 7, createdAt: '2025-06-01T10:00:00Z' }] };
  ok('batch', (await key.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', { params: { path: { ...slug, chatId } }, body: batch })).response.status);
  ok('missing chat', (await key.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', { params: { path: { ...slug, chatId: crypto.randomUUID() } }, body: { role: 'user', content: 'x' } })).response.status, [404]);

  // Reading, searching, editing.
  const org = { org: 'me' };
  for (const q of [{}, { sort: 'createdAt' as const, order: 'asc' as const }, { q: 'refund' }, { tags: 'x' }, { externalUserId: 'u', source: 's' }]) {
    ok('list chats', (await admin.GET('/orgs/{org}/chats', { params: { path: org, query: q } })).response.status);
  }
  ok('get chat', (await admin.GET('/orgs/{org}/chats/{chatId}', { params: { path: { ...org, chatId } } })).response.status);
  ok('messages', (await admin.GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { ...org, chatId }, query: { limit: 2 } } })).response.status);
  ok('edit chat', (await admin.PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { ...org, chatId } }, body: { title: 'Refund sent', tags: ['y', 'z'], metadata: { k: 1 } } })).response.status);

  // Analytics.
  ok('summary', (await admin.GET('/analytics/orgs/{org}/summary', { params: { path: org, query: { from: '2025-06-01', to: '2026-05-31', tz: 'Asia/Kathmandu' } } })).response.status);
  for (const metric of ['messages', 'chats', 'endUsers', 'latencyP95', 'latencyAvg', 'costUsd'] as const) {
    ok('timeseries', (await admin.GET('/analytics/orgs/{org}/timeseries', { params: { path: org, query: { metric, interval: 'week', from: '2025-06-01', to: '2026-05-31' } } })).response.status);
  }

  // Exports: both scopes, filtered, listed and downloaded; the end-user export.
  for (const body of [
    { format: 'csv' as const, scope: 'chats' as const },
    { format: 'json' as const, scope: 'messages' as const, tags: ['y'] },
    { format: 'ndjson' as const, scope: 'messages' as const, from: '2025-01-01T00:00:00Z' },
  ]) {
    const created = await admin.POST('/exports/orgs/{org}', { params: { path: org }, body });
    ok('create export', created.response.status);
    const file = await t.fetch(created.data!.downloadUrl, { headers: { authorization: `Bearer ${tenant.adminToken}` } });
    ok('download export', file.status);
    await file.text();
  }
  ok('list exports', (await admin.GET('/exports/orgs/{org}', { params: { path: org } })).response.status);
  const endUser = await t.fetch('/orgs/me/end-users/u/export', { headers: { authorization: `Bearer ${tenant.adminToken}` } });
  ok('end-user export', endUser.status);
  await endUser.text();

  // Audit, deletion, erasure, retention.
  ok('audit', (await admin.GET('/orgs/{org}/audit', { params: { path: org } })).response.status);
  ok('delete chat', (await admin.DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { ...org, chatId: more[0]!.data!.id } } })).response.status);
  ok('erase end user', (await admin.DELETE('/orgs/{org}/end-users/{externalUserId}', { params: { path: { ...org, externalUserId: 'v' } } })).response.status);
  ok('retention setting', (await admin.PATCH('/orgs/{org}', { params: { path: org }, body: { settings: { retentionDays: 1 } } })).response.status);
  const purged = await runRetention(t.db, new Date(Date.now() + 3 * 86_400_000));
  expect(purged.skipped).toBe(false);
}
