import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, notFound, sqlStateOf, validationFailed, type FieldError } from '../../http/problem.ts';
import type { Outcome } from '../ingestion/group-commit.ts';
import { preparedQuery, query } from '../../db/sql.ts';
import { isUuid } from '../../http/ids.ts';
import { iso } from '../../http/time.ts';
import { decodeTimeIdCursor, page, type TimeIdKey } from '../../http/cursor.ts';
import { DEFAULT_PAGE_SIZE, findChat, type Sql } from '../chats/chats.service.ts';

type MessageDto = components['schemas']['Message'];
type MessageCreate = components['schemas']['MessageCreate'];

export interface MessageRow {
  organization_id: string;
  id: string;
  chat_id: string;
  role: MessageDto['role'];
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
  created_at: string | Date;
}

export function toMessageDto(row: MessageRow): MessageDto {
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

const MAX_INT = 2_147_483_647;

/** One row of the JSON document that PostgreSQL expands with jsonb_to_record. */
function toRecord(organizationId: string, chatId: string, input: MessageCreate, id: string, pointer: string) {
  const totalTokens =
    input.totalTokens ??
    (input.promptTokens != null && input.completionTokens != null ? input.promptTokens + input.completionTokens : null);
  if (totalTokens !== null && totalTokens > MAX_INT) {
    throw validationFailed([{ pointer: `${pointer}/totalTokens`, message: `promptTokens + completionTokens exceeds ${MAX_INT}` }]);
  }
  return {
    organization_id: organizationId,
    chat_id: chatId,
    id,
    role: input.role,
    content: input.content,
    name: input.name ?? null,
    model: input.model ?? null,
    prompt_tokens: input.promptTokens ?? null,
    completion_tokens: input.completionTokens ?? null,
    total_tokens: totalTokens,
    latency_ms: input.latencyMs ?? null,
    cost_usd: input.costUsd ?? null,
    tool_calls: input.toolCalls === undefined ? null : input.toolCalls,
    metadata: input.metadata ?? {},
    created_at: input.createdAt ?? null,
  };
}

/** The messages of one request for one chat, checked and ready to write. */
export interface Append {
  organizationId: string;
  chatId: string;
  ids: string[];
  records: ReturnType<typeof toRecord>[];
}

export interface AppendResult {
  messages: MessageRow[];
  /** How many of them this request created; the others existed already (a retry). */
  created: number;
}

/**
 * Checks one request's messages: a malformed chat id is a 404, ids repeated inside the request a
 * 422. Ids are client-chosen (retries) or UUIDv7.
 */
export function prepareAppend(
  organizationId: string,
  chatId: string,
  inputs: MessageCreate[],
  pointerOf: (index: number) => string,
): Append {
  if (!isUuid(chatId)) throw notFound('chat');
  chatId = chatId.toLowerCase();
  const ids = inputs.map((m) => m.id?.toLowerCase() ?? Bun.randomUUIDv7());
  const duplicates: FieldError[] = [];
  const firstIndex = new Map<string, number>();
  ids.forEach((id, index) => {
    if (firstIndex.has(id)) duplicates.push({ pointer: `${pointerOf(index)}/id`, message: `repeats the id of ${pointerOf(firstIndex.get(id)!)}` });
    else firstIndex.set(id, index);
  });
  if (duplicates.length) throw validationFailed(duplicates);
  const records = inputs.map((input, index) => toRecord(organizationId, chatId, input, ids[index]!, pointerOf(index)));
  return { organizationId, chatId, ids, records };
}

/*
 * One statement writes the messages of any number of requests, for any chats of any
 * organizations, and moves those chats' counters, so both commit together.
 * - A message is written only if its chat exists in its organization (the join with `chat`), so
 *   one missing chat does not fail the others; the caller reports it as a 404.
 * - The chats are locked in key order before anything is written: concurrent statements that
 *   touch the same chats queue up instead of deadlocking.
 * - Messages whose id exists already are skipped (ON CONFLICT DO NOTHING); the caller decides
 *   whether that is a retry or a conflict.
 * - Messages without createdAt get the transaction time plus their position in microseconds,
 *   so a batch keeps its order even with client-chosen, unordered ids.
 */
export const APPEND_SQL = `
with input as (
  select r.*, t.ord
    from jsonb_array_elements($1::jsonb) with ordinality as t(doc, ord),
         jsonb_to_record(t.doc) as r(
           organization_id uuid, chat_id uuid, id uuid, role text, content text, name text, model text,
           prompt_tokens integer, completion_tokens integer, total_tokens integer, latency_ms integer,
           cost_usd numeric, tool_calls jsonb, metadata jsonb, created_at timestamptz)
),
chat as (
  select c.organization_id, c.id
    from (select distinct organization_id, chat_id from input) as i
         cross join lateral (select * from chats c where c.organization_id = i.organization_id and c.id = i.chat_id) as c
   order by c.organization_id, c.id
     for no key update of c
),
inserted as (
  insert into messages (organization_id, id, chat_id, role, content, name, model, prompt_tokens,
                        completion_tokens, total_tokens, latency_ms, cost_usd, tool_calls, metadata, created_at)
  select i.organization_id, i.id, i.chat_id, i.role, i.content, i.name, i.model, i.prompt_tokens, i.completion_tokens,
         i.total_tokens, i.latency_ms, i.cost_usd, i.tool_calls, i.metadata,
         coalesce(i.created_at, now() + i.ord * interval '1 microsecond')
    from input i
    join chat c on c.organization_id = i.organization_id and c.id = i.chat_id
   order by i.ord
  on conflict (organization_id, id) do nothing
  returning organization_id, id, chat_id, created_at, cost_usd
),
counted as (
  update chats c
     set message_count = c.message_count + n.added,
         last_message_at = greatest(c.last_message_at, n.last),
         updated_at = now()
    from (select organization_id, chat_id, count(*) as added, max(created_at) as last from inserted group by 1, 2) as n
   where c.organization_id = n.organization_id and c.id = n.chat_id
)
select organization_id, id, created_at, cost_usd from inserted`;

const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Writes the appends of several requests in one statement and tells each request how it went:
 * its messages (created now, or stored by an earlier attempt with the same ids), a 409 when one of
 * its ids belongs to a message of another chat, a 404 when its chat does not exist. When two
 * requests carry the same id, the first one creates it and the other sees a retry.
 */
export async function writeAppends(em: Em, appends: Append[]): Promise<Outcome<AppendResult>[]> {
  let inserted: Pick<MessageRow, 'organization_id' | 'id' | 'created_at' | 'cost_usd'>[];
  try {
    inserted = await preparedQuery(em, 'chatlogger_append_messages', APPEND_SQL, [JSON.stringify(appends.flatMap((a) => a.records))]);
  } catch (error) {
    // The chat was deleted between the lock and the insert.
    if (sqlStateOf(error) === FOREIGN_KEY_VIOLATION && appends.length === 1) throw notFound('chat');
    throw error;
  }
  // A new row is what was sent plus what PostgreSQL decided (its time, the cost rounded to the
  // column's scale): reading it back would only copy every message over the wire again.
  const key = (organizationId: string, id: string) => `${organizationId}/${id}`;
  const decided = new Map(inserted.map((row) => [key(row.organization_id, row.id), row]));
  const fresh = new Map<string, MessageRow>();
  for (const record of appends.flatMap((a) => a.records)) {
    const k = key(record.organization_id, record.id);
    const row = decided.get(k);
    if (row && !fresh.has(k)) fresh.set(k, { ...record, created_at: row.created_at, cost_usd: row.cost_usd });
  }
  const stored = new Map(fresh);
  const missing = appends.flatMap((a) => a.ids.filter((id) => !fresh.has(key(a.organizationId, id))).map((id) => [a.organizationId, id] as const));
  if (missing.length) {
    const existing = await query<MessageRow>(
      em,
      `select m.* from messages m
         join unnest($1::uuid[], $2::uuid[]) as k(organization_id, id) on m.organization_id = k.organization_id and m.id = k.id`,
      [`{${missing.map(([org]) => org).join(',')}}`, `{${missing.map(([, id]) => id).join(',')}}`],
    );
    for (const row of existing) stored.set(key(row.organization_id, row.id), row);
  }

  return appends.map((append) => {
    let created = 0;
    const messages: MessageRow[] = [];
    for (const id of append.ids) {
      const k = key(append.organizationId, id);
      const row = stored.get(k);
      if (!row) return { ok: false, error: notFound('chat') };
      if (row.chat_id !== append.chatId) return { ok: false, error: conflict(`Message id ${row.id} is already used by a message of another chat.`) };
      if (fresh.delete(k)) created++;
      messages.push(row);
    }
    return { ok: true, value: { messages, created } };
  });
}

/**
 * Appends the messages of one request to a chat in its own transaction, all or nothing: if any
 * of them is refused (another chat's id), nothing is written.
 */
export async function appendMessages(
  em: Em,
  organizationId: string,
  chatId: string,
  inputs: MessageCreate[],
  pointerOf: (index: number) => string,
): Promise<AppendResult> {
  const append = prepareAppend(organizationId, chatId, inputs, pointerOf);
  return em.transactional(async (tx) => {
    const [outcome] = await writeAppends(tx, [append]);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.value;
  });
}

/** One page (plus one row) of a chat's messages in conversation order, along messages_chat_idx. */
export function listMessagesSql(organizationId: string, chatId: string, after: TimeIdKey | undefined, limit: number): Sql {
  const params: unknown[] = [organizationId, chatId];
  let keyset = '';
  if (after) {
    keyset = 'and (created_at, id) > (?::timestamptz, ?::uuid)';
    params.push(after.at, after.id);
  }
  return {
    sql: `select * from messages
           where organization_id = ? and chat_id = ? ${keyset}
           order by created_at, id
           limit ?`,
    params: [...params, limit + 1],
  };
}

export async function listChatMessages(em: Em, organizationId: string, chatId: string, query: { limit?: number; cursor?: string }) {
  const after = decodeTimeIdCursor(query.cursor);
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  const chat = await findChat(em, organizationId, chatId);
  const { sql, params } = listMessagesSql(organizationId, chat.id, after, limit);
  const rows = await em.execute<MessageRow[]>(sql, params);
  return page(rows, limit, (row) => [String(row.created_at), row.id]);
}
