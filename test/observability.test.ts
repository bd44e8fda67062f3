/**
 * Request ids, the request log line and the Prometheus metrics: through the app (app.handle) and
 * the separate METRICS_PORT listener on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { Writable } from 'node:stream';
import { createApp } from '../src/app.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { metrics, observeDatabase, observeIngestQueue } from '../src/observability/metrics.ts';
import { startMetricsServer } from '../src/http/metrics.ts';
import { startTracing, type Tracing } from '../src/http/tracing.ts';
import { testDatabaseKind } from './support/database.ts';
import { BASE_URL, createTenant, createTestApp, PASSWORD, testConfig, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const METRICS_TOKEN = 'observability-test-token-0123456789';
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let t: TestApp;
let tenant: Tenant;
/** The app under test logs into this array, one parsed object per line. */
const logLines: Record<string, unknown>[] = [];
let logText = '';
let handle: (path: string, init?: RequestInit) => Promise<Response>;

beforeAll(async () => {
  t = await createTestApp({ METRICS_TOKEN });
  tenant = await createTenant(t);
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logText += String(chunk);
      for (const line of String(chunk).split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logged = createApp({ config: t.config, db: t.db, log: createLogger('info', sink) });
  handle = (path, init) => logged.handle(new Request(BASE_URL + path, init));
});

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toStartWith('application/problem+json');
  expect(((await response.json()) as { status: number }).status).toBe(status);
}

/** The value of one sample of the exposition text; 0 when the series does not exist yet. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(match[3]);
  }
  return 0;
}

async function scrape(): Promise<string> {
  const response = await t.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  return response.text();
}

describe('request id', () => {
  test('an acceptable X-Request-Id is answered as it was sent, on success and on every kind of error', async () => {
    const id = 'req.abc_DEF-123';
    const cases: [string, RequestInit, number][] = [
      ['/health', {}, 200],
      ['/no/such/route', {}, 404],
      ['/users/me', {}, 401],
      [`/api/v1/orgs/${tenant.slug}/chats`, json({ title: 1 }, { 'x-organization-api-key': tenant.apiKey }), 422],
      [`/api/v1/orgs/${tenant.slug}/chats`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-organization-api-key': tenant.apiKey }, body: '{"title":' }, 400],
    ];
    for (const [path, init, status] of cases) {
      const response = await t.fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), 'x-request-id': id } });
      expect(response.status).toBe(status);
      expect(response.headers.get('x-request-id')).toBe(id);
      if (status >= 400) expect(response.headers.get('content-type')).toStartWith('application/problem+json');
    }
  });

  test('128 characters are accepted; a longer id, or one with other characters, is replaced by a new UUIDv7', async () => {
    const longest = 'a'.repeat(128);
    expect((await t.fetch('/health', { headers: { 'x-request-id': longest } })).headers.get('x-request-id')).toBe(longest);
    for (const bad of ['a'.repeat(129), 'has space', 'semi;colon', 'ünicode', 'a/b', '']) {
      const answered = (await t.fetch('/health', { headers: { 'x-request-id': bad } })).headers.get('x-request-id');
      expect(answered).toMatch(UUID_V7);
    }
  });

  test('without one, each request gets its own UUIDv7', async () => {
    const [a, b] = await Promise.all([t.fetch('/health'), t.fetch('/no/such/route')]);
    const ids = [a.headers.get('x-request-id'), b.headers.get('x-request-id')];
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(ids[0]).not.toBe(ids[1]);
  });
});

describe('request log', () => {
  test('one line per request with its id, route template, status, duration and organization; never secrets or bodies', async () => {
    const secretContent = `private-content-${crypto.randomUUID()}`;
    const wrongPassword = 'wrong-password-never-logged';
    const created = await handle(`/api/v1/orgs/${tenant.slug}/chats`, json({ title: secretContent }, { 'x-organization-api-key': tenant.apiKey, 'x-request-id': 'log-chat-1' }));
    expect(created.status).toBe(201);
    const failed = await handle('/auth/login', json({ email: tenant.adminEmail, password: wrongPassword }, { 'x-request-id': 'log-login-1' }));
    await expectProblem(failed, 401);
    const login = await handle('/auth/login', json({ email: tenant.adminEmail, password: PASSWORD, issueToken: true }));
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const me = await handle('/orgs/me', { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'log-org-1' } });
    expect(me.status).toBe(200);
    // onAfterResponse runs once the response is handed over.
    await Bun.sleep(20);

    const line = (id: string) => logLines.find((l) => l.requestId === id);
    expect(line('log-chat-1')).toMatchObject({ method: 'POST', route: '/api/v1/orgs/:slug/chats', status: 201, organizationId: tenant.orgId });
    expect(typeof line('log-chat-1')!.ms).toBe('number');
    expect(line('log-login-1')).toMatchObject({ method: 'POST', route: '/auth/login', status: 401 });
    expect(line('log-login-1')!.organizationId).toBeUndefined();
    expect(line('log-org-1')).toMatchObject({ method: 'GET', route: '/orgs/:org', status: 200, organizationId: tenant.orgId });

    for (const secret of [tenant.apiKey, PASSWORD, wrongPassword, token, secretContent, tenant.slug]) expect(logText).not.toContain(secret);
  });
});

describe('GET /metrics on the main port', () => {
  test('needs METRICS_TOKEN as a bearer token: none, a wrong one, a session token or an API key get a 401 problem', async () => {
    await expectProblem(await t.fetch('/metrics'), 401);
    await expectProblem(await t.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } }), 401);
    await expectProblem(await t.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}` } }), 401);
    await expectProblem(await t.fetch('/metrics', { headers: { authorization: `Basic ${btoa(`x:${METRICS_TOKEN}`)}` } }), 401);
    await expectProblem(await t.fetch('/metrics', { headers: { authorization: `Bearer ${tenant.adminToken}` } }), 401);
    await expectProblem(await t.fetch('/metrics', { headers: { 'x-organization-api-key': tenant.apiKey } }), 401);
  });

  test('without METRICS_TOKEN it does not exist there (404 problem), whatever is sent', async () => {
    const plain = await createTestApp();
    await expectProblem(await plain.fetch('/metrics'), 404);
    await expectProblem(await plain.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }), 404);
  });

  test('answers the Prometheus text format with the process metrics', async () => {
    const response = await t.fetch('/metrics', { headers: { authorization: `bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('text/plain; version=0.0.4');
    const text = await response.text();
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
    expect(text).toContain('# TYPE chatlogger_http_request_duration_seconds histogram');
  });

  test('counts requests by method, route template and status, with their latency', async () => {
    const labels = { method: 'GET', route: '/orgs/:org/chats/:chatId', status: '404' };
    const before = await scrape();
    for (let i = 0; i < 3; i++) {
      const response = await t.fetch(`/orgs/me/chats/${crypto.randomUUID()}`, { headers: { authorization: `Bearer ${tenant.adminToken}` } });
      expect(response.status).toBe(404);
    }
    await Bun.sleep(20);
    const after = await scrape();
    expect(sample(after, 'chatlogger_http_requests_total', labels) - sample(before, 'chatlogger_http_requests_total', labels)).toBe(3);
    expect(sample(after, 'chatlogger_http_request_duration_seconds_count', labels) - sample(before, 'chatlogger_http_request_duration_seconds_count', labels)).toBe(3);
    expect(sample(after, 'chatlogger_http_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBeGreaterThanOrEqual(3);
    // Paths never become labels: the chat ids above are nowhere in the output.
    expect(after).not.toContain(tenant.slug);
  });

  test('counts created chats, stored messages (not idempotent repeats) and rejected messages by reason', async () => {
    const key = { 'x-organization-api-key': tenant.apiKey };
    const before = await scrape();
    const chatId = crypto.randomUUID();
    expect((await t.fetch(`/api/v1/orgs/${tenant.slug}/chats`, json({ id: chatId, title: 'metrics' }, key))).status).toBe(201);
    expect((await t.fetch(`/api/v1/orgs/${tenant.slug}/chats`, json({ id: chatId, title: 'metrics' }, key))).status).toBe(200);
    const batch = { messages: [{ role: 'user', content: 'one' }, { role: 'assistant', content: 'two' }, { role: 'user', content: 'three' }] };
    expect((await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages/batch`, json(batch, key))).status).toBe(201);
    const messageId = crypto.randomUUID();
    expect((await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages`, json({ id: messageId, role: 'user', content: 'four' }, key))).status).toBe(201);
    expect((await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages`, json({ id: messageId, role: 'user', content: 'four' }, key))).status).toBe(200);
    // Refused: an invalid batch of two (422), a message under a wrong key (401), one to a missing chat (404).
    const invalid = { messages: [{ role: 'user', content: 'ok' }, { role: 'robot', content: 'no' }] };
    await expectProblem(await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages/batch`, json(invalid, key)), 422);
    await expectProblem(await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages`, json({ role: 'user', content: 'x' }, { 'x-organization-api-key': `clk_${'x'.repeat(40)}` })), 401);
    await expectProblem(await t.fetch(`/api/v1/orgs/${tenant.slug}/chats/${crypto.randomUUID()}/messages`, json({ role: 'user', content: 'x' }, key)), 404);
    await Bun.sleep(20);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('chatlogger_ingest_chats_created_total')).toBe(1);
    expect(delta('chatlogger_ingest_messages_stored_total')).toBe(4);
    expect(delta('chatlogger_ingest_messages_rejected_total', { reason: 'validation', status: '422' })).toBe(2);
    expect(delta('chatlogger_ingest_messages_rejected_total', { reason: 'unauthorized', status: '401' })).toBe(1);
    expect(delta('chatlogger_ingest_messages_rejected_total', { reason: 'not-found', status: '404' })).toBe(1);
  });

  test('reports the database pool, and the ingestion queue and batch sizes the writer observes', async () => {
    await observeDatabase(t.db);
    let text = await scrape();
    if (testDatabaseKind === 'pglite') {
      expect(sample(text, 'chatlogger_db_pool_connections')).toBe(1);
      expect(sample(text, 'chatlogger_db_pool_max_connections')).toBe(1);
    } else {
      // The test database's pool: DATABASE_POOL_SIZE 10, at least one connection opened by now.
      expect(sample(text, 'chatlogger_db_pool_max_connections')).toBe(10);
      expect(sample(text, 'chatlogger_db_pool_connections')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'chatlogger_db_pool_idle_connections')).toBeLessThanOrEqual(sample(text, 'chatlogger_db_pool_connections'));
    }
    expect(sample(text, 'chatlogger_db_pool_waiting_requests')).toBe(0);

    const sizesBefore = sample(text, 'chatlogger_ingest_batch_size_count', { kind: 'messages' });
    metrics.ingestBatchSize.observe({ kind: 'messages' }, 7);
    let queued = 5;
    observeIngestQueue(() => queued);
    text = await scrape();
    expect(sample(text, 'chatlogger_ingest_batch_size_count', { kind: 'messages' }) - sizesBefore).toBe(1);
    expect(sample(text, 'chatlogger_ingest_queue_pending')).toBe(5);
    queued = 0;
    expect(sample(await scrape(), 'chatlogger_ingest_queue_pending')).toBe(0);
  });
});

describe('METRICS_PORT listener', () => {
  let server: ReturnType<typeof startMetricsServer>;
  beforeAll(() => {
    server = startMetricsServer({ metricsHost: '127.0.0.1', metricsPort: 0 });
  });
  afterAll(() => server.stop(true));

  test('serves /metrics on 127.0.0.1 without credentials, and nothing else', async () => {
    expect(server.hostname).toBe('127.0.0.1');
    const base = `http://127.0.0.1:${server.port}`;
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('chatlogger_http_requests_total');
    await expectProblem(await fetch(`${base}/health`), 404);
    await expectProblem(await fetch(`${base}/metrics`, { method: 'POST' }), 405);
  });
});

describe('OpenTelemetry traces', () => {
  type Attribute = { key: string; value: { stringValue?: string; intValue?: number | string } };
  type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Attribute[]; status?: { code?: number } };
  const received: { contentType: string | null; body: { resourceSpans: { resource: { attributes: Attribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] } }[] = [];
  let collector: ReturnType<typeof Bun.serve>;
  let tracing: Tracing;
  let traced: ReturnType<typeof createApp>;

  beforeAll(async () => {
    collector = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(request) {
        if (request.method !== 'POST' || new URL(request.url).pathname !== '/v1/traces') return new Response('not here', { status: 404 });
        received.push({ contentType: request.headers.get('content-type'), body: (await request.json()) as (typeof received)[number]['body'] });
        return Response.json({});
      },
    });
    tracing = await startTracing({ endpoint: `http://127.0.0.1:${collector.port}/`, serviceVersion: '9.9.9' });
    traced = createApp({ config: t.config, db: t.db, log: createLogger('silent'), tracing });
  });
  afterAll(async () => {
    await tracing.shutdown();
    await collector.stop(true);
  });

  const attribute = (span: OtlpSpan, key: string) => {
    const value = span.attributes.find((a) => a.key === key)?.value;
    return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
  };

  test('each request is a server span sent to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces, continuing the caller\'s trace', async () => {
    const traceId = crypto.randomUUID().replaceAll('-', '');
    const parentSpanId = traceId.slice(0, 16);
    const ok = await traced.handle(new Request(`${BASE_URL}/orgs/me`, { headers: { authorization: `Bearer ${tenant.adminToken}`, traceparent: `00-${traceId}-${parentSpanId}-01`, 'x-request-id': 'traced-1' } }));
    expect(ok.status).toBe(200);
    expect((await traced.handle(new Request(`${BASE_URL}/no/such/route`))).status).toBe(404);
    await Bun.sleep(20);
    await tracing.flush();

    expect(received.length).toBeGreaterThan(0);
    expect(received[0]!.contentType).toStartWith('application/json');
    const resource = received[0]!.body.resourceSpans[0]!.resource.attributes;
    expect(resource).toContainEqual({ key: 'service.name', value: { stringValue: 'chatlogger' } });
    expect(resource).toContainEqual({ key: 'service.version', value: { stringValue: '9.9.9' } });
    const spans = received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

    const org = spans.find((span) => span.name === 'GET /orgs/:org')!;
    expect(org).toBeDefined();
    expect(org.traceId).toBe(traceId);
    expect(org.parentSpanId).toBe(parentSpanId);
    expect(org.kind).toBe(2); // SERVER
    expect(attribute(org, 'http.route')).toBe('/orgs/:org');
    expect(attribute(org, 'http.response.status_code')).toBe(200);
    expect(attribute(org, 'chatlogger.request_id')).toBe('traced-1');
    expect(attribute(org, 'chatlogger.organization_id')).toBe(tenant.orgId);

    const unmatched = spans.find((span) => span.name === 'GET unmatched')!;
    expect(attribute(unmatched, 'http.response.status_code')).toBe(404);
    // A new trace when the caller sends none; never the path (slugs, ids) in names or attributes.
    expect(unmatched.traceId).not.toBe(traceId);
    expect(JSON.stringify(received)).not.toContain('/no/such/route');
  });

  test('off by default: an app without tracing answers without any span being exported', async () => {
    const before = received.length;
    expect((await t.fetch('/health')).status).toBe(200);
    await tracing.flush();
    expect(received.length).toBe(before);
  });
});

describe('configuration', () => {
  const configProblems = (env: Record<string, string>) => {
    try {
      testConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  test('defaults: no token, no metrics port, metrics host 127.0.0.1, tracing off', () => {
    const config = loadConfig({ JWT_SECRET: 'x'.repeat(32), DATA_DIR: '/tmp/chatlogger-unused' });
    expect(config).toMatchObject({ metricsToken: undefined, metricsPort: undefined, metricsHost: '127.0.0.1', otlpEndpoint: undefined });
  });

  test('a short METRICS_TOKEN, a bad METRICS_PORT and a non-HTTP OTLP endpoint are refused at start', () => {
    expect(configProblems({ METRICS_TOKEN: 'short' })).toEqual(['METRICS_TOKEN must be at least 16 characters']);
    expect(configProblems({ METRICS_PORT: '70000' })[0]).toContain('METRICS_PORT');
    expect(configProblems({ METRICS_PORT: 'nine' })[0]).toContain('METRICS_PORT');
    expect(configProblems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })[0]).toContain('OTEL_EXPORTER_OTLP_ENDPOINT');
    expect(testConfig({ METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' })).toMatchObject({ metricsPort: 9464, metricsHost: '10.0.0.5' });
  });
});
