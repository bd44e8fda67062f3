import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { createApiKey, listApiKeys, revokeApiKey, toApiKeyDto } from './apikeys.service.ts';

export const apiKeyRoutes = (auth: Auth) =>
  new Elysia({ name: 'apikey-routes', prefix: '/orgs/:org/apikeys' })
    .use(auth)
    .use(contract)
    .get(
      '',
      async ({ em, org }) => ({ items: (await listApiKeys(em, org.id)).map(toApiKeyDto) }) satisfies components['schemas']['ApiKeyList'],
      { session: 'admin', operation: 'listApiKeys' },
    )
    .post(
      '',
      async ({ em, org, caller, body, set }) => {
        const { key, rawKey } = await createApiKey(em, org.id, body as RequestBody<'createApiKey'>, caller.user);
        set.status = 201;
        return { ...toApiKeyDto(key), key: rawKey } satisfies components['schemas']['ApiKeyWithSecret'];
      },
      { session: 'admin', operation: 'createApiKey' },
    )
    .delete(
      '/:keyId',
      async ({ em, org, caller, params, set }) => {
        await revokeApiKey(em, org.id, params.keyId, caller.user);
        set.status = 204;
      },
      { session: 'admin', operation: 'revokeApiKey' },
    );
