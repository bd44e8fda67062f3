import { Elysia } from 'elysia';
import { jwt } from '@elysiajs/jwt';
import { jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { Config } from '../../config.ts';
import { resolveSession, type Caller } from './auth.service.ts';
import { authenticateApiKey } from '../apikeys/apikeys.service.ts';
import { ingestionCors } from '../../http/cors.ts';
import { SESSION_COOKIE } from '../../http/csrf.ts';
import { isUuid } from '../../http/ids.ts';
import { findOrganizationBySlug } from '../orgs/orgs.service.ts';
import type { Organization } from '../orgs/organization.entity.ts';
import { roleAtLeast, type Role } from '../users/user.entity.ts';
import type { RequestContext } from '../../http/context.ts';
import { forbidden, notFound, unauthorized } from '../../http/problem.ts';

export const API_KEY_HEADER = 'x-organization-api-key';

export interface SessionClaims {
  sub: string;
  sid: string;
}

type Verifier = { verify(token: string, options: object): Promise<Record<string, unknown> | false> };

/**
 * The session claims of a request, from `Authorization: Bearer` or the cookie, verified with the
 * algorithm pinned and issuer and audience checked; null when absent or not valid.
 */
export async function sessionClaims(
  config: Config,
  jwt: Verifier,
  request: { authorization?: string; cookie?: unknown },
): Promise<SessionClaims | null> {
  const token = request.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? (typeof request.cookie === 'string' ? request.cookie : undefined);
  if (!token) return null;
  const options = { algorithms: ['HS256'], issuer: config.jwtIssuer, audience: config.jwtAudience, requiredClaims: ['exp'] };
  const claims = (await jwt.verify(token, options)) || (await verifyWithPreviousSecrets(config.jwtPreviousSecrets, token, options));
  // Only a token signed with our secret gets here, but its ids still go to SQL as uuids.
  if (!claims || typeof claims.sub !== 'string' || typeof claims.sid !== 'string' || !isUuid(claims.sub) || !isUuid(claims.sid)) return null;
  return { sub: claims.sub, sid: claims.sid };
}

/**
 * Tokens signed before a JWT_SECRET rotation, with a secret now in JWT_PREVIOUS_SECRETS, are
 * accepted until they expire; new tokens are only ever signed with JWT_SECRET.
 */
async function verifyWithPreviousSecrets(secrets: string[], token: string, options: JWTVerifyOptions): Promise<JWTPayload | false> {
  for (const secret of secrets) {
    try {
      return (await jwtVerify(token, new TextEncoder().encode(secret), options)).payload;
    } catch {
      // not this one
    }
  }
  return false;
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
        async resolve({ em, headers, params, set }) {
          const slug = (params as Record<string, string> | undefined)?.slug ?? '';
          const tenant = await authenticateApiKey(em, slug, headers[API_KEY_HEADER], config.apiKeyCacheSeconds);
          if (!tenant) throw unauthorized(`A valid API key of organization "${slug}" is required in the ${API_KEY_HEADER} header.`);
          // A key limited to some browser origins is refused from others (403).
          Object.assign(set.headers, ingestionCors(tenant.allowedOrigins, headers.origin));
          return { tenant };
        },
      },
      session(minimumRole: Role) {
        return {
          async resolve({ em, jwt, cookie, headers, params }) {
            const presented = headers.authorization ?? cookie[SESSION_COOKIE]?.value;
            if (!presented) throw unauthorized();
            const claims = await sessionClaims(config, jwt, { authorization: headers.authorization, cookie: cookie[SESSION_COOKIE]?.value });
            if (!claims) throw unauthorized('The session is invalid or has expired; log in again.');
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

/** The session cookie's attributes; `expires` or `maxAge` is added by the caller. */
export function sessionCookie(config: Config, request: Request) {
  return { httpOnly: true, sameSite: 'lax' as const, secure: cookieSecure(config, request), path: '/' };
}

function cookieSecure(config: Config, request: Request): boolean {
  if (config.cookieSecure !== 'auto') return config.cookieSecure === 'always';
  if (config.env === 'production') return true;
  return new URL(request.url).protocol === 'https:' || request.headers.get('x-forwarded-proto') === 'https';
}

export type Auth = ReturnType<typeof auth>;
