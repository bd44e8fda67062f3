import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { createLogger } from '../src/logger.ts';
import { ensureAdmin } from '../src/modules/users/bootstrap.ts';

/** What every bench shares: a throw-away database on a PostgreSQL server, logging, a table. */

export const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

export async function adminQuery(sql: string): Promise<void> {
  const admin = await openDatabase({ databaseUrl: SERVER_URL, dataDir: 'memory://', databasePoolSize: 1 });
  try {
    await admin.fork().execute(sql);
  } finally {
    await admin.close();
  }
}

/** The URL of database `name` on the bench's server. */
export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A Markdown table; columns from `rightFrom` on are right-aligned (numbers). */
export function markdownTable(header: string[], rows: string[][], rightFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(row)].join('\n');
}

/** The HTTP app on a bench database, driven through `app.handle` (no logging). */
export function benchApp(db: Database, url: string) {
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'bench-secret-that-is-at-least-32-characters-long',
    DATA_DIR: join(tmpdir(), 'chatlogger-bench-unused'),
    DATABASE_URL: url,
    LOG_LEVEL: 'silent',
  });
  return createApp({ config, db, log: createLogger('silent') });
}

const PASSWORD = 'bench-password-1';

/** Organizations and an admin of A made through the API, as the dashboard would. */
export async function benchTenants(app: ReturnType<typeof benchApp>, db: Database) {
  const call = async (method: string, path: string, body: unknown, token?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await app.handle(new Request(`http://bench.local${path}`, { method, headers, body: JSON.stringify(body) }));
    if (response.status >= 300) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const login = async (email: string) => String((await call('POST', '/auth/login', { email, password: PASSWORD, issueToken: true })).token);
  await ensureAdmin(db.fork(), 'root@bench.local', PASSWORD);
  const root = await login('root@bench.local');
  const orgA = String((await call('POST', '/orgs', { name: 'Bench A', slug: 'bench-a' }, root)).id);
  const orgB = String((await call('POST', '/orgs', { name: 'Bench B', slug: 'bench-b' }, root)).id);
  await call('POST', '/orgs/bench-a/users', { email: 'admin@bench-a.local', password: PASSWORD, role: 'admin' }, root);
  await call('POST', '/orgs/bench-b/users', { email: 'admin@bench-b.local', password: PASSWORD, role: 'admin' }, root);
  return { orgA, orgB, token: await login('admin@bench-a.local'), tokenB: await login('admin@bench-b.local') };
}
