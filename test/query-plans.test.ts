import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { chatFilters } from '../src/modules/chats/chats.service.ts';
import { listChatsSql, listMessagesSql, type ChatFilters, type Sql } from '../src/modules/conversations/conversations.repository.ts';
import { query } from '../src/db/sql.ts';
import { createTenant, createTestApp, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

/**
 * Proves that an index can serve each list: the planner is asked for a plan of the exact SQL the
 * services run with sequential scans priced out (at a few hundred rows it would rightly prefer
 * them), and the plan must read the expected index.
 */
let t: TestApp;
let orgId: string;
let chatId: string;

beforeAll(async () => {
  t = await createTestApp();
  orgId = (await createTenant(t)).orgId;
  const em = t.db.fork();
  await em.execute(
    `insert into chats (organization_id, id, title, tags, source, external_user_id, created_at, last_message_at)
     select ?, gen_random_uuid(), case when n % 100 = 0 then 'kumquats' else 'chat number ' || n end, array['tag' || (n % 10)], 'web', 'user-' || (n % 7),
            now() - n * interval '1 minute', now() - n * interval '30 seconds'
       from generate_series(1, 300) as n`,
    [orgId],
  );
  const [first] = await em.execute<{ id: string }[]>(`select id from chats where organization_id = ? order by created_at desc limit 1`, [orgId]);
  chatId = first!.id;
  await em.execute(
    `insert into messages (organization_id, id, chat_id, role, content, created_at)
     select c.organization_id, gen_random_uuid(), c.id, 'user', 'hello number ' || n, c.created_at + n * interval '1 second'
       from chats c, generate_series(1, 3) as n
      where c.organization_id = ?`,
    [orgId],
  );
  // A rare word, so that its index is worth reading.
  await em.execute(
    `update messages set content = 'a persimmon'
      where organization_id = ? and id in (select id from messages where organization_id = ? order by id limit 5)`,
    [orgId, orgId],
  );
  // Vacuum too: it moves the GIN indexes' pending entries into their trees, as autovacuum would.
  await em.execute(`vacuum analyze chats`);
  await em.execute(`vacuum analyze messages`);
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
  /** On Citus: the plan of each task, on the node that runs it. */
  'Distributed Query'?: { Job: { Tasks: { 'Remote Plan': { Plan: PlanNode }[][] }[] } };
}

/**
 * Every index read of a plan (sub-plans and, on Citus, the plans of the tasks on the workers
 * included), as `<node type> on <index>: <index condition>`; a shard's index is named as the
 * index it is a copy of.
 */
function indexScans(node: PlanNode): string[] {
  const index = node['Index Name']?.replace(/_\d+$/, '');
  const own = index ? [`${node['Node Type']} on ${index}: ${node['Index Cond'] ?? ''}`] : [];
  const tasks = node['Distributed Query']?.Job.Tasks.flatMap((task) => task['Remote Plan'].flat().map((plan) => plan.Plan)) ?? [];
  return [...own, ...(node.Plans ?? []).flatMap(indexScans), ...tasks.flatMap(indexScans)];
}

async function planOf({ sql, params }: Sql): Promise<string[]> {
  return t.db.fork().transactional(async (tx) => {
    // On Citus the plan that matters is the worker's: the setting travels there only when asked.
    await query(tx, `set local citus.propagate_set_commands = 'local'`, []);
    await query(tx, 'set local enable_seqscan = off', []);
    const [row] = await query(tx, `explain (format json) ${sql}`, params);
    const raw = row!['QUERY PLAN'];
    const [plan] = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
    return indexScans(plan!.Plan);
  });
}

const filters = (query: Parameters<typeof chatFilters>[0]): ChatFilters => chatFilters(query);
const after = { at: '2100-01-01 00:00:00+00', id: 'ffffffff-ffff-4fff-bfff-ffffffffffff' };

// Node types are matched loosely: Index Scan, Index Only Scan, Bitmap Index Scan all prove it.
const usesIndex = (name: string) => expect.arrayContaining([expect.stringMatching(new RegExp(`Index.* on ${name}: `))]);
// After a cursor the row comparison must bound the index range, not filter rows read from its start.
const startsAtCursor = (name: string) => expect.arrayContaining([expect.stringMatching(new RegExp(`Index.* on ${name}: .*ROW\\(`))]);

describe('each list can be served by its index', () => {
  test('chats by last activity: chats_activity_idx, first page and after a cursor', async () => {
    expect(await planOf(listChatsSql(orgId, filters({}), undefined, 50))).toEqual(usesIndex('chats_activity_idx'));
    expect(await planOf(listChatsSql(orgId, filters({}), after, 50))).toEqual(startsAtCursor('chats_activity_idx'));
    expect(await planOf(listChatsSql(orgId, filters({ order: 'asc' }), after, 50))).toEqual(startsAtCursor('chats_activity_idx'));
    expect(await planOf(listChatsSql(orgId, filters({ from: '2025-01-01T00:00:00Z' }), after, 50))).toEqual(usesIndex('chats_activity_idx'));
  });

  test('chats by creation: chats_created_idx, first page and after a cursor', async () => {
    expect(await planOf(listChatsSql(orgId, filters({ sort: 'createdAt' }), undefined, 50))).toEqual(usesIndex('chats_created_idx'));
    expect(await planOf(listChatsSql(orgId, filters({ sort: 'createdAt' }), after, 50))).toEqual(startsAtCursor('chats_created_idx'));
    expect(await planOf(listChatsSql(orgId, filters({ sort: 'createdAt', order: 'asc' }), after, 50))).toEqual(startsAtCursor('chats_created_idx'));
  });

  // chats_tags_idx covers every tenant's tags; when the database holds many other tenants (the
  // whole suite's), the planner rightly prefers walking this tenant's activity index and filtering
  // by tag. Either way an index bounds the read to what the page needs.
  test('a tag filter: chats_tags_idx or the tenant-prefixed activity index, for any and all', async () => {
    const tagOrActivity = expect.arrayContaining([expect.stringMatching(/Index.* on (chats_tags_idx: |chats_activity_idx: .*organization_id)/)]);
    expect(await planOf(listChatsSql(orgId, filters({ tags: 'tag3' }), undefined, 50))).toEqual(tagOrActivity);
    expect(await planOf(listChatsSql(orgId, filters({ tags: 'tag3,tag4', tagMode: 'all' }), undefined, 50))).toEqual(tagOrActivity);
  });

  // The words of both search indexes are tagged with their organization, so the index condition
  // itself is about one organization.
  test('a rare word: messages_search_idx, scoped by organization', async () => {
    const plan = await planOf(listChatsSql(orgId, filters({ q: 'persimmon' }), undefined, 50));
    expect(plan).toEqual(expect.arrayContaining([expect.stringMatching(/Index.* on messages_search_idx: \(search @@ '.*''[a-p]{6}persimmon'':\*/)]));
  });

  test('a title search alone can use chats_search_idx, scoped by organization', async () => {
    // The same expression the list uses, so the index that the OR cannot use directly is proven usable.
    const sql = `select id from chats c where c.organization_id = $1 and c.search @@ chatlogger_search_query($1, 'simple', $2::jsonb)`;
    const plan = await planOf({ sql, params: [orgId, JSON.stringify([[{ text: 'kumquats', phrase: false, negated: false }]])] });
    expect(plan).toEqual(expect.arrayContaining([expect.stringMatching(/Index.* on chats_search_idx: \(search @@ '.*''[a-p]{6}kumquats'':\*/)]));
  });

  test('messages of a chat: messages_chat_idx, first page and after a cursor', async () => {
    expect(await planOf(listMessagesSql(orgId, chatId, undefined, 50))).toEqual(usesIndex('messages_chat_idx'));
    expect(await planOf(listMessagesSql(orgId, chatId, after, 50))).toEqual(startsAtCursor('messages_chat_idx'));
  });
});
