import { Elysia } from 'elysia';
import type { Logger } from '../../logger.ts';
import { HttpError, notFound } from '../../http/problem.ts';
import { webBundle, type WebBundle, type WebFile } from './web.bundle.ts';

/** Asset names carry their content hash: a changed file is a new URL. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html names the current assets, so it is revalidated on every visit. */
const REVALIDATE = 'no-cache';

const notBuilt = () => new HttpError(503, 'unavailable', 'Service Unavailable', 'The dashboard is not available; the server log says why.');

type Context = { request: Request; set: { headers: Record<string, unknown> } };

function send(file: WebFile, { request, set }: Context, cacheControl: string): Response {
  // Keeps what other plugins vary on (Origin) next to the encoding.
  const vary = [set.headers.vary, 'Accept-Encoding'].filter(Boolean).join(', ');
  const headers: Record<string, string> = { 'content-type': file.type, 'cache-control': cacheControl, etag: file.etag, vary };
  if (request.headers.get('if-none-match') === file.etag) return new Response(null, { status: 304, headers });
  if (/\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')) {
    return new Response(file.gzip, { headers: { ...headers, 'content-encoding': 'gzip' } });
  }
  return new Response(file.body, { headers });
}

/**
 * The dashboard: `/app` and every path below it answer index.html (the client routes), hashed
 * assets live under `/app/assets/`. `/` leads there. The bundle is loaded when the app is built,
 * so the first visit does not wait for it.
 */
export const webRoutes = (log: Logger, loading: Promise<WebBundle> = webBundle(log)) => {
  // A failure is logged once by webBundle; each request then answers 503.
  loading.catch(() => {});
  const ready = async (): Promise<WebBundle> => {
    try {
      return await loading;
    } catch {
      throw notBuilt();
    }
  };
  const page = async (context: Context) => send((await ready()).index, context, REVALIDATE);
  // HTML pages, not API operations: kept out of the generated OpenAPI document.
  const hidden = { detail: { hide: true } };
  return new Elysia({ name: 'web-routes' })
    .get('/', () => new Response(null, { status: 302, headers: { location: '/app' } }), hidden)
    .get('/app', page, hidden)
    .get(
      '/app/assets/:file',
      async ({ params, request, set }) => {
        const file = (await ready()).assets.get(params.file);
        if (!file) throw notFound('asset');
        return send(file, { request, set }, IMMUTABLE);
      },
      hidden,
    )
    .get('/app/*', page, hidden);
};
