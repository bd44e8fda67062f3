import type { Em } from '../../db/orm.ts';
import { iso } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, notFound, validationFailed } from '../../http/problem.ts';
import { Organization } from './organization.entity.ts';

type OrganizationDto = components['schemas']['Organization'];

/** Slugs that would be ambiguous in `/orgs/{org}` routes. */
const RESERVED_SLUGS = new Set(['me']);
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$/;

export function toOrganizationDto(org: Organization): OrganizationDto {
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    active: org.active,
    createdAt: iso(org.createdAt),
    updatedAt: iso(org.updatedAt),
  };
}

export async function createOrganization(em: Em, input: { name: string; slug: string }): Promise<Organization> {
  if (!SLUG.test(input.slug)) {
    throw validationFailed([{ pointer: '/body/slug', message: 'must be 2-63 lowercase letters, digits or inner hyphens' }]);
  }
  if (RESERVED_SLUGS.has(input.slug)) throw conflict(`The slug "${input.slug}" is reserved.`);
  if (await em.count(Organization, { slug: input.slug })) throw conflict(`The slug "${input.slug}" is taken.`);
  const org = em.create(Organization, { name: input.name.trim(), slug: input.slug });
  await em.flush();
  return org;
}

export async function findOrganizationBySlug(em: Em, slug: string): Promise<Organization> {
  const org = await em.findOne(Organization, { slug });
  if (!org) throw notFound('organization');
  return org;
}
