/**
 * The typed client package (clients/typescript): its generated types match the server's, and the
 * example of its README, run as a program against a real server on 127.0.0.1, stores the
 * conversation it claims to.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChatLoggerClient } from '../clients/typescript/src/index.ts';
import { createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';
import { PROJECT_ROOT } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const PACKAGE = join(PROJECT_ROOT, 'clients', 'typescript');
const workDir = mkdtempSync(join(tmpdir(), 'chatlogger-client-'));
let t: TestApp;
let tenant: Tenant;
let server: ReturnType<typeof Bun.serve>;
let baseUrl: string;

beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
  server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (request) => t.app.handle(request) });
  baseUrl = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server.stop(true);
  rmSync(workDir, { recursive: true, force: true });
});

/** The first ```ts block after the README heading `heading`. */
function exampleUnder(readme: string, heading: string): string {
  const section = readme.slice(readme.indexOf(`## ${heading}`));
  const match = section.match(/```ts\n([\s\S]*?)```/);
  if (!match) throw new Error(`no ts code block under "## ${heading}"`);
  return match[1]!;
}

/**
 * Runs the README's example as a program, as a user would after `npm install @chatlogger/client`:
 * only the package name is pointed at the package's source, and its organization at the test's.
 */
async function runExample(apiKey: string) {
  const readme = await Bun.file(join(PACKAGE, 'README.md')).text();
  const code = exampleUnder(readme, 'Log a conversation');
  expect(code).toContain(`from '@chatlogger/client'`);
  expect(code).toContain(`const slug = 'acme';`);
  const program = code.replace(`'@chatlogger/client'`, JSON.stringify(join(PACKAGE, 'src', 'index.ts'))).replace(`const slug = 'acme';`, `const slug = ${JSON.stringify(tenant.slug)};`);
  const file = join(workDir, `example-${crypto.randomUUID()}.ts`);
  writeFileSync(file, program);
  const proc = Bun.spawn([process.execPath, file], {
    env: { PATH: process.env.PATH ?? '', CHATLOGGER_URL: baseUrl, CHATLOGGER_API_KEY: apiKey },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [exitCode, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { exitCode, stdout, stderr, lines: code.split('\n').filter((line) => line.trim() !== '').length };
}

describe('@chatlogger/client', () => {
  test('its generated types are the server\'s (bun run generate:types writes both)', async () => {
    const copy = await Bun.file(join(PACKAGE, 'src', 'openapi.ts')).text();
    const server = await Bun.file(join(PROJECT_ROOT, 'src', 'generated', 'openapi.ts')).text();
    expect(copy === server).toBe(true);
    const pkg = (await Bun.file(join(PACKAGE, 'package.json')).json()) as { name: string; dependencies: Record<string, string> };
    const root = (await Bun.file(join(PROJECT_ROOT, 'package.json')).json()) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.name).toBe('@chatlogger/client');
    // The package is tested with the openapi-fetch the repository installs.
    expect(pkg.dependencies['openapi-fetch']).toBe(root.dependencies['openapi-fetch'] ?? root.devDependencies['openapi-fetch']);
  });

  test('the README example logs a conversation in under ten lines, and it is stored', async () => {
    const run = await runExample(tenant.apiKey);
    expect(run.lines).toBeLessThan(10);
    if (run.exitCode !== 0) throw new Error(`the example failed (${run.exitCode}):\n${run.stderr}`);

    const admin = t.client({ token: tenant.adminToken });
    const chats = await admin.GET('/orgs/{org}/chats', { params: { path: { org: 'me' }, query: { externalUserId: 'customer-42' } } });
    expect(chats.data!.items.length).toBe(1);
    const chat = chats.data!.items[0]!;
    expect(chat).toMatchObject({ title: 'Support chat', externalUserId: 'customer-42', messageCount: 2 });
    const messages = await admin.GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org: 'me', chatId: chat.id } } });
    expect(messages.data!.items.map((m) => [m.role, m.content, m.model ?? null])).toEqual([
      ['user', 'Where is my invoice?', null],
      ['assistant', 'In Billing > Invoices.', 'gpt-4o'],
    ]);
  });

  test('with a wrong key the example stops with the server\'s reason, and nothing is stored', async () => {
    const before = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats', { params: { path: { org: 'me' } } });
    const run = await runExample(`clk_${'x'.repeat(40)}`);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toContain('ChatLogger refused the chat: A valid API key');
    const after = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats', { params: { path: { org: 'me' } } });
    expect(after.data!.items.length).toBe(before.data!.items.length);
  });

  test('sends the key, a session token and extra headers; errors come back as problems, not exceptions', async () => {
    const seen: Headers[] = [];
    const viaApp = (request: Request) => {
      seen.push(request.headers);
      return t.app.handle(request);
    };
    const client = createChatLoggerClient({ baseUrl: `${baseUrl}/`, token: tenant.adminToken, fetch: viaApp, headers: { 'x-request-id': 'client-test-1' } });
    const me = await client.GET('/users/me');
    expect(me.data!.email).toBe(tenant.adminEmail);
    expect(me.response.headers.get('x-request-id')).toBe('client-test-1');
    expect(seen[0]!.get('authorization')).toBe(`Bearer ${tenant.adminToken}`);

    const anonymous = createChatLoggerClient({ baseUrl, fetch: viaApp });
    const refused = await anonymous.GET('/users/me');
    expect(refused.data).toBeUndefined();
    expect(refused.response.status).toBe(401);
    expect(refused.error).toMatchObject({ type: '/problems/unauthorized', status: 401 });

    const keyed = createChatLoggerClient({ baseUrl, apiKey: tenant.apiKey });
    const invalid = await keyed.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: { title: 'x'.repeat(501) } });
    expect(invalid.response.status).toBe(422);
    expect(invalid.error!.errors![0]!.pointer).toBe('/body/title');
  });
});
