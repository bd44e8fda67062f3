/**
 * Options for tools that expect a MikroORM config file. The application itself opens the
 * database through `openDatabase` (src/db/orm.ts), which picks PostgreSQL or PGlite from the
 * environment; `bun run cli migrate` is the supported way to run migrations.
 */
import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from './src/db/orm.ts';
import { migrations } from './src/db/migrations/index.ts';

export default defineConfig({
  clientUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/chatlogger',
  entities,
  extensions: [Migrator],
  migrations: { migrationsList: migrations, snapshot: false, path: './src/db/migrations' },
});
