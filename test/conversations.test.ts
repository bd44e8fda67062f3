import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components, operations } from '../src/generated/openapi.ts';
import { encodeCursor } from '../src/http/cursor.ts';
import { toPgArray } from '../src/modules/conversations/conversations.repository.ts';
import { addUser, createTenant, createTestApp, superadminToken, type Tenant, type TestApp, appendBatch } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type Chat = components['schemas']['Chat'];
type Message = components['schemas']['Message'];
type MessageCreate = components['schemas']['MessageCreate'];
type ListQuery = NonNullable<operations['listChats']['parameters']['query']>;

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});

const as = (token: string) => t.client({ token });

// ---- seeding -------------------------------------------------------------------------------

interface ChatSeed {
  createdAt: string;
  title?: string | null;
  tags?: string[];
  source?: string | null;
  externalUserId?: string | null;
}

/** Inserted directly, because only the database lets a test choose a chat's creation time. */
async function insertChat(orgId: string, seed: ChatSeed): Promise<string> {
  const id = crypto.randomUUID();
  await t.db.fork().execute(
    `insert into chats (organization_id, id, title, tags, source, external_user_id, created_at, updated_at)
     values (?, ?, ?, ?::text[], ?, ?, ?, ?)`,
    [orgId, id, seed.title ?? null, toPgArray(seed.tags ?? []), seed.source ?? null, seed.externalUserId ?? null, seed.createdAt, seed.createdAt],
  );
  return id;
}

const appendMessages = (tenant: Tenant, chatId: string, messages: MessageCreate[]) => appendBatch(t, tenant, chatId, messages);

async function ingestChat(tenant: Tenant, title: string): Promise<Chat> {
  const { data } = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats', {
    params: { path: { slug: tenant.slug } },
    body: { title },
  });
  return data!;
}

// ---- reading -------------------------------------------------------------------------------

function listChats(token: string, org: string, query: ListQuery = {}) {
  return as(token).GET('/orgs/{org}/chats', { params: { path: { org }, query } });
}

async function listIds(token: string, org: string, query: ListQuery = {}): Promise<string[]> {
  return (await walkChats(token, org, query)).flat();
}

/** Every page of a list, following cursors; `between` runs before each next page. */
async function walkChats(token: string, org: string, query: ListQuery, between?: (pageIndex: number) => Promise<void>): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const { data, response } = await listChats(token, org, { ...query, cursor });
    expect(response.status).toBe(200);
    pages.push(data!.items.map((chat) => chat.id));
    cursor = data!.nextCursor ?? undefined;
    if (cursor && between) await between(pages.length);
    expect(pages.length).toBeLessThan(500);
  } while (cursor);
  return pages;
}

async function walkMessages(token: string, org: string, chatId: string, limit: number, between?: (pageIndex: number) => Promise<void>) {
  const pages: Message[][] = [];
  let cursor: string | undefined;
  do {
    const { data, response } = await as(token).GET('/orgs/{org}/chats/{chatId}/messages', {
      params: { path: { org, chatId }, query: { limit, cursor } },
    });
    expect(response.status).toBe(200);
    pages.push(data!.items);
    cursor = data!.nextCursor ?? undefined;
    if (cursor && between) await between(pages.length);
    expect(pages.length).toBeLessThan(500);
  } while (cursor);
  return pages;
}

const rawGet = (path: string, token: string) => t.fetch(path, { headers: { authorization: `Bearer ${token}` } });

async function expect422(response: Response, pointer: string) {
  expect(response.status).toBe(422);
  const problem = (await response.json()) as { errors?: { pointer: string }[] };
  expect(problem.errors?.map((e) => e.pointer)).toContain(pointer);
}

const sorted = (ids: string[]) => [...ids].sort();

// ---- pagination ----------------------------------------------------------------------------

describe('listChats pagination', () => {
  interface Seeded {
    id: string;
    createdAt: string;
    lastActivity: string;
  }
  let tenant: Tenant;
  const seeded: Seeded[] = [];

  beforeAll(async () => {
    tenant = await createTenant(t);
    // 60 chats: one a minute, five sharing one instant (the id decides), two a microsecond apart.
    for (let n = 0; n < 60; n++) {
      let createdAt = new Date(Date.UTC(2025, 0, 1, 0, n)).toISOString().replace('.000Z', '.000000Z');
      if (n >= 10 && n < 15) createdAt = '2025-01-01T00:10:00.000000Z';
      if (n === 20) createdAt = '2025-01-01T00:20:00.000001Z';
      if (n === 21) createdAt = '2025-01-01T00:20:00.000002Z';
      const id = await insertChat(tenant.orgId, { createdAt, title: `chat ${n}` });
      seeded.push({ id, createdAt, lastActivity: createdAt });
    }
    // Every third chat gets a message later on: its last activity moves, its creation does not.
    for (let n = 0; n < 60; n += 3) {
      const at = new Date(Date.UTC(2025, 0, 2, 0, (n * 7) % 60, 0, 0)).toISOString().replace('Z', '123Z');
      await appendMessages(tenant, seeded[n]!.id, [{ role: 'user', content: `message ${n}`, createdAt: at }]);
      seeded[n]!.lastActivity = at;
    }
  });

  // Microsecond strings of the same form compare like the instants; the id breaks ties.
  function expectedOrder(key: 'createdAt' | 'lastActivity', order: 'asc' | 'desc'): string[] {
    const rows = [...seeded].sort((a, b) => a[key].localeCompare(b[key]) || a.id.localeCompare(b.id));
    if (order === 'desc') rows.reverse();
    return rows.map((row) => row.id);
  }

  for (const sort of ['lastActivity', 'createdAt'] as const) {
    for (const order of ['desc', 'asc'] as const) {
      test(`sort=${sort} order=${order} walks every chat exactly once, in order`, async () => {
        const pages = await walkChats(tenant.adminToken, 'me', { sort, order, limit: 7 });
        expect(pages.length).toBe(9);
        expect(pages.slice(0, -1).every((p) => p.length === 7)).toBe(true);
        expect(pages.flat()).toEqual(expectedOrder(sort, order));
      });
    }
  }

  test('the default is sort=lastActivity, order=desc, 50 per page', async () => {
    const first = await listChats(tenant.adminToken, 'me');
    expect(first.data!.items.length).toBe(50);
    expect(first.data!.items.map((c) => c.id)).toEqual(expectedOrder('lastActivity', 'desc').slice(0, 50));
    const second = await listChats(tenant.adminToken, 'me', { cursor: first.data!.nextCursor! });
    expect(second.data!.items.length).toBe(10);
    expect(second.data!.nextCursor).toBeNull();
  });

  test('a page that ends the list exactly has no next cursor', async () => {
    const pages = await walkChats(tenant.adminToken, 'me', { limit: 20 });
    expect(pages.map((p) => p.length)).toEqual([20, 20, 20]);
    const whole = await listChats(tenant.adminToken, 'me', { limit: 200 });
    expect(whole.data!.items.length).toBe(60);
    expect(whole.data!.nextCursor).toBeNull();
  });

  test.each([0, 201, -1])('limit=%p is a 422', async (limit) => {
    await expect422(await rawGet(`/orgs/me/chats?limit=${limit}`, tenant.adminToken), '/query/limit');
  });

  test('limit=200 is accepted', async () => {
    expect((await listChats(tenant.adminToken, 'me', { limit: 200 })).response.status).toBe(200);
  });

  test.each([
    ['not base64 JSON', '%%%not-a-cursor'],
    ['garbage', 'bm90IGpzb24'],
    ['wrong arity', encodeCursor(['2025-01-01 00:00:00+00'])],
    ['a number', encodeCursor([1, crypto.randomUUID()])],
    ['an impossible date', encodeCursor(['2025-02-30 00:00:00+00', crypto.randomUUID()])],
    ['an ISO timestamp PostgreSQL did not print', encodeCursor(['yesterday', crypto.randomUUID()])],
    ['a non-uuid id', encodeCursor(['2025-01-01 00:00:00+00', 'not-a-uuid'])],
  ])('a bad cursor (%s) is a 422', async (_, cursor) => {
    await expect422(await rawGet(`/orgs/me/chats?cursor=${encodeURIComponent(cursor)}`, tenant.adminToken), '/query/cursor');
  });

  test('an unknown sort or order is a 422', async () => {
    await expect422(await rawGet('/orgs/me/chats?sort=title', tenant.adminToken), '/query/sort');
    await expect422(await rawGet('/orgs/me/chats?order=up', tenant.adminToken), '/query/order');
  });
});

describe('stability while paging', () => {
  for (const order of ['desc', 'asc'] as const) {
    test(`sort=createdAt order=${order}: chats created between pages never repeat or hide pre-existing ones`, async () => {
      const tenant = await createTenant(t);
      const existing: string[] = [];
      for (let n = 0; n < 30; n++) {
        existing.push(await insertChat(tenant.orgId, { createdAt: new Date(Date.UTC(2025, 5, 1, n)).toISOString() }));
      }
      const createdNow: string[] = [];
      const pages = await walkChats(tenant.adminToken, 'me', { sort: 'createdAt', order, limit: 4 }, async (pageIndex) => {
        // One chat created now (after every existing one) and one among the existing ones.
        createdNow.push((await ingestChat(tenant, `new ${pageIndex}`)).id);
        await insertChat(tenant.orgId, { createdAt: new Date(Date.UTC(2025, 5, 1, pageIndex, 30)).toISOString() });
      });
      const seen = pages.flat();
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.filter((id) => existing.includes(id))).toEqual(order === 'desc' ? [...existing].reverse() : existing);
      if (order === 'asc') expect(seen.slice(-createdNow.length)).toEqual(createdNow);
      else expect(seen.some((id) => createdNow.includes(id))).toBe(false);
    });
  }

  test('messages appended while paging appear at the end, exactly once', async () => {
    const tenant = await createTenant(t);
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-03-01T00:00:00Z' });
    const base = Date.UTC(2025, 2, 1, 0, 1);
    const original = await appendMessages(
      tenant,
      chatId,
      Array.from({ length: 12 }, (_, n) => ({ role: 'user' as const, content: `m${n}`, createdAt: new Date(base + n * 1000).toISOString() })),
    );
    const appended: string[] = [];
    const pages = await walkMessages(tenant.adminToken, 'me', chatId, 5, async (pageIndex) => {
      if (pageIndex > 3) return;
      const [message] = await appendMessages(tenant, chatId, [{ role: 'assistant', content: `late ${pageIndex}` }]);
      appended.push(message!.id);
    });
    const ids = pages.flat().map((m) => m.id);
    expect(ids).toEqual([...original.map((m) => m.id), ...appended]);
    const times = pages.flat().map((m) => m.createdAt);
    expect(times).toEqual([...times].sort());
  });
});

// ---- messages ------------------------------------------------------------------------------

describe('listChatMessages', () => {
  let tenant: Tenant;
  let chatId: string;
  let stored: Message[];
  beforeAll(async () => {
    tenant = await createTenant(t);
    chatId = await insertChat(tenant.orgId, { createdAt: '2025-04-01T00:00:00Z' });
    // Same instant for several messages: the id orders them.
    const at = '2025-04-01T00:00:01.000001Z';
    stored = await appendMessages(tenant, chatId, [
      ...Array.from({ length: 5 }, (_, n) => ({ role: 'user' as const, content: `tie ${n}`, createdAt: at })),
      ...Array.from({ length: 6 }, (_, n) => ({ role: 'assistant' as const, content: `reply ${n}`, createdAt: `2025-04-01T00:00:0${n + 2}.00000${n}Z` })),
    ]);
  });

  test('pages through the conversation in (createdAt, id) order', async () => {
    const pages = await walkMessages(tenant.adminToken, 'me', chatId, 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 2]);
    const expected = [...stored].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    expect(pages.flat().map((m) => m.id)).toEqual(expected.map((m) => m.id));
    expect(pages.flat()[5]!.createdAt).toBe('2025-04-01T00:00:02.000000Z');
  });

  test('the default page is 50 and an empty chat is an empty list', async () => {
    const { data } = await as(tenant.adminToken).GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId } } });
    expect(data!.items.length).toBe(11);
    expect(data!.nextCursor).toBeNull();
    const empty = await insertChat(tenant.orgId, { createdAt: '2025-04-02T00:00:00Z' });
    const none = await as(tenant.adminToken).GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId: empty } } });
    expect(none.data).toEqual({ items: [], nextCursor: null });
  });

  test('an unknown or malformed chat is a 404', async () => {
    for (const id of [crypto.randomUUID(), 'nope']) {
      const { response } = await as(tenant.adminToken).GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId: id } } });
      expect(response.status).toBe(404);
    }
  });

  test('limit bounds and a bad cursor are 422s', async () => {
    await expect422(await rawGet(`/orgs/me/chats/${chatId}/messages?limit=0`, tenant.adminToken), '/query/limit');
    await expect422(await rawGet(`/orgs/me/chats/${chatId}/messages?limit=201`, tenant.adminToken), '/query/limit');
    await expect422(await rawGet(`/orgs/me/chats/${chatId}/messages?cursor=abc`, tenant.adminToken), '/query/cursor');
  });
});

// ---- filters -------------------------------------------------------------------------------

describe('listChats filters', () => {
  let tenant: Tenant;
  const c: Record<string, string> = {};
  const ids = (...names: string[]) => sorted(names.map((name) => c[name]!));
  const find = async (query: ListQuery) => sorted(await listIds(tenant.adminToken, 'me', { limit: 2, ...query }));

  beforeAll(async () => {
    tenant = await createTenant(t);
    c.billing = await insertChat(tenant.orgId, {
      createdAt: '2025-01-01T00:00:00.000001Z',
      title: 'Billing question about invoices',
      tags: ['billing', 'urgent'],
      source: 'web',
      externalUserId: 'u-1',
    });
    c.password = await insertChat(tenant.orgId, {
      createdAt: '2025-01-02T00:00:00.000002Z',
      title: 'Password reset',
      tags: ['account'],
      source: 'ios',
      externalUserId: 'u-2',
    });
    c.untitled = await insertChat(tenant.orgId, { createdAt: '2025-01-03T00:00:00Z', tags: ['billing'], source: 'web', externalUserId: 'u-2' });
    c.refund = await insertChat(tenant.orgId, {
      createdAt: '2025-01-04T00:00:00Z',
      title: 'Refund request',
      tags: ['billing', 'account'],
      source: 'android',
      externalUserId: 'u-1',
    });
    c.hello = await insertChat(tenant.orgId, { createdAt: '2025-01-05T00:00:00Z', title: 'Hello' });
    await appendMessages(tenant, c.password, [{ role: 'user', content: 'I forgot my password, please help', createdAt: '2025-02-01T00:00:00Z' }]);
    await appendMessages(tenant, c.untitled, [{ role: 'user', content: 'The refund was processed yesterday', createdAt: '2025-01-03T00:00:01Z' }]);
    await appendMessages(tenant, c.refund, [{ role: 'user', content: 'Where is my refund?', createdAt: '2025-01-04T00:00:01Z' }]);
    await appendMessages(tenant, c.hello, [
      { role: 'user', content: 'Hi there', createdAt: '2025-01-05T00:00:01Z' },
      { role: 'assistant', content: 'Our refund policy details are online.', createdAt: '2025-01-10T00:00:00Z' },
    ]);
  });

  test('no filter lists the five chats', async () => {
    expect(await find({})).toEqual(ids('billing', 'password', 'untitled', 'refund', 'hello'));
  });

  describe('from (inclusive) and to (exclusive)', () => {
    test('on createdAt, to the microsecond', async () => {
      expect(await find({ sort: 'createdAt', from: '2025-01-02T00:00:00.000002Z' })).toEqual(ids('password', 'untitled', 'refund', 'hello'));
      expect(await find({ sort: 'createdAt', from: '2025-01-02T00:00:00.000003Z' })).toEqual(ids('untitled', 'refund', 'hello'));
      expect(await find({ sort: 'createdAt', to: '2025-01-02T00:00:00.000002Z' })).toEqual(ids('billing'));
      expect(await find({ sort: 'createdAt', to: '2025-01-02T00:00:00.000003Z' })).toEqual(ids('billing', 'password'));
      expect(await find({ sort: 'createdAt', from: '2025-01-02T00:00:00.000002Z', to: '2025-01-04T00:00:00Z' })).toEqual(ids('password', 'untitled'));
    });

    test('on lastActivity (the later of creation and the last message)', async () => {
      // Last activity: billing 01-01, untitled 01-03T00:00:01, refund 01-04T00:00:01, hello 01-10, password 02-01.
      expect(await find({ from: '2025-01-04T00:00:01Z' })).toEqual(ids('refund', 'hello', 'password'));
      expect(await find({ from: '2025-01-04T00:00:01.000001Z' })).toEqual(ids('hello', 'password'));
      expect(await find({ to: '2025-01-10T00:00:00Z' })).toEqual(ids('billing', 'untitled', 'refund'));
      expect(await find({ from: '2025-01-03T00:00:00Z', to: '2025-01-10T00:00:00.000001Z' })).toEqual(ids('untitled', 'refund', 'hello'));
    });

    test('offsets other than Z mean the same instant', async () => {
      expect(await find({ sort: 'createdAt', from: '2025-01-04T02:00:00+02:00' })).toEqual(ids('refund', 'hello'));
    });

    test('an invalid timestamp is a 422', async () => {
      await expect422(await rawGet('/orgs/me/chats?from=yesterday', tenant.adminToken), '/query/from');
      await expect422(await rawGet('/orgs/me/chats?to=2025-02-30T00:00:00Z', tenant.adminToken), '/query/to');
    });
  });

  describe('tags', () => {
    test('any (the default) matches chats with at least one tag', async () => {
      expect(await find({ tags: 'urgent,account' })).toEqual(ids('billing', 'password', 'refund'));
      expect(await find({ tags: 'urgent,account', tagMode: 'any' })).toEqual(ids('billing', 'password', 'refund'));
    });

    test('all matches chats with every tag', async () => {
      expect(await find({ tags: 'billing,account', tagMode: 'all' })).toEqual(ids('refund'));
      expect(await find({ tags: 'billing', tagMode: 'all' })).toEqual(ids('billing', 'untitled', 'refund'));
    });

    test('tags are trimmed and empty ones dropped', async () => {
      expect(await find({ tags: ' billing , ,account ,', tagMode: 'all' })).toEqual(ids('refund'));
      expect(await find({ tags: ' , ' })).toEqual(ids('billing', 'password', 'untitled', 'refund', 'hello'));
    });

    test('an unknown tag matches nothing', async () => {
      expect(await find({ tags: 'nope' })).toEqual([]);
    });
  });

  test('externalUserId', async () => {
    expect(await find({ externalUserId: 'u-1' })).toEqual(ids('billing', 'refund'));
    expect(await find({ externalUserId: 'u-3' })).toEqual([]);
  });

  test('source', async () => {
    expect(await find({ source: 'web' })).toEqual(ids('billing', 'untitled'));
    expect(await find({ source: 'desktop' })).toEqual([]);
  });

  describe('q', () => {
    test('a word of a title', async () => {
      expect(await find({ q: 'invoices' })).toEqual(ids('billing'));
      expect(await find({ q: 'PASSWORD' })).toEqual(ids('password'));
    });

    test('a word of a message', async () => {
      expect(await find({ q: 'forgot' })).toEqual(ids('password'));
      expect(await find({ q: 'refund' })).toEqual(ids('untitled', 'refund', 'hello'));
    });

    test('a quoted phrase', async () => {
      expect(await find({ q: '"refund policy"' })).toEqual(ids('hello'));
      expect(await find({ q: '"policy refund"' })).toEqual([]);
    });

    test('an excluded word', async () => {
      expect(await find({ q: 'refund -policy' })).toEqual(ids('untitled', 'refund'));
    });

    test('several words must all match, in the title or in one message', async () => {
      expect(await find({ q: 'refund request' })).toEqual(ids('refund'));
      expect(await find({ q: 'refund yesterday' })).toEqual(ids('untitled'));
    });

    test('no match, and punctuation only', async () => {
      expect(await find({ q: 'zebra' })).toEqual([]);
      expect(await find({ q: '!!' })).toEqual([]);
    });

    test('an empty or too long q is a 422', async () => {
      await expect422(await rawGet('/orgs/me/chats?q=', tenant.adminToken), '/query/q');
      await expect422(await rawGet(`/orgs/me/chats?q=${'a'.repeat(201)}`, tenant.adminToken), '/query/q');
    });
  });

  test('filters combine', async () => {
    expect(await find({ tags: 'billing', q: 'refund' })).toEqual(ids('untitled', 'refund'));
    expect(await find({ source: 'web', externalUserId: 'u-2' })).toEqual(ids('untitled'));
    expect(await find({ tags: 'billing', source: 'web', q: 'invoices' })).toEqual(ids('billing'));
    expect(await find({ sort: 'createdAt', from: '2025-01-02T00:00:00Z', tags: 'account', tagMode: 'all', externalUserId: 'u-1' })).toEqual(ids('refund'));
    expect(await find({ from: '2025-01-04T00:00:00Z', q: 'refund', order: 'asc' })).toEqual(ids('refund', 'hello'));
    expect(await find({ tags: 'billing', externalUserId: 'u-2', source: 'ios' })).toEqual([]);
  });

  test('a filtered list keeps its order across pages', async () => {
    const pages = await walkChats(tenant.adminToken, 'me', { q: 'refund', limit: 1, sort: 'createdAt', order: 'asc' });
    expect(pages).toEqual([[c.untitled!], [c.refund!], [c.hello!]]);
  });
});

// ---- roles, tenancy, curation --------------------------------------------------------------

describe('roles and tenancy', () => {
  let tenant: Tenant;
  let other: Tenant;
  let viewer: string;
  let user: string;
  let chatId: string;
  let otherChatId: string;

  beforeAll(async () => {
    [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    viewer = (await addUser(t, tenant, 'viewer')).token;
    user = (await addUser(t, tenant, 'user')).token;
    chatId = await insertChat(tenant.orgId, { createdAt: '2025-05-01T00:00:00Z', title: 'Marmalade recipe', tags: ['food'] });
    await appendMessages(tenant, chatId, [{ role: 'user', content: 'How long does marmalade keep?' }]);
    otherChatId = await insertChat(other.orgId, { createdAt: '2025-05-01T00:00:00Z', title: 'Other tenant' });
  });

  const chatPath = (org: string, id: string) => ({ params: { path: { org, chatId: id } } });

  test('a viewer can list, read and read messages, but not change or delete', async () => {
    expect((await listChats(viewer, 'me')).data!.items.map((chat) => chat.id)).toEqual([chatId]);
    const chat = await as(viewer).GET('/orgs/{org}/chats/{chatId}', chatPath('me', chatId));
    expect(chat.response.status).toBe(200);
    expect(chat.data!.title).toBe('Marmalade recipe');
    expect(chat.data!.messageCount).toBe(1);
    const messages = await as(viewer).GET('/orgs/{org}/chats/{chatId}/messages', chatPath('me', chatId));
    expect(messages.data!.items.map((m) => m.content)).toEqual(['How long does marmalade keep?']);
    expect((await as(viewer).PATCH('/orgs/{org}/chats/{chatId}', { ...chatPath('me', chatId), body: { title: 'x' } })).response.status).toBe(403);
    expect((await as(viewer).DELETE('/orgs/{org}/chats/{chatId}', chatPath('me', chatId))).response.status).toBe(403);
  });

  test('a user can change a chat but not delete it', async () => {
    const { data, response } = await as(user).PATCH('/orgs/{org}/chats/{chatId}', { ...chatPath('me', chatId), body: { tags: ['food', 'jam'] } });
    expect(response.status).toBe(200);
    expect(data!.tags).toEqual(['food', 'jam']);
    expect((await as(user).DELETE('/orgs/{org}/chats/{chatId}', chatPath('me', chatId))).response.status).toBe(403);
  });

  test('without a session it is a 401', async () => {
    expect((await t.client().GET('/orgs/{org}/chats', { params: { path: { org: 'me' } } })).response.status).toBe(401);
    expect((await t.client().GET('/orgs/{org}/chats/{chatId}', chatPath('me', chatId))).response.status).toBe(401);
  });

  test("another organization's chat is a 404, even for an admin", async () => {
    const admin = as(tenant.adminToken);
    expect((await admin.GET('/orgs/{org}/chats/{chatId}', chatPath('me', otherChatId))).response.status).toBe(404);
    expect((await admin.GET('/orgs/{org}/chats/{chatId}/messages', chatPath('me', otherChatId))).response.status).toBe(404);
    expect((await admin.PATCH('/orgs/{org}/chats/{chatId}', { ...chatPath('me', otherChatId), body: { title: 'mine' } })).response.status).toBe(404);
    expect((await admin.DELETE('/orgs/{org}/chats/{chatId}', chatPath('me', otherChatId))).response.status).toBe(404);
    // Naming the other organization does not help either.
    expect((await admin.GET('/orgs/{org}/chats', { params: { path: { org: other.slug } } })).response.status).toBe(404);
    expect((await admin.GET('/orgs/{org}/chats/{chatId}', chatPath(other.slug, otherChatId))).response.status).toBe(404);
    const [row] = await t.db.fork().execute(`select title from chats where organization_id = ? and id = ?`, [other.orgId, otherChatId]);
    expect(row.title).toBe('Other tenant');
  });

  test('unknown and malformed chat ids are 404s', async () => {
    for (const id of [crypto.randomUUID(), 'not-a-uuid', `${chatId}x`]) {
      expect((await as(tenant.adminToken).GET('/orgs/{org}/chats/{chatId}', chatPath('me', id))).response.status).toBe(404);
      expect((await as(tenant.adminToken).DELETE('/orgs/{org}/chats/{chatId}', chatPath('me', id))).response.status).toBe(404);
    }
  });

  test('a superadmin reads any organization by its slug', async () => {
    const root = as(await superadminToken(t));
    const list = await root.GET('/orgs/{org}/chats', { params: { path: { org: tenant.slug }, query: { q: 'marmalade' } } });
    expect(list.data!.items.map((chat) => chat.id)).toEqual([chatId]);
    expect((await root.GET('/orgs/{org}/chats/{chatId}', chatPath(tenant.slug, chatId))).data!.id).toBe(chatId);
    expect((await root.GET('/orgs/{org}/chats/{chatId}/messages', chatPath(tenant.slug, chatId))).data!.items.length).toBe(1);
    // Its own organization ("me") does not hold the tenant's chat.
    expect((await root.GET('/orgs/{org}/chats/{chatId}', chatPath('me', chatId))).response.status).toBe(404);
  });

  test("searching never finds another organization's chats", async () => {
    const word = `zanzibar${crypto.randomUUID().slice(0, 8)}`;
    const titled = await insertChat(tenant.orgId, { createdAt: '2025-05-02T00:00:00Z', title: `About ${word}` });
    await appendMessages(tenant, chatId, [{ role: 'user', content: `I travelled to ${word} last year` }]);
    expect(sorted(await listIds(tenant.adminToken, 'me', { q: word }))).toEqual(sorted([titled, chatId]));
    expect(await listIds(other.adminToken, 'me', { q: word })).toEqual([]);
    expect(await listIds(other.adminToken, 'me', { q: 'marmalade' })).toEqual([]);
    expect(await listIds(other.adminToken, 'me')).toEqual([otherChatId]);
  });
});

describe('updateChat', () => {
  let tenant: Tenant;
  let user: { id: string; email: string; token: string };
  beforeAll(async () => {
    tenant = await createTenant(t);
    user = await addUser(t, tenant, 'user');
  });

  const patch = (token: string, chatId: string, body: Record<string, unknown>) =>
    t.fetch(`/orgs/me/chats/${chatId}`, { method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const auditOf = (chatId: string, action: string) =>
    t.db.fork().execute(`select * from audit_events where organization_id = ? and target_type = 'chat' and target_id = ? and action = ? order by id`, [tenant.orgId, chatId, action]);

  test('changes title, tags and metadata, moves updatedAt and records who changed what', async () => {
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-06-01T00:00:00Z', title: 'Before', tags: ['a'], source: 'web' });
    const { data, response } = await as(user.token).PATCH('/orgs/{org}/chats/{chatId}', {
      params: { path: { org: 'me', chatId } },
      body: { title: 'After', metadata: { rating: 5, nested: { ok: true } } },
    });
    expect(response.status).toBe(200);
    expect(data!.title).toBe('After');
    expect(data!.metadata).toEqual({ rating: 5, nested: { ok: true } });
    expect(data!.tags).toEqual(['a']);
    expect(data!.source).toBe('web');
    expect(data!.createdAt).toBe('2025-06-01T00:00:00.000000Z');
    expect(data!.updatedAt > data!.createdAt).toBe(true);

    const [event] = await auditOf(chatId, 'chat.updated');
    expect(event.actor_id).toBe(user.id);
    expect(event.actor_email).toBe(user.email);
    expect(event.details).toEqual({ fields: ['title', 'metadata'] });

    const cleared = await as(user.token).PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } }, body: { title: null, tags: [] } });
    expect(cleared.data!.title).toBeNull();
    expect(cleared.data!.tags).toEqual([]);
    const events = await auditOf(chatId, 'chat.updated');
    expect(events.map((e) => e.details.fields)).toEqual([['title', 'metadata'], ['title', 'tags']]);
  });

  test('a PATCH that changes nothing writes nothing', async () => {
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-06-01T00:00:00Z', title: 'Same', tags: ['x', 'y'] });
    const { data } = await as(user.token).PATCH('/orgs/{org}/chats/{chatId}', {
      params: { path: { org: 'me', chatId } },
      body: { title: 'Same', tags: ['x', 'y'], metadata: {} },
    });
    expect(data!.updatedAt).toBe('2025-06-01T00:00:00.000000Z');
    expect(await auditOf(chatId, 'chat.updated')).toEqual([]);
  });

  test('tags with quotes, commas and braces round-trip', async () => {
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-06-01T00:00:00Z' });
    const tags = ['a,b', 'say "hi"', '{x}', 'back\\slash', 'NULL'];
    const { data } = await as(user.token).PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } }, body: { tags } });
    expect(data!.tags).toEqual(tags);
    expect(await listIds(user.token, 'me', { tags: 'say "hi"' })).toEqual([chatId]);
  });

  test.each([
    ['an unknown field', { title: 'x', messageCount: 9 }, '/body/messageCount'],
    ['too many tags', { tags: Array.from({ length: 33 }, (_, n) => `t${n}`) }, '/body/tags'],
    ['repeated tags', { tags: ['a', 'a'] }, '/body/tags'],
    ['an empty tag', { tags: [''] }, '/body/tags/0'],
    ['a long title', { title: 'x'.repeat(501) }, '/body/title'],
    ['metadata that is not an object', { metadata: [1] }, '/body/metadata'],
  ])('%s is a 422', async (_, body, pointer) => {
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-06-01T00:00:00Z', title: 'Untouched' });
    await expect422(await patch(user.token, chatId, body), pointer);
    const [row] = await t.db.fork().execute(`select title from chats where organization_id = ? and id = ?`, [tenant.orgId, chatId]);
    expect(row.title).toBe('Untouched');
  });

  test('an empty body is a 422', async () => {
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-06-01T00:00:00Z' });
    const response = await patch(user.token, chatId, {});
    expect(response.status).toBe(422);
  });
});

describe('deleteChat', () => {
  test('an admin deletes a chat with its messages, and the audit log keeps the count', async () => {
    const tenant = await createTenant(t);
    const chatId = await insertChat(tenant.orgId, { createdAt: '2025-07-01T00:00:00Z', title: 'Doomed' });
    await appendMessages(tenant, chatId, [
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'three' },
    ]);
    const keep = await insertChat(tenant.orgId, { createdAt: '2025-07-01T00:00:00Z', title: 'Kept' });
    await appendMessages(tenant, keep, [{ role: 'user', content: 'stays' }]);

    const { response } = await as(tenant.adminToken).DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } } });
    expect(response.status).toBe(204);

    const em = t.db.fork();
    const [messages] = await em.execute(`select count(*)::int as n from messages where organization_id = ? and chat_id = ?`, [tenant.orgId, chatId]);
    expect(messages.n).toBe(0);
    const [kept] = await em.execute(`select count(*)::int as n from messages where organization_id = ? and chat_id = ?`, [tenant.orgId, keep]);
    expect(kept.n).toBe(1);
    const events = await em.execute(`select * from audit_events where organization_id = ? and action = 'chat.deleted' and target_id = ?`, [tenant.orgId, chatId]);
    expect(events.length).toBe(1);
    expect(events[0].details).toEqual({ messageCount: 3 });
    expect(events[0].target_type).toBe('chat');
    expect(events[0].actor_email).toBe(tenant.adminEmail);

    const again = await as(tenant.adminToken).DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } } });
    expect(again.response.status).toBe(404);
    expect((await as(tenant.adminToken).GET('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } } })).response.status).toBe(404);
    expect(await listIds(tenant.adminToken, 'me')).toEqual([keep]);
  });
});
