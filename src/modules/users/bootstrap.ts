import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import { Organization, SYSTEM_ORG_SLUG } from '../orgs/organization.entity.ts';
import { User } from './user.entity.ts';
import { createUser, normalizeEmail } from './users.service.ts';

/**
 * Headless bootstrap: makes sure the configured superadmin exists, in the system organization.
 * Idempotent across restarts; an existing user is left as it is (its password is not reset).
 */
export async function ensureAdmin(em: Em, email: string, password: string): Promise<'created' | 'exists'> {
  const system = await ensureSystemOrganization(em);
  // Only the system organization's accounts count: a tenant's account with the same email is
  // another account (see Migration20261203000000_users_email_per_organization).
  const exists = async (fork: Em) => (await fork.count(User, { organizationId: system.id, email: normalizeEmail(email) })) > 0;
  if (await exists(em)) return 'exists';
  try {
    await createUser(em, system.id, { email, password, role: 'superadmin' }, null);
    return 'created';
  } catch (error) {
    // Several instances starting together: whoever lost the race finds the admin in place.
    if (error instanceof UniqueConstraintViolationException || (error as { status?: number }).status === 409) {
      if (await exists(em.fork())) return 'exists';
    }
    throw error;
  }
}

async function ensureSystemOrganization(em: Em): Promise<Organization> {
  await query(em, `insert into organizations (id, name, slug) values ($1, 'System', $2) on conflict (slug) do nothing`, [Bun.randomUUIDv7(), SYSTEM_ORG_SLUG]);
  return em.findOneOrFail(Organization, { slug: SYSTEM_ORG_SLUG });
}
