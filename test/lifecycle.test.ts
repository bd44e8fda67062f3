import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { components } from '../src/generated/openapi.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { RETENTION_LOCK_KEY, runRetention, startRetention, type OrganizationPurge, type RetentionResult } from '../src/modules/lifecycle/retention.ts';
import { addUser, createTenant, createTestApp, superadminToken, type Tenant, type TestApp } from './support/harness.ts';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, parseJson, startServer, stopProcess } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type MessageCreate = components['schemas']['MessageCreate'];
type AuditEvent = components['schemas']['AuditEvent'];

const DAY = 86_400_000;
const onPostgres = testDatabaseKind === 'postgresql';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});

const as = (token: string) => t.client({ token });
const daysAgo = (now: Date, days: number) => new Date(now.getTime() - days * DAY).toISOString();

async function setRetention(tenant: Tenant, retentionDays: number | null) {
  const { response } = await as(tenant.adminToken).PATCH('/orgs/{org}', { params: { path: { org: 'me' } }, body: { settings: { retentionDays } } });
  expect(response.status).toBe(200);
}

/**
 * A chat made through the ingestion API with `messages` (their client `createdAt` chosen), then
 * its `created_at` moved to `createdAt` with SQL, the one thing the API does not let a client set.
 */
async function seedChat(tenant: Tenant, seed: { createdAt?: string; messagesAt?: string[]; externalUserId?: string }): Promise<string> {
  const client = t.client({ apiKey: tenant.apiKey });
  const chat = await client.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: { title: 'seed', externalUserId: seed.externalUserId } });
  expect(chat.response.status).toBe(201);
  const chatId = chat.data!.id;
  if (seed.messagesAt?.length) {
    const messages: MessageCreate[] = seed.messagesAt.map((createdAt, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i}`, createdAt }));
    const batch = await client.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', { params: { path: { slug: tenant.slug, chatId } }, body: { messages } });
    expect(batch.response.status).toBe(201);
  }
  if (seed.createdAt) {
    await t.db.fork().execute(`update chats set created_at = ?, updated_at = ? where organization_id = ? and id = ?`, [seed.createdAt, seed.createdAt, tenant.orgId, chatId]);
  }
  return chatId;
}

async function chatIds(orgId: string): Promise<string[]> {
  const rows = await t.db.fork().execute<{ id: string }[]>(`select id from chats where organization_id = ? order by id`, [orgId]);
  return rows.map((r) => r.id);
}

async function messageCount(orgId: string, chatIds?: string[]): Promise<number> {
  const rows = chatIds
    ? await t.db.fork().execute<{ n: string }[]>(`select count(*) as n from messages where organization_id = ? and chat_id = any(?::uuid[])`, [orgId, `{${chatIds.join(',')}}`])
    : await t.db.fork().execute<{ n: string }[]>(`select count(*) as n from messages where organization_id = ?`, [orgId]);
  return Number(rows[0]!.n);
}

async function auditEvents(tenant: Tenant, action: string): Promise<AuditEvent[]> {
  const { data, response } = await as(tenant.adminToken).GET('/orgs/{org}/audit', { params: { path: { org: 'me' }, query: { action, limit: 200 } } });
  expect(response.status).toBe(200);
  return data!.items;
}

function purged(result: RetentionResult, orgId: string): OrganizationPurge | undefined {
  if (result.skipped) throw new Error(`the run was skipped (${result.reason})`);
  return result.organizations.find((o) => o.organizationId === orgId);
}

const sorted = (ids: string[]) => [...ids].sort();

// ---- configuration -------------------------------------------------------------------------

describe('retention configuration', () => {
  const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789';
  test('enabled, every hour by default; at least every 10 s', () => {
    expect(loadConfig({ JWT_SECRET: SECRET })).toMatchObject({ retentionEnabled: true, retentionIntervalSeconds: 3600 });
    expect(loadConfig({ JWT_SECRET: SECRET, RETENTION_ENABLED: 'false', RETENTION_INTERVAL_SECONDS: '10' })).toMatchObject({ retentionEnabled: false, retentionIntervalSeconds: 10 });
    for (const [name, value] of [['RETENTION_INTERVAL_SECONDS', '9'], ['RETENTION_INTERVAL_SECONDS', '1.5'], ['RETENTION_INTERVAL_SECONDS', 'hourly'], ['RETENTION_ENABLED', 'maybe']] as const) {
      expect(() => loadConfig({ JWT_SECRET: SECRET, [name]: value })).toThrow(ConfigError);
      try {
        loadConfig({ JWT_SECRET: SECRET, [name]: value });
      } catch (error) {
        expect((error as ConfigError).problems.join('\n')).toContain(name);
      }
    }
  });
});

// ---- retention -----------------------------------------------------------------------------

describe('retention', () => {
  test('deletes exactly the expired chats of organizations with retentionDays, with their messages, and audits it', async () => {
    const now = new Date();
    const [a, b, c] = [await createTenant(t), await createTenant(t), await createTenant(t)];
    await setRetention(a, 30);
    await setRetention(c, 60);
    // b keeps everything (retentionDays null).

    const aExpired = await seedChat(a, { createdAt: daysAgo(now, 40), messagesAt: [daysAgo(now, 40), daysAgo(now, 39), daysAgo(now, 35)] });
    const aExpiredEmpty = await seedChat(a, { createdAt: daysAgo(now, 31) });
    const aRecentMessage = await seedChat(a, { createdAt: daysAgo(now, 90), messagesAt: [daysAgo(now, 90), daysAgo(now, 10)] });
    const aRecent = await seedChat(a, { createdAt: daysAgo(now, 10) });
    const aNew = await seedChat(a, { messagesAt: [daysAgo(now, 100)] }); // old message, but the chat was created now
    const aAtCutoff = await seedChat(a, { createdAt: daysAgo(now, 30) }); // exactly at the cutoff: kept
    const bAncient = await seedChat(b, { createdAt: daysAgo(now, 400), messagesAt: [daysAgo(now, 400)] });
    const cKept = await seedChat(c, { createdAt: daysAgo(now, 40), messagesAt: [daysAgo(now, 40)] });
    const cExpired = await seedChat(c, { createdAt: daysAgo(now, 70), messagesAt: [daysAgo(now, 70), daysAgo(now, 69)] });

    const result = await runRetention(t.db, now);
    expect(purged(result, a.orgId)).toEqual({ organizationId: a.orgId, retentionDays: 30, cutoff: daysAgo(now, 30), chats: 2, messages: 3 });
    expect(purged(result, c.orgId)).toEqual({ organizationId: c.orgId, retentionDays: 60, cutoff: daysAgo(now, 60), chats: 1, messages: 2 });
    expect(purged(result, b.orgId)).toBeUndefined();

    expect(await chatIds(a.orgId)).toEqual(sorted([aRecentMessage, aRecent, aNew, aAtCutoff]));
    expect(await chatIds(b.orgId)).toEqual([bAncient]);
    expect(await chatIds(c.orgId)).toEqual([cKept]);
    // The messages went with their chats; the others' stayed.
    expect(await messageCount(a.orgId, [aExpired, aExpiredEmpty])).toBe(0);
    expect(await messageCount(c.orgId, [cExpired])).toBe(0);
    expect(await messageCount(a.orgId)).toBe(3);
    expect(await messageCount(b.orgId)).toBe(1);
    expect(await messageCount(c.orgId)).toBe(1);

    // One audit event per organization that lost something, with what and why.
    const aEvents = await auditEvents(a, 'retention.purged');
    expect(aEvents).toHaveLength(1);
    expect(aEvents[0]).toMatchObject({ action: 'retention.purged', actorId: null, actorEmail: null, targetType: 'organization', targetId: a.orgId });
    expect(aEvents[0]!.details).toEqual({ chats: 2, messages: 3, retentionDays: 30, cutoff: daysAgo(now, 30) });
    expect((await auditEvents(c, 'retention.purged'))[0]!.details).toEqual({ chats: 1, messages: 2, retentionDays: 60, cutoff: daysAgo(now, 60) });
    expect(await auditEvents(b, 'retention.purged')).toEqual([]);

    // A second run at the same time finds nothing more, and writes no event.
    const again = await runRetention(t.db, now);
    expect(purged(again, a.orgId)).toBeUndefined();
    expect(purged(again, c.orgId)).toBeUndefined();
    expect(await auditEvents(a, 'retention.purged')).toHaveLength(1);

    // Later, the chat at the cutoff and the one with a recent message expire in turn.
    const later = await runRetention(t.db, new Date(now.getTime() + 21 * DAY));
    expect(purged(later, a.orgId)).toMatchObject({ chats: 3, messages: 2 });
    expect(await chatIds(a.orgId)).toEqual([aNew]);
    expect(await chatIds(b.orgId)).toEqual([bAncient]);
  });

  test('clearing retentionDays stops the purge', async () => {
    const now = new Date();
    const tenant = await createTenant(t);
    await setRetention(tenant, 5);
    await setRetention(tenant, null);
    const chat = await seedChat(tenant, { createdAt: daysAgo(now, 50) });
    expect(purged(await runRetention(t.db, now), tenant.orgId)).toBeUndefined();
    expect(await chatIds(tenant.orgId)).toEqual([chat]);
  });

  test('works in batches: more expired chats than one batch are all deleted, audited once', async () => {
    const now = new Date();
    const tenant = await createTenant(t);
    await setRetention(tenant, 1);
    const expired: string[] = [];
    for (let i = 0; i < 7; i++) expired.push(await seedChat(tenant, { createdAt: daysAgo(now, 2 + i), messagesAt: [daysAgo(now, 2 + i), daysAgo(now, 2 + i)] }));
    const kept = await seedChat(tenant, { createdAt: daysAgo(now, 0.5) });

    const result = await runRetention(t.db, now, { batchSize: 3 });
    expect(purged(result, tenant.orgId)).toMatchObject({ chats: 7, messages: 14 });
    if (!result.skipped) expect(result.batches).toBeGreaterThanOrEqual(3);
    expect(await chatIds(tenant.orgId)).toEqual([kept]);
    expect(await messageCount(tenant.orgId)).toBe(0);
    const events = await auditEvents(tenant, 'retention.purged');
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ chats: 7, messages: 14, retentionDays: 1 });
  });

  test('an aborted run stops between batches; the next run finishes the work', async () => {
    const now = new Date();
    const tenant = await createTenant(t);
    await setRetention(tenant, 1);
    for (let i = 0; i < 4; i++) await seedChat(tenant, { createdAt: daysAgo(now, 3), messagesAt: [daysAgo(now, 3)] });
    const controller = new AbortController();
    controller.abort();
    const stopped = await runRetention(t.db, now, { batchSize: 2, signal: controller.signal });
    expect(stopped).toMatchObject({ skipped: false, aborted: true, chats: 0 });
    expect(await chatIds(tenant.orgId)).toHaveLength(4);
    expect(purged(await runRetention(t.db, now, { batchSize: 2 }), tenant.orgId)).toMatchObject({ chats: 4, messages: 4 });
  });

  test('two concurrent runs in one process: one does the work, the other skips', async () => {
    const now = new Date();
    const tenant = await createTenant(t);
    await setRetention(tenant, 1);
    for (let i = 0; i < 6; i++) await seedChat(tenant, { createdAt: daysAgo(now, 3), messagesAt: [daysAgo(now, 3)] });

    const results = await Promise.all([runRetention(t.db, now, { batchSize: 1 }), runRetention(t.db, now, { batchSize: 1 })]);
    const skipped = results.filter((r) => r.skipped);
    const worked = results.filter((r) => !r.skipped);
    expect(skipped).toEqual([{ skipped: true, reason: 'running' }]);
    expect(purged(worked[0]!, tenant.orgId)).toMatchObject({ chats: 6, messages: 6 });
    expect(await chatIds(tenant.orgId)).toEqual([]);
    expect(await auditEvents(tenant, 'retention.purged')).toHaveLength(1);
    // The guard is released: the next run runs.
    expect((await runRetention(t.db, now)).skipped).toBe(false);
  });

  describe.skipIf(!onPostgres)('several instances (PostgreSQL advisory lock)', () => {
    let other: Database;
    beforeAll(async () => {
      // A second pool on the same database: another instance of the service.
      other = await openDatabase({ databaseUrl: String(t.db.orm.config.get('clientUrl')), dataDir: 'memory://', databasePoolSize: 2 });
    });
    afterAll(async () => {
      await other?.close();
    });

    test('while another instance holds the lock, a run skips and deletes nothing', async () => {
      const now = new Date();
      const tenant = await createTenant(t);
      await setRetention(tenant, 1);
      const chat = await seedChat(tenant, { createdAt: daysAgo(now, 3) });

      const holder = other.fork();
      await holder.begin();
      try {
        const [held] = await holder.execute<{ locked: boolean }[]>(`select pg_try_advisory_xact_lock(?::bigint) as locked`, [RETENTION_LOCK_KEY]);
        expect(held!.locked).toBe(true);
        expect(await runRetention(t.db, now)).toEqual({ skipped: true, reason: 'locked' });
        expect(await chatIds(tenant.orgId)).toEqual([chat]);
      } finally {
        await holder.rollback();
      }
      // Released: the next run does the work, and releases the lock in turn.
      expect(purged(await runRetention(t.db, now), tenant.orgId)).toMatchObject({ chats: 1 });
      expect((await runRetention(other, now)).skipped).toBe(false);
    });

    test('two instances at once: one purges, the other skips; nothing is deleted twice, no error', async () => {
      const now = new Date();
      const tenant = await createTenant(t);
      await setRetention(tenant, 1);
      for (let i = 0; i < 8; i++) await seedChat(tenant, { createdAt: daysAgo(now, 3), messagesAt: [daysAgo(now, 3), daysAgo(now, 3)] });

      const results = await Promise.all([runRetention(t.db, now, { batchSize: 1 }), runRetention(other, now, { batchSize: 1 })]);
      expect(results.filter((r) => r.skipped)).toEqual([{ skipped: true, reason: 'locked' }]);
      const total = results.reduce((sum, r) => sum + (r.skipped ? 0 : (purged(r, tenant.orgId)?.chats ?? 0)), 0);
      expect(total).toBe(8);
      expect(await chatIds(tenant.orgId)).toEqual([]);
      const events = await auditEvents(tenant, 'retention.purged');
      expect(events).toHaveLength(1);
      expect(events[0]!.details).toMatchObject({ chats: 8, messages: 16 });
    });
  });

  test('the scheduler logs a failed run and keeps going; stop() ends it', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    let calls = 0;
    const broken = {
      kind: 'postgresql',
      fork() {
        calls += 1;
        throw new Error('database on fire');
      },
    } as unknown as Database;
    const task = startRetention(broken, { intervalSeconds: 10, log });
    for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'retention run failed'); i++) await Bun.sleep(20);
    await task.stop();
    expect(calls).toBe(1);
    const failure = lines.find((l) => l.msg === 'retention run failed');
    expect(failure).toBeDefined();
    expect(JSON.stringify(failure)).toContain('database on fire');
    // Stopped: no further run is scheduled.
    await Bun.sleep(50);
    expect(calls).toBe(1);
  });
});

// ---- erasure -------------------------------------------------------------------------------

describe('DELETE /orgs/{org}/end-users/{externalUserId}', () => {
  const erase = (token: string, org: string, externalUserId: string) =>
    as(token).DELETE('/orgs/{org}/end-users/{externalUserId}', { params: { path: { org, externalUserId } } });

  test('deletes every chat of the end user and their messages, only theirs, and audits it', async () => {
    const a = await createTenant(t);
    const b = await createTenant(t);
    const person = 'customer-42';
    const now = new Date();
    const first = await seedChat(a, { externalUserId: person, messagesAt: [daysAgo(now, 2), daysAgo(now, 1)] });
    const second = await seedChat(a, { externalUserId: person, messagesAt: [daysAgo(now, 1)] });
    const third = await seedChat(a, { externalUserId: person });
    const someoneElse = await seedChat(a, { externalUserId: 'customer-43', messagesAt: [daysAgo(now, 1)] });
    const anonymous = await seedChat(a, { messagesAt: [daysAgo(now, 1)] });
    const sameIdElsewhere = await seedChat(b, { externalUserId: person, messagesAt: [daysAgo(now, 1)] });

    const { data, response } = await erase(a.adminToken, 'me', person);
    expect(response.status).toBe(200);
    expect(data).toEqual({ externalUserId: person, chats: 3, messages: 3 });
    expect(await chatIds(a.orgId)).toEqual(sorted([someoneElse, anonymous]));
    expect(await messageCount(a.orgId, [first, second, third])).toBe(0);
    expect(await messageCount(a.orgId)).toBe(2);
    // Another organization's end user with the same id is another person.
    expect(await chatIds(b.orgId)).toEqual([sameIdElsewhere]);
    expect(await messageCount(b.orgId)).toBe(1);

    const events = await auditEvents(a, 'enduser.erased');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actorEmail: a.adminEmail, targetType: 'endUser', targetId: person, details: { chats: 3, messages: 3 } });
    expect(await auditEvents(b, 'enduser.erased')).toEqual([]);

    // Idempotent: again, nothing is left, and that is still a 200 (and audited as asked).
    const again = await erase(a.adminToken, a.slug, person);
    expect(again.response.status).toBe(200);
    expect(again.data).toEqual({ externalUserId: person, chats: 0, messages: 0 });
    expect((await auditEvents(a, 'enduser.erased'))[0]!.details).toEqual({ chats: 0, messages: 0 });
    // An end user who never existed: 0/0 as well.
    expect((await erase(a.adminToken, 'me', 'nobody-at-all')).data).toEqual({ externalUserId: 'nobody-at-all', chats: 0, messages: 0 });
  });

  test('ids with spaces, slashes, percent signs and unicode are URL-decoded and matched exactly', async () => {
    const tenant = await createTenant(t);
    const ids = ['john doe', 'tenant/42', 'a%2Fb', 'ünïcødé 🙂', 'a+b', 'x?y#z'];
    const chats = new Map<string, string>();
    for (const id of ids) chats.set(id, await seedChat(tenant, { externalUserId: id, messagesAt: [new Date().toISOString()] }));
    // A decoy for each: the same text, not decoded, or decoded once too often.
    const decoys = [await seedChat(tenant, { externalUserId: 'john%20doe' }), await seedChat(tenant, { externalUserId: 'a/b' }), await seedChat(tenant, { externalUserId: 'a b' })];

    // Sent exactly as written here (not through the typed client's own encoding).
    const raw = (path: string) => t.fetch(`/orgs/me/end-users/${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${tenant.adminToken}` } });
    const cases: [string, string][] = [
      ['john%20doe', 'john doe'],
      ['tenant%2F42', 'tenant/42'],
      ['a%252Fb', 'a%2Fb'],
      [encodeURIComponent('ünïcødé 🙂'), 'ünïcødé 🙂'],
      ['a%2Bb', 'a+b'],
      [encodeURIComponent('x?y#z'), 'x?y#z'],
    ];
    for (const [path, id] of cases) {
      const response = await raw(path);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ externalUserId: id, chats: 1, messages: 1 });
    }
    expect(await chatIds(tenant.orgId)).toEqual(sorted(decoys));
    // The typed client encodes the same way.
    const chat = await seedChat(tenant, { externalUserId: 'via/the client ✓' });
    const { data } = await erase(tenant.adminToken, 'me', 'via/the client ✓');
    expect(data).toEqual({ externalUserId: 'via/the client ✓', chats: 1, messages: 0 });
    expect(await chatIds(tenant.orgId)).not.toContain(chat);
  });

  test('admins and superadmins only; another organization is a 404', async () => {
    const a = await createTenant(t);
    const b = await createTenant(t);
    const chat = await seedChat(a, { externalUserId: 'target' });
    const user = await addUser(t, a, 'user');
    const viewer = await addUser(t, a, 'viewer');

    expect((await erase(user.token, 'me', 'target')).response.status).toBe(403);
    expect((await erase(viewer.token, 'me', 'target')).response.status).toBe(403);
    expect((await erase(b.adminToken, a.slug, 'target')).response.status).toBe(404);
    const anonymous = await t.fetch(`/orgs/${a.slug}/end-users/target`, { method: 'DELETE' });
    expect(anonymous.status).toBe(401);
    // B's admin on `me` erases in B, where there is nothing.
    expect((await erase(b.adminToken, 'me', 'target')).data).toEqual({ externalUserId: 'target', chats: 0, messages: 0 });
    expect(await chatIds(a.orgId)).toEqual([chat]);

    const root = await erase(await superadminToken(t), a.slug, 'target');
    expect(root.response.status).toBe(200);
    expect(root.data).toEqual({ externalUserId: 'target', chats: 1, messages: 0 });
    expect(await chatIds(a.orgId)).toEqual([]);
  });
});

// ---- the server process --------------------------------------------------------------------

describe('the server process', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await killAll();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** An organization with retention and one expired and one recent chat, written straight to the database. */
  async function seed(db: Database, now: Date) {
    const orgId = crypto.randomUUID();
    const em = db.fork();
    await em.execute(`insert into organizations (id, name, slug, settings) values (?, 'Retained', ?, '{"retentionDays": 7}')`, [orgId, `ret-${orgId.slice(0, 8)}`]);
    const expired = crypto.randomUUID();
    const recent = crypto.randomUUID();
    await em.execute(`insert into chats (organization_id, id, created_at, updated_at) values (?, ?, ?, ?), (?, ?, ?, ?)`, [
      orgId, expired, daysAgo(now, 8), daysAgo(now, 8),
      orgId, recent, daysAgo(now, 1), daysAgo(now, 1),
    ]);
    await em.execute(`insert into messages (organization_id, id, chat_id, role, content, created_at) values (?, ?, ?, 'user', 'old', ?)`, [orgId, crypto.randomUUID(), expired, daysAgo(now, 8)]);
    return { orgId, expired, recent };
  }

  test('purges on its own every RETENTION_INTERVAL_SECONDS, without a request, and stops cleanly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatlogger-retention-'));
    dirs.push(dataDir);
    const databaseUrl = onPostgres ? await createServerDatabase() : undefined;
    const open = () => openDatabase({ databaseUrl, dataDir, databasePoolSize: 2 });

    let db = await open();
    await db.migrate();
    const first = await seed(db, new Date());
    if (!onPostgres) await db.close(); // PGlite: one process at a time

    const server = await startServer(childEnv({ DATA_DIR: dataDir, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', LOG_LEVEL: 'info', RETENTION_INTERVAL_SECONDS: '10' }));
    const purgedLine = (l: string) => parseJson(l)?.msg === 'retention purged';
    const line = parseJson(await server.waitForLine(purgedLine, 20_000))!;
    expect(line).toMatchObject({ chats: 1, messages: 1 });

    if (onPostgres) {
      // The next run, one interval later, takes what expired since.
      const second = await seed(db, new Date());
      const start = performance.now();
      await server.waitForLine((l) => purgedLine(l) && l !== server.lines.find(purgedLine), 20_000);
      expect(performance.now() - start).toBeLessThan(15_000);
      expect((await db.fork().execute(`select id from chats where organization_id = ?`, [second.orgId])).map((r) => r.id)).toEqual([second.recent]);
    }

    const { exitCode } = await stopProcess(server, 'SIGTERM', 10_000);
    expect(exitCode).toBe(0);
    if (!onPostgres) db = await open();
    try {
      const chats = await db.fork().execute<{ id: string }[]>(`select id from chats where organization_id = ?`, [first.orgId]);
      expect(chats.map((r) => r.id)).toEqual([first.recent]);
      const [events] = await db.fork().execute<{ n: string }[]>(`select count(*) as n from audit_events where organization_id = ? and action = 'retention.purged'`, [first.orgId]);
      expect(Number(events!.n)).toBe(1);
    } finally {
      await db.close();
    }
  }, 90_000);
});
