import { Elysia } from 'elysia';
import type { Config } from '../config.ts';

/** Everything that is not a page is data: nothing in it may load, run or be framed. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

interface PagePolicy {
  /** Matches the prefix itself and every path below it (`/app`, `/app/...`, not `/apps`). */
  prefix: string;
  csp: string;
  /**
   * The page has inline `<script>`/`<style>` elements that it cannot do without (Swagger UI's
   * generated page); they are allowed by their SHA-256, so nothing else inline can run.
   */
  hashInline?: boolean;
}

/** The pages the server renders, and what each may load. Add a row for a new page. */
export const PAGE_POLICIES: PagePolicy[] = [
  {
    prefix: '/swagger',
    csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    hashInline: true,
  },
  {
    prefix: '/app',
    csp: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  },
];

const HSTS = 'max-age=31536000';

function policyFor(path: string): PagePolicy | undefined {
  return PAGE_POLICIES.find(({ prefix }) => path === prefix || path.startsWith(prefix + '/'));
}

export function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

const INLINE = /<(script|style)(\s[^>]*)?>([\s\S]*?)<\/\1>/gi;

/** The policy with the hash of each non-empty inline script and style of `html` added. */
function withInlineHashes(csp: string, html: string): string {
  const sources: Record<string, Set<string>> = { script: new Set(), style: new Set() };
  for (const [, tag, attributes, body] of html.matchAll(INLINE)) {
    if (/\ssrc\s*=/i.test(attributes ?? '') || !body!.trim()) continue;
    sources[tag!.toLowerCase()]!.add(`'sha256-${new Bun.CryptoHasher('sha256').update(body!).digest('base64')}'`);
  }
  return csp
    .split(';')
    .map((directive) => {
      const name = directive.trim().split(/\s+/)[0]!;
      const kind = name === 'script-src' ? 'script' : name === 'style-src' ? 'style' : undefined;
      return kind && sources[kind]!.size ? `${directive} ${[...sources[kind]!].join(' ')}` : directive;
    })
    .join(';');
}

const isHttps = (request: Request) => request.url.startsWith('https:') || request.headers.get('x-forwarded-proto') === 'https';

/**
 * Headers for every response, errors and 404s included: no sniffing, no referrer, no framing, a
 * Content-Security-Policy per path (PAGE_POLICIES, else the API's), HSTS over HTTPS and in
 * production, and same-origin resource policy. Bun and Elysia add no Server or X-Powered-By.
 */
export const securityHeaders = (config: Pick<Config, 'env'>) => {
  const hashed = new Map<string, string>();
  return new Elysia({ name: 'security-headers' })
    .onRequest(({ request, set }) => {
      const path = pathOf(request.url);
      Object.assign(set.headers, {
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
        'cross-origin-resource-policy': 'same-origin',
        'content-security-policy': policyFor(path)?.csp ?? API_CSP,
      });
      if (config.env === 'production' || isHttps(request)) set.headers['strict-transport-security'] = HSTS;
    })
    .onAfterHandle({ as: 'global' }, async ({ request, responseValue, set }) => {
      const path = pathOf(request.url);
      const policy = policyFor(path);
      if (!policy?.hashInline) return;
      // A route given a static Response (as the Swagger UI plugin does) is served by Elysia as
      // `() => response.clone()`.
      const response = typeof responseValue === 'function' ? (responseValue as () => unknown)() : responseValue;
      if (!(response instanceof Response) || !response.headers.get('content-type')?.startsWith('text/html')) return;
      let csp = hashed.get(path);
      if (csp === undefined) {
        csp = withInlineHashes(policy.csp, await response.clone().text());
        hashed.set(path, csp);
      }
      set.headers['content-security-policy'] = csp;
    });
};
