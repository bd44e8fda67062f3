import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { listChatMessages } from '../messages/messages.service.ts';
import { deleteChat, findChat, listChats, updateChat } from './chats.service.ts';
import { searchLanguageOf } from '../orgs/orgs.service.ts';

/** The dashboard's conversation reading and curation. */
export const chatRoutes = (auth: Auth) =>
  new Elysia({ name: 'chat-routes', prefix: '/orgs/:org/chats' })
    .use(auth)
    .use(contract)
    .get(
      '',
      async ({ em, org, query }) => {
        const { items, nextCursor, highlight } = await listChats(em, org.id, queryOf('listChats', query), searchLanguageOf(org));
        return (highlight ? { items, nextCursor, highlight } : { items, nextCursor }) satisfies components['schemas']['ChatList'];
      },
      { session: 'viewer', operation: 'listChats' },
    )
    .get(
      '/:chatId',
      async ({ em, org, params }) => (await findChat(em, org.id, params.chatId)) satisfies components['schemas']['Chat'],
      { session: 'viewer', operation: 'getChat' },
    )
    .patch(
      '/:chatId',
      async ({ em, org, caller, params, body }) => {
        const chat = await updateChat(em, org.id, params.chatId, body as RequestBody<'updateChat'>, caller.user);
        return chat satisfies components['schemas']['Chat'];
      },
      { session: 'user', operation: 'updateChat' },
    )
    .delete(
      '/:chatId',
      async ({ em, org, caller, params, set }) => {
        await deleteChat(em, org.id, params.chatId, caller.user);
        set.status = 204;
      },
      { session: 'admin', operation: 'deleteChat' },
    )
    .get(
      '/:chatId/messages',
      async ({ em, org, params, query }) => {
        const { items, nextCursor } = await listChatMessages(em, org.id, params.chatId, queryOf('listChatMessages', query));
        return { items, nextCursor } satisfies components['schemas']['MessageList'];
      },
      { session: 'viewer', operation: 'listChatMessages' },
    );
