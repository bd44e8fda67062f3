/**
 * The server process with its PostgreSQL server taken away, through a TCP proxy between the two
 * (the shared PostgreSQL server itself keeps running):
 * - unreachable at start: the server starts anyway, /health 200, /ready and every database-backed
 *   request a fast 503 problem; when the database appears it becomes ready by itself;
 * - lost under load (connections destroyed, then a network that stops answering): every request
 *   ends within the time limits as a 503 problem or a success, and when the database is back the
 *   server serves again without a restart; every acknowledged message is stored.
 * PostgreSQL only: the embedded database cannot be taken away from its process.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/db/orm.ts';
import { createServerDatabase, onCitus, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, parseJson, startServer, stopProcess, type RunningServer } from './support/process.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';
import { createTenantOverHttp, IngestLoad, isProblem, timedCall, verify, type Attempt, type Tenant } from './support/ingest-load.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const ADMIN = { email: 'root@outage.test', password: 'outage-root-password' };
/** The server's limits in this file: short, so that the test is. */
const CONNECT_TIMEOUT_S = 1;
const STATEMENT_TIMEOUT_S = 2;
/**
 * The longest a request may take while the database is away: waiting for a connection, then for
 * a statement (the client gives up one second after the statement timeout), possibly twice when
 * the request waited behind another group commit, and slack for a busy machine.
 */
const BOUND_MS = (CONNECT_TIMEOUT_S + 2 * (STATEMENT_TIMEOUT_S + 1)) * 1000 + 3000;

const pgUrl = process.env.TEST_DATABASE_URL;
let proxy: TcpProxy;
let server: RunningServer;
let dataDir: string;
let tenant: Tenant;
const base = () => `http://127.0.0.1:${server.port}`;

/** 201, or 200 for a message sent again that was stored although its first answer was lost. */
const ok = (a: Attempt) => a.status === 201 || a.status === 200;

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const startedAt = performance.now();
  while (performance.now() - startedAt < timeoutMs) {
    if (await check()) return performance.now() - startedAt;
    await Bun.sleep(100);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

const citus = await onCitus();

describe.skipIf(testDatabaseKind !== 'postgresql')('database outages (PostgreSQL through a proxy)', () => {
  beforeAll(async () => {
    const databaseUrl = await createServerDatabase();
    if (citus) {
      // Distributing a new database takes Citus tens of seconds on a busy machine: done here, so
      // that the server's own start, once the database appears, is what the test times.
      const db = await openDatabase({ databaseUrl, dataDir: 'memory://', databasePoolSize: 1 });
      await db.migrate();
      await db.close();
    }
    const target = new URL(pgUrl!);
    proxy = await startTcpProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432), startCut: true });
    dataDir = mkdtempSync(join(tmpdir(), 'chatlogger-outage-'));
    server = await startServer(
      childEnv({
        DATABASE_URL: proxy.urlFor(databaseUrl),
        DATA_DIR: dataDir,
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        RETENTION_ENABLED: 'false',
        INGEST_RATE_LIMIT_PER_MINUTE: '0',
        DATABASE_CONNECT_TIMEOUT_SECONDS: String(CONNECT_TIMEOUT_S),
        DATABASE_STATEMENT_TIMEOUT_SECONDS: String(STATEMENT_TIMEOUT_S),
        DATABASE_RETRY_MAX_SECONDS: '1',
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await proxy?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('unreachable at start: alive, not ready, database-backed requests are fast 503 problems', async () => {
    expect(server.lines.some((line) => parseJson(line)?.msg === 'database not ready; the service starts anyway and keeps trying')).toBe(true);
    const health = await timedCall(`${base()}/health`);
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });

    const ready = await timedCall(`${base()}/ready`);
    expect(ready.status).toBe(503);
    expect(isProblem(ready)).toBe(true);

    const requests = [
      timedCall(`${base()}/api/v1/orgs/acme/chats`, { method: 'POST', json: {}, headers: { 'x-organization-api-key': 'clk_x' } }),
      timedCall(`${base()}/auth/login`, { method: 'POST', json: ADMIN }),
      timedCall(`${base()}/orgs`, { headers: { authorization: 'Bearer x' } }),
    ];
    for (const reply of await Promise.all(requests)) {
      expect(reply.status).toBe(503);
      expect(isProblem(reply)).toBe(true);
      expect((reply.body as { type: string }).type).toBe('/problems/unavailable');
      expect(reply.ms).toBeLessThan(1000);
    }
    // The OTLP receiver too, with the Retry-After that OTLP exporters wait for before retrying.
    const otlp = await fetch(`${base()}/api/v1/orgs/acme/otel/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'x-organization-api-key': 'clk_x' },
      body: new Uint8Array(),
    });
    expect(otlp.status).toBe(503);
    expect(otlp.headers.get('content-type')).toBe('application/problem+json');
    expect(otlp.headers.get('retry-after')).toBe('1');
    // Not a client mistake either: an unknown route is still a 404.
    expect((await timedCall(`${base()}/no/such/route`)).status).toBe(404);
  }, 30_000);

  test('when the database appears, the server becomes ready by itself and serves', async () => {
    await proxy.restore();
    const ms = await waitFor(async () => (await timedCall(`${base()}/ready`)).status === 200, 15_000);
    expect(ms).toBeLessThan(10_000);
    const logged = server.lines.map((line) => parseJson(line)?.msg);
    expect(logged).toContain('database ready');
    if (!citus) expect(logged).toContain('migrations applied');
    expect(logged).toContain('bootstrap superadmin');

    tenant = await createTenantOverHttp(base(), ADMIN, 4);
    const reply = await timedCall(`${base()}/api/v1/orgs/${tenant.slug}/chats/${tenant.chatIds[0]}/messages`, {
      method: 'POST',
      json: { role: 'user', content: 'hello' },
      headers: { 'x-organization-api-key': tenant.apiKey },
    });
    expect(reply.status).toBe(201);
  }, 30_000);

  test('lost under load: bounded 503 problems, recovery without restart, no acknowledged message lost', async () => {
    const load = new IngestLoad({ baseUrl: base, tenant, clients: 8, timeoutMs: 20_000, retryDelayMs: 100 }).start();
    const phase = (from: number, to: number) => load.attempts.filter((a) => a.at >= from && a.at < to);

    await Bun.sleep(1000);
    const cutAt = performance.now();
    await proxy.cut();
    await Bun.sleep(3000);
    // A network that stops answering: connections stay open, nothing comes back.
    await proxy.restore();
    await Bun.sleep(500);
    const frozenAt = performance.now();
    proxy.freeze();
    await Bun.sleep(STATEMENT_TIMEOUT_S * 1000 + 3000);
    const restoredAt = performance.now();
    await proxy.restore();
    const recoveredMs = await waitFor(async () => phase(performance.now() - 300, Infinity).some((a) => a.status === 201), 15_000);
    await Bun.sleep(1000);
    await load.stop();

    const before = load.attempts.filter((a) => a.at + a.ms < cutAt);
    const during = load.attempts.filter((a) => a.at >= cutAt && a.at < restoredAt);
    const after = phase(restoredAt + recoveredMs + 500, Infinity);
    const describeAttempts = (attempts: Attempt[]) => attempts.filter((a) => !(a.status >= 200 && a.status < 300) && !(a.status === 503 && a.problem)).slice(0, 5);

    expect(before.length).toBeGreaterThan(0);
    expect(before.filter((a) => a.status !== 201)).toEqual([]);
    // While the database is away: successes (committed just before) or 503 problems, nothing else.
    expect(during.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    expect(phase(frozenAt, restoredAt).filter((a) => a.status === 503).length).toBeGreaterThan(0);
    expect(describeAttempts(during)).toEqual([]);
    // None hangs: each answered within the connect and statement timeouts.
    const slowest = Math.max(...load.attempts.map((a) => a.ms));
    expect(slowest).toBeLessThan(BOUND_MS);
    expect(load.attempts.filter((a) => a.status === 0)).toEqual([]);
    // Back to normal without a restart.
    expect(recoveredMs).toBeLessThan(10_000);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((a) => !ok(a))).toEqual([]);
    expect((await timedCall(`${base()}/ready`)).status).toBe(200);

    const verdict = await verify(base(), load, tenant);
    expect(load.unacknowledged.size).toBe(0);
    expect(verdict.lost).toEqual([]);
    expect(verdict.duplicates).toEqual([]);
    expect(verdict.wrong).toEqual([]);
    expect(verdict.counterMismatches).toEqual([]);
    // The chat that got a message in the previous test holds it too.
    expect(verdict.stored).toBe(verdict.acknowledged + 1);
    console.log(
      `outage: ${load.attempts.length} requests, ${verdict.acknowledged} acknowledged, ${during.filter((a) => a.status === 503).length} 503 while away, slowest ${Math.round(slowest)} ms, recovered in ${Math.round(recoveredMs)} ms`,
    );
  }, 90_000);

  test('connections that went silent are closed, not lent again: requests succeed again without any repair', async () => {
    const load = new IngestLoad({ baseUrl: base, tenant, clients: 8, timeoutMs: 20_000, retryDelayMs: 100 }).start();
    await Bun.sleep(1000);
    // The pool's open connections stop answering; new connections work (a firewall lost their state).
    proxy.freezeExisting();
    const frozenAt = performance.now();
    const recoveredMs = await waitFor(async () => load.attempts.some((a) => a.at > frozenAt + 100 && a.status === 201), 20_000);
    await Bun.sleep(3000);
    const endAt = performance.now();
    await load.stop();

    const silent = load.attempts.filter((a) => a.at >= frozenAt && a.at < frozenAt + recoveredMs);
    expect(silent.filter((a) => !(a.status === 503 && a.problem) && !ok(a))).toEqual([]);
    expect(Math.max(...load.attempts.map((a) => a.ms))).toBeLessThan(BOUND_MS);
    // Each stuck connection fails one statement (after the read timeout) and is replaced.
    expect(recoveredMs).toBeLessThan(BOUND_MS + 2000);
    const settled = load.attempts.filter((a) => a.at > endAt - 1500 && a.at < endAt);
    expect(settled.length).toBeGreaterThan(0);
    expect(settled.filter((a) => !ok(a))).toEqual([]);
    const verdict = await verify(base(), load, tenant);
    expect(verdict.lost).toEqual([]);
    expect(verdict.counterMismatches).toEqual([]);
    await proxy.restore();
  }, 60_000);

  test('SIGTERM while the database is away still exits 0 in time', async () => {
    await proxy.cut();
    const { exitCode, ms } = await stopProcess(server, 'SIGTERM', 15_000);
    expect(exitCode).toBe(0);
    expect(ms).toBeLessThan(12_000);
  }, 30_000);
});
