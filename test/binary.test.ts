/**
 * The single binary: `bun run build:binary`'s exact command (to a temporary file), started on the
 * embedded database in an empty data directory, driven through a first conversation, then
 * stopped with SIGTERM. SKIP_BINARY_TEST=1 skips it (the build takes a few seconds and ~100 MB).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, killAll, PROJECT_ROOT, startServer, stopProcess, type RunningServer } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const SKIP = process.env.SKIP_BINARY_TEST === '1';
if (SKIP) console.log('binary.test.ts: skipped (SKIP_BINARY_TEST=1)');

const ADMIN_EMAIL = 'root@binary.test';
const ADMIN_PASSWORD = 'binary-admin-password';
const workDir = mkdtempSync(join(tmpdir(), 'chatlogger-binary-'));
const binary = join(workDir, 'chatlogger');
let server: RunningServer;
let metricsPort: number;

/** `bun run build:binary` as package.json has it, writing to `outfile` instead. */
async function buildCommand(outfile: string): Promise<string[]> {
  const pkg = (await Bun.file(join(PROJECT_ROOT, 'package.json')).json()) as { scripts: Record<string, string> };
  const script = pkg.scripts['build:binary'];
  if (!script) throw new Error('package.json has no build:binary script');
  const argv = script.split(/\s+/);
  const out = argv.indexOf('--outfile');
  if (argv[0] !== 'bun' || out < 0) throw new Error(`unexpected build:binary script: ${script}`);
  argv[out + 1] = outfile;
  return [process.execPath, ...argv.slice(1)];
}

async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('') });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

beforeAll(async () => {
  if (SKIP) return;
  const build = Bun.spawn(await buildCommand(binary), { cwd: PROJECT_ROOT, stdout: 'pipe', stderr: 'pipe' });
  const code = await build.exited;
  if (code !== 0) throw new Error(`build failed (${code}):\n${await new Response(build.stderr).text()}`);
  metricsPort = await freePort();
  server = await startServer(
    childEnv({
      HOST: '127.0.0.1',
      DATA_DIR: join(workDir, 'data'),
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'info',
      METRICS_PORT: String(metricsPort),
      RETENTION_ENABLED: 'false',
    }),
    { command: [binary], timeoutMs: 90_000 },
  );
}, 180_000);

afterAll(async () => {
  await killAll();
  rmSync(workDir, { recursive: true, force: true });
});

describe.skipIf(SKIP)('compiled binary on the embedded database', () => {
  const call = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { ...init, headers, body: init.json === undefined ? init.body : JSON.stringify(init.json) });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined, headers: response.headers };
  };

  test('is one self-contained executable', () => {
    const size = statSync(binary).size;
    // Bun's runtime, the code, the contract, and PGlite's ~17 MB of WebAssembly and data.
    expect(size).toBeGreaterThan(60_000_000);
    expect(statSync(binary).mode & 0o111).not.toBe(0);
  });

  test('becomes ready on a new data directory, with the version compiled in', async () => {
    const ready = await call('/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', database: 'pglite' });
    const version = await call('/version');
    expect(version.body!.version).toBe((await Bun.file(join(PROJECT_ROOT, 'package.json')).json()).version);
    // Files embedded with the binary are served: the contract and Swagger UI's assets.
    expect((await call('/openapi.json')).status).toBe(200);
    const css = await fetch(`http://127.0.0.1:${server.port}/swagger/assets/swagger-ui.css`);
    expect(css.status).toBe(200);
    expect((await css.text()).length).toBeGreaterThan(10_000);
  });

  test('logs in, creates an organization and an API key, and ingests a chat', async () => {
    const login = await call('/auth/login', { method: 'POST', json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD, issueToken: true } });
    expect(login.status).toBe(200);
    const auth = { authorization: `Bearer ${login.body!.token}` };
    expect((await call('/orgs', { method: 'POST', headers: auth, json: { name: 'Binary Inc.', slug: 'binary' } })).status).toBe(201);
    const key = await call('/orgs/binary/apikeys', { method: 'POST', headers: auth, json: { label: 'binary test' } });
    expect(key.status).toBe(201);
    const apiKey = { 'x-organization-api-key': key.body!.key as string };

    const chat = await call('/api/v1/orgs/binary/chats', { method: 'POST', headers: apiKey, json: { title: 'From the binary' } });
    expect(chat.status).toBe(201);
    const message = await call(`/api/v1/orgs/binary/chats/${chat.body!.id}/messages`, { method: 'POST', headers: apiKey, json: { role: 'user', content: 'hello' } });
    expect(message.status).toBe(201);
    const wrongKey = await call('/api/v1/orgs/binary/chats', { method: 'POST', headers: { 'x-organization-api-key': `clk_${'x'.repeat(40)}` }, json: {} });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.headers.get('content-type')).toStartWith('application/problem+json');

    const transcript = await call(`/orgs/binary/chats/${chat.body!.id}/messages`, { headers: auth });
    expect(transcript.status).toBe(200);
    expect(transcript.body!.items.map((m: { content: string }) => m.content)).toEqual(['hello']);
  });

  test('serves /metrics on METRICS_PORT only', async () => {
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/chatlogger_ingest_chats_created_total 1\b/);
    expect(text).toMatch(/chatlogger_db_pool_connections 1\b/);
    expect((await call('/metrics')).status).toBe(404);
  });

  test('stops on SIGTERM with exit code 0', async () => {
    const { exitCode } = await stopProcess(server, 'SIGTERM', 15_000);
    expect(exitCode).toBe(0);
    expect(server.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
  });
});
