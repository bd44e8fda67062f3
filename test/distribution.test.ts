import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { query } from '../src/db/sql.ts';
import { DELEGATED_FUNCTIONS, DISTRIBUTED_TABLES, LOCAL_TABLES, REFERENCE_TABLES, distribute } from '../src/db/distribution.ts';
import { onCitus, testDatabase } from './support/database.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const citus = await onCitus();

/** How the schema is laid out on Citus (docs/scaling.md): checked on every database. */
describe('the distribution plan', () => {
  test('names every table of the schema exactly once, so that a new table is a decision', async () => {
    const db = await testDatabase();
    const tables = await query<{ name: string }>(
      db.fork(),
      `select table_name::text as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
      [],
    );
    const planned = [...REFERENCE_TABLES, ...DISTRIBUTED_TABLES, ...LOCAL_TABLES];
    expect(new Set(planned).size).toBe(planned.length);
    expect(tables.map((t) => t.name)).toEqual([...planned].sort());
  });

  test('every tenant table is keyed by organization_id first, as distribution by organization needs', async () => {
    const db = await testDatabase();
    const keys = await query<{ table_name: string; columns: string[] }>(
      db.fork(),
      `select c.conrelid::regclass::text as table_name, array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i) join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i) as columns
         from pg_constraint c
        where c.contype in ('p', 'u') and c.conrelid::regclass::text = any($1)`,
      [[...DISTRIBUTED_TABLES]],
    );
    expect(new Set(keys.map((k) => k.table_name))).toEqual(new Set(DISTRIBUTED_TABLES));
    for (const key of keys) expect({ table: key.table_name, first: key.columns[0] }).toEqual({ table: key.table_name, first: 'organization_id' });
  });

  test('every function Citus runs on the organization\'s node takes the organization first, as `org`', async () => {
    const db = await testDatabase();
    for (const fn of DELEGATED_FUNCTIONS) {
      const [row] = await query<{ first: string; type: string }>(
        db.fork(),
        `select (p.proargnames)[1] as first, format_type(p.proargtypes[0], null) as type from pg_proc p where p.oid = $1::regprocedure`,
        [fn],
      );
      expect({ fn, ...row }).toEqual({ fn, first: 'org', type: 'uuid' });
    }
  });

  test.skipIf(citus)('does nothing on a database without Citus', async () => {
    const db = await testDatabase();
    expect(await distribute(db.fork())).toEqual([]);
  });
});
