/**
 * The real entry points as child processes: `bun src/main.ts` on a port of 127.0.0.1 and
 * `bun src/cli.ts`, against one data directory (embedded PGlite), or one database of the
 * TEST_DATABASE_URL server, shared by every test of this file in order:
 * CLI (migrate starts in beforeAll) -> first server run (full flow) -> SIGTERM -> restart on the
 * same data -> SIGTERM with a request in flight. The tests depend on the ones before them.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { openDatabase } from '../src/db/orm.ts';
import { childEnv, killAll, parseJson, runBun, startServer, stopProcess, type RunningServer, type RunResult } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const ADMIN_EMAIL = 'root@chatlogger.test';
const ADMIN_PASSWORD = 'root-password-for-server-tests';
const ORG_ADMIN_PASSWORD = 'org-admin-password-1';
const WRONG_PASSWORD = 'not-the-right-password-9';
const CLI_USER_PASSWORD = 'cli-user-password-7';
const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const ORG_SLUG = `srv-${suffix}`;
const CLI_SLUG = `cli-${suffix}`;
const CLI_EMAIL = `cli-admin-${suffix}@chatlogger.test`;
const ORG_ADMIN_EMAIL = `admin-${suffix}@chatlogger.test`;
const CHAT_ID = crypto.randomUUID();
const MESSAGE_ID = crypto.randomUUID();
/** Small, so that a 413 is cheap to provoke. */
const MAX_BODY_BYTES = 64 * 1024;

const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
};

let dataDir: string;
let databaseUrl: string | undefined;
/** The environment shared by the server and the CLI: the same database either way. */
let dbEnv: Record<string, string | undefined>;
let freshMigrate: Promise<RunResult>;
const serverEnv = (extra: Record<string, string> = {}) =>
  childEnv({ ...dbEnv, HOST: '127.0.0.1', LOG_LEVEL: 'info', ADMIN_EMAIL, ADMIN_PASSWORD, MAX_BODY_BYTES: String(MAX_BODY_BYTES), ...extra });
const cli = (args: string[], options?: { stdin?: string }) => runBun(['src/cli.ts', ...args], childEnv(dbEnv), { timeoutMs: 60_000, ...options });

/** Every secret the processes saw; none may ever appear in their output. */
const secrets = new Set<string>([ADMIN_PASSWORD, ORG_ADMIN_PASSWORD, WRONG_PASSWORD, CLI_USER_PASSWORD]);

beforeAll(async () => {
  dataDir = tempDir('chatlogger-server-');
  databaseUrl = testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined;
  dbEnv = { DATA_DIR: dataDir, DATABASE_URL: databaseUrl };
  // The first open of a fresh embedded database takes seconds: start it now, so the tests that
  // need no database run meanwhile. The migrate test below checks its result.
  freshMigrate = cli(['migrate']);
  freshMigrate.catch(() => {});
}, 60_000);

afterAll(async () => {
  await killAll();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  // The preload drops it as well at the end of the run; doing it here keeps this file tidy alone.
  if (databaseUrl) {
    const admin = await openDatabase({ databaseUrl: process.env.TEST_DATABASE_URL, dataDir: 'memory://', databasePoolSize: 1 });
    try {
      await admin.fork().execute(`drop database if exists ${new URL(databaseUrl).pathname.slice(1)} with (force)`);
    } finally {
      await admin.close();
    }
  }
}, 30_000);

function expectExit(result: RunResult, code: number) {
  if (result.exitCode !== code) throw new Error(`expected exit ${code}, got ${result.exitCode}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

describe('startup refusal', () => {
  test('NODE_ENV=production without JWT_SECRET exits non-zero and names JWT_SECRET', async () => {
    const dir = tempDir('chatlogger-prod-');
    const result = await runBun(['src/main.ts'], childEnv({ NODE_ENV: 'production', DATA_DIR: dir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' }), { timeoutMs: 20_000 });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('JWT_SECRET');
    // It refused before generating a secret or touching a database.
    expect(existsSync(join(dir, 'jwt-secret'))).toBe(false);
    expect(existsSync(join(dir, 'pgdata'))).toBe(false);
  }, 30_000);
});

const cliState: { user?: { id: string; email: string; role: string }; apiKey?: string; orgId?: string } = {};

describe('CLI', () => {
  test('hash-password prints an argon2id hash of the password (from --password or stdin)', async () => {
    const result = await cli(['hash-password', '--password', 'p']);
    expectExit(result, 0);
    const hash = result.stdout.trim();
    expect(hash).toStartWith('$argon2id$');
    expect(await Bun.password.verify('p', hash)).toBe(true);
    expect(await Bun.password.verify('q', hash)).toBe(false);

    const fromStdin = await cli(['hash-password'], { stdin: 'stdin-password\n' });
    expectExit(fromStdin, 0);
    expect(await Bun.password.verify('stdin-password', fromStdin.stdout.trim())).toBe(true);
  }, 60_000);

  test('an unknown command exits 2 with the usage', async () => {
    const result = await cli(['frobnicate']);
    expectExit(result, 2);
    expect(result.stderr).toContain('frobnicate');
    expect(result.stderr).toContain('Usage');
    expect(result.stdout).toBe('');
  }, 30_000);

  test('create-user refuses an unknown role and a short password with exit 2', async () => {
    const role = await cli(['create-user', '--org', CLI_SLUG, '--email', `x-${suffix}@chatlogger.test`, '--role', 'owner', '--password', 'long-enough-1']);
    expectExit(role, 2);
    expect(role.stderr.split('\n')[0]).toContain('--role');
    const password = await cli(['create-user', '--org', CLI_SLUG, '--email', `x-${suffix}@chatlogger.test`, '--role', 'admin', '--password', 'short']);
    expectExit(password, 2);
    expect(password.stderr.split('\n')[0]).toContain('password');
  }, 60_000);

  test('migrate applies the migrations to a fresh database, then reports it up to date', async () => {
    const first = await freshMigrate;
    expectExit(first, 0);
    expect(first.stdout).toMatch(/^applied Migration/);
    const second = await cli(['migrate']);
    expectExit(second, 0);
    expect(second.stdout.trim()).toBe('migrations are up to date');
  }, 60_000);

  test('create-org, create-user and create-api-key print JSON, the key once', async () => {
    const org = await cli(['create-org', '--name', 'CLI Org', '--slug', CLI_SLUG]);
    expectExit(org, 0);
    const orgJson = JSON.parse(org.stdout) as { id: string; slug: string; name: string };
    expect(orgJson).toMatchObject({ slug: CLI_SLUG, name: 'CLI Org' });
    expect(orgJson.id).toMatch(/^[0-9a-f-]{36}$/);
    cliState.orgId = orgJson.id;

    const user = await cli(['create-user', '--org', CLI_SLUG, '--email', CLI_EMAIL, '--role', 'admin', '--password', CLI_USER_PASSWORD]);
    expectExit(user, 0);
    const userJson = JSON.parse(user.stdout) as { id: string; email: string; role: string };
    expect(userJson).toMatchObject({ email: CLI_EMAIL, role: 'admin' });
    expect(user.stdout).not.toContain(CLI_USER_PASSWORD);
    cliState.user = userJson;

    const key = await cli(['create-api-key', '--org', CLI_SLUG, '--label', 'l']);
    expectExit(key, 0);
    const keyJson = JSON.parse(key.stdout) as { id: string; prefix: string; key: string };
    expect(keyJson.key).toMatch(/^clk_[A-Za-z0-9]{40}$/);
    expect(keyJson.prefix).toBe(keyJson.key.slice(0, 12));
    expect(key.stdout.split(keyJson.key).length - 1).toBe(1);
    cliState.apiKey = keyJson.key;
    secrets.add(keyJson.key);
  }, 60_000);

  test('create-org refuses a taken slug with exit 2', async () => {
    const result = await cli(['create-org', '--name', 'Again', '--slug', CLI_SLUG]);
    expectExit(result, 2);
    expect(result.stderr.split('\n')[0]).toContain('taken');
  }, 60_000);

  test('create-org with an invalid slug exits 2 and says what is wrong with it', async () => {
    const result = await cli(['create-org', '--name', 'X', '--slug', 'y']);
    expectExit(result, 2);
    // The operator must learn which field is wrong; "see errors" without the errors does not help.
    // (Only the error line counts: the usage printed after it mentions --slug anyway.)
    const errorLine = result.stderr.split('\n')[0]!;
    expect(errorLine).toStartWith('error:');
    expect(errorLine).toMatch(/slug/i);
  }, 60_000);
});

interface Call {
  method: string;
  path: string;
  status: number;
}
interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

/** Real HTTP against one running server; every request is recorded to check the request log. */
function httpClient(server: RunningServer) {
  const calls: Call[] = [];
  async function call(method: string, path: string, options: { json?: unknown; body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, headers, body, redirect: 'manual' });
    const text = await response.text();
    calls.push({ method, path, status: response.status });
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: response.status, headers: response.headers, body: parsed };
  }
  return { calls, call };
}

function sessionCookie(reply: Reply): string {
  const setCookie = reply.headers.getSetCookie().find((c) => c.startsWith('chatlogger_session='));
  if (!setCookie) throw new Error(`no session cookie in ${JSON.stringify(reply.headers.getSetCookie())}`);
  expect(setCookie).toMatch(/;\s*HttpOnly/i);
  expect(setCookie).toMatch(/;\s*SameSite=Lax/i);
  expect(setCookie).toMatch(/;\s*Path=\//i);
  const pair = setCookie.split(';')[0]!;
  secrets.add(pair.slice('chatlogger_session='.length));
  return pair;
}

const requestLines = (server: RunningServer) =>
  server.lines.map((line) => parseJson(line)).filter((entry): entry is Record<string, unknown> => entry !== undefined && 'method' in entry);

/** Waits until the server has logged a request line for each call (they are written after the response). */
async function waitForRequestLog(server: RunningServer, calls: Call[]) {
  const deadline = Date.now() + 5_000;
  while (requestLines(server).length < calls.length && Date.now() < deadline) await Bun.sleep(25);
}

function expectCleanJsonLog(server: RunningServer) {
  expect(server.lines.length).toBeGreaterThan(0);
  for (const line of server.lines) {
    const entry = parseJson(line);
    expect(entry, `not a JSON object: ${line}`).toBeDefined();
    expect(typeof entry!.level).toBe('number');
    expect(typeof entry!.time).toBe('string');
  }
  const requests = requestLines(server);
  expect(requests.length).toBeGreaterThan(0);
  for (const entry of requests) {
    expect(typeof entry.method).toBe('string');
    expect(typeof entry.route).toBe('string');
    if (entry.route !== 'unmatched') expect(entry.route as string).toStartWith('/');
    expect(typeof entry.status).toBe('number');
  }
  const output = server.stdout() + server.stderr();
  for (const secret of secrets) {
    if (output.includes(secret)) throw new Error(`the server output contains a secret (${secret.slice(0, 6)}...)`);
  }
}

/** Every recorded request has one log line with its method, its route (template) and the status the client got. */
function expectLogMatchesCalls(server: RunningServer, calls: Call[]) {
  const unused = requestLines(server).map((entry) => ({ method: entry.method as string, route: entry.route as string, status: entry.status as number }));
  const routeMatches = (route: string, path: string) => {
    if (route === 'unmatched') return true;
    const pattern = '^' + route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+') + '$';
    return new RegExp(pattern).test(path.split('?')[0]!);
  };
  const mismatches: string[] = [];
  for (const call of calls) {
    const matching = unused.filter((line) => line.method === call.method && routeMatches(line.route, call.path));
    const templated = matching.filter((line) => line.route !== 'unmatched');
    const candidates = templated.some((line) => line.status === call.status) ? templated : matching;
    const exact = candidates.find((line) => line.status === call.status);
    const chosen = exact ?? candidates[0];
    if (chosen) unused.splice(unused.indexOf(chosen), 1);
    if (!exact) {
      mismatches.push(`${call.method} ${call.path}: client got ${call.status}, log says ${chosen ? `${chosen.status} (route ${chosen.route})` : 'nothing'}`);
    }
  }
  expect(mismatches).toEqual([]);
}

let server: RunningServer;
let http: ReturnType<typeof httpClient>;
const flow: { superCookie?: string; adminCookie?: string; apiKey?: string; orgId?: string } = {};

describe('first run', () => {
  test('starts, migrates nothing (the CLI did), bootstraps the superadmin and becomes ready', async () => {
    server = await startServer(serverEnv(), { timeoutMs: 60_000 });
    http = httpClient(server);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const logged = server.lines.map((l) => parseJson(l));
    expect(logged.find((e) => e?.msg === 'bootstrap superadmin')).toMatchObject({ email: ADMIN_EMAIL, outcome: 'created' });
    expect(logged.find((e) => e?.msg === 'database opened')).toMatchObject({ database: testDatabaseKind });
    expect(logged.some((e) => e?.msg === 'migrations applied')).toBe(false);

    expect(await http.call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await http.call('GET', '/ready')).toMatchObject({ status: 200, body: { status: 'ready', database: testDatabaseKind } });
  }, 60_000);

  test('the whole flow over real HTTP', async () => {
    const { call } = http;
    // The superadmin logs in; the browser session is the cookie.
    const login = await call('POST', '/auth/login', { json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.user).toMatchObject({ email: ADMIN_EMAIL, role: 'superadmin', organizationSlug: 'system' });
    // A browser login (no issueToken) gets the HttpOnly cookie only, no token in the body.
    expect(login.body.token).toBeUndefined();
    const superCookie = sessionCookie(login);
    expect(superCookie).toMatch(/^chatlogger_session=[\w-]+\.[\w-]+\.[\w-]+$/);
    secrets.add(superCookie.slice('chatlogger_session='.length));
    flow.superCookie = superCookie;

    const org = await call('POST', '/orgs', { json: { name: 'Server Org', slug: ORG_SLUG }, headers: { cookie: superCookie } });
    expect(org.status).toBe(201);
    expect(org.body).toMatchObject({ slug: ORG_SLUG, name: 'Server Org', active: true });
    flow.orgId = org.body.id;

    const admin = await call('POST', `/orgs/${ORG_SLUG}/users`, {
      json: { email: ORG_ADMIN_EMAIL, password: ORG_ADMIN_PASSWORD, role: 'admin' },
      headers: { cookie: superCookie },
    });
    expect(admin.status).toBe(201);
    expect(admin.body).toMatchObject({ email: ORG_ADMIN_EMAIL, role: 'admin', organizationSlug: ORG_SLUG, organizationId: flow.orgId });

    const adminLogin = await call('POST', '/auth/login', { json: { email: ORG_ADMIN_EMAIL, password: ORG_ADMIN_PASSWORD, issueToken: true } });
    expect(adminLogin.status).toBe(200);
    secrets.add(adminLogin.body.token);
    const adminCookie = sessionCookie(adminLogin);
    flow.adminCookie = adminCookie;

    const key = await call('POST', '/orgs/me/apikeys', { json: { label: 'server test' }, headers: { cookie: adminCookie } });
    expect(key.status).toBe(201);
    expect(key.body.key).toMatch(/^clk_/);
    secrets.add(key.body.key);
    flow.apiKey = key.body.key;
    const keyHeader = { 'x-organization-api-key': key.body.key };

    const chat = await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: { id: CHAT_ID, title: 'Support', tags: ['a'] }, headers: keyHeader });
    expect(chat.status).toBe(201);
    expect(chat.body).toMatchObject({ id: CHAT_ID, title: 'Support', tags: ['a'], messageCount: 0 });

    const single = await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats/${CHAT_ID}/messages`, {
      json: { id: MESSAGE_ID, role: 'user', content: 'hello' },
      headers: keyHeader,
    });
    expect(single.status).toBe(201);
    expect(single.body).toMatchObject({ id: MESSAGE_ID, chatId: CHAT_ID, role: 'user', content: 'hello' });

    const batch = await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats/${CHAT_ID}/messages/batch`, {
      json: {
        messages: [
          { role: 'assistant', content: 'hi, how can I help?', model: 'gpt-x', promptTokens: 3, completionTokens: 5 },
          { role: 'user', content: 'it is broken' },
          { role: 'assistant', content: 'have you tried turning it off and on again?' },
        ],
      },
      headers: keyHeader,
    });
    expect(batch.status).toBe(201);
    expect(batch.body.created).toBe(3);
    expect(batch.body.items.map((m: { content: string }) => m.content)).toEqual(['hi, how can I help?', 'it is broken', 'have you tried turning it off and on again?']);
    expect(batch.body.items[0].totalTokens).toBe(8);

    const me = await call('GET', '/users/me', { headers: { cookie: adminCookie } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: ORG_ADMIN_EMAIL, role: 'admin', organizationSlug: ORG_SLUG });
    // The same token works as a bearer token.
    expect((await call('GET', '/users/me', { headers: { authorization: `Bearer ${adminLogin.body.token}` } })).status).toBe(200);

    // Some client mistakes, answered as problems (and logged with their status).
    expect((await call('GET', '/no/such/route')).status).toBe(404);
    expect((await call('POST', '/auth/login', { json: { email: ADMIN_EMAIL, password: WRONG_PASSWORD } })).status).toBe(401);
    expect((await call('POST', '/auth/login', { body: 'email=x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await call('POST', '/orgs', { json: { name: 'x', slug: 'nope-x' } })).status).toBe(401);
    expect((await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: { titel: 'typo' }, headers: keyHeader })).status).toBe(422);
    expect((await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: {}, headers: { 'x-organization-api-key': 'clk_wrong' } })).status).toBe(401);
    const tooLarge = await call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: { title: 'x'.repeat(MAX_BODY_BYTES + 1) }, headers: keyHeader });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('content-type')).toBe('application/problem+json');
  }, 60_000);

  test('the user and the API key made with the CLI are accepted', async () => {
    expect(cliState.apiKey).toBeDefined();
    const login = await http.call('POST', '/auth/login', { json: { email: CLI_EMAIL, password: CLI_USER_PASSWORD, issueToken: true } });
    expect(login.status).toBe(200);
    secrets.add(login.body.token);
    sessionCookie(login);
    expect(login.body.user).toMatchObject({ id: cliState.user!.id, role: 'admin', organizationSlug: CLI_SLUG });

    const chat = await http.call('POST', `/api/v1/orgs/${CLI_SLUG}/chats`, { json: { title: 'from the CLI key' }, headers: { 'x-organization-api-key': cliState.apiKey! } });
    expect(chat.status).toBe(201);
    // The key is valid under its own organization only.
    const elsewhere = await http.call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: {}, headers: { 'x-organization-api-key': cliState.apiKey! } });
    expect(elsewhere.status).toBe(401);
  }, 30_000);

  test('the log is JSON lines with method/route/status and holds no key, password or token', async () => {
    await waitForRequestLog(server, http.calls);
    expectCleanJsonLog(server);
    const routes = requestLines(server).map((e) => `${e.method} ${e.route}`);
    // Routes are logged as templates, not with the tenant's slug or ids.
    expect(routes).toContain('POST /api/v1/orgs/:slug/chats');
    expect(routes).toContain('POST /api/v1/orgs/:slug/chats/:chatId/messages/batch');
    expect(routes.some((r) => r.includes(CHAT_ID))).toBe(false);
  }, 30_000);

  test('each request is logged with the status the client received', async () => {
    await waitForRequestLog(server, http.calls);
    expectLogMatchesCalls(server, http.calls);
  }, 30_000);

  test('SIGTERM stops the server with exit code 0 within 10 s', async () => {
    const { exitCode, ms } = await stopProcess(server, 'SIGTERM', 10_000);
    expect(exitCode).toBe(0);
    expect(ms).toBeLessThan(10_000);
    const messages = server.lines.map((l) => parseJson(l)?.msg);
    expect(messages).toContain('shutting down');
    expect(messages).toContain('stopped');
    // After the stop the port is closed.
    await expect(fetch(`http://127.0.0.1:${server.port}/health`)).rejects.toThrow();
  }, 20_000);
});

describe('restart on the same data', () => {
  let restarted: RunningServer;
  let http2: ReturnType<typeof httpClient>;

  test('the superadmin exists already and is not changed by another ADMIN_PASSWORD', async () => {
    restarted = await startServer(serverEnv({ ADMIN_PASSWORD: 'a-different-admin-password' }), { timeoutMs: 60_000 });
    secrets.add('a-different-admin-password');
    http2 = httpClient(restarted);
    const logged = restarted.lines.map((l) => parseJson(l));
    expect(logged.find((e) => e?.msg === 'bootstrap superadmin')).toMatchObject({ email: ADMIN_EMAIL, outcome: 'exists' });
    expect(logged.some((e) => e?.msg === 'migrations applied')).toBe(false);

    expect((await http2.call('POST', '/auth/login', { json: { email: ADMIN_EMAIL, password: 'a-different-admin-password' } })).status).toBe(401);
    const login = await http2.call('POST', '/auth/login', { json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD, issueToken: true } });
    expect(login.status).toBe(200);
    secrets.add(login.body.token);
    sessionCookie(login);
  }, 60_000);

  test('sessions survive: the JWT secret persisted, so the old cookies still work', async () => {
    expect(flow.adminCookie).toBeDefined();
    const me = await http2.call('GET', '/users/me', { headers: { cookie: flow.adminCookie! } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: ORG_ADMIN_EMAIL, organizationSlug: ORG_SLUG });
    const root = await http2.call('GET', '/users/me', { headers: { cookie: flow.superCookie! } });
    expect(root.status).toBe(200);
    expect(root.body.role).toBe('superadmin');
  }, 30_000);

  test('the data is still there: the API key works and the chat and messages exist', async () => {
    expect(flow.apiKey).toBeDefined();
    const keyHeader = { 'x-organization-api-key': flow.apiKey! };
    const chat = await http2.call('POST', `/api/v1/orgs/${ORG_SLUG}/chats`, { json: { id: CHAT_ID, title: 'ignored on a retry' }, headers: keyHeader });
    expect(chat.status).toBe(200);
    expect(chat.body).toMatchObject({ id: CHAT_ID, title: 'Support', messageCount: 4 });

    const again = await http2.call('POST', `/api/v1/orgs/${ORG_SLUG}/chats/${CHAT_ID}/messages`, {
      json: { id: MESSAGE_ID, role: 'user', content: 'hello' },
      headers: keyHeader,
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: MESSAGE_ID, content: 'hello' });

    const more = await http2.call('POST', `/api/v1/orgs/${ORG_SLUG}/chats/${CHAT_ID}/messages`, { json: { role: 'user', content: 'still there?' }, headers: keyHeader });
    expect(more.status).toBe(201);

    // The org admin's key list still holds the key, and the CLI's key works too.
    const keys = await http2.call('GET', '/orgs/me/apikeys', { headers: { cookie: flow.adminCookie! } });
    expect(keys.status).toBe(200);
    expect(keys.body.items.some((k: { prefix: string }) => flow.apiKey!.startsWith(k.prefix))).toBe(true);
    const cliChat = await http2.call('POST', `/api/v1/orgs/${CLI_SLUG}/chats`, { json: {}, headers: { 'x-organization-api-key': cliState.apiKey! } });
    expect(cliChat.status).toBe(201);
  }, 30_000);

  test('the log of the second run is clean as well', async () => {
    await waitForRequestLog(restarted, http2.calls);
    expectCleanJsonLog(restarted);
    expectLogMatchesCalls(restarted, http2.calls);
  }, 30_000);

  type InFlightReply = { status: number; body: { token?: string; error?: string } };
  test('SIGTERM lets a request in flight finish, then exits 0 within 10 s', async () => {
    // A login whose body is still arriving when the signal comes: the server has the request,
    // so a graceful stop answers it before exiting.
    const encoder = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const reply = fetch(`http://127.0.0.1:${restarted.port}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit).then(
      async (response): Promise<InFlightReply> => ({ status: response.status, body: (await response.json()) as InFlightReply['body'] }),
      (error: unknown): InFlightReply => ({ status: 0, body: { error: String(error) } }),
    );
    controller.enqueue(encoder.encode(`{"email":"${ORG_ADMIN_EMAIL}",`));
    await Bun.sleep(200);
    const stopping = stopProcess(restarted, 'SIGTERM', 10_000);
    await Bun.sleep(200);
    controller.enqueue(encoder.encode(`"password":"${ORG_ADMIN_PASSWORD}"}`));
    controller.close();

    const answered = await reply;
    if (answered.body.token) secrets.add(answered.body.token);
    expect(answered.status).toBe(200);
    const { exitCode, ms } = await stopping;
    expect(exitCode).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(restarted.lines.map((l) => parseJson(l)?.msg)).toContain('stopped');
    // The whole output of the run stays free of secrets, including that last session.
    for (const secret of secrets) expect(restarted.stdout().includes(secret)).toBe(false);
  }, 20_000);
});
