import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { createTestApp, BASE_URL, type TestApp } from './support/harness.ts';
import { testDatabaseKind } from './support/database.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { listOperations, spec } from '../src/http/contract.ts';
import { PROJECT_ROOT } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const openapiFile = join(PROJECT_ROOT, 'openapi.yaml');
const packageVersion = (JSON.parse(await Bun.file(join(PROJECT_ROOT, 'package.json')).text()) as { version: string }).version;

let t: TestApp;
const extraDatabases: Database[] = [];

beforeAll(async () => {
  // With a token, /metrics is served on the main port like every other documented route.
  t = await createTestApp({ METRICS_TOKEN: 'system-test-metrics-token' });
});

afterAll(async () => {
  // Closing twice is harmless; a test that failed half-way may have left one open.
  for (const db of extraDatabases) await db.close().catch(() => {});
});

/** A private in-memory PGlite database, independent of the run's shared one. */
async function privateDatabase(migrate: boolean): Promise<Database> {
  const db = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://', databasePoolSize: 1 });
  extraDatabases.push(db);
  if (migrate) await db.migrate();
  return db;
}

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')?.split(';')[0]).toBe('application/problem+json');
  const body = (await response.json()) as Record<string, unknown>;
  expect(typeof body.type).toBe('string');
  expect(typeof body.title).toBe('string');
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe('string');
  return body;
}

describe('GET /health', () => {
  test('answers 200 {status: ok}', async () => {
    const { data, response } = await t.client().GET('/health');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('application/json');
    expect(data).toEqual({ status: 'ok' });
  });
});

describe('GET /ready', () => {
  test('answers 200 with the kind of database in use', async () => {
    const { data, response } = await t.client().GET('/ready');
    expect(response.status).toBe(200);
    expect(data).toEqual({ status: 'ready', database: testDatabaseKind });
  });

  test('answers 503 problem+json when the database is closed', async () => {
    const db = await privateDatabase(true);
    const app = await createTestApp({}, db);
    const before = await app.client().GET('/ready');
    expect(before.response.status).toBe(200);
    expect(before.data).toEqual({ status: 'ready', database: 'pglite' });

    await db.close();
    const { response, error } = await app.client().GET('/ready');
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('retry-after')).toBe('1');
    expect(error).toMatchObject({ type: '/problems/unavailable', status: 503 });
    expect(error!.detail).toBeString();
  }, 60_000);

  test('answers 503 problem+json while migrations are pending', async () => {
    const db = await privateDatabase(false);
    expect((await db.pendingMigrations()).length).toBeGreaterThan(0);
    const app = await createTestApp({}, db);
    const { response, error } = await app.client().GET('/ready');
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(error).toMatchObject({ type: '/problems/unavailable', title: 'Service Unavailable', status: 503 });
    expect(error!.detail).toContain('migration');
    // /health does not depend on the database.
    expect((await app.fetch('/health')).status).toBe(200);

    // Once migrated the same app is ready.
    await db.migrate();
    const after = await app.client().GET('/ready');
    expect(after.response.status).toBe(200);
  }, 60_000);
});

describe('GET /version', () => {
  test('reports the package version, a build time and the git commit by default', async () => {
    const { data, response } = await t.client().GET('/version');
    expect(response.status).toBe(200);
    expect(data!.version).toBe(packageVersion);
    expect(Number.isNaN(Date.parse(data!.buildTime))).toBe(false);
    expect(data!.gitCommit).toMatch(/^([0-9a-f]{40}|unknown)$/);
  });

  test('honours VERSION, BUILD_TIME and GIT_COMMIT', async () => {
    const app = await createTestApp({ VERSION: '9.9.9', BUILD_TIME: '2030-01-02T03:04:05Z', GIT_COMMIT: 'abc1234' });
    const { data, response } = await app.client().GET('/version');
    expect(response.status).toBe(200);
    expect(data).toEqual({ version: '9.9.9', buildTime: '2030-01-02T03:04:05Z', gitCommit: 'abc1234' });
  });
});

describe('the contract documents', () => {
  test('GET /openapi.yaml serves the bytes of openapi.yaml', async () => {
    const response = await t.fetch('/openapi.yaml');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/yaml/);
    const served = new Uint8Array(await response.arrayBuffer());
    const file = await Bun.file(openapiFile).bytes();
    expect(served.byteLength).toBe(file.byteLength);
    expect(Buffer.compare(served, file)).toBe(0);
  });

  test('GET /openapi.json is openapi.yaml as JSON (apart from the openapi version field)', async () => {
    const response = await t.fetch('/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('application/json');
    const served = (await response.json()) as Record<string, unknown>;
    const parsed = Bun.YAML.parse(await Bun.file(openapiFile).text()) as Record<string, unknown>;
    expect(served.openapi).toMatch(/^3\.\d+\.\d+$/);
    const { openapi: _served, ...servedRest } = served;
    const { openapi: _parsed, ...parsedRest } = parsed;
    expect(servedRest).toEqual(parsedRest);
    // Not vacuous: the documents carry every path.
    expect(Object.keys(servedRest.paths as object).sort()).toEqual(Object.keys(spec.paths).sort());
  });

  test('GET /swagger serves HTML that loads only local assets, and they answer 200', async () => {
    const response = await t.fetch('/swagger');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('text/html');
    const html = await response.text();

    const references = [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
    expect(references.length).toBeGreaterThanOrEqual(2);
    for (const ref of references) expect(ref).toStartWith('/swagger/assets/');
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|cdnjs/i);

    const scripts = references.filter((r) => r.endsWith('.js'));
    const styles = references.filter((r) => r.endsWith('.css'));
    expect(scripts.length).toBeGreaterThanOrEqual(1);
    expect(styles.length).toBeGreaterThanOrEqual(1);
    for (const ref of references) {
      const asset = await t.fetch(ref);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(ref.endsWith('.js') ? /javascript/ : /text\/css/);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }

    // The spec that Swagger UI loads resolves to the served JSON document.
    const specUrl = html.match(/"url"\s*:\s*"([^"]+)"/)?.[1];
    expect(specUrl).toBeDefined();
    const resolved = new URL(specUrl!, `${BASE_URL}/swagger`);
    expect(resolved.origin).toBe(BASE_URL);
    const specResponse = await t.fetch(resolved.pathname);
    expect(specResponse.status).toBe(200);
    expect(((await specResponse.json()) as { paths: object }).paths).toEqual(spec.paths as object);
  });
});

describe('unknown routes', () => {
  test('GET answers 404 problem+json', async () => {
    const body = await expectProblem(await t.fetch('/no/such/route'), 404);
    expect(body).toMatchObject({ type: '/problems/not-found', title: 'Not Found' });
  });

  test('POST answers 404 problem+json, whatever the body', async () => {
    for (const init of [
      { method: 'POST' },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' },
      { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' },
    ]) {
      const body = await expectProblem(await t.fetch('/no/such/route', init), 404);
      expect(body).toMatchObject({ type: '/problems/not-found', title: 'Not Found' });
    }
  });

  test('a known path with an undocumented method answers 405 problem+json with Allow', async () => {
    const health = await t.fetch('/health', { method: 'DELETE' });
    expect(health.headers.get('allow')).toContain('GET');
    await expectProblem(health, 405);
    const orgs = await t.fetch('/orgs', { method: 'PUT' });
    expect(orgs.headers.get('allow')).toBe('GET, POST');
    await expectProblem(orgs, 405);
  });
});

describe('routes and openapi.yaml agree', () => {
  const operations = listOperations();
  const isNoSuchRoute = async (response: Response) => {
    if (response.status !== 404) return false;
    const text = await response.text();
    return text.includes('No such route.');
  };

  test('openapi.yaml lists operations', () => {
    expect(operations.length).toBeGreaterThanOrEqual(10);
  });

  for (const op of operations) {
    test(`${op.method.toUpperCase()} ${op.path} (${op.operationId}) is routed`, async () => {
      const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name === 'org' ? 'me' : crypto.randomUUID()));
      expect(path).not.toContain('{');
      const hasBody = op.operation.requestBody !== undefined;
      const response = await t.fetch(path, {
        method: op.method.toUpperCase(),
        ...(hasBody ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
      });
      expect(await isNoSuchRoute(response)).toBe(false);
      expect(response.status).toBeLessThan(500);
    });
  }

  test('every route of the app is documented in openapi.yaml', () => {
    const routes = t.app.routes
      // The dashboard's pages (and `/`, which leads to them) are HTML, not API operations.
      .filter((r) => !r.path.startsWith('/swagger') && !r.path.startsWith('/openapi.') && r.path !== '/' && r.path !== '/app' && !r.path.startsWith('/app/'))
      .map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}') }));
    expect(routes.length).toBeGreaterThanOrEqual(operations.length);
    const undocumented = routes.filter(
      (r) => !operations.some((op) => op.method === r.method && op.path === r.path),
    );
    expect(undocumented).toEqual([]);
    // ...and the mapping is one to one.
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.sort()).toEqual(operations.map((op) => `${op.method} ${op.path}`).sort());
  });
});
