import { Elysia } from 'elysia';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.ts';
import { HttpError, notFound, problemResponse, unauthorized } from './problem.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from '../observability/metrics.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares digests, so neither the token's content nor its length shows in the timing. */
function bearerMatches(authorization: string | null, token: string): boolean {
  const presented = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  return presented !== undefined && timingSafeEqual(digest(presented), digest(token));
}

async function metricsResponse(): Promise<Response> {
  return new Response(await renderMetrics(), { headers: { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' } });
}

/**
 * `GET /metrics` on the main port, only when METRICS_TOKEN is set, for `Authorization: Bearer
 * <token>`. Without a token the route does not exist there (404): the figures describe every
 * tenant's traffic, so they are never public.
 */
export const metricsRoutes = (config: Pick<Config, 'metricsToken'>) => {
  const app = new Elysia({ name: 'metrics-routes' });
  const token = config.metricsToken;
  if (token === undefined) return app;
  return app.get('/metrics', ({ request }) => {
    if (!bearerMatches(request.headers.get('authorization'), token)) {
      return problemResponse(unauthorized('GET /metrics needs the METRICS_TOKEN as Authorization: Bearer <token>.'));
    }
    return metricsResponse();
  });
};

/**
 * The METRICS_PORT listener: `/metrics` and nothing else, without credentials, so it belongs on
 * an interface only the scraper reaches (METRICS_HOST, by default 127.0.0.1).
 */
export function startMetricsServer(config: Pick<Config, 'metricsHost'> & { metricsPort: number }) {
  return Bun.serve({
    port: config.metricsPort,
    hostname: config.metricsHost,
    development: false,
    fetch(request) {
      const { pathname } = new URL(request.url);
      if (pathname !== '/metrics') return problemResponse(notFound('route'));
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return problemResponse(new HttpError(405, 'method-not-allowed', 'Method Not Allowed', 'Only GET /metrics is served here.', undefined, { allow: 'GET, HEAD' }));
      }
      return metricsResponse();
    },
  });
}
