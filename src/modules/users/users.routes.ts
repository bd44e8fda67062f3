import { Elysia } from 'elysia';
import type { Auth } from '../../http/auth.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import type { components } from '../../generated/openapi.ts';
import { createUser, toUserDto, updateProfile } from './users.service.ts';

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
    .post(
      '/orgs/:org/users',
      async ({ em, caller, org, body, set }) => {
        const user = await createUser(em, org.id, body as RequestBody<'createUser'>, caller.user.role);
        set.status = 201;
        return toUserDto(user, org) satisfies UserDto;
      },
      { session: 'admin', operation: 'createUser' },
    );
