import type { Kysely } from '@mikro-orm/sql';
import type { Database } from '../../db/orm.ts';
import type { Logger } from '../../logger.ts';

/**
 * Retention: chats whose last activity, `greatest(created_at, last_message_at)`, is older than
 * their organization's `settings.retentionDays` are deleted (their messages go by ON DELETE
 * CASCADE), a bounded batch per transaction, until none is left.
 *
 * One purger at a time:
 * - across processes (PostgreSQL): a session-level advisory lock, taken with
 *   `pg_try_advisory_lock` on a connection reserved for the whole run. Every statement of the
 *   run goes through that connection, so the run needs one pooled connection (it works with
 *   `DATABASE_POOL_SIZE=1`) and the lock is released on that same connection at the end (or by
 *   the server when the connection dies). An instance that finds the lock taken skips the run.
 * - within a process (both databases): a run already going on the same `Database` makes the
 *   next call skip. PGlite needs no more: one process at a time owns its data directory, and its
 *   single session would get every advisory lock anyway.
 *
 * Each batch transaction also keeps the run's audit event (`retention.purged`, one per
 * organization per run, written by the first batch that deletes something) up to date, so the
 * audit log matches what was deleted even when a run stops half way.
 */

/** `pg_try_advisory_lock` key of the purger ("chatlog" retention); no other lock uses it. */
export const RETENTION_LOCK_KEY = '7161089426153922305';
export const DEFAULT_RETENTION_BATCH_SIZE = 1000;
const DAY_MS = 86_400_000;

export interface RetentionOptions {
  /** Chats per transaction. */
  batchSize?: number;
  /** Checked between batches: an aborted run stops early (the next run continues). */
  signal?: AbortSignal;
}

export interface OrganizationPurge {
  organizationId: string;
  retentionDays: number;
  /** Chats whose last activity is before this instant were deleted. */
  cutoff: string;
  chats: number;
  messages: number;
}

export type RetentionResult =
  | { skipped: true; reason: 'running' | 'locked' }
  | { skipped: false; chats: number; messages: number; batches: number; organizations: OrganizationPurge[]; aborted: boolean };

type Query = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;

/** How statements reach the database during one run. */
interface Session {
  query: Query;
  transaction<T>(work: (query: Query) => Promise<T>): Promise<T>;
}

const running = new WeakSet<Database>();

/**
 * One retention run at `now`. Skips (`{ skipped: true }`) when another run holds the lock, in
 * this process or another one. Errors are thrown to the caller (the scheduler logs them).
 */
export async function runRetention(db: Database, now: Date = new Date(), options: RetentionOptions = {}): Promise<RetentionResult> {
  if (running.has(db)) return { skipped: true, reason: 'running' };
  running.add(db);
  try {
    const connection = db.fork().getConnection();
    const kysely = connection.getClient() as Kysely<unknown>;
    const queryVia =
      (ctx: Kysely<unknown> | undefined): Query =>
      <T>(sql: string, params: unknown[] = []) =>
        connection.execute(sql, params, 'all', ctx as never) as Promise<T[]>;
    const sessionOf = (client: Kysely<unknown>): Session => ({
      query: queryVia(client),
      transaction: (work) => client.transaction().execute((trx) => work(queryVia(trx))),
    });

    if (db.kind === 'pglite') return await purge(sessionOf(kysely), now, options);

    return await kysely.connection().execute(async (reserved) => {
      const session = sessionOf(reserved);
      const [lock] = await session.query<{ locked: boolean }>(`select pg_try_advisory_lock(?::bigint) as locked`, [RETENTION_LOCK_KEY]);
      if (!lock?.locked) return { skipped: true, reason: 'locked' } as const;
      try {
        return await purge(session, now, options);
      } finally {
        await session.query(`select pg_advisory_unlock(?::bigint)`, [RETENTION_LOCK_KEY]);
      }
    });
  } finally {
    running.delete(db);
  }
}

async function purge(session: Session, now: Date, options: RetentionOptions): Promise<RetentionResult> {
  const batchSize = options.batchSize ?? DEFAULT_RETENTION_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const orgs = await session.query<{ id: string; retention_days: number }>(
    `select id, (settings->>'retentionDays')::int as retention_days
       from organizations
      where jsonb_typeof(settings->'retentionDays') = 'number'
      order by id`,
  );
  const organizations: OrganizationPurge[] = [];
  let batches = 0;
  let aborted = false;
  for (const org of orgs) {
    const retentionDays = Number(org.retention_days);
    if (!Number.isInteger(retentionDays) || retentionDays < 1) continue;
    const cutoff = new Date(now.getTime() - retentionDays * DAY_MS).toISOString();
    const done: OrganizationPurge = { organizationId: org.id, retentionDays, cutoff, chats: 0, messages: 0 };
    let auditId: string | undefined;
    for (;;) {
      if (options.signal?.aborted) {
        aborted = true;
        break;
      }
      const deleted = await session.transaction(async (query) => {
        // Exactly chats_activity_idx's expression. SKIP LOCKED: a chat being written to right
        // now is left for the next run rather than waited for. The rows stay locked until the
        // commit, so no message can be added to them meanwhile: the count below is exact.
        const doomed = await query<{ id: string }>(
          `select id from chats
            where organization_id = ? and greatest(created_at, last_message_at) < ?::timestamptz
            order by greatest(created_at, last_message_at), id
            limit ?
            for update skip locked`,
          [org.id, cutoff, batchSize],
        );
        if (!doomed.length) return { chats: 0, messages: 0 };
        const [counts] = await query<{ chats: number | string; messages: number | string }>(
          `with deleted as (
             delete from chats where organization_id = ? and id = any(?::uuid[]) returning id
           )
           select (select count(*) from deleted) as chats,
                  (select count(*) from messages where organization_id = ? and chat_id in (select id from deleted)) as messages`,
          [org.id, `{${doomed.map((row) => row.id).join(',')}}`, org.id],
        );
        const chats = Number(counts?.chats ?? 0);
        const messages = Number(counts?.messages ?? 0);
        if (chats === 0) return { chats, messages };
        const details = { chats: done.chats + chats, messages: done.messages + messages, retentionDays, cutoff };
        if (auditId === undefined) {
          const id = Bun.randomUUIDv7();
          await query(
            `insert into audit_events (organization_id, id, at, action, target_type, target_id, details)
             values (?, ?, ?::timestamptz, 'retention.purged', 'organization', ?, ?::jsonb)`,
            [org.id, id, new Date().toISOString(), org.id, JSON.stringify(details)],
          );
          auditId = id;
        } else {
          await query(`update audit_events set details = ?::jsonb where organization_id = ? and id = ?`, [JSON.stringify(details), org.id, auditId]);
        }
        return { chats, messages };
      });
      if (deleted.chats === 0) break;
      batches += 1;
      done.chats += deleted.chats;
      done.messages += deleted.messages;
      if (deleted.chats < batchSize) break;
    }
    if (done.chats > 0) organizations.push(done);
    if (aborted) break;
  }
  return {
    skipped: false,
    chats: organizations.reduce((sum, o) => sum + o.chats, 0),
    messages: organizations.reduce((sum, o) => sum + o.messages, 0),
    batches,
    organizations,
    aborted,
  };
}

export interface RetentionTask {
  /** Stops scheduling, asks a run in progress to stop after its batch, and waits for it. */
  stop(): Promise<void>;
}

/**
 * Runs retention now (in the background) and then every `intervalSeconds` after the previous run
 * ended. Never throws: a failed run is logged and the next one is tried at the next interval.
 */
export function startRetention(db: Database, { intervalSeconds, log, batchSize }: { intervalSeconds: number; log: Logger; batchSize?: number }): RetentionTask {
  const controller = new AbortController();
  let timer: Timer | undefined;
  let current: Promise<void> | undefined;

  const tick = async () => {
    const startedAt = performance.now();
    try {
      const result = await runRetention(db, new Date(), { batchSize, signal: controller.signal });
      const ms = Math.round(performance.now() - startedAt);
      if (result.skipped) log.debug({ reason: result.reason }, 'retention skipped: another run holds the lock');
      else if (result.chats > 0 || result.aborted) {
        log.info({ chats: result.chats, messages: result.messages, organizations: result.organizations.length, batches: result.batches, aborted: result.aborted, ms }, 'retention purged');
      } else log.debug({ ms }, 'retention: nothing to purge');
    } catch (error) {
      log.error({ err: error }, 'retention run failed');
    }
  };
  const schedule = (delayMs: number) => {
    if (controller.signal.aborted) return;
    timer = setTimeout(() => {
      current = tick().finally(() => {
        current = undefined;
        schedule(intervalSeconds * 1000);
      });
    }, delayMs);
  };
  schedule(0);
  log.info({ intervalSeconds }, 'retention scheduled');

  return {
    async stop() {
      controller.abort();
      clearTimeout(timer);
      await current;
    },
  };
}
