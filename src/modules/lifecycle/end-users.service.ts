import type { Em } from '../../db/orm.ts';
import type { components } from '../../generated/openapi.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import * as conversations from '../conversations/conversations.repository.ts';

type ErasureResult = components['schemas']['ErasureResult'];

/**
 * Deletes every chat of one end user of the organization, and their messages, in one transaction
 * with its audit event. Nothing to delete is not an error: the answer is 0/0, and the request is
 * audited all the same.
 *
 * The audit event keeps the `externalUserId` (as its target): it is what proves, later, that
 * this end user's data was erased, and when. It is the customer's pseudonymous id, not their
 * content, and the audit log is readable by admins only.
 */
export async function eraseEndUser(em: Em, organizationId: string, externalUserId: string, actor: Actor): Promise<ErasureResult> {
  return em.transactional(async (tx) => {
    const removed = await conversations.eraseEndUser(tx, organizationId, externalUserId);
    recordAudit(tx, {
      organizationId,
      action: 'enduser.erased',
      actor,
      target: { type: 'endUser', id: externalUserId },
      details: { chats: removed.chats, messages: removed.messages },
    });
    return { externalUserId, ...removed };
  });
}
