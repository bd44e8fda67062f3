import { Elysia } from 'elysia';
import type { Auth } from '../../http/auth.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { createOrganization, toOrganizationDto } from './orgs.service.ts';

export const orgRoutes = (auth: Auth) =>
  new Elysia({ name: 'org-routes' })
    .use(auth)
    .use(contract)
    .post(
      '/orgs',
      async ({ em, body, set }) => {
        const org = await createOrganization(em, body as RequestBody<'createOrganization'>);
        set.status = 201;
        return toOrganizationDto(org) satisfies components['schemas']['Organization'];
      },
      { session: 'superadmin', operation: 'createOrganization' },
    );
