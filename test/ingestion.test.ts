import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components } from '../src/generated/openapi.ts';
import { createTenant, createTestApp, superadminToken, type ApiClient, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type Chat = components['schemas']['Chat'];
type ChatCreate = components['schemas']['ChatCreate'];
type Message = components['schemas']['Message'];
type MessageCreate = components['schemas']['MessageCreate'];
type Problem = components['schemas']['Problem'];

interface Org {
  tenant: Tenant;
  api: ApiClient;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_INT32 = 2147483647;

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});

async function newOrg(): Promise<Org> {
  const tenant = await createTenant(t);
  return { tenant, api: t.client({ apiKey: tenant.apiKey }) };
}

function withKey(org: Org, apiKey: string): Org {
  return { tenant: { ...org.tenant, apiKey }, api: t.client({ apiKey }) };
}

const chatsPath = (slug: string) => `/api/v1/orgs/${slug}/chats`;
const messagesPath = (slug: string, chatId: string) => `${chatsPath(slug)}/${chatId}/messages`;
const batchPath = (slug: string, chatId: string) => `${messagesPath(slug, chatId)}/batch`;

function createChat(org: Org, body: ChatCreate = {}) {
  return org.api.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: org.tenant.slug } }, body });
}

function postMessage(org: Org, chatId: string, body: MessageCreate) {
  return org.api.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', {
    params: { path: { slug: org.tenant.slug, chatId } },
    body,
  });
}

function postBatch(org: Org, chatId: string, messages: MessageCreate[]) {
  return org.api.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', {
    params: { path: { slug: org.tenant.slug, chatId } },
    body: { messages },
  });
}

async function newChat(org: Org, body: ChatCreate = {}): Promise<Chat> {
  const res = await createChat(org, body);
  expect(res.response.status).toBe(201);
  return res.data!;
}

async function newMessage(org: Org, chatId: string, body: MessageCreate): Promise<Message> {
  const res = await postMessage(org, chatId, body);
  expect(res.response.status).toBe(201);
  return res.data!;
}

/** The chat as stored, read back through a create retry with its id (answered 200). */
async function storedChat(org: Org, chatId: string): Promise<Chat> {
  const res = await createChat(org, { id: chatId });
  expect(res.response.status).toBe(200);
  return res.data!;
}

function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return t.db.fork().execute<T[]>(sql, params);
}

async function storedMessageIds(org: Org, chatId: string): Promise<string[]> {
  const rows = await query<{ id: string }>(
    `select id from messages where organization_id = ? and chat_id = ? order by created_at, id`,
    [org.tenant.orgId, chatId],
  );
  return rows.map((row) => row.id);
}

async function expectNothingWritten(org: Org, chatId: string) {
  expect(await storedMessageIds(org, chatId)).toEqual([]);
  const chat = await storedChat(org, chatId);
  expect(chat.messageCount).toBe(0);
  expect(chat.lastMessageAt).toBeNull();
}

function send(path: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  const raw = typeof body === 'string' || body instanceof Uint8Array || body === undefined ? body : JSON.stringify(body);
  return t.fetch(path, { method: 'POST', headers, body: raw });
}

function sendJson(org: Org, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return send(path, body, { 'content-type': 'application/json', 'x-organization-api-key': org.tenant.apiKey, ...headers });
}

function sendStream(org: Org, path: string, bytes: Uint8Array): Promise<Response> {
  const init: RequestInit & { duplex: 'half' } = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-organization-api-key': org.tenant.apiKey },
    body: streamOf(bytes),
    duplex: 'half',
  };
  return t.fetch(path, init);
}

function streamOf(bytes: Uint8Array, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

function expectProblemBody(response: Response, body: unknown, status: number): Problem {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')?.split(';')[0]).toBe('application/problem+json');
  const problem = body as Problem;
  expect(problem.type).toMatch(/^\/problems\/[a-z-]+$/);
  expect(problem.title).toBeString();
  expect(problem.status).toBe(status);
  expect(problem.detail).toBeString();
  return problem;
}

async function expectProblem(response: Response, status: number): Promise<Problem> {
  return expectProblemBody(response, await response.json(), status);
}

/** For a typed-client call that must fail: its problem body, checked. */
async function expectFailure(request: Promise<{ response: Response; error?: unknown }>, status: number): Promise<Problem> {
  const { response, error } = await request;
  return expectProblemBody(response, error, status);
}

function pointers(problem: Problem): string[] {
  return (problem.errors ?? []).map((error) => error.pointer);
}

function messageAt(problem: Problem, pointer: string): string {
  return problem.errors!.find((error) => error.pointer === pointer)!.message;
}

function expectValidationProblem(problem: Problem, pointer: string): Problem {
  expect(problem.type).toBe('/problems/validation');
  expect(pointers(problem)).toContain(pointer);
  return problem;
}

async function expectInvalid(response: Response, pointer: string): Promise<Problem> {
  return expectValidationProblem(await expectProblem(response, 422), pointer);
}

function userMessages(count: number, extra: (index: number) => Partial<MessageCreate> = () => ({})): MessageCreate[] {
  return Array.from({ length: count }, (_, index) => ({ role: 'user', content: `message ${index}`, ...extra(index) }));
}

function nested(depth: number): Record<string, unknown> {
  return depth <= 1 ? {} : { level: nested(depth - 1) };
}

function metadataOfBytes(bytes: number): Record<string, string> {
  return { pad: 'x'.repeat(bytes - JSON.stringify({ pad: '' }).length) };
}

function paddedJson(json: string, bytes: number): Uint8Array {
  return new TextEncoder().encode(json + ' '.repeat(bytes - json.length));
}

function expectRecent(timestamp: string) {
  expect(Math.abs(Date.parse(timestamp) - Date.now())).toBeLessThan(60_000);
}

function newApiKey(org: Org, expiresAt?: string) {
  return t
    .client({ token: org.tenant.adminToken })
    .POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: 'extra', expiresAt } });
}

async function expectAllEndpoints401(org: Org, chatId: string) {
  await expectFailure(createChat(org, { title: 'x' }), 401);
  await expectFailure(postMessage(org, chatId, { role: 'user', content: 'x' }), 401);
  await expectFailure(postBatch(org, chatId, userMessages(2)), 401);
}

describe('POST /chats', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  test('creates a chat with every field and answers 201', async () => {
    const body = {
      title: 'Support: login trouble',
      tags: ['support', 'login', 'a,b', 'quote"d', 'back\\slash', '{braces}', 'NULL'],
      metadata: { plan: 'pro', visits: 3, nested: { ok: true, list: [1, 'two', null] } },
      externalUserId: 'user-42',
      source: 'website-widget',
    };
    const chat = await newChat(org, body);
    expect(chat).toEqual({
      ...body,
      id: expect.stringMatching(UUID_V7),
      messageCount: 0,
      lastMessageAt: null,
      createdAt: expect.any(String),
      updatedAt: chat.createdAt,
    });
    expectRecent(chat.createdAt);
  });

  test('an empty body gives the defaults', async () => {
    const chat = await newChat(org);
    expect(chat).toMatchObject({
      title: null,
      tags: [],
      metadata: {},
      externalUserId: null,
      source: null,
      messageCount: 0,
      lastMessageAt: null,
    });
    expect(chat.id).toMatch(UUID_V7);
  });

  test('explicit nulls are accepted and stored as null', async () => {
    const chat = await newChat(org, { title: null, externalUserId: null, source: null });
    expect(chat).toMatchObject({ title: null, externalUserId: null, source: null });
  });

  test('generated ids are distinct UUIDv7s', async () => {
    const chats = await Promise.all(Array.from({ length: 5 }, () => newChat(org)));
    const ids = chats.map((chat) => chat.id);
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('a client-supplied id is kept', async () => {
    const id = crypto.randomUUID();
    expect((await newChat(org, { id, title: 'mine' })).id).toBe(id);
  });

  test('a client id in upper case is stored in lower case and retries match it', async () => {
    const id = crypto.randomUUID();
    expect((await newChat(org, { id: id.toUpperCase() })).id).toBe(id);
    expect((await storedChat(org, id)).id).toBe(id);
  });

  test('unicode round-trips exactly in title, tags and metadata', async () => {
    const body = {
      title: 'Grüße 👋🏽 你好 👨‍👩‍👧 𝄞',
      tags: ['émoji 😀', 'עברית', 'zero\u200bwidth'],
      metadata: { 'ключ 🔑': 'значение ✓', line: 'a\u2028b\r\n\t' },
    };
    const chat = await newChat(org, body);
    expect(chat).toMatchObject(body);
    expect(await storedChat(org, chat.id)).toMatchObject(body);
  });
});

describe('safe retries of chats', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  test('the same id again answers 200 with the stored chat, even if the body differs', async () => {
    const id = crypto.randomUUID();
    const first = await newChat(org, { id, title: 'original', tags: ['a'], metadata: { v: 1 }, source: 'web' });
    const retry = await createChat(org, { id, title: 'changed', tags: ['b', 'c'], metadata: { v: 2 }, externalUserId: 'u', source: null });
    expect(retry.response.status).toBe(200);
    expect(retry.data).toEqual(first);
  });

  test('concurrent creates of one id make a single chat', async () => {
    const id = crypto.randomUUID();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => createChat(org, { id, title: `try ${i}` })));
    expect(results.map((res) => res.response.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((res) => res.data!.title)).size).toBe(1);
    const [row] = await query<{ n: number }>(`select count(*)::int as n from chats where organization_id = ? and id = ?`, [org.tenant.orgId, id]);
    expect(row!.n).toBe(1);
  });

  test('the same client id in two organizations makes two independent chats', async () => {
    const other = await newOrg();
    const id = crypto.randomUUID();
    expect((await newChat(org, { id, title: 'in A' })).title).toBe('in A');
    expect((await newChat(other, { id, title: 'in B' })).title).toBe('in B');

    await newMessage(org, id, { role: 'user', content: 'only in A' });
    expect((await storedChat(org, id)).messageCount).toBe(1);
    expect(await storedChat(other, id)).toMatchObject({ title: 'in B', messageCount: 0 });
  });
});

describe('POST /chats/{chatId}/messages', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  test('creates a message with every field and answers 201', async () => {
    const chat = await newChat(org);
    const body = {
      role: 'assistant',
      content: 'The answer is 42.',
      name: 'helper',
      model: 'gpt-test-1',
      promptTokens: 120,
      completionTokens: 30,
      totalTokens: 175,
      latencyMs: 812,
      costUsd: 0.0123456789,
      toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }],
      metadata: { temperature: 0.2, stream: false },
      createdAt: '2024-05-01T12:34:56.789Z',
    } satisfies MessageCreate;
    const message = await newMessage(org, chat.id, body);
    expect(message).toEqual({ ...body, createdAt: '2024-05-01T12:34:56.789000Z', id: expect.stringMatching(UUID_V7), chatId: chat.id });
  });

  test('optional fields default to null, metadata to {} and createdAt to the server time', async () => {
    const chat = await newChat(org);
    const message = await newMessage(org, chat.id, { role: 'user', content: 'hi' });
    expect(message).toEqual({
      id: expect.stringMatching(UUID_V7),
      chatId: chat.id,
      role: 'user',
      content: 'hi',
      name: null,
      model: null,
      promptTokens: null,
      completionTokens: null,
      totalTokens: null,
      latencyMs: null,
      costUsd: null,
      toolCalls: null,
      metadata: {},
      createdAt: expect.any(String),
    });
    expectRecent(message.createdAt);
  });

  test.each(['system', 'user', 'assistant', 'tool', 'function'] as const)('role %s is accepted', async (role) => {
    const chat = await newChat(org);
    expect((await newMessage(org, chat.id, { role, content: 'x' })).role).toBe(role);
  });

  test('a role outside the enum is 422 on /body/role and writes nothing', async () => {
    const chat = await newChat(org);
    const problem = await expectInvalid(await sendJson(org, messagesPath(org.tenant.slug, chat.id), { role: 'bot', content: 'x' }), '/body/role');
    expect(messageAt(problem, '/body/role')).toContain('assistant');
    await expectNothingWritten(org, chat.id);
  });

  test('totalTokens defaults to promptTokens + completionTokens', async () => {
    const chat = await newChat(org);
    const message = await newMessage(org, chat.id, { role: 'assistant', content: 'x', promptTokens: 11, completionTokens: 31 });
    expect(message.totalTokens).toBe(42);
  });

  test('totalTokens stays null when a part is missing, and an explicit total wins', async () => {
    const chat = await newChat(org);
    expect((await newMessage(org, chat.id, { role: 'assistant', content: 'x', promptTokens: 11 })).totalTokens).toBeNull();
    expect((await newMessage(org, chat.id, { role: 'assistant', content: 'x', completionTokens: 7 })).totalTokens).toBeNull();
    const explicit = await newMessage(org, chat.id, { role: 'assistant', content: 'x', promptTokens: 1, completionTokens: 2, totalTokens: 10 });
    expect(explicit.totalTokens).toBe(10);
  });

  test('the largest allowed token counts do not make the derived total a 500', async () => {
    const chat = await newChat(org);
    const body = { role: 'assistant', content: 'x', promptTokens: MAX_INT32, completionTokens: MAX_INT32 };
    const res = await sendJson(org, messagesPath(org.tenant.slug, chat.id), body);
    expect(res.status).not.toBe(500);
    expect([201, 422]).toContain(res.status);
  });

  test.each([0, 0.000042, 0.0123456789, 1234.5, 1_000_000_000])('costUsd %p round-trips', async (costUsd) => {
    const chat = await newChat(org);
    expect((await newMessage(org, chat.id, { role: 'assistant', content: 'x', costUsd })).costUsd).toBe(costUsd);
  });

  test('toolCalls keeps any JSON value', async () => {
    const chat = await newChat(org);
    const values = [
      [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":[1,2]}' } }, { id: 'c2', extra: [true, null, 1.5] }],
      { deeply: { nested: { list: [[], {}, [{ x: 'y 😀' }]] } } },
      'a plain string',
      42,
      false,
      [],
      null,
    ];
    for (const toolCalls of values) {
      expect((await newMessage(org, chat.id, { role: 'assistant', content: 'x', toolCalls })).toolCalls).toEqual(toolCalls);
    }
  });

  test('a client-supplied createdAt is kept, in any offset', async () => {
    const chat = await newChat(org);
    const utc = await newMessage(org, chat.id, { role: 'user', content: 'x', createdAt: '2023-03-04T05:06:07.089Z' });
    expect(utc.createdAt).toBe('2023-03-04T05:06:07.089000Z');
    const offset = await newMessage(org, chat.id, { role: 'user', content: 'x', createdAt: '2023-03-04T07:06:07+02:00' });
    expect(offset.createdAt).toBe('2023-03-04T05:06:07.000000Z');
  });

  test('unicode and emoji content round-trips exactly', async () => {
    const chat = await newChat(org);
    const content = 'Grüße 👋🏽 — 你好 👨‍👩‍👧 𝄞 ﷽ \u200d\u2028\u2029 \uffff "quoted" \\back\\slash\r\n\ttab';
    const message = await newMessage(org, chat.id, { role: 'user', content, metadata: { 'clé 🔑': '✓' } });
    expect(message.content).toBe(content);
    expect(message.metadata).toEqual({ 'clé 🔑': '✓' });
    const [row] = await query<{ content: string }>(`select content from messages where organization_id = ? and id = ?`, [org.tenant.orgId, message.id]);
    expect(row!.content).toBe(content);
  });

  test('content of exactly 262144 characters is accepted', async () => {
    const chat = await newChat(org);
    const content = 'y'.repeat(262144);
    expect((await newMessage(org, chat.id, { role: 'user', content })).content).toBe(content);
  });

  test('messageCount, lastMessageAt and updatedAt follow the appended messages', async () => {
    const chat = await newChat(org);
    const first = await newMessage(org, chat.id, { role: 'user', content: 'one' });
    let stored = await storedChat(org, chat.id);
    expect(stored.messageCount).toBe(1);
    expect(stored.lastMessageAt).toBe(first.createdAt);
    expect(Date.parse(stored.updatedAt)).toBeGreaterThanOrEqual(Date.parse(chat.updatedAt));

    const second = await newMessage(org, chat.id, { role: 'assistant', content: 'two' });
    stored = await storedChat(org, chat.id);
    expect(stored.messageCount).toBe(2);
    expect(stored.lastMessageAt).toBe(second.createdAt);
  });

  test('an older client createdAt does not move lastMessageAt back', async () => {
    const chat = await newChat(org);
    const latest = await newMessage(org, chat.id, { role: 'user', content: 'now', createdAt: '2024-06-01T00:00:00.000Z' });
    await newMessage(org, chat.id, { role: 'user', content: 'late upload', createdAt: '2024-01-01T00:00:00.000Z' });
    expect(await storedChat(org, chat.id)).toMatchObject({ messageCount: 2, lastMessageAt: latest.createdAt });
  });

  test('concurrent appends to one chat are all counted', async () => {
    const chat = await newChat(org);
    const results = await Promise.all(userMessages(12).map((body) => postMessage(org, chat.id, body)));
    expect(results.map((res) => res.response.status)).toEqual(Array(12).fill(201));
    expect((await storedChat(org, chat.id)).messageCount).toBe(12);
    expect(await storedMessageIds(org, chat.id)).toHaveLength(12);
  });

  test('an upper-case chatId names the same chat', async () => {
    const chat = await newChat(org);
    const message = await newMessage(org, chat.id.toUpperCase(), { role: 'user', content: 'x' });
    expect(message.chatId).toBe(chat.id);
    expect((await storedChat(org, chat.id)).messageCount).toBe(1);
  });

  test('a chatId that is not a UUID is 404', async () => {
    const problem = await expectFailure(postMessage(org, 'not-a-uuid', { role: 'user', content: 'x' }), 404);
    expect(problem.type).toBe('/problems/not-found');
  });

  test('a nonexistent chat is 404 and nothing is written', async () => {
    const chatId = crypto.randomUUID();
    await expectFailure(postMessage(org, chatId, { role: 'user', content: 'x' }), 404);
    expect(await storedMessageIds(org, chatId)).toEqual([]);
  });
});

describe('safe retries of messages', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  test('the same id again answers 200 with the stored message and counts it once', async () => {
    const chat = await newChat(org);
    const id = crypto.randomUUID();
    const first = await newMessage(org, chat.id, { id, role: 'user', content: 'original', promptTokens: 3 });
    const before = await storedChat(org, chat.id);

    const retry = await postMessage(org, chat.id, { id, role: 'assistant', content: 'changed', model: 'm', createdAt: '2020-01-01T00:00:00Z' });
    expect(retry.response.status).toBe(200);
    expect(retry.data).toEqual(first);
    expect(await storedChat(org, chat.id)).toEqual(before);
    expect(before.messageCount).toBe(1);
  });

  test('a retry with the id in upper case is the same message', async () => {
    const chat = await newChat(org);
    const id = crypto.randomUUID();
    const first = await newMessage(org, chat.id, { id, role: 'user', content: 'x' });
    const retry = await postMessage(org, chat.id, { id: id.toUpperCase(), role: 'user', content: 'x' });
    expect(retry.response.status).toBe(200);
    expect(retry.data).toEqual(first);
    expect((await storedChat(org, chat.id)).messageCount).toBe(1);
  });

  test('concurrent retries of one message write it once', async () => {
    const chat = await newChat(org);
    const id = crypto.randomUUID();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => postMessage(org, chat.id, { id, role: 'user', content: `try ${i}` })));
    expect(results.map((res) => res.response.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((res) => res.data!.content)).size).toBe(1);
    expect((await storedChat(org, chat.id)).messageCount).toBe(1);
  });

  test('an id used by a message of another chat is 409 and nothing is written', async () => {
    const home = await newChat(org);
    const target = await newChat(org);
    const id = crypto.randomUUID();
    const original = await newMessage(org, home.id, { id, role: 'user', content: 'home' });
    const homeBefore = await storedChat(org, home.id);

    const problem = await expectFailure(postMessage(org, target.id, { id, role: 'user', content: 'intruder' }), 409);
    expect(problem.type).toBe('/problems/conflict');

    await expectNothingWritten(org, target.id);
    expect(await storedChat(org, home.id)).toEqual(homeBefore);
    expect((await postMessage(org, home.id, { id, role: 'user', content: 'x' })).data).toEqual(original);
  });

  test('the same message id in two organizations makes two independent messages', async () => {
    const other = await newOrg();
    const chatId = crypto.randomUUID();
    const id = crypto.randomUUID();
    await newChat(org, { id: chatId });
    await newChat(other, { id: chatId });
    expect((await newMessage(org, chatId, { id, role: 'user', content: 'from A' })).content).toBe('from A');
    expect((await newMessage(other, chatId, { id, role: 'user', content: 'from B' })).content).toBe('from B');
    expect((await storedChat(org, chatId)).messageCount).toBe(1);
    expect((await storedChat(other, chatId)).messageCount).toBe(1);
  });
});

describe('POST /chats/{chatId}/messages/batch', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  test('creates every message and answers 201 with items in request order and the created count', async () => {
    const chat = await newChat(org);
    const roles = ['system', 'user', 'assistant', 'tool', 'function', 'user'] as const;
    const body = userMessages(6, (i) => ({ role: roles[i] }));
    const res = await postBatch(org, chat.id, body);
    expect(res.response.status).toBe(201);
    expect(res.data!.created).toBe(6);
    expect(res.data!.items.map((m) => [m.role, m.content])).toEqual(body.map((m) => [m.role, m.content]));
    for (const item of res.data!.items) {
      expect(item.id).toMatch(UUID_V7);
      expect(item.chatId).toBe(chat.id);
    }
    const latest = res.data!.items.map((m) => m.createdAt).sort().at(-1);
    expect(await storedChat(org, chat.id)).toMatchObject({ messageCount: 6, lastMessageAt: latest });
  });

  test('messages without createdAt get strictly increasing createdAt in batch order', async () => {
    const chat = await newChat(org);
    const res = await postBatch(org, chat.id, userMessages(5));
    const times = res.data!.items.map((m) => m.createdAt);
    for (let i = 1; i < times.length; i++) expect(times[i]! > times[i - 1]!).toBe(true);
  });

  test('batch order is stored even when the client ids sort the other way', async () => {
    const chat = await newChat(org);
    const ids = Array.from({ length: 8 }, () => crypto.randomUUID()).sort().reverse();
    const res = await postBatch(org, chat.id, userMessages(8, (i) => ({ id: ids[i] })));
    expect(res.data!.items.map((m) => m.id)).toEqual(ids);
    expect(await storedMessageIds(org, chat.id)).toEqual(ids);
  });

  test('client createdAt values are kept and lastMessageAt is the latest of them', async () => {
    const chat = await newChat(org);
    const createdAt = ['2024-03-01T00:00:00.000Z', '2024-05-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z'];
    const res = await postBatch(org, chat.id, userMessages(3, (i) => ({ createdAt: createdAt[i] })));
    expect(res.data!.items.map((m) => m.createdAt)).toEqual(createdAt.map((t) => t.replace('Z', '000Z')));
    expect((await storedChat(org, chat.id)).lastMessageAt).toBe('2024-05-01T00:00:00.000000Z');
  });

  test('a retried batch answers 200 with created 0 and the same items, and writes nothing', async () => {
    const chat = await newChat(org);
    const body = userMessages(4, () => ({ id: crypto.randomUUID() }));
    const first = await postBatch(org, chat.id, body);
    expect(first.response.status).toBe(201);
    const before = await storedChat(org, chat.id);

    const retry = await postBatch(org, chat.id, body.map((m) => ({ ...m, content: 'changed' })));
    expect(retry.response.status).toBe(200);
    expect(retry.data!.created).toBe(0);
    expect(retry.data!.items).toEqual(first.data!.items);
    expect(await storedChat(org, chat.id)).toEqual(before);
  });

  test('a partly new batch answers 201 and counts only the new messages', async () => {
    const chat = await newChat(org);
    const old = userMessages(2, () => ({ id: crypto.randomUUID() }));
    const first = await postBatch(org, chat.id, old);
    const fresh = userMessages(3, (i) => ({ id: crypto.randomUUID(), content: `fresh ${i}` }));
    const body = [fresh[0]!, old[1]!, fresh[1]!, old[0]!, fresh[2]!];

    const res = await postBatch(org, chat.id, body);
    expect(res.response.status).toBe(201);
    expect(res.data!.created).toBe(3);
    expect(res.data!.items.map((m) => m.id)).toEqual(body.map((m) => m.id!));
    expect(res.data!.items[1]).toEqual(first.data!.items[1]!);
    expect(res.data!.items[3]).toEqual(first.data!.items[0]!);
    expect((await storedChat(org, chat.id)).messageCount).toBe(5);
  });

  test('1000 messages are accepted', async () => {
    const chat = await newChat(org);
    const res = await postBatch(org, chat.id, userMessages(1000));
    expect(res.response.status).toBe(201);
    expect(res.data!.created).toBe(1000);
    expect(res.data!.items).toHaveLength(1000);
    expect((await storedChat(org, chat.id)).messageCount).toBe(1000);
  });

  test('one invalid message rejects the whole batch with its pointer', async () => {
    const chat = await newChat(org);
    const messages: unknown[] = userMessages(8);
    messages[5] = { role: 'robot', content: 'x' };
    const problem = await expectInvalid(await sendJson(org, batchPath(org.tenant.slug, chat.id), { messages }), '/body/messages/5/role');
    expect(pointers(problem)).toEqual(['/body/messages/5/role']);
    await expectNothingWritten(org, chat.id);
  });

  test('an unknown field inside a message is reported with its pointer', async () => {
    const chat = await newChat(org);
    const messages: unknown[] = userMessages(3);
    messages[2] = { role: 'user', content: 'x', tokens: 5 };
    await expectInvalid(await sendJson(org, batchPath(org.tenant.slug, chat.id), { messages }), '/body/messages/2/tokens');
    await expectNothingWritten(org, chat.id);
  });

  test('an unknown top-level field is reported with its pointer', async () => {
    const chat = await newChat(org);
    await expectInvalid(await sendJson(org, batchPath(org.tenant.slug, chat.id), { messages: userMessages(1), force: true }), '/body/force');
    await expectNothingWritten(org, chat.id);
  });

  test('duplicate ids inside one batch are 422', async () => {
    const chat = await newChat(org);
    const id = crypto.randomUUID();
    const batch = [
      { id, role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
      { id: id.toUpperCase(), role: 'user', content: 'c' },
    ] satisfies MessageCreate[];
    const problem = await expectFailure(postBatch(org, chat.id, batch), 422);
    expect(pointers(problem)).toEqual(['/body/messages/2/id']);
    await expectNothingWritten(org, chat.id);
  });

  test('more than 1000 messages are 422', async () => {
    const chat = await newChat(org);
    const problem = await expectFailure(postBatch(org, chat.id, userMessages(1001)), 422);
    expect(pointers(problem)).toContain('/body/messages');
    await expectNothingWritten(org, chat.id);
  });

  test('an empty batch is 422', async () => {
    const chat = await newChat(org);
    expectValidationProblem(await expectFailure(postBatch(org, chat.id, []), 422), '/body/messages');
  });

  test('a body without messages is 422', async () => {
    const chat = await newChat(org);
    await expectInvalid(await sendJson(org, batchPath(org.tenant.slug, chat.id), {}), '/body/messages');
  });

  test('an id that belongs to another chat is 409 and nothing of the batch is written', async () => {
    const home = await newChat(org);
    const target = await newChat(org);
    const taken = await newMessage(org, home.id, { role: 'user', content: 'home' });
    const homeBefore = await storedChat(org, home.id);

    const fresh = userMessages(4, () => ({ id: crypto.randomUUID() }));
    const body = [fresh[0]!, fresh[1]!, { id: taken.id, role: 'user', content: 'intruder' } as const, fresh[2]!, fresh[3]!];
    await expectFailure(postBatch(org, target.id, body), 409);

    await expectNothingWritten(org, target.id);
    expect(await storedChat(org, home.id)).toEqual(homeBefore);
    expect(await storedMessageIds(org, home.id)).toEqual([taken.id]);
    const [row] = await query<{ n: number }>(`select count(*)::int as n from messages where organization_id = ? and id in (?, ?, ?, ?)`, [
      org.tenant.orgId,
      ...fresh.map((m) => m.id),
    ]);
    expect(row!.n).toBe(0);
  });

  test('a batch for a nonexistent chat is 404 and writes nothing', async () => {
    const chatId = crypto.randomUUID();
    await expectFailure(postBatch(org, chatId, userMessages(3)), 404);
    expect(await storedMessageIds(org, chatId)).toEqual([]);
  });

  test('a batch for a chatId that is not a UUID is 404', async () => {
    await expectFailure(postBatch(org, '12345', userMessages(1)), 404);
  });
});

describe('tenant isolation and API keys', () => {
  let a: Org;
  let b: Org;
  beforeAll(async () => {
    [a, b] = await Promise.all([newOrg(), newOrg()]);
  });

  test("org A's key on org B's slug is 401 on every endpoint and B is unchanged", async () => {
    const chat = await newChat(b);
    const aKeyOnB = withKey(b, a.tenant.apiKey);
    await expectAllEndpoints401(aKeyOnB, chat.id);
    await expectFailure(createChat(aKeyOnB, { id: chat.id }), 401);
    expect(await storedChat(b, chat.id)).toEqual(chat);
    const [row] = await query<{ n: number }>(`select count(*)::int as n from chats where organization_id = ?`, [b.tenant.orgId]);
    expect(row!.n).toBe(1);
  });

  test("org A's key on its own slug with org B's chatId is 404, exactly like a nonexistent chat", async () => {
    const chat = await newChat(b);
    const foreign = await expectFailure(postMessage(a, chat.id, { role: 'user', content: 'x' }), 404);
    const missing = await expectFailure(postMessage(a, crypto.randomUUID(), { role: 'user', content: 'x' }), 404);
    expect(foreign).toEqual(missing);

    const foreignBatch = await expectFailure(postBatch(a, chat.id, userMessages(2)), 404);
    const missingBatch = await expectFailure(postBatch(a, crypto.randomUUID(), userMessages(2)), 404);
    expect(foreignBatch).toEqual(missingBatch);

    expect(await storedChat(b, chat.id)).toEqual(chat);
    expect(await storedMessageIds(b, chat.id)).toEqual([]);
  });

  test("creating a chat with the id of another organization's chat neither reveals nor touches it", async () => {
    const theirs = await newChat(b, { title: 'secret' });
    expect((await newChat(a, { id: theirs.id, title: 'mine' })).title).toBe('mine');
    expect(await storedChat(b, theirs.id)).toEqual(theirs);
  });

  test('an unknown slug is 401', async () => {
    const chat = await newChat(a);
    await expectAllEndpoints401({ ...a, tenant: { ...a.tenant, slug: `no-such-org-${crypto.randomUUID().slice(0, 8)}` } }, chat.id);
  });

  test.each<[string, () => string | undefined]>([
    ['missing', () => undefined],
    ['empty', () => ''],
    ['without the clk_ prefix', () => 'hello'],
    ['unknown', () => `clk_${'A'.repeat(40)}`],
    ['overlong', () => `clk_${'A'.repeat(200)}`],
    ['truncated', () => a.tenant.apiKey.slice(0, -1)],
    ['upper-cased', () => a.tenant.apiKey.toUpperCase()],
  ])('API key %s: 401 on every endpoint', async (_, apiKey) => {
    const chat = await newChat(a);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const key = apiKey();
    if (key !== undefined) headers['x-organization-api-key'] = key;
    const slug = a.tenant.slug;
    await expectProblem(await send(chatsPath(slug), { title: 'x' }, headers), 401);
    await expectProblem(await send(messagesPath(slug, chat.id), { role: 'user', content: 'x' }, headers), 401);
    await expectProblem(await send(batchPath(slug, chat.id), { messages: userMessages(1) }, headers), 401);
    await expectNothingWritten(a, chat.id);
  });

  test('a dashboard session token is not an API key', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${a.tenant.adminToken}` };
    await expectProblem(await send(chatsPath(a.tenant.slug), { title: 'x' }, headers), 401);
  });

  test('a revoked key is 401 at once, and the other keys keep working', async () => {
    const created = await newApiKey(a);
    expect(created.response.status).toBe(201);
    const keyed = withKey(a, created.data!.key);
    const chat = await newChat(keyed);

    const revoke = await t
      .client({ token: a.tenant.adminToken })
      .DELETE('/orgs/{org}/apikeys/{keyId}', { params: { path: { org: 'me', keyId: created.data!.id } } });
    expect(revoke.response.status).toBe(204);

    await expectAllEndpoints401(keyed, chat.id);
    await expectNothingWritten(a, chat.id);
    await newMessage(a, chat.id, { role: 'user', content: 'with the first key' });
  });

  test('a key cannot be created already expired', async () => {
    const problem = await expectFailure(newApiKey(a, new Date(Date.now() - 60_000).toISOString()), 422);
    expect(pointers(problem)).toContain('/body/expiresAt');
  });

  test('a key with a future expiry works until it expires, then is 401, also when its lookup is cached', async () => {
    const created = await newApiKey(a, new Date(Date.now() + 1_500).toISOString());
    expect(created.response.status).toBe(201);
    const keyed = withKey(a, created.data!.key);
    const chat = await newChat(keyed);
    expect((await postMessage(keyed, chat.id, { role: 'user', content: 'before expiry' })).response.status).toBe(201);

    await Bun.sleep(Date.parse(created.data!.expiresAt!) - Date.now() + 50);
    await expectAllEndpoints401(keyed, chat.id);
    const messages = await t.client({ token: a.tenant.adminToken }).GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId: chat.id } } });
    expect(messages.data!.items.map((m) => m.content)).toEqual(['before expiry']);
  });

  test('a key whose expiry is moved into the past in the database stops working within the cache time', async () => {
    const created = await newApiKey(a, new Date(Date.now() + 3_600_000).toISOString());
    const keyed = withKey(a, created.data!.key);
    const chat = await newChat(keyed);

    await query(`update api_keys set expires_at = now() - interval '1 minute' where id = ?`, [created.data!.id]);
    // Another instance's change (here: a direct update) is seen once the cached lookup expires.
    await Bun.sleep(t.config.apiKeyCacheSeconds * 1000 + 50);
    await expectAllEndpoints401(keyed, chat.id);
    await expectNothingWritten(a, chat.id);
  }, 30_000);

  test('a key of an organization deactivated through the API is 401 at once', async () => {
    const org = await newOrg();
    const chat = await newChat(org);
    const root = t.client({ token: await superadminToken(t) });
    const patched = await root.PATCH('/orgs/{org}', { params: { path: { org: org.tenant.slug } }, body: { active: false } });
    expect(patched.response.status).toBe(200);
    await expectAllEndpoints401(org, chat.id);
  });

  test('a key revoked through the API is 401 at once, although its lookup was cached', async () => {
    const created = await newApiKey(a);
    const keyed = withKey(a, created.data!.key);
    const chat = await newChat(keyed);
    const revoked = await t.client({ token: a.tenant.adminToken }).DELETE('/orgs/{org}/apikeys/{keyId}', { params: { path: { org: 'me', keyId: created.data!.id } } });
    expect(revoked.response.status).toBe(204);
    await expectAllEndpoints401(keyed, chat.id);
  });

  test('authentication comes before validation: an invalid body without a valid key is 401', async () => {
    const chat = await newChat(a);
    const slug = a.tenant.slug;
    const anonymous = { 'content-type': 'application/json' };
    const wrongOrg = { ...anonymous, 'x-organization-api-key': b.tenant.apiKey };
    for (const headers of [anonymous, wrongOrg]) {
      await expectProblem(await send(chatsPath(slug), { unknown: true, tags: 'x' }, headers), 401);
      await expectProblem(await send(messagesPath(slug, chat.id), { role: 'nobody' }, headers), 401);
      await expectProblem(await send(batchPath(slug, chat.id), { messages: [] }, headers), 401);
      await expectProblem(await send(messagesPath(slug, chat.id), undefined, headers), 401);
    }
  });
});

describe('request bodies', () => {
  let org: Org;
  let chatId: string;
  beforeAll(async () => {
    org = await newOrg();
    chatId = (await newChat(org)).id;
  });

  const endpoints = () => [chatsPath(org.tenant.slug), messagesPath(org.tenant.slug, chatId), batchPath(org.tenant.slug, chatId)];

  test('malformed JSON is 400 on every endpoint', async () => {
    for (const path of endpoints()) {
      const problem = await expectProblem(await sendJson(org, path, '{"role": "user", '), 400);
      expect(problem.type).toBe('/problems/bad-request');
    }
    await expectNothingWritten(org, chatId);
  });

  test.each([
    ['text/plain', '{"role":"user","content":"x"}'],
    ['application/x-www-form-urlencoded', 'role=user&content=x'],
    ['multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="role"\r\n\r\nuser\r\n--b--\r\n'],
    ['application/xml', '<message/>'],
  ])('content type %s is 415 on every endpoint', async (contentType, body) => {
    for (const path of endpoints()) {
      const problem = await expectProblem(await sendJson(org, path, body, { 'content-type': contentType }), 415);
      expect(problem.type).toBe('/problems/unsupported-media-type');
    }
    await expectNothingWritten(org, chatId);
  });

  test('a JSON body without a content type is 415', async () => {
    const res = await send(messagesPath(org.tenant.slug, chatId), '{"role":"user","content":"x"}', { 'x-organization-api-key': org.tenant.apiKey });
    await expectProblem(res, 415);
  });

  test('application/json with parameters and other casing is accepted', async () => {
    const res = await sendJson(org, chatsPath(org.tenant.slug), { title: 'x' }, { 'content-type': 'Application/JSON; charset=UTF-8' });
    expect(res.status).toBe(201);
  });

  test('a missing body is 422 on every endpoint', async () => {
    for (const path of endpoints()) {
      await expectInvalid(await sendJson(org, path, undefined), '/body');
      await expectInvalid(await send(path, undefined, { 'x-organization-api-key': org.tenant.apiKey }), '/body');
    }
  });

  test.each([
    ['null', 'null'],
    ['an array', '[]'],
    ['a string', '"hello"'],
    ['a number', '42'],
  ])('a body that is %s is 422', async (_, json) => {
    for (const path of endpoints()) await expectInvalid(await sendJson(org, path, json), '/body');
  });

  test('invalid UTF-8 is 400', async () => {
    const encoder = new TextEncoder();
    for (const bad of [[0xff, 0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const body = new Uint8Array([...encoder.encode('{"role":"user","content":"'), ...bad, ...encoder.encode('"}')]);
      const problem = await expectProblem(await sendJson(org, messagesPath(org.tenant.slug, chatId), body), 400);
      expect(problem.detail).toContain('UTF-8');
    }
    await expectNothingWritten(org, chatId);
  });

  test('the default body limit is 8 MiB', () => {
    expect(t.config.maxBodyBytes).toBe(MAX_BODY_BYTES);
  });

  test('a body over the limit with a content-length is 413', async () => {
    const body = JSON.stringify({ role: 'user', content: 'x'.repeat(MAX_BODY_BYTES) });
    for (const path of endpoints()) {
      const problem = await expectProblem(await sendJson(org, path, body, { 'content-length': String(Buffer.byteLength(body)) }), 413);
      expect(problem.type).toBe('/problems/payload-too-large');
    }
    await expectNothingWritten(org, chatId);
  });

  test('a streamed body over the limit without a content-length is 413', async () => {
    const bytes = paddedJson('{"role":"user","content":"x"}', MAX_BODY_BYTES + 1);
    for (const path of endpoints()) await expectProblem(await sendStream(org, path, bytes), 413);
    await expectNothingWritten(org, chatId);
  });

  test('a body of exactly the limit is accepted, with or without a content-length', async () => {
    const chat = await newChat(org);
    const bytes = paddedJson('{"role":"user","content":"at the limit"}', MAX_BODY_BYTES);
    const path = messagesPath(org.tenant.slug, chat.id);
    expect((await sendJson(org, path, bytes, { 'content-length': String(bytes.byteLength) })).status).toBe(201);
    expect((await sendStream(org, path, bytes)).status).toBe(201);
    expect((await storedChat(org, chat.id)).messageCount).toBe(2);
  });
});

describe('validation of chats', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  async function rejectsChat(body: ChatCreate, pointer: string): Promise<Problem> {
    return expectValidationProblem(await expectFailure(createChat(org, body), 422), pointer);
  }

  async function rejectsRawChat(json: unknown, pointer: string): Promise<Problem> {
    return expectInvalid(await sendJson(org, chatsPath(org.tenant.slug), json), pointer);
  }

  test('an unknown field is 422 with its pointer', async () => {
    const problem = await rejectsRawChat({ title: 'x', titel: 'y' }, '/body/titel');
    expect(messageAt(problem, '/body/titel')).toBe('is not a known field');
  });

  test('wrong types are 422, each with its pointer', async () => {
    const problem = await rejectsRawChat({ title: 5, tags: 'a', metadata: [], source: true }, '/body/title');
    expect(pointers(problem)).toEqual(expect.arrayContaining(['/body/title', '/body/tags', '/body/metadata', '/body/source']));
  });

  test('an id that is not a UUID is 422', () => rejectsChat({ id: 'chat-1' }, '/body/id'));

  test('a title of 500 characters is accepted, 501 is 422', async () => {
    expect((await newChat(org, { title: 't'.repeat(500) })).title).toHaveLength(500);
    await rejectsChat({ title: 't'.repeat(501) }, '/body/title');
  });

  test('32 tags are accepted, 33 are 422', async () => {
    const tags = Array.from({ length: 33 }, (_, i) => `tag-${i}`);
    expect((await newChat(org, { tags: tags.slice(0, 32) })).tags).toEqual(tags.slice(0, 32));
    await rejectsChat({ tags }, '/body/tags');
  });

  test('a tag of 64 characters is accepted, 65 is 422', async () => {
    expect((await newChat(org, { tags: ['g'.repeat(64)] })).tags).toEqual(['g'.repeat(64)]);
    await rejectsChat({ tags: ['ok', 'g'.repeat(65)] }, '/body/tags/1');
  });

  test('empty and repeated tags are 422', async () => {
    await rejectsChat({ tags: [''] }, '/body/tags/0');
    await rejectsChat({ tags: ['a', 'a'] }, '/body/tags');
  });

  test('externalUserId and source must be non-empty and within their lengths', async () => {
    await rejectsChat({ externalUserId: '' }, '/body/externalUserId');
    await rejectsChat({ source: '' }, '/body/source');
    await rejectsChat({ externalUserId: 'u'.repeat(256) }, '/body/externalUserId');
    await rejectsChat({ source: 's'.repeat(101) }, '/body/source');
    expect(await newChat(org, { externalUserId: 'u'.repeat(255), source: 's'.repeat(100) })).toMatchObject({
      externalUserId: 'u'.repeat(255),
      source: 's'.repeat(100),
    });
  });

  test('metadata of 16 KiB is accepted, one byte more is 422 naming the limit', async () => {
    expect((await newChat(org, { metadata: metadataOfBytes(16384) })).metadata).toEqual(metadataOfBytes(16384));
    const problem = await rejectsChat({ metadata: metadataOfBytes(16385) }, '/body/metadata');
    expect(messageAt(problem, '/body/metadata')).toContain('16384');
  });

  test('metadata 8 levels deep is accepted, 9 is 422 naming the limit', async () => {
    expect((await newChat(org, { metadata: nested(8) })).metadata).toEqual(nested(8));
    const problem = await rejectsChat({ metadata: nested(9) }, '/body/metadata');
    expect(messageAt(problem, '/body/metadata')).toBe('is nested deeper than 8 levels');
  });

  test('metadata that is not an object is 422', async () => {
    for (const metadata of [[], 'x', 1, null]) await rejectsRawChat({ metadata }, '/body/metadata');
  });

  test('NUL characters are 422 wherever they are', async () => {
    await rejectsChat({ title: 'a\u0000b' }, '/body/title');
    await rejectsChat({ tags: ['ok', 'a\u0000'] }, '/body/tags/1');
    await rejectsChat({ metadata: { key: { inner: 'v\u0000' } } }, '/body/metadata/key/inner');
    await rejectsChat({ metadata: { 'k\u0000': 1 } }, '/body/metadata/k\u0000');
  });

  test('lone surrogates are 422', async () => {
    await rejectsRawChat('{"title":"\\ud800"}', '/body/title');
    await rejectsRawChat('{"tags":["\\udfff x"]}', '/body/tags/0');
    await rejectsRawChat('{"metadata":{"\\udc00":1}}', '/body/metadata/\udc00');
  });

  test('a client id with a urn:uuid: prefix is not a 500', async () => {
    const res = await sendJson(org, chatsPath(org.tenant.slug), { id: `urn:uuid:${crypto.randomUUID()}` });
    expect(res.status).not.toBe(500);
    expect([201, 422]).toContain(res.status);
  });
});

describe('validation of messages', () => {
  let org: Org;
  beforeAll(async () => {
    org = await newOrg();
  });

  async function rejectsMessage(body: MessageCreate, pointer: string): Promise<Problem> {
    const chat = await newChat(org);
    const problem = expectValidationProblem(await expectFailure(postMessage(org, chat.id, body), 422), pointer);
    await expectNothingWritten(org, chat.id);
    return problem;
  }

  async function rejectsRawMessage(json: unknown, pointer: string): Promise<Problem> {
    const chat = await newChat(org);
    const problem = await expectInvalid(await sendJson(org, messagesPath(org.tenant.slug, chat.id), json), pointer);
    await expectNothingWritten(org, chat.id);
    return problem;
  }

  async function expectNo500(json: unknown) {
    const chat = await newChat(org);
    const res = await sendJson(org, messagesPath(org.tenant.slug, chat.id), json);
    expect(res.status).not.toBe(500);
    expect([201, 422]).toContain(res.status);
  }

  test('role and content are required', async () => {
    const problem = await rejectsRawMessage({}, '/body/role');
    expect(pointers(problem)).toContain('/body/content');
  });

  test('an unknown field is 422 with its pointer', () => rejectsRawMessage({ role: 'user', content: 'x', contnet: 'y' }, '/body/contnet'));

  test('content over 262144 characters is 422', () => rejectsMessage({ role: 'user', content: 'z'.repeat(262145) }, '/body/content'));

  test('name and model over 128 characters are 422', async () => {
    await rejectsMessage({ role: 'tool', content: 'x', name: 'n'.repeat(129) }, '/body/name');
    await rejectsMessage({ role: 'user', content: 'x', model: 'm'.repeat(129) }, '/body/model');
  });

  test('a NUL character in content is 422', () => rejectsMessage({ role: 'user', content: 'before\u0000after' }, '/body/content'));

  test('a NUL character inside toolCalls or metadata is 422', async () => {
    await rejectsMessage({ role: 'assistant', content: 'x', toolCalls: [{ args: 'a\u0000' }] }, '/body/toolCalls/0/args');
    await rejectsMessage({ role: 'assistant', content: 'x', metadata: { k: 'a\u0000' } }, '/body/metadata/k');
  });

  test('a lone surrogate in content is 422', async () => {
    await rejectsRawMessage('{"role":"user","content":"\\ud800"}', '/body/content');
    await rejectsRawMessage('{"role":"user","content":"ok \\udfff"}', '/body/content');
  });

  test.each(['promptTokens', 'completionTokens', 'totalTokens', 'latencyMs'] as const)('negative %s is 422', (field) =>
    rejectsMessage({ role: 'assistant', content: 'x', [field]: -1 }, `/body/${field}`),
  );

  test.each(['promptTokens', 'completionTokens', 'totalTokens', 'latencyMs'] as const)('fractional or too large %s is 422', async (field) => {
    await rejectsMessage({ role: 'assistant', content: 'x', [field]: 1.5 }, `/body/${field}`);
    await rejectsMessage({ role: 'assistant', content: 'x', [field]: MAX_INT32 + 1 }, `/body/${field}`);
  });

  test('negative or too large costUsd is 422', async () => {
    await rejectsMessage({ role: 'assistant', content: 'x', costUsd: -0.01 }, '/body/costUsd');
    await rejectsMessage({ role: 'assistant', content: 'x', costUsd: 1_000_000_001 }, '/body/costUsd');
  });

  test('numbers sent as strings are 422', () => rejectsRawMessage({ role: 'user', content: 'x', promptTokens: '5' }, '/body/promptTokens'));

  test.each(['yesterday', '2024-02-30T00:00:00Z', '2024-01-01T00:00:00', '2024-01-01', '2024-01-01T25:00:00Z', ''])(
    'createdAt %p is 422',
    (createdAt) => rejectsMessage({ role: 'user', content: 'x', createdAt }, '/body/createdAt'),
  );

  test.each(['0000-01-01T00:00:00Z', '2024-01-01T00:00:00+16:00', '2024-01-01T00:00:00+23'])(
    'createdAt %p, valid for the contract but not storable, is not a 500',
    (createdAt) => expectNo500({ role: 'user', content: 'x', createdAt }),
  );

  test('an id that is not a UUID is 422', () => rejectsMessage({ id: '42', role: 'user', content: 'x' }, '/body/id'));

  test('a message id with a urn:uuid: prefix is not a 500', () =>
    expectNo500({ id: `urn:uuid:${crypto.randomUUID()}`, role: 'user', content: 'x' }));

  test('metadata over 16 KiB or deeper than 8 levels is 422', async () => {
    await rejectsMessage({ role: 'user', content: 'x', metadata: metadataOfBytes(16385) }, '/body/metadata');
    await rejectsMessage({ role: 'user', content: 'x', metadata: nested(9) }, '/body/metadata');
  });

  test('toolCalls up to 16 levels is accepted; over 64 KiB or deeper than 16 levels is 422', async () => {
    const chat = await newChat(org);
    expect((await newMessage(org, chat.id, { role: 'assistant', content: 'x', toolCalls: nested(16) })).toolCalls).toEqual(nested(16));
    await rejectsMessage({ role: 'assistant', content: 'x', toolCalls: 't'.repeat(65536) }, '/body/toolCalls');
    await rejectsMessage({ role: 'assistant', content: 'x', toolCalls: nested(17) }, '/body/toolCalls');
  });

  test('pathologically deep JSON is 422, not a 500', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    await rejectsRawMessage(`{"role":"user","content":"x","metadata":{"a":${deep}}}`, '/body');
    await rejectsRawMessage(`{"role":"user","content":"x","toolCalls":${deep}}`, '/body');
  });
});
