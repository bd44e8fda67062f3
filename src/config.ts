import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  /** PostgreSQL server URL; when absent the embedded database (PGlite) under `dataDir` is used. */
  databaseUrl: string | undefined;
  dataDir: string;
  databasePoolSize: number;
  migrateOnStart: boolean;
  jwtSecret: string;
  jwtIssuer: string;
  jwtAudience: string;
  sessionTtlSeconds: number;
  /** `auto`: Secure when the request arrived over HTTPS or in production. */
  cookieSecure: 'auto' | 'always' | 'never';
  adminEmail: string | undefined;
  adminPassword: string | undefined;
  logLevel: LogLevel;
  maxBodyBytes: number;
  /** Deletes chats older than their organization's `settings.retentionDays` in the background. */
  retentionEnabled: boolean;
  retentionIntervalSeconds: number;
  version: { version: string; buildTime: string; gitCommit: string };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates the environment once. Every problem is collected so an operator sees
 * them all at once rather than one per restart.
 */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name]?.trim();
    return v === '' ? undefined : v;
  };
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean) => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
    return fallback;
  };

  const nodeEnv = oneOf('NODE_ENV', ['production', 'development', 'test'] as const, 'development');
  const databaseUrl = str('DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const dataDir = resolve(str('DATA_DIR') ?? './data');

  const adminEmail = str('ADMIN_EMAIL')?.toLowerCase();
  const adminPassword = str('ADMIN_PASSWORD');
  if ((adminEmail === undefined) !== (adminPassword === undefined)) {
    problems.push('ADMIN_EMAIL and ADMIN_PASSWORD must be set together');
  }
  if (adminEmail !== undefined && !/^[^\s@]+@[^\s@]+$/.test(adminEmail)) {
    problems.push('ADMIN_EMAIL must be an email address');
  }
  if (adminPassword !== undefined && adminPassword.length < 8) {
    problems.push('ADMIN_PASSWORD must be at least 8 characters');
  }

  let jwtSecret = str('JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    problems.push('JWT_SECRET must be at least 32 characters');
  }
  if (jwtSecret === undefined && nodeEnv === 'production') {
    problems.push('JWT_SECRET is required when NODE_ENV=production');
  }

  const config: Config = {
    env: nodeEnv,
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir,
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 200),
    migrateOnStart: bool('MIGRATE_ON_START', true),
    jwtSecret: '',
    jwtIssuer: str('JWT_ISSUER') ?? 'chatlogger',
    jwtAudience: str('JWT_AUDIENCE') ?? 'chatlogger-dashboard',
    sessionTtlSeconds: int('SESSION_TTL_SECONDS', 8 * 3600, 60, 90 * 24 * 3600),
    cookieSecure: oneOf('COOKIE_SECURE', ['auto', 'always', 'never'] as const, 'auto'),
    adminEmail,
    adminPassword,
    logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    maxBodyBytes: int('MAX_BODY_BYTES', 8 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    retentionEnabled: bool('RETENTION_ENABLED', true),
    // At most a week: longer timers overflow setTimeout's 32-bit milliseconds anyway.
    retentionIntervalSeconds: int('RETENTION_INTERVAL_SECONDS', 3600, 10, 7 * 24 * 3600),
    version: readVersion(env),
  };
  if (problems.length) throw new ConfigError(problems);

  config.jwtSecret = jwtSecret ?? persistedSecret(dataDir);
  return config;
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR, so sessions
 * survive restarts without any setup.
 */
function persistedSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret.length >= 32) return secret;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/** Build metadata is injected by the image build (VERSION, BUILD_TIME, GIT_COMMIT) or read at start. */
function readVersion(env: Env): Config['version'] {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    version: env.VERSION?.trim() || pkg.version,
    buildTime: env.BUILD_TIME?.trim() || new Date().toISOString(),
    gitCommit: env.GIT_COMMIT?.trim() || gitCommit() || 'unknown',
  };
}

function gitCommit(): string | undefined {
  try {
    const out = Bun.spawnSync(['git', 'rev-parse', 'HEAD'], { cwd: import.meta.dir, stderr: 'ignore' });
    const sha = out.stdout.toString().trim();
    return out.exitCode === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
  } catch {
    return undefined;
  }
}
