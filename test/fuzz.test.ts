/**
 * Hostile input, generated from openapi.yaml (test/support/fuzz.ts): thousands of malformed
 * requests over every operation, anonymous and with real credentials, through `app.handle`, a
 * sample of them through a real listening server, and raw-socket requests for the HTTP parser.
 *
 * For each answer: never a 5xx; every 4xx is application/problem+json with type, title, status
 * and detail; a body that certainly breaks the schema is never accepted; and a rejected request
 * changes no data (every table's rows, checksummed, before and after). The server still answers
 * afterwards.
 *
 * FUZZ_CASES (default 3000) and FUZZ_SEED (default fixed; `random` for a new one) scale it; the
 * seed is printed, so any failure can be replayed.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { Server } from 'bun';
import { createTestApp, PASSWORD, type TestApp } from './support/harness.ts';
import { createServerDatabase, onCitus, testDatabaseKind } from './support/database.ts';
import { citusNodes, urlOf } from './support/citus.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { ensureAdmin } from '../src/modules/users/bootstrap.ts';
import { describeCase, generateCases, type FuzzCase, type FuzzContext, type Json, type Target } from './support/fuzz.ts';
import { rawCases } from './support/fuzz-raw.ts';
import { rawRequest } from './support/raw-http.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const SEED = process.env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED ?? 20261124);
/** Every n-th case also goes through the real server. */
const SERVER_SAMPLE = 10;
const JWT_SECRET = 'fuzz-secret-that-is-at-least-32-characters-long';

let db: Database;
let t: TestApp;
let server: Server<unknown>;
/** `x-fuzz-case` of the raw requests that reached the app (the others were refused by the parser). */
const reachedApp = new Set<string>();
let ctx: FuzzContext;
let fixture: { slug: string; apiKey: string; chatId: string; bearer: string };
/** The fuzzed organization's main chat, and the superadmin's session. */
let chatId: string;
let rootToken: string;

// ---- tokens -------------------------------------------------------------------------------------

const b64url = (data: string | ArrayBuffer) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : new Uint8Array(data)).toString('base64url');
async function jwt(claims: Record<string, unknown>, { secret = JWT_SECRET, alg = 'HS256' } = {}): Promise<string> {
  const head = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none') return `${head}.`;
  const key = await crypto.subtle.importKey('raw', Buffer.from(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `${head}.${b64url(await crypto.subtle.sign('HMAC', key, Buffer.from(head)))}`;
}

// ---- data checksums -------------------------------------------------------------------------------

/** Columns written by requests that are refused later on (a key's last use, a user's last login). */
const VOLATILE = ['last_used_at', 'last_login_at'];
let checksumSql: string;
async function checksum(): Promise<string> {
  if (!checksumSql) {
    const tables = await db.fork().execute<{ name: string }[]>(
      `select table_name as name from information_schema.tables
        where table_schema = current_schema() and table_type = 'BASE TABLE' and table_name not like 'mikro_orm%'
        order by table_name`,
    );
    const volatile = VOLATILE.map((c) => ` - '${c}'`).join('');
    checksumSql = `select ${tables
      .map(({ name }) => `(select count(*) || ':' || coalesce(md5(string_agg((to_jsonb(t)${volatile})::text, ',' order by (to_jsonb(t)${volatile})::text)), '') from "${name}" t)`)
      .join(" || ' ' || ")} as sum`;
  }
  const [row] = await db.fork().execute<{ sum: string }[]>(checksumSql);
  return row!.sum;
}

const NEXT_XID = 'select pg_snapshot_xmax(pg_current_snapshot())::text';

/**
 * The next transaction id: it moves only when some transaction wrote (or locked) a row, so an
 * unchanged value proves that nothing was written, for the price of one tiny query. The full
 * checksum is computed only when it moved. On Citus, writes of an organization run on its
 * worker, so the ids of every node are read.
 */
let nodeDatabases: Promise<Database[]> | undefined;
async function nextXid(): Promise<string> {
  nodeDatabases ??= (async () => {
    if (!(await onCitus())) return [db];
    const url = String(db.orm.config.get('clientUrl'));
    const name = new URL(url).pathname.slice(1);
    const nodes = await citusNodes(url);
    return Promise.all(nodes.map((node) => openDatabase({ databaseUrl: urlOf(url, name, node), dataDir: 'memory://', databasePoolSize: 1 })));
  })();
  const xids = await Promise.all((await nodeDatabases).map(async (node) => (await node.fork().execute<{ xid: string }[]>(`${NEXT_XID} as xid`))[0]!.xid));
  return xids.join(',');
}

// ---- one answer ---------------------------------------------------------------------------------

interface Tally {
  cases: number;
  statuses: Map<number, number>;
  failures: string[];
  accepted: number;
}
const newTally = (): Tally => ({ cases: 0, statuses: new Map(), failures: [], accepted: 0 });

function judge(tally: Tally, what: string, status: number, contentType: string, text: string, mustReject = false) {
  tally.cases += 1;
  tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
  const fail = (why: string) => {
    if (tally.failures.length < 30) tally.failures.push(`${why}: ${what} -> ${status} ${contentType} ${text.slice(0, 200)}`);
  };
  if (status >= 500) return fail('server error');
  if (status < 400) {
    tally.accepted += 1;
    if (mustReject) fail('accepted a body that breaks the schema');
    return;
  }
  if (!contentType.startsWith('application/problem+json')) return fail('not a problem');
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return fail('problem is not JSON');
  }
  if (typeof body.type !== 'string' || typeof body.title !== 'string' || body.status !== status || typeof body.detail !== 'string') {
    fail('incomplete problem');
  }
}

function toRequest(base: string, c: FuzzCase): Request {
  const headers = new Headers();
  for (const [name, value] of c.headers) headers.append(name, value);
  return new Request(base + c.url, { method: c.method, headers, body: c.body as RequestInit['body'] });
}

/**
 * Bun's HTTP parser answers some requests itself, before the app sees them, with a bare status
 * and no body: 431 for a request line and headers above 16 KiB, 400 for broken framing (bad
 * chunk sizes, contradicting lengths) and 505 for a request line it cannot read.
 */
const PARSER_STATUSES = new Set([400, 431, 505]);
const refusedByParser = (status: number, contentType: string, text: string) => PARSER_STATUSES.has(status) && contentType === '' && text === '';

const summary = (tally: Tally) => [...tally.statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');

// ---- set-up -----------------------------------------------------------------------------------------

beforeAll(async () => {
  // A database of its own, so that the checksum covers every row and nothing else writes to it.
  db = await openDatabase({ databaseUrl: testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined, dataDir: 'memory://', databasePoolSize: 5 });
  await db.migrate();
  t = await createTestApp(
    { JWT_SECRET, INGEST_RATE_LIMIT_PER_MINUTE: '0' },
    db,
  );
  const rootEmail = 'root@fuzz.test';
  await ensureAdmin(db.fork(), rootEmail, PASSWORD);
  const login = async (email: string) => {
    const { data } = await t.client().POST('/auth/login', { body: { email, password: PASSWORD, issueToken: true } });
    return data!.token!;
  };
  const root = t.client({ token: await login(rootEmail) });
  const slug = 'fuzz-org';
  const org = await root.POST('/orgs', { body: { name: 'Fuzz', slug } });
  const inOrg = { params: { path: { org: slug } } };
  const admin = await root.POST('/orgs/{org}/users', { ...inOrg, body: { email: 'admin@fuzz.test', password: PASSWORD, role: 'admin' } });
  const victim = await root.POST('/orgs/{org}/users', { ...inOrg, body: { email: 'victim@fuzz.test', password: PASSWORD, role: 'viewer' } });
  const key = await root.POST('/orgs/{org}/apikeys', { ...inOrg, body: { label: 'fuzz' } });
  const spareKey = await root.POST('/orgs/{org}/apikeys', { ...inOrg, body: { label: 'to revoke' } });
  const ingest = t.client({ apiKey: key.data!.key });
  const chat = await ingest.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug } }, body: { title: 'fuzz', tags: ['a'], externalUserId: 'fuzz-end-user' } });
  const spareChat = await ingest.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug } }, body: { title: 'to delete' } });
  await ingest.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', {
    params: { path: { slug, chatId: chat.data!.id } },
    body: { messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi', model: 'm', latencyMs: 5 }] },
  });
  const exported = await root.POST('/exports/orgs/{org}', { ...inOrg, body: { format: 'json', scope: 'chats' } });
  // A second organization, which the generated cases never name: for the raw requests and the final check.
  const quiet = await root.POST('/orgs', { body: { name: 'Quiet', slug: 'fuzz-quiet' } });
  const quietAdmin = await root.POST('/orgs/{org}/users', { params: { path: { org: 'fuzz-quiet' } }, body: { email: 'admin@quiet.test', password: PASSWORD, role: 'admin' } });
  const quietKey = await root.POST('/orgs/{org}/apikeys', { params: { path: { org: 'fuzz-quiet' } }, body: { label: 'quiet' } });
  const quietChat = await t.client({ apiKey: quietKey.data!.key }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: 'fuzz-quiet' } }, body: {} });
  const statuses = [org, admin, victim, key, spareKey, chat, spareChat, exported, quiet, quietAdmin, quietKey, quietChat].map((r) => r.response.status);
  expect(statuses).toEqual(Array(12).fill(201));
  rootToken = await login(rootEmail);
  chatId = chat.data!.id;
  const adminToken = await login('admin@fuzz.test');

  const values: Record<string, (target: Target) => string> = {
    slug: () => slug,
    org: () => slug,
    // Deletions get their own victims, so that the other cases keep reaching real rows.
    chatId: (target) => (target.method === 'DELETE' ? spareChat.data!.id : chat.data!.id),
    userId: () => victim.data!.id,
    keyId: () => spareKey.data!.id,
    exportId: () => exported.data!.id,
    externalUserId: () => 'fuzz-end-user',
  };
  const uuid = () => crypto.randomUUID();
  const claims = { iss: 'chatlogger', aud: 'chatlogger-dashboard', exp: Math.floor(Date.now() / 1000) + 3600 };
  const bearer = (token: string): [string, string][] => [['authorization', `Bearer ${token}`]];
  ctx = {
    pathValue: (target, name) => values[name]?.(target) ?? 'x',
    credentials: (target) => (target.security === 'apiKey' ? [['x-organization-api-key', key.data!.key]] : bearer(rootToken)),
    maxBodyBytes: t.config.maxBodyBytes,
    baseBody(target, body) {
      const value = body as Record<string, Json>;
      // An email without an account: after LOGIN_MAX_FAILURES it is locked (429), which keeps
      // the run from spending its time in argon2.
      if (target.operationId === 'login') return { ...value, email: 'nobody@fuzz.test' };
      // A per-organization ingestion limit of 1 a minute would turn every later ingestion case into a 429.
      if (target.operationId === 'updateOrganization') return { ...value, settings: { retentionDays: null } };
      return body;
    },
    badCredentials: [
      bearer('garbage'),
      [['authorization', 'Bearer ']],
      bearer('a.b.c'),
      bearer(await jwt({ ...claims, sub: admin.data!.id, sid: uuid() }, { alg: 'none' })),
      bearer(await jwt({ ...claims, sub: admin.data!.id, sid: uuid() }, { secret: 'another-secret-of-at-least-32-characters!!' })),
      bearer(await jwt({ ...claims, exp: 1, sub: admin.data!.id, sid: uuid() })),
      bearer(await jwt({ ...claims, sub: "' OR 1=1 --", sid: 'not-a-uuid' })),
      bearer(await jwt({ ...claims, sub: 1e30, sid: -1 })),
      bearer(await jwt({ ...claims, sub: admin.data!.id, sid: uuid() })),
      bearer(await jwt({ ...claims, sub: { $ne: null }, sid: ['x'] })),
      bearer(await jwt({ ...claims, iss: 'someone-else', sub: admin.data!.id, sid: uuid() })),
      bearer(await jwt({ sub: admin.data!.id, sid: uuid() })),
      [['authorization', 'Basic dXNlcjpwYXNz']],
      bearer('x'.repeat(10_000)),
      [['cookie', 'chatlogger_session=garbage']],
      [['cookie', `chatlogger_session=${await jwt({ ...claims, sub: 'x', sid: 'y' })}`]],
      [['cookie', '=;;=; chatlogger_session']],
      [['cookie', `chatlogger_session=${adminToken}; chatlogger_session=x`]],
      [['cookie', 'chatlogger_session=%ZZ%00']],
      [['cookie', 'chatlogger_session="']],
      [['x-organization-api-key', '']],
      [['x-organization-api-key', `clk_${'a'.repeat(40)}`]],
      [['x-organization-api-key', key.data!.key.slice(0, 20)]],
      [['x-organization-api-key', 'x'.repeat(10_000)]],
      [['x-organization-api-key', "' OR 1=1 --"]],
      [['x-organization-api-key', key.data!.key], ['authorization', `Bearer ${rootToken}`]],
      [['x-organization-api-key', key.data!.key], ['cookie', `chatlogger_session=${adminToken}`]],
    ],
  };
  fixture = { slug: 'fuzz-quiet', apiKey: quietKey.data!.key, chatId: quietChat.data!.id, bearer: await login('admin@quiet.test') };

  server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    // As src/main.ts: the app enforces MAX_BODY_BYTES itself.
    maxRequestBodySize: 1024 * 1024 * 1024,
    fetch: (request) => {
      const n = request.headers.get('x-fuzz-case');
      if (n !== null) reachedApp.add(n);
      return t.app.handle(request);
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop(true);
  for (const node of (await nodeDatabases) ?? []) if (node !== db) await node.close();
  await db?.close();
});

// ---- the runs ---------------------------------------------------------------------------------------

describe(`fuzz (seed ${SEED}, ${CASES} cases, ${testDatabaseKind})`, () => {
  test('malformed requests through the app: no 5xx, problems only, rejected requests change nothing', async () => {
    const tally = newTally();
    const viaServer = newTally();
    const base = `http://127.0.0.1:${server.port}`;
    // The detector detects: an accepted change moves both the transaction id and the checksum.
    const [xid0, sum0] = [await nextXid(), await checksum()];
    const renamed = await t.app.handle(
      new Request(`http://chatlogger.test/orgs/fuzz-org/chats/${chatId}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${rootToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'renamed before the run' }),
      }),
    );
    expect(renamed.status).toBe(200);
    expect(await nextXid()).not.toBe(xid0);
    expect(await checksum()).not.toBe(sum0);

    let before = await checksum();
    let xid = await nextXid();
    const changedBy: string[] = [];
    let parserRefusals = 0;
    const startedAt = performance.now();
    for (const c of generateCases(SEED, CASES, ctx)) {
      const response = await t.app.handle(toRequest('http://chatlogger.test', c));
      const text = await response.text();
      judge(tally, describeCase(c), response.status, response.headers.get('content-type') ?? '', text, c.mustReject);
      const xidAfter = await nextXid();
      if (xidAfter !== xid) {
        const after = await checksum();
        if (response.status >= 400 && after !== before && changedBy.length < 10) changedBy.push(`${describeCase(c)} -> ${response.status}`);
        before = after;
        // The checksum's own read assigns no transaction id.
        xid = xidAfter;
      }
      if (c.n % SERVER_SAMPLE === 0) {
        const real = await fetch(toRequest(base, c), { redirect: 'manual' }).catch((error: unknown) => error as Error);
        if (real instanceof Error) viaServer.failures.push(`no answer: ${describeCase(c)}: ${real.message}`);
        else {
          const [contentType, text] = [real.headers.get('content-type') ?? '', await real.text()];
          if (refusedByParser(real.status, contentType, text) && real.status === 431) parserRefusals += 1;
          else judge(viaServer, `(server) ${describeCase(c)}`, real.status, contentType, text, c.mustReject);
        }
        before = await checksum();
        xid = await nextXid();
      }
    }
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    const serverErrors = [...tally.statuses, ...viaServer.statuses].filter(([s]) => s >= 500).reduce((n, [, k]) => n + k, 0);
    console.log(`fuzz: ${tally.cases} cases, ${serverErrors} server errors (seed ${SEED}, ${seconds} s, ${tally.accepted} accepted)`);
    console.log(`fuzz: app ${summary(tally)}; real server ${viaServer.cases + parserRefusals} cases: ${summary(viaServer)}, 431×${parserRefusals} from the HTTP parser`);

    expect(tally.cases).toBe(CASES);
    expect(tally.failures).toEqual([]);
    expect(viaServer.failures).toEqual([]);
    expect(changedBy).toEqual([]);
    expect(serverErrors).toBe(0);
  }, 600_000);

  test('raw requests reach the real HTTP parser: no 5xx, the app answers problems, the server lives on', async () => {
    const tally = newTally();
    const parser: string[] = [];
    for (const c of rawCases(fixture)) {
      const reply = await rawRequest(server.port!, c.bytes, { halfClose: c.halfClose, timeoutMs: 3000 });
      const what = `raw #${c.n} ${c.name}`;
      if (reply.status === undefined) {
        // Closed without an answer, or still waiting for the rest of the request.
        parser.push(`${c.name}: no answer`);
        continue;
      }
      const contentType = reply.headers['content-type'] ?? '';
      if (refusedByParser(reply.status, contentType, reply.body)) {
        parser.push(`${c.name}: ${reply.status}${reachedApp.has(String(c.n)) ? ' (body framing)' : ''}`);
        continue;
      }
      judge(tally, what, reply.status, contentType, reply.body);
    }
    console.log(`fuzz: ${tally.cases + parser.length} raw requests; app ${summary(tally)}; answered by the HTTP parser: ${parser.join(', ')}`);
    expect(tally.failures).toEqual([]);
    // Everything that reached the app was answered by it.
    expect(tally.cases).toBeGreaterThan(20);
  }, 120_000);

  test('afterwards the server still answers, and the credentials used still work', async () => {
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect((await t.app.handle(new Request('http://chatlogger.test/health'))).status).toBe(200);
    const me = await fetch(`http://127.0.0.1:${server.port}/users/me`, { headers: { authorization: `Bearer ${fixture.bearer}` } });
    expect(me.status).toBe(200);
    const message = await fetch(`http://127.0.0.1:${server.port}/api/v1/orgs/${fixture.slug}/chats/${fixture.chatId}/messages`, {
      method: 'POST',
      headers: { 'x-organization-api-key': fixture.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'user', content: 'still here' }),
    });
    expect(message.status).toBe(201);
  }, 30_000);
});
