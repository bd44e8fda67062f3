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
  if (await em.count(User, { email: normalizeEmail(email) })) return 'exists';
  try {
    const system = await ensureSystemOrganization(em);
    await createUser(em, system.id, { email, password, role: 'superadmin' }, null);
    return 'created';
  } catch (error) {
    // Several instances starting together: whoever lost the race finds the admin in place.
    if (error instanceof UniqueConstraintViolationException || (error as { status?: number }).status === 409) {
      if (await em.fork().count(User, { email: normalizeEmail(email) })) return 'exists';
    }
    throw error;
  }
}

async function ensureSystemOrganization(em: Em): Promise<Organization> {
  await query(em, `insert into organizations (id, name, slug) values ($1, 'System', $2) on conflict (slug) do nothing`, [Bun.randomUUIDv7(), SYSTEM_ORG_SLUG]);
  return em.findOneOrFail(Organization, { slug: SYSTEM_ORG_SLUG });
}
