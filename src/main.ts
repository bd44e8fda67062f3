import { loadConfig, ConfigError } from './config.ts';
import { createLogger } from './logger.ts';
import { openDatabase } from './db/orm.ts';
import { ensureAdmin } from './db/bootstrap.ts';
import { createApp } from './app.ts';
import { startRetention } from './modules/lifecycle/retention.ts';

const SHUTDOWN_GRACE_MS = 10_000;

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
  const db = await openDatabase(config);
  stop = async () => {
    await db.close();
    process.exit(0);
  };
  log.info({ database: db.kind, dataDir: db.kind === 'pglite' ? config.dataDir : undefined }, 'database opened');

  if (config.migrateOnStart) {
    const applied = await db.migrate();
    if (applied.length) log.info({ applied }, 'migrations applied');
  }
  if (config.adminEmail && config.adminPassword) {
    const outcome = await ensureAdmin(db.fork(), config.adminEmail, config.adminPassword);
    log.info({ email: config.adminEmail, outcome }, 'bootstrap superadmin');
  }

  const app = createApp({ config, db, log });
  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // Bun's own limit answers with a bare 413; keep it far above the app's, which reads bodies
    // as streams and answers 413 as problem+json without buffering an oversized body.
    maxRequestBodySize: 1024 * 1024 * 1024,
    fetch: (request) => app.handle(request),
  });
  log.info(
    { url: `http://${server.hostname}:${server.port}`, startMs: Math.round(performance.now() - startedAt), version: config.version.version },
    'listening',
  );

  // After the migrations: the purge needs the tables. Stopped before the pool closes.
  const retention = config.retentionEnabled ? startRetention(db, { intervalSeconds: config.retentionIntervalSeconds, log }) : undefined;

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    await Promise.all([server.stop(false), retention?.stop()]);
    await db.close();
    clearTimeout(timer);
    log.info('stopped');
    process.exit(0);
  };
}

await main();
