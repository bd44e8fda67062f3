import { Elysia } from 'elysia';
import { unredacted, type Logger } from '../logger.ts';
import { metrics, observeRequest } from '../observability/metrics.ts';
import { toHttpError } from './problem.ts';
import { requestId, requestIdOf } from './request-id.ts';

const startedAt = new WeakMap<Request, number>();
/** The problem type a failed request was answered with, for the rejection counter. */
const problemTypes = new WeakMap<Request, string>();

/** Ingestion routes that carry messages, whose refusals `chatlogger_ingest_messages_rejected_total` counts. */
const MESSAGE_ROUTES = new Set(['/api/v1/orgs/:slug/chats/:chatId/messages', '/api/v1/orgs/:slug/chats/:chatId/messages/batch']);

function elapsed(request: Request): number | undefined {
  const start = startedAt.get(request);
  return start === undefined ? undefined : Math.round((performance.now() - start) * 100) / 100;
}

function messageCount(body: unknown): number {
  const messages = (body as { messages?: unknown } | undefined)?.messages;
  return Array.isArray(messages) && messages.length > 0 ? messages.length : 1;
}

/** The organization the request acted for, once authentication resolved it. */
function organizationOf(context: object): string | undefined {
  const { tenant, org } = context as { tenant?: { organizationId?: string }; org?: { id?: string } };
  return tenant?.organizationId ?? org?.id;
}

/**
 * One line per request (request id, method, route template, status, duration, organization) and
 * the HTTP metrics; never bodies, headers or credentials.
 */
export const requestLog = (log: Logger) => {
  // These lines carry only the fixed fields below, none of them secret: they skip the logger's
  // wildcard redaction, which costs more than writing the line itself.
  const lines = unredacted(log);
  return new Elysia({ name: 'request-log' })
    .use(requestId())
    .onRequest(({ request }) => {
      startedAt.set(request, performance.now());
    })
    // Runs before the problems plugin renders the error (it answers nothing itself).
    .onError({ as: 'global' }, ({ request, error, code }) => {
      problemTypes.set(request, toHttpError(error, code).type);
    })
    .onAfterResponse({ as: 'global' }, (context) => {
      const { request, route, set, responseValue } = context;
      // The template, not the path: paths carry tenants' slugs and ids.
      const template = route || 'unmatched';
      const status = responseValue instanceof Response ? responseValue.status : Number(set.status ?? 200);
      const ms = elapsed(request);
      observeRequest(request.method, template, status, ms);
      if (status >= 400 && MESSAGE_ROUTES.has(template)) {
        metrics.messagesRejected.inc({ reason: problemTypes.get(request) ?? 'unknown', status: String(status) }, messageCount(context.body));
      }
      if (!lines.isLevelEnabled('info')) return;
      lines.info({
        requestId: requestIdOf(request),
        method: request.method,
        route: template,
        status,
        ms,
        organizationId: organizationOf(context),
      });
    });
};
