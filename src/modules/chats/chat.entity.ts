import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Keyed by (organizationId, id): a chat only exists inside its organization. */
export const Chat = defineEntity({
  name: 'Chat',
  tableName: 'chats',
  properties: {
    organizationId: p.uuid().primary(),
    id: p.uuid().primary(),
    title: p.text().nullable(),
    tags: p.array<string>().onCreate(() => []),
    metadata: p.json<Record<string, unknown>>().onCreate(() => ({})),
    externalUserId: p.text().nullable(),
    source: p.text().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
    lastMessageAt: p.datetime().nullable(),
    messageCount: p.integer().default(0),
  },
});
export type Chat = InferEntity<typeof Chat>;
