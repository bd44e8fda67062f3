/**
 * The README's quick start, run as a reader would: a real server process started with the
 * README's ADMIN_EMAIL/ADMIN_PASSWORD, and each curl command of "A first conversation, with curl"
 * run by the real curl binary in a shell, in order, in an empty directory (for the cookie jars).
 * `B=...` points at the test's server; a line like `KEY=clk_...   # the "key" field of the answer`
 * takes that field from the previous answer, as a person would copy it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, PROJECT_ROOT, startServer, stopProcess, type RunningServer } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const CURL = Bun.which('curl');
if (!CURL) console.log('readme.test.ts: skipped, no curl binary on PATH');

const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
const workDir = mkdtempSync(join(tmpdir(), 'chatlogger-readme-'));
let server: RunningServer;

/** The first ```sh block after the heading that starts with `heading`. */
function shellBlock(heading: string): string {
  const start = readme.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const match = readme.slice(start).match(/```sh\n([\s\S]*?)```/);
  if (!match) throw new Error(`no sh block under "## ${heading}"`);
  return match[1]!;
}

/** Logical lines: continuations joined, comments and blank lines dropped (a trailing comment is kept apart). */
function commands(block: string): { line: string; comment?: string }[] {
  const joined = block.replace(/\\\n\s*/g, ' ');
  const result: { line: string; comment?: string }[] = [];
  for (const raw of joined.split('\n')) {
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const hash = trimmed.search(/\s#\s/);
    result.push(hash < 0 ? { line: trimmed } : { line: trimmed.slice(0, hash).trim(), comment: trimmed.slice(hash).replace(/^\s*#\s*/, '') });
  }
  return result;
}

/** ADMIN_EMAIL and ADMIN_PASSWORD exactly as the quick start sets them. */
function quickStartAdmin(): { email: string; password: string } {
  const block = shellBlock('Quick start');
  const email = block.match(/ADMIN_EMAIL=(\S+)/)?.[1];
  const password = block.match(/ADMIN_PASSWORD=(\S+)/)?.[1];
  if (!email || !password) throw new Error('the quick start sets no ADMIN_EMAIL/ADMIN_PASSWORD');
  return { email, password };
}

beforeAll(async () => {
  if (!CURL) return;
  const admin = quickStartAdmin();
  const databaseUrl = testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined;
  server = await startServer(
    childEnv({ HOST: '127.0.0.1', DATA_DIR: join(workDir, 'data'), DATABASE_URL: databaseUrl, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, LOG_LEVEL: 'info', RETENTION_ENABLED: 'false' }),
    { timeoutMs: 90_000 },
  );
}, 120_000);

afterAll(async () => {
  if (server) await stopProcess(server);
  await killAll();
  rmSync(workDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
}

/** Runs one command line of the README in bash, adding only where curl writes the answer and its status. */
async function curl(line: string, vars: Record<string, string>): Promise<Answer> {
  const bodyFile = join(workDir, 'answer.json');
  const proc = Bun.spawn(['bash', '-c', `${line} -o ${JSON.stringify(bodyFile)} -w '%{http_code}'`], {
    cwd: workDir,
    env: { PATH: process.env.PATH ?? '', HOME: workDir, ...vars },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`"${line}" exited ${code}: ${stderr}`);
  const text = await Bun.file(bodyFile).text();
  rmSync(bodyFile, { force: true });
  return { status: Number(stdout.trim()), body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe.skipIf(!CURL)('README', () => {
  test('"A first conversation, with curl" runs as written, every call answering as it should', async () => {
    const steps = commands(shellBlock('A first conversation, with curl'));
    // What each call of the walk-through must answer, in order.
    const expected = [
      ['POST', '/auth/login', 200],
      ['POST', '/orgs', 201],
      ['POST', '/orgs/acme/users', 201],
      ['POST', '/auth/login', 200],
      ['POST', '/orgs/me/apikeys', 201],
      ['POST', '/api/v1/orgs/acme/chats', 201],
      ['POST', '/api/v1/orgs/acme/chats/$CHAT/messages', 201],
      ['POST', '/api/v1/orgs/acme/chats/$CHAT/messages/batch', 201],
      ['GET', '/users/me', 200],
    ] as const;
    const vars: Record<string, string> = {};
    let previous: Answer | undefined;
    const calls: [string, string, number][] = [];

    for (const { line, comment } of steps) {
      const assignment = line.match(/^([A-Z_]+)=(\S*)$/);
      if (assignment) {
        const [, name, value] = assignment;
        if (name === 'B') {
          expect(value).toBe('http://localhost:8080');
          vars.B = `http://127.0.0.1:${server.port}`;
          continue;
        }
        const field = comment?.match(/the "(\w+)" field of the answer/)?.[1];
        if (!field) throw new Error(`"${line}" says neither a value nor which field of the answer to copy`);
        const copied = previous?.body?.[field];
        if (typeof copied !== 'string') throw new Error(`the answer before "${line}" has no string "${field}": ${JSON.stringify(previous?.body)}`);
        vars[name!] = copied;
        continue;
      }
      if (!line.startsWith('curl ')) throw new Error(`unexpected line in the walk-through: ${line}`);
      previous = await curl(line, vars);
      const method = line.match(/-X\s+(\w+)/)?.[1] ?? 'GET';
      const path = line.match(/\$B(\S+)/)?.[1] ?? '?';
      calls.push([method, path, previous.status]);
      if (previous.status >= 400) throw new Error(`${method} ${path} answered ${previous.status}: ${JSON.stringify(previous.body)}`);
    }

    expect(calls).toEqual(expected.map(([method, path, status]) => [method, path, status]));
    // The key and chat id were real values from the answers, and the last call shows the admin.
    expect(vars.KEY).toMatch(/^clk_/);
    expect(vars.CHAT).toMatch(/^[0-9a-f-]{36}$/);
    expect(previous!.body).toMatchObject({ email: 'owner@acme.test', role: 'admin' });
  }, 60_000);

  test('the walk-through stored what it says: a chat with its three messages', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const { email, password } = quickStartAdmin();
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password, issueToken: true }) });
    const { token } = (await login.json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };
    const chats = (await (await fetch(`${base}/orgs/acme/chats`, { headers: auth })).json()) as { items: { id: string; title: string; messageCount: number; tags: string[] }[] };
    expect(chats.items.map((c) => [c.title, c.messageCount, c.tags])).toEqual([['Support Chat', 3, ['support', 'billing']]]);
    const messages = (await (await fetch(`${base}/orgs/acme/chats/${chats.items[0]!.id}/messages`, { headers: auth })).json()) as { items: { role: string; content: string }[] };
    expect(messages.items.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });
});
