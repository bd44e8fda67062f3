import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { addUser, createTenant, createTestApp, login, PASSWORD, superadminToken, unique, type Tenant, type TestApp } from './support/harness.ts';

setDefaultTimeout(30_000);

let t: TestApp;
let tenant: Tenant;
let other: Tenant;
let rootToken: string;
beforeAll(async () => {
  t = await createTestApp();
  [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
  rootToken = await superadminToken(t);
});

const root = () => t.client({ token: rootToken });
const as = (token: string) => t.client({ token });
const orgPath = (org: string) => ({ params: { path: { org } } });
const keyPath = (org: string, keyId: string) => ({ params: { path: { org, keyId } } });

const rawPost = (path: string, token: string, body: unknown) =>
  t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

async function problemOf(response: Response) {
  expect(response.headers.get('content-type')).toStartWith('application/problem+json');
  return (await response.json()) as { status: number; title: string; detail?: string; errors?: { pointer: string; message: string }[] };
}

async function expect422(response: Response, pointer: string) {
  expect(response.status).toBe(422);
  const problem = await problemOf(response);
  expect(problem.errors?.map((e) => e.pointer)).toContain(pointer);
}

const newEmail = (label = 'u') => `${label}-${unique()}@example.test`;

async function ingestStatus(slug: string, apiKey: string) {
  const { response } = await t.client({ apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug } }, body: {} });
  return response.status;
}

async function myId(token: string) {
  const { data } = await as(token).GET('/users/me');
  return data!.id;
}

describe('POST /orgs', () => {
  test('a superadmin creates an organization', async () => {
    const slug = unique('org-');
    const { data, response } = await root().POST('/orgs', { body: { name: ' Acme Inc ', slug } });
    expect(response.status).toBe(201);
    expect(data!.slug).toBe(slug);
    expect(data!.name).toBe('Acme Inc');
    expect(data!.active).toBe(true);
  });

  test('admins, users and viewers are forbidden', async () => {
    const user = await addUser(t, tenant, 'user');
    const viewer = await addUser(t, tenant, 'viewer');
    for (const token of [tenant.adminToken, user.token, viewer.token]) {
      const slug = unique('org-');
      const { response, error } = await as(token).POST('/orgs', { body: { name: 'Nope', slug } });
      expect(response.status).toBe(403);
      expect(error!.status).toBe(403);
    }
  });

  test('without a session it is a 401', async () => {
    const { response } = await t.client().POST('/orgs', { body: { name: 'Nope', slug: unique('org-') } });
    expect(response.status).toBe(401);
  });

  test('a taken slug is a 409', async () => {
    const slug = unique('org-');
    expect((await root().POST('/orgs', { body: { name: 'First', slug } })).response.status).toBe(201);
    const { response, error } = await root().POST('/orgs', { body: { name: 'Second', slug } });
    expect(response.status).toBe(409);
    expect(error!.status).toBe(409);
  });

  test('the same slug created 8 times at once: one 201, the others 409', async () => {
    const slug = unique('org-');
    const attempts = Array.from({ length: 8 }, (_, n) => rawPost('/orgs', rootToken, { name: `Race ${n}`, slug }));
    const statuses = (await Promise.all(attempts)).map((r) => r.status);
    expect(statuses.sort()).toEqual([201, ...Array<number>(7).fill(409)]);
  });

  test('the slug "me" is reserved', async () => {
    const { response } = await root().POST('/orgs', { body: { name: 'Me', slug: 'me' } });
    expect(response.status).toBe(409);
  });

  test.each([
    ['uppercase', 'Acme-org'],
    ['leading hyphen', '-acme'],
    ['trailing hyphen', 'acme-'],
    ['one character', 'a'],
    ['64 characters', 'a'.repeat(64)],
    ['spaces', 'acme org'],
    ['empty', ''],
  ])('an invalid slug (%s) is a 422', async (_, slug) => {
    await expect422(await rawPost('/orgs', rootToken, { name: 'Bad', slug }), '/body/slug');
  });

  test('a 63-character slug is accepted', async () => {
    const slug = unique('s').padEnd(63, 'x');
    const { data, response } = await root().POST('/orgs', { body: { name: 'Long', slug } });
    expect(response.status).toBe(201);
    expect(data!.slug).toBe(slug);
  });

  test('a missing name is a 422', async () => {
    await expect422(await rawPost('/orgs', rootToken, { slug: unique('org-') }), '/body/name');
  });

  test('an unknown field is a 422', async () => {
    await expect422(await rawPost('/orgs', rootToken, { name: 'X', slug: unique('org-'), plan: 'gold' }), '/body/plan');
  });
});

describe('POST /orgs/{org}/users', () => {
  test('an admin adds a user to their own organization via "me"', async () => {
    const email = newEmail();
    const { data, response } = await as(tenant.adminToken).POST('/orgs/{org}/users', {
      ...orgPath('me'),
      body: { email, password: PASSWORD, role: 'user', firstName: ' Grace ', lastName: 'Hopper' },
    });
    expect(response.status).toBe(201);
    expect(data!.email).toBe(email);
    expect(data!.role).toBe('user');
    expect(data!.organizationId).toBe(tenant.orgId);
    expect(data!.organizationSlug).toBe(tenant.slug);
    expect(data!.firstName).toBe('Grace');
    expect(data!.active).toBe(true);
    expect(data!.lastLoginAt).toBeNull();
  });

  test('an admin adds a user to their own organization via its slug', async () => {
    const { data, response } = await as(tenant.adminToken).POST('/orgs/{org}/users', {
      ...orgPath(tenant.slug),
      body: { email: newEmail(), password: PASSWORD, role: 'viewer' },
    });
    expect(response.status).toBe(201);
    expect(data!.organizationId).toBe(tenant.orgId);
  });

  test("another organization's slug is a 404 for an admin, like one that does not exist", async () => {
    const body = { email: newEmail(), password: PASSWORD, role: 'user' };
    const foreign = await rawPost(`/orgs/${other.slug}/users`, tenant.adminToken, body);
    const missing = await rawPost(`/orgs/${unique('nope-')}/users`, tenant.adminToken, body);
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(await problemOf(foreign)).toEqual(await problemOf(missing));
    expect((await t.client().POST('/auth/login', { body: { email: body.email, password: PASSWORD } })).response.status).toBe(401);
  });

  test('a superadmin adds a user to any organization', async () => {
    const { data, response } = await root().POST('/orgs/{org}/users', {
      ...orgPath(other.slug),
      body: { email: newEmail(), password: PASSWORD, role: 'admin' },
    });
    expect(response.status).toBe(201);
    expect(data!.organizationId).toBe(other.orgId);
    expect(data!.organizationSlug).toBe(other.slug);
  });

  test('a superadmin naming an unknown organization gets a 404', async () => {
    const { response } = await root().POST('/orgs/{org}/users', {
      ...orgPath(unique('nope-')),
      body: { email: newEmail(), password: PASSWORD, role: 'user' },
    });
    expect(response.status).toBe(404);
  });

  test('only a superadmin may grant the superadmin role', async () => {
    const denied = await as(tenant.adminToken).POST('/orgs/{org}/users', {
      ...orgPath('me'),
      body: { email: newEmail(), password: PASSWORD, role: 'superadmin' },
    });
    expect(denied.response.status).toBe(403);

    const granted = await root().POST('/orgs/{org}/users', {
      ...orgPath(tenant.slug),
      body: { email: newEmail(), password: PASSWORD, role: 'superadmin' },
    });
    expect(granted.response.status).toBe(201);
    expect(granted.data!.role).toBe('superadmin');
  });

  test('an email in use in the organization is a 409, also in another case', async () => {
    const email = newEmail();
    const api = as(tenant.adminToken);
    expect((await api.POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: PASSWORD, role: 'user' } })).response.status).toBe(201);
    const same = await api.POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: PASSWORD, role: 'user' } });
    expect(same.response.status).toBe(409);
    const upper = await api.POST('/orgs/{org}/users', { ...orgPath('me'), body: { email: email.toUpperCase(), password: PASSWORD, role: 'user' } });
    expect(upper.response.status).toBe(409);
  });

  test("accounts belong to one organization: another tenant's emails (the superadmin's too) are free and tell nothing", async () => {
    const email = newEmail();
    expect((await as(tenant.adminToken).POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: PASSWORD, role: 'user' } })).response.status).toBe(201);
    // The same email in another organization is another account, with its own password.
    const elsewhere = await as(other.adminToken).POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: 'another-password-2', role: 'admin' } });
    expect(elsewhere.response.status).toBe(201);
    const rootEmail = (await as(await superadminToken(t)).GET('/users/me')).data!.email;
    expect((await as(other.adminToken).POST('/orgs/{org}/users', { ...orgPath('me'), body: { email: rootEmail, password: 'squatter-password-3', role: 'user' } })).response.status).toBe(201);

    // Login picks the account whose password matches.
    const first = await t.client().POST('/auth/login', { body: { email, password: PASSWORD } });
    expect(first.data!.user.organizationId).toBe(tenant.orgId);
    const second = await t.client().POST('/auth/login', { body: { email, password: 'another-password-2' } });
    expect(second.data!.user.organizationId).toBe(other.orgId);
    expect(second.data!.user.role).toBe('admin');
    expect((await t.client().POST('/auth/login', { body: { email, password: 'neither-password' } })).response.status).toBe(401);
    // The squatter's account does not get the superadmin's rights, nor block the superadmin.
    const squatter = await t.client().POST('/auth/login', { body: { email: rootEmail, password: 'squatter-password-3' } });
    expect(squatter.data!.user.role).toBe('user');
    expect(squatter.data!.user.organizationId).toBe(other.orgId);
    expect((await as(await superadminToken(t)).GET('/users/me')).data!.role).toBe('superadmin');
  });

  test('the same email created twice at once: one 201, one 409', async () => {
    const body = { email: newEmail(), password: PASSWORD, role: 'user' };
    const responses = await Promise.all([1, 2].map(() => rawPost('/orgs/me/users', tenant.adminToken, body)));
    expect(responses.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  test('users and viewers are forbidden', async () => {
    for (const role of ['user', 'viewer'] as const) {
      const member = await addUser(t, tenant, role);
      const { response } = await as(member.token).POST('/orgs/{org}/users', {
        ...orgPath('me'),
        body: { email: newEmail(), password: PASSWORD, role: 'viewer' },
      });
      expect(response.status).toBe(403);
    }
  });

  test('an invalid email is a 422', async () => {
    await expect422(await rawPost('/orgs/me/users', tenant.adminToken, { email: 'not-an-email', password: PASSWORD, role: 'user' }), '/body/email');
  });

  test('a password under 8 characters is a 422', async () => {
    await expect422(await rawPost('/orgs/me/users', tenant.adminToken, { email: newEmail(), password: 'short', role: 'user' }), '/body/password');
  });

  test('an unknown role is a 422', async () => {
    await expect422(await rawPost('/orgs/me/users', tenant.adminToken, { email: newEmail(), password: PASSWORD, role: 'owner' }), '/body/role');
  });

  test('the new user can log in and sees their organization and role', async () => {
    const email = newEmail();
    await as(tenant.adminToken).POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: PASSWORD, role: 'viewer' } });
    const token = await login(t, email, PASSWORD);
    const { data, response } = await as(token).GET('/users/me');
    expect(response.status).toBe(200);
    expect(data!.email).toBe(email);
    expect(data!.organizationSlug).toBe(tenant.slug);
    expect(data!.organizationId).toBe(tenant.orgId);
    expect(data!.role).toBe('viewer');
    expect(data!.lastLoginAt).not.toBeNull();
  });
});

describe('API keys', () => {
  const createKey = (token: string, org: string, body: { label: string; expiresAt?: string | null }) =>
    as(token).POST('/orgs/{org}/apikeys', { ...orgPath(org), body });
  const listKeys = async (token: string, org: string) => {
    const { data, response } = await as(token).GET('/orgs/{org}/apikeys', orgPath(org));
    expect(response.status).toBe(200);
    return data!.items;
  };
  const revokeKey = async (token: string, org: string, keyId: string) =>
    (await as(token).DELETE('/orgs/{org}/apikeys/{keyId}', keyPath(org, keyId))).response.status;

  test('creating a key returns the raw key once, with its prefix and creator', async () => {
    const { data, response } = await createKey(tenant.adminToken, 'me', { label: ' widget ' });
    expect(response.status).toBe(201);
    expect(data!.key).toStartWith('clk_');
    expect(data!.key.length).toBeGreaterThan(20);
    expect(data!.prefix).toBe(data!.key.slice(0, 12));
    expect(data!.createdBy).toBe(await myId(tenant.adminToken));
    expect(data!.label).toBe('widget');
    expect(data!.expiresAt).toBeNull();
    expect(data!.revokedAt).toBeNull();
    expect(await ingestStatus(tenant.slug, data!.key)).toBe(201);
  });

  test('using a key records lastUsedAt', async () => {
    const { data: key } = await createKey(tenant.adminToken, 'me', { label: 'used' });
    expect(await ingestStatus(tenant.slug, key!.key)).toBe(201);
    let lastUsedAt: string | null = null;
    for (let i = 0; i < 20 && !lastUsedAt; i++) {
      await Bun.sleep(50);
      lastUsedAt = (await listKeys(tenant.adminToken, 'me')).find((k) => k.id === key!.id)!.lastUsedAt;
    }
    expect(lastUsedAt).not.toBeNull();
  });

  test('a key works only under its own organization', async () => {
    expect(await ingestStatus(other.slug, tenant.apiKey)).toBe(401);
  });

  test('the listing shows keys newest first, without the raw key or its hash', async () => {
    const first = await createKey(tenant.adminToken, 'me', { label: 'first' });
    const second = await createKey(tenant.adminToken, 'me', { label: 'second' });
    const items = await listKeys(tenant.adminToken, 'me');
    const ids = items.map((k) => k.id);
    expect(ids.indexOf(second.data!.id)).toBeLessThan(ids.indexOf(first.data!.id));
    expect(ids).toContain(tenant.apiKeyId);
    const created = items.map((k) => Date.parse(k.createdAt));
    expect(created).toEqual([...created].sort((a, b) => b - a));

    const allowed = ['id', 'label', 'prefix', 'createdBy', 'createdAt', 'lastUsedAt', 'expiresAt', 'revokedAt', 'allowedOrigins'];
    for (const item of items) {
      expect(Object.keys(item).filter((k) => !allowed.includes(k))).toEqual([]);
    }
    const listed = items.find((k) => k.id === second.data!.id)!;
    expect(listed.prefix).toBe(second.data!.prefix);
    expect(listed.label).toBe('second');
    expect(JSON.stringify(items)).not.toContain(second.data!.key);
  });

  test('the listing only shows keys of its own organization', async () => {
    const ids = (await listKeys(tenant.adminToken, 'me')).map((k) => k.id);
    expect(ids).not.toContain(other.apiKeyId);
  });

  test('revoking a key stops it at once and is idempotent', async () => {
    const { data: key } = await createKey(tenant.adminToken, 'me', { label: 'to revoke' });
    expect(await ingestStatus(tenant.slug, key!.key)).toBe(201);

    expect(await revokeKey(tenant.adminToken, 'me', key!.id)).toBe(204);
    expect(await ingestStatus(tenant.slug, key!.key)).toBe(401);
    const revokedAt = (await listKeys(tenant.adminToken, 'me')).find((k) => k.id === key!.id)!.revokedAt;
    expect(revokedAt).not.toBeNull();

    expect(await revokeKey(tenant.adminToken, 'me', key!.id)).toBe(204);
    expect((await listKeys(tenant.adminToken, 'me')).find((k) => k.id === key!.id)!.revokedAt).toBe(revokedAt);
    expect(await ingestStatus(tenant.slug, tenant.apiKey)).toBe(201);
  });

  test("revoking another organization's key is a 404 and the key keeps working", async () => {
    expect(await revokeKey(tenant.adminToken, 'me', other.apiKeyId)).toBe(404);
    expect(await ingestStatus(other.slug, other.apiKey)).toBe(201);
    expect((await listKeys(rootToken, other.slug)).find((k) => k.id === other.apiKeyId)!.revokedAt).toBeNull();
  });

  test('an unknown or non-uuid key id is a 404', async () => {
    expect(await revokeKey(tenant.adminToken, 'me', 'not-a-uuid')).toBe(404);
    expect(await revokeKey(tenant.adminToken, 'me', crypto.randomUUID())).toBe(404);
  });

  test('users and viewers may not list, create or revoke keys', async () => {
    for (const role of ['user', 'viewer'] as const) {
      const member = await addUser(t, tenant, role);
      expect((await as(member.token).GET('/orgs/{org}/apikeys', orgPath('me'))).response.status).toBe(403);
      expect((await createKey(member.token, 'me', { label: 'nope' })).response.status).toBe(403);
      expect(await revokeKey(member.token, 'me', tenant.apiKeyId)).toBe(403);
    }
    expect(await ingestStatus(tenant.slug, tenant.apiKey)).toBe(201);
  });

  test('an expiry in the past is a 422', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    await expect422(await rawPost('/orgs/me/apikeys', tenant.adminToken, { label: 'old', expiresAt: past }), '/body/expiresAt');
  });

  test('an expiry that is not a date-time is a 422', async () => {
    await expect422(await rawPost('/orgs/me/apikeys', tenant.adminToken, { label: 'odd', expiresAt: 'tomorrow' }), '/body/expiresAt');
  });

  test('a leap-second expiry, valid per the contract, is not a server error', async () => {
    const response = await rawPost('/orgs/me/apikeys', tenant.adminToken, { label: 'leap', expiresAt: '2099-12-31T23:59:60Z' });
    expect([201, 422]).toContain(response.status);
  });

  test('a missing label is a 422', async () => {
    await expect422(await rawPost('/orgs/me/apikeys', tenant.adminToken, {}), '/body/label');
  });

  test('an expiry in the future is accepted, shown, and the key works until then', async () => {
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const { data, response } = await createKey(tenant.adminToken, 'me', { label: 'temporary', expiresAt });
    expect(response.status).toBe(201);
    expect(Date.parse(data!.expiresAt!)).toBe(Date.parse(expiresAt));
    const listed = (await listKeys(tenant.adminToken, 'me')).find((k) => k.id === data!.id)!;
    expect(Date.parse(listed.expiresAt!)).toBe(Date.parse(expiresAt));
    expect(await ingestStatus(tenant.slug, data!.key)).toBe(201);

    await t.db.fork().execute(`update api_keys set expires_at = now() - interval '1 minute' where id = ?`, [data!.id]);
    // A change made behind this instance's back is seen once its cached key lookup expires.
    await Bun.sleep(t.config.apiKeyCacheSeconds * 1000 + 50);
    expect(await ingestStatus(tenant.slug, data!.key)).toBe(401);
  }, 30_000);

  test("a superadmin manages any organization's keys by slug", async () => {
    const created = await createKey(rootToken, other.slug, { label: 'by root' });
    expect(created.response.status).toBe(201);
    expect(created.data!.createdBy).toBe(await myId(rootToken));
    expect(await ingestStatus(other.slug, created.data!.key)).toBe(201);

    const ids = (await listKeys(rootToken, other.slug)).map((k) => k.id);
    expect(ids).toContain(created.data!.id);
    expect(ids).toContain(other.apiKeyId);
    expect((await listKeys(other.adminToken, 'me')).map((k) => k.id)).toContain(created.data!.id);

    expect(await revokeKey(rootToken, other.slug, created.data!.id)).toBe(204);
    expect(await ingestStatus(other.slug, created.data!.key)).toBe(401);
  });

  test("an admin naming another organization's keys gets a 404", async () => {
    const list = await as(tenant.adminToken).GET('/orgs/{org}/apikeys', orgPath(other.slug));
    expect(list.response.status).toBe(404);
    expect((await createKey(tenant.adminToken, other.slug, { label: 'intruder' })).response.status).toBe(404);
    expect(await revokeKey(tenant.adminToken, other.slug, other.apiKeyId)).toBe(404);
    expect(await ingestStatus(other.slug, other.apiKey)).toBe(201);
    expect((await listKeys(other.adminToken, 'me')).map((k) => k.label)).not.toContain('intruder');
  });
});
