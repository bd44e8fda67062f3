import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import type { components } from '../../generated/openapi.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import type { TimeIdKey } from '../../http/cursor.ts';
import { DEFAULT_SEARCH_LANGUAGE, searchConditionsSql, type SearchLanguage } from './search.ts';

/*
 * Chats and their messages: every statement of the product on the tables `chats` and `messages`,
 * and their rows mapped to the contract's shapes.
 *
 * The organization is the first argument of every function and a plain `organization_id = $1`
 * on every tenant table each statement touches, so on Citus each statement is answered by the
 * one node that holds the organization. Writes that insert rows or move the analytics rollups
 * are database functions (Migration20261202000000_tenant_write_functions) that Citus runs on that
 * node as one call.
 */

export type Chat = components['schemas']['Chat'];
export type Message = components['schemas']['Message'];
export type MessageRole = Message['role'];

/** A statement and its bind parameters ($1, $2, ...). */
export interface Sql {
  sql: string;
  params: unknown[];
}

interface ChatRow {
  id: string;
  title: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  external_user_id: string | null;
  source: string | null;
  created_at: string;
  updated_at: string;
  last_message_at: string | null;
  message_count: number | string;
}

interface MessageRow {
  id: string;
  chat_id: string;
  role: MessageRole;
  content: string;
  name: string | null;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  latency_ms: number | null;
  cost_usd: string | number | null;
  tool_calls: unknown;
  metadata: Record<string, unknown>;
  created_at: string;
}

const CHAT_COLUMNS = `c.id, c.title, c.tags, c.metadata, c.external_user_id, c.source, c.created_at, c.updated_at, c.last_message_at, c.message_count`;
const MESSAGE_COLUMNS = `m.id, m.chat_id, m.role, m.content, m.name, m.model, m.prompt_tokens, m.completion_tokens, m.total_tokens,
       m.latency_ms, m.cost_usd, m.tool_calls, m.metadata, m.created_at`;

function toChat(row: ChatRow): Chat {
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

function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    chatId: row.chat_id,
    role: row.role,
    content: row.content,
    name: row.name,
    model: row.model,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    totalTokens: row.total_tokens,
    latencyMs: row.latency_ms,
    costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
    toolCalls: row.tool_calls ?? null,
    metadata: row.metadata,
    createdAt: iso(row.created_at),
  };
}

/** A page of rows and the sort key of each, as PostgreSQL printed it (microseconds intact). */
export interface Keyed<T> {
  item: T;
  key: TimeIdKey;
}

const keyed = <R extends { id: string }, T>(rows: (R & { sort_key: string })[], map: (row: R) => T): Keyed<T>[] =>
  rows.map((row) => ({ item: map(row), key: { at: row.sort_key, id: row.id } }));

/** A text[] literal; every element quoted so commas, quotes and braces round-trip. */
export function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
}

// ---- writing ---------------------------------------------------------------------------------

export interface NewChat {
  id: string;
  title: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  externalUserId: string | null;
  source: string | null;
}

export interface StoredChat {
  chat: Chat;
  /** False when the chat existed already (a retry with the same id). */
  created: boolean;
}

/** Creates chats of one organization; ids that exist already are answered as stored. */
export async function createChats(em: Em, organizationId: string, chats: readonly NewChat[]): Promise<Map<string, StoredChat>> {
  const input = chats.map((c) => ({
    id: c.id,
    title: c.title,
    tags: c.tags,
    metadata: c.metadata,
    external_user_id: c.externalUserId,
    source: c.source,
  }));
  const rows = await query<ChatRow & { created: boolean }>(
    em,
    `select * from chatlogger_create_chats($1, $2::jsonb)`,
    [organizationId, JSON.stringify(input)],
    'chatlogger_create_chats',
  );
  return new Map(rows.map((row) => [row.id, { chat: toChat(row), created: row.created }]));
}

/** A message to append, checked; `createdAt` null takes the database's clock. */
export interface NewMessage {
  id: string;
  chatId: string;
  role: MessageRole;
  content: string;
  name: string | null;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  latencyMs: number | null;
  costUsd: number | null;
  toolCalls: unknown;
  metadata: Record<string, unknown>;
  createdAt: string | null;
}

export interface StoredMessage {
  message: Message;
  /** True when this call wrote it; false when it was there already (a retry, or another chat's id). */
  created: boolean;
}

/**
 * Appends messages of one organization in one statement, with their chats' counters and the
 * analytics rollups. A message whose chat does not exist is not written (absent from the answer);
 * an id that exists already is answered as stored, whichever chat it belongs to.
 */
export async function appendMessages(em: Em, organizationId: string, messages: readonly NewMessage[]): Promise<Map<string, StoredMessage>> {
  const input = messages.map((m) => ({
    id: m.id,
    chat_id: m.chatId,
    role: m.role,
    content: m.content,
    name: m.name,
    model: m.model,
    prompt_tokens: m.promptTokens,
    completion_tokens: m.completionTokens,
    total_tokens: m.totalTokens,
    latency_ms: m.latencyMs,
    cost_usd: m.costUsd,
    tool_calls: m.toolCalls,
    metadata: m.metadata,
    created_at: m.createdAt,
  }));
  const rows = await query<Omit<MessageRow, 'content'> & { content: string | null; created: boolean }>(
    em,
    `select * from chatlogger_append_messages($1, $2::jsonb)`,
    [organizationId, JSON.stringify(input)],
    'chatlogger_append_messages',
  );
  const sent = new Map(messages.map((m) => [m.id, m]));
  const stored = new Map<string, StoredMessage>();
  for (const row of rows) {
    // A new row is what was sent plus what the database decided (its time, the cost rounded to
    // the column's scale): its content is not copied back over the wire.
    const content = row.created ? sent.get(row.id)!.content : row.content!;
    stored.set(row.id, { message: toMessage({ ...row, content }), created: row.created });
  }
  return stored;
}

/** Changes a chat's title, tags or metadata (only the fields given), moving its tag rollups along. */
export async function updateChat(
  em: Em,
  organizationId: string,
  chatId: string,
  change: { title?: string | null; tags?: { removed: string[]; added: string[]; now: string[] }; metadata?: Record<string, unknown> },
): Promise<Chat> {
  const assignments: string[] = [];
  const params: unknown[] = [organizationId, chatId];
  const set = (column: string, cast: string, value: unknown) => {
    params.push(value);
    assignments.push(`${column} = $${params.length}${cast}`);
  };
  if (change.title !== undefined) set('title', '', change.title);
  if (change.tags !== undefined) set('tags', '::text[]', toPgArray(change.tags.now));
  if (change.metadata !== undefined) set('metadata', '::jsonb', JSON.stringify(change.metadata));
  const [row] = await query<ChatRow>(
    em,
    `update chats c set ${assignments.join(', ')}, updated_at = now()
      where c.organization_id = $1 and c.id = $2
      returning ${CHAT_COLUMNS}`,
    params,
  );
  if (change.tags && (change.tags.removed.length || change.tags.added.length)) {
    await query(em, `select analytics_retag_chat($1, $2, $3::text[], $4::text[])`, [organizationId, chatId, toPgArray(change.tags.removed), toPgArray(change.tags.added)]);
  }
  return toChat(row!);
}

export interface Removed {
  chats: number;
  messages: number;
}

const removed = (rows: { chats: number | string; messages: number | string }[]): Removed => ({
  chats: Number(rows[0]?.chats ?? 0),
  messages: Number(rows[0]?.messages ?? 0),
});

/** Deletes a chat with its messages; `chats` 0: there was no such chat. */
export async function deleteChat(em: Em, organizationId: string, chatId: string): Promise<Removed> {
  return removed(await query(em, `select * from chatlogger_delete_chat($1, $2)`, [organizationId, chatId]));
}

/** Deletes every chat of one end user, with their messages. */
export async function eraseEndUser(em: Em, organizationId: string, externalUserId: string): Promise<Removed> {
  return removed(await query(em, `select * from chatlogger_erase_end_user($1, $2)`, [organizationId, externalUserId]));
}

/** Deletes up to `batch` chats whose last activity is before `cutoff`, skipping chats being written to. */
export async function purgeChats(em: Em, organizationId: string, cutoff: string, batch: number): Promise<Removed> {
  return removed(await query(em, `select * from chatlogger_purge_chats($1, $2::timestamptz, $3)`, [organizationId, cutoff, batch]));
}

// ---- reading ---------------------------------------------------------------------------------

/** A chat with its row locked until the transaction ends, or undefined. */
export async function findChat(em: Em, organizationId: string, chatId: string, { forUpdate = false } = {}): Promise<Chat | undefined> {
  const [row] = await query<ChatRow>(
    em,
    `select ${CHAT_COLUMNS} from chats c where c.organization_id = $1 and c.id = $2${forUpdate ? ' for update' : ''}`,
    [organizationId, chatId],
  );
  return row && toChat(row);
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
  /** The organization's `settings.searchLanguage`, for `q`. */
  searchLanguage?: SearchLanguage;
}

// Exactly the indexed expressions (chats_activity_idx, chats_created_idx): any other spelling and
// the planner cannot use the indexes.
const SORT_KEY = { lastActivity: 'greatest(c.created_at, c.last_message_at)', createdAt: 'c.created_at' } as const;

/** One page (plus one row) of chats; `sort_key` is the sort key as PostgreSQL prints it, for the cursor. */
export function listChatsSql(organizationId: string, filters: ChatFilters, after: TimeIdKey | undefined, limit: number): Sql {
  const key = SORT_KEY[filters.sort];
  const params: unknown[] = [organizationId];
  const where = ['c.organization_id = $1'];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filters.from !== undefined) where.push(`${key} >= ${param(filters.from)}::timestamptz`);
  if (filters.to !== undefined) where.push(`${key} < ${param(filters.to)}::timestamptz`);
  if (filters.tags.length) where.push(`c.tags ${filters.tagMode === 'all' ? '@>' : '&&'} ${param(toPgArray(filters.tags))}::text[]`);
  if (filters.externalUserId !== undefined) where.push(`c.external_user_id = ${param(filters.externalUserId)}`);
  if (filters.source !== undefined) where.push(`c.source = ${param(filters.source)}`);
  // A row comparison, so the index range starts right after the cursor.
  if (after) where.push(`(${key}, c.id) ${filters.order === 'desc' ? '<' : '>'} (${param(after.at)}::timestamptz, ${param(after.id)}::uuid)`);
  const direction = filters.order;
  const order = `order by ${key} ${direction}, c.id ${direction}`;
  const limitParam = param(limit + 1);
  if (filters.q !== undefined) {
    // A page of the chats matching in a message and a page of those matching in their title,
    // each planned on its own (see searchConditionsSql), then merged.
    const search = searchConditionsSql(param, filters.searchLanguage ?? DEFAULT_SEARCH_LANGUAGE, filters.q);
    const branch = (condition: string) =>
      `(select c.id, ${key} as sort_key from chats c
         where ${[...where, condition].join('\n           and ')}
         ${order} limit ${limitParam})`;
    return {
      sql: `select ${CHAT_COLUMNS}, k.sort_key
              from (${branch(search.inMessages)}
                    union
                    ${branch(search.inTitle)}) k
              join chats c on c.organization_id = $1 and c.id = k.id
             order by k.sort_key ${direction}, k.id ${direction}
             limit ${limitParam}`,
      params,
    };
  }
  return {
    sql: `select ${CHAT_COLUMNS}, ${key} as sort_key from chats c
           where ${where.join('\n             and ')}
           ${order}
           limit ${limitParam}`,
    params,
  };
}

export async function listChats(em: Em, organizationId: string, filters: ChatFilters, after: TimeIdKey | undefined, limit: number): Promise<Keyed<Chat>[]> {
  const { sql, params } = listChatsSql(organizationId, filters, after, limit);
  return keyed(await query<ChatRow & { sort_key: string }>(em, sql, params), toChat);
}

/** One page (plus one row) of a chat's messages in conversation order, along messages_chat_idx. */
export function listMessagesSql(organizationId: string, chatId: string, after: TimeIdKey | undefined, limit: number): Sql {
  const params: unknown[] = [organizationId, chatId];
  let keyset = '';
  if (after) {
    keyset = 'and (m.created_at, m.id) > ($3::timestamptz, $4::uuid)';
    params.push(after.at, after.id);
  }
  params.push(limit + 1);
  return {
    sql: `select ${MESSAGE_COLUMNS}, m.created_at as sort_key from messages m
           where m.organization_id = $1 and m.chat_id = $2 ${keyset}
           order by m.created_at, m.id
           limit $${params.length}`,
    params,
  };
}

export async function listMessages(em: Em, organizationId: string, chatId: string, after: TimeIdKey | undefined, limit: number): Promise<Keyed<Message>[]> {
  const { sql, params } = listMessagesSql(organizationId, chatId, after, limit);
  return keyed(await query<MessageRow & { sort_key: string }>(em, sql, params), toMessage);
}

/** Messages of the organization by id, as stored (whatever their chat). */
export async function findMessages(em: Em, organizationId: string, ids: readonly string[]): Promise<Message[]> {
  const rows = await query<MessageRow>(em, `select ${MESSAGE_COLUMNS} from messages m where m.organization_id = $1 and m.id = any($2::uuid[])`, [
    organizationId,
    `{${ids.join(',')}}`,
  ]);
  return rows.map(toMessage);
}

/** When the stored messages of these ids were said, in microseconds since the epoch. */
export async function messageTimes(em: Em, organizationId: string, ids: readonly string[]): Promise<Map<string, bigint>> {
  if (!ids.length) return new Map();
  const rows = await query<{ id: string; us: string }>(
    em,
    `select m.id, (extract(epoch from m.created_at) * 1000000)::bigint::text as us
       from messages m where m.organization_id = $1 and m.id = any($2::uuid[])`,
    [organizationId, `{${ids.join(',')}}`],
  );
  return new Map(rows.map((row) => [row.id, BigInt(row.us)]));
}

// ---- snapshots -------------------------------------------------------------------------------

/**
 * The snapshot that decides which chats and messages an export holds: a row belongs to it exactly
 * when the transaction that wrote it is visible in the snapshot (pg_visible_in_snapshot on the
 * row's created_xid), so rows committed later never leak in, whatever createdAt a client gave them.
 * Taken on the node that holds the organization, where its rows' transaction ids come from.
 */
export async function takeSnapshot(em: Em, organizationId: string): Promise<{ snapshot: string; at: string }> {
  const [snapshot] = await query<{ snapshot: string }>(em, `select chatlogger_snapshot($1) as snapshot`, [organizationId]);
  const [clock] = await query<{ at: string }>(em, `select statement_timestamp() as at`, []);
  return { snapshot: snapshot!.snapshot, at: clock!.at };
}

/** The chat filters of an export: created in [from, to), any of the tags, one end user. */
export interface SnapshotFilters {
  from?: string;
  to?: string;
  tags?: string[];
  externalUserId?: string;
}

function snapshotChatConditions(filters: SnapshotFilters, param: (value: unknown) => string): string {
  const conditions: string[] = [];
  if (filters.from !== undefined) conditions.push(`c.created_at >= ${param(filters.from)}::timestamptz`);
  if (filters.to !== undefined) conditions.push(`c.created_at < ${param(filters.to)}::timestamptz`);
  if (filters.tags?.length) conditions.push(`c.tags && ${param(toPgArray(filters.tags))}::text[]`);
  if (filters.externalUserId !== undefined) conditions.push(`c.external_user_id = ${param(filters.externalUserId)}`);
  return conditions.map((condition) => `and ${condition}`).join(' ');
}

function paramsFrom(first: unknown[]) {
  const params = [...first];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  return { params, param };
}

/**
 * A page of the chats of a snapshot in (createdAt, id) order. `messageCount` and `lastMessageAt`
 * are recomputed over the messages visible in the snapshot: the live counters move on.
 */
export function snapshotChatsSql(organizationId: string, snapshot: string, filters: SnapshotFilters, after: TimeIdKey | undefined, limit: number): Sql {
  const { params, param } = paramsFrom([organizationId, snapshot]);
  const conditions = snapshotChatConditions(filters, param);
  const keyset = after ? `and (c.created_at, c.id) > (${param(after.at)}::timestamptz, ${param(after.id)}::uuid)` : '';
  return {
    sql: `select c.id, c.title, c.tags, c.metadata, c.external_user_id, c.source, c.created_at, c.updated_at,
                 v.last_message_at, v.message_count, c.created_at as sort_key
            from chats c
           cross join lateral (
             select count(*)::int as message_count, max(m.created_at) as last_message_at
               from messages m
              where m.organization_id = $1 and m.chat_id = c.id and pg_visible_in_snapshot(m.created_xid, $2::pg_snapshot)) v
           where c.organization_id = $1 and pg_visible_in_snapshot(c.created_xid, $2::pg_snapshot)
             ${conditions}
             ${keyset}
           order by c.created_at, c.id
           limit ${param(limit)}`,
    params,
  };
}

/**
 * A page of the messages of a snapshot in (createdAt, id) order, along messages_created_idx; with
 * chat filters, only the messages of matching chats.
 */
export function snapshotMessagesSql(organizationId: string, snapshot: string, filters: SnapshotFilters, after: TimeIdKey | undefined, limit: number): Sql {
  const { params, param } = paramsFrom([organizationId, snapshot]);
  const conditions = snapshotChatConditions(filters, param);
  const ofChats = conditions
    ? `and exists (select 1 from chats c
                    where c.organization_id = $1 and c.id = m.chat_id
                      and pg_visible_in_snapshot(c.created_xid, $2::pg_snapshot)
                      ${conditions})`
    : '';
  // The redundant `created_at >=` is the index range; the row comparison breaks ties by id.
  let keyset = '';
  if (after) {
    const at = param(after.at);
    keyset = `and m.created_at >= ${at}::timestamptz and (m.created_at, m.id) > (${at}::timestamptz, ${param(after.id)}::uuid)`;
  }
  return {
    sql: `select ${MESSAGE_COLUMNS}, m.created_at as sort_key
            from messages m
           where m.organization_id = $1 and pg_visible_in_snapshot(m.created_xid, $2::pg_snapshot)
             ${ofChats}
             ${keyset}
           order by m.created_at, m.id
           limit ${param(limit)}`,
    params,
  };
}

/** A page of one chat's messages visible in a snapshot, in conversation order (messages_chat_idx). */
export function snapshotChatMessagesSql(organizationId: string, chatId: string, snapshot: string, after: TimeIdKey | undefined, limit: number): Sql {
  const { params, param } = paramsFrom([organizationId, snapshot, chatId]);
  const keyset = after ? `and (m.created_at, m.id) > (${param(after.at)}::timestamptz, ${param(after.id)}::uuid)` : '';
  return {
    sql: `select ${MESSAGE_COLUMNS}, m.created_at as sort_key
            from messages m
           where m.organization_id = $1 and m.chat_id = $3 and pg_visible_in_snapshot(m.created_xid, $2::pg_snapshot) ${keyset}
           order by m.created_at, m.id
           limit ${param(limit)}`,
    params,
  };
}

export async function snapshotChats(em: Em, ...args: Parameters<typeof snapshotChatsSql>): Promise<Keyed<Chat>[]> {
  const { sql, params } = snapshotChatsSql(...args);
  return keyed(await query<ChatRow & { sort_key: string }>(em, sql, params), toChat);
}

export async function snapshotMessages(em: Em, ...args: Parameters<typeof snapshotMessagesSql>): Promise<Keyed<Message>[]> {
  const { sql, params } = snapshotMessagesSql(...args);
  return keyed(await query<MessageRow & { sort_key: string }>(em, sql, params), toMessage);
}

export async function snapshotChatMessages(em: Em, ...args: Parameters<typeof snapshotChatMessagesSql>): Promise<Keyed<Message>[]> {
  const { sql, params } = snapshotChatMessagesSql(...args);
  return keyed(await query<MessageRow & { sort_key: string }>(em, sql, params), toMessage);
}
