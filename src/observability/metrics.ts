import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../db/orm.ts';

/**
 * The process's Prometheus instruments, in a registry of their own (not prom-client's global one,
 * which libraries may also write to). One per process, like the process they describe: counters
 * only grow, so tests compare values before and after.
 */
export const registry = new Registry();

// Process CPU and memory, heap, event-loop lag (nodejs_eventloop_lag_*): all work under Bun.
collectDefaultMetrics({ register: registry });

const registers = [registry];

/** What the pool gauges read; replaced by `observeDatabase`. */
let poolSource: (() => { open: number; idle?: number; waiting: number; max: number }) | undefined;
/** What the queue gauge reads; replaced by `observeIngestQueue`. */
let queueSource: (() => number) | undefined;

export const metrics = {
  httpRequests: new Counter({
    name: 'chatlogger_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  }),
  httpDuration: new Histogram({
    name: 'chatlogger_http_request_duration_seconds',
    help: 'Time from receiving a request to its response, by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  }),
  chatsCreated: new Counter({
    name: 'chatlogger_ingest_chats_created_total',
    help: 'Chats created through the ingestion API (idempotent repeats excluded).',
    registers,
  }),
  messagesStored: new Counter({
    name: 'chatlogger_ingest_messages_stored_total',
    help: 'Messages stored through the ingestion API (idempotent repeats excluded).',
    registers,
  }),
  messagesRejected: new Counter({
    name: 'chatlogger_ingest_messages_rejected_total',
    help: 'Messages in refused ingestion requests, by problem type and status (a batch counts its messages when its body could be read, else 1).',
    labelNames: ['reason', 'status'] as const,
    registers,
  }),
  /** Items per group commit, observed by the ingestion writer. */
  ingestBatchSize: new Histogram({
    name: 'chatlogger_ingest_batch_size',
    help: 'Items written per group-commit statement: single messages (kind=messages) or new chats (kind=chats).',
    labelNames: ['kind'] as const,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
    registers,
  }),
  ingestQueuePending: new Gauge({
    name: 'chatlogger_ingest_queue_pending',
    help: 'Ingestion submissions waiting for their group commit.',
    registers,
    collect() {
      if (queueSource) this.set(queueSource());
    },
  }),
  dbPoolConnections: new Gauge({
    name: 'chatlogger_db_pool_connections',
    help: 'Open database connections (the embedded database has exactly one).',
    registers,
    collect() {
      const pool = poolSource?.();
      if (pool) this.set(pool.open);
    },
  }),
  dbPoolIdle: new Gauge({
    name: 'chatlogger_db_pool_idle_connections',
    help: 'Open connections not running a query (PostgreSQL server only).',
    registers,
    collect() {
      const idle = poolSource?.().idle;
      if (idle !== undefined) this.set(idle);
    },
  }),
  dbPoolWaiting: new Gauge({
    name: 'chatlogger_db_pool_waiting_requests',
    help: 'Queries waiting for a free connection.',
    registers,
    collect() {
      const pool = poolSource?.();
      if (pool) this.set(pool.waiting);
    },
  }),
  dbPoolMax: new Gauge({
    name: 'chatlogger_db_pool_max_connections',
    help: 'The most connections the pool opens (DATABASE_POOL_SIZE; 1 for the embedded database).',
    registers,
    collect() {
      const pool = poolSource?.();
      if (pool) this.set(pool.max);
    },
  }),
};

export function observeRequest(method: string, route: string, status: number, ms: number | undefined): void {
  const labels = { method, route, status: String(status) };
  metrics.httpRequests.inc(labels);
  if (ms !== undefined) metrics.httpDuration.observe(labels, ms / 1000);
}

interface PgPool {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  options: { max?: number };
}

/**
 * Points the pool gauges at a database. The `pg` pool is looked up once here: asking the
 * connection for it later could reopen a pool that was closed.
 */
export async function observeDatabase(db: Database): Promise<void> {
  if (db.kind === 'pglite') {
    poolSource = () => ({ open: 1, waiting: 0, max: 1 });
    return;
  }
  const connection = db.orm.em.getConnection() as unknown as { getNativeClient(): Promise<PgPool> };
  const pool = await connection.getNativeClient();
  poolSource = () => ({ open: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 0 });
}

/** Points the pending-queue gauge at the ingestion writer's queue length. */
export function observeIngestQueue(pending: () => number): void {
  queueSource = pending;
}

export const METRICS_CONTENT_TYPE = registry.contentType;

export function renderMetrics(): Promise<string> {
  return registry.metrics();
}
