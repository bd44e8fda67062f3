import { openDatabase, type Database } from '../../src/db/orm.ts';
import { query } from '../../src/db/sql.ts';
import { citusNodes, createCitusDatabase, dropDatabase, urlOf, type CitusNode } from './citus.ts';

/**
 * The database of a test run: embedded PGlite in memory by default, or a fresh database on the
 * PostgreSQL server named by TEST_DATABASE_URL (created here, dropped when the run ends).
 * Tests share it and stay independent by working in organizations of their own.
 *
 * When TEST_DATABASE_URL names a database on a Citus coordinator, each fresh database is a Citus
 * cluster of its own (see ./citus.ts), distributed by the migrations as in production.
 */
const serverUrl = process.env.TEST_DATABASE_URL;
let shared: Promise<Database> | undefined;

export const testDatabaseKind = serverUrl ? 'postgresql' : 'pglite';

let nodes: Promise<CitusNode[]> | undefined;
const cluster = () => (nodes ??= citusNodes(serverUrl!));

/** Whether the test database is distributed with Citus. */
export async function onCitus(): Promise<boolean> {
  return serverUrl !== undefined && (await cluster()).length > 0;
}

/** A database URL on the test server for a new, empty database (dropped by `closeTestDatabases`). */
const created: string[] = [];
export async function createServerDatabase(): Promise<string> {
  if (!serverUrl) throw new Error('TEST_DATABASE_URL is not set');
  const name = `chatlogger_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  created.push(name);
  if (await onCitus()) return createCitusDatabase(serverUrl, await cluster(), name);
  const admin = await openDatabase({ databaseUrl: serverUrl, dataDir: 'memory://', databasePoolSize: 1 });
  try {
    await query(admin.fork(), `create database ${name}`, []);
  } finally {
    await admin.close();
  }
  return urlOf(serverUrl, name);
}

export function testDatabase(): Promise<Database> {
  shared ??= (async () => {
    const databaseUrl = serverUrl ? await createServerDatabase() : undefined;
    const db = await openDatabase({ databaseUrl, dataDir: 'memory://', databasePoolSize: 10 });
    await db.migrate();
    return db;
  })();
  return shared;
}

export async function closeTestDatabases(): Promise<void> {
  if (shared) await (await shared).close();
  if (!serverUrl) return;
  // Each drop waits for a checkpoint: the databases (and their nodes) are dropped together.
  const nodes = await cluster();
  await Promise.all(created.map((name) => dropDatabase(serverUrl, nodes, name)));
}
