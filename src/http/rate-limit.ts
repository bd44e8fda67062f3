import { Elysia } from 'elysia';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { ApiKeyCaller } from '../modules/apikeys/apikeys.service.ts';
import { tooManyRequests } from './problem.ts';
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

const MINUTE_MS = 60_000;

/**
 * `{ ingestRateLimit: true }` on an API-key route: an organization with
 * `settings.ingestRateLimitPerMinute` gets that many requests a minute for all its keys together;
 * otherwise each key gets INGEST_RATE_LIMIT_PER_MINUTE (0 is no limit). It runs after the key is resolved (resolve hooks precede beforeHandle hooks).
 */
export const ingestRateLimit = (config: Config, limiter: RateLimiter) =>
  new Elysia({ name: 'ingest-rate-limit' }).macro({
    ingestRateLimit: {
      async beforeHandle(context) {
        const { tenant, set } = context as typeof context & { tenant?: ApiKeyCaller };
        if (!tenant) return;
        // An organization's own figure caps the organization, however many keys it has; the
        // server's default is a budget per key.
        const own = tenant.ingestRateLimitPerMinute;
        const limit = own ?? config.rateLimits.ingestPerMinute;
        if (limit <= 0) return;
        const counter = own !== null ? `ingest:org:${tenant.organizationId}` : `ingest:${tenant.apiKeyId}`;
        const decision = await limiter.hit(counter, limit, MINUTE_MS);
        if (!decision) return;
        Object.assign(set.headers, rateLimitHeaders(decision));
        if (!decision.allowed) {
          const who = own !== null ? 'This organization' : 'This API key';
          throw tooManyRequests(`${who} may send ${limit} requests a minute; retry after the window resets.`, decision.resetSeconds);
        }
      },
    },
  });
export type IngestRateLimit = ReturnType<typeof ingestRateLimit>;
