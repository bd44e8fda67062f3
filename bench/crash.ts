/**
 * Crash safety of ingestion under load, through the real server:
 *   bun bench/crash.ts
 * Creates the database chatlogger_bench_crash on the server of BENCH_DATABASE_URL, starts
 * `bun src/main.ts` on 127.0.0.1, and drives single-message ingestion from 32 concurrent clients
 * with client-chosen message ids. The server is killed with SIGKILL mid-load BENCH_KILLS times
 * (default 5) and started again; clients send every message that got no 2xx again with the same
 * id. Then it checks that every acknowledged message is stored, none twice, and that every chat's
 * messageCount equals the messages it holds, prints the table, and drops the database.
 * Exits 1 when a message was lost or stored twice.
 */
import { adminQuery, databaseUrl, log, markdownTable } from './support.ts';
import { childEnv, killAll } from '../test/support/process.ts';
import { crashScenario } from '../test/support/crash.ts';

const DATABASE = 'chatlogger_bench_crash';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const KILLS = Number(process.env.BENCH_KILLS ?? 5);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 4000);
const ADMIN = { email: 'root@bench.local', password: 'bench-password-1' };

async function main() {
  log(`creating database ${DATABASE}`);
  await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  await adminQuery(`create database ${DATABASE}`);
  try {
    log(`${CLIENTS} clients, ${KILLS} SIGKILLs, about ${LOAD_MS} ms of load before each`);
    const result = await crashScenario({
      env: childEnv({
        DATABASE_URL: databaseUrl(DATABASE),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        RETENTION_ENABLED: 'false',
        INGEST_RATE_LIMIT_PER_MINUTE: '0',
      }),
      superadmin: ADMIN,
      clients: CLIENTS,
      kills: KILLS,
      loadMs: LOAD_MS,
      log,
    });
    const restarts = [...result.restartMs].sort((a, b) => a - b);
    console.log(`\nReal server (bun src/main.ts, PostgreSQL), ${CLIENTS} clients sending single messages with their own ids, SIGKILL ${KILLS} times\n`);
    console.log(
      markdownTable(
        ['acknowledged', 'stored', 'lost', 'duplicates', 'counter mismatches', 'kills', 'requests', 'no answer', 'error statuses', 'restart p50'],
        [
          [
            result.acknowledged,
            result.stored,
            result.lost.length,
            result.duplicates.length + result.wrong.length,
            result.counterMismatches.length,
            result.kills,
            result.requests,
            result.networkErrors,
            result.errorStatuses,
            `${Math.round(restarts[Math.floor(restarts.length / 2)] ?? 0)} ms`,
          ].map(String),
        ],
        0,
      ),
    );
    console.log();
    if (result.lost.length || result.duplicates.length || result.wrong.length || result.counterMismatches.length || result.unacknowledged) {
      console.error('crash safety violated:', JSON.stringify({ lost: result.lost, duplicates: result.duplicates, wrong: result.wrong, counters: result.counterMismatches, unacknowledged: result.unacknowledged }));
      process.exitCode = 1;
    }
  } finally {
    await killAll();
    await adminQuery(`drop database if exists ${DATABASE} with (force)`);
  }
}

await main();
