/**
 * Ingestion throughput against PostgreSQL's own ceiling, measured in one run:
 *   bun bench/ingest.ts
 * 1. Creates the database chatlogger_bench_ingest on the server of BENCH_DATABASE_URL (dropped
 *    first), migrates it, and makes an organization, an API key and 1,000 chats.
 * 2. Baseline: pgbench with 64 clients running a single-row INSERT into messages (with its
 *    foreign key and indexes, but none of the chat counters and analytics rollups the server
 *    writes with every message); for reference, the same INSERT into a copy of the table
 *    without the foreign key, and the server's own append call with a batch of 100 messages
 *    sent from this process without HTTP (what PostgreSQL and a minimal client take of the
 *    batch load).
 * 3. Starts the server (`bun src/main.ts`, NODE_ENV=production unless BENCH_NODE_ENV says otherwise, one JSON log line per request to
 *    /dev/null) on that database and drives each scenario with wrk for
 *    BENCH_SECONDS (default 10): single messages (64 connections), batches of 100 messages,
 *    chat creation, OTLP/protobuf exports of GenAI spans (the OpenTelemetry SDK's own serializer;
 *    each export is 32 new conversations of 4 model calls, every call with the whole history);
 *    then the embedded database (PGlite) with single messages.
 *    Every measured run (pgbench too) follows BENCH_WARMUP_SECONDS (default 3) of the same load,
 *    not counted: JIT compilation, new connections and cold caches are start-up costs.
 * 4. After each scenario counts the rows: every 2xx must be stored; rows beyond the 2xx count
 *    can only be requests still in flight when wrk stopped (at most one per connection).
 * 5. With BENCH_CITUS_URL (a database on a Citus coordinator), the single-message and batch
 *    scenarios again on a database of their own distributed over that cluster, the server
 *    talking to the coordinator.
 * Prints a Markdown table. Needs wrk (installed with apt-get when missing) and pgbench.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminQuery, benchApp, benchTenants, databaseUrl, log, markdownTable, SERVER_URL } from './support.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { query } from '../src/db/sql.ts';
import { appendMessages, type NewMessage } from '../src/modules/conversations/conversations.repository.ts';
import { citusNodes, createCitusDatabase, dropDatabase } from '../test/support/citus.ts';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

const DATABASE = 'chatlogger_bench_ingest';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** Load before each measured run, not counted: JIT compilation, new connections, cold caches. */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const BATCH_CONNECTIONS = Number(process.env.BENCH_BATCH_CONNECTIONS ?? 16);
const BATCH_SIZE = 100;
const CHATS = 1000;
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info';
const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';
/** A subset of single,batch,chats,embedded; extra flags for the server's bun (e.g. --cpu-prof-md). */
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? 'single,batch,chats,otlp,embedded').split(','));
/** A database on a Citus coordinator: the cluster the Citus scenarios run on (none without it). */
const CITUS_URL = process.env.BENCH_CITUS_URL;
/** An OTLP export: OTLP_CONVERSATIONS conversations of OTLP_TURNS model calls, each call with the whole history. */
const OTLP_CONVERSATIONS = 32;
const OTLP_TURNS = 4;
const OTLP_SPANS = OTLP_CONVERSATIONS * OTLP_TURNS;
/** Stored per export: the system prompt, then a question and an answer per turn. */
const OTLP_MESSAGES = OTLP_CONVERSATIONS * (1 + 2 * OTLP_TURNS);
/** Replaced in each request by a number of the same width, so every export is new conversations. */
const OTLP_PLACEHOLDER = '@@@@@@@@@@';
const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
const CONTENT = 'Hello! I would like to know the status of my order, it has not arrived yet.';
const SINGLE_BODY = JSON.stringify({ role: 'user', content: CONTENT });
const work = mkdtempSync(join(tmpdir(), 'chatlogger-bench-ingest-'));

interface Row {
  scenario: string;
  requestsPerSecond: number;
  messagesPerSecond: number;
  p50: string;
  p99: string;
  errors: number;
  peakRss: string;
  ratio: string;
  check: string;
}

// ---- tools -----------------------------------------------------------------------------------

function run(cmd: string[], env: Record<string, string> = {}, cwd?: string): string {
  const result = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, cwd, stdout: 'pipe', stderr: 'pipe' });
  if (result.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (${result.exitCode}): ${result.stderr.toString()}`);
  return result.stdout.toString();
}

function ensureWrk() {
  if (Bun.which('wrk')) return;
  log('wrk is missing: installing it with apt-get');
  run(['apt-get', '-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-q', 'wrk']);
}

const ms = (microseconds: number) => `${(microseconds / 1000).toFixed(1)} ms`;
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;

// ---- database --------------------------------------------------------------------------------

async function prepareDatabase() {
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  await adminQuery(`create database ${DATABASE}`);
  const db = await openDatabase({ databaseUrl: databaseUrl(DATABASE), dataDir: 'memory://', databasePoolSize: 2 });
  await db.migrate();
  const tenant = await tenantWithChats(db, databaseUrl(DATABASE));
  // pgbench writes to chats of the other organization: its rows bypass the chats' counters.
  const baselineChats = await query<{ id: string }>(db.fork(), `insert into chats (organization_id, id) select $1, gen_random_uuid() from generate_series(1, ${CHATS}) returning id`, [
    tenant.otherOrganizationId,
  ]);
  return { db, ...tenant, baselineChats: baselineChats.map((c) => c.id) };
}

/** Organization bench-a, an API key of it and CHATS chats, made through the HTTP app. */
async function tenantWithChats(db: Database, url: string) {
  const app = benchApp(db, url);
  const { orgA, orgB, token } = await benchTenants(app, db);
  const call = async (path: string, body: unknown, headers: Record<string, string>) => {
    const response = await app.handle(
      new Request(`http://bench.local${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
    );
    if (response.status >= 300) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const key = String((await call('/orgs/bench-a/apikeys', { label: 'bench' }, { authorization: `Bearer ${token}` })).key);
  const chats: string[] = [];
  for (let i = 0; i < CHATS; i++) {
    chats.push(String((await call('/api/v1/orgs/bench-a/chats', { title: `chat ${i}` }, { 'x-organization-api-key': key })).id));
  }
  return { organizationId: orgA, otherOrganizationId: orgB, key, chats };
}

async function count(db: Database, table: 'messages' | 'chats', organizationId: string): Promise<number> {
  const [row] = await query<{ n: number }>(db.fork(), `select count(*)::int as n from ${table} where organization_id = $1`, [organizationId]);
  return Number(row!.n);
}

/** Checks the counters against the rows: message_count of every chat equals its messages. */
async function countersMatch(db: Database, organizationId: string): Promise<boolean> {
  const [row] = await query<{ n: number }>(
    db.fork(),
    `select count(*)::int as n from chats c
      where c.organization_id = $1
        and c.message_count <> (select count(*) from messages m where m.organization_id = $1 and m.chat_id = c.id)`,
    [organizationId],
  );
  return Number(row!.n) === 0;
}

// ---- pgbench baseline ------------------------------------------------------------------------

interface PgbenchResult {
  tps: number;
  p50: number;
  p99: number;
}

/** Latency percentiles (microseconds) from pgbench's per-transaction logs (`-l`). */
function pgbenchPercentiles(prefix: string): { p50: number; p99: number } {
  const latencies: number[] = [];
  for (const file of readdirSync(work).filter((f) => f.startsWith(`${prefix}.`))) {
    for (const line of readFileSync(join(work, file), 'utf8').split('\n')) {
      const fields = line.split(' ');
      const latency = Number(fields[2]);
      if (fields.length > 2 && Number.isFinite(latency)) latencies.push(latency);
    }
    rmSync(join(work, file));
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Runs a pgbench script: a warm-up, then SECONDS measured with per-transaction latencies. */
function pgbench(name: string, sql: string, clients: number): PgbenchResult {
  const script = join(work, `${name}.sql`);
  writeFileSync(script, sql);
  const url = new URL(databaseUrl(DATABASE));
  const args = (seconds: number) => [
    PGBENCH, '-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', script,
    '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username || 'postgres'),
  ];
  if (WARMUP_SECONDS > 0) run([...args(WARMUP_SECONDS), DATABASE]);
  const out = run([...args(SECONDS), '-l', `--log-prefix=${join(work, name)}`, DATABASE], {}, work);
  return { tps: Number(/tps = ([\d.]+)/.exec(out)?.[1]), ...pgbenchPercentiles(name) };
}

/** The chats of the baseline as an SQL array, drawn at random per transaction (`:c`). */
const chatArray = (chats: string[]) => `(array[${chats.map((id) => `'${id}'`).join(',')}]::uuid[])`;

/** pgbench: one single-row INSERT per transaction, into `table`, on the same 1,000 chats. */
function pgbenchSingleRow(organizationId: string, chats: string[], table = 'messages'): PgbenchResult {
  return pgbench(
    `insert-${table}`,
    `\\set c random(1, ${chats.length})
insert into ${table} (organization_id, id, chat_id, role, content, created_at)
values ('${organizationId}', gen_random_uuid(), ${chatArray(chats)}[:c], 'user', '${CONTENT}', now());
`,
    CONNECTIONS,
  );
}

/**
 * The server's own append call (the repository's appendMessages) with the bench's batch of
 * BATCH_SIZE messages for one chat, sent by BATCH_CONNECTIONS loops of this process as the server
 * sends it (one JSON parameter, a named prepared statement on MikroORM's pool), without HTTP: what
 * PostgreSQL and a minimal client take of the batch load. (pgbench cannot make the ids; building
 * the JSON in SQL instead costs PostgreSQL about a third of its throughput.)
 */
async function clientBatchStatement(organizationId: string, chats: string[]): Promise<PgbenchResult> {
  const db = await openDatabase({ databaseUrl: databaseUrl(DATABASE), dataDir: 'memory://', databasePoolSize: BATCH_CONNECTIONS });
  const records = (chatId: string): NewMessage[] =>
    Array.from({ length: BATCH_SIZE }, (_, i) => ({
      chatId, id: Bun.randomUUIDv7(), role: i % 2 ? 'assistant' : 'user', content: CONTENT, name: null,
      model: i % 2 ? 'gpt-4o' : null, promptTokens: i % 2 ? 20 : null, completionTokens: i % 2 ? 40 : null,
      totalTokens: i % 2 ? 60 : null, latencyMs: i % 2 ? 800 : null, costUsd: null, toolCalls: null, metadata: {}, createdAt: null,
    }));
  const drive = async (seconds: number) => {
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: BATCH_CONNECTIONS }, async () => {
        while (performance.now() < end) {
          const started = performance.now();
          await appendMessages(db.fork(), organizationId, records(chats[Math.floor(Math.random() * chats.length)]!));
          latencies.push((performance.now() - started) * 1000);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
    return { tps: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
  };
  try {
    if (WARMUP_SECONDS > 0) await drive(WARMUP_SECONDS);
    return await drive(SECONDS);
  } finally {
    await db.close();
  }
}

// ---- the server ------------------------------------------------------------------------------

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
  peakRssKb(): number;
  rssKb(): number;
}

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const port = Number(process.env.BENCH_PORT ?? 20000 + Math.floor(Math.random() * 20000));
  const child = Bun.spawn(['bun', ...SERVER_FLAGS, 'src/main.ts'], {
    env: {
      ...process.env,
      NODE_ENV: process.env.BENCH_NODE_ENV ?? 'production',
      JWT_SECRET: 'bench-secret-that-is-at-least-32-characters-long',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL,
      RETENTION_ENABLED: 'false',
      // One API key carries the whole load here; a real deployment spreads it over many.
      INGEST_RATE_LIMIT_PER_MINUTE: '0',
      ...env,
    },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/ready`)).ok) break;
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the server did not become ready');
    await Bun.sleep(100);
  }
  return {
    url,
    pid: child.pid,
    peakRssKb: () => status(child.pid, 'VmHWM'),
    rssKb: () => status(child.pid, 'VmRSS'),
    async stop() {
      child.kill('SIGTERM');
      await child.exited;
    },
  };
}

// ---- wrk -------------------------------------------------------------------------------------

interface WrkResult {
  requests: number;
  non2xx: number;
  socketErrors: number;
  seconds: number;
  p50: number;
  p99: number;
}

/** Any bytes as a Lua string literal. */
const luaBytes = (bytes: Uint8Array) => `"${Array.from(bytes, (b) => `\\${b}`).join('')}"`;

/**
 * wrk with a Lua script that spreads requests over `paths` and reports JSON from done(). With
 * `placeholder`, each request's body has it replaced by a number unique to the request.
 */
let wrkRuns = 0;
function wrk(url: string, paths: string[], body: string | Uint8Array, key: string, connections: number, seconds = SECONDS, contentType = 'application/json', placeholder?: string): WrkResult {
  const script = join(work, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  // Request numbers go on from one run to the next (the warm-up's included), so no run repeats
  // another's bodies.
  wrkRuns += 1;
  const width = placeholder?.length ?? 0;
  writeFileSync(
    script,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}
local body = ${typeof body === 'string' ? JSON.stringify(body) : luaBytes(body)}
local headers = { ["content-type"] = ${JSON.stringify(contentType)}, ["x-organization-api-key"] = ${JSON.stringify(key)} }
local n = ${wrkRuns * 100_000}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  n = n + 1
  local payload = body
  ${placeholder ? `payload = string.gsub(body, ${JSON.stringify(placeholder)}, string.format("%03d%0${width - 3}d", tid, n))` : ''}
  return wrk.format("POST", paths[(n % #paths) + 1], headers, payload)
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"non2xx":%d,"socketErrors":%d,"micros":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
`,
  );
  const threads = Math.min(2, connections);
  const out = run(['wrk', '-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, url]);
  const json = JSON.parse(/RESULT (\{.*\})/.exec(out)![1]!);
  return { requests: json.requests, non2xx: json.non2xx, socketErrors: json.socketErrors, seconds: json.micros / 1e6, p50: json.p50, p99: json.p99 };
}

// ---- scenarios -------------------------------------------------------------------------------

async function scenario(
  name: string,
  server: Server,
  db: Database,
  organizationId: string,
  table: 'messages' | 'chats',
  perRequest: number,
  baseline: number,
  drive: (seconds: number) => WrkResult,
): Promise<Row> {
  await warmUp(name, drive);
  const before = await count(db, table, organizationId);
  const result = drive(SECONDS);
  await Bun.sleep(500);
  const stored = (await count(db, table, organizationId)) - before;
  const acknowledged = (result.requests - result.non2xx) * perRequest;
  const inFlight = stored - acknowledged;
  // wrk stops without waiting for its last requests; those may still commit (<= one per connection).
  const ok = inFlight >= 0 && inFlight <= CONNECTIONS * perRequest;
  const messagesPerSecond = acknowledged / result.seconds;
  log(`${name}: ${result.requests} requests, ${acknowledged} acknowledged, ${stored} stored`);
  return {
    scenario: name,
    requestsPerSecond: result.requests / result.seconds,
    messagesPerSecond,
    p50: ms(result.p50),
    p99: ms(result.p99),
    errors: result.non2xx + result.socketErrors,
    peakRss: mb(server.peakRssKb()),
    ratio: baseline ? `${(messagesPerSecond / baseline).toFixed(2)}×` : '',
    check: ok ? `ok (${acknowledged} acked, ${stored} stored)` : `FAILED: ${acknowledged} acknowledged, ${stored} stored`,
  };
}

/** Load that is not measured; its rows are stored like any others. Returns what it acknowledged. */
async function warmUp(name: string, drive: (seconds: number) => WrkResult): Promise<number> {
  if (WARMUP_SECONDS <= 0) return 0;
  const result = drive(WARMUP_SECONDS);
  log(`${name}: warm-up ${WARMUP_SECONDS} s, ${result.requests} requests, p99 ${ms(result.p99)} (not counted)`);
  await Bun.sleep(500);
  return result.requests - result.non2xx;
}

let embeddedIdleKb = 0;

/** The single-message load against the embedded database (PGlite) in a fresh data directory. */
async function embeddedScenario(): Promise<Row> {
  const dataDir = join(work, 'data');
  const embeddedDb = await openDatabase({ databaseUrl: undefined, dataDir, databasePoolSize: 1 });
  await embeddedDb.migrate();
  const embeddedTenant = await tenantWithChats(embeddedDb, '');
  await embeddedDb.close();
  const embedded = await startServer({ DATA_DIR: dataDir, DATABASE_URL: '' });
  embeddedIdleKb = embedded.rssKb();
  const name = `embedded PGlite, single message (${CONNECTIONS} conns)`;
  const drive = (seconds: number) =>
    wrk(embedded.url, embeddedTenant.chats.map((id) => `/api/v1/orgs/bench-a/chats/${id}/messages`), SINGLE_BODY, embeddedTenant.key, CONNECTIONS, seconds);
  // PGlite is inside the server's process, so rows are counted after it stops, warm-up included.
  const warmUpAcked = await warmUp(name, drive);
  const embeddedResult = drive(SECONDS);
  const embeddedPeak = embedded.peakRssKb();
  await embedded.stop();
  const reopened = await openDatabase({ databaseUrl: undefined, dataDir, databasePoolSize: 1 });
  const embeddedStored = await count(reopened, 'messages', embeddedTenant.organizationId);
  await reopened.close();
  const embeddedAcked = embeddedResult.requests - embeddedResult.non2xx;
  const allAcked = warmUpAcked + embeddedAcked;
  const embeddedOk = embeddedStored >= allAcked && embeddedStored - allAcked <= 2 * CONNECTIONS;
  return {
    scenario: name,
    requestsPerSecond: embeddedResult.requests / embeddedResult.seconds,
    messagesPerSecond: embeddedAcked / embeddedResult.seconds,
    p50: ms(embeddedResult.p50),
    p99: ms(embeddedResult.p99),
    errors: embeddedResult.non2xx + embeddedResult.socketErrors,
    peakRss: mb(embeddedPeak),
    ratio: '',
    check: embeddedOk ? `ok (${allAcked} acked, ${embeddedStored} stored)` : `FAILED: ${allAcked} acknowledged, ${embeddedStored} stored`,
  };
}

/** Single messages and batches over HTTP with the data distributed over a Citus cluster. */
async function citusScenarios(): Promise<Row[]> {
  const nodes = await citusNodes(CITUS_URL!);
  if (!nodes.length) throw new Error('BENCH_CITUS_URL is not a database on a Citus coordinator');
  await dropDatabase(CITUS_URL!, nodes, DATABASE);
  const url = await createCitusDatabase(CITUS_URL!, nodes, DATABASE);
  const db = await openDatabase({ databaseUrl: url, dataDir: 'memory://', databasePoolSize: 2 });
  const rows: Row[] = [];
  try {
    await db.migrate();
    const { organizationId, key, chats } = await tenantWithChats(db, url);
    const server = await startServer({ DATABASE_URL: url });
    const cluster = `Citus, coordinator + ${nodes.length - 1} workers`;
    const messagePaths = chats.map((id) => `/api/v1/orgs/bench-a/chats/${id}/messages`);
    rows.push(
      await scenario(`${cluster}: single message (${CONNECTIONS} conns)`, server, db, organizationId, 'messages', 1, 0, (seconds) =>
        wrk(server.url, messagePaths, SINGLE_BODY, key, CONNECTIONS, seconds),
      ),
      await scenario(`${cluster}: batch of ${BATCH_SIZE} (${BATCH_CONNECTIONS} conns)`, server, db, organizationId, 'messages', BATCH_SIZE, 0, (seconds) =>
        wrk(server.url, messagePaths.map((p) => `${p}/batch`), BATCH_BODY, key, BATCH_CONNECTIONS, seconds),
      ),
    );
    await server.stop();
    if (!(await countersMatch(db, organizationId))) rows.push({ ...rows[0]!, scenario: `${cluster}: chat counters`, check: 'FAILED: counters differ from rows' });
  } finally {
    await db.close();
    await dropDatabase(CITUS_URL!, nodes, DATABASE);
  }
  return rows;
}

const BATCH_BODY = JSON.stringify({
  messages: Array.from({ length: BATCH_SIZE }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: CONTENT, ...(i % 2 ? { model: 'gpt-4o', promptTokens: 20, completionTokens: 40, latencyMs: 800 } : {}) })),
});

/**
 * One OTLP/protobuf export as an instrumented chat application sends it: made with the
 * OpenTelemetry SDK and serialized by its own OTLP serializer. Conversation ids carry the
 * placeholder, so wrk makes every request new conversations (identical bodies would be retries).
 */
function otlpExport(): Uint8Array {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'bench-llm-app' }), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  const tracer = provider.getTracer('bench');
  const part = (role: string, content: string) => ({ role, parts: [{ type: 'text', content }] });
  for (let c = 0; c < OTLP_CONVERSATIONS; c++) {
    const history: object[] = [];
    for (let turn = 0; turn < OTLP_TURNS; turn++) {
      history.push(part('user', `${CONTENT} (question ${turn + 1})`));
      const answer = `Your order ${1000 + c} left our warehouse yesterday and should arrive within two days (answer ${turn + 1}).`;
      const span = tracer.startSpan('chat gpt-4o', {
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.response.model': 'gpt-4o-2024-08-06',
          'gen_ai.conversation.id': `${OTLP_PLACEHOLDER}-${c}`,
          'user.id': `customer-${c}`,
          'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'You are the support assistant of an online shop. Answer briefly.' }]),
          'gen_ai.input.messages': JSON.stringify(history),
          'gen_ai.output.messages': JSON.stringify([{ ...part('assistant', answer), finish_reason: 'stop' }]),
          'gen_ai.usage.input_tokens': 40 * (turn + 1),
          'gen_ai.usage.output_tokens': 24,
          'gen_ai.response.finish_reasons': ['stop'],
        },
      });
      span.end();
      history.push(part('assistant', answer));
    }
  }
  return ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans())!;
}

async function main() {
  ensureWrk();
  log(`preparing ${DATABASE} on ${new URL(SERVER_URL).host}`);
  const { db, organizationId, otherOrganizationId, key, chats, baselineChats } = await prepareDatabase();

  log(`pgbench: single-row INSERT, ${CONNECTIONS} clients, ${SECONDS} s after ${WARMUP_SECONDS} s of warm-up`);
  const baseline = pgbenchSingleRow(otherOrganizationId, baselineChats);
  log(`pgbench: ${baseline.tps.toFixed(0)} tps, p99 ${ms(baseline.p99)}`);
  // For reference: the same INSERT into a copy of messages with its indexes but without its
  // foreign key, i.e. what checking the chat costs per row.
  await query(db.fork(), `create table bench_plain_messages (like messages including all)`, []);
  const plain = pgbenchSingleRow(otherOrganizationId, baselineChats, 'bench_plain_messages');
  log(`pgbench without the foreign key: ${plain.tps.toFixed(0)} tps`);
  const batchBaseline = SCENARIOS.has('batch') ? await clientBatchStatement(otherOrganizationId, baselineChats) : undefined;
  if (batchBaseline) log(`the append call with ${BATCH_SIZE} messages from a client: ${(batchBaseline.tps * BATCH_SIZE).toFixed(0)} messages/s`);
  const baselineRow = (scenario: string, result: PgbenchResult, perTransaction = 1): Row => ({
    scenario,
    requestsPerSecond: result.tps,
    messagesPerSecond: result.tps * perTransaction,
    p50: ms(result.p50),
    p99: ms(result.p99),
    errors: 0,
    peakRss: '',
    ratio: `${((result.tps * perTransaction) / baseline.tps).toFixed(2)}×`,
    check: '',
  });
  const rows: Row[] = [
    baselineRow(`pgbench INSERT into messages (${CONNECTIONS} clients)`, baseline),
    baselineRow(`pgbench INSERT, same indexes, no FK`, plain),
  ];
  if (batchBaseline) rows.push(baselineRow(`append call from a client, ${BATCH_SIZE} messages (${BATCH_CONNECTIONS} connections)`, batchBaseline, BATCH_SIZE));

  const server = await startServer({ DATABASE_URL: databaseUrl(DATABASE) });
  await Bun.sleep(3000);
  const idleRss = server.rssKb();
  log(`server idle RSS ${mb(idleRss)}`);
  const messagePaths = chats.map((id) => `/api/v1/orgs/bench-a/chats/${id}/messages`);
  if (SCENARIOS.has('single')) rows.push(
    await scenario(`single message (${CONNECTIONS} conns)`, server, db, organizationId, 'messages', 1, baseline.tps, (seconds) =>
      wrk(server.url, messagePaths, SINGLE_BODY, key, CONNECTIONS, seconds),
    ),
  );
  if (SCENARIOS.has('batch')) rows.push(
    await scenario(`batch of ${BATCH_SIZE} (${BATCH_CONNECTIONS} conns)`, server, db, organizationId, 'messages', BATCH_SIZE, baseline.tps, (seconds) =>
      wrk(server.url, messagePaths.map((p) => `${p}/batch`), BATCH_BODY, key, BATCH_CONNECTIONS, seconds),
    ),
  );
  const chatBody = JSON.stringify({ title: 'Order status', externalUserId: 'user-42', tags: ['orders'] });
  if (SCENARIOS.has('chats')) rows.push(
    await scenario(`chat creation (${CONNECTIONS} conns)`, server, db, organizationId, 'chats', 1, baseline.tps, (seconds) =>
      wrk(server.url, ['/api/v1/orgs/bench-a/chats'], chatBody, key, CONNECTIONS, seconds),
    ),
  );
  let otlpSpansPerSecond = 0;
  if (SCENARIOS.has('otlp')) {
    const body = otlpExport();
    log(`OTLP export: ${OTLP_SPANS} spans, ${OTLP_MESSAGES} new messages, ${(body.byteLength / 1024).toFixed(0)} KiB of protobuf`);
    const row = await scenario(`OTLP/protobuf, ${OTLP_SPANS} GenAI spans a request (${BATCH_CONNECTIONS} conns)`, server, db, organizationId, 'messages', OTLP_MESSAGES, baseline.tps, (seconds) =>
      wrk(server.url, ['/api/v1/orgs/bench-a/otel/v1/traces'], body, key, BATCH_CONNECTIONS, seconds, 'application/x-protobuf', OTLP_PLACEHOLDER),
    );
    otlpSpansPerSecond = row.requestsPerSecond * OTLP_SPANS;
    rows.push(row);
  }
  const countersOk = await countersMatch(db, organizationId);
  await server.stop();
  await db.close();

  // Embedded database: the same single-message load against PGlite in a fresh data directory.
  if (SCENARIOS.has('embedded')) rows.push(await embeddedScenario());
  if (CITUS_URL) rows.push(...(await citusScenarios()));

  console.log();
  console.log(
    markdownTable(
      ['scenario', 'requests/s', 'messages/s', 'p50', 'p99', 'errors', 'peak RSS', 'vs pgbench', 'rows = 2xx'],
      rows.map((r) => [
        r.scenario,
        r.requestsPerSecond.toFixed(0),
        r.messagesPerSecond.toFixed(0),
        r.p50,
        r.p99,
        String(r.errors),
        r.peakRss,
        r.ratio,
        r.check,
      ]),
      1,
    ),
  );
  console.log();
  console.log(`idle RSS: PostgreSQL mode ${mb(idleRss)}, embedded mode ${mb(embeddedIdleKb)}; chat counters match rows: ${countersOk ? 'yes' : 'NO'}`);
  if (otlpSpansPerSecond) console.log(`OTLP: ${otlpSpansPerSecond.toFixed(0)} spans/s accepted (${OTLP_SPANS} spans and ${OTLP_MESSAGES} new messages per export)`);
  console.log(`${SECONDS} s per scenario after ${WARMUP_SECONDS} s of warm-up (pgbench too), wrk with 2 threads, server LOG_LEVEL=${LOG_LEVEL}, ingestion rate limit off`);
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  rmSync(work, { recursive: true, force: true });
  if (rows.some((r) => r.check.startsWith('FAILED')) || !countersOk) process.exit(1);
}

await main();
