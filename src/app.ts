import { Elysia } from 'elysia';
import type { Config } from './config.ts';
import type { Database } from './db/orm.ts';
import type { Logger } from './logger.ts';
import { auth } from './http/auth.ts';
import { jsonBody } from './http/body.ts';
import { requestContext } from './http/context.ts';
import { problems } from './http/problem.ts';
import { requestLog } from './http/request-log.ts';
import { systemRoutes } from './modules/system/system.routes.ts';
import { ingestionRoutes } from './modules/ingestion/ingestion.routes.ts';
import { authRoutes } from './modules/auth/auth.routes.ts';
import { userRoutes } from './modules/users/users.routes.ts';
import { orgRoutes } from './modules/orgs/orgs.routes.ts';
import { apiKeyRoutes } from './modules/apikeys/apikeys.routes.ts';
import { chatRoutes } from './modules/chats/chats.routes.ts';
import { auditRoutes } from './modules/audit/audit.routes.ts';
import { endUserRoutes } from './modules/lifecycle/end-users.routes.ts';
import { exportRoutes } from './modules/exports/exports.routes.ts';
import { analyticsRoutes } from './modules/analytics/analytics.routes.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  log: Logger;
}

/** Builds the HTTP application without listening, so tests drive it through `app.handle`. */
export function createApp({ config, db, log }: AppDeps) {
  const context = requestContext(db);
  const authn = auth(config, context);
  return new Elysia()
    .use(requestLog(log))
    .use(problems(log))
    .use(jsonBody(config.maxBodyBytes))
    .use(systemRoutes(config, db))
    .use(ingestionRoutes(authn))
    .use(authRoutes(config, authn))
    .use(userRoutes(authn))
    .use(orgRoutes(authn))
    .use(apiKeyRoutes(authn))
    .use(chatRoutes(authn))
    .use(auditRoutes(authn))
    .use(endUserRoutes(authn))
    .use(exportRoutes(authn))
    .use(analyticsRoutes(authn));
}
export type App = ReturnType<typeof createApp>;
