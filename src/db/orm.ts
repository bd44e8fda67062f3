import { join } from 'node:path';
import { existsSync, mkdirSync } from 'node:fs';
import { MikroORM as PostgresORM } from '@mikro-orm/postgresql';
import type { MikroORM, EntityManager, AbstractSqlDriver } from '@mikro-orm/sql';
import { MikroORM as PgliteORM } from '@mikro-orm/pglite';
import { Migrator } from '@mikro-orm/migrations';
import type { Config } from '../config.ts';
import { migrations } from './migrations/index.ts';
import { extensionBundleUrl, PGLITE_EXTENSIONS, PGLITE_FILES } from './pglite-files.ts';
import { postgresDriverOptions } from './pg-timeouts.ts';
import { distribute } from './distribution.ts';
import { Organization } from '../modules/orgs/organization.entity.ts';
import { Session, User } from '../modules/users/user.entity.ts';
import { ApiKey } from '../modules/apikeys/apikey.entity.ts';
import { Export } from '../modules/exports/export.entity.ts';
import { AuditEvent } from '../modules/audit/audit.entity.ts';

export const entities = [Organization, User, Session, ApiKey, Export, AuditEvent];

export type DatabaseKind = 'postgresql' | 'pglite';
export type Orm = MikroORM<AbstractSqlDriver>;
/** Both drivers share the PostgreSQL SQL entity manager API. */
export type Em = EntityManager;

export interface Database {
  orm: Orm;
  kind: DatabaseKind;
  /** A fresh entity manager for one unit of work (one request, one job). */
  fork(): Em;
  migrate(): Promise<string[]>;
  pendingMigrations(): Promise<string[]>;
  close(): Promise<void>;
}

const sharedOptions = {
  entities,
  extensions: [Migrator],
  migrations: { migrationsList: migrations, snapshot: false, transactional: true, allOrNothing: true, silent: true },
  // Every query names its organization explicitly; an implicit global EM would hide a missing fork.
  allowGlobalContext: false,
  debug: false,
};

export interface OpenOptions {
  /**
   * PostgreSQL only: the server cancels longer statements, and the client gives up one second
   * later (a network that went silent). For the connections that serve requests; migrations and
   * the CLI run without it, since building an index on a large table may take minutes.
   */
  statementTimeoutSeconds?: number;
}

/** One factory for both databases: PostgreSQL with DATABASE_URL, embedded PGlite otherwise. */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'databasePoolSize'> & Partial<Pick<Config, 'databaseConnectTimeoutSeconds'>>,
  { statementTimeoutSeconds }: OpenOptions = {},
): Promise<Database> {
  let orm: Orm;
  let kind: DatabaseKind;
  if (config.databaseUrl) {
    kind = 'postgresql';
    orm = (await PostgresORM.init({
      ...sharedOptions,
      clientUrl: config.databaseUrl,
      pool: { min: 0, max: config.databasePoolSize, idleTimeoutMillis: 30_000 },
      driverOptions: postgresDriverOptions(config.databaseConnectTimeoutSeconds ?? 5, statementTimeoutSeconds),
    })) as unknown as Orm;
  } else {
    kind = 'pglite';
    const missing = [...PGLITE_FILES, ...Object.values(PGLITE_EXTENSIONS)].filter((file) => !existsSync(file));
    if (missing.length) throw new Error(`The embedded database's files are missing: ${missing.join(', ')}`);
    const dir = config.dataDir === 'memory://' ? 'memory://' : join(config.dataDir, 'pgdata');
    if (dir !== 'memory://') mkdirSync(dir, { recursive: true });
    orm = (await PgliteORM.init({
      ...sharedOptions,
      dbName: dir,
      // PGlite zero-fills its shared memory at start, so all of it is resident from the first
      // second, while the OS page cache holds the data files anyway: small shared buffers keep
      // the process small without slowing ingestion. One backend needs few connections (the lock
      // table still holds the ~3,500 tables a migration creates in one transaction), and
      // wal_buffers keeps the 1 MB that larger shared buffers would imply.
      driverOptions: {
        postgresqlconf: ['shared_buffers = 4MB', 'wal_buffers = 1MB', 'max_connections = 4'],
        // As set-up functions: MikroORM clones its options, which a URL does not survive.
        extensions: Object.fromEntries(
          Object.entries(PGLITE_EXTENSIONS).map(([name, file]) => [name, { name, setup: async () => ({ bundlePath: await extensionBundleUrl(file) }) }]),
        ),
      },
    })) as unknown as Orm;
  }
  return {
    orm,
    kind,
    fork: () => orm.em.fork() as Em,
    migrate: async () => {
      const applied = (await orm.migrator.up()).map((m) => m.name);
      // On a Citus coordinator, tables and functions are distributed once they exist.
      await distribute(orm.em.fork() as Em);
      return applied;
    },
    pendingMigrations: async () => (await orm.migrator.getPending()).map((m) => m.name),
    close: () => orm.close(true),
  };
}
