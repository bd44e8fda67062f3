import type { Kysely } from '@mikro-orm/sql';
import type { Database } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import type { Logger } from '../../logger.ts';
import { AuditEvent } from '../audit/audit.entity.ts';
import { recordAudit } from '../audit/audit.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import { Organization } from '../orgs/organization.entity.ts';

/**
 * Retention: chats whose last activity, `greatest(created_at, last_message_at)`, is older than
 * their organization's `settings.retentionDays` are deleted with their messages, a bounded batch
 * per transaction, until none is left.
 *
 * One purger at a time:
 * - across processes (PostgreSQL): a session-level advisory lock, taken with
 *   `pg_try_advisory_lock` on a connection held for the whole run (so the run needs two pooled
 *   connections: that one and one for its batches). An instance that finds the lock taken skips
 *   the run; the server releases it if the connection dies.
 * - within a process (both databases): a run already going on the same `Database` makes the
 *   next call skip. PGlite needs no more: one process at a time owns its data directory.
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

const running = new WeakSet<Database>();

/**
 * One retention run at `now`. Skips (`{ skipped: true }`) when another run holds the lock, in
 * this process or another one. Errors are thrown to the caller (the scheduler logs them).
 */
export async function runRetention(db: Database, now: Date = new Date(), options: RetentionOptions = {}): Promise<RetentionResult> {
  if (running.has(db)) return { skipped: true, reason: 'running' };
  running.add(db);
  try {
    if (db.kind === 'pglite') return await purge(db, now, options);
    const kysely = db.fork().getConnection().getClient() as Kysely<unknown>;
    return await kysely.connection().execute(async (held) => {
      const [lock] = await query<{ locked: boolean }>(held, `select pg_try_advisory_lock($1::bigint) as locked`, [RETENTION_LOCK_KEY]);
      if (!lock?.locked) return { skipped: true, reason: 'locked' } as const;
      try {
        return await purge(db, now, options);
      } finally {
        await query(held, `select pg_advisory_unlock($1::bigint)`, [RETENTION_LOCK_KEY]);
      }
    });
  } finally {
    running.delete(db);
  }
}

/** Organizations with a retention period, by id. */
async function retentionPeriods(db: Database): Promise<{ id: string; retentionDays: number }[]> {
  const orgs = await db.fork().find(Organization, {}, { fields: ['id', 'settings'], orderBy: { id: 'asc' } });
  return orgs
    .map((org) => ({ id: org.id, retentionDays: org.settings?.retentionDays }))
    .filter((org): org is { id: string; retentionDays: number } => Number.isInteger(org.retentionDays) && org.retentionDays! >= 1);
}

async function purge(db: Database, now: Date, options: RetentionOptions): Promise<RetentionResult> {
  const batchSize = options.batchSize ?? DEFAULT_RETENTION_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const organizations: OrganizationPurge[] = [];
  let batches = 0;
  let aborted = false;
  for (const org of await retentionPeriods(db)) {
    const { retentionDays } = org;
    const cutoff = new Date(now.getTime() - retentionDays * DAY_MS).toISOString();
    const done: OrganizationPurge = { organizationId: org.id, retentionDays, cutoff, chats: 0, messages: 0 };
    let auditId: string | undefined;
    for (;;) {
      if (options.signal?.aborted) {
        aborted = true;
        break;
      }
      const deleted = await db.fork().transactional(async (tx) => {
        const removed = await conversations.purgeChats(tx, org.id, cutoff, batchSize);
        if (removed.chats === 0) return { ...removed, auditId };
        const details = { chats: done.chats + removed.chats, messages: done.messages + removed.messages, retentionDays, cutoff };
        if (auditId === undefined) {
          const event = recordAudit(tx, { organizationId: org.id, action: 'retention.purged', target: { type: 'organization', id: org.id }, details });
          return { ...removed, auditId: event.id };
        }
        await tx.nativeUpdate(AuditEvent, { organizationId: org.id, id: auditId }, { details });
        return { ...removed, auditId };
      });
      auditId = deleted.auditId;
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
