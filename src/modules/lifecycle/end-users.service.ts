import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';

type ErasureResult = components['schemas']['ErasureResult'];

/**
 * Deletes every chat of one end user of the organization, and their messages (ON DELETE
 * CASCADE), in one transaction with its audit event. Nothing to delete is not an error: the
 * answer is 0/0, and the request is audited all the same.
 *
 * The audit event keeps the `externalUserId` (as its target): it is what proves, later, that
 * this end user's data was erased, and when. It is the customer's pseudonymous id, not their
 * content, and the audit log is readable by admins only.
 */
export async function eraseEndUser(em: Em, organizationId: string, externalUserId: string, actor: Actor): Promise<ErasureResult> {
  return em.transactional(async (tx) => {
    // Lock the chats first (waiting for a message being added to one of them), so that the
    // count below, on a snapshot taken after the locks, is exactly what the cascade deletes.
    await tx.execute(`select id from chats where organization_id = ? and external_user_id = ? for update`, [organizationId, externalUserId]);
    const [counts] = await tx.execute<{ chats: number | string; messages: number | string }[]>(
      `with deleted as (
         delete from chats where organization_id = ? and external_user_id = ? returning id
       )
       select (select count(*) from deleted) as chats,
              (select count(*) from messages where organization_id = ? and chat_id in (select id from deleted)) as messages`,
      [organizationId, externalUserId, organizationId],
    );
    const result = { externalUserId, chats: Number(counts?.chats ?? 0), messages: Number(counts?.messages ?? 0) };
    recordAudit(tx, {
      organizationId,
      action: 'enduser.erased',
      actor,
      target: { type: 'endUser', id: externalUserId },
      details: { chats: result.chats, messages: result.messages },
    });
    return result;
  });
}
