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

type Write<In, Out> = (em: Em, organizationId: string, items: In[]) => Promise<Outcome<Out>[]>;

/**
 * Runs one organization's part of a group; if it fails for a reason other than the database being
 * unavailable (a row the database refuses, a deadlock), each item is written on its own, in order,
 * so one bad row fails only its own request. When the database is unavailable, every request of
 * that part gets the error at once.
 */
async function isolating<In, Out>(db: Database, write: Write<In, Out>, organizationId: string, items: In[]): Promise<Outcome<Out>[]> {
  try {
    return await write(db.fork(), organizationId, items);
  } catch (error) {
    if (items.length === 1 || toHttpError(error).status === 503) return items.map(() => ({ ok: false, error }));
    // One after the other, in arrival order: messages of one chat keep their order.
    const outcomes: Outcome<Out>[] = [];
    for (const item of items) {
      try {
        outcomes.push((await write(db.fork(), organizationId, [item]))[0]!);
      } catch (itemError) {
        outcomes.push({ ok: false, error: itemError });
      }
    }
    return outcomes;
  }
}

/**
 * A group's items split by organization, one call each (concurrently): a statement is about one
 * organization, which on Citus is what lets the node that holds it answer alone.
 */
function perOrganization<In extends { organizationId: string }, Out>(db: Database, write: Write<In, Out>) {
  return async (items: In[]): Promise<Outcome<Out>[]> => {
    const byOrganization = Map.groupBy(items.map((item, index) => ({ item, index })), ({ item }) => item.organizationId);
    const outcomes: Outcome<Out>[] = new Array(items.length);
    await Promise.all(
      [...byOrganization].map(async ([organizationId, part]) => {
        const results = await isolating(db, write, organizationId, part.map(({ item }) => item));
        part.forEach(({ index }, i) => (outcomes[index] = results[i]!));
      }),
    );
    return outcomes;
  };
}

export function ingestWriters(db: Database, settings: GroupCommitSettings): IngestWriters {
  const observe = (kind: 'messages' | 'chats') => (size: number) => metrics.ingestBatchSize.observe({ kind }, size);
  const messages = new GroupCommit({ ...settings, write: perOrganization(db, writeAppends), onGroup: observe('messages') });
  const chats = new GroupCommit({ ...settings, write: perOrganization(db, writeChats), onGroup: observe('chats') });
  return {
    messages,
    chats,
    drain: async () => {
      await Promise.all([messages.drain(), chats.drain()]);
    },
  };
}
