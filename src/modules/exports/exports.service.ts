import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { decodeCursor, page } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { notFound } from '../../http/problem.ts';
import { iso } from '../../http/time.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import type { SnapshotFilters } from '../conversations/conversations.repository.ts';
import { Export } from './export.entity.ts';
import { endUserDocument, exportFile } from './formats.ts';
import { snapshotChatMessages, snapshotChats, snapshotMessages, type IsStopped } from './snapshot-reader.ts';

type ExportDto = components['schemas']['Export'];
type ExportCreate = components['schemas']['ExportCreate'];
type ExportFilters = ExportDto['filters'];

export function toExportDto(row: Export, orgSlug: string): ExportDto {
  return {
    id: row.id,
    format: row.format,
    scope: row.scope,
    filters: row.filters as ExportFilters,
    status: row.status,
    snapshotAt: iso(row.snapshotAt),
    createdAt: iso(row.createdAt),
    createdBy: row.createdBy ?? null,
    downloadUrl: `/exports/orgs/${encodeURIComponent(orgSlug)}/${row.id}`,
  };
}

/** Only the filters the contract knows, copied one by one. */
function filtersOf(input: ExportCreate): ExportFilters {
  const filters: ExportFilters = {};
  if (input.from !== undefined) filters.from = input.from;
  if (input.to !== undefined) filters.to = input.to;
  if (input.tags !== undefined && input.tags.length) filters.tags = [...input.tags];
  if (input.externalUserId !== undefined) filters.externalUserId = input.externalUserId;
  return filters;
}

/** Records an export: its snapshot is taken now, so it holds exactly the rows committed before it. */
export async function createExport(em: Em, organizationId: string, input: ExportCreate, actor: Actor): Promise<Export> {
  const filters = filtersOf(input);
  const { snapshot, at } = await conversations.takeSnapshot(em, organizationId);
  return em.transactional(async (tx) => {
    const created = tx.create(Export, {
      organizationId,
      id: Bun.randomUUIDv7(),
      createdBy: actor.id,
      format: input.format,
      scope: input.scope,
      filters,
      snapshot,
      snapshotAt: new Date(at),
    });
    recordAudit(tx, {
      organizationId,
      action: 'export.created',
      actor,
      target: { type: 'export', id: created.id },
      details: { format: input.format, scope: input.scope, filters },
    });
    return created;
  });
}

/** Newest first. Ids are UUIDv7, so their order is the order of creation. */
export async function listExports(em: Em, organizationId: string, query: { limit: number; cursor?: string }) {
  const after = decodeCursor(query.cursor, 1, ([id]) => isUuid(id!));
  const { limit } = query;
  const rows = await em.find(Export, { organizationId, ...(after ? { id: { $lt: after[0]! } } : {}) }, { orderBy: { id: 'desc' }, limit: limit + 1 });
  return page(rows, limit, (row) => [row.id]);
}

/** An export of the organization; anything else (a malformed id included) is a 404. */
export async function findExport(em: Em, organizationId: string, exportId: string): Promise<Export> {
  const row = isUuid(exportId) ? await em.findOne(Export, { organizationId, id: exportId.toLowerCase() }) : null;
  if (!row) throw notFound('export');
  return row;
}

// ---- the files ---------------------------------------------------------------------------------

/** An export's file, chunk by chunk, read from its snapshot until `isStopped()`. */
export function exportChunks(em: Em, row: Export, isStopped: IsStopped): AsyncGenerator<string> {
  const filters = row.filters as SnapshotFilters;
  const pages =
    row.scope === 'chats'
      ? snapshotChats(em, row.organizationId, row.snapshot, filters, isStopped)
      : snapshotMessages(em, row.organizationId, row.snapshot, filters, isStopped);
  return exportFile(row.format, row.scope, pages);
}

/**
 * Everything stored about one end user, as one JSON document read chat by chat from a snapshot
 * taken now, so the document is consistent even while the end user keeps chatting. The audit
 * event commits before this returns, so before the first byte leaves.
 */
export async function endUserExport(em: Em, organizationId: string, externalUserId: string, actor: Actor) {
  const { snapshot, at } = await conversations.takeSnapshot(em, organizationId);
  recordAudit(em, {
    organizationId,
    action: 'enduser.exported',
    actor,
    target: { type: 'endUser', id: externalUserId },
  });
  await em.flush();
  return {
    exportedAt: iso(at),
    chunks: (isStopped: IsStopped) =>
      endUserDocument(
        externalUserId,
        iso(at),
        snapshotChats(em, organizationId, snapshot, { externalUserId }, isStopped),
        (chatId) => snapshotChatMessages(em, organizationId, chatId, snapshot, isStopped),
      ),
  };
}
