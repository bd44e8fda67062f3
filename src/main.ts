import { loadConfig, ConfigError } from './config.ts';
import { createLogger } from './logger.ts';
import { startDatabase } from './db/connect.ts';
import { createApp } from './app.ts';
import { rememberPeer } from './http/client-ip.ts';
import { ingestWriters } from './modules/ingestion/writers.ts';
import { startRetention } from './modules/lifecycle/retention.ts';
import { ensureAdmin } from './modules/users/bootstrap.ts';
import { observeDatabase, observeIngestQueue } from './observability/metrics.ts';
import { startMetricsServer } from './http/metrics.ts';
import { startTracing } from './http/tracing.ts';

/** Set as the process comes up, so a signal during start-up also stops it cleanly. */
let stop: (signal: string) => Promise<void> = async () => process.exit(0);
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

async function main() {
  const startedAt = performance.now();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  // Migrated and bootstrapped here, or, when PostgreSQL is unreachable, in the background
  // while the server already answers (503 until the database is ready).
  const database = await startDatabase(config, log, async (db) => {
    if (!config.adminEmail || !config.adminPassword) return;
    const outcome = await ensureAdmin(db.fork(), config.adminEmail, config.adminPassword);
    log.info({ email: config.adminEmail, outcome }, 'bootstrap superadmin');
  });
  const { db } = database;
  stop = async () => {
    database.stop();
    await db.close();
    process.exit(0);
  };

  const writers = ingestWriters(db, config.ingestGroup);
  observeIngestQueue(() => writers.messages.pending + writers.chats.pending);
  const tracing = config.otlpEndpoint ? await startTracing({ endpoint: config.otlpEndpoint, serviceVersion: config.version.version }) : undefined;
  if (tracing) log.info({ endpoint: config.otlpEndpoint }, 'tracing exported over OTLP/HTTP');
  const app = createApp({ config, db, log, writers, tracing });
  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // Bun's own limit answers with a bare 413; keep it far above the app's, which reads bodies
    // as streams and answers 413 as problem+json without buffering an oversized body.
    maxRequestBodySize: 1024 * 1024 * 1024,
    // Bun's development mode (its default unless NODE_ENV=production) gives nothing here: errors
    // are rendered as problems by the app, and the dashboard is bundled at boot, not served with
    // hot reloading. Off in every mode, so NODE_ENV changes no work on the request path.
    development: false,
    fetch: (request, server) => {
      rememberPeer(request, server.requestIP(request)?.address);
      return app.handle(request);
    },
  });
  log.info(
    { url: `http://${server.hostname}:${server.port}`, startMs: Math.round(performance.now() - startedAt), version: config.version.version },
    'listening',
  );

  const metricsServer = config.metricsPort === undefined ? undefined : startMetricsServer({ ...config, metricsPort: config.metricsPort });
  if (metricsServer) log.info({ url: `http://${metricsServer.hostname}:${metricsServer.port}/metrics` }, 'metrics listening');

  let stopping = false;
  // After the migrations: the purge needs the tables. Stopped before the pool closes.
  let retention: ReturnType<typeof startRetention> | undefined;
  void database.ready
    .then(async () => {
      // Reaching the pool connects: not before the database is there.
      await observeDatabase(db);
      if (config.retentionEnabled && !stopping) retention = startRetention(db, { intervalSeconds: config.retentionIntervalSeconds, log });
    })
    .catch((error: unknown) => log.error({ err: error }, 'starting the background tasks failed'));

  // The shutdown sequence, one step after the other.
  const shutdownSteps: (() => Promise<unknown>)[] = [
    // Stop accepting and let the requests in flight finish; stop the background work.
    () => Promise.all([server.stop(false), metricsServer?.stop(true), retention?.stop(), database.stop()]),
    // Requests still waiting for their group are answered before the pool closes.
    () => writers.drain(),
    // The spans of the last requests, before the process ends.
    async () => tracing?.shutdown(),
    () => db.close(),
  ];
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000);
    for (const step of shutdownSteps) await step();
    clearTimeout(timer);
    log.info('stopped');
    process.exit(0);
  };
}

await main();
