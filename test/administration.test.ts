import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { addUser, createTenant, createTestApp, login, PASSWORD, superadminToken, unique, type Tenant, type TestApp } from './support/harness.ts';

/**
 * Dashboard administration: organizations (list, read, rename, settings, deactivation) and the
 * users of an organization (list, role and active changes, deletion), with the rules that keep
 * an organization administrable (no self-demotion, a last active admin, superadmins protected).
 * Every test works in organizations of its own: the database is shared with other files.
 */

setDefaultTimeout(60_000);

let t: TestApp;
let rootToken: string;
let rootId: string;
/** Organizations this file deactivates are reactivated at the end even if a test fails midway. */
const deactivated = new Set<string>();

beforeAll(async () => {
  t = await createTestApp();
  rootToken = await superadminToken(t);
  rootId = (await t.client({ token: rootToken }).GET('/users/me')).data!.id;
});

afterAll(async () => {
  // Safety net: a broken deactivation rule must not leave the shared database unusable for the
  // files that run after this one (the system organization holds the run's superadmin).
  const slugs = [...deactivated, 'system'];
  await t.db.fork().execute(`update organizations set active = true where slug in (${slugs.map(() => '?').join(', ')})`, slugs);
});

type Problem = { type: string; title: string; status: number; detail?: string; errors?: { pointer: string; message: string }[] };

const root = () => t.client({ token: rootToken });
const as = (token: string) => t.client({ token });
const orgPath = (org: string) => ({ params: { path: { org } } });
const userPath = (org: string, userId: string) => ({ params: { path: { org, userId } } });
const newEmail = (label = 'u') => `${label}-${unique()}@example.test`;

function raw(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return t.fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function problemOf(response: Response): Promise<Problem> {
  expect(response.headers.get('content-type')).toStartWith('application/problem+json');
  return (await response.json()) as Problem;
}

async function expect422(response: Response, pointer?: string) {
  expect(response.status).toBe(422);
  const problem = await problemOf(response);
  expect(problem.status).toBe(422);
  if (pointer !== undefined) expect(problem.errors?.map((e) => e.pointer)).toContain(pointer);
}

async function meStatus(token: string): Promise<number> {
  return (await as(token).GET('/users/me')).response.status;
}

async function loginStatus(email: string, password = PASSWORD): Promise<number> {
  return (await t.client().POST('/auth/login', { body: { email, password } })).response.status;
}

async function ingestStatus(slug: string, apiKey: string): Promise<number> {
  return (await t.client({ apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug } }, body: {} })).response.status;
}

/** A user made by the superadmin in any organization, any role (also superadmin). */
async function rootAddUser(org: string, role: 'superadmin' | 'admin' | 'user' | 'viewer') {
  const email = newEmail(role);
  const { data, response } = await root().POST('/orgs/{org}/users', { ...orgPath(org), body: { email, password: PASSWORD, role } });
  expect(response.status).toBe(201);
  return { id: data!.id, email, token: await login(t, email, PASSWORD) };
}

async function patchUser(token: string, org: string, userId: string, body: Record<string, unknown>) {
  return as(token).PATCH('/orgs/{org}/users/{userId}', { ...userPath(org, userId), body });
}

async function deleteUserStatus(token: string, org: string, userId: string): Promise<number> {
  return (await as(token).DELETE('/orgs/{org}/users/{userId}', userPath(org, userId))).response.status;
}

/** Every user of an organization, walking the pages. */
async function allUsers(token: string, org: string, limit = 200) {
  const items = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const { data, response } = await as(token).GET('/orgs/{org}/users', { params: { path: { org }, query: { limit, cursor } } });
    expect(response.status).toBe(200);
    expect(data!.items.length).toBeLessThanOrEqual(limit);
    items.push(...data!.items);
    if (!data!.nextCursor) return items;
    cursor = data!.nextCursor;
  }
  throw new Error('the user listing never ended');
}

async function activeAdmins(org: string) {
  return (await allUsers(rootToken, org)).filter((u) => u.role === 'admin' && u.active);
}

// ---------------------------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------------------------

describe('GET /orgs', () => {
  test('walks every organization by slug, page by page, each exactly once', async () => {
    const base = unique('pg-');
    const mine = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((s) => `${base}-${s}`);
    // Created out of order: the listing orders by slug, not by creation.
    for (const slug of [...mine].reverse()) {
      expect((await root().POST('/orgs', { body: { name: `Paging ${slug}`, slug } })).response.status).toBe(201);
    }

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const { data, response } = await root().GET('/orgs', { params: { query: { limit: 3, cursor } } });
      expect(response.status).toBe(200);
      expect(data!.items.length).toBeLessThanOrEqual(3);
      pages += 1;
      seen.push(...data!.items.map((o) => o.slug));
      if (!data!.nextCursor) break;
      expect(data!.items.length).toBe(3);
      cursor = data!.nextCursor;
      if (pages > 10_000) throw new Error('the organization listing never ended');
    }
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(new Set(seen).size).toBe(seen.length);
    for (const slug of mine) expect(seen.filter((s) => s === slug)).toEqual([slug]);
    // My slugs share a prefix and differ in one letter: their order holds under any collation.
    expect(seen.filter((s) => mine.includes(s))).toEqual(mine);
    // The walk is the database's own order by slug (its collation), nothing skipped.
    const rows = await t.db.fork().execute<{ slug: string }[]>(`select slug from organizations order by slug`);
    expect(seen).toEqual(rows.map((r) => r.slug));
    expect(seen).toContain('system');
  });

  test('the default page is at most 50 and a full page has a next cursor', async () => {
    const { data, response } = await root().GET('/orgs');
    expect(response.status).toBe(200);
    expect(data!.items.length).toBeLessThanOrEqual(50);
    const [count] = await t.db.fork().execute<{ n: string | number }[]>(`select count(*) as n from organizations`);
    if (Number(count!.n) > 50) expect(data!.nextCursor).not.toBeNull();
    else expect(data!.nextCursor).toBeNull();
  });

  test('admins, users and viewers are forbidden; without a session it is a 401', async () => {
    const tenant = await createTenant(t);
    const user = await addUser(t, tenant, 'user');
    const viewer = await addUser(t, tenant, 'viewer');
    for (const token of [tenant.adminToken, user.token, viewer.token]) {
      const { response, error } = await as(token).GET('/orgs');
      expect(response.status).toBe(403);
      expect(error!.status).toBe(403);
    }
    expect((await t.client().GET('/orgs')).response.status).toBe(401);
  });

  test.each([
    ['garbage', 'not a cursor!!'],
    ['base64url of a non-array', Buffer.from('{"slug":"a"}').toString('base64url')],
    ['base64url of a number key', Buffer.from('[42]').toString('base64url')],
    ['base64url of a two-part key', Buffer.from('["a","b"]').toString('base64url')],
  ])('a bad cursor (%s) is a 422', async (_, cursor) => {
    const { response, error } = await root().GET('/orgs', { params: { query: { cursor } } });
    expect(response.status).toBe(422);
    expect(error!.errors?.map((e) => e.pointer)).toContain('/query/cursor');
  });

  test.each([0, 201, -1])('limit %p is a 422', async (limit) => {
    const { response, error } = await root().GET('/orgs', { params: { query: { limit } } });
    expect(response.status).toBe(422);
    expect(error!.errors?.map((e) => e.pointer)).toContain('/query/limit');
  });

  test('limit 1 and 200 are accepted', async () => {
    expect((await root().GET('/orgs', { params: { query: { limit: 1 } } })).data!.items.length).toBe(1);
    expect((await root().GET('/orgs', { params: { query: { limit: 200 } } })).response.status).toBe(200);
  });
});

describe('GET /orgs/{org}', () => {
  let tenant: Tenant;
  let other: Tenant;
  beforeAll(async () => {
    [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
  });

  test('every role reads its own organization via "me" and via its slug', async () => {
    const user = await addUser(t, tenant, 'user');
    const viewer = await addUser(t, tenant, 'viewer');
    for (const token of [tenant.adminToken, user.token, viewer.token]) {
      for (const ref of ['me', tenant.slug]) {
        const { data, response } = await as(token).GET('/orgs/{org}', orgPath(ref));
        expect(response.status).toBe(200);
        expect(data!.id).toBe(tenant.orgId);
        expect(data!.slug).toBe(tenant.slug);
        expect(data!.name).toBe(`Org ${tenant.slug}`);
        expect(data!.active).toBe(true);
        expect(data!.settings).toEqual({ retentionDays: null, ingestRateLimitPerMinute: null, searchLanguage: 'simple' });
      }
    }
  });

  test("another organization is a 404 for its non-members, exactly like one that does not exist", async () => {
    const viewer = await addUser(t, tenant, 'viewer');
    for (const token of [tenant.adminToken, viewer.token]) {
      const foreign = await raw('GET', `/orgs/${other.slug}`, token);
      const missing = await raw('GET', `/orgs/${unique('nope-')}`, token);
      expect(foreign.status).toBe(404);
      expect(missing.status).toBe(404);
      expect(await problemOf(foreign)).toEqual(await problemOf(missing));
    }
    const { response } = await as(tenant.adminToken).GET('/orgs/{org}', orgPath('system'));
    expect(response.status).toBe(404);
  });

  test('a superadmin reads any organization by slug, and their own via "me"', async () => {
    const { data, response } = await root().GET('/orgs/{org}', orgPath(other.slug));
    expect(response.status).toBe(200);
    expect(data!.id).toBe(other.orgId);
    expect(data!.slug).toBe(other.slug);
    expect(data!.settings.retentionDays).toBeNull();

    const own = await root().GET('/orgs/{org}', orgPath('me'));
    expect(own.response.status).toBe(200);
    expect(own.data!.slug).toBe('system');

    expect((await root().GET('/orgs/{org}', orgPath(unique('nope-')))).response.status).toBe(404);
  });

  test('without a session it is a 401', async () => {
    expect((await t.client().GET('/orgs/{org}', orgPath(tenant.slug))).response.status).toBe(401);
  });
});

describe('PATCH /orgs/{org}', () => {
  test('an admin renames their own organization and sets, changes and clears retentionDays', async () => {
    const tenant = await createTenant(t);
    const api = as(tenant.adminToken);
    const renamed = await api.PATCH('/orgs/{org}', { ...orgPath('me'), body: { name: 'Renamed Inc' } });
    expect(renamed.response.status).toBe(200);
    expect(renamed.data!.name).toBe('Renamed Inc');
    expect(renamed.data!.slug).toBe(tenant.slug);
    expect(renamed.data!.active).toBe(true);
    expect(renamed.data!.settings.retentionDays).toBeNull();

    const set = await api.PATCH('/orgs/{org}', { ...orgPath(tenant.slug), body: { settings: { retentionDays: 30 } } });
    expect(set.response.status).toBe(200);
    expect(set.data!.settings.retentionDays).toBe(30);
    expect(set.data!.name).toBe('Renamed Inc');
    expect((await api.GET('/orgs/{org}', orgPath('me'))).data!.settings.retentionDays).toBe(30);

    const both = await api.PATCH('/orgs/{org}', { ...orgPath('me'), body: { name: 'Both', settings: { retentionDays: 36500 } } });
    expect(both.response.status).toBe(200);
    expect(both.data!.name).toBe('Both');
    expect(both.data!.settings.retentionDays).toBe(36500);

    const min = await api.PATCH('/orgs/{org}', { ...orgPath('me'), body: { settings: { retentionDays: 1 } } });
    expect(min.data!.settings.retentionDays).toBe(1);

    const cleared = await api.PATCH('/orgs/{org}', { ...orgPath('me'), body: { settings: { retentionDays: null } } });
    expect(cleared.response.status).toBe(200);
    expect(cleared.data!.settings.retentionDays).toBeNull();
    const read = await root().GET('/orgs/{org}', orgPath(tenant.slug));
    expect(read.data!.settings).toEqual({ retentionDays: null, ingestRateLimitPerMinute: null, searchLanguage: 'simple' });
    expect(read.data!.name).toBe('Both');
  });

  test.each([
    ['retentionDays 0', { settings: { retentionDays: 0 } }, '/body/settings/retentionDays'],
    ['retentionDays 36501', { settings: { retentionDays: 36501 } }, '/body/settings/retentionDays'],
    ['retentionDays -5', { settings: { retentionDays: -5 } }, '/body/settings/retentionDays'],
    ['retentionDays 1.5', { settings: { retentionDays: 1.5 } }, '/body/settings/retentionDays'],
    ['retentionDays "30"', { settings: { retentionDays: '30' } }, '/body/settings/retentionDays'],
    ['empty settings', { settings: {} }, undefined],
    ['unknown setting', { settings: { retentionDays: 5, color: 'red' } }, '/body/settings/color'],
    ['empty body', {}, undefined],
    ['unknown field', { name: 'X', plan: 'gold' }, '/body/plan'],
    ['blank name', { name: '   ' }, '/body/name'],
    ['empty name', { name: '' }, '/body/name'],
    ['201-character name', { name: 'n'.repeat(201) }, '/body/name'],
    ['non-boolean active', { active: 'no' }, '/body/active'],
  ])('%s is a 422 and changes nothing', async (_, body, pointer) => {
    const tenant = await createTenant(t);
    await expect422(await raw('PATCH', '/orgs/me', tenant.adminToken, body), pointer);
    const { data } = await root().GET('/orgs/{org}', orgPath(tenant.slug));
    expect(data!.name).toBe(`Org ${tenant.slug}`);
    expect(data!.settings.retentionDays).toBeNull();
    expect(data!.active).toBe(true);
  });

  test('users and viewers are forbidden', async () => {
    const tenant = await createTenant(t);
    for (const role of ['user', 'viewer'] as const) {
      const member = await addUser(t, tenant, role);
      for (const ref of ['me', tenant.slug]) {
        const { response } = await as(member.token).PATCH('/orgs/{org}', { ...orgPath(ref), body: { name: 'Hijacked' } });
        expect(response.status).toBe(403);
      }
    }
    expect((await root().GET('/orgs/{org}', orgPath(tenant.slug))).data!.name).toBe(`Org ${tenant.slug}`);
  });

  test("another organization's admin gets a 404 and nothing changes", async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    const { response } = await as(other.adminToken).PATCH('/orgs/{org}', { ...orgPath(tenant.slug), body: { name: 'Hijacked', settings: { retentionDays: 1 } } });
    expect(response.status).toBe(404);
    const { data } = await root().GET('/orgs/{org}', orgPath(tenant.slug));
    expect(data!.name).toBe(`Org ${tenant.slug}`);
    expect(data!.settings.retentionDays).toBeNull();
  });

  test('an admin may not change active (403), also together with a rename that then does not happen', async () => {
    const tenant = await createTenant(t);
    const alone = await as(tenant.adminToken).PATCH('/orgs/{org}', { ...orgPath('me'), body: { active: false } });
    expect(alone.response.status).toBe(403);
    const mixed = await as(tenant.adminToken).PATCH('/orgs/{org}', { ...orgPath('me'), body: { name: 'Sneaky', active: false } });
    expect(mixed.response.status).toBe(403);
    const { data } = await root().GET('/orgs/{org}', orgPath(tenant.slug));
    expect(data!.active).toBe(true);
    expect(data!.name).toBe(`Org ${tenant.slug}`);
    expect(await meStatus(tenant.adminToken)).toBe(200);
    expect(await ingestStatus(tenant.slug, tenant.apiKey)).toBe(201);
  });

  test('a superadmin deactivates an organization: its sessions and key stop at once, its data stays', async () => {
    const tenant = await createTenant(t);
    const user = await addUser(t, tenant, 'user');
    const viewer = await addUser(t, tenant, 'viewer');
    const chat = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats', {
      params: { path: { slug: tenant.slug } },
      body: { title: 'kept across deactivation' },
    });
    expect(chat.response.status).toBe(201);
    const chatId = chat.data!.id;

    deactivated.add(tenant.slug);
    const off = await root().PATCH('/orgs/{org}', { ...orgPath(tenant.slug), body: { active: false } });
    expect(off.response.status).toBe(200);
    expect(off.data!.active).toBe(false);

    for (const token of [tenant.adminToken, user.token, viewer.token]) {
      expect(await meStatus(token)).toBe(401);
      expect((await as(token).GET('/orgs/{org}', orgPath('me'))).response.status).toBe(401);
    }
    expect((await as(tenant.adminToken).GET('/orgs/{org}/users', orgPath('me'))).response.status).toBe(401);
    expect(await ingestStatus(tenant.slug, tenant.apiKey)).toBe(401);
    const message = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', {
      params: { path: { slug: tenant.slug, chatId } },
      body: { role: 'user', content: 'while deactivated' },
    });
    expect(message.response.status).toBe(401);
    expect(await loginStatus(tenant.adminEmail)).toBe(401);
    expect(await loginStatus(user.email)).toBe(401);

    // The superadmin still sees it, inactive, with its data.
    const read = await root().GET('/orgs/{org}', orgPath(tenant.slug));
    expect(read.response.status).toBe(200);
    expect(read.data!.active).toBe(false);
    const [stored] = await t.db.fork().execute<{ n: string | number }[]>(`select count(*) as n from chats where organization_id = ?`, [tenant.orgId]);
    expect(Number(stored!.n)).toBe(1);
    expect((await allUsers(rootToken, tenant.slug)).length).toBe(3);

    const on = await root().PATCH('/orgs/{org}', { ...orgPath(tenant.slug), body: { active: true } });
    expect(on.response.status).toBe(200);
    expect(on.data!.active).toBe(true);
    deactivated.delete(tenant.slug);

    expect(await ingestStatus(tenant.slug, tenant.apiKey)).toBe(201);
    const again = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', {
      params: { path: { slug: tenant.slug, chatId } },
      body: { role: 'user', content: 'after reactivation' },
    });
    expect(again.response.status).toBe(201);
    expect(again.data!.chatId).toBe(chatId);
    // The sessions ended with the deactivation: reactivating does not revive them (as for a user).
    for (const token of [tenant.adminToken, user.token, viewer.token]) expect(await meStatus(token)).toBe(401);
    const adminToken = await login(t, tenant.adminEmail, PASSWORD);
    expect(await meStatus(adminToken)).toBe(200);
  });

  test('a superadmin cannot deactivate their own organization (by slug or "me")', async () => {
    for (const ref of ['system', 'me']) {
      const { response, error } = await root().PATCH('/orgs/{org}', { ...orgPath(ref), body: { active: false } });
      expect(response.status).toBe(409);
      expect(error!.status).toBe(409);
    }
    expect((await root().GET('/orgs/{org}', orgPath('system'))).data!.active).toBe(true);
    expect(await meStatus(rootToken)).toBe(200);
  });

  test('a superadmin who belongs to a tenant cannot deactivate that tenant', async () => {
    const tenant = await createTenant(t);
    const superTenant = await rootAddUser(tenant.slug, 'superadmin');
    deactivated.add(tenant.slug);
    for (const ref of [tenant.slug, 'me']) {
      const { response } = await as(superTenant.token).PATCH('/orgs/{org}', { ...orgPath(ref), body: { active: false } });
      expect(response.status).toBe(409);
    }
    expect((await root().GET('/orgs/{org}', orgPath(tenant.slug))).data!.active).toBe(true);
    deactivated.delete(tenant.slug);
    expect(await meStatus(tenant.adminToken)).toBe(200);
  });

  test('a superadmin renames another organization and sets its retention', async () => {
    const tenant = await createTenant(t);
    const { data, response } = await root().PATCH('/orgs/{org}', { ...orgPath(tenant.slug), body: { name: 'By Root', settings: { retentionDays: 90 } } });
    expect(response.status).toBe(200);
    expect(data!.name).toBe('By Root');
    expect(data!.settings.retentionDays).toBe(90);
    expect((await as(tenant.adminToken).GET('/orgs/{org}', orgPath('me'))).data!.name).toBe('By Root');
  });
});

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

describe('GET /orgs/{org}/users', () => {
  test("lists the organization's users by email, page by page, never another organization's, never a password hash", async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    const base = unique('list');
    const mine = ['a', 'b', 'c', 'd', 'e'].map((s) => `${base}-${s}@example.test`);
    for (const email of [...mine].reverse()) {
      const { response } = await as(tenant.adminToken).POST('/orgs/{org}/users', { ...orgPath('me'), body: { email, password: PASSWORD, role: 'viewer' } });
      expect(response.status).toBe(201);
    }
    await addUser(t, other, 'user');

    const pages: string[][] = [];
    let cursor: string | undefined;
    const seen = [];
    for (;;) {
      const res = await as(tenant.adminToken).GET('/orgs/{org}/users', { params: { path: { org: 'me' }, query: { limit: 2, cursor } } });
      expect(res.response.status).toBe(200);
      const text = JSON.stringify(res.data);
      expect(text).not.toContain('$argon2');
      expect(text.toLowerCase()).not.toContain('password');
      for (const user of res.data!.items) {
        expect(Object.keys(user).sort()).toEqual(
          ['active', 'createdAt', 'email', 'firstName', 'id', 'lastLoginAt', 'lastName', 'organizationId', 'organizationSlug', 'role', 'updatedAt'],
        );
      }
      expect(res.data!.items.length).toBeLessThanOrEqual(2);
      pages.push(res.data!.items.map((u) => u.email));
      seen.push(...res.data!.items);
      if (!res.data!.nextCursor) break;
      cursor = res.data!.nextCursor;
      if (pages.length > 100) throw new Error('the user listing never ended');
    }
    const emails = seen.map((u) => u.email);
    expect(emails.length).toBe(6);
    expect(pages.length).toBe(3);
    expect(new Set(emails).size).toBe(emails.length);
    expect(emails.filter((e) => mine.includes(e))).toEqual(mine);
    expect(emails).toContain(tenant.adminEmail);
    expect(emails).not.toContain(other.adminEmail);
    for (const user of seen) {
      expect(user.organizationId).toBe(tenant.orgId);
      expect(user.organizationSlug).toBe(tenant.slug);
    }
    const rows = await t.db.fork().execute<{ email: string }[]>(`select email from users where organization_id = ? order by email`, [tenant.orgId]);
    expect(emails).toEqual(rows.map((r) => r.email));

    // The superadmin sees the same list by slug.
    expect((await allUsers(rootToken, tenant.slug)).map((u) => u.email)).toEqual(emails);
  });

  test('users and viewers are forbidden; another organization is a 404', async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    for (const role of ['user', 'viewer'] as const) {
      const member = await addUser(t, tenant, role);
      expect((await as(member.token).GET('/orgs/{org}/users', orgPath('me'))).response.status).toBe(403);
    }
    expect((await as(other.adminToken).GET('/orgs/{org}/users', orgPath(tenant.slug))).response.status).toBe(404);
  });

  test('a bad cursor or limit is a 422', async () => {
    const tenant = await createTenant(t);
    for (const query of [{ cursor: 'garbage!!' }, { limit: 0 }, { limit: 201 }]) {
      const { response } = await as(tenant.adminToken).GET('/orgs/{org}/users', { params: { path: { org: 'me' }, query } });
      expect(response.status).toBe(422);
    }
  });
});

describe('PATCH /orgs/{org}/users/{userId}', () => {
  test("an admin changes a user's role and names; the role change ends the user's sessions", async () => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'viewer');

    const named = await patchUser(tenant.adminToken, 'me', member.id, { firstName: 'Ada', lastName: 'Lovelace' });
    expect(named.response.status).toBe(200);
    expect(named.data!.firstName).toBe('Ada');
    expect(named.data!.lastName).toBe('Lovelace');
    expect(named.data!.role).toBe('viewer');
    // A change of names alone does not end sessions.
    expect(await meStatus(member.token)).toBe(200);

    const promoted = await patchUser(tenant.adminToken, tenant.slug, member.id, { role: 'user', lastName: null });
    expect(promoted.response.status).toBe(200);
    expect(promoted.data!.role).toBe('user');
    expect(promoted.data!.lastName).toBeNull();
    expect(promoted.data!.firstName).toBe('Ada');
    expect(promoted.data!.id).toBe(member.id);
    expect(promoted.data!.organizationId).toBe(tenant.orgId);

    expect(await meStatus(member.token)).toBe(401);
    const fresh = await login(t, member.email, PASSWORD);
    const me = await as(fresh).GET('/users/me');
    expect(me.response.status).toBe(200);
    expect(me.data!.role).toBe('user');
    expect(me.data!.firstName).toBe('Ada');
    expect(me.data!.lastName).toBeNull();

    // An admin may also promote to admin; the new admin then administers.
    const toAdmin = await patchUser(tenant.adminToken, 'me', member.id, { role: 'admin' });
    expect(toAdmin.data!.role).toBe('admin');
    expect(await meStatus(fresh)).toBe(401);
    const adminToken = await login(t, member.email, PASSWORD);
    expect((await as(adminToken).GET('/orgs/{org}/users', orgPath('me'))).response.status).toBe(200);
  });

  test('deactivation ends sessions and refuses login; reactivation allows login again', async () => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'user');

    const off = await patchUser(tenant.adminToken, 'me', member.id, { active: false });
    expect(off.response.status).toBe(200);
    expect(off.data!.active).toBe(false);
    expect(await meStatus(member.token)).toBe(401);
    expect(await loginStatus(member.email)).toBe(401);
    const listed = (await allUsers(tenant.adminToken, 'me')).find((u) => u.id === member.id)!;
    expect(listed.active).toBe(false);

    const on = await patchUser(tenant.adminToken, 'me', member.id, { active: true });
    expect(on.response.status).toBe(200);
    expect(on.data!.active).toBe(true);
    expect(await loginStatus(member.email)).toBe(200);
    // The sessions ended by the deactivation stay ended.
    expect(await meStatus(member.token)).toBe(401);
  });

  test('an admin cannot grant the superadmin role (403)', async () => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'user');
    const { response } = await patchUser(tenant.adminToken, 'me', member.id, { role: 'superadmin' });
    expect(response.status).toBe(403);
    expect(await meStatus(member.token)).toBe(200);
    expect((await as(member.token).GET('/users/me')).data!.role).toBe('user');
  });

  test('an admin cannot change a superadmin of their organization (403), not even the names', async () => {
    const tenant = await createTenant(t);
    const sup = await rootAddUser(tenant.slug, 'superadmin');
    for (const body of [{ role: 'user' }, { active: false }, { firstName: 'Demoted' }]) {
      const { response } = await patchUser(tenant.adminToken, 'me', sup.id, body);
      expect(response.status).toBe(403);
    }
    const me = await as(sup.token).GET('/users/me');
    expect(me.response.status).toBe(200);
    expect(me.data!.role).toBe('superadmin');
    expect(me.data!.firstName).toBeNull();
    expect(me.data!.active).toBe(true);
  });

  test('a superadmin may change a superadmin and grant the role', async () => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'viewer');
    const granted = await patchUser(rootToken, tenant.slug, member.id, { role: 'superadmin' });
    expect(granted.response.status).toBe(200);
    expect(granted.data!.role).toBe('superadmin');
    const back = await patchUser(rootToken, tenant.slug, member.id, { role: 'viewer' });
    expect(back.response.status).toBe(200);
    expect(back.data!.role).toBe('viewer');
  });

  test('nobody can change their own role or deactivate themselves (409)', async () => {
    const tenant = await createTenant(t);
    await addUser(t, tenant, 'admin'); // not the last admin: the 409 is for acting on oneself
    const adminId = (await as(tenant.adminToken).GET('/users/me')).data!.id;
    for (const body of [{ role: 'user' }, { role: 'viewer' }, { active: false }, { role: 'user', firstName: 'X' }]) {
      const { response, error } = await patchUser(tenant.adminToken, 'me', adminId, body);
      expect(response.status).toBe(409);
      expect(error!.status).toBe(409);
    }
    const me = await as(tenant.adminToken).GET('/users/me');
    expect(me.response.status).toBe(200);
    expect(me.data!.role).toBe('admin');
    expect(me.data!.firstName).toBeNull();

    // Their own names are fine.
    const named = await patchUser(tenant.adminToken, 'me', adminId, { firstName: 'Self' });
    expect(named.response.status).toBe(200);
    expect(named.data!.firstName).toBe('Self');
  });

  test('a superadmin cannot change their own role or deactivate themselves either (409)', async () => {
    const tenant = await createTenant(t);
    const sup = await rootAddUser(tenant.slug, 'superadmin');
    for (const body of [{ role: 'admin' }, { role: 'viewer' }, { active: false }]) {
      for (const ref of ['me', tenant.slug]) {
        const { response } = await patchUser(sup.token, ref, sup.id, body);
        expect(response.status).toBe(409);
      }
    }
    const me = await as(sup.token).GET('/users/me');
    expect(me.response.status).toBe(200);
    expect(me.data!.role).toBe('superadmin');
    expect(me.data!.active).toBe(true);

    // The run's own superadmin, in the system organization.
    const self = await patchUser(rootToken, 'system', rootId, { role: 'admin' });
    expect(self.response.status).toBe(409);
    expect(await meStatus(rootToken)).toBe(200);
  });

  test('the last active admin cannot be demoted or deactivated, but can be once a second admin exists', async () => {
    const tenant = await createTenant(t);
    const adminId = (await as(tenant.adminToken).GET('/users/me')).data!.id;
    for (const body of [{ role: 'user' }, { role: 'viewer' }, { active: false }]) {
      const { response, error } = await patchUser(rootToken, tenant.slug, adminId, body);
      expect(response.status).toBe(409);
      expect(error!.status).toBe(409);
    }
    expect(await meStatus(tenant.adminToken)).toBe(200);
    expect((await activeAdmins(tenant.slug)).map((u) => u.id)).toEqual([adminId]);

    const second = await addUser(t, tenant, 'admin');
    // Deactivating the first admin is allowed now; the second is then the last active admin.
    const off = await patchUser(rootToken, tenant.slug, adminId, { active: false });
    expect(off.response.status).toBe(200);
    expect(await meStatus(tenant.adminToken)).toBe(401);
    expect((await patchUser(rootToken, tenant.slug, second.id, { role: 'user' })).response.status).toBe(409);
    expect((await patchUser(rootToken, tenant.slug, second.id, { active: false })).response.status).toBe(409);
    expect(await meStatus(second.token)).toBe(200);

    // Back to two active admins: the second demotes the first.
    expect((await patchUser(rootToken, tenant.slug, adminId, { active: true })).response.status).toBe(200);
    const demoted = await patchUser(second.token, 'me', adminId, { role: 'user' });
    expect(demoted.response.status).toBe(200);
    expect(demoted.data!.role).toBe('user');
    expect((await activeAdmins(tenant.slug)).map((u) => u.id)).toEqual([second.id]);
  });

  for (let round = 1; round <= 5; round++) {
    test(`two admins demoting each other at once: exactly one wins, the org keeps an admin (round ${round})`, async () => {
      const tenant = await createTenant(t);
      const a = { id: (await as(tenant.adminToken).GET('/users/me')).data!.id, token: tenant.adminToken };
      const b = await addUser(t, tenant, 'admin');
      const [ab, ba] = await Promise.all([
        raw('PATCH', `/orgs/me/users/${b.id}`, a.token, { role: 'user' }),
        raw('PATCH', `/orgs/me/users/${a.id}`, b.token, { role: 'user' }),
      ]);
      const bodies = [await ab.text(), await ba.text()];
      // Exactly one succeeds. The other loses with a 409 (the last-admin rule) when both were
      // authenticated before either committed; when its request is authenticated after the winner
      // committed, the loser has already been demoted and its sessions ended ("at once"), so a 401
      // is the contract's answer too. Anything else (a 503 from a deadlock, two 200s) is a failure.
      const statuses = [ab.status, ba.status];
      const loserStatus = statuses.find((s) => s !== 200);
      expect({ statuses: statuses.filter((s) => s === 200), loserAllowed: [401, 409].includes(loserStatus!), bodies }).toEqual({
        statuses: [200],
        loserAllowed: true,
        bodies: expect.any(Array),
      });
      const admins = await activeAdmins(tenant.slug);
      expect(admins.length).toBe(1);
      const [winner, loser] = ab.status === 200 ? [a, b] : [b, a];
      expect(admins[0]!.id).toBe(winner.id);
      expect(await meStatus(winner.token)).toBe(200);
      expect(await meStatus(loser.token)).toBe(401);
      const demoted = (await allUsers(rootToken, tenant.slug)).find((u) => u.id === loser.id)!;
      expect(demoted.role).toBe('user');
    });
  }

  test('two admins deactivating each other at once: exactly one wins, the org keeps an active admin (3 rounds)', async () => {
    for (let round = 1; round <= 3; round++) {
      const tenant = await createTenant(t);
      const a = { id: (await as(tenant.adminToken).GET('/users/me')).data!.id, token: tenant.adminToken };
      const b = await addUser(t, tenant, 'admin');
      const [ab, ba] = await Promise.all([
        raw('PATCH', `/orgs/me/users/${b.id}`, a.token, { active: false }),
        raw('PATCH', `/orgs/me/users/${a.id}`, b.token, { active: false }),
      ]);
      const statuses = [ab.status, ba.status];
      const loserStatus = statuses.find((s) => s !== 200);
      const bodies = [await ab.text(), await ba.text()];
      expect({ round, winners: statuses.filter((s) => s === 200).length, loserAllowed: [401, 409].includes(loserStatus!), bodies }).toEqual({
        round,
        winners: 1,
        loserAllowed: true,
        bodies: expect.any(Array),
      });
      expect((await activeAdmins(tenant.slug)).length).toBe(1);
    }
  });

  test("an unknown, non-uuid or another organization's user id is a 404", async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    const foreign = await addUser(t, other, 'user');
    for (const id of [crypto.randomUUID(), 'not-a-uuid', foreign.id, foreign.id.toUpperCase()]) {
      const { response } = await patchUser(tenant.adminToken, 'me', id, { role: 'viewer' });
      expect(response.status).toBe(404);
      // The superadmin naming the wrong organization gets the same 404.
      expect((await patchUser(rootToken, tenant.slug, id, { role: 'viewer' })).response.status).toBe(404);
    }
    const me = await as(foreign.token).GET('/users/me');
    expect(me.response.status).toBe(200);
    expect(me.data!.role).toBe('user');
  });

  test("another organization's admin naming its slug gets a 404; users and viewers a 403", async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    const member = await addUser(t, tenant, 'viewer');
    expect((await patchUser(other.adminToken, tenant.slug, member.id, { role: 'user' })).response.status).toBe(404);
    for (const role of ['user', 'viewer'] as const) {
      const caller = await addUser(t, tenant, role);
      expect((await patchUser(caller.token, 'me', member.id, { firstName: 'Nope' })).response.status).toBe(403);
    }
    const me = await as(member.token).GET('/users/me');
    expect(me.data!.role).toBe('viewer');
    expect(me.data!.firstName).toBeNull();
  });

  test.each([
    ['an empty body', {}, undefined],
    ['an unknown field', { role: 'user', email: 'x@example.test' }, '/body/email'],
    ['an unknown role', { role: 'owner' }, '/body/role'],
    ['a non-boolean active', { active: 'yes' }, '/body/active'],
    ['a 101-character first name', { firstName: 'f'.repeat(101) }, '/body/firstName'],
  ])('%s is a 422', async (_, body, pointer) => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'user');
    await expect422(await raw('PATCH', `/orgs/me/users/${member.id}`, tenant.adminToken, body), pointer);
    expect(await meStatus(member.token)).toBe(200);
  });
});

describe('DELETE /orgs/{org}/users/{userId}', () => {
  test('deletes the user: 204, their session ends, login fails, the listing drops them', async () => {
    const tenant = await createTenant(t);
    const member = await addUser(t, tenant, 'user');
    expect(await deleteUserStatus(tenant.adminToken, 'me', member.id)).toBe(204);
    expect(await meStatus(member.token)).toBe(401);
    expect(await loginStatus(member.email)).toBe(401);
    expect((await allUsers(tenant.adminToken, 'me')).map((u) => u.id)).not.toContain(member.id);
    expect(await deleteUserStatus(tenant.adminToken, 'me', member.id)).toBe(404);
  });

  test('nobody can delete themselves (409), also a superadmin', async () => {
    const tenant = await createTenant(t);
    await addUser(t, tenant, 'admin');
    const adminId = (await as(tenant.adminToken).GET('/users/me')).data!.id;
    expect(await deleteUserStatus(tenant.adminToken, 'me', adminId)).toBe(409);
    expect(await meStatus(tenant.adminToken)).toBe(200);

    const sup = await rootAddUser(tenant.slug, 'superadmin');
    expect(await deleteUserStatus(sup.token, 'me', sup.id)).toBe(409);
    expect(await meStatus(sup.token)).toBe(200);
  });

  test('the last active admin cannot be deleted (409), but can be once a second admin exists', async () => {
    const tenant = await createTenant(t);
    const adminId = (await as(tenant.adminToken).GET('/users/me')).data!.id;
    expect(await deleteUserStatus(rootToken, tenant.slug, adminId)).toBe(409);
    expect(await meStatus(tenant.adminToken)).toBe(200);

    const second = await addUser(t, tenant, 'admin');
    expect(await deleteUserStatus(second.token, 'me', adminId)).toBe(204);
    expect(await loginStatus(tenant.adminEmail)).toBe(401);
    expect(await deleteUserStatus(rootToken, tenant.slug, second.id)).toBe(409);
    expect(await meStatus(second.token)).toBe(200);
  });

  test('an admin cannot delete a superadmin (403); a superadmin can', async () => {
    const tenant = await createTenant(t);
    const sup = await rootAddUser(tenant.slug, 'superadmin');
    expect(await deleteUserStatus(tenant.adminToken, 'me', sup.id)).toBe(403);
    expect(await meStatus(sup.token)).toBe(200);
    expect(await deleteUserStatus(rootToken, tenant.slug, sup.id)).toBe(204);
    expect(await loginStatus(sup.email)).toBe(401);
  });

  test("users and viewers are forbidden; an unknown, non-uuid or another organization's user is a 404", async () => {
    const [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
    const target = await addUser(t, tenant, 'viewer');
    for (const role of ['user', 'viewer'] as const) {
      const caller = await addUser(t, tenant, role);
      expect(await deleteUserStatus(caller.token, 'me', target.id)).toBe(403);
    }
    const foreign = await addUser(t, other, 'user');
    for (const id of [crypto.randomUUID(), 'not-a-uuid', foreign.id]) {
      expect(await deleteUserStatus(tenant.adminToken, 'me', id)).toBe(404);
    }
    expect(await deleteUserStatus(other.adminToken, tenant.slug, target.id)).toBe(404);
    expect(await meStatus(target.token)).toBe(200);
    expect(await meStatus(foreign.token)).toBe(200);
  });

  test('keys created by a deleted admin keep working, with createdBy null', async () => {
    const tenant = await createTenant(t);
    const second = await addUser(t, tenant, 'admin');
    const created = await as(second.token).POST('/orgs/{org}/apikeys', { ...orgPath('me'), body: { label: 'by the leaver' } });
    expect(created.response.status).toBe(201);
    expect(created.data!.createdBy).toBe(second.id);

    expect(await deleteUserStatus(tenant.adminToken, 'me', second.id)).toBe(204);
    expect(await ingestStatus(tenant.slug, created.data!.key)).toBe(201);
    const { data } = await as(tenant.adminToken).GET('/orgs/{org}/apikeys', orgPath('me'));
    const listed = data!.items.find((k) => k.id === created.data!.id)!;
    expect(listed.createdBy).toBeNull();
    expect(listed.revokedAt).toBeNull();
  });
});
