import type { Em } from './orm.ts';
import { query } from './sql.ts';

/**
 * Where every table lives on Citus. Small global tables are reference tables (a copy on every
 * node); every table that grows with usage is distributed by `organization_id` and co-located with
 * `chats`, so one organization's rows are all on one node. Listed in the order they are created:
 * a reference table before the tables that reference it.
 *
 * Every table of the schema must appear here (a test checks it), so a new table is a decision.
 */
export const REFERENCE_TABLES = ['organizations', 'users', 'sessions', 'api_keys'] as const;
export const DISTRIBUTED_TABLES = [
  'chats',
  'messages',
  'exports',
  'audit_events',
  'analytics_slots',
  'analytics_tag_days',
  'analytics_model_days',
  'analytics_latency_days',
  'analytics_latency_months',
  'analytics_latency_day_bins',
  'analytics_latency_month_bins',
] as const;
/** Tables that stay on the coordinator alone. */
export const LOCAL_TABLES = ['mikro_orm_migrations'] as const;

/**
 * The write functions of one organization (see Migration20261202000000_tenant_write_functions).
 * On Citus each call runs on the node holding its first argument's organization, with its
 * statements local to that node; also inside a transaction (force_delegation), where the
 * transaction's other statements must then be about the same organization.
 */
export const DELEGATED_FUNCTIONS = [
  'chatlogger_create_chats(uuid, jsonb)',
  'chatlogger_append_messages(uuid, jsonb)',
  'chatlogger_delete_chat(uuid, uuid)',
  'chatlogger_erase_end_user(uuid, text)',
  'chatlogger_purge_chats(uuid, timestamptz, integer)',
  'chatlogger_snapshot(uuid)',
  'analytics_retag_chat(uuid, uuid, text[], text[])',
] as const;

const COLOCATE_WITH = 'chats';

/** Whether the database is a Citus coordinator; throws on a Citus worker. */
export async function isCitusCoordinator(em: Em): Promise<boolean> {
  const [row] = await query<{ citus: boolean }>(em, `select exists (select 1 from pg_extension where extname = 'citus') as citus`, []);
  if (!row?.citus) return false;
  const [node] = await query<{ coordinator: boolean }>(em, `select citus_is_coordinator() as coordinator`, []);
  if (!node?.coordinator) throw new Error('This database is a Citus worker: point DATABASE_URL at the coordinator.');
  return true;
}

/**
 * Distributes the schema on a Citus coordinator (after the migrations); on PostgreSQL and PGlite
 * it does nothing. Idempotent: only what is not distributed yet is done, in one transaction, so a
 * failure leaves the schema as it was. Returns what it did.
 */
export async function distribute(em: Em): Promise<string[]> {
  if (!(await isCitusCoordinator(em))) return [];
  return em.transactional(async (tx) => {
    const done: string[] = [];
    const kinds = new Map(
      (await query<{ table_name: string; kind: string }>(tx, `select table_name::text, citus_table_type as kind from citus_tables`, [])).map((row) => [row.table_name, row.kind]),
    );
    for (const table of REFERENCE_TABLES) {
      const kind = kinds.get(table);
      if (kind === 'reference') continue;
      if (kind === 'distributed') throw new Error(`${table} is distributed; it must be a reference table.`);
      await query(tx, `select create_reference_table($1::regclass)`, [table]);
      done.push(`reference table ${table}`);
    }

    const pending = DISTRIBUTED_TABLES.filter((table) => kinds.get(table) !== 'distributed');
    if (pending.length) {
      // Citus refuses to distribute a table that a not yet distributed table references (messages
      // -> chats): those foreign keys are dropped and made again once both sides are distributed.
      const keys = await query<{ table_name: string; name: string; definition: string }>(
        tx,
        `select c.conrelid::regclass::text as table_name, c.conname as name, pg_get_constraintdef(c.oid) as definition
           from pg_constraint c
          where c.contype = 'f' and c.conrelid::regclass::text = any($1) and c.confrelid::regclass::text = any($1)`,
        [pending],
      );
      for (const key of keys) await query(tx, `alter table ${key.table_name} drop constraint ${key.name}`, []);
      for (const table of pending) {
        if (table === COLOCATE_WITH) await query(tx, `select create_distributed_table($1::regclass, 'organization_id')`, [table]);
        else await query(tx, `select create_distributed_table($1::regclass, 'organization_id', colocate_with => $2)`, [table, COLOCATE_WITH]);
        done.push(`distributed table ${table}`);
      }
      for (const key of keys) await query(tx, `alter table ${key.table_name} add constraint ${key.name} ${key.definition}`, []);
    }

    const delegated = new Set(
      (
        await query<{ signature: string }>(
          tx,
          `select p.oid::regprocedure::text as signature
             from pg_dist_object d join pg_proc p on p.oid = d.objid
            where d.classid = 'pg_proc'::regclass and d.distribution_argument_index is not null and d.force_delegation`,
          [],
        )
      ).map((row) => row.signature),
    );
    for (const fn of DELEGATED_FUNCTIONS) {
      const [{ signature } = { signature: '' }] = await query<{ signature: string }>(tx, `select $1::regprocedure::text as signature`, [fn]);
      if (delegated.has(signature)) continue;
      await query(tx, `select create_distributed_function($1::regprocedure, 'org', colocate_with := $2, force_delegation := true)`, [fn, COLOCATE_WITH]);
      done.push(`delegated function ${fn}`);
    }
    // Functions the delegated ones call must exist on every node. Citus copies a function to the
    // workers when it is created after the extension; these are the ones created before it.
    const local = await query<{ signature: string }>(
      tx,
      `select p.oid::regprocedure::text as signature
         from pg_proc p
        where p.pronamespace = 'public'::regnamespace and (p.proname like 'analytics\\_%' or p.proname like 'chatlogger\\_%')
          and not exists (select 1 from pg_dist_object d where d.classid = 'pg_proc'::regclass and d.objid = p.oid)`,
      [],
    );
    for (const { signature } of local) {
      await query(tx, `select create_distributed_function($1::regprocedure)`, [signature]);
      done.push(`function ${signature} on every node`);
    }
    return done;
  });
}
