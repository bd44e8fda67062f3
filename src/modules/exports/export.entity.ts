import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const EXPORT_FORMATS = ['csv', 'json', 'ndjson'] as const;
export const EXPORT_SCOPES = ['chats', 'messages'] as const;
export const EXPORT_STATUSES = ['ready'] as const;

/**
 * An export is a snapshot: its rows are the ones matching `filters` whose writing transaction is
 * visible in `snapshot` (a pg_snapshot, read and written as its text form `xmin:xmax:xip,...`),
 * however much data arrives afterwards. `snapshotAt` is when that snapshot was taken.
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
    snapshot: p.text().columnType('pg_snapshot'),
    status: p.text().$type<(typeof EXPORT_STATUSES)[number]>().default('ready'),
    snapshotAt: p.datetime(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Export = InferEntity<typeof Export>;
