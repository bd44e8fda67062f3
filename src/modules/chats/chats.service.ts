import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { iso, isoOrNull } from '../../http/time.ts';

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
export async function createChat(em: Em, organizationId: string, input: ChatCreate): Promise<{ chat: ChatRow; created: boolean }> {
  const id = input.id?.toLowerCase() ?? Bun.randomUUIDv7();
  const inserted = await em.execute<ChatRow[]>(
    `insert into chats (organization_id, id, title, tags, metadata, external_user_id, source)
     values (?, ?, ?, ?::text[], ?::jsonb, ?, ?)
     on conflict (organization_id, id) do nothing
     returning *`,
    [
      organizationId,
      id,
      input.title ?? null,
      toPgArray(input.tags ?? []),
      JSON.stringify(input.metadata ?? {}),
      input.externalUserId ?? null,
      input.source ?? null,
    ],
  );
  if (inserted[0]) return { chat: inserted[0], created: true };
  const [existing] = await em.execute<ChatRow[]>(`select * from chats where organization_id = ? and id = ?`, [organizationId, id]);
  return { chat: existing!, created: false };
}

/** A text[] literal; every element quoted so commas, quotes and braces round-trip. */
export function toPgArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
}
