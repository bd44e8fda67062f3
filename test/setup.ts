import { afterAll, setDefaultTimeout } from 'bun:test';
import { closeTestDatabases, testDatabase } from './support/database.ts';

// Real databases and argon2 hashing: a busy 2-core machine needs more than the default 5 s.
setDefaultTimeout(30_000);

// Open and migrate the run's database once, before any test file (PGlite's first start takes
// seconds, which would otherwise land in the first file's hooks).
await testDatabase();

// Runs once, after the last test file: close the shared database and drop server databases.
afterAll(async () => {
  await closeTestDatabases();
});
