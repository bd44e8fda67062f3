import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, notFound, validationFailed, type FieldError } from '../../http/problem.ts';
import type { Outcome } from '../ingestion/group-commit.ts';
import { isUuid } from '../../http/ids.ts';
import { decodeTimeIdCursor, page } from '../../http/cursor.ts';
import { findChat } from '../chats/chats.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import type { Message, NewMessage } from '../conversations/conversations.repository.ts';

type MessageCreate = components['schemas']['MessageCreate'];

const MAX_INT = 2_147_483_647;

/** The messages of one request for one chat, checked and ready to write. */
export interface Append {
  organizationId: string;
  chatId: string;
  messages: NewMessage[];
}

export interface AppendResult {
  messages: Message[];
  /** How many of them this request created; the others existed already (a retry). */
  created: number;
}

function toNewMessage(chatId: string, input: MessageCreate, id: string, pointer: string): NewMessage {
  const totalTokens =
    input.totalTokens ??
    (input.promptTokens != null && input.completionTokens != null ? input.promptTokens + input.completionTokens : null);
  if (totalTokens !== null && totalTokens > MAX_INT) {
    throw validationFailed([{ pointer: `${pointer}/totalTokens`, message: `promptTokens + completionTokens exceeds ${MAX_INT}` }]);
  }
  return {
    id,
    chatId,
    role: input.role,
    content: input.content,
    name: input.name ?? null,
    model: input.model ?? null,
    promptTokens: input.promptTokens ?? null,
    completionTokens: input.completionTokens ?? null,
    totalTokens,
    latencyMs: input.latencyMs ?? null,
    costUsd: input.costUsd ?? null,
    toolCalls: input.toolCalls === undefined ? null : input.toolCalls,
    metadata: input.metadata ?? {},
    createdAt: input.createdAt ?? null,
  };
}

/**
 * Checks one request's messages: a malformed chat id is a 404, ids repeated inside the request a
 * 422. Ids are client-chosen (retries) or UUIDv7.
 */
export function prepareAppend(organizationId: string, chatId: string, inputs: MessageCreate[], pointerOf: (index: number) => string): Append {
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
  return { organizationId, chatId, messages: inputs.map((input, index) => toNewMessage(chatId, input, ids[index]!, pointerOf(index))) };
}

/**
 * Writes the appends of several requests of one organization in one call and tells each request
 * how it went: its messages (created now, or stored by an earlier attempt with the same ids), a
 * 409 when one of its ids belongs to a message of another chat, a 404 when its chat does not
 * exist. When two requests carry the same id, the first one creates it and the other sees a retry.
 */
export async function writeAppends(em: Em, organizationId: string, appends: Append[]): Promise<Outcome<AppendResult>[]> {
  const stored = await conversations.appendMessages(em, organizationId, appends.flatMap((a) => a.messages));
  const claimed = new Set<string>();
  return appends.map((append) => {
    let created = 0;
    const messages: Message[] = [];
    for (const { id } of append.messages) {
      const message = stored.get(id);
      if (!message) return { ok: false, error: notFound('chat') };
      if (message.message.chatId !== append.chatId) {
        return { ok: false, error: conflict(`Message id ${id} is already used by a message of another chat.`) };
      }
      if (message.created && !claimed.has(id)) created++;
      claimed.add(id);
      messages.push(message.message);
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
    const [outcome] = await writeAppends(tx, organizationId, [append]);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.value;
  });
}

export async function listChatMessages(em: Em, organizationId: string, chatId: string, query: { limit: number; cursor?: string }) {
  const after = decodeTimeIdCursor(query.cursor);
  const { limit } = query;
  const chat = await findChat(em, organizationId, chatId);
  const rows = await conversations.listMessages(em, organizationId, chat.id, after, limit);
  const { items, nextCursor } = page(rows, limit, (row) => [row.key.at, row.key.id]);
  return { items: items.map((row) => row.item), nextCursor };
}
