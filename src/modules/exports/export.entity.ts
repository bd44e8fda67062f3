import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const EXPORT_FORMATS = ['csv', 'json', 'ndjson'] as const;
export const EXPORT_SCOPES = ['chats', 'messages'] as const;

/**
 * An export is a snapshot: its rows are the ones matching `filters` that existed at
 * `snapshotAt`, however much data arrives afterwards.
 */
export const Export = defineEntity({
  name: 'Export',
  tableName: 'exports',
  properties: {
    organizationId: p.uuid().primary(),
    id: p.uuid().primary(),
    createdBy: p.uuid().nullable(),
    format: p.text().$type<(typeof EXPORT_FORMATS)[number]>(),
    scope: p.text().$type<(typeof EXPORT_SCOPES)[number]>(),
    filters: p.json<Record<string, unknown>>().onCreate(() => ({})),
    snapshotAt: p.datetime(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Export = InferEntity<typeof Export>;
