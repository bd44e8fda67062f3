import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { decodeCursor, page } from '../../http/cursor.ts';
import { iso } from '../../http/time.ts';
import { isUuid } from '../../http/ids.ts';
import { AuditEvent } from './audit.entity.ts';

export interface Actor {
  id: string;
  email: string;
}

export interface AuditEntry {
  organizationId: string;
  action: string;
  actor?: Actor | null;
  target?: { type: string; id: string };
  details?: Record<string, unknown>;
}

/**
 * Adds an event to the unit of work: it commits with the change it describes, or not at all.
 * Callers flush (or are inside a flush); details must never carry secrets.
 */
export function recordAudit(em: Em, entry: AuditEntry): AuditEvent {
  return em.create(AuditEvent, {
    organizationId: entry.organizationId,
    actorId: entry.actor?.id ?? null,
    actorEmail: entry.actor?.email ?? null,
    action: entry.action,
    targetType: entry.target?.type ?? null,
    targetId: entry.target?.id ?? null,
    details: entry.details ?? {},
  });
}

type AuditEventDto = components['schemas']['AuditEvent'];

export function toAuditEventDto(event: AuditEvent): AuditEventDto {
  return {
    id: event.id,
    at: iso(event.at),
    action: event.action,
    actorId: event.actorId ?? null,
    actorEmail: event.actorEmail ?? null,
    targetType: event.targetType ?? null,
    targetId: event.targetId ?? null,
    details: event.details,
  };
}

/** Newest first. Ids are UUIDv7, so their order is the order of the events. */
export async function listAuditEvents(em: Em, organizationId: string, query: { limit: number; cursor?: string; action?: string }) {
  const after = decodeCursor(query.cursor, 1, ([id]) => isUuid(id!));
  const events = await em.find(
    AuditEvent,
    {
      organizationId,
      ...(query.action ? { action: query.action } : {}),
      ...(after ? { id: { $lt: after[0] } } : {}),
    },
    { orderBy: { id: 'desc' }, limit: query.limit + 1 },
  );
  return page(events, query.limit, (event) => [event.id]);
}
