import { Elysia } from 'elysia';
import type { Auth } from '../../http/auth.ts';
import { contract, queryOf, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import type { Config } from '../../config.ts';
import { DownloadSlots } from './download-slots.ts';
import { createExport, endUserExport, exportResponse, findExport, listExports, toExportDto } from './exports.service.ts';

/** Snapshot exports of an organization's chats and messages, and the data-subject export of one end user. */
export const exportRoutes = (auth: Auth, config: Pick<Config, 'exportMaxConcurrentPerOrg'>) => {
  const downloads = new DownloadSlots(config.exportMaxConcurrentPerOrg);
  return new Elysia({ name: 'export-routes' })
    .use(auth)
    .use(contract)
    .post(
      '/exports/orgs/:org',
      async ({ em, org, caller, body, set }) => {
        const row = await createExport(em, org.id, body as RequestBody<'createExport'>, caller.user);
        set.status = 201;
        return toExportDto(row, org.slug) satisfies components['schemas']['Export'];
      },
      { session: 'user', operation: 'createExport' },
    )
    .get(
      '/exports/orgs/:org',
      async ({ em, org, query }) => {
        const { items, nextCursor } = await listExports(em, org.id, queryOf('listExports', query));
        return { items: items.map((row) => toExportDto(row, org.slug)), nextCursor } satisfies components['schemas']['ExportList'];
      },
      { session: 'user', operation: 'listExports' },
    )
    .get(
      '/exports/orgs/:org/:exportId',
      async ({ em, org, params, request }) => {
        const row = await findExport(em, org.id, params.exportId);
        return downloads.stream(org.id, request.signal, () => exportResponse(em, row, request.signal));
      },
      { session: 'user', operation: 'downloadExport' },
    )
    .get(
      '/orgs/:org/end-users/:externalUserId/export',
      async ({ em, org, caller, params, request }) =>
        downloads.stream(org.id, request.signal, () => endUserExport(em, org.id, params.externalUserId, caller.user, request.signal)),
      { session: 'admin', operation: 'exportEndUser' },
    );
};
