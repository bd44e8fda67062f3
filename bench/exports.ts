/**
 * Streaming exports on a realistic volume, through the real server:
 *   bun bench/exports.ts
 * Creates the database chatlogger_bench_exports on the server of BENCH_DATABASE_URL, migrates it,
 * seeds 1,000,000 messages over 20,000 chats, starts `bun src/main.ts` on 127.0.0.1 as a child
 * process, creates exports through the API and downloads them with fetch (streamed to /dev/null)
 * while sampling the server's memory (/proc/<pid>/status every 100 ms). Prints rows/s and the
 * server's peak RSS per format, then stops the server and drops the database.
 */
import { ensureAdmin } from '../src/modules/users/bootstrap.ts';
import { adminQuery, databaseUrl, log, markdownTable } from './support.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';

const DATABASE = 'chatlogger_bench_exports';
const PORT = Number(process.env.BENCH_PORT ?? 18_743);
const BASE = `http://127.0.0.1:${PORT}`;
const PASSWORD = 'bench-password-1';
const CHATS = 20_000;
const MESSAGES = 1_000_000;

const benchUrl = () => databaseUrl(DATABASE);

// ---- seeding ---------------------------------------------------------------------------------

/**
 * 20,000 chats of 50 messages each; contents of 40 to 300 characters with commas, quotes and
 * now and then a line break or a leading `=`, so the CSV writer has quoting and guarding to do.
 */
async function seed(db: Database, organizationId: string) {
  await db.fork().transactional(async (tx) => {
    await tx.execute(`set local maintenance_work_mem = '512MB'`);
    await tx.execute(
      `insert into chats (organization_id, id, title, tags, external_user_id, source, created_at, updated_at)
       select ?, md5(?::text || ':' || n)::uuid, 'Chat ' || n || ', about "things"',
              array['tag' || (n % 17)], 'user-' || (n % 3000), 'web',
              timestamptz '2025-01-01' + n * interval '25 minutes', timestamptz '2025-01-01' + n * interval '25 minutes'
         from generate_series(1, ${CHATS}) as n`,
      [organizationId, organizationId],
    );
    await tx.execute(
      `insert into messages (organization_id, id, chat_id, role, content, model, prompt_tokens, completion_tokens,
                             total_tokens, latency_ms, cost_usd, metadata, created_at)
       select ?, gen_random_uuid(), md5(?::text || ':' || c)::uuid,
              case when k % 2 = 0 then 'user' else 'assistant' end,
              case when n % 97 = 0 then '=SUM(A1:A9) ' else '' end
                || repeat(md5(n::text) || ', "quoted" ', 1 + n % 7)
                || case when n % 13 = 0 then E'\\r\\nsecond line' else '' end,
              case when k % 2 = 1 then 'gpt-4o' end, 20 + n % 400, 50 + n % 700, 70 + n % 1100, 300 + n % 4000,
              case when k % 2 = 1 then (n % 1000) / 100000.0 end,
              jsonb_build_object('k', n % 10),
              timestamptz '2025-01-01' + c * interval '25 minutes' + k * interval '1 minute'
         from generate_series(1, ${MESSAGES}) as n,
              lateral (select 1 + (n - 1) % ${CHATS} as c, (n - 1) / ${CHATS} as k) as pos`,
      [organizationId, organizationId],
    );
    await tx.execute(
      `update chats c set last_message_at = m.last_at, message_count = m.count
         from (select chat_id, max(created_at) as last_at, count(*) as count from messages where organization_id = ? group by chat_id) m
        where c.organization_id = ? and c.id = m.chat_id`,
      [organizationId, organizationId],
    );
  });
  await db.fork().execute('vacuum analyze');
}

// ---- the server ------------------------------------------------------------------------------

function startServer() {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'development',
    DATABASE_URL: benchUrl(),
    JWT_SECRET: 'bench-secret-that-is-at-least-32-characters-long',
    HOST: '127.0.0.1',
    PORT: String(PORT),
    LOG_LEVEL: 'warn',
    RETENTION_ENABLED: 'false',
    DATA_DIR: '/tmp/chatlogger-bench-exports',
  };
  return Bun.spawn([process.execPath, 'src/main.ts'], { cwd: `${import.meta.dir}/..`, env, stdout: 'inherit', stderr: 'inherit' });
}

async function waitReady() {
  for (let n = 0; n < 200; n++) {
    try {
      if ((await fetch(`${BASE}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  throw new Error('the server did not start');
}

function memoryKb(pid: number): { rss: number; hwm: number } {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8') as string;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

async function call(method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${BASE}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status >= 300) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

interface Result {
  export: string;
  rows: number;
  mb: number;
  seconds: number;
  rowsPerSecond: number;
  rssBefore: number;
  rssPeak: number;
  firstByteMs: number;
}

/** Creates an export, downloads it to /dev/null, samples the server's RSS meanwhile. */
async function run(pid: number, token: string, format: string, scope: string, expectedRows: number): Promise<Result> {
  Bun.gc(true);
  await Bun.sleep(500);
  const rssBefore = memoryKb(pid).rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, memoryKb(pid).rss);
  }, 100);
  const started = performance.now();
  const created = await call('POST', '/exports/orgs/me', { format, scope }, token);
  const response = await fetch(`${BASE}${created.downloadUrl}`, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`download answered ${response.status}`);
  const sink = Bun.file('/dev/null').writer();
  const reader = response.body!.getReader();
  let bytes = 0;
  let newlines = 0;
  let firstByteMs = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (!firstByteMs) firstByteMs = performance.now() - started;
    bytes += value.length;
    for (let i = value.indexOf(10); i !== -1; i = value.indexOf(10, i + 1)) newlines += 1;
    sink.write(value);
  }
  await sink.end();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, memoryKb(pid).rss);
  // Line count check: NDJSON has one line per row; CSV a header, plus one extra LF per embedded line break.
  const rows = format === 'ndjson' ? newlines : expectedRows;
  if (format === 'ndjson' && rows !== expectedRows) throw new Error(`expected ${expectedRows} rows, got ${rows}`);
  return {
    export: `${scope} ${format}`,
    rows,
    mb: bytes / 1e6,
    seconds,
    rowsPerSecond: rows / seconds,
    rssBefore: rssBefore / 1024,
    rssPeak: rssPeak / 1024,
    firstByteMs,
  };
}

function table(results: Result[]): string {
  return markdownTable(['export', 'rows', 'MB', 'seconds', 'rows/s', 'first byte ms', 'RSS before MB', 'peak RSS MB'], results.map((r) => [
    r.export,
    r.rows.toLocaleString('en-US'),
    r.mb.toFixed(1),
    r.seconds.toFixed(2),
    Math.round(r.rowsPerSecond).toLocaleString('en-US'),
    r.firstByteMs.toFixed(0),
    r.rssBefore.toFixed(0),
    r.rssPeak.toFixed(0),
  ]), 1);
}

async function main() {
  const startedAt = performance.now();
  log(`creating database ${DATABASE}`);
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  await adminQuery(`create database ${DATABASE}`);
  let server: ReturnType<typeof startServer> | undefined;
  try {
    const db = await openDatabase({ databaseUrl: benchUrl(), dataDir: 'memory://', databasePoolSize: 2 });
    try {
      await db.migrate();
      await ensureAdmin(db.fork(), 'root@bench.local', PASSWORD);
      server = startServer();
      await waitReady();
      const root = String((await call('POST', '/auth/login', { email: 'root@bench.local', password: PASSWORD, issueToken: true })).token);
      const orgId = String((await call('POST', '/orgs', { name: 'Bench', slug: 'bench' }, root)).id);
      await call('POST', '/orgs/bench/users', { email: 'admin@bench.local', password: PASSWORD, role: 'admin' }, root);
      log(`seeding ${CHATS.toLocaleString('en-US')} chats, ${MESSAGES.toLocaleString('en-US')} messages`);
      await seed(db, orgId);
    } finally {
      await db.close();
    }
    const token = String((await call('POST', '/auth/login', { email: 'admin@bench.local', password: PASSWORD, issueToken: true })).token);
    const results: Result[] = [];
    for (const [format, scope, rows] of [
      ['csv', 'messages', MESSAGES],
      ['ndjson', 'messages', MESSAGES],
      ['json', 'messages', MESSAGES],
      ['csv', 'chats', CHATS],
      ['ndjson', 'chats', CHATS],
    ] as const) {
      log(`downloading ${scope} ${format}`);
      results.push(await run(server.pid, token, format, scope, rows));
    }
    const hwm = memoryKb(server.pid).hwm / 1024;
    console.log(`\nReal server (bun src/main.ts, PostgreSQL), fetch streamed to /dev/null, RSS sampled every 100 ms; ${CHATS.toLocaleString('en-US')} chats / ${MESSAGES.toLocaleString('en-US')} messages\n`);
    console.log(table(results));
    console.log(`\nserver VmHWM over the whole run: ${hwm.toFixed(0)} MB\n`);
    log(`done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    if (server) {
      server.kill('SIGTERM');
      await server.exited;
    }
    await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  }
}

await main();
