import type { Config } from '../../config.ts';
import { tooManyRequests } from '../../http/problem.ts';
import { rateLimitHeaders, type RateLimiter } from '../../http/rate-limit.ts';
import { normalizeEmail } from '../users/users.service.ts';

const MINUTE_MS = 60_000;
/** A lock lasts LOGIN_LOCK_SECONDS, then twice as long at each further lock, up to 64 times. */
const MAX_DOUBLINGS = 6;
/** How long the doubling is remembered after the first lock (a successful login forgets it). */
const LOCK_LEVEL_TTL_MS = 24 * 3600 * 1000;

/**
 * Brute-force protection for `POST /auth/login`:
 * - each client address may try LOGIN_RATE_LIMIT_PER_MINUTE times a minute;
 * - LOGIN_MAX_FAILURES failed attempts on one email within LOGIN_FAILURE_WINDOW_SECONDS lock
 *   that email for LOGIN_LOCK_SECONDS, doubling at each further lock; a successful login clears it.
 * State is keyed by the email as typed (normalized and hashed), whether or not an account has
 * it, so a lock answers the same for unknown emails and reveals nothing.
 */
export class LoginThrottle {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly config: Pick<Config, 'rateLimits'>,
  ) {}

  /** Refuses with 429 when the address or the email is over its limit; returns headers to send. */
  async admit(ip: string | undefined, email: string): Promise<Record<string, string>> {
    const { loginPerMinute } = this.config.rateLimits;
    let headers: Record<string, string> = {};
    if (ip !== undefined && loginPerMinute > 0) {
      const decision = await this.limiter.hit(`login:ip:${ip}`, loginPerMinute, MINUTE_MS);
      if (decision) {
        headers = rateLimitHeaders(decision);
        if (!decision.allowed) throw tooManyRequests('Too many login attempts from your address; retry later.', decision.resetSeconds, headers);
      }
    }
    const lock = await this.limiter.attempt(() => this.limiter.store.peek(keys(email).lock));
    if (lock) throw tooManyRequests('Too many failed logins for this email; retry later.', lock.resetInMs / 1000, headers);
    return headers;
  }

  async failed(email: string): Promise<void> {
    const { loginMaxFailures, loginFailureWindowSeconds, loginLockSeconds } = this.config.rateLimits;
    if (loginMaxFailures <= 0) return;
    const { store } = this.limiter;
    const key = keys(email);
    await this.limiter.attempt(async () => {
      const failures = await store.increment(key.failures, loginFailureWindowSeconds * 1000);
      if (failures.count < loginMaxFailures) return;
      const level = await store.increment(key.level, LOCK_LEVEL_TTL_MS);
      const lockMs = loginLockSeconds * 1000 * 2 ** Math.min(level.count - 1, MAX_DOUBLINGS);
      await store.put(key.lock, 1, lockMs);
      await store.delete(key.failures);
    });
  }

  async succeeded(email: string): Promise<void> {
    const key = keys(email);
    await this.limiter.attempt(() => this.limiter.store.delete(key.failures, key.level, key.lock));
  }
}

/** Emails are hashed so that a shared store (Redis) never holds them in clear. */
function keys(email: string) {
  const id = new Bun.CryptoHasher('sha256').update(normalizeEmail(email)).digest('hex').slice(0, 32);
  return { failures: `login:failures:${id}`, level: `login:level:${id}`, lock: `login:lock:${id}` };
}
