import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { openDatabase, type Database } from './orm.ts';

/** Thrown by `fork()` until the database is migrated and bootstrapped (answered as a 503). */
export class DatabaseNotReady extends Error {
  constructor() {
    super('The database is not ready yet; retry shortly.');
  }
}

/** What the service needs in the database before it serves (the bootstrap superadmin). */
export type Bootstrap = (db: Database) => Promise<void>;

export interface StartedDatabase {
  /**
   * The database the service uses. Until it has been migrated and bootstrapped, `fork()`
   * throws DatabaseNotReady at once, so requests fail fast instead of queueing on an absent server.
   */
  db: Database;
  /** Resolves once the database is migrated and bootstrapped. */
  ready: Promise<void>;
  /** Gives up waiting for the database (shutdown). */
  stop(): void;
}

const FIRST_RETRY_MS = 500;

/**
 * Opens the database and gets it ready: migrations (MIGRATE_ON_START), then the bootstrap
 * superadmin. The embedded database either opens or the start fails. A PostgreSQL server may be
 * down or still starting when the service starts: the service starts anyway and keeps trying
 * in the background, with exponential back-off up to DATABASE_RETRY_MAX_SECONDS, and becomes
 * ready by itself when the server appears.
 */
export async function startDatabase(config: Config, log: Logger, bootstrap: Bootstrap): Promise<StartedDatabase> {
  const db = await openDatabase(config, { statementTimeoutSeconds: config.databaseStatementTimeoutSeconds });
  log.info({ database: db.kind, dataDir: db.kind === 'pglite' ? config.dataDir : undefined }, 'database opened');
  const prepare = () => prepareDatabase(db, config, log, bootstrap);

  if (db.kind === 'pglite') {
    await prepare();
    return { db, ready: Promise.resolve(), stop() {} };
  }
  try {
    await prepare();
    return { db, ready: Promise.resolve(), stop() {} };
  } catch (error) {
    log.error({ err: error }, 'database not ready; the service starts anyway and keeps trying');
  }

  let prepared = false;
  const stopped = new AbortController();
  const ready = (async () => {
    for (let attempt = 1; ; attempt++) {
      const delay = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), config.databaseRetryMaxSeconds * 1000);
      // Jitter, so that instances restarted together do not retry in step.
      await sleep(delay * (0.8 + Math.random() * 0.4), stopped.signal);
      if (stopped.signal.aborted) return;
      try {
        await prepare();
        prepared = true;
        log.info({ attempt }, 'database ready');
        return;
      } catch (error) {
        log.warn({ err: error, attempt }, 'database not ready yet');
      }
    }
  })();
  const gated: Database = {
    ...db,
    fork() {
      if (!prepared) throw new DatabaseNotReady();
      return db.fork();
    },
  };
  return { db: gated, ready, stop: () => stopped.abort() };
}

/**
 * Migrations run on a connection of their own without the statement timeout of the request
 * pool: building an index on a large table may take minutes.
 */
async function prepareDatabase(db: Database, config: Config, log: Logger, bootstrap: Bootstrap): Promise<void> {
  if (config.migrateOnStart) {
    const applied = db.kind === 'pglite' ? await db.migrate() : await migrateOnOwnConnection(config);
    if (applied.length) log.info({ applied }, 'migrations applied');
  }
  await bootstrap(db);
}

async function migrateOnOwnConnection(config: Config): Promise<string[]> {
  const migrator = await openDatabase({ ...config, databasePoolSize: 1 });
  try {
    return await migrator.migrate();
  } finally {
    await migrator.close();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
