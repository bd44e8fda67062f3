/**
 * Two server processes on one PostgreSQL database, as behind a load balancer: requests alternate
 * between them, and what one writes the other reads. A revoked API key is refused by both within
 * the documented staleness bound (API_KEY_CACHE_SECONDS, default 5 s; asserted within 10 s), and
 * background retention runs on one instance at a time under its advisory lock.
 * PostgreSQL only: the embedded database belongs to one process.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { RETENTION_LOCK_KEY } from '../src/modules/lifecycle/retention.ts';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, parseJson, startServer, stopProcess, type RunningServer } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const ON_POSTGRES = testDatabaseKind === 'postgresql';
if (!ON_POSTGRES) console.log('multi-instance.test.ts: skipped, it needs PostgreSQL (TEST_DATABASE_URL)');

const ADMIN_EMAIL = 'root@multi.test';
const ADMIN_PASSWORD = 'multi-instance-root-password';
const JWT_SECRET = 'multi-instance-shared-secret-of-48-characters-xx';
const REVOCATION_BOUND_MS = 10_000;

let a: RunningServer;
let b: RunningServer;
let db: Database;
/** A connection of its own, to hold the retention lock as a third "instance" would. */
let lockHolder: Database;
const workDir = mkdtempSync(join(tmpdir(), 'chatlogger-multi-'));
const retiredOrg = { id: crypto.randomUUID(), slug: `retired-${Date.now().toString(36)}` };
const OLD_CHATS = 3;

beforeAll(async () => {
  if (!ON_POSTGRES) return;
  const databaseUrl = await createServerDatabase();
  db = await openDatabase({ databaseUrl, dataDir: 'memory://', databasePoolSize: 2 });
  await db.migrate();
  lockHolder = await openDatabase({ databaseUrl, dataDir: 'memory://', databasePoolSize: 1 });
  // An organization keeping 1 day, with chats idle for 5 days: retention's work, once allowed.
  const em = db.fork();
  await em.execute(`insert into organizations (id, name, slug, settings) values (?, 'Retired', ?, '{"retentionDays":1}')`, [retiredOrg.id, retiredOrg.slug]);
  for (let i = 0; i < OLD_CHATS; i++) {
    await em.execute(`insert into chats (organization_id, id, title, created_at, updated_at) values (?, ?, 'old', now() - interval '5 days', now() - interval '5 days')`, [retiredOrg.id, crypto.randomUUID()]);
  }
  // Taken before the instances start, so that both of their first runs find it held.
  const [lock] = await lockHolder.fork().execute<{ locked: boolean }[]>(`select pg_try_advisory_lock(${RETENTION_LOCK_KEY}::bigint) as locked`);
  if (!lock?.locked) throw new Error('could not take the retention lock');

  const env = (name: string) =>
    childEnv({
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      DATA_DIR: join(workDir, name),
      NODE_ENV: 'production',
      JWT_SECRET,
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'debug',
      RETENTION_INTERVAL_SECONDS: '10',
    });
  // Started together: the bootstrap of the superadmin must survive the race.
  [a, b] = await Promise.all([startServer(env('a')), startServer(env('b'))]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((server) => stopProcess(server)));
  await killAll();
  await lockHolder?.close();
  await db?.close();
  rmSync(workDir, { recursive: true, force: true });
});

type Init = { method?: string; token?: string; apiKey?: string; json?: unknown };
async function call(server: RunningServer, path: string, { method = 'GET', token, apiKey, json }: Init = {}) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (apiKey) headers['x-organization-api-key'] = apiKey;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

async function login(server: RunningServer, email: string, password: string): Promise<string> {
  const response = await call(server, '/auth/login', { method: 'POST', json: { email, password, issueToken: true } });
  if (response.status !== 200) throw new Error(`login on :${server.port} answered ${response.status}`);
  return response.body.token;
}

const state: { rootToken?: string; adminToken?: string; apiKey?: string; slug: string } = { slug: `multi-${Date.now().toString(36)}` };

describe.skipIf(!ON_POSTGRES)('two instances on one PostgreSQL database', () => {
  test('one superadmin was bootstrapped, and a session opened on one instance works on the other', async () => {
    const [{ count }] = await db.fork().execute<{ count: string }[]>(`select count(*) as count from users where email = ?`, [ADMIN_EMAIL]);
    expect(Number(count)).toBe(1);
    state.rootToken = await login(a, ADMIN_EMAIL, ADMIN_PASSWORD);
    expect((await call(b, '/users/me', { token: state.rootToken })).body.email).toBe(ADMIN_EMAIL);
  });

  test('administration alternates between the instances', async () => {
    const root = state.rootToken!;
    expect((await call(a, '/orgs', { method: 'POST', token: root, json: { name: 'Multi', slug: state.slug } })).status).toBe(201);
    const user = await call(b, `/orgs/${state.slug}/users`, { method: 'POST', token: root, json: { email: `admin@${state.slug}.test`, password: 'multi-admin-password', role: 'admin' } });
    expect(user.status).toBe(201);
    state.adminToken = await login(a, `admin@${state.slug}.test`, 'multi-admin-password');
    const key = await call(b, '/orgs/me/apikeys', { method: 'POST', token: state.adminToken, json: { label: 'multi' } });
    expect(key.status).toBe(201);
    state.apiKey = key.body.key;
  });

  test('chats and messages written through one instance are read through the other', async () => {
    const servers = [a, b];
    const chats: string[] = [];
    for (let i = 0; i < 6; i++) {
      const via = servers[i % 2]!;
      const chat = await call(via, `/api/v1/orgs/${state.slug}/chats`, { method: 'POST', apiKey: state.apiKey, json: { title: `chat ${i}` } });
      expect(chat.status).toBe(201);
      chats.push(chat.body.id);
    }
    for (const [i, chatId] of chats.entries()) {
      const writer = servers[(i + 1) % 2]!;
      const single = await call(writer, `/api/v1/orgs/${state.slug}/chats/${chatId}/messages`, { method: 'POST', apiKey: state.apiKey, json: { role: 'user', content: `question ${i}` } });
      expect(single.status).toBe(201);
      const batch = await call(servers[i % 2]!, `/api/v1/orgs/${state.slug}/chats/${chatId}/messages/batch`, {
        method: 'POST',
        apiKey: state.apiKey,
        json: { messages: [{ role: 'assistant', content: `answer ${i}` }, { role: 'user', content: `thanks ${i}` }] },
      });
      expect(batch.status).toBe(201);
      // Read on the instance that did not write last.
      const read = await call(servers[(i + 1) % 2]!, `/orgs/me/chats/${chatId}/messages`, { token: state.adminToken });
      expect(read.body.items.map((m: { content: string }) => m.content)).toEqual([`question ${i}`, `answer ${i}`, `thanks ${i}`]);
    }
    // An idempotent retry on the other instance finds the chat the first one wrote.
    const retry = await call(b, `/api/v1/orgs/${state.slug}/chats`, { method: 'POST', apiKey: state.apiKey, json: { id: chats[0], title: 'chat 0' } });
    expect(retry.status).toBe(200);
    const listed = await call(a, '/orgs/me/chats?limit=50', { token: state.adminToken });
    expect(listed.body.items.map((c: { id: string; messageCount: number }) => [c.id, c.messageCount]).sort()).toEqual(chats.map((id) => [id, 3]).sort());
  });

  test(`a key revoked on one instance is refused by both within ${REVOCATION_BOUND_MS / 1000} s`, async () => {
    const key = await call(a, '/orgs/me/apikeys', { method: 'POST', token: state.adminToken, json: { label: 'to revoke' } });
    const ingest = (server: RunningServer) => call(server, `/api/v1/orgs/${state.slug}/chats`, { method: 'POST', apiKey: key.body.key, json: { title: 'with a doomed key' } });
    // Both instances have seen (and may have cached) the key as valid.
    expect((await ingest(a)).status).toBe(201);
    expect((await ingest(b)).status).toBe(201);

    expect((await call(a, `/orgs/me/apikeys/${key.body.id}`, { method: 'DELETE', token: state.adminToken })).status).toBe(204);
    const revokedAt = performance.now();
    const refusedAfter: Record<string, number> = {};
    while (Object.keys(refusedAfter).length < 2 && performance.now() - revokedAt < REVOCATION_BOUND_MS + 2_000) {
      for (const [name, server] of [['a', a], ['b', b]] as const) {
        if (refusedAfter[name] !== undefined) continue;
        const answer = await ingest(server);
        if (answer.status === 401) refusedAfter[name] = performance.now() - revokedAt;
        else expect(answer.status).toBe(201);
      }
      await Bun.sleep(100);
    }
    expect(Object.keys(refusedAfter).sort()).toEqual(['a', 'b']);
    expect(Math.max(...Object.values(refusedAfter))).toBeLessThan(REVOCATION_BOUND_MS);
    console.log(`revoked key refused after: a ${Math.round(refusedAfter.a!)} ms, b ${Math.round(refusedAfter.b!)} ms`);
    // And it stays refused.
    expect((await ingest(a)).status).toBe(401);
    expect((await ingest(b)).status).toBe(401);
  }, 20_000);

  test('a session ended on one instance is refused by the other at once', async () => {
    const token = await login(b, ADMIN_EMAIL, ADMIN_PASSWORD);
    expect((await call(a, '/users/me', { token })).status).toBe(200);
    expect((await call(b, '/auth/logout', { method: 'POST', token })).status).toBe(204);
    const refused = await call(a, '/users/me', { token });
    expect(refused.status).toBe(401);
  });

  test('retention runs on one instance at a time: none while the lock is held elsewhere, then exactly one purge', async () => {
    const retentionLines = (server: RunningServer) => server.lines.map(parseJson).filter((l) => typeof l?.msg === 'string' && (l.msg as string).startsWith('retention'));
    // Both instances ran at start and found the lock taken; nothing was deleted.
    for (const server of [a, b]) expect(retentionLines(server).some((l) => l!.msg === 'retention skipped: another run holds the lock')).toBe(true);
    const remaining = async () => Number((await db.fork().execute<{ n: string }[]>(`select count(*) as n from chats where organization_id = ?`, [retiredOrg.id]))[0]!.n);
    expect(await remaining()).toBe(OLD_CHATS);

    await lockHolder.fork().execute(`select pg_advisory_unlock(${RETENTION_LOCK_KEY}::bigint)`);
    // The next runs come within RETENTION_INTERVAL_SECONDS (10 s).
    const deadline = performance.now() + 25_000;
    while ((await remaining()) > 0 && performance.now() < deadline) await Bun.sleep(250);
    expect(await remaining()).toBe(0);

    const events = await db.fork().execute<{ details: { chats: number } }[]>(`select details from audit_events where organization_id = ? and action = 'retention.purged'`, [retiredOrg.id]);
    expect(events.map((e) => e.details.chats)).toEqual([OLD_CHATS]);
    // The run logs once its last batch has committed: the line may come just after the rows went.
    const purgers = () => [a, b].filter((server) => retentionLines(server).some((l) => l!.msg === 'retention purged'));
    while (purgers().length === 0 && performance.now() < deadline + 5_000) await Bun.sleep(100);
    expect(purgers().length).toBe(1);
  }, 40_000);
});
