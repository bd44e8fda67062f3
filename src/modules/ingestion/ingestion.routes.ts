import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import type { IngestRateLimit } from './ingest-rate-limit.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import { prepareChat } from '../chats/chats.service.ts';
import { appendMessages, prepareAppend } from '../messages/messages.service.ts';
import type { components } from '../../generated/openapi.ts';
import type { IngestWriters } from './writers.ts';
import { metrics } from '../../observability/metrics.ts';

/**
 * The public API that chat plugins call with an organization API key. Single messages and new
 * chats go through the group-commit writers; a batch is one request's own transaction.
 */
export const ingestionRoutes = (auth: Auth, writers: IngestWriters, rateLimit: IngestRateLimit) =>
  new Elysia({ name: 'ingestion-routes', prefix: '/api/v1/orgs/:slug' })
    .use(auth)
    .use(rateLimit)
    .use(contract)
    .post(
      '/chats',
      async ({ tenant, body, set }) => {
        const { chat, created } = await writers.chats.submit(prepareChat(tenant.organizationId, body as RequestBody<'createChat'>));
        set.status = created ? 201 : 200;
        if (created) metrics.chatsCreated.inc();
        return chat satisfies components['schemas']['Chat'];
      },
      { apiKey: true, ingestRateLimit: true, operation: 'createChat' },
    )
    .post(
      '/chats/:chatId/messages',
      async ({ tenant, params, body, set }) => {
        const append = prepareAppend(tenant.organizationId, params.chatId, [body as RequestBody<'createMessage'>], () => '/body');
        const { messages, created } = await writers.messages.submit(append);
        set.status = created ? 201 : 200;
        metrics.messagesStored.inc(created);
        return messages[0]! satisfies components['schemas']['Message'];
      },
      { apiKey: true, ingestRateLimit: true, operation: 'createMessage' },
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
        metrics.messagesStored.inc(created);
        return { items: messages, created } satisfies components['schemas']['MessageBatch'];
      },
      { apiKey: true, ingestRateLimit: true, operation: 'createMessageBatch' },
    );
