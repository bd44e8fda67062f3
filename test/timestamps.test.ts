/**
 * Timestamps from outside: every one must name an instant RFC 3339 can print (years 0001 to 9999
 * in UTC), and the times of events clients report must be plausible. Rows stored before these
 * rules must not break any read.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { query } from '../src/db/sql.ts';
import { createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';

setDefaultTimeout(30_000);

let t: TestApp;
let tenant: Tenant;

beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
});

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const DAY = 24 * 60 * 60 * 1000;

const ingest = (path: string, body: unknown) =>
  t.fetch(`/api/v1/orgs/${tenant.slug}${path}`, {
    method: 'POST',
    headers: { 'x-organization-api-key': tenant.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const admin = (path: string, init: RequestInit = {}) =>
  t.fetch(path, { ...init, headers: { authorization: `Bearer ${tenant.adminToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

async function newChat(): Promise<string> {
  const response = await ingest('/chats', {});
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function expect422(response: Response, pointer: string) {
  expect(response.status).toBe(422);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as { errors: { pointer: string }[] };
  expect(body.errors.map((e) => e.pointer)).toContain(pointer);
}

// Before year 1 in UTC, though not in the offset written; after 9999 in UTC; rounding into 10000.
const UNPRINTABLE = ['0001-01-01T00:00:00+01:00', '0001-01-01T00:59:59.999999+01:00', '9999-12-31T23:59:59-15:59', '9999-12-31T23:59:59.9999996Z', '0000-06-01T00:00:00Z'];
// Printable, but not a plausible time for a message said now.
const IMPLAUSIBLE = ['0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '1999-12-31T23:59:59.999999Z', '2000-01-01T00:30:00+01:00', new Date(Date.now() + DAY + 60_000).toISOString(), '9999-12-31T23:59:59Z'];

describe("a message's createdAt", () => {
  test('outside the years 0001 to 9999 in UTC is a 422 and nothing is stored', async () => {
    const chatId = await newChat();
    for (const createdAt of UNPRINTABLE) {
      await expect422(await ingest(`/chats/${chatId}/messages`, { role: 'user', content: 'x', createdAt }), '/body/createdAt');
      await expect422(await ingest(`/chats/${chatId}/messages/batch`, { messages: [{ role: 'user', content: 'x' }, { role: 'user', content: 'y', createdAt }] }), '/body/messages/1/createdAt');
    }
    const list = await admin(`/orgs/me/chats/${chatId}/messages`);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
    for (const sort of ['lastActivity', 'createdAt']) expect((await admin(`/orgs/me/chats?sort=${sort}`)).status).toBe(200);
  });

  test('before 2000 or more than a day ahead is a 422', async () => {
    const chatId = await newChat();
    for (const createdAt of IMPLAUSIBLE) {
      await expect422(await ingest(`/chats/${chatId}/messages`, { role: 'user', content: 'x', createdAt }), '/body/createdAt');
    }
  });

  test('inside the window is stored as sent', async () => {
    const chatId = await newChat();
    const soon = new Date(Date.now() + DAY - 60_000).toISOString();
    for (const createdAt of ['2000-01-01T00:00:00Z', '2000-01-01T00:30:00-01:00', soon]) {
      const response = await ingest(`/chats/${chatId}/messages`, { role: 'user', content: 'x', createdAt });
      expect(response.status).toBe(201);
      const body = (await response.json()) as { createdAt: string };
      expect(Date.parse(body.createdAt)).toBe(Date.parse(createdAt));
    }
  });
});

describe('timestamps of filters, keys and exports', () => {
  test('outside the years 0001 to 9999 in UTC are a 422', async () => {
    for (const value of UNPRINTABLE) {
      const q = encodeURIComponent(value);
      await expect422(await admin(`/orgs/me/chats?from=${q}`), '/query/from');
      await expect422(await admin(`/orgs/me/chats?to=${q}`), '/query/to');
      await expect422(await admin(`/analytics/orgs/me/summary?from=${q}`), '/query/from');
      await expect422(await admin('/exports/orgs/me', { method: 'POST', body: JSON.stringify({ format: 'json', scope: 'chats', to: value }) }), '/body/to');
      await expect422(await admin('/orgs/me/apikeys', { method: 'POST', body: JSON.stringify({ label: 'k', expiresAt: value }) }), '/body/expiresAt');
    }
  });

  test('a range whose day in tz starts before year 1 or ends after 9999 in UTC is a 422', async () => {
    await expect422(await admin('/analytics/orgs/me/summary?from=0001-01-01&to=0001-01-05&tz=Asia/Tokyo'), '/query/from');
    await expect422(await admin('/analytics/orgs/me/summary?from=9999-12-25&to=9999-12-31&tz=Pacific/Pago_Pago'), '/query/to');
  });

  test('filters far in the past are still answered', async () => {
    expect((await admin('/orgs/me/chats?from=1970-01-01T00:00:00Z')).status).toBe(200);
    expect((await admin('/orgs/me/chats?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z')).status).toBe(200);
  });
});

describe('rows the database holds outside the years 0001 to 9999 in UTC', () => {
  // Stored before the input was bounded: every read must still answer, printing the nearest
  // instant RFC 3339 can name.
  let chatId: string;
  const externalUserId = `eu-${crypto.randomUUID()}`;

  beforeAll(async () => {
    const created = await ingest('/chats', { externalUserId });
    chatId = ((await created.json()) as { id: string }).id;
    const batch = await ingest(`/chats/${chatId}/messages/batch`, { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }] });
    const ids = ((await batch.json()) as { items: { id: string }[] }).items.map((m) => m.id);
    const em = t.db.fork();
    await query(em, `update messages set created_at = '0001-12-31 23:00:00+00 BC' where organization_id = $1 and id = $2`, [tenant.orgId, ids[0]]);
    await query(em, `update messages set created_at = '10000-01-01 15:58:59+00' where organization_id = $1 and id = $2`, [tenant.orgId, ids[2]]);
    await query(em, `update chats set last_message_at = '10000-01-01 15:58:59+00', created_at = '0001-12-31 23:00:00+00 BC' where organization_id = $1 and id = $2`, [tenant.orgId, chatId]);
  });

  test('lists, the chat and its transcript answer, paging across those rows', async () => {
    for (const sort of ['lastActivity', 'createdAt']) {
      for (const order of ['desc', 'asc']) {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const response = await admin(`/orgs/me/chats?sort=${sort}&order=${order}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
          expect(response.status).toBe(200);
          const page = (await response.json()) as { items: { id: string; createdAt: string }[]; nextCursor: string | null };
          seen.push(...page.items.map((c) => c.id));
          cursor = page.nextCursor;
        } while (cursor && !seen.includes(chatId));
        expect(seen).toContain(chatId);
      }
    }
    const chat = await admin(`/orgs/me/chats/${chatId}`);
    expect(chat.status).toBe(200);
    expect(await chat.json()).toMatchObject({ createdAt: '0001-01-01T00:00:00.000000Z', lastMessageAt: '9999-12-31T23:59:59.999999Z' });

    const times: string[] = [];
    let cursor: string | null = null;
    do {
      const response = await admin(`/orgs/me/chats/${chatId}/messages?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { createdAt: string }[]; nextCursor: string | null };
      times.push(...page.items.map((m) => m.createdAt));
      cursor = page.nextCursor;
    } while (cursor);
    expect(times).toHaveLength(3);
    expect(times[0]).toBe('0001-01-01T00:00:00.000000Z');
    expect(times[2]).toBe('9999-12-31T23:59:59.999999Z');
    for (const time of times) expect(time).toMatch(RFC3339_UTC);
  });

  test('exports and the end-user export complete', async () => {
    for (const scope of ['chats', 'messages']) {
      const created = await admin('/exports/orgs/me', { method: 'POST', body: JSON.stringify({ format: 'json', scope, externalUserId }) });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const download = await admin(`/exports/orgs/me/${id}`);
      expect(download.status).toBe(200);
      const rows = JSON.parse(await download.text()) as { createdAt: string }[];
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(row.createdAt).toMatch(RFC3339_UTC);
    }
    const response = await admin(`/orgs/me/end-users/${externalUserId}/export`);
    expect(response.status).toBe(200);
    const data = JSON.parse(await response.text()) as { chats: { messages: unknown[] }[] };
    expect(data.chats[0]!.messages).toHaveLength(3);
  });

  test('the chat can be deleted', async () => {
    expect((await admin(`/orgs/me/chats/${chatId}`, { method: 'DELETE' })).status).toBe(204);
  });
});
