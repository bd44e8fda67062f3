import { CompiledQuery } from 'kysely';
import type { Em } from './orm.ts';

/**
 * Runs SQL with bind parameters ($1, $2, ...) through MikroORM's Kysely access, on the entity
 * manager's connection (its transaction, inside one). `em.execute` inlines every parameter as
 * an escaped literal, which on the ingestion path means escaping and re-parsing whole JSON
 * documents for every group.
 */
export async function query<T>(em: Em, sql: string, params: readonly unknown[]): Promise<T[]> {
  const result = await em.getKysely().executeQuery<T>(CompiledQuery.raw(sql, [...params]));
  return result.rows;
}
