import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Who did what, per organization. Details never hold secrets. */
export const AuditEvent = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_events',
  properties: {
    organizationId: p.uuid().primary(),
    id: p.uuid().primary().onCreate(() => Bun.randomUUIDv7()),
    at: p.datetime().onCreate(() => new Date()),
    actorId: p.uuid().nullable(),
    actorEmail: p.text().nullable(),
    action: p.text(),
    targetType: p.text().nullable(),
    targetId: p.text().nullable(),
    details: p.json<Record<string, unknown>>().onCreate(() => ({})),
  },
});
export type AuditEvent = InferEntity<typeof AuditEvent>;
