import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { createOrganization, listOrganizations, toOrganizationDto, updateOrganization } from './orgs.service.ts';

type OrganizationDto = components['schemas']['Organization'];

export const orgRoutes = (auth: Auth) =>
  new Elysia({ name: 'org-routes', prefix: '/orgs' })
    .use(auth)
    .use(contract)
    .get(
      '',
      async ({ em, query }) => {
        const { items, nextCursor } = await listOrganizations(em, queryOf('listOrganizations', query));
        return { items: items.map(toOrganizationDto), nextCursor } satisfies components['schemas']['OrganizationList'];
      },
      { session: 'superadmin', operation: 'listOrganizations' },
    )
    .post(
      '',
      async ({ em, body, caller, set }) => {
        const org = await createOrganization(em, body as RequestBody<'createOrganization'>, caller.user);
        set.status = 201;
        return toOrganizationDto(org) satisfies OrganizationDto;
      },
      { session: 'superadmin', operation: 'createOrganization' },
    )
    .get('/:org', ({ org }) => toOrganizationDto(org) satisfies OrganizationDto, { session: 'viewer', operation: 'getOrganization' })
    .patch(
      '/:org',
      async ({ em, org, caller, body }) => {
        const updated = await updateOrganization(em, org, body as RequestBody<'updateOrganization'>, {
          actor: caller.user,
          isSuperadmin: caller.user.role === 'superadmin',
          organizationId: caller.organization.id,
        });
        return toOrganizationDto(updated) satisfies OrganizationDto;
      },
      { session: 'admin', operation: 'updateOrganization' },
    );
