import { Elysia } from 'elysia';
import type { Auth } from '../../http/auth.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import { createChat, toChatDto } from '../chats/chats.service.ts';
import { appendMessages, toMessageDto } from '../messages/messages.service.ts';
import type { components } from '../../generated/openapi.ts';

/** The public API that chat plugins call with an organization API key. */
export const ingestionRoutes = (auth: Auth) =>
  new Elysia({ name: 'ingestion-routes', prefix: '/api/v1/orgs/:slug' })
    .use(auth)
    .use(contract)
    .post(
      '/chats',
      async ({ em, tenant, body, set }) => {
        const { chat, created } = await createChat(em, tenant.organizationId, body as RequestBody<'createChat'>);
        set.status = created ? 201 : 200;
        return toChatDto(chat) satisfies components['schemas']['Chat'];
      },
      { apiKey: true, operation: 'createChat' },
    )
    .post(
      '/chats/:chatId/messages',
      async ({ em, tenant, params, body, set }) => {
        const input = body as RequestBody<'createMessage'>;
        const { messages, created } = await appendMessages(em, tenant.organizationId, params.chatId, [input], () => '/body');
        set.status = created ? 201 : 200;
        return toMessageDto(messages[0]!) satisfies components['schemas']['Message'];
      },
      { apiKey: true, operation: 'createMessage' },
    )
    .post(
      '/chats/:chatId/messages/batch',
      async ({ em, tenant, params, body, set }) => {
        const input = body as RequestBody<'createMessageBatch'>;
        const { messages, created } = await appendMessages(
          em,
          tenant.organizationId,
          params.chatId,
          input.messages,
          (index) => `/body/messages/${index}`,
        );
        set.status = created ? 201 : 200;
        return { items: messages.map(toMessageDto), created } satisfies components['schemas']['MessageBatch'];
      },
      { apiKey: true, operation: 'createMessageBatch' },
    );
