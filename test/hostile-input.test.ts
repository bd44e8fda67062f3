/**
 * Inputs the fuzzer (test/fuzz.test.ts) found answered with a 5xx, or with the wrong resource,
 * kept here as plain cases: each must be a client error, as a problem.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { createTenant, createTestApp, superadminToken, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

let t: TestApp;
let tenant: Tenant;
let root: string;

beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
  root = await superadminToken(t);
});

async function problem(path: string, init: RequestInit = {}) {
  const response = await t.fetch(path, init);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as { status: number; type: string };
  expect(body.status).toBe(response.status);
  return { status: response.status, type: body.type };
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

async function signed(claims: Record<string, unknown>): Promise<string> {
  const b64 = (data: string | ArrayBuffer) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : new Uint8Array(data)).toString('base64url');
  const head = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
  const key = await crypto.subtle.importKey('raw', Buffer.from(t.config.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `${head}.${b64(await crypto.subtle.sign('HMAC', key, Buffer.from(head)))}`;
}

describe('path parameters that cannot name anything are a 404', () => {
  test('a NUL character (PostgreSQL refused the query: it was a 503)', async () => {
    expect(await problem('/orgs/a%00b/users', bearer(root))).toEqual({ status: 404, type: '/problems/not-found' });
    expect(await problem(`/api/v1/orgs/${tenant.slug}%00/chats`, { method: 'POST', headers: { 'x-organization-api-key': tenant.apiKey, 'content-type': 'application/json' }, body: '{}' })).toMatchObject({ status: 404 });
  });

  test("invalid percent-encoding (the route fell back to the caller's own organization)", async () => {
    for (const ref of ['%ZZ', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%FF']) {
      expect(await problem(`/orgs/${ref}/users`, bearer(tenant.adminToken))).toEqual({ status: 404, type: '/problems/not-found' });
      expect(await problem(`/orgs/${ref}`, bearer(root))).toEqual({ status: 404, type: '/problems/not-found' });
    }
    // Valid encodings still work.
    expect((await t.fetch(`/orgs/${encodeURIComponent(tenant.slug)}/users`, bearer(tenant.adminToken))).status).toBe(200);
  });
});

describe('cursors and query values are checked before they reach SQL', () => {
  test('a forged cursor holding a NUL character is a 422 (it was a 503)', async () => {
    for (const path of ['/orgs', '/orgs/me/users']) {
      expect(await problem(`${path}?cursor=${cursorOf(['a\u0000b'])}`, bearer(root))).toEqual({ status: 422, type: '/problems/validation' });
    }
  });

  test('a NUL character in a query value is a 422', async () => {
    expect(await problem('/orgs/me/chats?q=a%00b', bearer(tenant.adminToken))).toEqual({ status: 422, type: '/problems/validation' });
    expect(await problem('/orgs/me/chats?externalUserId=%00', bearer(tenant.adminToken))).toEqual({ status: 422, type: '/problems/validation' });
  });
});

describe('session tokens', () => {
  test('a validly signed token whose ids are not UUIDs is a 401 (it was a 500)', async () => {
    const claims = { iss: t.config.jwtIssuer, aud: t.config.jwtAudience, exp: Math.floor(Date.now() / 1000) + 600 };
    for (const ids of [{ sub: 'x', sid: 'y' }, { sub: "' OR 1=1 --", sid: crypto.randomUUID() }, { sub: crypto.randomUUID(), sid: 'a\u0000' }]) {
      const token = await signed({ ...claims, ...ids });
      expect(await problem('/users/me', bearer(token))).toEqual({ status: 401, type: '/problems/unauthorized' });
      expect(await problem('/users/me', { headers: { cookie: `chatlogger_session=${token}` } })).toEqual({ status: 401, type: '/problems/unauthorized' });
    }
  });
});

describe('deeply nested bodies', () => {
  const post = (body: string) =>
    t.fetch(`/api/v1/orgs/${tenant.slug}/chats`, { method: 'POST', headers: { 'x-organization-api-key': tenant.apiKey, 'content-type': 'application/json' }, body });
  const depthError = async (response: Response) => {
    expect(response.status).toBe(422);
    const body = (await response.json()) as { errors?: { pointer: string; message: string }[] };
    return body.errors?.find((e) => e.pointer === '/body')?.message;
  };
  const arrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
  const objects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

  test('64 levels reach validation; 65 levels are refused as too deep, in arrays and objects alike', async () => {
    expect(await depthError(await post(arrays(64)))).not.toBe('is nested deeper than 64 levels');
    expect(await depthError(await post(objects(64)))).not.toBe('is nested deeper than 64 levels');
    expect(await depthError(await post(arrays(65)))).toBe('is nested deeper than 64 levels');
    expect(await depthError(await post(`{"metadata":{"k":[1,"x",${objects(63)}]}}`))).toBe('is nested deeper than 64 levels');
  });

  test('a body nested 100,000 levels is a client error, not a crash', async () => {
    const response = await post(arrays(100_000));
    expect([400, 422]).toContain(response.status);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });
});
