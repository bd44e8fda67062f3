import { Elysia } from 'elysia';
import { jwt } from '@elysiajs/jwt';
import type { Config } from '../config.ts';
import { resolveSession, type Caller } from '../modules/auth/auth.service.ts';
import { authenticateApiKey } from '../modules/apikeys/apikeys.service.ts';
import { findOrganizationBySlug } from '../modules/orgs/orgs.service.ts';
import type { Organization } from '../modules/orgs/organization.entity.ts';
import { roleAtLeast, type Role } from '../modules/users/user.entity.ts';
import type { RequestContext } from './context.ts';
import { forbidden, notFound, unauthorized } from './problem.ts';

export const SESSION_COOKIE = 'chatlogger_session';
export const API_KEY_HEADER = 'x-organization-api-key';

export interface SessionClaims {
  sub: string;
  sid: string;
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/**
 * Authentication for both audiences, declared per route:
 * - `{ apiKey: true }`: an organization API key valid for the `:slug` in the path; puts `tenant`
 *   in the context.
 * - `{ session: 'viewer' | 'user' | 'admin' | 'superadmin' }`: a dashboard session of at least
 *   that role; puts `caller` in the context and, on `/orgs/:org/...` routes, the `org` the caller
 *   may act on (another tenant's organization is a 404, like one that does not exist).
 */
export const auth = (config: Config, context: RequestContext) =>
  new Elysia({ name: 'auth' })
    .use(context)
    .use(
      jwt({
        name: 'jwt',
        secret: config.jwtSecret,
        alg: 'HS256',
        iss: config.jwtIssuer,
        aud: config.jwtAudience,
        exp: `${config.sessionTtlSeconds}s`,
      }),
    )
    .macro({
      apiKey: {
        async resolve({ em, headers, params }) {
          const slug = (params as Record<string, string> | undefined)?.slug ?? '';
          const tenant = await authenticateApiKey(em, slug, headers[API_KEY_HEADER]);
          if (!tenant) throw unauthorized(`A valid API key of organization "${slug}" is required in the ${API_KEY_HEADER} header.`);
          return { tenant };
        },
      },
      session(minimumRole: Role) {
        return {
          async resolve({ em, jwt, cookie, headers, params }) {
            const token = bearerToken(headers.authorization) ?? (cookie[SESSION_COOKIE]?.value as string | undefined);
            if (!token) throw unauthorized();
            const claims = await jwt.verify(token, {
              algorithms: ['HS256'],
              issuer: config.jwtIssuer,
              audience: config.jwtAudience,
            });
            if (!claims || typeof claims.sub !== 'string' || typeof claims.sid !== 'string') {
              throw unauthorized('The session is invalid or has expired; log in again.');
            }
            const caller = await resolveSession(em, claims.sid, claims.sub);
            if (!caller) throw unauthorized('The session is invalid or has expired; log in again.');

            const orgRef = (params as Record<string, string | undefined> | undefined)?.org;
            const org = orgRef === undefined ? caller.organization : await organizationFor(caller, orgRef, em);
            if (!roleAtLeast(caller.user.role, minimumRole)) throw forbidden();
            return { caller, org };
          },
        };
      },
    });

async function organizationFor(caller: Caller, ref: string, em: Parameters<typeof findOrganizationBySlug>[0]): Promise<Organization> {
  if (ref === 'me' || ref === caller.organization.slug) return caller.organization;
  if (caller.user.role !== 'superadmin') throw notFound('organization');
  return findOrganizationBySlug(em, ref);
}

export function cookieSecure(config: Config, request: Request): boolean {
  if (config.cookieSecure !== 'auto') return config.cookieSecure === 'always';
  if (config.env === 'production') return true;
  return new URL(request.url).protocol === 'https:' || request.headers.get('x-forwarded-proto') === 'https';
}

export type Auth = ReturnType<typeof auth>;
