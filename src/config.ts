import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { canonicalOrigin } from './origins.ts';
// Imported, not read from disk, so a compiled binary carries it.
import { version as packageVersion } from '../package.json';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  /** PostgreSQL server URL; when absent the embedded database (PGlite) under `dataDir` is used. */
  databaseUrl: string | undefined;
  dataDir: string;
  databasePoolSize: number;
  /** Longest wait to open a PostgreSQL connection or to get one from the full pool. */
  databaseConnectTimeoutSeconds: number;
  /** Longest statement: the server cancels it, and the client gives up one second later. */
  databaseStatementTimeoutSeconds: number;
  /** Longest pause between two attempts to reach and migrate a database that was down at start. */
  databaseRetryMaxSeconds: number;
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
  /** After SIGTERM/SIGINT, in-flight work gets this long before the process exits anyway. */
  shutdownTimeoutSeconds: number;
  /** Group commit of single messages and new chats: see src/modules/ingestion/group-commit.ts. */
  ingestGroup: { maxBatch: number; maxWaitMs: number; maxInFlight: number };
  /** How long an API key lookup is reused; a revocation on another instance takes effect within it. */
  apiKeyCacheSeconds: number;
  /** With a token, `GET /metrics` is served on the main port to `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** A second listener for `/metrics` only, without credentials; bind it to a private interface. */
  metricsPort: number | undefined;
  metricsHost: string;
  /** OTLP/HTTP collector base URL; traces are exported only when set. */
  otlpEndpoint: string | undefined;
  /** Verify-only secrets: tokens signed with an earlier JWT_SECRET stay valid until they expire. */
  jwtPreviousSecrets: string[];
  /** Rate-limit counters are shared through Redis when a URL is set, else kept in this process. */
  redis: { url: string | undefined; keyPrefix: string };
  /** How many proxies in front append to X-Forwarded-For; 0 trusts no forwarded header. */
  trustProxy: number;
  /** Exact origins (canonical form) allowed to call the dashboard API from a browser. */
  trustedOrigins: string[];
  /** Per minute; 0 turns a limit off. Login failures lock an email for `lockSeconds`, doubling. */
  rateLimits: {
    ingestPerMinute: number;
    loginPerMinute: number;
    loginMaxFailures: number;
    loginFailureWindowSeconds: number;
    loginLockSeconds: number;
  };
  exportMaxConcurrentPerOrg: number;
  /** Request line and headers; larger requests get a 431 (Bun itself refuses above 16 KiB). */
  maxHeaderBytes: number;
  version: { version: string; buildTime: string; gitCommit: string };
}

/** Every environment variable `loadConfig` reads; test/deploy.test.ts holds the image and compose file to it. */
export const CONFIG_VARIABLES = [
  'NODE_ENV', 'PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'DATABASE_POOL_SIZE', 'MIGRATE_ON_START',
  'DATABASE_CONNECT_TIMEOUT_SECONDS', 'DATABASE_STATEMENT_TIMEOUT_SECONDS', 'DATABASE_RETRY_MAX_SECONDS', 'SHUTDOWN_TIMEOUT_SECONDS',
  'JWT_SECRET', 'JWT_ISSUER', 'JWT_AUDIENCE', 'SESSION_TTL_SECONDS', 'COOKIE_SECURE', 'ADMIN_EMAIL',
  'ADMIN_PASSWORD', 'LOG_LEVEL', 'MAX_BODY_BYTES', 'RETENTION_ENABLED', 'RETENTION_INTERVAL_SECONDS',
  'METRICS_TOKEN', 'METRICS_PORT', 'METRICS_HOST', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'VERSION', 'BUILD_TIME',
  'GIT_COMMIT', 'JWT_PREVIOUS_SECRETS', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'TRUST_PROXY', 'TRUSTED_ORIGINS',
  'INGEST_RATE_LIMIT_PER_MINUTE', 'LOGIN_RATE_LIMIT_PER_MINUTE', 'LOGIN_MAX_FAILURES', 'LOGIN_FAILURE_WINDOW_SECONDS',
  'LOGIN_LOCK_SECONDS', 'EXPORT_MAX_CONCURRENT_PER_ORG', 'MAX_HEADER_BYTES',
  'INGEST_GROUP_MAX_BATCH', 'INGEST_GROUP_WAIT_MS', 'INGEST_GROUP_CONCURRENCY', 'API_KEY_CACHE_SECONDS',
] as const;
/** A variable must be listed above to be read: the compiler holds the list complete. */
export type ConfigVariable = (typeof CONFIG_VARIABLES)[number];

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
  const str = (name: ConfigVariable) => {
    const v = env[name]?.trim();
    return v === '' ? undefined : v;
  };
  const int = (name: ConfigVariable, fallback: number, min: number, max: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const bool = (name: ConfigVariable, fallback: boolean) => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };
  const oneOf = <T extends string>(name: ConfigVariable, allowed: readonly T[], fallback: T): T => {
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
  const weakness = jwtSecret !== undefined && jwtSecret.length >= 32 && nodeEnv === 'production' ? secretWeakness(jwtSecret) : undefined;
  if (weakness) problems.push(`JWT_SECRET ${weakness} (NODE_ENV=production); generate one, e.g. openssl rand -base64 48`);

  const metricsToken = str('METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) {
    problems.push('METRICS_TOKEN must be at least 16 characters');
  }
  const otlpEndpoint = str('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (otlpEndpoint !== undefined && !/^https?:\/\/[^/]/.test(otlpEndpoint)) {
    problems.push('OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL');
  }
  const list = (name: ConfigVariable) => (str(name) ?? '').split(',').map((item) => item.trim()).filter(Boolean);
  const jwtPreviousSecrets = list('JWT_PREVIOUS_SECRETS');
  if (jwtPreviousSecrets.some((secret) => secret.length < 32)) {
    problems.push('JWT_PREVIOUS_SECRETS must be a comma-separated list of secrets of at least 32 characters');
  }
  const redisUrl = str('REDIS_URL');
  if (redisUrl !== undefined && !/^(redis|rediss|valkey|valkeys):\/\/[^/]/.test(redisUrl)) {
    problems.push('REDIS_URL must start with redis:// or rediss://');
  }
  const trustedOrigins = list('TRUSTED_ORIGINS').map((origin) => {
    const canonical = canonicalOrigin(origin);
    if (!canonical) problems.push(`TRUSTED_ORIGINS must list exact origins such as https://app.example.com (got "${origin}")`);
    return canonical ?? origin;
  });
  const trustProxyRaw = str('TRUST_PROXY')?.toLowerCase();
  const trustProxy = trustProxyRaw === 'true' ? 1 : trustProxyRaw === 'false' ? 0 : int('TRUST_PROXY', 0, 0, 10);

  const config: Config = {
    env: nodeEnv,
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir,
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 200),
    databaseConnectTimeoutSeconds: int('DATABASE_CONNECT_TIMEOUT_SECONDS', 5, 1, 300),
    databaseStatementTimeoutSeconds: int('DATABASE_STATEMENT_TIMEOUT_SECONDS', 30, 1, 3600),
    databaseRetryMaxSeconds: int('DATABASE_RETRY_MAX_SECONDS', 30, 1, 600),
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
    shutdownTimeoutSeconds: int('SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    ingestGroup: {
      maxBatch: int('INGEST_GROUP_MAX_BATCH', 500, 1, 10_000),
      maxWaitMs: int('INGEST_GROUP_WAIT_MS', 0, 0, 1000),
      maxInFlight: int('INGEST_GROUP_CONCURRENCY', 4, 1, 64),
    },
    apiKeyCacheSeconds: int('API_KEY_CACHE_SECONDS', 5, 0, 300),
    metricsToken,
    metricsPort: str('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 0, 65535),
    metricsHost: str('METRICS_HOST') ?? '127.0.0.1',
    otlpEndpoint,
    jwtPreviousSecrets,
    redis: { url: redisUrl, keyPrefix: str('REDIS_KEY_PREFIX') ?? 'chatlogger:' },
    trustProxy,
    trustedOrigins,
    rateLimits: {
      ingestPerMinute: int('INGEST_RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
      loginPerMinute: int('LOGIN_RATE_LIMIT_PER_MINUTE', 30, 0, 100_000),
      loginMaxFailures: int('LOGIN_MAX_FAILURES', 5, 0, 1000),
      loginFailureWindowSeconds: int('LOGIN_FAILURE_WINDOW_SECONDS', 900, 1, 86_400),
      loginLockSeconds: int('LOGIN_LOCK_SECONDS', 60, 1, 86_400),
    },
    exportMaxConcurrentPerOrg: int('EXPORT_MAX_CONCURRENT_PER_ORG', 2, 1, 1000),
    // Below Bun's own 16 KiB, which it answers with a bare 431 before the app sees the request.
    maxHeaderBytes: int('MAX_HEADER_BYTES', 12 * 1024, 1024, 15 * 1024),
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
  return {
    version: env.VERSION?.trim() || packageVersion,
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

/** Secrets that documentation shows as examples (.env.example): known to everyone. */
const PLACEHOLDER_SECRETS = new Set(['change-me-to-a-long-random-string-of-32-or-more-characters']);
const PLACEHOLDER_WORDS = /change[-_ ]?me|replace[-_ ]?me|your[-_ ]?secret|placeholder|example/i;
/** Bits of entropy (Shannon, over the secret's own characters) a production secret must show. */
const MIN_SECRET_BITS = 80;

/**
 * Why a secret must not sign production sessions: a known placeholder, or too little variety to
 * be random (`aaaa...`, `abab...`). A 32-character hex string from a random source shows about
 * 110 bits by this measure (none below 80 in a million draws), base64 of 48 random bytes about 350.
 */
export function secretWeakness(secret: string): string | undefined {
  if (PLACEHOLDER_SECRETS.has(secret) || PLACEHOLDER_WORDS.test(secret)) return 'is a placeholder from the documentation';
  const counts = new Map<string, number>();
  for (const char of secret) counts.set(char, (counts.get(char) ?? 0) + 1);
  let perChar = 0;
  for (const count of counts.values()) perChar -= (count / secret.length) * Math.log2(count / secret.length);
  if (counts.size < 8 || perChar * secret.length < MIN_SECRET_BITS) return 'has too little entropy to be random';
  return undefined;
}
