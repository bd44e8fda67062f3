import type { Em } from '../../db/orm.ts';
import { HttpError } from '../../http/problem.ts';
import { prepareChat, writeChats } from '../chats/chats.service.ts';
import { prepareAppend, writeAppends } from '../messages/messages.service.ts';
import { messageTimes } from '../conversations/conversations.repository.ts';
import { placeAmongStored, type Conversation } from './conversations.ts';

/*
 * The only place the OTLP ingestion touches the database: through the chat and message writers
 * of the REST ingestion, for one organization. Ids are derived (see conversations.ts), so the
 * writers' "an id that exists is a retry" rule is what makes re-sent spans append nothing.
 */

export interface StoreResult {
  chatsCreated: number;
  messagesCreated: number;
  /** Conversations that could not be stored, with the reason (their spans are rejected). */
  failed: { conversation: Conversation; reason: string }[];
}

class Refused extends Error {
  constructor(readonly failures: Map<number, string>) {
    super('some conversations were refused');
  }
}

const reasonOf = (error: unknown) => (error instanceof HttpError ? (error.detail ?? error.title) : 'could not be stored');

/**
 * Writes every conversation in one transaction. When some are refused (a message id that belongs
 * to another chat, a chat deleted meanwhile), the transaction is rolled back and the others are
 * written again without them, so a conversation is stored whole or not at all.
 */
export async function storeConversations(em: Em, organizationId: string, conversations: Conversation[]): Promise<StoreResult> {
  // The same order in every request: concurrent exports of the same conversations then queue up
  // on the same rows instead of deadlocking.
  let pending = [...conversations].sort((a, b) => (a.chat.id < b.chat.id ? -1 : a.chat.id > b.chat.id ? 1 : 0));
  const failed: StoreResult['failed'] = [];
  for (;;) {
    if (pending.length === 0) return { chatsCreated: 0, messagesCreated: 0, failed };
    try {
      const written = await em.transactional(async (tx) => {
        const stored = await messageTimes(tx, organizationId, pending.flatMap((c) => c.messages.map((m) => m.id)));
        pending = pending.map((c) => placeAmongStored(c, stored));
        const chats = await writeChats(tx, organizationId, pending.map((c) => prepareChat(organizationId, c.chat)));
        const appends = pending.map((c) => prepareAppend(organizationId, c.chat.id, c.messages, (index) => `/messages/${index}`));
        const outcomes = await writeAppends(tx, organizationId, appends);
        const failures = new Map<number, string>();
        pending.forEach((_, i) => {
          const chat = chats[i]!;
          const append = outcomes[i]!;
          if (!chat.ok) failures.set(i, reasonOf(chat.error));
          else if (!append.ok) failures.set(i, reasonOf(append.error));
        });
        if (failures.size) throw new Refused(failures);
        return {
          chatsCreated: chats.filter((c) => c.ok && c.value.created).length,
          messagesCreated: outcomes.reduce((sum, o) => sum + (o.ok ? o.value.created : 0), 0),
        };
      });
      return { ...written, failed };
    } catch (error) {
      if (!(error instanceof Refused)) {
        // A single conversation whose chat vanished between the chat and message statements.
        if (pending.length === 1 && error instanceof HttpError && error.status === 404) {
          failed.push({ conversation: pending[0]!, reason: reasonOf(error) });
          pending = [];
          continue;
        }
        throw error;
      }
      for (const [i, reason] of error.failures) failed.push({ conversation: pending[i]!, reason });
      pending = pending.filter((_, i) => !error.failures.has(i));
    }
  }
}
