import type { Database, Em } from '../../db/orm.ts';
import { toHttpError } from '../../http/problem.ts';
import { writeChats, type ChatInsert, type CreatedChat } from '../chats/chats.service.ts';
import { writeAppends, type Append, type AppendResult } from '../messages/messages.service.ts';
import { GroupCommit, type Outcome } from './group-commit.ts';
import { metrics } from '../../observability/metrics.ts';

export interface GroupCommitSettings {
  maxBatch: number;
  maxWaitMs: number;
  maxInFlight: number;
}

/** The group-commit writers of the ingestion API: single messages and chat creation. */
export interface IngestWriters {
  messages: GroupCommit<Append, AppendResult>;
  chats: GroupCommit<ChatInsert, CreatedChat>;
  /** Writes what is pending; called on shutdown before the pool closes. */
  drain(): Promise<void>;
}

/**
 * Runs a group's statement; if it fails for a reason other than the database being unavailable
 * (a row the database refuses, a deadlock), each item is written on its own, in order, so one bad
 * row fails only its own request. When the database is unavailable, every request of the group gets
 * that error at once.
 */
function isolating<In, Out>(db: Database, write: (em: Em, items: In[]) => Promise<Outcome<Out>[]>) {
  return async (items: In[]): Promise<Outcome<Out>[]> => {
    try {
      return await write(db.fork(), items);
    } catch (error) {
      if (items.length === 1 || toHttpError(error).status === 503) throw error;
      // One after the other, in arrival order: messages of one chat keep their order.
      const outcomes: Outcome<Out>[] = [];
      for (const item of items) {
        try {
          outcomes.push((await write(db.fork(), [item]))[0]!);
        } catch (itemError) {
          outcomes.push({ ok: false, error: itemError });
        }
      }
      return outcomes;
    }
  };
}

export function ingestWriters(db: Database, settings: GroupCommitSettings, onGroup?: (kind: 'messages' | 'chats', size: number) => void): IngestWriters {
  const observe = (kind: 'messages' | 'chats') => (size: number) => {
    metrics.ingestBatchSize.observe({ kind }, size);
    onGroup?.(kind, size);
  };
  const messages = new GroupCommit({ ...settings, write: isolating(db, writeAppends), onGroup: observe('messages') });
  const chats = new GroupCommit({ ...settings, write: isolating(db, writeChats), onGroup: observe('chats') });
  return {
    messages,
    chats,
    drain: async () => {
      await Promise.all([messages.drain(), chats.drain()]);
    },
  };
}
