import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import type { TimeIdKey } from '../../http/cursor.ts';
import * as conversations from '../conversations/conversations.repository.ts';
import type { Keyed, SnapshotFilters } from '../conversations/conversations.repository.ts';

type Chat = components['schemas']['Chat'];
type Message = components['schemas']['Message'];

/** Rows per database round trip while streaming. */
export const EXPORT_PAGE_SIZE = 1000;

/** Stops the reading: the reader asks before every page. */
export type IsStopped = () => boolean;

type PageReader<T> = (em: Em, after: TimeIdKey | undefined, limit: number) => Promise<Keyed<T>[]>;

/** Every page runs on a fresh fork: nothing accumulates while a file streams. */
async function* pages<T>(em: Em, read: PageReader<T>, isStopped: IsStopped): AsyncGenerator<T[]> {
  let after: TimeIdKey | undefined;
  while (!isStopped()) {
    const rows = await read(em.fork(), after, EXPORT_PAGE_SIZE);
    if (rows.length) yield rows.map((row) => row.item);
    if (rows.length < EXPORT_PAGE_SIZE) return;
    after = rows[rows.length - 1]!.key;
  }
}

/**
 * The rows of an organization as a snapshot saw them, page by page in their export order: what a
 * download reads however long it takes, whatever is written meanwhile.
 */
export const snapshotChats = (em: Em, organizationId: string, snapshot: string, filters: SnapshotFilters, isStopped: IsStopped) =>
  pages<Chat>(em, (fork, after, limit) => conversations.snapshotChats(fork, organizationId, snapshot, filters, after, limit), isStopped);

export const snapshotMessages = (em: Em, organizationId: string, snapshot: string, filters: SnapshotFilters, isStopped: IsStopped) =>
  pages<Message>(em, (fork, after, limit) => conversations.snapshotMessages(fork, organizationId, snapshot, filters, after, limit), isStopped);

export const snapshotChatMessages = (em: Em, organizationId: string, chatId: string, snapshot: string, isStopped: IsStopped) =>
  pages<Message>(em, (fork, after, limit) => conversations.snapshotChatMessages(fork, organizationId, chatId, snapshot, after, limit), isStopped);
