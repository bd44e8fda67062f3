import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { listAuditEvents, toAuditEventDto } from './audit.service.ts';

export const auditRoutes = (auth: Auth) =>
  new Elysia({ name: 'audit-routes' })
    .use(auth)
    .use(contract)
    .get(
      '/orgs/:org/audit',
      async ({ em, org, query }) => {
        const { items, nextCursor } = await listAuditEvents(em, org.id, queryOf('listAuditEvents', query));
        return { items: items.map(toAuditEventDto), nextCursor } satisfies components['schemas']['AuditEventList'];
      },
      { session: 'admin', operation: 'listAuditEvents' },
    );
