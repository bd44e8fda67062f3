import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { decodeTimeIdCursor, page, type TimeIdKey } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { notFound } from '../../http/problem.ts';
import { iso } from '../../http/time.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import { DEFAULT_PAGE_SIZE, toChatDto, toPgArray, type ChatRow } from '../chats/chats.service.ts';
import { toMessageDto, type MessageRow } from '../messages/messages.service.ts';
import type { EXPORT_FORMATS, EXPORT_SCOPES } from './export.entity.ts';

type ExportDto = components['schemas']['Export'];
type ExportCreate = components['schemas']['ExportCreate'];
type ExportFilters = ExportDto['filters'];
type ChatDto = components['schemas']['Chat'];
type MessageDto = components['schemas']['Message'];
type Format = (typeof EXPORT_FORMATS)[number];
type Scope = (typeof EXPORT_SCOPES)[number];

/** An exports row as PostgreSQL returns it, with the snapshot in its text form. */
export interface ExportRow {
  organization_id: string;
  id: string;
  created_by: string | null;
  format: Format;
  scope: Scope;
  filters: ExportFilters;
  snapshot: string;
  status: 'ready';
  snapshot_at: string | Date;
  created_at: string | Date;
}

const EXPORT_COLUMNS = `organization_id, id, created_by, format, scope, filters, snapshot::text as snapshot, status, snapshot_at, created_at`;

export function toExportDto(row: ExportRow, orgSlug: string): ExportDto {
  return {
    id: row.id,
    format: row.format,
    scope: row.scope,
    filters: row.filters,
    status: row.status,
    snapshotAt: iso(row.snapshot_at),
    createdAt: iso(row.created_at),
    createdBy: row.created_by,
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

/**
 * Records an export. Its snapshot is taken by the INSERT statement itself
 * (`pg_current_snapshot()`), so the export holds exactly the rows committed before it.
 */
export async function createExport(em: Em, organizationId: string, input: ExportCreate, actor: Actor): Promise<ExportRow> {
  const filters = filtersOf(input);
  return em.transactional(async (tx) => {
    const [row] = await tx.execute<ExportRow[]>(
      `insert into exports (organization_id, id, created_by, format, scope, filters, snapshot, status, snapshot_at)
       values (?, ?, ?, ?, ?, ?::jsonb, pg_current_snapshot(), 'ready', statement_timestamp())
       returning ${EXPORT_COLUMNS}`,
      [organizationId, Bun.randomUUIDv7(), actor.id, input.format, input.scope, JSON.stringify(filters)],
    );
    recordAudit(tx, {
      organizationId,
      action: 'export.created',
      actor,
      target: { type: 'export', id: row!.id },
      details: { format: input.format, scope: input.scope, filters },
    });
    return row!;
  });
}

/** Newest first, along exports_created_idx. */
export async function listExports(em: Em, organizationId: string, query: { limit?: number; cursor?: string }) {
  const after = decodeTimeIdCursor(query.cursor);
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  const params: unknown[] = [organizationId];
  let keyset = '';
  if (after) {
    keyset = 'and (created_at, id) < (?::timestamptz, ?::uuid)';
    params.push(after.at, after.id);
  }
  const rows = await em.execute<ExportRow[]>(
    `select ${EXPORT_COLUMNS} from exports
      where organization_id = ? ${keyset}
      order by created_at desc, id desc
      limit ?`,
    [...params, limit + 1],
  );
  return page(rows, limit, (row) => [String(row.created_at), row.id]);
}

/** An export of the organization; anything else (a malformed id included) is a 404. */
export async function findExport(em: Em, organizationId: string, exportId: string): Promise<ExportRow> {
  if (!isUuid(exportId)) throw notFound('export');
  const [row] = await em.execute<ExportRow[]>(`select ${EXPORT_COLUMNS} from exports where organization_id = ? and id = ?`, [
    organizationId,
    exportId,
  ]);
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

/** Every page of an export runs on a fresh fork: nothing accumulates while a file streams. */
async function readPage<T>(em: Em, sql: string, params: unknown[]): Promise<T[]> {
  exportReads.queries += 1;
  return em.fork().execute<T[]>(sql, params);
}

interface ChatFilterSql {
  conditions: string[];
  params: unknown[];
}

/** The export's filters on chats (alias `c`): created in [from, to), any of the tags, the end user. */
function chatConditions(filters: ExportFilters): ChatFilterSql {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filters.from !== undefined) {
    conditions.push('c.created_at >= ?::timestamptz');
    params.push(filters.from);
  }
  if (filters.to !== undefined) {
    conditions.push('c.created_at < ?::timestamptz');
    params.push(filters.to);
  }
  if (filters.tags?.length) {
    conditions.push('c.tags && ?::text[]');
    params.push(toPgArray(filters.tags));
  }
  if (filters.externalUserId !== undefined) {
    conditions.push('c.external_user_id = ?');
    params.push(filters.externalUserId);
  }
  return { conditions, params };
}

type SnapshotChatRow = ChatRow & { created_at: string };

/**
 * The chats of a snapshot in (createdAt, id) order. `messageCount` and `lastMessageAt` are
 * recomputed over the messages visible in the snapshot: the live counters move on.
 */
async function* snapshotChats(em: Em, organizationId: string, snapshot: string, filters: ExportFilters, isStopped: () => boolean) {
  const { conditions, params } = chatConditions(filters);
  let after: TimeIdKey | undefined;
  while (!isStopped()) {
    const keyset = after ? 'and (c.created_at, c.id) > (?::timestamptz, ?::uuid)' : '';
    const rows = await readPage<SnapshotChatRow>(
      em,
      `select c.organization_id, c.id, c.title, c.tags, c.metadata, c.external_user_id, c.source, c.created_at, c.updated_at,
              v.last_message_at, v.message_count
         from chats c
         cross join lateral (
           select count(*)::int as message_count, max(m.created_at) as last_message_at
             from messages m
            where m.organization_id = c.organization_id and m.chat_id = c.id
              and pg_visible_in_snapshot(m.created_xid, ?::pg_snapshot)) v
        where c.organization_id = ? and pg_visible_in_snapshot(c.created_xid, ?::pg_snapshot)
          ${conditions.map((condition) => `and ${condition}`).join(' ')}
          ${keyset}
        order by c.created_at, c.id
        limit ?`,
      [snapshot, organizationId, snapshot, ...params, ...(after ? [after.at, after.id] : []), EXPORT_PAGE_SIZE],
    );
    if (rows.length) yield rows;
    if (rows.length < EXPORT_PAGE_SIZE) return;
    const last = rows[rows.length - 1]!;
    after = { at: String(last.created_at), id: last.id };
  }
}

/**
 * The messages of a snapshot in (createdAt, id) order, along messages_created_idx; with chat
 * filters, only the messages of matching chats.
 */
async function* snapshotMessages(em: Em, organizationId: string, snapshot: string, filters: ExportFilters, isStopped: () => boolean) {
  const { conditions, params } = chatConditions(filters);
  const ofChats = conditions.length
    ? `and exists (select 1 from chats c
                    where c.organization_id = m.organization_id and c.id = m.chat_id
                      and pg_visible_in_snapshot(c.created_xid, ?::pg_snapshot)
                      and ${conditions.join(' and ')})`
    : '';
  const chatParams = conditions.length ? [snapshot, ...params] : [];
  let after: TimeIdKey | undefined;
  while (!isStopped()) {
    // The redundant `created_at >=` is the index range; the row comparison breaks ties by id.
    const keyset = after ? 'and m.created_at >= ?::timestamptz and (m.created_at, m.id) > (?::timestamptz, ?::uuid)' : '';
    const rows = await readPage<MessageRow & { created_at: string }>(
      em,
      `select m.organization_id, m.id, m.chat_id, m.role, m.content, m.name, m.model, m.prompt_tokens, m.completion_tokens,
              m.total_tokens, m.latency_ms, m.cost_usd, m.tool_calls, m.metadata, m.created_at
         from messages m
        where m.organization_id = ? and pg_visible_in_snapshot(m.created_xid, ?::pg_snapshot)
          ${ofChats}
          ${keyset}
        order by m.created_at, m.id
        limit ?`,
      [organizationId, snapshot, ...chatParams, ...(after ? [after.at, after.at, after.id] : []), EXPORT_PAGE_SIZE],
    );
    if (rows.length) yield rows;
    if (rows.length < EXPORT_PAGE_SIZE) return;
    const last = rows[rows.length - 1]!;
    after = { at: String(last.created_at), id: last.id };
  }
}

/** The messages of one chat visible in a snapshot, in conversation order (messages_chat_idx). */
async function* snapshotChatMessages(em: Em, organizationId: string, chatId: string, snapshot: string, isStopped: () => boolean) {
  let after: TimeIdKey | undefined;
  while (!isStopped()) {
    const keyset = after ? 'and (created_at, id) > (?::timestamptz, ?::uuid)' : '';
    const rows = await readPage<MessageRow & { created_at: string }>(
      em,
      `select organization_id, id, chat_id, role, content, name, model, prompt_tokens, completion_tokens,
              total_tokens, latency_ms, cost_usd, tool_calls, metadata, created_at
         from messages
        where organization_id = ? and chat_id = ? and pg_visible_in_snapshot(created_xid, ?::pg_snapshot) ${keyset}
        order by created_at, id
        limit ?`,
      [organizationId, chatId, snapshot, ...(after ? [after.at, after.id] : []), EXPORT_PAGE_SIZE],
    );
    if (rows.length) yield rows;
    if (rows.length < EXPORT_PAGE_SIZE) return;
    const last = rows[rows.length - 1]!;
    after = { at: String(last.created_at), id: last.id };
  }
}

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
async function* exportChunks(em: Em, row: ExportRow, isStopped: () => boolean): AsyncGenerator<string> {
  const pages =
    row.scope === 'chats'
      ? mapPages(snapshotChats(em, row.organization_id, row.snapshot, row.filters, isStopped), toChatDto)
      : mapPages(snapshotMessages(em, row.organization_id, row.snapshot, row.filters, isStopped), toMessageDto);
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

async function* mapPages<R, T>(pages: AsyncGenerator<R[]>, map: (row: R) => T): AsyncGenerator<T[]> {
  for await (const rows of pages) yield rows.map(map);
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
export function exportResponse(em: Em, row: ExportRow, signal?: AbortSignal): Response {
  const ext = row.format;
  return new Response(
    pullStream((isStopped) => exportChunks(em, row, isStopped), signal),
    {
      status: 200,
      headers: {
        'content-type': CONTENT_TYPES[row.format],
        'content-disposition': `attachment; filename="chatlogger-${row.scope}-${dateOf(row.created_at)}.${ext}"`,
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
  const [now] = await em.execute<{ snapshot: string; at: string }[]>(`select pg_current_snapshot()::text as snapshot, statement_timestamp() as at`);
  const { snapshot, at } = now!;
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
        const head = JSON.stringify(toChatDto(chat));
        let out = `${first ? '\n' : ',\n'}${head.slice(0, -1)},"messages":[`;
        first = false;
        let firstMessage = true;
        for await (const messages of snapshotChatMessages(em, organizationId, chat.id, snapshot, isStopped)) {
          out += (firstMessage ? '' : ',') + messages.map((m) => JSON.stringify(toMessageDto(m))).join(',');
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
