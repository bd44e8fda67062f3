import { Elysia } from 'elysia';
import type { Config } from '../config.ts';
import { INGESTION_PREFIX } from './cors.ts';
import { canonicalOrigin } from '../origins.ts';
import { forbidden } from './problem.ts';
import { pathOf } from './security-headers.ts';

/** The cookie that carries a dashboard session: requests that send it are checked here. */
export const SESSION_COOKIE = 'chatlogger_session';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SESSION_COOKIE_PRESENT = new RegExp(`(?:^|;)\\s*${SESSION_COOKIE}=`);
const BEARER = /^Bearer\s+\S+$/i;

/**
 * The origin the client addressed, scheme and host: the proxy's X-Forwarded-Proto and
 * X-Forwarded-Host when a proxy is trusted. The scheme counts: `http://host` is another origin
 * than `https://host` (a network attacker can serve the first).
 */
function requestOrigin(request: Request, trustProxy: number): { protocol: string; host: string } {
  const url = new URL(request.url);
  const forwarded = (name: string) => (trustProxy > 0 ? request.headers.get(name)?.split(',')[0]?.trim().toLowerCase() : undefined) || undefined;
  const proto = forwarded('x-forwarded-proto');
  return { protocol: proto ? `${proto}:` : url.protocol, host: forwarded('x-forwarded-host') ?? url.host.toLowerCase() };
}

/** Whether the browser says the request was made by another origin than this server's. */
function fromAnotherSite(request: Request, config: Pick<Config, 'trustedOrigins' | 'trustProxy'>): boolean {
  const origin = request.headers.get('origin');
  if (origin !== null) {
    const canonical = canonicalOrigin(origin);
    // `Origin: null` (sandboxed frames, some redirects) is never trusted.
    if (canonical === null) return true;
    if (config.trustedOrigins.includes(canonical)) return false;
    const from = new URL(canonical);
    const addressed = requestOrigin(request, config.trustProxy);
    return from.protocol !== addressed.protocol || from.host !== addressed.host;
  }
  // Without Origin the fetch metadata still tells another site from this one.
  const site = request.headers.get('sec-fetch-site');
  return site === 'cross-site' || site === 'same-site';
}

/**
 * Cross-site request forgery: a state-changing request that a browser authenticated with the
 * session cookie is refused (403) when its `Origin` (or, without one, `Sec-Fetch-Site`) shows
 * another site than this server or TRUSTED_ORIGINS. Bearer tokens and API keys are never sent by
 * a browser on its own, so those requests, and requests without the cookie, are not affected;
 * nor are clients that send neither header (they are not browsers).
 */
export const csrf = (config: Pick<Config, 'trustedOrigins' | 'trustProxy'>) =>
  new Elysia({ name: 'csrf' }).onRequest(({ request }) => {
    if (!STATE_CHANGING.has(request.method) || pathOf(request.url).startsWith(INGESTION_PREFIX)) return;
    if (BEARER.test(request.headers.get('authorization') ?? '')) return;
    if (!SESSION_COOKIE_PRESENT.test(request.headers.get('cookie') ?? '')) return;
    if (fromAnotherSite(request, config)) {
      throw forbidden('Cross-site requests authenticated by the session cookie are refused. Call from this site or a trusted origin, or use a bearer token.');
    }
  });
