import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { eraseEndUser } from './end-users.service.ts';

/** Data-subject requests about one end user (the customer's `externalUserId`). */
export const endUserRoutes = (auth: Auth) =>
  new Elysia({ name: 'end-user-routes', prefix: '/orgs/:org/end-users' })
    .use(auth)
    .use(contract)
    .delete(
      // The framework hands the parameter over URL-decoded (`a%2Fb` is `a/b`).
      '/:externalUserId',
      async ({ em, org, caller, params }) =>
        (await eraseEndUser(em, org.id, params.externalUserId, caller.user)) satisfies components['schemas']['ErasureResult'],
      { session: 'admin', operation: 'eraseEndUser' },
    );
