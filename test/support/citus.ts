import { openDatabase, type Database } from '../../src/db/orm.ts';
import { query } from '../../src/db/sql.ts';

/**
 * Databases on a Citus cluster for tests and benches: given the URL of a database on a Citus
 * coordinator (whose pg_dist_node lists the cluster), a new database is made a cluster of its
 * own: created on the coordinator and on every worker, with the extension in each and the
 * workers added. The migrations then distribute it as in production.
 */

export interface CitusNode {
  host: string;
  port: number;
  coordinator: boolean;
  shouldHaveShards: boolean;
}

async function withDatabase<T>(url: string, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase({ databaseUrl: url, dataDir: 'memory://', databasePoolSize: 1 });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** `url` with another host, port or database. */
export function urlOf(url: string, database: string, node?: Pick<CitusNode, 'host' | 'port'>): string {
  const result = new URL(url);
  if (node) {
    result.hostname = node.host;
    result.port = String(node.port);
  }
  result.pathname = `/${database}`;
  return result.toString();
}

/** The nodes of the Citus cluster of the database at `url`; none when it is plain PostgreSQL. */
export function citusNodes(url: string): Promise<CitusNode[]> {
  return withDatabase(url, async (db) => {
    const em = db.fork();
    const [row] = await query<{ citus: boolean }>(em, `select exists (select 1 from pg_extension where extname = 'citus') as citus`, []);
    if (!row?.citus) return [];
    const nodes = await query<{ nodename: string; nodeport: number; groupid: number; shouldhaveshards: boolean }>(
      em,
      `select nodename, nodeport, groupid, shouldhaveshards from pg_dist_node where noderole = 'primary' and isactive order by groupid`,
      [],
    );
    if (!nodes.some((node) => Number(node.groupid) === 0)) throw new Error(`${new URL(url).pathname}: a Citus database without its coordinator in pg_dist_node`);
    return nodes.map((node) => ({ host: node.nodename, port: Number(node.nodeport), coordinator: Number(node.groupid) === 0, shouldHaveShards: node.shouldhaveshards }));
  });
}

const databaseOf = (url: string) => new URL(url).pathname.slice(1) || 'postgres';

/** Creates database `name` on every node of `nodes` as a cluster of its own; returns its coordinator URL. */
export async function createCitusDatabase(adminUrl: string, nodes: CitusNode[], name: string): Promise<string> {
  for (const node of nodes) {
    await withDatabase(urlOf(adminUrl, databaseOf(adminUrl), node), (db) => query(db.fork(), `create database ${name}`, []));
    await withDatabase(urlOf(adminUrl, name, node), (db) => query(db.fork(), `create extension citus`, []));
  }
  const coordinator = nodes.find((node) => node.coordinator)!;
  await withDatabase(urlOf(adminUrl, name, coordinator), async (db) => {
    const em = db.fork();
    await query(em, `select citus_set_coordinator_host($1, $2)`, [coordinator.host, coordinator.port]);
    for (const worker of nodes.filter((node) => !node.coordinator)) await query(em, `select citus_add_node($1, $2)`, [worker.host, worker.port]);
    await query(em, `select citus_set_node_property($1, $2, 'shouldhaveshards', $3)`, [coordinator.host, coordinator.port, coordinator.shouldHaveShards]);
  });
  return urlOf(adminUrl, name, coordinator);
}

/** Drops database `name` on every node (on one server when `nodes` is empty). */
export async function dropDatabase(adminUrl: string, nodes: CitusNode[], name: string): Promise<void> {
  await Promise.all(
    (nodes.length ? nodes : [undefined]).map((node) =>
      withDatabase(urlOf(adminUrl, databaseOf(adminUrl), node), (db) => query(db.fork(), `drop database if exists ${name} with (force)`, [])),
    ),
  );
}
