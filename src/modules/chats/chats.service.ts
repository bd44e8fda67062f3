import type { Em } from '../../db/orm.ts';
import type { components, operations } from '../../generated/openapi.ts';
import { decodeTimeIdCursor, page } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { conflict, notFound } from '../../http/problem.ts';
import type { Outcome } from '../ingestion/group-commit.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import type { Chat, ChatFilters, NewChat } from '../conversations/conversations.repository.ts';
import { DEFAULT_SEARCH_LANGUAGE, highlightTerms, type SearchLanguage } from '../conversations/search.ts';

type ChatCreate = components['schemas']['ChatCreate'];
type ChatUpdate = components['schemas']['ChatUpdate'];
type ListChatsParameters = NonNullable<operations['listChats']['parameters']['query']>;
/** The contract fills in `limit` when the request has none (queryOf). */
export type ListChatsQuery = ListChatsParameters & { limit: number };

/** A chat to create, checked and ready to write. */
export interface ChatInsert {
  organizationId: string;
  chat: NewChat;
}

/** Ids are client-chosen (so a retry can repeat them) or UUIDv7. */
export const prepareChat = (organizationId: string, input: ChatCreate): ChatInsert => ({
  organizationId,
  chat: {
    id: input.id?.toLowerCase() ?? Bun.randomUUIDv7(),
    title: input.title ?? null,
    tags: input.tags ?? [],
    metadata: input.metadata ?? {},
    externalUserId: input.externalUserId ?? null,
    source: input.source ?? null,
  },
});

export interface CreatedChat {
  chat: Chat;
  /** False when the chat existed already (a retry with the same id). */
  created: boolean;
}

/**
 * Creates the chats of several requests of one organization at once. A chat that exists already
 * is answered as stored (a retry); when two requests carry the same id, the first creates it.
 */
export async function writeChats(em: Em, organizationId: string, inserts: ChatInsert[]): Promise<Outcome<CreatedChat>[]> {
  const stored = await conversations.createChats(em, organizationId, inserts.map((i) => i.chat));
  const claimed = new Set<string>();
  return inserts.map(({ chat: { id } }) => {
    const chat = stored.get(id);
    // Inserted by nobody and not there: deleted again in between; the client may retry.
    if (!chat) return { ok: false, error: conflict('The chat was deleted while it was being created; retry.') };
    const created = chat.created && !claimed.has(id);
    claimed.add(id);
    return { ok: true, value: { chat: chat.chat, created } };
  });
}

/** A chat of the organization; anything else (including a malformed id) is a 404. */
export async function findChat(em: Em, organizationId: string, chatId: string, options: { forUpdate?: boolean } = {}): Promise<Chat> {
  const chat = isUuid(chatId) ? await conversations.findChat(em, organizationId, chatId.toLowerCase(), options) : undefined;
  if (!chat) throw notFound('chat');
  return chat;
}

/** The contract's defaults, and `tags` split into a clean list. */
export function chatFilters(query: ListChatsParameters, searchLanguage?: SearchLanguage): ChatFilters {
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
    searchLanguage,
  };
}

/** A page of chats; with `q`, also what the search looks for (to highlight). */
export async function listChats(em: Em, organizationId: string, query: ListChatsQuery, searchLanguage: SearchLanguage = DEFAULT_SEARCH_LANGUAGE) {
  const after = decodeTimeIdCursor(query.cursor);
  const limit = query.limit;
  const rows = await conversations.listChats(em, organizationId, chatFilters(query, searchLanguage), after, limit);
  const { items, nextCursor } = page(rows, limit, (row) => [row.key.at, row.key.id]);
  const highlight = query.q === undefined ? undefined : await highlightTerms(em, searchLanguage, query.q);
  return { items: items.map((row) => row.item), nextCursor, highlight };
}

/** `a` without `b`, as multisets: a chat's messages count once per occurrence of a tag. */
function without(a: string[], b: string[]): string[] {
  const left = [...b];
  return a.filter((tag) => {
    const i = left.indexOf(tag);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

const tagsMoved = (from: string[], to: string[]) => ({ removed: without(from, to), added: without(to, from), now: to });

/** Changes title, tags or metadata; only fields whose value differs are written and audited. */
export async function updateChat(em: Em, organizationId: string, chatId: string, change: ChatUpdate, actor: Actor): Promise<Chat> {
  return em.transactional(async (tx) => {
    const chat = await findChat(tx, organizationId, chatId, { forUpdate: true });
    const fields: (keyof ChatUpdate)[] = [];
    const write: Parameters<typeof conversations.updateChat>[3] = {};
    if (change.title !== undefined && change.title !== chat.title) {
      write.title = change.title;
      fields.push('title');
    }
    if (change.tags !== undefined && !Bun.deepEquals(change.tags, chat.tags)) {
      write.tags = tagsMoved(chat.tags, change.tags);
      fields.push('tags');
    }
    if (change.metadata !== undefined && !Bun.deepEquals(change.metadata, chat.metadata)) {
      write.metadata = change.metadata;
      fields.push('metadata');
    }
    if (!fields.length) return chat;
    const updated = await conversations.updateChat(tx, organizationId, chat.id, write);
    recordAudit(tx, { organizationId, action: 'chat.updated', actor, target: { type: 'chat', id: chat.id }, details: { fields } });
    return updated;
  });
}

/** Deletes a chat with its messages. */
export async function deleteChat(em: Em, organizationId: string, chatId: string, actor: Actor): Promise<void> {
  if (!isUuid(chatId)) throw notFound('chat');
  await em.transactional(async (tx) => {
    const removed = await conversations.deleteChat(tx, organizationId, chatId.toLowerCase());
    if (!removed.chats) throw notFound('chat');
    recordAudit(tx, {
      organizationId,
      action: 'chat.deleted',
      actor,
      target: { type: 'chat', id: chatId.toLowerCase() },
      details: { messageCount: removed.messages },
    });
  });
}
