import { Elysia } from 'elysia';
import { openapi } from '@elysiajs/openapi';
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' };
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' };
import type { Config } from '../../config.ts';
import type { Database } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import { spec, specYaml } from '../../http/contract.ts';
import { problemResponse, unavailable } from '../../http/problem.ts';
import type { components } from '../../generated/openapi.ts';

const READY_TIMEOUT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);
}

/** Liveness, readiness, build information and the contract itself (raw and in Swagger UI). */
export const systemRoutes = (config: Config, db: Database) =>
  new Elysia({ name: 'system-routes' })
    .get('/health', () => ({ status: 'ok' }) satisfies components['schemas']['Health'])
    .get('/ready', async () => {
      try {
        const pending = await withTimeout(
          (async () => {
            await query(db.fork(), 'select 1', []);
            return db.pendingMigrations();
          })(),
          READY_TIMEOUT_MS,
        );
        if (pending.length) return problemResponse(unavailable(`${pending.length} migration(s) not applied yet.`));
      } catch {
        return problemResponse(unavailable('The database is not reachable.'));
      }
      return { status: 'ready', database: db.kind } satisfies components['schemas']['Readiness'];
    })
    .get('/version', () => config.version satisfies components['schemas']['Version'])
    .get('/openapi.yaml', () => new Response(specYaml, { headers: { 'content-type': 'application/yaml; charset=utf-8' } }))
    .get('/swagger/assets/swagger-ui-bundle.js', () => new Response(Bun.file(swaggerBundle), { headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=86400' } }))
    .get('/swagger/assets/swagger-ui.css', () => new Response(Bun.file(swaggerCss), { headers: { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=86400' } }))
    .use(
      openapi({
        provider: 'swagger-ui',
        path: '/swagger',
        specPath: '/openapi.json',
        openapiVersion: spec.openapi as `3.1.${number}`,
        documentation: spec as never,
        swagger: { cdn: '/swagger/assets/swagger-ui-bundle.js', theme: '/swagger/assets/swagger-ui.css', version: 'bundled' },
      }),
    );
