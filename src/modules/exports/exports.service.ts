import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { decodeCursor, page, type TimeIdKey } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { notFound } from '../../http/problem.ts';
import { iso } from '../../http/time.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import { DEFAULT_PAGE_SIZE } from '../chats/chats.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import type { Keyed, SnapshotFilters } from '../conversations/conversations.repository.ts';
import { Export, type EXPORT_FORMATS } from './export.entity.ts';

type ExportDto = components['schemas']['Export'];
type ExportCreate = components['schemas']['ExportCreate'];
type ExportFilters = ExportDto['filters'];
type ChatDto = components['schemas']['Chat'];
type MessageDto = components['schemas']['Message'];
type Format = (typeof EXPORT_FORMATS)[number];

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
export async function listExports(em: Em, organizationId: string, query: { limit?: number; cursor?: string }) {
  const after = decodeCursor(query.cursor, 1, ([id]) => isUuid(id!));
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  const rows = await em.find(Export, { organizationId, ...(after ? { id: { $lt: after[0]! } } : {}) }, { orderBy: { id: 'desc' }, limit: limit + 1 });
  return page(rows, limit, (row) => [row.id]);
}

/** An export of the organization; anything else (a malformed id included) is a 404. */
export async function findExport(em: Em, organizationId: string, exportId: string): Promise<Export> {
  const row = isUuid(exportId) ? await em.findOne(Export, { organizationId, id: exportId.toLowerCase() }) : null;
  if (!row) throw notFound('export');
  return row;
}

// ---- reading a snapshot, page by page ------------------------------------------------------------

/** Rows per database round trip while streaming. */
export const EXPORT_PAGE_SIZE = 1000;

/**
 * Counts the page queries of streamed exports, so tests can prove that a cancelled download
 * stops reading the database.
 */
export const exportReads = { queries: 0 };

type PageReader<T> = (em: Em, after: TimeIdKey | undefined, limit: number) => Promise<Keyed<T>[]>;

/** Every page runs on a fresh fork: nothing accumulates while a file streams. */
async function* pages<T>(em: Em, read: PageReader<T>, isStopped: () => boolean): AsyncGenerator<T[]> {
  let after: TimeIdKey | undefined;
  while (!isStopped()) {
    exportReads.queries += 1;
    const rows = await read(em.fork(), after, EXPORT_PAGE_SIZE);
    if (rows.length) yield rows.map((row) => row.item);
    if (rows.length < EXPORT_PAGE_SIZE) return;
    after = rows[rows.length - 1]!.key;
  }
}

const snapshotChats = (em: Em, organizationId: string, snapshot: string, filters: SnapshotFilters, isStopped: () => boolean) =>
  pages<ChatDto>(em, (fork, after, limit) => conversations.snapshotChats(fork, organizationId, snapshot, filters, after, limit), isStopped);

const snapshotMessages = (em: Em, organizationId: string, snapshot: string, filters: SnapshotFilters, isStopped: () => boolean) =>
  pages<MessageDto>(em, (fork, after, limit) => conversations.snapshotMessages(fork, organizationId, snapshot, filters, after, limit), isStopped);

const snapshotChatMessages = (em: Em, organizationId: string, chatId: string, snapshot: string, isStopped: () => boolean) =>
  pages<MessageDto>(em, (fork, after, limit) => conversations.snapshotChatMessages(fork, organizationId, chatId, snapshot, after, limit), isStopped);

// ---- file formats --------------------------------------------------------------------------------

interface Column<T> {
  name: string;
  value: (dto: T) => string | number | null;
  /** Free text a user or a client wrote: guarded against spreadsheet formulas. */
  freeText?: boolean;
}

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

export const CHAT_COLUMNS: Column<ChatDto>[] = [
  { name: 'chatId', value: (c) => c.id },
  { name: 'title', value: (c) => c.title, freeText: true },
  { name: 'tags', value: (c) => JSON.stringify(c.tags), freeText: true },
  { name: 'externalUserId', value: (c) => c.externalUserId, freeText: true },
  { name: 'source', value: (c) => c.source, freeText: true },
  { name: 'createdAt', value: (c) => c.createdAt },
  { name: 'updatedAt', value: (c) => c.updatedAt },
  { name: 'lastMessageAt', value: (c) => c.lastMessageAt },
  { name: 'messageCount', value: (c) => c.messageCount },
  { name: 'metadata', value: (c) => JSON.stringify(c.metadata), freeText: true },
];

export const MESSAGE_COLUMNS: Column<MessageDto>[] = [
  { name: 'chatId', value: (m) => m.chatId },
  { name: 'messageId', value: (m) => m.id },
  { name: 'role', value: (m) => m.role },
  { name: 'content', value: (m) => m.content, freeText: true },
  { name: 'name', value: (m) => m.name, freeText: true },
  { name: 'model', value: (m) => m.model, freeText: true },
  { name: 'promptTokens', value: (m) => m.promptTokens },
  { name: 'completionTokens', value: (m) => m.completionTokens },
  { name: 'totalTokens', value: (m) => m.totalTokens },
  { name: 'latencyMs', value: (m) => m.latencyMs },
  { name: 'costUsd', value: (m) => m.costUsd },
  { name: 'toolCalls', value: (m) => json(m.toolCalls), freeText: true },
  { name: 'metadata', value: (m) => JSON.stringify(m.metadata), freeText: true },
  { name: 'createdAt', value: (m) => m.createdAt },
];

/** Cells that a spreadsheet would read as a formula (or that hide one after a TAB or CR). */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One RFC 4180 field. Free text starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`
 * so spreadsheets show it as text instead of running it (OWASP "CSV injection").
 */
export function csvField(value: string | number | null, freeText = false): string {
  if (value === null) return '';
  let text = String(value);
  if (freeText && FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const CRLF = '\r\n';
/** Excel needs the byte order mark to read UTF-8; RFC 4180 parsers should skip it. */
export const UTF8_BOM = '\uFEFF';

function csvRow<T>(columns: Column<T>[], dto: T): string {
  return columns.map((column) => csvField(column.value(dto), column.freeText)).join(',') + CRLF;
}

const CONTENT_TYPES: Record<Format, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** The text of an export, chunk by chunk (one chunk per page of rows). */
async function* exportChunks(em: Em, row: Export, isStopped: () => boolean): AsyncGenerator<string> {
  const filters = row.filters as SnapshotFilters;
  const pages: AsyncGenerator<unknown[]> =
    row.scope === 'chats'
      ? snapshotChats(em, row.organizationId, row.snapshot, filters, isStopped)
      : snapshotMessages(em, row.organizationId, row.snapshot, filters, isStopped);
  if (row.format === 'csv') {
    const columns = (row.scope === 'chats' ? CHAT_COLUMNS : MESSAGE_COLUMNS) as Column<unknown>[];
    yield UTF8_BOM + columns.map((column) => csvField(column.name)).join(',') + CRLF;
    for await (const dtos of pages) yield dtos.map((dto) => csvRow(columns, dto)).join('');
  } else if (row.format === 'ndjson') {
    for await (const dtos of pages) yield dtos.map((dto) => JSON.stringify(dto) + '\n').join('');
  } else {
    let first = true;
    yield '[';
    for await (const dtos of pages) {
      yield (first ? '\n' : ',\n') + dtos.map((dto) => JSON.stringify(dto)).join(',\n');
      first = false;
    }
    yield first ? ']\n' : '\n]\n';
  }
}

/**
 * A byte stream pulled from `chunks`: one chunk is produced only when the reader wants one, and
 * once the reader cancels (the client went away) or `signal` aborts, no further page is read.
 */
export function pullStream(chunks: (isStopped: () => boolean) => AsyncGenerator<string>, signal?: AbortSignal): ReadableStream<Uint8Array> {
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  if (signal?.aborted) stopped = true;
  signal?.addEventListener('abort', stop, { once: true });
  const iterator = chunks(() => stopped);
  const encoder = new TextEncoder();
  const finish = () => signal?.removeEventListener('abort', stop);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (stopped) {
            // Cancelled: nobody reads any more. Aborted: end the body as an error, never as a
            // complete file.
            try {
              controller.error(new DOMException('The download was aborted.', 'AbortError'));
            } catch {
              // already cancelled
            }
            return;
          }
          if (next.done) {
            finish();
            controller.close();
          } else {
            controller.enqueue(encoder.encode(next.value));
          }
        } catch (error) {
          finish();
          if (!stopped) controller.error(error);
        }
      },
      async cancel() {
        stop();
        finish();
        await iterator.return(undefined);
      },
    },
    { highWaterMark: 1 },
  );
}

const dateOf = (value: string | Date) => iso(value).slice(0, 10);

/** The download of an export: a streamed file, never built in memory. */
export function exportResponse(em: Em, row: Export, signal?: AbortSignal): Response {
  const ext = row.format;
  return new Response(
    pullStream((isStopped) => exportChunks(em, row, isStopped), signal),
    {
      status: 200,
      headers: {
        'content-type': CONTENT_TYPES[row.format],
        'content-disposition': `attachment; filename="chatlogger-${row.scope}-${dateOf(row.createdAt)}.${ext}"`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      },
    },
  );
}

// ---- data-subject access request ----------------------------------------------------------------

/**
 * Everything stored about one end user, as one JSON document streamed chat by chat. It reads a
 * snapshot taken when the request starts, so the document is consistent even while the end
 * user keeps chatting. The audit event commits before the first byte leaves.
 */
export async function endUserExport(em: Em, organizationId: string, externalUserId: string, actor: Actor, signal?: AbortSignal): Promise<Response> {
  const { snapshot, at } = await conversations.takeSnapshot(em, organizationId);
  recordAudit(em, {
    organizationId,
    action: 'enduser.exported',
    actor,
    target: { type: 'endUser', id: externalUserId },
  });
  await em.flush();
  async function* chunks(isStopped: () => boolean): AsyncGenerator<string> {
    yield `{"externalUserId":${JSON.stringify(externalUserId)},"exportedAt":${JSON.stringify(iso(at))},"chats":[`;
    let first = true;
    for await (const chats of snapshotChats(em, organizationId, snapshot, { externalUserId }, isStopped)) {
      for (const chat of chats) {
        const head = JSON.stringify(chat);
        let out = `${first ? '\n' : ',\n'}${head.slice(0, -1)},"messages":[`;
        first = false;
        let firstMessage = true;
        for await (const messages of snapshotChatMessages(em, organizationId, chat.id, snapshot, isStopped)) {
          out += (firstMessage ? '' : ',') + messages.map((m) => JSON.stringify(m)).join(',');
          firstMessage = false;
          yield out;
          out = '';
        }
        yield `${out}]}`;
      }
    }
    yield first ? ']}\n' : '\n]}\n';
  }
  return new Response(pullStream(chunks, signal), {
    status: 200,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="chatlogger-enduser-${dateOf(at)}.json"`,
      'cache-control': 'no-store',
    },
  });
}
