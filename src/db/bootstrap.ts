import type { Em } from './orm.ts';
import { Organization, SYSTEM_ORG_SLUG } from '../modules/orgs/organization.entity.ts';
import { User } from '../modules/users/user.entity.ts';
import { createUser, normalizeEmail } from '../modules/users/users.service.ts';

/**
 * Headless bootstrap: makes sure the configured superadmin exists, in the system organization.
 * Idempotent across restarts; an existing user is left as it is (its password is not reset).
 */
export async function ensureAdmin(em: Em, email: string, password: string): Promise<'created' | 'exists'> {
  if (await em.count(User, { email: normalizeEmail(email) })) return 'exists';
  let system = await em.findOne(Organization, { slug: SYSTEM_ORG_SLUG });
  if (!system) {
    system = em.create(Organization, { name: 'System', slug: SYSTEM_ORG_SLUG });
    await em.flush();
  }
  await createUser(em, system.id, { email, password, role: 'superadmin' }, 'system');
  return 'created';
}
