import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { checkResponse } from './support/contract.ts';
import { addUser, BASE_URL, createTenant, createTestApp, PASSWORD, unique, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const COOKIE = 'chatlogger_session';
const SELF = BASE_URL; // http://chatlogger.test
const TRUSTED = 'https://dashboard.example.com';
const EVIL = 'https://evil.example';

let t: TestApp;
let trusting: TestApp;
let tenant: Tenant;
beforeAll(async () => {
  t = await createTestApp();
  trusting = await createTestApp({ TRUSTED_ORIGINS: `${TRUSTED}, http://localhost:5173` }, t.db);
  tenant = await createTenant(t);
});

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toStartWith('application/problem+json');
  const body = (await response.json()) as { status: number; type: string; detail?: string };
  expect(body.status).toBe(status);
  return body;
}

describe('CSRF: cookie-authenticated changes from another site are refused', () => {
  const patchMe = (app: TestApp, cookieOrToken: { cookie?: string; token?: string }, headers: Record<string, string>, firstName = unique('n')) =>
    app.fetch('/users/me', {
      method: 'PATCH',
      headers: {
        'content-type': 'application/json',
        ...(cookieOrToken.cookie ? { cookie: `${COOKIE}=${cookieOrToken.cookie}` } : {}),
        ...(cookieOrToken.token ? { authorization: `Bearer ${cookieOrToken.token}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ firstName }),
    });
  const firstNameOf = async (token: string) => (await t.client({ token }).GET('/users/me')).data!.firstName;

  test('an Origin of another site is a 403 problem, and nothing changes', async () => {
    const user = await addUser(t, tenant, 'user');
    // The same host over another scheme is another origin.
    for (const origin of [EVIL, 'http://chatlogger.test.evil.example', 'http://chatlogger.test:8443', 'null', 'https://chatlogger.test', 'ws://chatlogger.test']) {
      const body = await expectProblem(await patchMe(t, { cookie: user.token }, { origin }, 'Mallory'), 403);
      expect(body.type).toBe('/problems/forbidden');
    }
    expect(await firstNameOf(user.token)).toBeNull();
  });

  test('the same origin and TRUSTED_ORIGINS pass', async () => {
    const user = await addUser(t, tenant, 'user');
    expect((await patchMe(t, { cookie: user.token }, { origin: SELF })).status).toBe(200);
    expect((await patchMe(trusting, { cookie: user.token }, { origin: TRUSTED })).status).toBe(200);
    // Trusted by the other app only.
    await expectProblem(await patchMe(t, { cookie: user.token }, { origin: TRUSTED }), 403);
  });

  test('without Origin, Sec-Fetch-Site decides: cross-site and same-site are refused, same-origin and none pass', async () => {
    const user = await addUser(t, tenant, 'user');
    await expectProblem(await patchMe(t, { cookie: user.token }, { 'sec-fetch-site': 'cross-site' }), 403);
    await expectProblem(await patchMe(t, { cookie: user.token }, { 'sec-fetch-site': 'same-site' }), 403);
    expect((await patchMe(t, { cookie: user.token }, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await patchMe(t, { cookie: user.token }, { 'sec-fetch-site': 'none' })).status).toBe(200);
  });

  test('requests without Origin or Sec-Fetch-Site (not a browser) are not affected', async () => {
    const user = await addUser(t, tenant, 'user');
    const name = unique('n');
    expect((await patchMe(t, { cookie: user.token }, {}, name)).status).toBe(200);
    expect(await firstNameOf(user.token)).toBe(name);
  });

  test('bearer tokens are not affected, even from another site', async () => {
    const user = await addUser(t, tenant, 'user');
    expect((await patchMe(t, { token: user.token }, { origin: EVIL })).status).toBe(200);
    // A bearer token with a cookie present: the bearer authenticates, so no CSRF check.
    expect((await patchMe(t, { token: user.token, cookie: user.token }, { origin: EVIL })).status).toBe(200);
  });

  test('reads are not affected; a cross-site logout is refused and the session survives', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const cookie = `${COOKIE}=${user.token}`;
    const read = await t.fetch('/users/me', { headers: { cookie, origin: EVIL } });
    expect(read.status).toBe(200);
    const logout = await t.fetch('/auth/logout', { method: 'POST', headers: { cookie, origin: EVIL } });
    await checkResponse('POST', '/auth/logout', logout);
    await expectProblem(logout, 403);
    expect((await t.fetch('/users/me', { headers: { cookie } })).status).toBe(200);
    const deleteFromElsewhere = await t.fetch(`/orgs/me/apikeys/${tenant.apiKeyId}`, { method: 'DELETE', headers: { cookie: `${COOKIE}=${tenant.adminToken}`, 'sec-fetch-site': 'cross-site' } });
    await expectProblem(deleteFromElsewhere, 403);
    expect((await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: {} })).response.status).toBe(201);
  });

  test('behind a trusted proxy, X-Forwarded-Host is the host; otherwise it is ignored', async () => {
    const user = await addUser(t, tenant, 'user');
    const proxied = await createTestApp({ TRUST_PROXY: 'true' }, t.db);
    const headers = { origin: 'https://chat.example.com', 'x-forwarded-host': 'chat.example.com', 'x-forwarded-proto': 'https' };
    expect((await patchMe(proxied, { cookie: user.token }, headers)).status).toBe(200);
    await expectProblem(await patchMe(t, { cookie: user.token }, headers), 403);
    // The scheme the proxy was addressed with counts too.
    await expectProblem(await patchMe(proxied, { cookie: user.token }, { ...headers, 'x-forwarded-proto': 'http' }), 403);
    await expectProblem(await patchMe(proxied, { cookie: user.token }, { ...headers, origin: 'http://chat.example.com' }), 403);
  });

  test('ingestion routes ignore the session cookie and are not affected', async () => {
    const response = await t.fetch(`/api/v1/orgs/${tenant.slug}/chats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-organization-api-key': tenant.apiKey, cookie: `${COOKIE}=${tenant.adminToken}`, origin: EVIL },
      body: '{}',
    });
    expect(response.status).toBe(201);
  });
});

describe('CORS for the ingestion API: per API key', () => {
  const SHOP = 'https://shop.example.com';
  async function keyFor(org: Tenant, allowedOrigins?: string[]) {
    const { data, response } = await t
      .client({ token: org.adminToken })
      .POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: unique('k'), ...(allowedOrigins ? { allowedOrigins } : {}) } });
    expect(response.status).toBe(201);
    return data!;
  }
  const ingest = (org: Tenant, key: string, headers: Record<string, string>, body: object = {}) =>
    t.fetch(`/api/v1/orgs/${org.slug}/chats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-organization-api-key': key, ...headers },
      body: JSON.stringify(body),
    });
  const preflight = (slug: string, origin: string, path = 'chats') =>
    t.fetch(`/api/v1/orgs/${slug}/${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-organization-api-key' },
    });

  test('allowedOrigins are stored in canonical form and listed; an absent list is empty', async () => {
    const org = await createTenant(t);
    const key = await keyFor(org, ['https://Shop.Example.com', 'http://localhost:3000', 'https://shop.example.com:443']);
    expect(key.allowedOrigins).toEqual([SHOP, 'http://localhost:3000']);
    expect((await keyFor(org)).allowedOrigins).toEqual([]);
    const { data } = await t.client({ token: org.adminToken }).GET('/orgs/{org}/apikeys', { params: { path: { org: 'me' } } });
    expect(data!.items.find((k) => k.id === key.id)!.allowedOrigins).toEqual([SHOP, 'http://localhost:3000']);
  });

  test('anything but exact origins is a 422 naming each', async () => {
    const response = await t.fetch('/orgs/me/apikeys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tenant.adminToken}` },
      body: JSON.stringify({ label: 'x', allowedOrigins: [SHOP, 'https://shop.example.com/', '*.example.com', 'https://*.example.com', 'ftp://files.example.com', 'https://user@shop.example.com', 'shop.example.com', 'null'] }),
    });
    const body = (await expectProblem(response, 422)) as unknown as { errors: { pointer: string }[] };
    expect(body.errors.map((e) => e.pointer)).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `/body/allowedOrigins/${i}`));
    const tooMany = await t.fetch('/orgs/me/apikeys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tenant.adminToken}` },
      body: JSON.stringify({ label: 'x', allowedOrigins: Array.from({ length: 51 }, (_, i) => `https://s${i}.example.com`) }),
    });
    await expectProblem(tooMany, 422);
  });

  test('a listed origin gets Access-Control-Allow-Origin and Vary: Origin; another origin is a 403 and nothing is written', async () => {
    const org = await createTenant(t);
    const key = await keyFor(org, [SHOP]);
    const ok = await ingest(org, key.key, { origin: SHOP });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(ok.headers.get('vary')).toContain('Origin');
    expect(ok.headers.get('access-control-expose-headers')).toContain('ratelimit-remaining');
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();

    const id = crypto.randomUUID();
    const refused = await ingest(org, key.key, { origin: EVIL }, { id });
    await checkResponse('POST', '/api/v1/orgs/{slug}/chats', refused);
    const body = await expectProblem(refused, 403);
    expect(body.detail).toContain(EVIL);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const read = await t.client({ token: org.adminToken }).GET('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: id } } });
    expect(read.response.status).toBe(404);
  });

  test('without Origin (a server) the key works and gets no CORS headers; a key without origins accepts any', async () => {
    const org = await createTenant(t);
    const restricted = await keyFor(org, [SHOP]);
    const server = await ingest(org, restricted.key, {});
    expect(server.status).toBe(201);
    expect(server.headers.get('access-control-allow-origin')).toBeNull();
    const open = await ingest(org, org.apiKey, { origin: EVIL });
    expect(open.status).toBe(201);
    expect(open.headers.get('access-control-allow-origin')).toBe(EVIL);
  });

  test('errors after the key is checked carry the CORS headers, so the page can read them', async () => {
    const org = await createTenant(t);
    const key = await keyFor(org, [SHOP]);
    const invalid = await ingest(org, key.key, { origin: SHOP }, { title: 42 });
    expect(invalid.status).toBe(422);
    expect(invalid.headers.get('access-control-allow-origin')).toBe(SHOP);
  });

  test('a preflight answers the same for every slug and origin: it tells nothing about organizations or keys', async () => {
    const restricted = await createTenant(t);
    // The tenant's own key accepts any origin: revoke it so only a restricted key remains.
    await t.client({ token: restricted.adminToken }).DELETE('/orgs/{org}/apikeys/{keyId}', { params: { path: { org: 'me', keyId: restricted.apiKeyId } } });
    await keyFor(restricted, [SHOP]);
    const open = await createTenant(t);
    const answers = [];
    for (const [slug, origin] of [
      [restricted.slug, SHOP],
      [restricted.slug, EVIL],
      [open.slug, EVIL],
      [`nope-${unique()}`, SHOP],
      [`nope-${unique()}`, EVIL],
    ] as const) {
      const response = await preflight(slug, origin, `chats/${crypto.randomUUID()}/messages/batch`);
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe(origin);
      expect(response.headers.get('access-control-allow-methods')).toContain('POST');
      expect(response.headers.get('access-control-allow-headers')!.split(/,\s*/).sort()).toEqual(['content-type', 'x-organization-api-key', 'x-request-id']);
      expect(response.headers.get('access-control-max-age')).toBe('600');
      expect(response.headers.get('vary')).toContain('Origin');
      answers.push([...response.headers.entries()].filter(([name]) => name.startsWith('access-control-max') || name === 'access-control-allow-methods' || name === 'access-control-allow-headers'));
    }
    for (const answer of answers) expect(answer).toEqual(answers[0]!);
  });

  test('the request itself is held to its own key: another origin is a 403 without CORS headers', async () => {
    const org = await createTenant(t);
    const key = await keyFor(org, [SHOP]);
    const refused = await ingest(org, key.key, { origin: EVIL }, {});
    await expectProblem(refused, 403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const ok = await ingest(org, key.key, { origin: SHOP }, {});
    expect(ok.status).toBe(201);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SHOP);
  });
});

describe('CORS for the dashboard API: TRUSTED_ORIGINS only', () => {
  const dashboardPreflight = (app: TestApp, origin: string) =>
    app.fetch('/orgs/me/chats', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type' } });

  test('a trusted origin gets CORS headers with credentials; others get none', async () => {
    const headers = { authorization: `Bearer ${tenant.adminToken}` };
    const trusted = await trusting.fetch('/users/me', { headers: { ...headers, origin: 'http://localhost:5173' } });
    expect(trusted.status).toBe(200);
    expect(trusted.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(trusted.headers.get('access-control-allow-credentials')).toBe('true');
    expect(trusted.headers.get('access-control-expose-headers')).toContain('content-disposition');
    const other = await trusting.fetch('/users/me', { headers: { ...headers, origin: EVIL } });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('vary')).toContain('Origin');
    // Errors of a trusted origin are readable too.
    const unauthorized = await trusting.fetch('/users/me', { headers: { origin: TRUSTED } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(TRUSTED);
  });

  test('preflights: 204 for a trusted origin, 403 for any other; OPTIONS that is not a preflight is a 405', async () => {
    const ok = await dashboardPreflight(trusting, TRUSTED);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(TRUSTED);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-methods')).toContain('PATCH');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    await expectProblem(await dashboardPreflight(trusting, EVIL), 403);
    await expectProblem(await dashboardPreflight(t, TRUSTED), 403);
    const options = await t.fetch('/users/me', { method: 'OPTIONS' });
    await expectProblem(options, 405);
    expect(options.headers.get('allow')).toBe('GET, PATCH');
  });

  test('TRUSTED_ORIGINS must list exact origins', async () => {
    await expect(createTestApp({ TRUSTED_ORIGINS: 'https://ok.example.com,https://bad.example.com/path' }, t.db)).rejects.toThrow(/TRUSTED_ORIGINS/);
    await expect(createTestApp({ TRUSTED_ORIGINS: '*' }, t.db)).rejects.toThrow(/TRUSTED_ORIGINS/);
  });
});

describe('security headers', () => {
  const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
  function expectCommon(response: Response) {
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('server')).toBeNull();
  }

  test('on answers, problems and unknown routes, with the strict API policy', async () => {
    const responses = [
      await t.fetch('/health'),
      await t.fetch('/users/me', { headers: { authorization: `Bearer ${tenant.adminToken}` } }),
      await t.fetch('/users/me'),
      await t.fetch('/no/such/route'),
      await t.fetch('/users/me', { method: 'PATCH', headers: { 'content-type': 'application/json', authorization: `Bearer ${tenant.adminToken}` }, body: '{"x":1}' }),
      await t.fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json', 'x-big': 'a'.repeat(20_000) }, body: '{}' }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 401, 404, 422, 431]);
    for (const response of responses) {
      expectCommon(response);
      expect(response.headers.get('content-security-policy')).toBe(API_CSP);
      expect(response.headers.get('strict-transport-security')).toBeNull();
    }
  });

  test('Strict-Transport-Security over HTTPS (directly or through a proxy) and always in production', async () => {
    const direct = await t.app.handle(new Request('https://chatlogger.test/health'));
    expect(direct.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const proxied = await t.fetch('/health', { headers: { 'x-forwarded-proto': 'https' } });
    expect(proxied.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const production = await createTestApp({ NODE_ENV: 'production' }, t.db);
    expect((await production.fetch('/no/such/route')).headers.get('strict-transport-security')).toBe('max-age=31536000');
  });

  test('the Swagger UI page may run its local assets and its own inline script, by hash, and nothing else', async () => {
    const response = await t.fetch('/swagger');
    expect(response.status).toBe(200);
    expectCommon(response);
    const csp = response.headers.get('content-security-policy')!;
    const html = await response.text();
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(directives['default-src']).toEqual(["'none'"]);
    expect(directives['connect-src']).toEqual(["'self'"]);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    const inlineScripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(inlineScripts.length).toBeGreaterThan(0);
    for (const script of inlineScripts) {
      const hash = `'sha256-${new Bun.CryptoHasher('sha256').update(script).digest('base64')}'`;
      expect(directives['script-src']).toContain(hash);
    }
    expect(directives['script-src']![0]).toBe("'self'");
    const asset = await t.fetch('/swagger/assets/swagger-ui.css');
    expect(asset.headers.get('content-security-policy')).toStartWith("default-src 'none'; script-src 'self'; style-src 'self'");
  });

  test('the /app pages get the dashboard policy', async () => {
    for (const path of ['/app', '/app/orgs/acme/chats', '/app/assets/missing.js']) {
      const response = await t.fetch(path);
      expect(response.headers.get('content-security-policy')).toStartWith(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
      );
      expectCommon(response);
    }
    expect((await t.fetch('/application')).headers.get('content-security-policy')).toBe(API_CSP);
  });
});

describe('request header limits', () => {
  test('headers over MAX_HEADER_BYTES, or more than 100 of them, are a 431 problem', async () => {
    const small = await createTestApp({ MAX_HEADER_BYTES: '2048' }, t.db);
    expect((await small.fetch('/health', { headers: { 'x-pad': 'a'.repeat(1500) } })).status).toBe(200);
    const body = await expectProblem(await small.fetch('/health', { headers: { 'x-pad': 'a'.repeat(2100) } }), 431);
    expect(body.type).toBe('/problems/headers-too-large');
    const many: Record<string, string> = {};
    for (let i = 0; i < 101; i++) many[`x-h${i}`] = 'v';
    await expectProblem(await t.fetch('/health', { headers: many }), 431);
    const fewer = Object.fromEntries(Object.entries(many).slice(0, 90));
    expect((await t.fetch('/health', { headers: fewer })).status).toBe(200);
  });

  test('MAX_HEADER_BYTES stays below the server\'s own limit', async () => {
    await expect(createTestApp({ MAX_HEADER_BYTES: '65536' }, t.db)).rejects.toThrow(/MAX_HEADER_BYTES/);
  });

  test('on a real server: the app answers 431 problem+json, Bun refuses above 16 KiB, and the server keeps serving', async () => {
    const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (request) => t.app.handle(request) });
    try {
      const url = `http://127.0.0.1:${server.port}/health`;
      const byApp = await fetch(url, { headers: { 'x-pad': 'a'.repeat(13_000) } });
      await expectProblem(byApp, 431);
      expect(byApp.headers.get('x-content-type-options')).toBe('nosniff');
      const byBun = await fetch(url, { headers: { 'x-pad': 'a'.repeat(100_000) } });
      expect(byBun.status).toBe(431);
      const after = await fetch(url);
      expect(after.status).toBe(200);
      expect(after.headers.get('server')).toBeNull();
      expect(after.headers.get('x-powered-by')).toBeNull();
      // A login over the network still works after both refusals.
      const user = await addUser(t, tenant, 'viewer');
      const login = await fetch(`http://127.0.0.1:${server.port}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: user.email, password: PASSWORD }),
      });
      expect(login.status).toBe(200);
    } finally {
      await server.stop(true);
    }
  });
});
