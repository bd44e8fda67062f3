import type { Em } from '../../db/orm.ts';
import { iso } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, forbidden, notFound, validationFailed } from '../../http/problem.ts';
import { decodeCursor, page } from '../../http/cursor.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import { Organization } from './organization.entity.ts';
import { forgetOrganizationKeys } from '../apikeys/apikeys.service.ts';
import { Session, User } from '../users/user.entity.ts';
import { DEFAULT_SEARCH_LANGUAGE, type SearchLanguage } from '../conversations/search.ts';

type OrganizationDto = components['schemas']['Organization'];
type OrganizationUpdate = components['schemas']['OrganizationUpdate'];

/** Slugs that would be ambiguous in `/orgs/{org}` routes. */
const RESERVED_SLUGS = new Set(['me']);
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$/;

/** The organization's search language (`settings.searchLanguage`), 'simple' when unset. */
export const searchLanguageOf = (org: Organization): SearchLanguage => org.settings?.searchLanguage ?? DEFAULT_SEARCH_LANGUAGE;

export function toOrganizationDto(org: Organization): OrganizationDto {
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    active: org.active,
    settings: {
      retentionDays: org.settings?.retentionDays ?? null,
      ingestRateLimitPerMinute: org.settings?.ingestRateLimitPerMinute ?? null,
      searchLanguage: searchLanguageOf(org),
    },
    createdAt: iso(org.createdAt),
    updatedAt: iso(org.updatedAt),
  };
}

export async function createOrganization(em: Em, input: { name: string; slug: string }, actor: Actor | null): Promise<Organization> {
  if (!SLUG.test(input.slug)) {
    throw validationFailed([{ pointer: '/body/slug', message: 'must be 2-63 lowercase letters, digits or inner hyphens' }]);
  }
  if (RESERVED_SLUGS.has(input.slug)) throw conflict(`The slug "${input.slug}" is reserved.`);
  if (await em.count(Organization, { slug: input.slug })) throw conflict(`The slug "${input.slug}" is taken.`);
  return em.transactional(async (tx) => {
    const org = tx.create(Organization, { name: input.name.trim(), slug: input.slug });
    // Entities here reference each other by plain ids, so the unit of work cannot order the
    // inserts: the organization is written before the event that points at it.
    await tx.flush();
    recordAudit(tx, { organizationId: org.id, action: 'organization.created', actor, target: { type: 'organization', id: org.id }, details: { name: org.name, slug: org.slug } });
    return org;
  });
}

export async function findOrganizationBySlug(em: Em, slug: string): Promise<Organization> {
  const org = await em.findOne(Organization, { slug });
  if (!org) throw notFound('organization');
  return org;
}

/** Every organization, by slug. */
export async function listOrganizations(em: Em, query: { limit: number; cursor?: string }) {
  const after = decodeCursor(query.cursor, 1);
  const orgs = await em.find(Organization, after ? { slug: { $gt: after[0] } } : {}, { orderBy: { slug: 'asc' }, limit: query.limit + 1 });
  return page(orgs, query.limit, (org) => [org.slug]);
}

/**
 * Renames, changes settings, or (superadmin only) deactivates or reactivates an organization.
 * Deactivation keeps the data; keys are refused from the next request on, and sessions end
 * (reactivation revives the keys, not the sessions).
 */
export async function updateOrganization(
  em: Em,
  org: Organization,
  change: OrganizationUpdate,
  caller: { actor: Actor; isSuperadmin: boolean; organizationId: string },
): Promise<Organization> {
  const fields: string[] = [];
  if (change.active !== undefined && change.active !== org.active) {
    if (!caller.isSuperadmin) throw forbidden('Only a superadmin may deactivate or reactivate an organization.');
    if (!change.active && org.id === caller.organizationId) throw conflict('You cannot deactivate your own organization.');
    org.active = change.active;
    fields.push('active');
  }
  if (change.name !== undefined && change.name.trim() !== org.name) {
    org.name = change.name.trim();
    fields.push('name');
  }
  if (change.settings?.retentionDays !== undefined && change.settings.retentionDays !== (org.settings?.retentionDays ?? null)) {
    org.settings = { ...org.settings, retentionDays: change.settings.retentionDays };
    fields.push('settings.retentionDays');
  }
  const language = change.settings?.searchLanguage;
  if (language !== undefined && language !== searchLanguageOf(org)) {
    org.settings = { ...org.settings, searchLanguage: language };
    fields.push('settings.searchLanguage');
  }
  const rateLimit = change.settings?.ingestRateLimitPerMinute;
  if (rateLimit !== undefined && rateLimit !== (org.settings?.ingestRateLimitPerMinute ?? null)) {
    if (!caller.isSuperadmin) throw forbidden('Only a superadmin may change an organization\'s ingestion rate limit.');
    org.settings = { ...org.settings, ingestRateLimitPerMinute: rateLimit };
    fields.push('settings.ingestRateLimitPerMinute');
  }
  if (fields.length) {
    recordAudit(em, {
      organizationId: org.id,
      action: 'organization.updated',
      actor: caller.actor,
      target: { type: 'organization', id: org.id },
      details: {
        fields,
        active: org.active,
        retentionDays: org.settings?.retentionDays ?? null,
        ingestRateLimitPerMinute: org.settings?.ingestRateLimitPerMinute ?? null,
        searchLanguage: searchLanguageOf(org),
      },
    });
    await em.flush();
    // Deactivation ends the organization's sessions, as a user's deactivation ends theirs: a
    // later reactivation must not revive the tokens issued before.
    if (fields.includes('active') && !org.active) {
      const members = await em.find(User, { organizationId: org.id }, { fields: ['id'] });
      if (members.length) await em.nativeUpdate(Session, { userId: { $in: members.map((u) => u.id) }, revokedAt: null }, { revokedAt: new Date() });
    }
    // A deactivated organization's keys stop working here at once (elsewhere within the cache's TTL).
    forgetOrganizationKeys(org.id);
  }
  return org;
}
