import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, notFound, validationFailed, type FieldError } from '../../http/problem.ts';
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

/** One row of the JSON document that PostgreSQL expands with jsonb_to_recordset. */
function toRecord(input: MessageCreate, id: string, pointer: string) {
  const totalTokens =
    input.totalTokens ??
    (input.promptTokens != null && input.completionTokens != null ? input.promptTokens + input.completionTokens : null);
  if (totalTokens !== null && totalTokens > MAX_INT) {
    throw validationFailed([{ pointer: `${pointer}/totalTokens`, message: `promptTokens + completionTokens exceeds ${MAX_INT}` }]);
  }
  return {
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

/*
 * One statement writes the messages and moves the chat's counters, so both commit together.
 * Messages whose id exists already are skipped (ON CONFLICT DO NOTHING) and counted out.
 * Messages without createdAt get the transaction time plus their position in microseconds,
 * so a batch keeps its order even with client-chosen, unordered ids.
 */
const APPEND_SQL = `
with input as (
  select r.*, t.ord
    from jsonb_array_elements(?::jsonb) with ordinality as t(doc, ord),
         jsonb_to_record(t.doc) as r(
           id uuid, role text, content text, name text, model text,
           prompt_tokens integer, completion_tokens integer, total_tokens integer, latency_ms integer,
           cost_usd numeric, tool_calls jsonb, metadata jsonb, created_at timestamptz)
),
inserted as (
  insert into messages (organization_id, id, chat_id, role, content, name, model, prompt_tokens,
                        completion_tokens, total_tokens, latency_ms, cost_usd, tool_calls, metadata, created_at)
  select ?, id, ?, role, content, name, model, prompt_tokens, completion_tokens, total_tokens, latency_ms,
         cost_usd, tool_calls, metadata, coalesce(created_at, now() + ord * interval '1 microsecond')
    from input
  on conflict (organization_id, id) do nothing
  returning *
),
counted as (
  update chats
     set message_count = message_count + (select count(*) from inserted),
         last_message_at = greatest(last_message_at, (select max(created_at) from inserted)),
         updated_at = now()
   where organization_id = ? and id = ? and exists (select 1 from inserted)
)
select * from inserted`;

const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Appends messages to a chat, all or nothing, in one transaction. Ids that exist already in
 * this chat are returned as stored (retries are harmless); an id that belongs to a message of
 * another chat is a 409 and nothing is written.
 */
export async function appendMessages(
  em: Em,
  organizationId: string,
  chatId: string,
  inputs: MessageCreate[],
  pointerOf: (index: number) => string,
): Promise<{ messages: MessageRow[]; created: number }> {
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

  const records = JSON.stringify(inputs.map((input, index) => toRecord(input, ids[index]!, pointerOf(index))));
  try {
    return await em.transactional(async (tx) => {
      const inserted = await tx.execute<MessageRow[]>(APPEND_SQL, [records, organizationId, chatId, organizationId, chatId]);
      if (inserted.length === ids.length) return { messages: inserted, created: inserted.length };

      const byId = new Map(inserted.map((row) => [row.id, row]));
      const missing = ids.filter((id) => !byId.has(id));
      const existing = await tx.execute<MessageRow[]>(
        `select * from messages where organization_id = ? and id in (${missing.map(() => '?').join(',')})`,
        [organizationId, ...missing],
      );
      for (const row of existing) {
        if (row.chat_id !== chatId) throw conflict(`Message id ${row.id} is already used by a message of another chat.`);
        byId.set(row.id, row);
      }
      return { messages: ids.map((id) => byId.get(id)!), created: inserted.length };
    });
  } catch (error) {
    if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION || (error as { sqlState?: string }).sqlState === FOREIGN_KEY_VIOLATION) {
      throw notFound('chat');
    }
    throw error;
  }
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
