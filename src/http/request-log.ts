import { Elysia } from 'elysia';
import type { Logger } from '../logger.ts';

const startedAt = new WeakMap<Request, number>();

function elapsed(request: Request): number | undefined {
  const start = startedAt.get(request);
  return start === undefined ? undefined : Math.round((performance.now() - start) * 100) / 100;
}

/** One line per request: method, route template, status and duration; never bodies or credentials. */
export const requestLog = (log: Logger) =>
  new Elysia({ name: 'request-log' })
    .onRequest(({ request }) => {
      startedAt.set(request, performance.now());
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      if (!log.isLevelEnabled('info')) return;
      log.info({
        method: request.method,
        // The template, not the path: paths carry tenants' slugs and ids.
        route: route || 'unmatched',
        status: responseValue instanceof Response ? responseValue.status : Number(set.status ?? 200),
        ms: elapsed(request),
      });
    });
