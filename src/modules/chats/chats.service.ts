import type { Em } from '../../db/orm.ts';
import type { components, operations } from '../../generated/openapi.ts';
import { decodeTimeIdCursor, page, type TimeIdKey } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { conflict, notFound } from '../../http/problem.ts';
import type { Outcome } from '../ingestion/group-commit.ts';
import { preparedQuery, query } from '../../db/sql.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';

type ChatDto = components['schemas']['Chat'];
type ChatCreate = components['schemas']['ChatCreate'];

/** A chats row as PostgreSQL returns it (raw queries skip entity hydration on the hot path). */
export interface ChatRow {
  organization_id: string;
  id: string;
  title: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  external_user_id: string | null;
  source: string | null;
  created_at: string | Date;
  updated_at: string | Date;
  last_message_at: string | Date | null;
  message_count: number;
}

export function toChatDto(row: ChatRow): ChatDto {
  return {
    id: row.id,
    title: row.title,
    tags: row.tags,
    metadata: row.metadata,
    externalUserId: row.external_user_id,
    source: row.source,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    lastMessageAt: isoOrNull(row.last_message_at),
    messageCount: Number(row.message_count),
  };
}

/**
 * Creates a chat, or returns the stored one when the client's `id` exists already in this
 * organization (a retry): `created` tells which, so the route can answer 201 or 200.
 */
/** A chat to create, checked and ready to write. */
export interface ChatInsert {
  organizationId: string;
  id: string;
  input: ChatCreate;
}

export const prepareChat = (organizationId: string, input: ChatCreate): ChatInsert => ({
  organizationId,
  id: input.id?.toLowerCase() ?? Bun.randomUUIDv7(),
  input,
});

// Any number of chats of any organizations in one statement; an id that exists already is
// skipped and answered as stored (a retry).
const CREATE_CHATS_SQL = `
insert into chats (organization_id, id, title, tags, metadata, external_user_id, source)
select r.organization_id, r.id, r.title, coalesce(r.tags, '{}'), coalesce(r.metadata, '{}'), r.external_user_id, r.source
  from jsonb_array_elements($1::jsonb) with ordinality as t(doc, ord),
       jsonb_to_record(t.doc) as r(organization_id uuid, id uuid, title text, tags text[], metadata jsonb, external_user_id text, source text)
 order by t.ord
on conflict (organization_id, id) do nothing
returning organization_id, id, created_at, updated_at`;

export interface CreatedChat {
  chat: ChatRow;
  /** False when the chat existed already (a retry with the same id). */
  created: boolean;
}

/** Creates the chats of several requests at once; when two carry the same id, the first creates it. */
export async function writeChats(em: Em, chats: ChatInsert[]): Promise<Outcome<CreatedChat>[]> {
  const records = chats.map(({ organizationId, id, input }) => ({
    organization_id: organizationId,
    id,
    title: input.title ?? null,
    tags: input.tags ?? [],
    metadata: input.metadata ?? {},
    external_user_id: input.externalUserId ?? null,
    source: input.source ?? null,
  }));
  const inserted = await preparedQuery<Pick<ChatRow, 'organization_id' | 'id' | 'created_at' | 'updated_at'>>(em, 'chatlogger_create_chats', CREATE_CHATS_SQL, [JSON.stringify(records)]);
  // A new chat is what was sent plus PostgreSQL's timestamps; no need to read it back.
  const key = (organizationId: string, id: string) => `${organizationId}/${id}`;
  const decided = new Map(inserted.map((row) => [key(row.organization_id, row.id), row]));
  const fresh = new Map<string, ChatRow>();
  for (const record of records) {
    const k = key(record.organization_id, record.id);
    const row = decided.get(k);
    if (row && !fresh.has(k)) fresh.set(k, { ...record, created_at: row.created_at, updated_at: row.updated_at, last_message_at: null, message_count: 0 });
  }
  const stored = new Map(fresh);
  const missing = chats.filter((c) => !fresh.has(key(c.organizationId, c.id)));
  if (missing.length) {
    const existing = await query<ChatRow>(
      em,
      `select c.* from chats c
         join unnest($1::uuid[], $2::uuid[]) as k(organization_id, id) on c.organization_id = k.organization_id and c.id = k.id`,
      [`{${missing.map((c) => c.organizationId).join(',')}}`, `{${missing.map((c) => c.id).join(',')}}`],
    );
    for (const row of existing) stored.set(key(row.organization_id, row.id), row);
  }
  return chats.map((c) => {
    const k = key(c.organizationId, c.id);
    const chat = stored.get(k);
    // Inserted by nobody and not there: deleted again in between; the client may retry.
    if (!chat) return { ok: false, error: conflict('The chat was deleted while it was being created; retry.') };
    return { ok: true, value: { chat, created: fresh.delete(k) } };
  });
}

/** A text[] literal; every element quoted so commas, quotes and braces round-trip. */
export function toPgArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
}

type ChatUpdate = components['schemas']['ChatUpdate'];
export type ListChatsQuery = NonNullable<operations['listChats']['parameters']['query']>;

/** A chat of the organization; anything else (including a malformed id) is a 404. */
export async function findChat(em: Em, organizationId: string, chatId: string, { forUpdate = false } = {}): Promise<ChatRow> {
  if (!isUuid(chatId)) throw notFound('chat');
  const [chat] = await em.execute<ChatRow[]>(
    `select * from chats where organization_id = ? and id = ?${forUpdate ? ' for update' : ''}`,
    [organizationId, chatId],
  );
  if (!chat) throw notFound('chat');
  return chat;
}

export interface ChatFilters {
  sort: 'lastActivity' | 'createdAt';
  order: 'desc' | 'asc';
  from?: string;
  to?: string;
  tags: string[];
  tagMode: 'any' | 'all';
  externalUserId?: string;
  source?: string;
  q?: string;
}

/** The contract's defaults, and `tags` split into a clean list. */
export function chatFilters(query: ListChatsQuery): ChatFilters {
  const tags = [...new Set((query.tags ?? '').split(',').map((tag) => tag.trim()).filter((tag) => tag !== ''))];
  return {
    sort: query.sort ?? 'lastActivity',
    order: query.order ?? 'desc',
    from: query.from,
    to: query.to,
    tags,
    tagMode: query.tagMode ?? 'any',
    externalUserId: query.externalUserId,
    source: query.source,
    q: query.q,
  };
}

// Exactly the indexed expressions (chats_activity_idx, chats_created_idx, chats_title_search_idx,
// messages_content_search_idx): any other spelling and the planner cannot use the indexes.
const SORT_KEY = { lastActivity: 'greatest(c.created_at, c.last_message_at)', createdAt: 'c.created_at' } as const;
const TITLE_VECTOR = `to_tsvector('simple', coalesce(c.title, ''))`;
const CONTENT_VECTOR = `to_tsvector('simple', m.content)`;
// Parameters: the query, the organization, the query. A chat matches when its title, or one of
// its messages, matches the whole query.
const MATCHES_QUERY = `(${TITLE_VECTOR} @@ websearch_to_tsquery('simple', ?)
        or exists (select 1 from messages m
                    where m.organization_id = ? and m.chat_id = c.id
                      and ${CONTENT_VECTOR} @@ websearch_to_tsquery('simple', ?)))`;

export interface Sql {
  sql: string;
  params: unknown[];
}

/** One page (plus one row) of chats. `sort_key` is the sort key as PostgreSQL prints it, for the cursor. */
export function listChatsSql(organizationId: string, filters: ChatFilters, after: TimeIdKey | undefined, limit: number): Sql {
  const key = SORT_KEY[filters.sort];
  const where: string[] = [];
  const params: unknown[] = [];
  const and = (condition: string, ...values: unknown[]) => {
    where.push(condition);
    params.push(...values);
  };
  and('c.organization_id = ?', organizationId);
  if (filters.from !== undefined) and(`${key} >= ?::timestamptz`, filters.from);
  if (filters.to !== undefined) and(`${key} < ?::timestamptz`, filters.to);
  if (filters.tags.length) and(`c.tags ${filters.tagMode === 'all' ? '@>' : '&&'} ?::text[]`, toPgArray(filters.tags));
  if (filters.externalUserId !== undefined) and('c.external_user_id = ?', filters.externalUserId);
  if (filters.source !== undefined) and('c.source = ?', filters.source);
  if (filters.q !== undefined) and(MATCHES_QUERY, filters.q, organizationId, filters.q);
  // A row comparison, so the index range starts right after the cursor.
  if (after) and(`(${key}, c.id) ${filters.order === 'desc' ? '<' : '>'} (?::timestamptz, ?::uuid)`, after.at, after.id);
  const direction = filters.order;
  return {
    sql: `select c.*, ${key} as sort_key from chats c
           where ${where.join('\n             and ')}
           order by ${key} ${direction}, c.id ${direction}
           limit ?`,
    params: [...params, limit + 1],
  };
}

export const DEFAULT_PAGE_SIZE = 50;

export async function listChats(em: Em, organizationId: string, query: ListChatsQuery) {
  const after = decodeTimeIdCursor(query.cursor);
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  const { sql, params } = listChatsSql(organizationId, chatFilters(query), after, limit);
  const rows = await em.execute<(ChatRow & { sort_key: string })[]>(sql, params);
  return page(rows, limit, (row) => [row.sort_key, row.id]);
}

interface ChatChange {
  field: keyof ChatUpdate;
  assignment: string;
  value: unknown;
}

/** Only the fields whose value differs: a PATCH that changes nothing writes nothing. */
function chatChanges(chat: ChatRow, change: ChatUpdate): ChatChange[] {
  const changes: ChatChange[] = [];
  if (change.title !== undefined && change.title !== chat.title) {
    changes.push({ field: 'title', assignment: 'title = ?', value: change.title });
  }
  if (change.tags !== undefined && !Bun.deepEquals(change.tags, chat.tags)) {
    changes.push({ field: 'tags', assignment: 'tags = ?::text[]', value: toPgArray(change.tags) });
  }
  if (change.metadata !== undefined && !Bun.deepEquals(change.metadata, chat.metadata)) {
    changes.push({ field: 'metadata', assignment: 'metadata = ?::jsonb', value: JSON.stringify(change.metadata) });
  }
  return changes;
}

export async function updateChat(em: Em, organizationId: string, chatId: string, change: ChatUpdate, actor: Actor): Promise<ChatRow> {
  return em.transactional(async (tx) => {
    const chat = await findChat(tx, organizationId, chatId, { forUpdate: true });
    const changes = chatChanges(chat, change);
    if (!changes.length) return chat;
    const [updated] = await tx.execute<ChatRow[]>(
      `update chats set ${changes.map((c) => c.assignment).join(', ')}, updated_at = now()
        where organization_id = ? and id = ?
        returning *`,
      [...changes.map((c) => c.value), organizationId, chat.id],
    );
    recordAudit(tx, {
      organizationId,
      action: 'chat.updated',
      actor,
      target: { type: 'chat', id: chat.id },
      details: { fields: changes.map((c) => c.field) },
    });
    return updated!;
  });
}

/** Deletes a chat; its messages go with it (ON DELETE CASCADE). */
export async function deleteChat(em: Em, organizationId: string, chatId: string, actor: Actor): Promise<void> {
  if (!isUuid(chatId)) throw notFound('chat');
  await em.transactional(async (tx) => {
    const [deleted] = await tx.execute<Pick<ChatRow, 'id' | 'message_count'>[]>(
      `delete from chats where organization_id = ? and id = ? returning id, message_count`,
      [organizationId, chatId],
    );
    if (!deleted) throw notFound('chat');
    recordAudit(tx, {
      organizationId,
      action: 'chat.deleted',
      actor,
      target: { type: 'chat', id: deleted.id },
      details: { messageCount: Number(deleted.message_count) },
    });
  });
}
