import { beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from 'bun:test';
import type { components } from '../src/generated/openapi.ts';
import * as conversations from '../src/modules/conversations/conversations.repository.ts';
import type { NewMessage } from '../src/modules/conversations/conversations.repository.ts';
import { CHAT_COLUMNS, MESSAGE_COLUMNS } from '../src/modules/exports/formats.ts';
import { EXPORT_PAGE_SIZE } from '../src/modules/exports/snapshot-reader.ts';
import { testDatabaseKind } from './support/database.ts';
import { addUser, createTenant, createTestApp, type Tenant, type TestApp, appendBatch } from './support/harness.ts';

type Chat = components['schemas']['Chat'];
type Message = components['schemas']['Message'];
type MessageCreate = components['schemas']['MessageCreate'];
type ChatCreate = components['schemas']['ChatCreate'];
type ExportCreate = components['schemas']['ExportCreate'];
type Export = components['schemas']['Export'];

setDefaultTimeout(60_000);

let t: TestApp;
/** Page reads of snapshots: every call of the repository's snapshot readers, observed (not replaced). */
const snapshotReads = ['snapshotChats', 'snapshotMessages', 'snapshotChatMessages'].map((name) => spyOn(conversations, name as 'snapshotChats'));
const exportReads = {
  get queries() {
    return snapshotReads.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
  },
};
beforeAll(async () => {
  t = await createTestApp();
});

const as = (token: string) => t.client({ token });

// ---- helpers -----------------------------------------------------------------------------------

async function ingestChat(tenant: Tenant, body: ChatCreate = {}): Promise<Chat> {
  const { data, response } = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats', {
    params: { path: { slug: tenant.slug } },
    body,
  });
  expect(response.status).toBe(201);
  return data!;
}

const appendMessages = (tenant: Tenant, chatId: string, messages: MessageCreate[]) => appendBatch(t, tenant, chatId, messages);

/**
 * Created as the product creates chats (so that, on Citus too, it carries the transaction id of
 * its organization's node), then dated in SQL: only the database lets a test choose a chat's
 * creation time.
 */
async function insertChat(orgId: string, seed: { createdAt: string; tags?: string[]; externalUserId?: string | null }): Promise<string> {
  const id = crypto.randomUUID();
  await conversations.createChats(t.db.fork(), orgId, [{ id, title: null, tags: seed.tags ?? [], metadata: {}, externalUserId: seed.externalUserId ?? null, source: null }]);
  await t.db.fork().execute(`update chats set created_at = ?, updated_at = ? where organization_id = ? and id = ?`, [seed.createdAt, seed.createdAt, orgId, id]);
  return id;
}

async function createExport(token: string, body: ExportCreate, org = 'me'): Promise<Export> {
  const { data, response } = await as(token).POST('/exports/orgs/{org}', { params: { path: { org } }, body });
  expect(response.status).toBe(201);
  return data!;
}

function download(token: string, url: string, init: RequestInit = {}): Promise<Response> {
  return t.fetch(url, { ...init, headers: { authorization: `Bearer ${token}` } });
}

async function downloadText(token: string, exp: Export): Promise<string> {
  const response = await download(token, exp.downloadUrl);
  expect(response.status).toBe(200);
  return response.text();
}

async function downloadJson<T>(token: string, exp: Export): Promise<T[]> {
  const response = await download(token, exp.downloadUrl);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return (await response.json()) as T[];
}

async function chatMessages(token: string, chatId: string): Promise<Message[]> {
  const { data } = await as(token).GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId }, query: { limit: 200 } } });
  return data!.items;
}

async function getChat(token: string, chatId: string): Promise<Chat> {
  const { data } = await as(token).GET('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } } });
  return data!;
}

/**
 * A strict RFC 4180 parser: quoted fields may hold anything (quotes doubled), unquoted fields
 * must not hold a quote, CR or LF, and every record ends with CRLF. Throws on anything else.
 */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  const n = text.length;
  if (n === 0) return records;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted field');
        const ch = text[i]!;
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            i += 1;
            break;
          }
        } else {
          field += ch;
          i += 1;
        }
      }
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\r') {
        if (text[i] === '"' || text[i] === '\n') throw new Error(`bare ${JSON.stringify(text[i])} in an unquoted field at ${i}`);
        field += text[i];
        i += 1;
      }
    }
    record.push(field);
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      i += 2;
      records.push(record);
      record = [];
      if (i === n) return records;
      continue;
    }
    throw new Error(`expected a comma or CRLF at ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`);
  }
}

const guard = (text: string | null) => (text === null ? '' : /^[=+\-@\t\r]/.test(text) ? `'${text}` : text);

async function seedPlainChat(tenant: Tenant, title: string, count: number, extra: Partial<ChatCreate> = {}) {
  const chat = await ingestChat(tenant, { title, ...extra });
  if (count === 0) return { chat, messages: [] as Message[] };
  const messages = await appendMessages(
    tenant,
    chat.id,
    Array.from({ length: count }, (_, k) => ({ role: k % 2 ? 'assistant' : 'user', content: `${title} message ${k}` }) as MessageCreate),
  );
  return { chat, messages };
}

// ---- snapshot semantics --------------------------------------------------------------------------

describe('snapshots', () => {
  test('an export holds exactly the data that existed when it was created', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    const a = await seedPlainChat(tenant, 'A', 3);
    const b = await seedPlainChat(tenant, 'B', 2);
    const chatsBefore = [await getChat(token, a.chat.id), await getChat(token, b.chat.id)];

    const messagesExport = await createExport(token, { format: 'json', scope: 'messages' });
    const chatsExport = await createExport(token, { format: 'json', scope: 'chats' });
    expect(messagesExport.status).toBe('ready');
    expect(messagesExport.downloadUrl).toBe(`/exports/orgs/${tenant.slug}/${messagesExport.id}`);

    // Right away, the download equals what the API shows.
    expect(await downloadJson<Chat>(token, chatsExport)).toEqual(chatsBefore);
    expect(await downloadJson<Message>(token, messagesExport)).toEqual([...a.messages, ...b.messages]);

    // Afterwards: messages to an existing chat, some with a createdAt in the past, and a new chat.
    await appendMessages(tenant, a.chat.id, [
      { role: 'user', content: 'late but backdated', createdAt: '2000-01-01T00:00:00Z' },
      { role: 'assistant', content: 'late' },
    ]);
    const c = await seedPlainChat(tenant, 'C', 2);
    await insertChat(tenant.orgId, { createdAt: '2001-01-01T00:00:00Z' });

    const messages = await downloadJson<Message>(token, messagesExport);
    expect(messages.map((m) => m.id)).toEqual([...a.messages, ...b.messages].map((m) => m.id));
    const chats = await downloadJson<Chat>(token, chatsExport);
    expect(chats.map((chat) => chat.id)).toEqual([a.chat.id, b.chat.id]);
    // Counts are the snapshot's, while the live chat moved on.
    expect(chats[0]!.messageCount).toBe(3);
    expect(chats[0]!.lastMessageAt).toBe(chatsBefore[0]!.lastMessageAt);
    expect((await getChat(token, a.chat.id)).messageCount).toBe(5);
    void c;

    // A chat deleted since is gone from the download, its messages too.
    const { response } = await as(token).DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: b.chat.id } } });
    expect(response.status).toBe(204);
    expect((await downloadJson<Message>(token, messagesExport)).map((m) => m.id)).toEqual(a.messages.map((m) => m.id));
    expect((await downloadJson<Chat>(token, chatsExport)).map((chat) => chat.id)).toEqual([a.chat.id]);

    // A new export sees everything that exists now.
    const now = await createExport(token, { format: 'json', scope: 'messages' });
    expect((await downloadJson<Message>(token, now)).length).toBe(3 + 2 + 2);
  });

  // PGlite has a single connection: no transaction can be in flight beside the export's.
  test.skipIf(testDatabaseKind === 'pglite')('rows of a transaction still open when the export is created never appear, whatever their createdAt', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    const before = await seedPlainChat(tenant, 'before', 1);
    const lateChat = crypto.randomUUID();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const ready = new Promise<void>((resolve) => (written = resolve));
    const message = (chatId: string, content: string): NewMessage => ({
      id: crypto.randomUUID(), chatId, role: 'user', content, name: null, model: null, promptTokens: null, completionTokens: null,
      totalTokens: null, latencyMs: null, costUsd: null, toolCalls: null, metadata: {}, createdAt: '2000-01-01T00:00:00Z',
    });
    // Written as ingestion writes, in a transaction held open while the exports are created.
    const open = t.db.fork().transactional(async (tx) => {
      await conversations.createChats(tx, tenant.orgId, [{ id: lateChat, title: null, tags: [], metadata: {}, externalUserId: null, source: null }]);
      await conversations.appendMessages(tx, tenant.orgId, [message(lateChat, 'in flight'), message(before.chat.id, 'in flight, old chat')]);
      written();
      await gate;
    });
    await ready;
    const exp = await createExport(token, { format: 'ndjson', scope: 'messages' });
    const chatsExp = await createExport(token, { format: 'json', scope: 'chats' });
    release();
    await open;
    const lines = (await downloadText(token, exp)).trimEnd().split('\n').map((line) => JSON.parse(line) as Message);
    expect(lines.map((m) => m.id)).toEqual(before.messages.map((m) => m.id));
    expect((await downloadJson<Chat>(token, chatsExp)).map((c) => [c.id, c.messageCount])).toEqual([[before.chat.id, 1]]);
    const after = await createExport(token, { format: 'json', scope: 'messages' });
    expect((await downloadJson<Message>(token, after)).length).toBe(3);
  });

  test('an empty organization exports an empty file of each format', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    expect(await downloadJson(token, await createExport(token, { format: 'json', scope: 'chats' }))).toEqual([]);
    expect(await downloadText(token, await createExport(token, { format: 'ndjson', scope: 'messages' }))).toBe('');
    const csv = await downloadText(token, await createExport(token, { format: 'csv', scope: 'messages' }));
    expect(parseCsv(csv.replace(/^\uFEFF/, ''))).toEqual([MESSAGE_COLUMNS.map((c) => c.name)]);
  });
});

// ---- formats -------------------------------------------------------------------------------------

const HOSTILE = [
  `=cmd|' /C calc'!A0`,
  '+1',
  '-1',
  '@SUM(1+1)',
  '\tTab first',
  '\rCR first',
  'commas, and "quotes", ""doubled""',
  'line one\r\nline two\nline three\rline four',
  'emoji 😀👩‍👩‍👧 ünïcödé 中文 العربية',
  '"',
  ',',
  '',
  ' leading space',
];

describe('formats', () => {
  let tenant: Tenant;
  let chat: Chat;
  let messages: Message[];

  beforeAll(async () => {
    tenant = await createTenant(t);
    chat = await ingestChat(tenant, {
      title: `=HYPERLINK("http://evil","click, me")`,
      tags: ['a,b', 'q"t', '-neg', 'x|y'],
      externalUserId: '+33 6 12 34 56 78',
      source: '@web',
      metadata: { note: 'line\r\nbreak, "quoted"', n: 1 },
    });
    messages = await appendMessages(
      tenant,
      chat.id,
      HOSTILE.map((content, k) => ({
        role: k % 2 ? 'assistant' : 'user',
        content,
        name: k === 1 ? '-tool' : null,
        model: k % 2 ? '=model' : null,
        promptTokens: k,
        completionTokens: 2 * k,
        latencyMs: 100 + k,
        costUsd: k ? k / 1000 : null,
        toolCalls: k === 3 ? [{ name: 'sum', arguments: '{"a": "=1+1"}' }] : k === 4 ? -1 : undefined,
        metadata: k === 5 ? { '=k': '=v' } : {},
      })),
    );
  });

  test('CSV of messages round-trips through a strict RFC 4180 parser, formulas guarded', async () => {
    const exp = await createExport(tenant.adminToken, { format: 'csv', scope: 'messages' });
    const response = await download(tenant.adminToken, exp.downloadUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const date = exp.createdAt.slice(0, 10);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="chatlogger-messages-${date}.csv"`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect([...bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes).slice(1);
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual(['chatId', 'messageId', 'role', 'content', 'name', 'model', 'promptTokens', 'completionTokens', 'totalTokens', 'latencyMs', 'costUsd', 'toolCalls', 'metadata', 'createdAt']);
    expect(rows.length).toBe(messages.length);
    rows.forEach((row, k) => {
      const m = messages[k]!;
      const cell = Object.fromEntries(header!.map((name, i) => [name, row[i]!]));
      expect(cell).toEqual({
        chatId: chat.id,
        messageId: m.id,
        role: m.role,
        content: guard(m.content),
        name: guard(m.name),
        model: guard(m.model),
        promptTokens: String(m.promptTokens),
        completionTokens: String(m.completionTokens),
        totalTokens: String(m.totalTokens),
        latencyMs: String(m.latencyMs),
        costUsd: m.costUsd === null ? '' : String(m.costUsd),
        toolCalls: m.toolCalls === null ? '' : guard(JSON.stringify(m.toolCalls)),
        metadata: guard(JSON.stringify(m.metadata)),
        createdAt: m.createdAt,
      });
    });
    // The guard in plain words: the formula and the signed numbers start with a quote now.
    expect(rows[0]![3]).toBe(`'=cmd|' /C calc'!A0`);
    expect(rows.map((row) => row[3])).toContain(`'+1`);
    expect(rows.map((row) => row[3])).toContain(`'-1`);
    expect(rows.map((row) => row[3])).toContain(`'@SUM(1+1)`);
    expect(rows.map((row) => row[3])).toContain('emoji 😀👩‍👩‍👧 ünïcödé 中文 العربية');
    expect(rows.map((row) => row[3])).toContain('line one\r\nline two\nline three\rline four');
    expect(rows[4]![11]).toBe(`'-1`);
  });

  test('CSV of chats: tags as a JSON array, metadata as JSON, free text guarded', async () => {
    const exp = await createExport(tenant.adminToken, { format: 'csv', scope: 'chats' });
    const text = await downloadText(tenant.adminToken, exp);
    const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
    expect(header).toEqual(CHAT_COLUMNS.map((c) => c.name));
    expect(header).toEqual(['chatId', 'title', 'tags', 'externalUserId', 'source', 'createdAt', 'updatedAt', 'lastMessageAt', 'messageCount', 'metadata']);
    const live = await getChat(tenant.adminToken, chat.id);
    expect(rows).toEqual([
      [
        chat.id,
        `'=HYPERLINK("http://evil","click, me")`,
        JSON.stringify(['a,b', 'q"t', '-neg', 'x|y']),
        `'+33 6 12 34 56 78`,
        `'@web`,
        live.createdAt,
        live.updatedAt,
        live.lastMessageAt!,
        String(HOSTILE.length),
        JSON.stringify(live.metadata),
      ],
    ]);
  });

  test('JSON is one array equal to the API objects; NDJSON is the same objects, one per line', async () => {
    const json = await downloadJson<Message>(tenant.adminToken, await createExport(tenant.adminToken, { format: 'json', scope: 'messages' }));
    expect(json).toEqual(await chatMessages(tenant.adminToken, chat.id));
    expect(json.map((m) => m.content)).toEqual(HOSTILE);

    const exp = await createExport(tenant.adminToken, { format: 'ndjson', scope: 'messages' });
    const response = await download(tenant.adminToken, exp.downloadUrl);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(response.headers.get('content-disposition')).toContain('.ndjson"');
    const text = await response.text();
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.split('\n').slice(0, -1);
    expect(lines.map((line) => JSON.parse(line))).toEqual(json);

    const chatLines = (await downloadText(tenant.adminToken, await createExport(tenant.adminToken, { format: 'ndjson', scope: 'chats' }))).trimEnd().split('\n');
    expect(chatLines.map((line) => JSON.parse(line))).toEqual([await getChat(tenant.adminToken, chat.id)]);
  });
});

// ---- filters -------------------------------------------------------------------------------------

describe('filters', () => {
  test('createdAt range, tags (any of) and externalUserId select chats, and the messages of those chats', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    const early = await insertChat(tenant.orgId, { createdAt: '2026-01-01T00:00:00Z', tags: ['red'], externalUserId: 'u1' });
    const middle = await insertChat(tenant.orgId, { createdAt: '2026-02-01T00:00:00Z', tags: ['blue', 'green'], externalUserId: 'u2' });
    const late = await insertChat(tenant.orgId, { createdAt: '2026-03-01T00:00:00Z', tags: [], externalUserId: 'u1' });
    for (const id of [early, middle, late]) await appendMessages(tenant, id, [{ role: 'user', content: `in ${id}` }]);

    const chatIds = async (body: Omit<ExportCreate, 'format' | 'scope'>) =>
      (await downloadJson<Chat>(token, await createExport(token, { format: 'json', scope: 'chats', ...body }))).map((c) => c.id);
    const messageChats = async (body: Omit<ExportCreate, 'format' | 'scope'>) =>
      (await downloadJson<Message>(token, await createExport(token, { format: 'json', scope: 'messages', ...body }))).map((m) => m.chatId);

    expect(await chatIds({})).toEqual([early, middle, late]);
    expect(await chatIds({ from: '2026-02-01T00:00:00Z' })).toEqual([middle, late]);
    expect(await chatIds({ to: '2026-02-01T00:00:00Z' })).toEqual([early]);
    expect(await chatIds({ from: '2026-01-15T00:00:00+01:00', to: '2026-03-01T00:00:00Z' })).toEqual([middle]);
    expect(await chatIds({ tags: ['red', 'green'] })).toEqual([early, middle]);
    expect(await chatIds({ externalUserId: 'u1' })).toEqual([early, late]);
    expect(await chatIds({ externalUserId: 'u1', tags: ['red'] })).toEqual([early]);
    expect(await chatIds({ externalUserId: 'nobody' })).toEqual([]);
    expect(await messageChats({ externalUserId: 'u1' })).toEqual(expect.arrayContaining([early, late]));
    expect((await messageChats({ externalUserId: 'u1' })).length).toBe(2);
    expect(await messageChats({ tags: ['blue'] })).toEqual([middle]);

    const stored = await createExport(token, { format: 'csv', scope: 'chats', tags: ['red'], from: '2026-01-01T00:00:00Z', externalUserId: 'u1' });
    expect(stored.filters).toEqual({ tags: ['red'], from: '2026-01-01T00:00:00Z', externalUserId: 'u1' });
  });

  test('unknown fields and bad values are refused', async () => {
    const tenant = await createTenant(t);
    for (const body of [{ format: 'xlsx', scope: 'chats' }, { format: 'csv' }, { format: 'csv', scope: 'chats', extra: 1 }, { format: 'csv', scope: 'chats', from: 'yesterday' }]) {
      const { response } = await as(tenant.adminToken).POST('/exports/orgs/{org}', { params: { path: { org: 'me' } }, body: body as ExportCreate });
      expect(response.status).toBe(422);
    }
  });
});

// ---- streaming -----------------------------------------------------------------------------------

describe('streaming', () => {
  let tenant: Tenant;
  const TOTAL = 3 * EXPORT_PAGE_SIZE + 7;

  beforeAll(async () => {
    tenant = await createTenant(t);
    let left = TOTAL;
    for (let n = 0; left > 0; n++) {
      const chat = await ingestChat(tenant, { title: `big ${n}` });
      const count = Math.min(1000, left);
      await appendMessages(
        tenant,
        chat.id,
        Array.from({ length: count }, (_, k) => ({ role: 'user', content: `message ${n}-${k}, with a comma` }) as MessageCreate),
      );
      left -= count;
    }
  });

  test('a big export streams in several pages, every row once and in order', async () => {
    const exp = await createExport(tenant.adminToken, { format: 'ndjson', scope: 'messages' });
    const before = exportReads.queries;
    const response = await download(tenant.adminToken, exp.downloadUrl);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let chunks = 0;
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks += 1;
      text += decoder.decode(value, { stream: true });
    }
    const rows = text.trimEnd().split('\n').map((line) => JSON.parse(line) as Message);
    expect(rows.length).toBe(TOTAL);
    expect(new Set(rows.map((m) => m.id)).size).toBe(TOTAL);
    const keys = rows.map((m) => `${m.createdAt} ${m.id}`);
    expect(keys).toEqual([...keys].sort());
    expect(chunks).toBeGreaterThanOrEqual(4);
    expect(exportReads.queries - before).toBe(4);

    const csv = parseCsv((await downloadText(tenant.adminToken, await createExport(tenant.adminToken, { format: 'csv', scope: 'messages' }))).slice(1));
    expect(csv.length).toBe(TOTAL + 1);
    const json = await downloadJson<Message>(tenant.adminToken, await createExport(tenant.adminToken, { format: 'json', scope: 'messages' }));
    expect(json.map((m) => m.id)).toEqual(rows.map((m) => m.id));
  });

  test('a client that goes away stops the database reads', async () => {
    const exp = await createExport(tenant.adminToken, { format: 'csv', scope: 'messages' });
    const before = exportReads.queries;
    const response = await download(tenant.adminToken, exp.downloadUrl);
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();
    await Bun.sleep(100);
    const atCancel = exportReads.queries - before;
    await Bun.sleep(300);
    expect(exportReads.queries - before).toBe(atCancel);
    // The whole file takes 4 page reads; at most the page being read and one read ahead ran.
    expect(atCancel).toBeLessThanOrEqual(2);
  });

  test('an aborted request stops the database reads', async () => {
    const exp = await createExport(tenant.adminToken, { format: 'json', scope: 'messages' });
    const controller = new AbortController();
    const before = exportReads.queries;
    const response = await t.fetch(exp.downloadUrl, { headers: { authorization: `Bearer ${tenant.adminToken}` }, signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await Bun.sleep(100);
    const atAbort = exportReads.queries - before;
    // Keep asking: the stream must end (as an error), not read on.
    await reader.read().then(
      () => undefined,
      () => undefined,
    );
    await reader.read().then(
      () => undefined,
      () => undefined,
    );
    await Bun.sleep(200);
    expect(exportReads.queries - before).toBeLessThanOrEqual(atAbort + 1);
    expect(exportReads.queries - before).toBeLessThan(4);
  });
});

// ---- listing, roles and tenancy -------------------------------------------------------------------

describe('listing and access', () => {
  test('exports are listed newest first, page by page, and audited', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    const created: Export[] = [];
    for (const format of ['csv', 'json', 'ndjson'] as const) created.push(await createExport(token, { format, scope: 'chats', tags: ['x'] }));
    const seen: Export[] = [];
    let cursor: string | undefined;
    do {
      const { data, response } = await as(token).GET('/exports/orgs/{org}', { params: { path: { org: 'me' }, query: { limit: 2, cursor } } });
      expect(response.status).toBe(200);
      seen.push(...data!.items);
      cursor = data!.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...created].reverse());

    const { data: audit } = await as(token).GET('/orgs/{org}/audit', { params: { path: { org: 'me' }, query: { action: 'export.created' } } });
    expect(audit!.items.length).toBe(3);
    expect(audit!.items[0]!.details).toEqual({ format: 'ndjson', scope: 'chats', filters: { tags: ['x'] } });
    expect(audit!.items[0]!.targetId).toBe(created[2]!.id);

    const { response } = await as(token).GET('/exports/orgs/{org}', { params: { path: { org: 'me' }, query: { cursor: 'garbage' } } });
    expect(response.status).toBe(422);
  });

  test('roles: viewer 403, user allowed; another organization 404; unknown or foreign ids 404', async () => {
    const a = await createTenant(t);
    const b = await createTenant(t);
    const viewer = await addUser(t, a, 'viewer');
    const user = await addUser(t, a, 'user');
    await seedPlainChat(a, 'A', 2);

    const mine = await createExport(user.token, { format: 'json', scope: 'messages' });
    expect(mine.createdBy).toBe(user.id);
    expect((await downloadJson<Message>(user.token, mine)).length).toBe(2);
    const { data: list } = await as(user.token).GET('/exports/orgs/{org}', { params: { path: { org: a.slug } } });
    expect(list!.items.map((e) => e.id)).toEqual([mine.id]);

    const viewerCreate = await as(viewer.token).POST('/exports/orgs/{org}', { params: { path: { org: 'me' } }, body: { format: 'csv', scope: 'chats' } });
    expect(viewerCreate.response.status).toBe(403);
    expect((await as(viewer.token).GET('/exports/orgs/{org}', { params: { path: { org: 'me' } } })).response.status).toBe(403);
    expect((await download(viewer.token, mine.downloadUrl)).status).toBe(403);

    // B's admin naming A: 404 everywhere.
    expect((await as(b.adminToken).POST('/exports/orgs/{org}', { params: { path: { org: a.slug } }, body: { format: 'csv', scope: 'chats' } })).response.status).toBe(404);
    expect((await as(b.adminToken).GET('/exports/orgs/{org}', { params: { path: { org: a.slug } } })).response.status).toBe(404);
    expect((await download(b.adminToken, mine.downloadUrl)).status).toBe(404);
    // B's admin naming its own organization with A's export id: 404 too.
    const foreign = await as(b.adminToken).GET('/exports/orgs/{org}/{exportId}', { params: { path: { org: 'me', exportId: mine.id } } });
    expect(foreign.response.status).toBe(404);
    for (const exportId of ['not-a-uuid', crypto.randomUUID()]) {
      const { response } = await as(a.adminToken).GET('/exports/orgs/{org}/{exportId}', { params: { path: { org: 'me', exportId } } });
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await download(a.adminToken, `/exports/orgs/${a.slug}/${mine.id}`, {})).status).toBe(200);
    expect((await t.fetch(mine.downloadUrl)).status).toBe(401);
  });
});

// ---- data-subject access request ------------------------------------------------------------------

describe('end-user export', () => {
  test('everything of one end user, chats with their messages nested, audited', async () => {
    const tenant = await createTenant(t);
    const token = tenant.adminToken;
    const endUser = 'user 42@example.com/ü';
    const one = await seedPlainChat(tenant, 'one', 3, { externalUserId: endUser, tags: ['t'] });
    const two = await seedPlainChat(tenant, 'two', 0, { externalUserId: endUser });
    await seedPlainChat(tenant, 'someone else', 2, { externalUserId: 'other' });

    const { data, response } = await as(token).GET('/orgs/{org}/end-users/{externalUserId}/export', {
      params: { path: { org: 'me', externalUserId: endUser } },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toStartWith('attachment; filename="chatlogger-enduser-');
    expect(data!.externalUserId).toBe(endUser);
    expect(Date.now() - Date.parse(data!.exportedAt)).toBeLessThan(60_000);
    expect(data!.chats).toEqual([
      { ...(await getChat(token, one.chat.id)), messages: one.messages },
      { ...(await getChat(token, two.chat.id)), messages: [] },
    ]);

    const { data: audit } = await as(token).GET('/orgs/{org}/audit', { params: { path: { org: 'me' }, query: { action: 'enduser.exported' } } });
    expect(audit!.items.length).toBe(1);
    expect(audit!.items[0]!.targetId).toBe(endUser);

    const nobody = await as(token).GET('/orgs/{org}/end-users/{externalUserId}/export', { params: { path: { org: 'me', externalUserId: 'nobody' } } });
    expect(nobody.response.status).toBe(200);
    expect(nobody.data!.chats).toEqual([]);
  });

  test('a chat with more messages than a page is complete and valid JSON', async () => {
    const tenant = await createTenant(t);
    const chat = await ingestChat(tenant, { externalUserId: 'big' });
    for (let n = 0; n < 2; n++) {
      await appendMessages(
        tenant,
        chat.id,
        Array.from({ length: 1000 }, (_, k) => ({ role: 'user', content: `m ${n} ${k}` }) as MessageCreate),
      );
    }
    const { data } = await as(tenant.adminToken).GET('/orgs/{org}/end-users/{externalUserId}/export', { params: { path: { org: 'me', externalUserId: 'big' } } });
    expect(data!.chats.length).toBe(1);
    expect(data!.chats[0]!.messages.length).toBe(2000);
    expect(data!.chats[0]!.messageCount).toBe(2000);
  });

  test('admins only; another organization is a 404', async () => {
    const a = await createTenant(t);
    const b = await createTenant(t);
    const user = await addUser(t, a, 'user');
    const path = { org: a.slug, externalUserId: 'x' };
    expect((await as(user.token).GET('/orgs/{org}/end-users/{externalUserId}/export', { params: { path } })).response.status).toBe(403);
    expect((await as(b.adminToken).GET('/orgs/{org}/end-users/{externalUserId}/export', { params: { path } })).response.status).toBe(404);
    expect((await as(a.adminToken).GET('/orgs/{org}/end-users/{externalUserId}/export', { params: { path } })).response.status).toBe(200);
  });
});
