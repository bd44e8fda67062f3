import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const MESSAGE_ROLES = ['system', 'user', 'assistant', 'tool', 'function'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/**
 * Keyed by (organizationId, id). The database also holds the composite reference
 * (organizationId, chatId) -> chats, so a message cannot point at another tenant's chat.
 */
export const Message = defineEntity({
  name: 'Message',
  tableName: 'messages',
  properties: {
    organizationId: p.uuid().primary(),
    id: p.uuid().primary(),
    chatId: p.uuid(),
    role: p.text().$type<MessageRole>(),
    content: p.text(),
    name: p.text().nullable(),
    model: p.text().nullable(),
    promptTokens: p.integer().nullable(),
    completionTokens: p.integer().nullable(),
    totalTokens: p.integer().nullable(),
    latencyMs: p.integer().nullable(),
    costUsd: p.decimal('number').precision(20).scale(10).nullable(),
    toolCalls: p.json<unknown>().nullable(),
    metadata: p.json<Record<string, unknown>>().onCreate(() => ({})),
    createdAt: p.datetime(),
  },
});
export type Message = InferEntity<typeof Message>;
