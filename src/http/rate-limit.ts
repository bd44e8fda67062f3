import type { Logger } from '../logger.ts';
import type { RateLimitStore } from './rate-limit-store.ts';

export interface LimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window closes and the count starts over. */
  resetSeconds: number;
}

/** How often the "limits are not enforced" warning repeats while the store stays down. */
const WARN_EVERY_MS = 60_000;

/**
 * Fixed-window counters over a store that may fail. A failing store never fails a request: the
 * limit is skipped (fail open) and a warning is logged, at most once a minute.
 */
export class RateLimiter {
  private failingSince: number | undefined;
  private lastWarning = 0;

  constructor(
    readonly store: RateLimitStore,
    private readonly log: Logger,
  ) {}

  /** Counts one hit of `key`; null when the store could not be asked. */
  async hit(key: string, limit: number, windowMs: number): Promise<LimitDecision | null> {
    const counted = await this.attempt(() => this.store.increment(key, windowMs));
    if (!counted) return null;
    return {
      allowed: counted.count <= limit,
      limit,
      remaining: Math.max(0, limit - counted.count),
      resetSeconds: Math.max(1, Math.ceil(counted.resetInMs / 1000)),
    };
  }

  /** Runs a store operation; on failure logs and answers undefined. */
  async attempt<T>(operation: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await operation();
      if (this.failingSince !== undefined) {
        this.log.info({ downMs: Date.now() - this.failingSince }, 'rate-limit store reachable again; limits are enforced');
        this.failingSince = undefined;
      }
      return result;
    } catch (error) {
      const now = Date.now();
      this.failingSince ??= now;
      if (now - this.lastWarning >= WARN_EVERY_MS) {
        this.lastWarning = now;
        this.log.warn({ err: error }, 'rate-limit store unreachable; requests are let through without limits');
      }
      return undefined;
    }
  }
}

/** The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), as separate fields. */
export function rateLimitHeaders(decision: LimitDecision): Record<string, string> {
  return {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(decision.resetSeconds),
  };
}
