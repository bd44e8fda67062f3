import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: {
    id: p.uuid().primary().onCreate(() => Bun.randomUUIDv7()),
    organizationId: p.uuid(),
    label: p.text(),
    prefix: p.text(),
    keyHash: p.text().unique().hidden(),
    createdBy: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastUsedAt: p.datetime().nullable(),
    expiresAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    /** Exact browser origins (canonical form) this key accepts; empty accepts any. */
    allowedOrigins: p.array<string>().onCreate(() => []),
  },
});
export type ApiKey = InferEntity<typeof ApiKey>;
