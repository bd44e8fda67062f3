import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import type { Config } from '../../config.ts';
import { DownloadSlots } from './download-slots.ts';
import { pullStream } from '../../http/stream.ts';
import { iso } from '../../http/time.ts';
import { createExport, endUserExport, exportChunks, findExport, listExports, toExportDto } from './exports.service.ts';
import { CONTENT_TYPES } from './formats.ts';

/** A streamed download, never built in memory nor kept by a cache. */
const download = (body: ReadableStream<Uint8Array>, contentType: string, filename: string) =>
  new Response(body, {
    status: 200,
    headers: {
      'content-type': contentType,
      'content-disposition': `attachment; filename="${filename}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    },
  });

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
        return downloads.stream(org.id, request.signal, () =>
          download(
            pullStream((isStopped) => exportChunks(em, row, isStopped), request.signal),
            CONTENT_TYPES[row.format],
            `chatlogger-${row.scope}-${iso(row.createdAt).slice(0, 10)}.${row.format}`,
          ),
        );
      },
      { session: 'user', operation: 'downloadExport' },
    )
    .get(
      '/orgs/:org/end-users/:externalUserId/export',
      async ({ em, org, caller, params, request }) =>
        downloads.stream(org.id, request.signal, async () => {
          const { exportedAt, chunks } = await endUserExport(em, org.id, params.externalUserId, caller.user);
          return download(pullStream(chunks, request.signal), 'application/json; charset=utf-8', `chatlogger-enduser-${exportedAt.slice(0, 10)}.json`);
        }),
      { session: 'admin', operation: 'exportEndUser' },
    );
};
