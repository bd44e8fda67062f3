import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { RedisClient } from 'bun';
import { Writable } from 'node:stream';
import { createApp, type App } from '../src/app.ts';
import { rememberPeer } from '../src/http/client-ip.ts';
import { MemoryStore, RedisStore, type RateLimitStore } from '../src/http/rate-limit-store.ts';
import { createLogger } from '../src/logger.ts';
import { checkResponse } from './support/contract.ts';
import { addUser, BASE_URL, createTenant, createTestApp, PASSWORD, superadminToken, testConfig, unique, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let t: TestApp;
let tenant: Tenant;
beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
});

/** An app on the run's database with its own settings and rate-limit store. */
function appWith(env: Record<string, string>, store: RateLimitStore = new MemoryStore(), log = createLogger('silent')): App {
  return createApp({ config: testConfig(env), db: t.db, log, rateLimitStore: store });
}

const CHATS = '/api/v1/orgs/{slug}/chats';

async function createChat(app: App, key: Tenant | { slug: string; apiKey: string }, headers: Record<string, string> = {}) {
  const response = await app.handle(
    new Request(`${BASE_URL}/api/v1/orgs/${key.slug}/chats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-organization-api-key': key.apiKey, ...headers },
      body: '{}',
    }),
  );
  await checkResponse('POST', CHATS, response);
  return response;
}

function loginRequest(email: string, password: string, headers: Record<string, string> = {}) {
  return new Request(`${BASE_URL}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ email, password }),
  });
}

async function login(app: App, email: string, password: string, headers: Record<string, string> = {}) {
  const response = await app.handle(loginRequest(email, password, headers));
  await checkResponse('POST', '/auth/login', response);
  return response;
}

const limitHeaders = (response: Response) => ({
  limit: response.headers.get('ratelimit-limit'),
  remaining: response.headers.get('ratelimit-remaining'),
  reset: response.headers.get('ratelimit-reset'),
});

async function expectTooMany(response: Response) {
  expect(response.status).toBe(429);
  expect(response.headers.get('content-type')).toStartWith('application/problem+json');
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  const body = (await response.json()) as { type: string; status: number; detail: string };
  expect(body.type).toBe('/problems/too-many-requests');
  expect(body.status).toBe(429);
  return { retryAfter, body };
}

async function newKey(org: Tenant) {
  const { data } = await t.client({ token: org.adminToken }).POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: unique('k') } });
  return { slug: org.slug, apiKey: data!.key };
}

describe('ingestion: per API key', () => {
  test('INGEST_RATE_LIMIT_PER_MINUTE requests a minute, counted down in RateLimit headers, then 429 with Retry-After', async () => {
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '3' });
    const key = await newKey(tenant);
    for (const remaining of ['2', '1', '0']) {
      const response = await createChat(app, key);
      expect(response.status).toBe(201);
      expect(limitHeaders(response)).toMatchObject({ limit: '3', remaining });
      expect(Number(response.headers.get('ratelimit-reset'))).toBeWithin(1, 61);
    }
    const refused = await createChat(app, key);
    const { retryAfter } = await expectTooMany(refused);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limitHeaders(refused)).toMatchObject({ limit: '3', remaining: '0' });
    // Refusals are not written: the limit holds for valid and invalid bodies alike.
    const invalid = await app.handle(
      new Request(`${BASE_URL}/api/v1/orgs/${key.slug}/chats`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-organization-api-key': key.apiKey },
        body: JSON.stringify({ title: 42 }),
      }),
    );
    expect(invalid.status).toBe(429);
  });

  test('each key has its own budget, and the message routes share the key\'s', async () => {
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '2' });
    const first = await newKey(tenant);
    const second = await newKey(tenant);
    const chat = (await (await createChat(app, first)).json()) as { id: string };
    const message = await app.handle(
      new Request(`${BASE_URL}/api/v1/orgs/${first.slug}/chats/${chat.id}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-organization-api-key': first.apiKey },
        body: JSON.stringify({ role: 'user', content: 'hi' }),
      }),
    );
    expect(message.status).toBe(201);
    expect(message.headers.get('ratelimit-remaining')).toBe('0');
    await expectTooMany(await createChat(app, first));
    expect((await createChat(app, second)).status).toBe(201);
  });

  test('a wrong key is a 401 and uses no budget', async () => {
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '1' });
    const key = await newKey(tenant);
    const wrong = await createChat(app, { slug: key.slug, apiKey: 'clk_' + 'x'.repeat(40) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('ratelimit-limit')).toBeNull();
    expect((await createChat(app, key)).status).toBe(201);
  });

  test('0 turns the limit off', async () => {
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '0' });
    const key = await newKey(tenant);
    for (let i = 0; i < 5; i++) {
      const response = await createChat(app, key);
      expect(response.status).toBe(201);
      expect(response.headers.get('ratelimit-limit')).toBeNull();
    }
  });

  test("an organization's settings.ingestRateLimitPerMinute overrides the default; only a superadmin sets it; null restores it", async () => {
    const org = await createTenant(t);
    const root = t.client({ token: await superadminToken(t) });
    const path = { params: { path: { org: org.slug } } };

    const byAdmin = await t.client({ token: org.adminToken }).PATCH('/orgs/{org}', { ...path, body: { settings: { ingestRateLimitPerMinute: 1000 } } });
    expect(byAdmin.response.status).toBe(403);
    for (const invalid of [0, -1, 1.5, '10', 10_000_001]) {
      const { response } = await root.PATCH('/orgs/{org}', { ...path, body: { settings: { ingestRateLimitPerMinute: invalid as number } } });
      expect(response.status).toBe(422);
    }

    const set = await root.PATCH('/orgs/{org}', { ...path, body: { settings: { ingestRateLimitPerMinute: 2 } } });
    expect(set.response.status).toBe(200);
    expect(set.data!.settings).toEqual({ retentionDays: null, ingestRateLimitPerMinute: 2, searchLanguage: 'simple' });
    // An admin may still change other settings while the override stays.
    const retention = await t.client({ token: org.adminToken }).PATCH('/orgs/{org}', { ...path, body: { settings: { retentionDays: 30, ingestRateLimitPerMinute: 2 } } });
    expect(retention.response.status).toBe(200);

    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '50' });
    expect(limitHeaders(await createChat(app, org))).toMatchObject({ limit: '2', remaining: '1' });
    expect((await createChat(app, org)).status).toBe(201);
    await expectTooMany(await createChat(app, org));

    const cleared = await root.PATCH('/orgs/{org}', { ...path, body: { settings: { ingestRateLimitPerMinute: null } } });
    expect(cleared.data!.settings.ingestRateLimitPerMinute).toBeNull();
    const after = await createChat(app, org);
    expect(after.status).toBe(201);
    // Back to the default: the key's own budget, counted apart from the organization's.
    expect(limitHeaders(after)).toMatchObject({ limit: '50', remaining: '49' });
  });

  test("an organization's own figure caps the organization, whatever the number of its keys", async () => {
    const org = await createTenant(t);
    const root = t.client({ token: await superadminToken(t) });
    const set = await root.PATCH('/orgs/{org}', { params: { path: { org: org.slug } }, body: { settings: { ingestRateLimitPerMinute: 3 } } });
    expect(set.response.status).toBe(200);
    const keys = [org, await newKey(org), await newKey(org), await newKey(org)];
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '50' });
    const statuses: number[] = [];
    for (const key of keys) for (let i = 0; i < 3; i++) statuses.push((await createChat(app, key)).status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    // Another organization's budget is its own.
    const other = await createTenant(t);
    expect((await createChat(app, other)).status).toBe(201);
  });
});

describe('login: per client address', () => {
  test('behind a trusted proxy, the address in X-Forwarded-For gets LOGIN_RATE_LIMIT_PER_MINUTE attempts, right or wrong', async () => {
    const app = appWith({ LOGIN_RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1' });
    const user = await addUser(t, tenant, 'viewer');
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    // Different emails, so no account lock is involved.
    for (const remaining of ['2', '1']) {
      const response = await login(app, `nobody-${unique()}@example.test`, 'wrong', from('203.0.113.7'));
      expect(response.status).toBe(401);
      expect(limitHeaders(response)).toMatchObject({ limit: '3', remaining });
    }
    const ok = await login(app, user.email, PASSWORD, from('203.0.113.7'));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-remaining')).toBe('0');
    const refused = await login(app, user.email, PASSWORD, from('203.0.113.7'));
    await expectTooMany(refused);
    expect(refused.headers.getSetCookie()).toEqual([]);
    // The client cannot escape by prepending addresses: only the proxy's entry counts.
    await expectTooMany(await login(app, user.email, PASSWORD, from('198.51.100.1, 203.0.113.7')));
    expect((await login(app, user.email, PASSWORD, from('203.0.113.8'))).status).toBe(200);
  });

  test('TRUST_PROXY=2 takes the second address from the right', async () => {
    const app = appWith({ LOGIN_RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: '2' });
    const user = await addUser(t, tenant, 'viewer');
    expect((await login(app, user.email, PASSWORD, { 'x-forwarded-for': '203.0.113.20, 10.0.0.1' })).status).toBe(200);
    await expectTooMany(await login(app, user.email, PASSWORD, { 'x-forwarded-for': '203.0.113.20, 10.0.0.2' }));
    expect((await login(app, user.email, PASSWORD, { 'x-forwarded-for': '203.0.113.21, 10.0.0.1' })).status).toBe(200);
  });

  test('on a real server, the TCP peer is the address, and X-Forwarded-For is ignored without TRUST_PROXY', async () => {
    const app = appWith({ LOGIN_RATE_LIMIT_PER_MINUTE: '2' });
    // The same wiring as src/main.ts.
    const server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (request, srv) => {
        rememberPeer(request, srv.requestIP(request)?.address);
        return app.handle(request);
      },
    });
    try {
      const user = await addUser(t, tenant, 'viewer');
      const attempt = (ip: string) =>
        fetch(`http://127.0.0.1:${server.port}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
          body: JSON.stringify({ email: user.email, password: PASSWORD }),
        });
      expect((await attempt('203.0.113.30')).status).toBe(200);
      expect((await attempt('203.0.113.31')).headers.get('ratelimit-remaining')).toBe('0');
      await expectTooMany(await attempt('203.0.113.32'));
    } finally {
      await server.stop(true);
    }
  });
});

describe('login: failures lock the email', () => {
  const LOCKING = { LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '1' };

  test('LOGIN_MAX_FAILURES failures lock the email, even for the right password, until the lock ends; the lock doubles', async () => {
    const app = appWith(LOCKING);
    const user = await addUser(t, tenant, 'user');
    for (let i = 0; i < 3; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    const locked = await login(app, user.email, PASSWORD);
    const { retryAfter, body } = await expectTooMany(locked);
    expect(retryAfter).toBe(1);
    expect(body.detail).toContain('failed logins');
    expect(locked.headers.getSetCookie()).toEqual([]);
    // The email is matched as the login matches it.
    await expectTooMany(await login(app, user.email.toUpperCase(), PASSWORD));

    await Bun.sleep(1100);
    for (let i = 0; i < 3; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    const again = await expectTooMany(await login(app, user.email, PASSWORD));
    expect(again.retryAfter).toBe(2);
    await Bun.sleep(2100);
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
  });

  test('a successful login clears the failures and the doubling', async () => {
    const app = appWith(LOCKING);
    const user = await addUser(t, tenant, 'user');
    for (let i = 0; i < 2; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
  });

  test('an unknown email locks and answers exactly like a known one', async () => {
    // A lock long enough to outlast six password checks on a slow machine: the two locks start
    // a few seconds apart, so only the seconds left may differ.
    const app = appWith({ LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '60' });
    const user = await addUser(t, tenant, 'user');
    const unknown = `nobody-${unique()}@example.test`;
    for (const email of [user.email, unknown]) {
      for (let i = 0; i < 3; i++) expect((await login(app, email, 'wrong-password')).status).toBe(401);
    }
    const known = await login(app, user.email, PASSWORD);
    const stranger = await login(app, unknown, PASSWORD);
    expect(known.status).toBe(429);
    expect(stranger.status).toBe(429);
    const [knownWait, strangerWait] = [Number(known.headers.get('retry-after')), Number(stranger.headers.get('retry-after'))];
    expect(knownWait).toBeGreaterThan(0);
    expect(strangerWait).toBeGreaterThanOrEqual(knownWait);
    expect(strangerWait - knownWait).toBeLessThan(30);
    expect(stranger.headers.get('content-type')).toBe(known.headers.get('content-type'));
    const seconds = (body: unknown) => JSON.stringify(body).replace(/\d+/g, 'N');
    expect(seconds(await stranger.json())).toBe(seconds(await known.json()));
  });

  test('guesses sent at once are admitted no more than LOGIN_MAX_FAILURES times (the attempt is counted before the hash)', async () => {
    const app = appWith({ LOGIN_MAX_FAILURES: '5', LOGIN_LOCK_SECONDS: '30' });
    const user = await addUser(t, tenant, 'user');
    for (const email of [user.email, `nobody-${unique()}@example.test`]) {
      const responses = await Promise.all(Array.from({ length: 20 }, () => login(app, email, 'wrong-password')));
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([...Array(5).fill(401), ...Array(15).fill(429)]);
      await expectTooMany(await login(app, email, PASSWORD));
    }
  });

  test('a right password among parallel guesses still logs in while slots remain, and clears the count', async () => {
    const app = appWith({ LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '30' });
    const user = await addUser(t, tenant, 'user');
    const [ok, ...wrong] = await Promise.all([login(app, user.email, PASSWORD), login(app, user.email, 'wrong-password'), login(app, user.email, 'wrong-password')]);
    expect(ok!.status).toBe(200);
    expect(wrong.map((r) => r.status)).toEqual([401, 401]);
    // Two failures are not three: no lock, whichever of the three finished first.
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    await expectTooMany(await login(app, user.email, PASSWORD));
  });

  test('LOGIN_MAX_FAILURES=0 never locks', async () => {
    const app = appWith({ LOGIN_MAX_FAILURES: '0' });
    const user = await addUser(t, tenant, 'user');
    for (let i = 0; i < 8; i++) expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
  });
});

describe('export downloads: concurrent per organization', () => {
  async function exportOf(org: Tenant) {
    const { data } = await t.client({ token: org.adminToken }).POST('/exports/orgs/{org}', { params: { path: { org: 'me' } }, body: { format: 'ndjson', scope: 'chats' } });
    return data!.downloadUrl;
  }
  const download = (app: App, org: Tenant, url: string) => app.handle(new Request(BASE_URL + url, { headers: { authorization: `Bearer ${org.adminToken}` } }));

  test('EXPORT_MAX_CONCURRENT_PER_ORG downloads stream at once; the next is a 429 until one ends or is cancelled', async () => {
    const app = appWith({ EXPORT_MAX_CONCURRENT_PER_ORG: '2' });
    const org = await createTenant(t);
    const other = await createTenant(t);
    await createChat(t.app, org);
    const url = await exportOf(org);

    const first = await download(app, org, url);
    const second = await download(app, org, url);
    expect([first.status, second.status]).toEqual([200, 200]);
    const refused = await download(app, org, url);
    await checkResponse('GET', '/exports/orgs/{org}/{exportId}', refused);
    const { retryAfter, body } = await expectTooMany(refused);
    expect(retryAfter).toBe(10);
    expect(body.detail).toContain('2 downloads');
    // The end-user export counts against the same limit.
    const dsar = await app.handle(new Request(`${BASE_URL}/orgs/me/end-users/someone/export`, { headers: { authorization: `Bearer ${org.adminToken}` } }));
    expect(dsar.status).toBe(429);
    // Another organization is not affected.
    const theirs = await download(app, other, await exportOf(other));
    expect(theirs.status).toBe(200);
    await theirs.text();

    // Read to the end: the slot is free again.
    expect((await first.text()).split('\n').filter(Boolean)).toHaveLength(1);
    const third = await download(app, org, url);
    expect(third.status).toBe(200);
    // Cancelled by the client: free again.
    await second.body!.cancel();
    const fourth = await download(app, org, url);
    expect(fourth.status).toBe(200);
    await Promise.all([third.text(), fourth.text()]);
  });

  test('a download that fails before streaming (unknown export) holds no slot', async () => {
    const app = appWith({ EXPORT_MAX_CONCURRENT_PER_ORG: '1' });
    const org = await createTenant(t);
    for (let i = 0; i < 3; i++) {
      const missing = await download(app, org, `/exports/orgs/me/${crypto.randomUUID()}`);
      expect(missing.status).toBe(404);
    }
    const ok = await download(app, org, await exportOf(org));
    expect(ok.status).toBe(200);
    await ok.text();
  });
});

// ---- Redis ----------------------------------------------------------------------------------------

const redisUp = await (async () => {
  const probe = new RedisClient(REDIS_URL, { connectionTimeout: 1000, autoReconnect: false });
  try {
    await probe.connect();
    return (await probe.send('PING', [])) === 'PONG';
  } catch {
    console.warn(`Redis is not reachable at ${REDIS_URL}: the Redis store tests are skipped.`);
    return false;
  } finally {
    probe.close();
  }
})();

describe.skipIf(!redisUp)('Redis store', () => {
  const prefix = `chatlogger-test:${unique()}:`;
  const stores: RedisStore[] = [];
  const store = () => {
    const created = new RedisStore(REDIS_URL, prefix);
    stores.push(created);
    return created;
  };
  let raw: RedisClient;
  beforeAll(async () => {
    raw = new RedisClient(REDIS_URL);
    await raw.connect();
  });
  afterAll(async () => {
    const keys = (await raw.send('KEYS', [`${prefix}*`])) as string[];
    if (keys.length) await raw.send('DEL', keys);
    raw.close();
    for (const s of stores) s.close();
  });

  test('counts in fixed windows under its key prefix, atomically', async () => {
    const s = store();
    const results = await Promise.all(Array.from({ length: 20 }, () => s.increment('w', 2000)));
    expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const r of results) expect(r.resetInMs).toBeWithin(1, 2001);
    expect(Number(await raw.send('GET', [`${prefix}w`]))).toBe(20);
    const ttl = (await raw.send('PTTL', [`${prefix}w`])) as number;
    expect(ttl).toBeWithin(1, 2001);
    expect((await s.peek('w'))!.count).toBe(20);
    expect(await s.peek('never')).toBeNull();

    await s.put('lock', 1, 1500);
    expect((await s.peek('lock'))!.resetInMs).toBeWithin(1, 1501);
    await s.delete('w', 'lock');
    expect(await s.peek('w')).toBeNull();
    expect(await s.peek('lock')).toBeNull();

    await s.increment('short', 100);
    await Bun.sleep(150);
    expect(await s.peek('short')).toBeNull();
    expect((await s.increment('short', 100)).count).toBe(1);
  });

  test('two app instances sharing Redis enforce one limit per key and one login lock', async () => {
    const env = { INGEST_RATE_LIMIT_PER_MINUTE: '4', LOGIN_MAX_FAILURES: '2', LOGIN_LOCK_SECONDS: '30' };
    const a = appWith(env, store());
    const b = appWith(env, store());
    const key = await newKey(tenant);
    const statuses = [];
    for (const app of [a, b, a, b, a, b]) statuses.push((await createChat(app, key)).status);
    expect(statuses).toEqual([201, 201, 201, 201, 429, 429]);

    const user = await addUser(t, tenant, 'user');
    expect((await login(a, user.email, 'wrong-password')).status).toBe(401);
    expect((await login(b, user.email, 'wrong-password')).status).toBe(401);
    await expectTooMany(await login(a, user.email, PASSWORD));
    await expectTooMany(await login(b, user.email, PASSWORD));
    // The store holds no email in clear.
    const keys = (await raw.send('KEYS', [`${prefix}login:*`])) as string[];
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(k).not.toContain(user.email);
  });

  test('guesses sent at once to two instances sharing Redis: at most LOGIN_MAX_FAILURES are checked', async () => {
    const env = { LOGIN_MAX_FAILURES: '5', LOGIN_LOCK_SECONDS: '30' };
    const a = appWith(env, store());
    const b = appWith(env, store());
    const user = await addUser(t, tenant, 'user');
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => login(i % 2 ? a : b, user.email, 'wrong-password')));
    expect(responses.map((r) => r.status).sort()).toEqual([...Array(5).fill(401), ...Array(15).fill(429)]);
    await expectTooMany(await login(a, user.email, PASSWORD));
    await expectTooMany(await login(b, user.email, PASSWORD));
  });

  test('incrementUnless counts nothing while the guard is set, atomically', async () => {
    const s = store();
    const results = await Promise.all(Array.from({ length: 10 }, () => s.incrementUnless('g', 'c', 2000)));
    expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(results.every((r) => !r.blocked)).toBe(true);
    await s.put('g', 1, 1500);
    const blocked = await s.incrementUnless('g', 'c', 2000);
    expect(blocked.blocked).toBe(true);
    expect(blocked.resetInMs).toBeWithin(1, 1501);
    expect((await s.peek('c'))!.count).toBe(10);
  });

  test('unreachable Redis: requests go through without limits, and a warning is logged', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    // Nothing listens on port 1.
    const down = new RedisStore('redis://127.0.0.1:1', prefix);
    stores.push(down);
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '1', LOGIN_MAX_FAILURES: '1' }, down, createLogger('warn', sink));
    const key = await newKey(tenant);
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const response = await createChat(app, key);
      expect(response.status).toBe(201);
      expect(response.headers.get('ratelimit-limit')).toBeNull();
    }
    // No request waits for Redis to time out (password hashing, below, is left out of the clock).
    expect(performance.now() - started).toBeLessThan(5000);
    const user = await addUser(t, tenant, 'user');
    expect((await login(app, user.email, 'wrong-password')).status).toBe(401);
    expect((await login(app, user.email, PASSWORD)).status).toBe(200);
    const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((l) => l.level === 40);
    // Logged once, not once per request.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('without limits');
  });

  test.skipIf(!Bun.which('redis-server'))('a Redis that goes away and comes back: fail open, then limits again', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const start = async () => {
      const proc = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' });
      for (let i = 0; i < 50; i++) {
        await Bun.sleep(50);
        const probe = new RedisClient(`redis://127.0.0.1:${port}`, { autoReconnect: false, connectionTimeout: 200 });
        const ok = await probe.connect().then(() => true, () => false);
        probe.close();
        if (ok) return proc;
      }
      throw new Error('redis-server did not start');
    };
    let server = await start();
    const s = new RedisStore(`redis://127.0.0.1:${port}`, prefix);
    stores.push(s);
    const app = appWith({ INGEST_RATE_LIMIT_PER_MINUTE: '1' }, s);
    const key = await newKey(tenant);
    try {
      expect((await createChat(app, key)).status).toBe(201);
      expect((await createChat(app, key)).status).toBe(429);

      server.kill();
      await server.exited;
      for (let i = 0; i < 2; i++) expect((await createChat(app, key)).status).toBe(201);

      server = await start();
      // Reconnection is attempted at most every 2 s.
      await Bun.sleep(2100);
      expect((await createChat(app, key)).status).toBe(201);
      expect((await createChat(app, key)).status).toBe(429);
    } finally {
      server.kill();
      await server.exited;
    }
  });
});
