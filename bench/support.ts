import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase, type Database } from '../src/db/orm.ts';
import { createLogger } from '../src/logger.ts';

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
