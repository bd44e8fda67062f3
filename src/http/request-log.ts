import { Elysia } from 'elysia';
import type { Logger } from '../logger.ts';

/** One line per request: method, route template, status and duration; never bodies or credentials. */
export const requestLog = (log: Logger) =>
  new Elysia({ name: 'request-log' })
    .derive({ as: 'global' }, () => ({ startedAt: performance.now() }))
    .onAfterResponse({ as: 'global' }, ({ request, route, set, startedAt, responseValue }) => {
      if (!log.isLevelEnabled('info')) return;
      const status = responseValue instanceof Response ? responseValue.status : Number(set.status ?? 200);
      log.info({
        method: request.method,
        route: route || new URL(request.url).pathname,
        status,
        ms: startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 100) / 100,
      });
    });
