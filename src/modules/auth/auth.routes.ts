import { Elysia } from 'elysia';
import type { Config } from '../../config.ts';
import { sessionClaims, sessionCookie, type Auth, type SessionClaims } from './auth.plugin.ts';
import { SESSION_COOKIE } from '../../http/csrf.ts';
import { clientIp } from '../../http/client-ip.ts';
import { contract, type RequestBody } from '../../http/contract.ts';
import { HttpError } from '../../http/problem.ts';
import { iso } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { toUserDto } from '../users/users.service.ts';
import { login, logout } from './auth.service.ts';
import type { LoginThrottle } from './login-throttle.ts';

export const authRoutes = (config: Config, auth: Auth, throttle: LoginThrottle) =>
  new Elysia({ name: 'auth-routes', prefix: '/auth' })
    .use(auth)
    .use(contract)
    .macro({
      // Before the body is read (the `operation` macro reads it): a flood from one address costs
      // no parsing.
      loginAddressLimit: {
        async beforeHandle({ request, set }) {
          Object.assign(set.headers, await throttle.admitAddress(clientIp(request, config.trustProxy)));
        },
      },
    })
    .post(
      '/login',
      async ({ em, jwt, body, cookie, request, set }) => {
        const { email, password, issueToken } = body as RequestBody<'login'>;
        // Before the password is checked: a locked email costs no argon2 verification, and the
        // attempt is counted before it runs, so parallel guesses cannot outrun the lock.
        Object.assign(set.headers, (await throttle.admit(email, set.headers as Record<string, string>)).headers);
        let caller;
        try {
          caller = await login(em, email, password, config.sessionTtlSeconds);
        } catch (error) {
          if (error instanceof HttpError && error.status === 401) await throttle.failed(email);
          throw error;
        }
        await throttle.succeeded(email);
        const { user, organization, session } = caller;
        const claims: SessionClaims = { sub: user.id, sid: session.id };
        const token = await jwt.sign({ ...claims, exp: Math.floor(session.expiresAt.getTime() / 1000) });
        cookie[SESSION_COOKIE]!.set({ value: token, ...sessionCookie(config, request), expires: session.expiresAt });
        // The token goes in the body only when a non-browser client asks: for a browser the
        // session stays in the HttpOnly cookie, out of reach of page scripts.
        return {
          user: toUserDto(user, organization),
          ...(issueToken ? { token } : {}),
          expiresAt: iso(session.expiresAt),
        } satisfies components['schemas']['Session'];
      },
      { loginAddressLimit: true, operation: 'login' },
    )
    .post(
      '/logout',
      async ({ em, jwt, cookie, headers, set, request }) => {
        const claims = await sessionClaims(config, jwt, { authorization: headers.authorization, cookie: cookie[SESSION_COOKIE]?.value });
        if (claims) await logout(em, claims.sid);
        cookie[SESSION_COOKIE]!.set({ value: '', ...sessionCookie(config, request), maxAge: 0 });
        set.status = 204;
      },
      { operation: 'logout' },
    );
