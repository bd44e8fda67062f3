/**
 * What an anonymous caller can make the server do before it knows who is calling: nothing with
 * the request body. Credentials (and the login address limit) are checked first.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { createApp } from '../src/app.ts';
import { MemoryStore } from '../src/http/rate-limit-store.ts';
import { createLogger } from '../src/logger.ts';
import { addUser, BASE_URL, createTenant, createTestApp, testConfig, type Tenant, type TestApp } from './support/harness.ts';

setDefaultTimeout(30_000);

let t: TestApp;
let tenant: Tenant;
beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
});

/** A body that records whether anyone read it (no Content-Length: it is streamed). */
function watchedBody(text: string) {
  const state = { pulled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulled = true;
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  }, { highWaterMark: 0 });
  return { state, body };
}

const BIG = `{${Array.from({ length: 1000 }, (_, i) => `"k${i}":${i}`).join(',')}}`;

async function send(handle: (r: Request) => Promise<Response> | Response, method: string, path: string, headers: Record<string, string>, text = BIG) {
  const { state, body } = watchedBody(text);
  const response = await handle(new Request(BASE_URL + path, { method, headers: { 'content-type': 'application/json', ...headers }, body, duplex: 'half' } as RequestInit));
  return { status: response.status, read: state.pulled, type: response.headers.get('content-type') };
}

describe('the body is not read before authentication', () => {
  const handle = (r: Request) => t.app.handle(r);

  test('ingestion without a key, or with a wrong one: 401, body unread', async () => {
    for (const headers of [{}, { 'x-organization-api-key': 'clk_wrong' }] as Record<string, string>[]) {
      for (const path of [`/api/v1/orgs/${tenant.slug}/chats`, `/api/v1/orgs/${tenant.slug}/chats/${crypto.randomUUID()}/messages`, `/api/v1/orgs/${tenant.slug}/chats/${crypto.randomUUID()}/messages/batch`]) {
        expect(await send(handle, 'POST', path, headers)).toEqual({ status: 401, read: false, type: 'application/problem+json' });
      }
    }
  });

  test('dashboard routes without a session: 401, body unread; with too weak a role: 403, body unread', async () => {
    for (const [method, path] of [['POST', '/orgs/me/apikeys'], ['POST', '/orgs/me/users'], ['PATCH', '/users/me'], ['POST', '/orgs'], ['POST', '/exports/orgs/me']]) {
      expect(await send(handle, method!, path!, {})).toEqual({ status: 401, read: false, type: 'application/problem+json' });
      expect(await send(handle, method!, path!, { authorization: 'Bearer not-a-token' })).toEqual({ status: 401, read: false, type: 'application/problem+json' });
    }
    const viewer = await addUser(t, tenant, 'viewer');
    for (const [method, path] of [['POST', '/orgs/me/apikeys'], ['POST', '/orgs/me/users'], ['POST', '/orgs'], ['POST', '/exports/orgs/me']]) {
      expect(await send(handle, method!, path!, { authorization: `Bearer ${viewer.token}` })).toEqual({ status: 403, read: false, type: 'application/problem+json' });
    }
  });

  test('a malformed body from an anonymous caller is a 401, not a 400', async () => {
    expect((await send(handle, 'POST', `/api/v1/orgs/${tenant.slug}/chats`, {}, '{not json')).status).toBe(401);
    expect((await send(handle, 'POST', '/orgs/me/apikeys', {}, '\u00ff\u0000')).status).toBe(401);
  });

  test('an authenticated caller still gets its body read and checked', async () => {
    expect(await send(handle, 'POST', `/api/v1/orgs/${tenant.slug}/chats`, { 'x-organization-api-key': tenant.apiKey }, '{not json')).toEqual({ status: 400, read: true, type: 'application/problem+json' });
    expect(await send(handle, 'POST', `/api/v1/orgs/${tenant.slug}/chats`, { 'x-organization-api-key': tenant.apiKey }, '{}')).toMatchObject({ status: 201, read: true });
  });

  test('login: an address over its limit is refused before its body is read', async () => {
    const app = createApp({ config: testConfig({ LOGIN_RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: '1' }), db: t.db, log: createLogger('silent'), rateLimitStore: new MemoryStore() });
    const from = { 'x-forwarded-for': '203.0.113.77' };
    const body = JSON.stringify({ email: 'nobody@example.test', password: 'x' });
    expect(await send((r) => app.handle(r), 'POST', '/auth/login', from, body)).toMatchObject({ status: 401, read: true });
    expect(await send((r) => app.handle(r), 'POST', '/auth/login', from, BIG)).toEqual({ status: 429, read: false, type: 'application/problem+json' });
  });
});
