import { Elysia } from 'elysia';
import type { Config } from './config.ts';
import type { Database } from './db/orm.ts';
import type { Logger } from './logger.ts';
import { auth } from './modules/auth/auth.plugin.ts';
import { jsonBody } from './http/body.ts';
import { pathParams } from './http/path-params.ts';
import { requestContext } from './http/context.ts';
import { problems } from './http/problem.ts';
import { allowedMethods } from './http/contract.ts';
import { requestLog } from './http/request-log.ts';
import { securityHeaders } from './http/security-headers.ts';
import { headerLimit } from './http/header-limit.ts';
import { cors } from './http/cors.ts';
import { csrf } from './http/csrf.ts';
import { RateLimiter } from './http/rate-limit.ts';
import { ingestRateLimit } from './modules/ingestion/ingest-rate-limit.ts';
import { createRateLimitStore, type RateLimitStore } from './http/rate-limit-store.ts';
import { LoginThrottle } from './modules/auth/login-throttle.ts';
import { metricsRoutes } from './http/metrics.ts';
import type { Tracing } from './http/tracing.ts';
import { systemRoutes } from './modules/system/system.routes.ts';
import { ingestionRoutes } from './modules/ingestion/ingestion.routes.ts';
import { ingestWriters, type IngestWriters } from './modules/ingestion/writers.ts';
import { otelRoutes } from './modules/otel/otel.routes.ts';
import { authRoutes } from './modules/auth/auth.routes.ts';
import { userRoutes } from './modules/users/users.routes.ts';
import { orgRoutes } from './modules/orgs/orgs.routes.ts';
import { apiKeyRoutes } from './modules/apikeys/apikeys.routes.ts';
import { chatRoutes } from './modules/chats/chats.routes.ts';
import { auditRoutes } from './modules/audit/audit.routes.ts';
import { endUserRoutes } from './modules/lifecycle/end-users.routes.ts';
import { exportRoutes } from './modules/exports/exports.routes.ts';
import { analyticsRoutes } from './modules/analytics/analytics.routes.ts';
import { webRoutes } from './modules/web/web.routes.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  log: Logger;
  /** The group-commit writers; main.ts passes its own so it can drain them on shutdown. */
  writers?: IngestWriters;
  /** Rate-limit counters: in memory, or in Redis with REDIS_URL; tests pass a shared one. */
  rateLimitStore?: RateLimitStore;
  /** Request spans, when OTEL_EXPORTER_OTLP_ENDPOINT is set (see `startTracing`). */
  tracing?: Tracing;
}

/** Builds the HTTP application without listening, so tests drive it through `app.handle`. */
export function createApp({ config, db, log, tracing, writers = ingestWriters(db, config.ingestGroup), rateLimitStore = createRateLimitStore(config) }: AppDeps) {
  const context = requestContext(db);
  const authn = auth(config, context);
  const limiter = new RateLimiter(rateLimitStore, log);
  const rateLimit = ingestRateLimit(config, limiter);
  return new Elysia()
    .use(requestLog(log))
    .use(tracing?.plugin ?? new Elysia({ name: 'request-tracing' }))
    .use(problems(log, allowedMethods))
    .use(securityHeaders(config))
    .use(headerLimit(config.maxHeaderBytes))
    .use(cors(config))
    .use(csrf(config))
    // Global hooks apply to the routes registered after them. The system routes come before the
    // request context (its entity manager), which the OTLP route brings; OTLP bodies (protobuf,
    // gzip) are read by their route after authentication, so it comes before the JSON parser.
    .use(systemRoutes(config, db))
    .use(metricsRoutes(config))
    .use(otelRoutes(config, authn, rateLimit))
    .use(jsonBody(config.maxBodyBytes))
    .use(pathParams)
    .use(ingestionRoutes(authn, writers, rateLimit))
    .use(authRoutes(config, authn, new LoginThrottle(limiter, config)))
    .use(userRoutes(authn))
    .use(orgRoutes(authn))
    .use(apiKeyRoutes(authn))
    .use(chatRoutes(authn))
    .use(auditRoutes(authn))
    .use(endUserRoutes(authn))
    .use(exportRoutes(authn, config))
    .use(analyticsRoutes(authn))
    .use(webRoutes(log));
}
export type App = ReturnType<typeof createApp>;
