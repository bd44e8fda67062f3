import { openDatabase, type Database } from '../../src/db/orm.ts';

/**
 * The database of a test run: embedded PGlite in memory by default, or a fresh database on the
 * PostgreSQL server named by TEST_DATABASE_URL (created here, dropped when the run ends).
 * Tests share it and stay independent by working in organizations of their own.
 */
const serverUrl = process.env.TEST_DATABASE_URL;
let shared: Promise<Database> | undefined;
let createdDatabase: string | undefined;

export const testDatabaseKind = serverUrl ? 'postgresql' : 'pglite';

/** A database URL on the test server for a new, empty database (dropped by `dropTestDatabases`). */
const created: string[] = [];
export async function createServerDatabase(): Promise<string> {
  if (!serverUrl) throw new Error('TEST_DATABASE_URL is not set');
  const name = `chatlogger_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await adminQuery(`create database ${name}`);
  created.push(name);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function adminQuery(sql: string) {
  const admin = await openDatabase({ databaseUrl: serverUrl, dataDir: 'memory://', databasePoolSize: 1 });
  try {
    await admin.fork().execute(sql);
  } finally {
    await admin.close();
  }
}

export function testDatabase(): Promise<Database> {
  shared ??= (async () => {
    let databaseUrl: string | undefined;
    if (serverUrl) {
      databaseUrl = await createServerDatabase();
      createdDatabase = databaseUrl;
    }
    const db = await openDatabase({ databaseUrl, dataDir: 'memory://', databasePoolSize: 10 });
    await db.migrate();
    return db;
  })();
  return shared;
}

export async function closeTestDatabases(): Promise<void> {
  if (shared) await (await shared).close();
  for (const name of created) await adminQuery(`drop database if exists ${name} with (force)`);
  void createdDatabase;
}
