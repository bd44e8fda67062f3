import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';
import { ensureAdmin } from '../src/modules/users/bootstrap.ts';
import { SYSTEM_ORG_SLUG, Organization } from '../src/modules/orgs/organization.entity.ts';
import { User } from '../src/modules/users/user.entity.ts';
import { testDatabase } from './support/database.ts';
import { unique } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chatlogger-config-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe('loadConfig defaults', () => {
  test('an almost empty environment gives the documented defaults', () => {
    const config = loadConfig({ JWT_SECRET: SECRET });
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.env).toBe('development');
    expect(config.databaseUrl).toBeUndefined();
    expect(isAbsolute(config.dataDir)).toBe(true);
    expect(config.dataDir).toBe(resolve('./data'));
    expect(config.migrateOnStart).toBe(true);
    expect(config.logLevel).toBe('info');
    expect(config.databasePoolSize).toBe(10);
    expect(config.cookieSecure).toBe('auto');
    expect(config.adminEmail).toBeUndefined();
    expect(config.adminPassword).toBeUndefined();
    expect(config.jwtSecret).toBe(SECRET);
  });

  test('valid values are parsed (trimmed, case-insensitive where it makes sense)', () => {
    const dir = tempDir();
    const config = loadConfig({
      JWT_SECRET: SECRET,
      PORT: ' 9001 ',
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      DATABASE_URL: 'postgresql://user@db.example:5432/chat',
      LOG_LEVEL: 'DEBUG',
      MIGRATE_ON_START: 'false',
      ADMIN_EMAIL: 'Root@Example.TEST',
      ADMIN_PASSWORD: 'long-enough-password',
      NODE_ENV: 'production',
    });
    expect(config.port).toBe(9001);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe(dir);
    expect(config.databaseUrl).toBe('postgresql://user@db.example:5432/chat');
    expect(config.logLevel).toBe('debug');
    expect(config.migrateOnStart).toBe(false);
    expect(config.adminEmail).toBe('root@example.test');
    expect(config.adminPassword).toBe('long-enough-password');
    expect(config.env).toBe('production');
    // A given secret is used as it is and nothing is written.
    expect(config.jwtSecret).toBe(SECRET);
    expect(existsSync(join(dir, 'jwt-secret'))).toBe(false);
  });

  test('a relative DATA_DIR is resolved against the working directory', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, DATA_DIR: 'some/relative/dir' }).dataDir).toBe(resolve(process.cwd(), 'some/relative/dir'));
  });
});

describe('loadConfig validation', () => {
  test('every invalid value is reported at once', () => {
    const error = configError({
      PORT: 'abc',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
      MIGRATE_ON_START: 'maybe',
      ADMIN_EMAIL: 'root@example.test',
      JWT_SECRET: 'too-short',
      DATA_DIR: tempDir(),
    });
    const expected = [/^PORT\b/, /^DATABASE_URL\b/, /^LOG_LEVEL\b/, /^MIGRATE_ON_START\b/, /ADMIN_EMAIL.*ADMIN_PASSWORD|ADMIN_PASSWORD.*ADMIN_EMAIL/, /^JWT_SECRET\b/];
    for (const pattern of expected) {
      const matching = error.problems.filter((p) => pattern.test(p));
      expect(matching, `one problem should match ${pattern}; got ${JSON.stringify(error.problems)}`).toHaveLength(1);
    }
    expect(error.problems).toHaveLength(expected.length);
    // The message lists them all too, for the operator reading stderr.
    for (const problem of error.problems) expect(error.message).toContain(problem);
    expect(error.message).toContain('"abc"');
    expect(error.message).toContain('"loud"');
    expect(error.message).toContain('"maybe"');
  });

  test('each invalid value alone is rejected', () => {
    const dir = tempDir();
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'abc' }, /^PORT/],
      [{ PORT: '70000' }, /^PORT/],
      [{ PORT: '80.5' }, /^PORT/],
      [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL/],
      [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL/],
      [{ MIGRATE_ON_START: 'maybe' }, /^MIGRATE_ON_START/],
      [{ ADMIN_EMAIL: 'root@example.test' }, /ADMIN_PASSWORD/],
      [{ ADMIN_PASSWORD: 'long-enough-password' }, /ADMIN_EMAIL/],
      [{ ADMIN_EMAIL: 'root@example.test', ADMIN_PASSWORD: 'short' }, /^ADMIN_PASSWORD must be at least 8/],
      [{ JWT_SECRET: 'x'.repeat(31) }, /^JWT_SECRET/],
      [{ NODE_ENV: 'staging' }, /^NODE_ENV/],
    ];
    for (const [env, pattern] of cases) {
      const error = configError({ JWT_SECRET: SECRET, DATA_DIR: dir, ...env });
      expect(error.problems, JSON.stringify(env)).toHaveLength(1);
      expect(error.problems[0]).toMatch(pattern);
    }
  });

  test('NODE_ENV=production refuses the placeholder JWT_SECRET of .env.example and low-entropy secrets', async () => {
    const example = await Bun.file(join(import.meta.dir, '..', '.env.example')).text();
    const placeholder = /JWT_SECRET=(\S+)/.exec(example)![1]!;
    for (const weak of [placeholder, 'a'.repeat(40), 'ab'.repeat(20), '0123012301230123012301230123012301', 'CHANGE-ME-please-change-me-now-0123456789', 'your-secret-goes-here-at-least-32-chars']) {
      const error = configError({ NODE_ENV: 'production', JWT_SECRET: weak, DATA_DIR: tempDir() });
      expect(error.problems).toEqual([expect.stringMatching(/^JWT_SECRET (is a placeholder|has too little entropy)/)]);
    }
    // Random secrets pass: hex of 16 bytes, base64 of 48.
    for (let i = 0; i < 20; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(48));
      for (const secret of [Buffer.from(bytes.slice(0, 16)).toString('hex'), Buffer.from(bytes).toString('base64')]) {
        expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, DATA_DIR: tempDir() }).jwtSecret).toBe(secret);
      }
    }
    // Outside production the rule does not apply (tests and development use fixed secrets).
    expect(loadConfig({ JWT_SECRET: placeholder, DATA_DIR: tempDir() }).jwtSecret).toBe(placeholder);
  });

  test('NODE_ENV=production without JWT_SECRET throws and writes no secret', () => {
    const dir = tempDir();
    const error = configError({ NODE_ENV: 'production', DATA_DIR: dir });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toContain('JWT_SECRET');
    expect(error.message).toContain('JWT_SECRET');
    expect(existsSync(join(dir, 'jwt-secret'))).toBe(false);
  });
});

describe('the generated JWT secret', () => {
  test('is written to DATA_DIR/jwt-secret with mode 0600 and reused by the next start', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const first = loadConfig({ DATA_DIR: dir });
    const file = join(dir, 'jwt-secret');
    expect(existsSync(file)).toBe(true);
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.jwtSecret);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = loadConfig({ DATA_DIR: dir });
    expect(second.jwtSecret).toBe(first.jwtSecret);

    // Another data directory gets a secret of its own.
    const other = loadConfig({ DATA_DIR: tempDir() });
    expect(other.jwtSecret).not.toBe(first.jwtSecret);
  });

  test('a stored secret that is too short is replaced', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'jwt-secret'), 'short\n');
    const config = loadConfig({ DATA_DIR: dir });
    expect(config.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(join(dir, 'jwt-secret'), 'utf8').trim()).toBe(config.jwtSecret);
    expect(statSync(join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600);
  });
});

describe('ensureAdmin', () => {
  test('creates the superadmin once, in the system organization, and never resets the password', async () => {
    const db = await testDatabase();
    const email = `boot-${unique()}@example.test`;
    const password = 'first-password-1';

    expect(await ensureAdmin(db.fork(), email, password)).toBe('created');
    expect(await ensureAdmin(db.fork(), email, 'second-password-2')).toBe('exists');
    // The email is matched as normalized, like logins do.
    expect(await ensureAdmin(db.fork(), `  ${email.toUpperCase()} `, 'third-password-3')).toBe('exists');

    const em = db.fork();
    const users = await em.find(User, { email }, { populate: ['passwordHash'] });
    expect(users).toHaveLength(1);
    const user = users[0]!;
    expect(user.role).toBe('superadmin');
    expect(user.active).toBe(true);
    const org = await em.findOneOrFail(Organization, { id: user.organizationId });
    expect(org.slug).toBe(SYSTEM_ORG_SLUG);
    expect(org.slug).toBe('system');
    expect(await Bun.password.verify(password, user.passwordHash)).toBe(true);
    expect(await Bun.password.verify('second-password-2', user.passwordHash)).toBe(false);

    // A second bootstrapped admin joins the same system organization (not a new one).
    const another = `boot-${unique()}@example.test`;
    expect(await ensureAdmin(db.fork(), another, password)).toBe('created');
    const anotherUser = await db.fork().findOneOrFail(User, { email: another });
    expect(anotherUser.organizationId).toBe(user.organizationId);
    expect(await db.fork().count(Organization, { slug: 'system' })).toBe(1);
  }, 30_000);

  test('is idempotent when two instances bootstrap the same admin at the same time', async () => {
    // Two replicas starting together against one PostgreSQL both run the bootstrap: one creates
    // the admin, the other must find it (not crash on the unique email).
    const db = await testDatabase();
    const email = `race-${unique()}@example.test`;
    const outcomes = await Promise.allSettled([
      ensureAdmin(db.fork(), email, 'race-password-1'),
      ensureAdmin(db.fork(), email, 'race-password-1'),
    ]);
    const described = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : `rejected: ${String(o.reason).split('\n')[0]}`));
    expect(described.sort()).toEqual(['created', 'exists']);
    expect(await db.fork().count(User, { email })).toBe(1);
  }, 30_000);
});
