/**
 * How the dashboard is served (through app.handle): index.html for every /app path, hashed
 * assets cached for good, gzip when asked, 304 on a matching ETag, problem+json for what is not
 * there. What the pages do is tested in a real browser by dashboard.e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { Elysia } from 'elysia';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/logger.ts';
import { problems } from '../src/http/problem.ts';
import { loadWebBundle, type WebBundle } from '../src/modules/web/web.bundle.ts';
import { webRoutes } from '../src/modules/web/web.routes.ts';
import { createTestApp, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

let t: TestApp;
let html: string;
let assets: string[];

beforeAll(async () => {
  t = await createTestApp();
  const response = await t.fetch('/app');
  html = await response.text();
  assets = [...html.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map((m) => m[1]!);
}, 60_000);

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')?.split(';')[0]).toBe('application/problem+json');
  const body = (await response.json()) as { status: number; detail: string };
  expect(body.status).toBe(status);
  expect(body.detail.length).toBeGreaterThan(0);
}

describe('index.html', () => {
  test('/app answers the page, revalidated on every visit', async () => {
    const response = await t.fetch('/app');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('etag')).toMatch(/^"[0-9a-z]+"$/);
    expect(html).toContain('<div id="root">');
  });

  test('it loads one hashed script and one hashed stylesheet, and nothing inline', () => {
    expect(assets.filter((a) => a.endsWith('.js'))).toHaveLength(1);
    expect(assets.filter((a) => a.endsWith('.css'))).toHaveLength(1);
    for (const asset of assets) expect(asset).toMatch(/^\/app\/assets\/[\w.-]+-[0-9a-z]{8}\.(js|css)$/);
    // A CSP without 'unsafe-inline' blocks inline scripts, style elements and style attributes.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style\b|\sstyle=/);
    // No request leaves the origin.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  test('every client route under /app answers the same page', async () => {
    for (const path of ['/app/', '/app/chats', '/app/chats/0193a1b2-0000-7000-8000-000000000000', '/app/analytics?days=7', '/app/no/such/page']) {
      const response = await t.fetch(path);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(await response.text()).toBe(html);
    }
  });

  test('a matching If-None-Match answers 304 without a body', async () => {
    const etag = (await t.fetch('/app')).headers.get('etag')!;
    const response = await t.fetch('/app/chats', { headers: { 'if-none-match': etag } });
    expect(response.status).toBe(304);
    expect(await response.text()).toBe('');
    expect((await t.fetch('/app', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
  });

  test('/ leads to the dashboard', async () => {
    const response = await t.fetch('/');
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/app');
  });
});

describe('assets', () => {
  test('are cached for a year as immutable, with their type', async () => {
    for (const asset of assets) {
      const response = await t.fetch(asset);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('content-type')).toBe(asset.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(response.headers.get('content-encoding')).toBeNull();
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }
  });

  test('are sent gzipped to a client that accepts it, and decompress to the same bytes', async () => {
    for (const asset of assets) {
      const plain = new Uint8Array(await (await t.fetch(asset)).arrayBuffer());
      const response = await t.fetch(asset, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      expect(response.headers.get('content-encoding')).toBe('gzip');
      expect(response.headers.get('vary')?.toLowerCase()).toContain('accept-encoding');
      const gzipped = new Uint8Array(await response.arrayBuffer());
      expect(gzipped.length).toBeLessThan(plain.length / 2);
      expect(Bun.gunzipSync(gzipped)).toEqual(plain);
    }
  });

  test('the script is minified and bundles its libraries (no bare imports left)', async () => {
    const js = await (await t.fetch(assets.find((a) => a.endsWith('.js'))!)).text();
    expect(js).not.toMatch(/from\s*["'](preact|uplot|openapi-fetch)/);
    expect(js.split('\n').length).toBeLessThan(50);
  });

  test('the chunks the script loads later (the charts) are served too', async () => {
    const js = await (await t.fetch(assets.find((a) => a.endsWith('.js'))!)).text();
    const chunks = [...new Set([...js.matchAll(/["'.\/]*\/?(chunk-[0-9a-z]{8}\.js)["']/g)].map((m) => m[1]!))];
    expect(chunks.length).toBeGreaterThan(0);
    for (const chunk of chunks) {
      const response = await t.fetch(`/app/assets/${chunk}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    }
  });

  test('an unknown asset is a 404 problem, not the page', async () => {
    await expectProblem(await t.fetch('/app/assets/nope-12345678.js'), 404);
    await expectProblem(await t.fetch('/app/assets/..%2F..%2Fpackage.json'), 404);
  });
});

describe('other methods', () => {
  test('writing to a dashboard path is a 404 problem', async () => {
    await expectProblem(await t.fetch('/app', { method: 'POST' }), 404);
    await expectProblem(await t.fetch('/app/chats', { method: 'DELETE' }), 404);
  });
});

describe('where the bundle comes from', () => {
  const log = createLogger('silent');
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatlogger-web-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const serve = (bundle: Promise<WebBundle>) => {
    bundle.catch(() => {});
    const app = new Elysia().use(problems(log)).use(webRoutes(log, bundle));
    return (path: string) => app.handle(new Request(`http://web.test${path}`));
  };

  test('a prebuilt dist directory is served as it is', async () => {
    const dist = tempDir();
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><script type="module" src="/app/assets/main-abcd1234.js"></script>');
    writeFileSync(join(dist, 'assets', 'main-abcd1234.js'), 'console.log("prebuilt")');
    const bundle = await loadWebBundle({ log, dist, source: null });
    expect(bundle.source).toBe('dist');
    const get = serve(Promise.resolve(bundle));
    expect(await (await get('/app/chats')).text()).toContain('main-abcd1234.js');
    const asset = await get('/app/assets/main-abcd1234.js');
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await asset.text()).toBe('console.log("prebuilt")');
  });

  test('without dist and without sources, /app answers 503 problem+json (and / still leads there)', async () => {
    const missing = loadWebBundle({ log, dist: join(tempDir(), 'nothing'), source: null });
    await expect(missing).rejects.toThrow('no dashboard bundle');
    const get = serve(missing);
    for (const path of ['/app', '/app/chats', '/app/assets/main-abcd1234.js']) await expectProblem(await get(path), 503);
    expect((await get('/')).status).toBe(302);
  });

  test('sources that do not build: the error is logged and /app answers 503', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./missing.tsx"></script>');
    const broken = loadWebBundle({ log, dist: join(dir, 'no-dist'), source: join(dir, 'index.html') });
    await expect(broken).rejects.toBeDefined();
    await expectProblem(await serve(broken)('/app'), 503);
  });
});
