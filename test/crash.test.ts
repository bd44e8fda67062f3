/**
 * Crash safety: the server process is killed with SIGKILL under sustained ingestion and started
 * again on the same database (a PostgreSQL database with TEST_DATABASE_URL, else the embedded
 * database's data directory). Clients send every message that got no 2xx again with the same
 * id. Afterwards every acknowledged message is stored, none twice, and each chat's
 * messageCount equals the messages it holds. The longer version with several kills is
 * `bun bench/crash.ts`.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll } from './support/process.ts';
import { crashScenario } from './support/crash.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const ADMIN = { email: 'root@crash.test', password: 'crash-root-password' };
let dataDir: string;
let databaseUrl: string | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'chatlogger-crash-'));
  databaseUrl = testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined;
});

afterAll(async () => {
  await killAll();
  rmSync(dataDir, { recursive: true, force: true });
});

test(`SIGKILL under load loses no acknowledged message and stores none twice (${testDatabaseKind})`, async () => {
  const result = await crashScenario({
    env: childEnv({
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      RETENTION_ENABLED: 'false',
      INGEST_RATE_LIMIT_PER_MINUTE: '0',
    }),
    superadmin: ADMIN,
    clients: 16,
    kills: 1,
    loadMs: 2000,
    chats: 4,
  });
  console.log(
    `crash: ${result.requests} requests, ${result.acknowledged} acknowledged, ${result.stored} stored, ${result.lost.length} lost, ${result.duplicates.length} duplicates, ${result.kills} kill(s), restart ${Math.round(result.restartMs[0]!)} ms, ${result.networkErrors} requests without answer`,
  );
  expect(result.acknowledged).toBeGreaterThan(0);
  // The kill hit requests in flight: they got no answer and were sent again.
  expect(result.networkErrors).toBeGreaterThan(0);
  expect(result.unacknowledged).toBe(0);
  expect(result.lost).toEqual([]);
  expect(result.duplicates).toEqual([]);
  expect(result.wrong).toEqual([]);
  expect(result.counterMismatches).toEqual([]);
  // Every message sent was acknowledged in the end, and nothing else is stored.
  expect(result.stored).toBe(result.acknowledged);
}, 120_000);
