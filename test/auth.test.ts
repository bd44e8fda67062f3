import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { addUser, BASE_URL, createTenant, createTestApp, login, PASSWORD, superadminToken, type Tenant, type TestApp } from './support/harness.ts';

const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';
const COOKIE = 'chatlogger_session';

setDefaultTimeout(30_000);

let t: TestApp;
let tenant: Tenant;
beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
});

const jsonInit = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

const loginRequest = (email: string, password: string, url = `${BASE_URL}/auth/login`, headers: Record<string, string> = {}) =>
  new Request(url, jsonInit('POST', { email, password }, headers));

function sessionCookie(response: Response): string | undefined {
  return response.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`));
}

function cookieAttributes(setCookie: string) {
  const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
  const map = new Map<string, string>();
  for (const attr of attrs) {
    const [name, ...rest] = attr.split('=');
    map.set(name!.toLowerCase(), rest.join('='));
  }
  return { value: pair!.slice(COOKIE.length + 1), attrs: map };
}

const isSecure = (setCookie: string) => cookieAttributes(setCookie).attrs.has('secure');

async function meStatus(auth: { token?: string; cookie?: string }) {
  const { response } = await t.client(auth).GET('/users/me');
  return response.status;
}

const deactivateUser = (id: string) => t.db.fork().execute('update users set active = false where id = ?', [id]);

async function craftToken(
  claims: { sub: string; sid: string },
  { secret = TEST_SECRET, issuer = 'chatlogger', audience = 'chatlogger-dashboard', exp = '1h' as string | number, alg = 'HS256' } = {},
) {
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

function claimsOf(token: string) {
  const payload = decodeJwt(token);
  return { sub: payload.sub as string, sid: payload.sid as string };
}

function flipSignatureChar(token: string): string {
  const [header, payload, signature] = token.split('.');
  const i = Math.floor(signature!.length / 2);
  const replacement = signature![i] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${signature!.slice(0, i)}${replacement}${signature!.slice(i + 1)}`;
}

function withPayload(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.');
  const decoded = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(decoded);
  return `${header}.${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${signature}`;
}

describe('POST /auth/login', () => {
  test('returns the user, a token and its expiry, and sets the session cookie', async () => {
    const user = await addUser(t, tenant, 'user');
    const { data, response } = await t.client().POST('/auth/login', { body: { email: user.email, password: PASSWORD, issueToken: true } });
    expect(response.status).toBe(200);
    expect(data!.user.id).toBe(user.id);
    expect(data!.user.email).toBe(user.email);
    expect(data!.user.organizationSlug).toBe(tenant.slug);
    expect(data!.user.lastLoginAt).not.toBeNull();
    expect(data!.token!.split('.')).toHaveLength(3);
    expect(Date.parse(data!.expiresAt)).toBeGreaterThan(Date.now());

    const setCookie = sessionCookie(response);
    expect(setCookie).toBeDefined();
    const { value, attrs } = cookieAttributes(setCookie!);
    expect(value).toBe(data!.token!);
    expect(attrs.has('httponly')).toBe(true);
    expect(attrs.get('samesite')?.toLowerCase()).toBe('lax');
    expect(attrs.get('path')).toBe('/');
    expect(attrs.has('expires')).toBe(true);
    expect(Math.abs(Date.parse(attrs.get('expires')!) - Date.parse(data!.expiresAt))).toBeLessThan(1500);
    expect(attrs.has('secure')).toBe(false);
  });

  test('a login that does not ask for a bearer token (a browser) gets the HttpOnly cookie only', async () => {
    const user = await addUser(t, tenant, 'user');
    for (const body of [{ email: user.email, password: PASSWORD }, { email: user.email, password: PASSWORD, issueToken: false }]) {
      const { data, response } = await t.client().POST('/auth/login', { body });
      expect(response.status).toBe(200);
      expect(data!.token).toBeUndefined();
      expect(Object.keys(data!).sort()).toEqual(['expiresAt', 'user']);
      const { value, attrs } = cookieAttributes(sessionCookie(response)!);
      expect(attrs.has('httponly')).toBe(true);
      // The cookie is the session.
      expect((await t.client({ cookie: `chatlogger_session=${value}` }).GET('/users/me')).response.status).toBe(200);
    }
  });

  test('the cookie is Secure when the request came over https', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const response = await t.app.handle(loginRequest(user.email, PASSWORD, 'https://chatlogger.test/auth/login'));
    expect(response.status).toBe(200);
    expect(isSecure(sessionCookie(response)!)).toBe(true);
  });

  test('the cookie is Secure behind a proxy that terminated https', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const response = await t.app.handle(loginRequest(user.email, PASSWORD, undefined, { 'x-forwarded-proto': 'https' }));
    expect(response.status).toBe(200);
    expect(isSecure(sessionCookie(response)!)).toBe(true);
  });

  test('the cookie is always Secure with COOKIE_SECURE=always', async () => {
    const strict = await createTestApp({ COOKIE_SECURE: 'always' }, t.db);
    const user = await addUser(t, tenant, 'viewer');
    const response = await strict.app.handle(loginRequest(user.email, PASSWORD));
    expect(response.status).toBe(200);
    expect(isSecure(sessionCookie(response)!)).toBe(true);
  });

  test('the cookie is never Secure with COOKIE_SECURE=never', async () => {
    const lax = await createTestApp({ COOKIE_SECURE: 'never' }, t.db);
    const user = await addUser(t, tenant, 'viewer');
    const response = await lax.app.handle(loginRequest(user.email, PASSWORD, 'https://chatlogger.test/auth/login'));
    expect(response.status).toBe(200);
    expect(isSecure(sessionCookie(response)!)).toBe(false);
  });

  test('wrong password and unknown email get the same answer', async () => {
    const user = await addUser(t, tenant, 'user');
    const wrongPassword = await t.app.handle(loginRequest(user.email, 'not-the-password'));
    const unknownEmail = await t.app.handle(loginRequest(`nobody-${user.email}`, PASSWORD));
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(wrongPassword.headers.get('content-type')).toBe(unknownEmail.headers.get('content-type'));
    expect(await wrongPassword.json()).toEqual(await unknownEmail.json());
    expect(sessionCookie(wrongPassword)).toBeUndefined();
  });

  test('the email is case-insensitive', async () => {
    const user = await addUser(t, tenant, 'user');
    const { data, response } = await t.client().POST('/auth/login', { body: { email: user.email.toUpperCase(), password: PASSWORD } });
    expect(response.status).toBe(200);
    expect(data!.user.id).toBe(user.id);
  });

  test('a deactivated user cannot log in and its token stops working', async () => {
    const user = await addUser(t, tenant, 'user');
    expect(await meStatus({ token: user.token })).toBe(200);
    await deactivateUser(user.id);
    const { response } = await t.client().POST('/auth/login', { body: { email: user.email, password: PASSWORD } });
    expect(response.status).toBe(401);
    expect(await meStatus({ token: user.token })).toBe(401);
  });
});

describe('session credentials', () => {
  test('the cookie alone authenticates', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const { data, response } = await t.client({ cookie: `${COOKIE}=${user.token}` }).GET('/users/me');
    expect(response.status).toBe(200);
    expect(data!.id).toBe(user.id);
  });

  test('a bearer token authenticates', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const { data, response } = await t.client({ token: user.token }).GET('/users/me');
    expect(response.status).toBe(200);
    expect(data!.id).toBe(user.id);
    expect(data!.role).toBe('viewer');
  });

  test('no credentials is a 401 problem', async () => {
    const { error, response } = await t.client().GET('/users/me');
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toStartWith('application/problem+json');
    expect(error!.status).toBe(401);
  });

  test('a token crafted with the right secret and claims is accepted', async () => {
    const user = await addUser(t, tenant, 'viewer');
    expect(await meStatus({ token: await craftToken(claimsOf(user.token)) })).toBe(200);
  });

  test('a token with a flipped signature character is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    expect(await meStatus({ token: flipSignatureChar(user.token) })).toBe(401);
    expect(await meStatus({ cookie: `${COOKIE}=${flipSignatureChar(user.token)}` })).toBe(401);
  });

  test('a token whose payload was changed is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const extended = withPayload(user.token, (p) => {
      p.exp = (p.exp as number) + 3600;
    });
    expect(await meStatus({ token: extended })).toBe(401);
    const other = withPayload(user.token, (p) => {
      p.role = 'superadmin';
    });
    expect(await meStatus({ token: other })).toBe(401);
  });

  test('a token signed with another secret is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const token = await craftToken(claimsOf(user.token), { secret: 'another-secret-that-is-at-least-32-characters' });
    expect(await meStatus({ token })).toBe(401);
  });

  test('an expired token is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const token = await craftToken(claimsOf(user.token), { exp: Math.floor(Date.now() / 1000) - 60 });
    expect(await meStatus({ token })).toBe(401);
  });

  test('a token for another issuer or audience is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const claims = claimsOf(user.token);
    expect(await meStatus({ token: await craftToken(claims, { issuer: 'someone-else' }) })).toBe(401);
    expect(await meStatus({ token: await craftToken(claims, { audience: 'another-app' }) })).toBe(401);
  });

  test('an unsigned (alg none) or differently signed token is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const claims = claimsOf(user.token);
    const unsigned = new UnsecuredJWT({ sid: claims.sid })
      .setSubject(claims.sub)
      .setIssuer('chatlogger')
      .setAudience('chatlogger-dashboard')
      .setExpirationTime('1h')
      .encode();
    expect(await meStatus({ token: unsigned })).toBe(401);
    expect(await meStatus({ token: await craftToken(claims, { alg: 'HS512' }) })).toBe(401);
  });

  test('a token whose session expired on the server is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await t.db.fork().execute(`update sessions set expires_at = now() - interval '1 minute' where id = ?`, [claimsOf(user.token).sid]);
    expect(await meStatus({ token: user.token })).toBe(401);
  });

  test('a token for a session of another user is refused', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const other = await addUser(t, tenant, 'admin');
    const token = await craftToken({ sub: claimsOf(other.token).sub, sid: claimsOf(user.token).sid });
    expect(await meStatus({ token })).toBe(401);
  });
});

describe('POST /auth/logout', () => {
  function expectCleared(response: Response) {
    const setCookie = sessionCookie(response);
    expect(setCookie).toBeDefined();
    const { value, attrs } = cookieAttributes(setCookie!);
    expect(value).toBe('');
    const maxAgeZero = attrs.get('max-age') === '0';
    const expiredDate = attrs.has('expires') && Date.parse(attrs.get('expires')!) <= Date.now();
    expect(maxAgeZero || expiredDate).toBe(true);
    expect(attrs.get('path')).toBe('/');
  }

  test('with a bearer token: 204, clears the cookie and revokes the session', async () => {
    const user = await addUser(t, tenant, 'user');
    const other = await login(t, user.email, PASSWORD);
    const { response } = await t.client({ token: user.token }).POST('/auth/logout');
    expect(response.status).toBe(204);
    expectCleared(response);
    expect(await meStatus({ token: user.token })).toBe(401);
    expect(await meStatus({ cookie: `${COOKIE}=${user.token}` })).toBe(401);
    expect(await meStatus({ token: other })).toBe(200);
  });

  test('with the cookie: 204 and the session is revoked', async () => {
    const user = await addUser(t, tenant, 'user');
    const cookie = `${COOKIE}=${user.token}`;
    const { response } = await t.client({ cookie }).POST('/auth/logout');
    expect(response.status).toBe(204);
    expectCleared(response);
    expect(await meStatus({ cookie })).toBe(401);
  });

  test('without credentials: 204', async () => {
    const { response } = await t.client().POST('/auth/logout');
    expect(response.status).toBe(204);
    expectCleared(response);
  });

  test('twice with the same token: 204 both times', async () => {
    const user = await addUser(t, tenant, 'user');
    expect((await t.client({ token: user.token }).POST('/auth/logout')).response.status).toBe(204);
    expect((await t.client({ token: user.token }).POST('/auth/logout')).response.status).toBe(204);
  });
});

describe('PATCH /users/me', () => {
  const patchRaw = (token: string, body: unknown) => t.fetch('/users/me', jsonInit('PATCH', body, { authorization: `Bearer ${token}` }));

  async function expect422(response: Response, pointer?: string) {
    expect(response.status).toBe(422);
    expect(response.headers.get('content-type')).toStartWith('application/problem+json');
    const body = (await response.json()) as { status: number; errors?: { pointer: string }[] };
    expect(body.status).toBe(422);
    if (pointer) expect(body.errors?.map((e) => e.pointer)).toContain(pointer);
  }

  const loginStatus = async (email: string, password: string) => (await t.app.handle(loginRequest(email, password))).status;

  test('trims names, and null clears one', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const api = t.client({ token: user.token });
    const set = await api.PATCH('/users/me', { body: { firstName: '  Ada ', lastName: ' Lovelace  ' } });
    expect(set.response.status).toBe(200);
    expect(set.data!.firstName).toBe('Ada');
    expect(set.data!.lastName).toBe('Lovelace');

    const cleared = await api.PATCH('/users/me', { body: { firstName: null } });
    expect(cleared.response.status).toBe(200);
    expect(cleared.data!.firstName).toBeNull();
    expect(cleared.data!.lastName).toBe('Lovelace');

    const me = await api.GET('/users/me');
    expect(me.data!.firstName).toBeNull();
    expect(me.data!.lastName).toBe('Lovelace');
  });

  test('newPassword without currentPassword is a 422 at /body/currentPassword', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await expect422(await patchRaw(user.token, { newPassword: 'a-brand-new-password' }), '/body/currentPassword');
    expect(await loginStatus(user.email, PASSWORD)).toBe(200);
  });

  test('a wrong currentPassword is a 422 and changes nothing', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await expect422(
      await patchRaw(user.token, { firstName: 'Mallory', currentPassword: 'not-the-password', newPassword: 'a-brand-new-password' }),
      '/body/currentPassword',
    );
    expect(await loginStatus(user.email, PASSWORD)).toBe(200);
    expect((await t.client({ token: user.token }).GET('/users/me')).data!.firstName).toBeNull();
    expect(await loginStatus(user.email, 'a-brand-new-password')).toBe(401);
  });

  test('an empty body is a 422', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await expect422(await patchRaw(user.token, {}));
  });

  test('an unknown field is a 422 naming it', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await expect422(await patchRaw(user.token, { firstName: 'Ada', nickname: 'ada' }), '/body/nickname');
    const me = await t.client({ token: user.token }).GET('/users/me');
    expect(me.data!.firstName).toBeNull();
  });

  test('a new password shorter than 8 characters is a 422', async () => {
    const user = await addUser(t, tenant, 'viewer');
    await expect422(await patchRaw(user.token, { currentPassword: PASSWORD, newPassword: 'short' }), '/body/newPassword');
  });

  test('changing the password keeps this session and ends the others', async () => {
    const user = await addUser(t, tenant, 'user');
    const otherSession = await login(t, user.email, PASSWORD);
    const newPassword = 'a-brand-new-password';
    const { response } = await t.client({ token: user.token }).PATCH('/users/me', { body: { currentPassword: PASSWORD, newPassword } });
    expect(response.status).toBe(200);
    expect(await loginStatus(user.email, PASSWORD)).toBe(401);
    expect(await loginStatus(user.email, newPassword)).toBe(200);
    expect(await meStatus({ token: user.token })).toBe(200);
    expect(await meStatus({ token: otherSession })).toBe(401);
  });

  test('needs a session', async () => {
    const response = await t.fetch('/users/me', jsonInit('PATCH', { firstName: 'Ada' }));
    expect(response.status).toBe(401);
  });
});

describe('a deactivated organization', () => {
  test("its users' tokens and its API key stop working, and its users cannot log in", async () => {
    const org = await createTenant(t);
    const user = await addUser(t, org, 'user');
    const ingest = () =>
      t.client({ apiKey: org.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: org.slug } }, body: {} });
    expect((await ingest()).response.status).toBe(201);
    expect(await meStatus({ token: user.token })).toBe(200);

    // Through the API, as a superadmin does it: the key's cached lookup is dropped at once.
    const root = t.client({ token: await superadminToken(t) });
    expect((await root.PATCH('/orgs/{org}', { params: { path: { org: org.slug } }, body: { active: false } })).response.status).toBe(200);

    expect(await meStatus({ token: org.adminToken })).toBe(401);
    expect(await meStatus({ token: user.token })).toBe(401);
    expect((await ingest()).response.status).toBe(401);
    expect((await t.app.handle(loginRequest(user.email, PASSWORD))).status).toBe(401);
    expect(await meStatus({ token: tenant.adminToken })).toBe(200);
  });
});

describe('JWT secret rotation', () => {
  const OLD_SECRET = 'the-previous-secret-that-is-32-characters-or-more';
  const NEW_SECRET = 'the-current-secret-that-is-also-32-characters-long';

  test('tokens signed with a secret in JWT_PREVIOUS_SECRETS are accepted until they expire; new ones are signed with JWT_SECRET', async () => {
    const before = await createTestApp({ JWT_SECRET: OLD_SECRET }, t.db);
    const rotated = await createTestApp({ JWT_SECRET: NEW_SECRET, JWT_PREVIOUS_SECRETS: `another-retired-secret-of-32-characters-at-least, ${OLD_SECRET}` }, t.db);
    const withoutPrevious = await createTestApp({ JWT_SECRET: NEW_SECRET }, t.db);
    const user = await addUser(t, tenant, 'viewer');
    const oldToken = await login(before, user.email, PASSWORD);

    expect((await rotated.client({ token: oldToken }).GET('/users/me')).response.status).toBe(200);
    expect((await rotated.client({ cookie: `${COOKIE}=${oldToken}` }).GET('/users/me')).response.status).toBe(200);
    expect((await withoutPrevious.client({ token: oldToken }).GET('/users/me')).response.status).toBe(401);

    const newToken = await login(rotated, user.email, PASSWORD);
    const { jwtVerify } = await import('jose');
    await expect(jwtVerify(newToken, new TextEncoder().encode(NEW_SECRET))).resolves.toBeDefined();
    await expect(jwtVerify(newToken, new TextEncoder().encode(OLD_SECRET))).rejects.toThrow();
    expect((await before.client({ token: newToken }).GET('/users/me')).response.status).toBe(401);

    // A previous secret is held to the same rules: expiry, issuer, audience, algorithm.
    const claims = claimsOf(oldToken);
    const status = async (token: string) => (await rotated.client({ token }).GET('/users/me')).response.status;
    expect(await status(await craftToken(claims, { secret: OLD_SECRET }))).toBe(200);
    expect(await status(await craftToken(claims, { secret: OLD_SECRET, exp: Math.floor(Date.now() / 1000) - 60 }))).toBe(401);
    expect(await status(await craftToken(claims, { secret: OLD_SECRET, issuer: 'someone-else' }))).toBe(401);
    expect(await status(await craftToken(claims, { secret: OLD_SECRET, audience: 'another-app' }))).toBe(401);
    expect(await status(await craftToken(claims, { secret: OLD_SECRET, alg: 'HS512' }))).toBe(401);
    // Logging out with an old token revokes its session.
    expect((await rotated.client({ token: oldToken }).POST('/auth/logout')).response.status).toBe(204);
    expect(await status(oldToken)).toBe(401);
  });

  test('JWT_PREVIOUS_SECRETS must be long enough', async () => {
    await expect(createTestApp({ JWT_PREVIOUS_SECRETS: 'short' }, t.db)).rejects.toThrow(/JWT_PREVIOUS_SECRETS/);
  });

  test('a token without an expiry is refused, even when correctly signed', async () => {
    const user = await addUser(t, tenant, 'viewer');
    const claims = claimsOf(user.token);
    const token = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer('chatlogger')
      .setAudience('chatlogger-dashboard')
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect(await meStatus({ token })).toBe(401);
  });

  test("a deleted user's tokens stop working", async () => {
    const user = await addUser(t, tenant, 'user');
    expect(await meStatus({ token: user.token })).toBe(200);
    const { response } = await t.client({ token: tenant.adminToken }).DELETE('/orgs/{org}/users/{userId}', { params: { path: { org: 'me', userId: user.id } } });
    expect(response.status).toBe(204);
    expect(await meStatus({ token: user.token })).toBe(401);
    expect(await meStatus({ token: await craftToken(claimsOf(user.token)) })).toBe(401);
  });

  test('tokens issued before a password change stop working, however they are presented', async () => {
    const user = await addUser(t, tenant, 'user');
    const older = await login(t, user.email, PASSWORD);
    const { response } = await t.client({ token: user.token }).PATCH('/users/me', { body: { currentPassword: PASSWORD, newPassword: 'another-new-password' } });
    expect(response.status).toBe(200);
    expect(await meStatus({ token: older })).toBe(401);
    expect(await meStatus({ cookie: `${COOKIE}=${older}` })).toBe(401);
    // Re-signing its claims with a fresh expiry does not revive the session.
    expect(await meStatus({ token: await craftToken(claimsOf(older)) })).toBe(401);
    // The session that made the change stays, as documented.
    expect(await meStatus({ token: user.token })).toBe(200);
  });
});
