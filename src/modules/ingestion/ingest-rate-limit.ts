import { Elysia } from 'elysia';
import type { Config } from '../../config.ts';
import { tooManyRequests } from '../../http/problem.ts';
import { rateLimitHeaders, type RateLimiter } from '../../http/rate-limit.ts';
import type { ApiKeyCaller } from '../apikeys/apikeys.service.ts';

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
