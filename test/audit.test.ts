import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components } from '../src/generated/openapi.ts';
import { addUser, createTenant, createTestApp, login, PASSWORD, superadminToken, unique, type Tenant, type TestApp } from './support/harness.ts';

/**
 * GET /orgs/{org}/audit after a known sequence of actions in a fresh organization: every action
 * is recorded, newest first, with its actor, target and details, and no secret ever appears.
 */

setDefaultTimeout(60_000);

type AuditEvent = components['schemas']['AuditEvent'];
type Problem = { status: number; errors?: { pointer: string; message: string }[] };

const t: TestApp = await createTestApp();

let rootToken: string;
let root: { id: string; email: string };
let tenant: Tenant;
let admin: { id: string; email: string; token: string };
/** Every secret used in the tenant: none may appear in any event. */
const secrets: string[] = [];

const ids: Record<string, string> = {};
let apiKey: { id: string; label: string; prefix: string; key: string };
let events: AuditEvent[] = [];
const userEmail = `audited-${unique()}@example.test`;
const pwUser = `pw-user-${unique()}`;
const passEmail = `passwd-${unique()}@example.test`;
const pwOld = `pw-old-${unique()}`;
const pwNew = `pw-new-${unique()}`;
const pwWrong = `pw-wrong-${unique()}`;
const newOrgName = `Renamed ${unique()}`;

const as = (token: string) => t.client({ token });
const orgPath = (org: string) => ({ params: { path: { org } } });
const sha256 = (text: string) => new Bun.CryptoHasher('sha256').update(text).digest('hex');

async function auditPage(token: string, org: string, query: { limit?: number; cursor?: string; action?: string } = {}) {
  const { data, response } = await as(token).GET('/orgs/{org}/audit', { params: { path: { org }, query } });
  expect(response.status).toBe(200);
  return data!;
}

/** Every event of an organization, walking the pages. */
async function allEvents(token: string, org: string, query: { limit?: number; action?: string } = {}) {
  const items: AuditEvent[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await auditPage(token, org, { ...query, cursor });
    if (query.limit) expect(page.items.length).toBeLessThanOrEqual(query.limit);
    items.push(...page.items);
    if (!page.nextCursor) return items;
    cursor = page.nextCursor;
  }
  throw new Error('the audit listing never ended');
}

async function waitForEvent(token: string, org: string, action: string, predicate: (e: AuditEvent) => boolean, timeoutMs = 2_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await allEvents(token, org, { action })).find(predicate);
    if (found || Date.now() > deadline) return found;
    await Bun.sleep(50);
  }
}

const one = (action: string, predicate: (e: AuditEvent) => boolean = () => true) => {
  const matching = events.filter((e) => e.action === action && predicate(e));
  expect({ action, count: matching.length }).toEqual({ action, count: 1 });
  return matching[0]!;
};

beforeAll(async () => {
  rootToken = await superadminToken(t);
  const rootMe = (await as(rootToken).GET('/users/me')).data!;
  root = { id: rootMe.id, email: rootMe.email };

  // The organization, its admin (logged in once) and a key called "test", all through the API.
  tenant = await createTenant(t);
  const adminMe = (await as(tenant.adminToken).GET('/users/me')).data!;
  admin = { id: adminMe.id, email: adminMe.email, token: tenant.adminToken };
  secrets.push(PASSWORD, pwUser, pwOld, pwNew, pwWrong, tenant.apiKey, tenant.apiKey.slice(12), sha256(tenant.apiKey), tenant.adminToken, rootToken);
  const api = as(admin.token);

  // 1. A second login of the admin, and a failed one with a wrong password.
  const second = await login(t, admin.email, PASSWORD);
  secrets.push(second);
  const failed = await t.client().POST('/auth/login', { body: { email: admin.email, password: pwWrong } });
  expect(failed.response.status).toBe(401);

  // 2. A user: created, role changed, deactivated, deleted.
  const created = await api.POST('/orgs/{org}/users', { ...orgPath('me'), body: { email: userEmail, password: pwUser, role: 'user' } });
  expect(created.response.status).toBe(201);
  ids.user = created.data!.id;
  expect((await api.PATCH('/orgs/{org}/users/{userId}', { params: { path: { org: 'me', userId: ids.user } }, body: { role: 'viewer' } })).response.status).toBe(200);
  expect((await api.PATCH('/orgs/{org}/users/{userId}', { params: { path: { org: 'me', userId: ids.user } }, body: { active: false } })).response.status).toBe(200);
  expect((await api.DELETE('/orgs/{org}/users/{userId}', { params: { path: { org: 'me', userId: ids.user } } })).response.status).toBe(204);

  // 3. Another user changes their own password.
  const passUser = await api.POST('/orgs/{org}/users', { ...orgPath('me'), body: { email: passEmail, password: pwOld, role: 'user' } });
  expect(passUser.response.status).toBe(201);
  ids.passUser = passUser.data!.id;
  const passToken = await login(t, passEmail, pwOld);
  secrets.push(passToken);
  const changed = await as(passToken).PATCH('/users/me', { body: { currentPassword: pwOld, newPassword: pwNew } });
  expect(changed.response.status).toBe(200);

  // 4. An API key created and revoked.
  const key = await api.POST('/orgs/{org}/apikeys', { ...orgPath('me'), body: { label: 'audited key' } });
  expect(key.response.status).toBe(201);
  apiKey = { id: key.data!.id, label: key.data!.label, prefix: key.data!.prefix, key: key.data!.key };
  secrets.push(apiKey.key, apiKey.key.slice(12), sha256(apiKey.key));
  expect((await api.DELETE('/orgs/{org}/apikeys/{keyId}', { params: { path: { org: 'me', keyId: apiKey.id } } })).response.status).toBe(204);

  // 5. The organization renamed and given a retention.
  const renamed = await api.PATCH('/orgs/{org}', { ...orgPath('me'), body: { name: newOrgName, settings: { retentionDays: 14 } } });
  expect(renamed.response.status).toBe(200);

  // 6. A chat (ingested with the key) curated and deleted.
  const chat = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: { title: 'to curate' } });
  expect(chat.response.status).toBe(201);
  ids.chat = chat.data!.id;
  const patched = await api.PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: ids.chat } }, body: { title: 'curated', tags: ['audited'] } });
  expect(patched.response.status).toBe(200);
  const deleted = await api.DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: ids.chat } } });
  expect(deleted.response.status).toBe(204);

  // The failed login is recorded off the response's path.
  const loginFailed = await waitForEvent(admin.token, 'me', 'auth.login_failed', (e) => e.targetId === admin.id);
  expect(loginFailed).toBeDefined();
  events = await allEvents(admin.token, 'me', { limit: 200 });
});

describe('GET /orgs/{org}/audit: the recorded events', () => {
  test('every action is there, newest first, in the order it happened', () => {
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < events.length; i++) {
      expect(events[i - 1]!.id > events[i]!.id).toBe(true);
      expect(Date.parse(events[i - 1]!.at)).toBeGreaterThanOrEqual(Date.parse(events[i]!.at));
    }
    // The failed login is written asynchronously, so its place in the order is not fixed.
    const actions = events.filter((e) => e.action !== 'auth.login_failed').map((e) => e.action);
    const expected = [
      'organization.created', // by the superadmin (createTenant)
      'user.created', // the admin, by the superadmin
      'auth.login', // the admin (createTenant)
      'apikey.created', // "test" (createTenant)
      'auth.login', // the admin again
      'user.created',
      'user.updated', // role
      'user.updated', // deactivated
      'user.deleted',
      'user.created', // the password changer
      'auth.login',
      'user.password_changed',
      'apikey.created',
      'apikey.revoked',
      'organization.updated',
      'chat.updated',
      'chat.deleted',
    ].reverse();
    expect(actions).toEqual(expected);
    expect(events.filter((e) => e.action === 'auth.login_failed').length).toBe(1);
  });

  test('organization.created names the superadmin and the organization', () => {
    const event = one('organization.created');
    expect(event.actorId).toBe(root.id);
    expect(event.actorEmail).toBe(root.email);
    expect(event.targetType).toBe('organization');
    expect(event.targetId).toBe(tenant.orgId);
    expect(event.details).toMatchObject({ slug: tenant.slug, name: `Org ${tenant.slug}` });
  });

  test('auth.login and auth.login_failed name the user who logged in', () => {
    const logins = events.filter((e) => e.action === 'auth.login');
    expect(logins.filter((e) => e.targetId === admin.id).length).toBe(2);
    for (const e of logins.filter((e) => e.targetId === admin.id)) {
      expect(e.actorId).toBe(admin.id);
      expect(e.actorEmail).toBe(admin.email);
      expect(e.targetType).toBe('user');
    }
    const passLogin = one('auth.login', (e) => e.targetId === ids.passUser);
    expect(passLogin.actorId).toBe(ids.passUser!);
    expect(passLogin.actorEmail).toBe(passEmail);

    const failed = one('auth.login_failed');
    expect(failed.actorId).toBe(admin.id);
    expect(failed.actorEmail).toBe(admin.email);
    expect(failed.targetType).toBe('user');
    expect(failed.targetId).toBe(admin.id);
  });

  test('user.created, user.updated (role from/to, deactivation) and user.deleted name the admin and the user', () => {
    const created = one('user.created', (e) => e.targetId === ids.user);
    expect(created.actorId).toBe(admin.id);
    expect(created.actorEmail).toBe(admin.email);
    expect(created.targetType).toBe('user');
    expect(created.details).toMatchObject({ email: userEmail, role: 'user' });

    const adminCreated = one('user.created', (e) => e.targetId === admin.id);
    expect(adminCreated.actorId).toBe(root.id);
    expect(adminCreated.details).toMatchObject({ email: admin.email, role: 'admin' });

    const updates = events.filter((e) => e.action === 'user.updated');
    expect(updates.length).toBe(2);
    for (const e of updates) {
      expect(e.actorId).toBe(admin.id);
      expect(e.actorEmail).toBe(admin.email);
      expect(e.targetType).toBe('user');
      expect(e.targetId).toBe(ids.user!);
    }
    const [deactivation, roleChange] = updates; // newest first
    expect(roleChange!.details).toMatchObject({ changes: { role: { from: 'user', to: 'viewer' } } });
    expect((roleChange!.details as { changes: Record<string, unknown> }).changes.active).toBeUndefined();
    expect(deactivation!.details).toMatchObject({ changes: { active: false } });
    expect((deactivation!.details as { changes: Record<string, unknown> }).changes.role).toBeUndefined();

    const deleted = one('user.deleted');
    expect(deleted.actorId).toBe(admin.id);
    expect(deleted.actorEmail).toBe(admin.email);
    expect(deleted.targetType).toBe('user');
    expect(deleted.targetId).toBe(ids.user!);
    expect(deleted.details).toMatchObject({ email: userEmail });
  });

  test('user.password_changed names the user, and nothing else about the password', () => {
    const event = one('user.password_changed');
    expect(event.actorId).toBe(ids.passUser!);
    expect(event.actorEmail).toBe(passEmail);
    expect(event.targetType).toBe('user');
    expect(event.targetId).toBe(ids.passUser!);
    expect(JSON.stringify(event.details).toLowerCase()).not.toContain('hash');
  });

  test('apikey.created and apikey.revoked carry the label and the prefix', () => {
    for (const action of ['apikey.created', 'apikey.revoked']) {
      const event = one(action, (e) => e.targetId === apiKey.id);
      expect(event.actorId).toBe(admin.id);
      expect(event.actorEmail).toBe(admin.email);
      expect(event.targetType).toBe('apikey');
      expect(event.details).toMatchObject({ label: 'audited key', prefix: apiKey.prefix });
      expect(apiKey.prefix).toBe(apiKey.key.slice(0, 12));
    }
    const testKey = one('apikey.created', (e) => e.targetId === tenant.apiKeyId);
    expect(testKey.details).toMatchObject({ label: 'test', prefix: tenant.apiKey.slice(0, 12) });
  });

  test('organization.updated names the changed fields and the new retention', () => {
    const event = one('organization.updated');
    expect(event.actorId).toBe(admin.id);
    expect(event.actorEmail).toBe(admin.email);
    expect(event.targetType).toBe('organization');
    expect(event.targetId).toBe(tenant.orgId);
    const details = event.details as { fields?: string[]; retentionDays?: unknown };
    expect(details.fields).toContain('name');
    expect(details.fields!.some((f) => f.includes('retentionDays'))).toBe(true);
    expect(details.retentionDays).toBe(14);
  });

  test('chat.updated names the chat and the changed fields', () => {
    const event = one('chat.updated');
    expect(event.actorId).toBe(admin.id);
    expect(event.actorEmail).toBe(admin.email);
    expect(event.targetType).toBe('chat');
    expect(event.targetId).toBe(ids.chat!);
    expect([...((event.details as { fields?: string[] }).fields ?? [])].sort()).toEqual(['tags', 'title']);
  });

  test('chat.deleted names the chat', () => {
    const event = one('chat.deleted');
    expect(event.actorId).toBe(admin.id);
    expect(event.actorEmail).toBe(admin.email);
    expect(event.targetType).toBe('chat');
    expect(event.targetId).toBe(ids.chat!);
  });

  test('no secret appears anywhere: passwords, keys, key hashes, tokens, argon2 hashes', () => {
    const text = JSON.stringify(events);
    expect(secrets.length).toBeGreaterThanOrEqual(14);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThanOrEqual(8);
      expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
    }
    expect(text).not.toContain('$argon2');
    expect(text.toLowerCase()).not.toContain('passwordhash');
    expect(text.toLowerCase()).not.toContain('password_hash');
    expect(text).not.toContain('key_hash');
    expect(text).not.toContain('keyHash');
  });
});

describe('GET /orgs/{org}/audit: filtering and pages', () => {
  test('the action filter returns only that action', async () => {
    const updates = await allEvents(admin.token, 'me', { action: 'user.updated' });
    expect(updates.map((e) => e.id)).toEqual(events.filter((e) => e.action === 'user.updated').map((e) => e.id));
    expect(updates.length).toBe(2);

    const keys = await allEvents(admin.token, 'me', { action: 'apikey.created' });
    expect(keys.map((e) => e.targetId).sort()).toEqual([apiKey.id, tenant.apiKeyId].sort());

    const failed = await allEvents(admin.token, 'me', { action: 'auth.login_failed' });
    expect(failed.length).toBe(1);

    expect((await auditPage(admin.token, 'me', { action: 'no.such.action' })).items).toEqual([]);
  });

  test('the action filter pages too', async () => {
    const first = await auditPage(admin.token, 'me', { action: 'user.updated', limit: 1 });
    expect(first.items.length).toBe(1);
    expect(first.nextCursor).not.toBeNull();
    const second = await auditPage(admin.token, 'me', { action: 'user.updated', limit: 1, cursor: first.nextCursor! });
    expect(second.items.length).toBe(1);
    expect(second.items[0]!.action).toBe('user.updated');
    expect(second.items[0]!.id).not.toBe(first.items[0]!.id);
    expect(second.nextCursor).toBeNull();
  });

  test.each([1, 2, 3, 7])('walking the pages with limit %p gives every event exactly once, in order', async (limit) => {
    const full = await allEvents(admin.token, 'me', { limit: 200 });
    const walked = await allEvents(admin.token, 'me', { limit });
    expect(walked.map((e) => e.id)).toEqual(full.map((e) => e.id));
    const known = new Set(events.map((e) => e.id));
    expect(walked.filter((e) => known.has(e.id)).map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(new Set(walked.map((e) => e.id)).size).toBe(walked.length);
  });

  test('a forged cursor is a 422', async () => {
    for (const cursor of [Buffer.from('["not-a-uuid"]').toString('base64url'), 'garbage!!', Buffer.from('[1]').toString('base64url')]) {
      const response = await t.fetch(`/orgs/me/audit?cursor=${encodeURIComponent(cursor)}`, { headers: { authorization: `Bearer ${admin.token}` } });
      expect(response.status).toBe(422);
      expect(response.headers.get('content-type')).toStartWith('application/problem+json');
      const problem = (await response.json()) as Problem;
      expect(problem.errors?.map((e) => e.pointer)).toContain('/query/cursor');
    }
    const typed = await as(admin.token).GET('/orgs/{org}/audit', { params: { path: { org: 'me' }, query: { cursor: Buffer.from('["not-a-uuid"]').toString('base64url') } } });
    expect(typed.response.status).toBe(422);
  });

  test('a bad limit or an empty action is a 422', async () => {
    for (const query of [{ limit: 0 }, { limit: 201 }, { action: '' }, { action: 'a'.repeat(65) }]) {
      const { response } = await as(admin.token).GET('/orgs/{org}/audit', { params: { path: { org: 'me' }, query } });
      expect(response.status).toBe(422);
    }
  });
});

describe('GET /orgs/{org}/audit: who may read', () => {
  test('users and viewers are forbidden', async () => {
    for (const role of ['user', 'viewer'] as const) {
      const member = await addUser(t, tenant, role);
      for (const ref of ['me', tenant.slug]) {
        const { response, error } = await as(member.token).GET('/orgs/{org}/audit', orgPath(ref));
        expect(response.status).toBe(403);
        expect(error!.status).toBe(403);
      }
    }
  });

  test("another organization's admin gets a 404, exactly like an organization that does not exist", async () => {
    const other = await createTenant(t);
    const foreign = await t.fetch(`/orgs/${tenant.slug}/audit`, { headers: { authorization: `Bearer ${other.adminToken}` } });
    const missing = await t.fetch(`/orgs/${unique('nope-')}/audit`, { headers: { authorization: `Bearer ${other.adminToken}` } });
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(await foreign.json()).toEqual(await missing.json());
    // And their own audit holds none of this organization's events.
    const own = await allEvents(other.adminToken, 'me');
    expect(own.length).toBeGreaterThan(0);
    const mine = new Set(events.map((e) => e.id));
    expect(own.filter((e) => mine.has(e.id))).toEqual([]);
    expect(own.every((e) => e.targetId !== tenant.orgId)).toBe(true);
  });

  test("a superadmin reads any organization's audit by slug", async () => {
    const seen = await allEvents(rootToken, tenant.slug);
    // Events may have been added since (logins of the users made above): compare the known ones.
    const known = new Set(events.map((e) => e.id));
    expect(seen.filter((e) => known.has(e.id))).toEqual(events);
    expect((await as(rootToken).GET('/orgs/{org}/audit', orgPath(unique('nope-')))).response.status).toBe(404);
  });

  test('without a session it is a 401', async () => {
    expect((await t.client().GET('/orgs/{org}/audit', orgPath(tenant.slug))).response.status).toBe(401);
  });

  test("a new organization's audit starts with organization.created by the superadmin", async () => {
    const slug = unique('aud-');
    const created = await as(rootToken).POST('/orgs', { body: { name: 'Audited Org', slug } });
    expect(created.response.status).toBe(201);
    const list = await allEvents(rootToken, slug);
    expect(list.length).toBe(1);
    const [event] = list;
    expect(event!.action).toBe('organization.created');
    expect(event!.actorId).toBe(root.id);
    expect(event!.actorEmail).toBe(root.email);
    expect(event!.targetType).toBe('organization');
    expect(event!.targetId).toBe(created.data!.id);
    expect(event!.details).toMatchObject({ name: 'Audited Org', slug });
    // It is not in the superadmin's own organization's audit.
    const system = await allEvents(rootToken, 'me', { action: 'organization.created' });
    expect(system.map((e) => e.targetId)).not.toContain(created.data!.id);
  });
});
