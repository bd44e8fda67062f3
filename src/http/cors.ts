import { Elysia } from 'elysia';
import type { Config } from '../config.ts';
import { canonicalOrigin } from '../origins.ts';
import { forbidden } from './problem.ts';
import { pathOf } from './security-headers.ts';

export const INGESTION_PREFIX = '/api/v1/';
/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE = '600';
const EXPOSED = 'retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id';

/** Whether an API key with these allowed origins accepts a request from `origin` (empty: any). */
export function keyAcceptsOrigin(allowedOrigins: readonly string[], origin: string): boolean {
  if (!allowedOrigins.length) return true;
  const canonical = canonicalOrigin(origin);
  return canonical !== null && allowedOrigins.includes(canonical);
}

/**
 * For an ingestion request carrying `Origin`: refuses it (403) when the key does not accept the
 * origin, else returns the CORS headers of the answer. Requests without `Origin` are not
 * browsers' cross-origin calls and are never refused.
 */
export function ingestionCors(allowedOrigins: readonly string[], origin: string | undefined): Record<string, string> {
  if (origin === undefined) return {};
  if (!keyAcceptsOrigin(allowedOrigins, origin)) throw forbidden(`This API key does not accept requests from the origin ${origin}.`);
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED };
}

function isTrusted(config: Pick<Config, 'trustedOrigins'>, origin: string): boolean {
  const canonical = canonicalOrigin(origin);
  return canonical !== null && config.trustedOrigins.includes(canonical);
}

/**
 * The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method).
 *
 * On ingestion routes it is the same for every organization and origin, known or not: a preflight
 * carries no key, so anything it answered from the keys would tell an anonymous caller which
 * organizations exist and let it guess a restricted key's origins. The browser then sends the
 * request itself, and that is refused (403, no CORS headers) unless its own key accepts the origin.
 */
async function preflight(config: Pick<Config, 'trustedOrigins'>, request: Request, origin: string): Promise<Response> {
  const path = pathOf(request.url);
  if (path.startsWith(INGESTION_PREFIX)) {
    return new Response(null, {
      status: 204,
      headers: {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type, x-organization-api-key, x-request-id',
        'access-control-max-age': PREFLIGHT_MAX_AGE,
      },
    });
  }
  if (!isTrusted(config, origin)) throw forbidden('The dashboard API accepts cross-origin requests only from TRUSTED_ORIGINS.');
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
      'access-control-allow-headers': 'content-type, authorization, x-request-id',
      'access-control-max-age': PREFLIGHT_MAX_AGE,
    },
  });
}

/**
 * Cross-origin access:
 * - Ingestion routes: a browser may call them from the origins their API key accepts (checked
 *   with the key, see `ingestionCors`). A preflight carries no key, so it answers the same for
 *   every slug and origin; the request itself is then held to its own key.
 * - Everything else (the dashboard API): only TRUSTED_ORIGINS get CORS headers, with credentials.
 * Preflights are answered before routing (they are not operations of the contract); an OPTIONS
 * request that is not a preflight is routed like any other (404). Every answer varies by `Origin`.
 */
export const cors = (config: Pick<Config, 'trustedOrigins'>) =>
  new Elysia({ name: 'cors' }).onRequest(({ request, set }) => {
    set.headers.vary = 'Origin';
    const origin = request.headers.get('origin');
    if (origin === null) return;
    if (request.method === 'OPTIONS' && request.headers.has('access-control-request-method')) return preflight(config, request, origin);
    if (!pathOf(request.url).startsWith(INGESTION_PREFIX) && isTrusted(config, origin)) {
      Object.assign(set.headers, {
        'access-control-allow-origin': origin,
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': `${EXPOSED}, content-disposition`,
      });
    }
  });
