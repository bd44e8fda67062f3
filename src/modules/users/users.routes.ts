import { Elysia } from 'elysia';
import type { Auth } from '../auth/auth.plugin.ts';
import { contract, queryOf, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { createUser, deleteUser, listUsers, toUserDto, updateProfile, updateUser } from './users.service.ts';

type UserDto = components['schemas']['User'];

export const userRoutes = (auth: Auth) =>
  new Elysia({ name: 'user-routes' })
    .use(auth)
    .use(contract)
    .get('/users/me', ({ caller }) => toUserDto(caller.user, caller.organization) satisfies UserDto, {
      session: 'viewer',
      operation: 'getMe',
    })
    .patch(
      '/users/me',
      async ({ em, caller, body }) => {
        const user = await updateProfile(em, caller.user, body as RequestBody<'updateMe'>, caller.sessionId);
        return toUserDto(user, caller.organization) satisfies UserDto;
      },
      { session: 'viewer', operation: 'updateMe' },
    )
    .get(
      '/orgs/:org/users',
      async ({ em, org, query }) => {
        const { items, nextCursor } = await listUsers(em, org.id, queryOf('listUsers', query));
        return { items: items.map((user) => toUserDto(user, org)), nextCursor } satisfies components['schemas']['UserList'];
      },
      { session: 'admin', operation: 'listUsers' },
    )
    .post(
      '/orgs/:org/users',
      async ({ em, caller, org, body, set }) => {
        const user = await createUser(em, org.id, body as RequestBody<'createUser'>, caller.user);
        set.status = 201;
        return toUserDto(user, org) satisfies UserDto;
      },
      { session: 'admin', operation: 'createUser' },
    )
    .patch(
      '/orgs/:org/users/:userId',
      async ({ em, caller, org, params, body }) => {
        const user = await updateUser(em, org.id, params.userId, body as RequestBody<'updateUser'>, caller.user);
        return toUserDto(user, org) satisfies UserDto;
      },
      { session: 'admin', operation: 'updateUser' },
    )
    .delete(
      '/orgs/:org/users/:userId',
      async ({ em, caller, org, params, set }) => {
        await deleteUser(em, org.id, params.userId, caller.user);
        set.status = 204;
      },
      { session: 'admin', operation: 'deleteUser' },
    );
