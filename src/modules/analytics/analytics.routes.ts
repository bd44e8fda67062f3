import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { analyticsSummary, analyticsTimeseries, resolveRange } from './analytics.service.ts';

/** Usage figures of an organization for the dashboard (any role). */
export const analyticsRoutes = (auth: Auth) =>
  new Elysia({ name: 'analytics-routes', prefix: '/analytics/orgs/:org' })
    .use(auth)
    .use(contract)
    .get(
      '/summary',
      async ({ em, org, query }) => {
        const range = await resolveRange(em, queryOf('getAnalyticsSummary', query));
        return (await analyticsSummary(em, org.id, range)) satisfies components['schemas']['AnalyticsSummary'];
      },
      { session: 'viewer', operation: 'getAnalyticsSummary' },
    )
    .get(
      '/timeseries',
      async ({ em, org, query }) => {
        const q = queryOf('getAnalyticsTimeseries', query);
        const range = await resolveRange(em, q);
        return (await analyticsTimeseries(em, org.id, range, q.metric, q.interval ?? 'day')) satisfies components['schemas']['AnalyticsTimeseries'];
      },
      { session: 'viewer', operation: 'getAnalyticsTimeseries' },
    );
