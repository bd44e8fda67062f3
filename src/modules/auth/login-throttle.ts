import type { Config } from '../../config.ts';
import { tooManyRequests } from '../../http/problem.ts';
import { rateLimitHeaders, type RateLimiter } from '../../http/rate-limit.ts';
import { normalizeEmail } from '../users/users.service.ts';

const MINUTE_MS = 60_000;
/** A lock lasts LOGIN_LOCK_SECONDS, then twice as long at each further lock, up to 64 times. */
const MAX_DOUBLINGS = 6;
/** How long the doubling is remembered after the first lock (a successful login forgets it). */
const LOCK_LEVEL_TTL_MS = 24 * 3600 * 1000;

/** What `admit` answers: the rate-limit headers to send. */
export interface Admission {
  headers: Record<string, string>;
}

/**
 * Brute-force protection for `POST /auth/login`:
 * - each client address may try LOGIN_RATE_LIMIT_PER_MINUTE times a minute;
 * - LOGIN_MAX_FAILURES failed attempts on one email within LOGIN_FAILURE_WINDOW_SECONDS lock
 *   that email for LOGIN_LOCK_SECONDS, doubling at each further lock; a successful login clears it.
 * State is keyed by the email as typed (normalized and hashed), whether or not an account has
 * it, so a lock answers the same for unknown emails and reveals nothing.
 *
 * An attempt is reserved when it is admitted, before the password is hashed, in one atomic step
 * with the lock check: an email has LOGIN_MAX_FAILURES reservations per failure window, so of any
 * number of guesses sent at once at most that many are checked. Failures are counted when they
 * are known; the one that reaches LOGIN_MAX_FAILURES sets the lock. A success clears everything.
 */
export class LoginThrottle {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly config: Pick<Config, 'rateLimits'>,
  ) {}

  /**
   * Refuses with 429 when the client address is over its limit; returns the headers to send.
   * Runs before the request body is read.
   */
  async admitAddress(ip: string | undefined): Promise<Record<string, string>> {
    const { loginPerMinute } = this.config.rateLimits;
    if (ip === undefined || loginPerMinute <= 0) return {};
    const decision = await this.limiter.hit(`login:ip:${ip}`, loginPerMinute, MINUTE_MS);
    if (!decision) return {};
    const headers = rateLimitHeaders(decision);
    if (!decision.allowed) throw tooManyRequests('Too many login attempts from your address; retry later.', decision.resetSeconds, headers);
    return headers;
  }

  /** Refuses with 429 when the email is locked or all its attempts are taken; reserves one. */
  async admit(email: string, headers: Record<string, string> = {}): Promise<Admission> {
    const { loginMaxFailures, loginFailureWindowSeconds, loginLockSeconds } = this.config.rateLimits;
    const key = keys(email);
    if (loginMaxFailures <= 0) {
      const lock = await this.limiter.attempt(() => this.limiter.store.peek(key.lock));
      if (lock) throw lockedOut(lock.resetInMs, headers);
      return { headers };
    }
    const reserved = await this.limiter.attempt(() => this.limiter.store.incrementUnless(key.lock, key.attempts, loginFailureWindowSeconds * 1000));
    if (reserved?.blocked) throw lockedOut(reserved.resetInMs, headers);
    // Every reservation is held by attempts still being checked or failed: a lock is near.
    if (reserved && reserved.count > loginMaxFailures) throw lockedOut(Math.min(reserved.resetInMs, loginLockSeconds * 1000), headers);
    return { headers };
  }

  /** The admitted attempt had a wrong password (or the email has no account). */
  async failed(email: string): Promise<void> {
    const { loginMaxFailures, loginFailureWindowSeconds, loginLockSeconds } = this.config.rateLimits;
    if (loginMaxFailures <= 0) return;
    const { store } = this.limiter;
    const key = keys(email);
    await this.limiter.attempt(async () => {
      const failures = await store.increment(key.failures, loginFailureWindowSeconds * 1000);
      // Exactly one failure reaches the limit: one lock, one doubling.
      if (failures.count !== loginMaxFailures) return;
      const level = await store.increment(key.level, LOCK_LEVEL_TTL_MS);
      const lockMs = loginLockSeconds * 1000 * 2 ** Math.min(level.count - 1, MAX_DOUBLINGS);
      await store.put(key.lock, 1, lockMs);
      await store.delete(key.failures, key.attempts);
    });
  }

  async succeeded(email: string): Promise<void> {
    const key = keys(email);
    await this.limiter.attempt(() => this.limiter.store.delete(key.failures, key.attempts, key.level, key.lock));
  }
}

const lockedOut = (resetInMs: number, headers: Record<string, string>) =>
  tooManyRequests('Too many failed logins for this email; retry later.', resetInMs / 1000, headers);

/** Emails are hashed so that a shared store (Redis) never holds them in clear. */
function keys(email: string) {
  const id = new Bun.CryptoHasher('sha256').update(normalizeEmail(email)).digest('hex').slice(0, 32);
  return { attempts: `login:attempts:${id}`, failures: `login:failures:${id}`, level: `login:level:${id}`, lock: `login:lock:${id}` };
}
