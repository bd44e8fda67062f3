/**
 * Group commit of the ingestion API: concurrent single messages and new chats share one
 * statement. Each request still gets its own answer, only after its group committed.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { openDatabase } from '../src/db/orm.ts';
import { createLogger } from '../src/logger.ts';
import { GroupCommit, type Outcome } from '../src/modules/ingestion/group-commit.ts';
import { ingestWriters, type IngestWriters } from '../src/modules/ingestion/writers.ts';
import { prepareAppend } from '../src/modules/messages/messages.service.ts';
import { metrics } from '../src/observability/metrics.ts';
import { createTenant, createTestApp, testConfig, type Tenant, type TestApp } from './support/harness.ts';
import { createServerDatabase, onCitus, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, parseJson, startServer, stopProcess } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type Json = Record<string, unknown>;

const citus = await onCitus();

describe('GroupCommit', () => {
  const echo = (groups: number[][]) => async (items: number[]): Promise<Outcome<number>[]> => {
    groups.push(items);
    await Bun.sleep(5);
    return items.map((n) => (n < 0 ? { ok: false, error: new Error(`bad ${n}`) } : { ok: true, value: n * 10 }));
  };

  test('submissions made together share one write, and each gets its own outcome', async () => {
    const groups: number[][] = [];
    const commit = new GroupCommit({ write: echo(groups), maxBatch: 100, maxWaitMs: 0, maxInFlight: 1 });
    const results = await Promise.allSettled([1, 2, -3, 4].map((n) => commit.submit(n)));
    expect(groups).toEqual([[1, 2, -3, 4]]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([10, 20, 'bad -3', 40]);
  });

  test('groups never exceed maxBatch, and what queues during a write forms the next group', async () => {
    const groups: number[][] = [];
    const commit = new GroupCommit({ write: echo(groups), maxBatch: 3, maxWaitMs: 0, maxInFlight: 1 });
    const values = await Promise.all(Array.from({ length: 8 }, (_, n) => commit.submit(n)));
    expect(values).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    expect(groups.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Math.max(...groups.map((g) => g.length))).toBeLessThanOrEqual(3);
  });

  test('a write that throws fails every submission of its group, and the next group still runs', async () => {
    let calls = 0;
    const commit = new GroupCommit<number, number>({
      write: async (items) => {
        calls++;
        if (calls === 1) throw new Error('database gone');
        return items.map((n) => ({ ok: true, value: n }));
      },
      maxBatch: 10,
      maxWaitMs: 0,
      maxInFlight: 1,
    });
    const first = await Promise.allSettled([1, 2, 3].map((n) => commit.submit(n)));
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(first.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['database gone', 'database gone', 'database gone']);
    expect(await commit.submit(4)).toBe(4);
  });

  test('maxWaitMs holds a group open, and drain() writes it at once', async () => {
    const groups: number[][] = [];
    const commit = new GroupCommit({ write: echo(groups), maxBatch: 100, maxWaitMs: 10_000, maxInFlight: 1 });
    const pending = [1, 2, 3].map((n) => commit.submit(n));
    await Bun.sleep(20);
    expect(groups).toEqual([]);
    expect(commit.pending).toBe(3);
    const started = performance.now();
    await commit.drain();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await Promise.all(pending)).toEqual([10, 20, 30]);
    expect(groups).toEqual([[1, 2, 3]]);
  });
});

describe('group commit through the ingestion API', () => {
  let t: TestApp;
  let tenant: Tenant;
  let other: Tenant;
  let writers: IngestWriters;
  let send: (path: string, body: unknown, apiKey?: string) => Promise<{ status: number; body: Json }>;

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await createTenant(t);
    other = await createTenant(t);
    // Its own app over the same database, with writers that report their groups and wait a
    // little so that concurrent requests reliably share a group.
    const config = testConfig({ INGEST_GROUP_WAIT_MS: '30' });
    writers = ingestWriters(t.db, config.ingestGroup);
    const app = createApp({ config, db: t.db, log: createLogger('silent'), writers });
    send = async (path, body, apiKey = tenant.apiKey) => {
      const response = await app.handle(
        new Request(`http://localhost${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-organization-api-key': apiKey },
          body: JSON.stringify(body),
        }),
      );
      return { status: response.status, body: (await response.json()) as Json };
    };
  });

  /** Groups written so far, and the items in them, from the ingestion metric. */
  const groupTotals = async (kind: 'messages' | 'chats') => {
    const { values } = await metrics.ingestBatchSize.get();
    const value = (suffix: string) => values.find((v) => v.metricName === `chatlogger_ingest_batch_size_${suffix}` && v.labels.kind === kind)?.value ?? 0;
    return { groups: value('count'), items: value('sum') };
  };
  /** Runs `work` and answers whether some group of `kind` meanwhile held more than one item. */
  const shared = async <T>(kind: 'messages' | 'chats', work: () => Promise<T>): Promise<{ result: T; grouped: boolean; items: number }> => {
    const before = await groupTotals(kind);
    const result = await work();
    const after = await groupTotals(kind);
    return { result, grouped: after.groups - before.groups < after.items - before.items, items: after.items - before.items };
  };

  const chatsPath = (slug: string) => `/api/v1/orgs/${slug}/chats`;
  const messagePath = (slug: string, chatId: string) => `${chatsPath(slug)}/${chatId}/messages`;
  const newChat = async (org = tenant) => {
    const created = await send(chatsPath(org.slug), { title: 'group commit' }, org.apiKey);
    expect(created.status).toBe(201);
    return String(created.body.id);
  };
  const rows = async (sql: string, params: unknown[]) => t.db.fork().execute<Json[]>(sql, params);
  const messageCount = async (chatId: string) =>
    Number((await rows(`select message_count from chats where organization_id = ? and id = ?`, [tenant.orgId, chatId]))[0]!.message_count);
  const stored = async (chatId: string) =>
    Number((await rows(`select count(*)::int as n from messages where organization_id = ? and chat_id = ?`, [tenant.orgId, chatId]))[0]!.n);

  test('concurrent messages to several chats are written in shared groups, each answered 201', async () => {
    const chats = await Promise.all(Array.from({ length: 5 }, () => newChat()));
    const { result: replies, grouped, items } = await shared('messages', () =>
      Promise.all(Array.from({ length: 40 }, (_, i) => send(messagePath(tenant.slug, chats[i % 5]!), { role: 'user', content: `hello ${i}` }))),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(40).fill(201));
    expect(items).toBe(40);
    expect(grouped).toBe(true);
    for (const chatId of chats) {
      expect(await stored(chatId)).toBe(8);
      expect(await messageCount(chatId)).toBe(8);
    }
    // Each answer carries its own message as stored.
    expect(new Set(replies.map((r) => r.body.content)).size).toBe(40);
    expect(replies.every((r, i) => r.body.chatId === chats[i % 5])).toBe(true);
  });

  test('new chats made concurrently share groups; a retried id in the same group is created once', async () => {
    const id = crypto.randomUUID();
    const { result: replies, grouped } = await shared('chats', () =>
      Promise.all([
        send(chatsPath(tenant.slug), { id, title: 'first' }),
        send(chatsPath(tenant.slug), { id, title: 'retry' }),
        ...Array.from({ length: 8 }, (_, i) => send(chatsPath(tenant.slug), { title: `chat ${i}`, tags: ['a', 'b'] })),
      ]),
    );
    expect(grouped).toBe(true);
    expect(replies.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(201)]);
    expect(replies[0]!.body).toEqual(replies[1]!.body);
    expect(replies[0]!.body.title).toBe('first');
    expect((await rows(`select count(*)::int as n from chats where organization_id = ? and id = ?`, [tenant.orgId, id]))[0]!.n).toBe(1);
  });

  test('the same message id twice in one group: one 201, one 200 with the same message, one row', async () => {
    const chatId = await newChat();
    const id = crypto.randomUUID();
    const replies = await Promise.all([
      send(messagePath(tenant.slug, chatId), { id, role: 'user', content: 'once' }),
      send(messagePath(tenant.slug, chatId), { id, role: 'user', content: 'once' }),
    ]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(replies[0]!.body).toEqual(replies[1]!.body);
    expect(await stored(chatId)).toBe(1);
    expect(await messageCount(chatId)).toBe(1);
  });

  test.skipIf(citus)('a refused request does not fail its neighbours in the group: 404, 409 and a row the database rejects (not on Citus: a test trigger makes the row fail, and Citus runs no triggers on distributed tables)', async () => {
    const chatId = await newChat();
    const otherChatId = await newChat();
    const taken = crypto.randomUUID();
    expect((await send(messagePath(tenant.slug, otherChatId), { id: taken, role: 'user', content: 'owner' })).status).toBe(201);
    // A row PostgreSQL itself refuses (the contract cannot know): a trigger raises for one marker.
    const marker = `refused-${crypto.randomUUID()}`;
    await t.db.fork().execute(`
      create or replace function test_refuse_marked() returns trigger language plpgsql as $$
      begin
        if new.content like 'refused-%' then raise exception 'refused by a test trigger'; end if;
        return new;
      end $$`);
    await t.db.fork().execute(`create trigger test_refuse_marked before insert on messages for each row execute function test_refuse_marked()`);
    try {
      const { result: replies, grouped } = await shared('messages', () =>
        Promise.all([
          send(messagePath(tenant.slug, chatId), { role: 'user', content: 'fine 1' }),
          send(messagePath(tenant.slug, crypto.randomUUID()), { role: 'user', content: 'no such chat' }),
          send(messagePath(other.slug, chatId), { role: 'user', content: 'another tenant' }, other.apiKey),
          send(messagePath(tenant.slug, chatId), { id: taken, role: 'user', content: 'id of another chat' }),
          send(messagePath(tenant.slug, chatId), { role: 'user', content: marker }),
          send(messagePath(tenant.slug, chatId), { role: 'assistant', content: 'fine 2' }),
        ]),
      );
      expect(grouped).toBe(true);
      expect(replies.map((r) => r.status)).toEqual([201, 404, 404, 409, 500, 201]);
      for (const reply of replies.slice(1, 5)) expect(reply.body.status).toBe(reply.status);
      expect(JSON.stringify(replies[4]!.body)).not.toContain('refused by a test trigger');
    } finally {
      await t.db.fork().execute(`drop trigger if exists test_refuse_marked on messages`);
      await t.db.fork().execute(`drop function if exists test_refuse_marked()`);
    }
    const contents = (await rows(`select content from messages where organization_id = ? and chat_id = ? order by created_at`, [tenant.orgId, chatId])).map((r) => r.content);
    expect(contents).toEqual(['fine 1', 'fine 2']);
    expect(await messageCount(chatId)).toBe(2);
  });

  test.skipIf(citus)('a database error that hits the whole group reaches every request waiting in it, none hangs (not on Citus: the error comes from a test trigger, and Citus runs no triggers on distributed tables)', async () => {
    const victim = await createTenant(t);
    const chatId = await newChat(victim);
    await t.db.fork().execute(`
      create or replace function test_refuse_org() returns trigger language plpgsql as $$
      begin
        if new.organization_id = '${victim.orgId}' then raise exception 'the whole group fails'; end if;
        return new;
      end $$`);
    await t.db.fork().execute(`create trigger test_refuse_org before insert on messages for each row execute function test_refuse_org()`);
    try {
      const { result: replies, grouped } = await shared('messages', () =>
        Promise.race([
          Promise.all(Array.from({ length: 6 }, (_, i) => send(messagePath(victim.slug, chatId), { role: 'user', content: `doomed ${i}` }, victim.apiKey))),
          Bun.sleep(10_000).then(() => 'hung' as const),
        ]),
      );
      expect(replies).not.toBe('hung');
      expect(grouped).toBe(true);
      for (const reply of replies as { status: number; body: Json }[]) {
        expect(reply.status).toBe(500);
        expect(reply.body).toMatchObject({ status: 500, title: 'Internal Server Error' });
      }
    } finally {
      await t.db.fork().execute(`drop trigger if exists test_refuse_org on messages`);
      await t.db.fork().execute(`drop function if exists test_refuse_org()`);
    }
    expect(Number((await rows(`select count(*)::int as n from messages where organization_id = ?`, [victim.orgId]))[0]!.n)).toBe(0);
  });

  test('drain() writes the pending groups before it resolves (as on shutdown)', async () => {
    const chatId = await newChat();
    const slow = ingestWriters(t.db, { maxBatch: 100, maxWaitMs: 10_000, maxInFlight: 2 });
    const pending = Array.from({ length: 5 }, (_, i) =>
      slow.messages.submit(prepareAppend(tenant.orgId, chatId, [{ role: 'user', content: `pending ${i}` }], () => '/body')),
    );
    await Bun.sleep(20);
    expect(await stored(chatId)).toBe(0);
    await slow.drain();
    const results = await Promise.all(pending);
    expect(results.map((r) => r.created)).toEqual([1, 1, 1, 1, 1]);
    expect(await stored(chatId)).toBe(5);
    expect(await messageCount(chatId)).toBe(5);
  });
});

describe('shutdown with groups pending', () => {
  let dir: string;
  let databaseUrl: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chatlogger-group-stop-'));
    databaseUrl = testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined;
  });

  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGTERM answers every request waiting for its group, then exits 0', async () => {
    const email = 'root@group.test';
    const password = 'group-commit-password-1';
    const server = await startServer(
      childEnv({ DATA_DIR: dir, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', LOG_LEVEL: 'info', ADMIN_EMAIL: email, ADMIN_PASSWORD: password, INGEST_GROUP_WAIT_MS: '1000' }),
      { timeoutMs: 60_000 },
    );
    const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Json };
    };
    const token = String((await call('/auth/login', { email, password, issueToken: true })).body.token);
    const auth = { authorization: `Bearer ${token}` };
    const org = await call('/orgs', { name: 'Group', slug: 'group' }, auth);
    expect(org.status).toBe(201);
    const key = String((await call('/orgs/group/apikeys', { label: 'k' }, auth)).body.key);
    const chat = await call('/api/v1/orgs/group/chats', { title: 'shutdown' }, { 'x-organization-api-key': key });
    expect(chat.status).toBe(201);

    // These wait up to a second for their group; the signal comes first.
    const replies = Array.from({ length: 10 }, (_, i) =>
      call(`/api/v1/orgs/group/chats/${chat.body.id}/messages`, { role: 'user', content: `in flight ${i}` }, { 'x-organization-api-key': key }),
    );
    await Bun.sleep(150);
    const stopping = stopProcess(server, 'SIGTERM', 10_000);
    const answered = await Promise.all(replies);
    expect(answered.map((r) => r.status)).toEqual(Array(10).fill(201));
    const { exitCode } = await stopping;
    expect(exitCode).toBe(0);
    expect(server.lines.map((l) => parseJson(l)?.msg)).toContain('stopped');

    const db = await openDatabase({ databaseUrl, dataDir: dir, databasePoolSize: 1 });
    try {
      const [row] = await db
        .fork()
        .execute<{ n: number; counter: number }[]>(
          `select count(*)::int as n, (select message_count from chats where organization_id = ? and id = ?) as counter
             from messages where organization_id = ? and chat_id = ?`,
          [org.body.id, chat.body.id, org.body.id, chat.body.id],
        );
      expect(Number(row!.n)).toBe(10);
      expect(Number(row!.counter)).toBe(10);
    } finally {
      await db.close();
    }
  }, 90_000);
});
