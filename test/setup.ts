import { afterAll, setDefaultTimeout } from 'bun:test';
import { closeTestDatabases, testDatabase } from './support/database.ts';

// Timeouts: bun test reads no default from bunfig.toml and setDefaultTimeout() holds for its own
// file only, so every test file sets its own (real databases and argon2 hashing on a busy 2-core
// machine need more than the default 5 s); this one is for the hook below.
setDefaultTimeout(300_000);

// Open and migrate the run's database once, before any test file (PGlite's first start takes
// seconds, which would otherwise land in the first file's hooks).
await testDatabase();

// Runs once, after the last test file: close the shared database and drop server databases.
afterAll(async () => {
  await closeTestDatabases();
});
