import { CompiledQuery, type Kysely } from 'kysely';
import { PostgreSqlConnection } from '@mikro-orm/postgresql';
import type { Em } from './orm.ts';

/** Where a statement runs: an entity manager (its transaction, inside one), or a connection held for a while. */
export type Runner = Em | Kysely<unknown>;

/**
 * The one way to run SQL of our own: bind parameters ($1, $2, ...) through MikroORM's Kysely
 * access, on the runner's connection. (`em.execute` would inline every parameter as an escaped
 * literal: on the ingestion path, escaping and re-parsing whole JSON documents.)
 *
 * With `prepared`, an autocommit statement on the PostgreSQL pool becomes a named prepared
 * statement: each connection parses and plans it once, not on every call (for the ingestion
 * calls, planning was about a fifth of their time). Inside a transaction and on the embedded
 * database it runs as any other statement.
 */
export async function query<T = Record<string, unknown>>(runner: Runner, sql: string, params: readonly unknown[], prepared?: string): Promise<T[]> {
  if ('getKysely' in runner) {
    const connection = runner.getConnection();
    if (prepared && !runner.isInTransaction() && connection instanceof PostgreSqlConnection) {
      const pool = await connection.getNativeClient();
      return (await pool.query({ name: prepared, text: sql, values: [...params] })).rows as T[];
    }
    return (await runner.getKysely().executeQuery<T>(CompiledQuery.raw(sql, [...params]))).rows;
  }
  return (await runner.executeQuery<T>(CompiledQuery.raw(sql, [...params]))).rows;
}
