import createClient, { type Client } from 'openapi-fetch';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Database } from '../../src/db/orm.ts';
import { ensureAdmin } from '../../src/modules/users/bootstrap.ts';
import { createLogger } from '../../src/logger.ts';
import type { components, paths } from '../../src/generated/openapi.ts';
import { checkResponse } from './contract.ts';
import { testDatabase } from './database.ts';

export type ApiClient = Client<paths>;

export const BASE_URL = 'http://chatlogger.test';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'test-secret-that-is-at-least-32-characters-long',
    // Never written: JWT_SECRET is given, and the database is the run's shared one.
    DATA_DIR: join(tmpdir(), 'chatlogger-test-unused'),
    LOG_LEVEL: 'silent',
    ...env,
  });
}

export interface TestApp {
  app: App;
  db: Database;
  config: Config;
  /** Sends a raw request through the app (no contract check): for malformed input. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** A client typed by the generated OpenAPI types; every response is checked against the contract. */
  client(auth?: { token?: string; apiKey?: string; cookie?: string }): ApiClient;
}

export async function createTestApp(env: Record<string, string> = {}, db?: Database): Promise<TestApp> {
  const config = testConfig(env);
  const database = db ?? (await testDatabase());
  const app = createApp({ config, db: database, log: createLogger('silent') });
  const handle = (request: Request) => app.handle(request);
  return {
    app,
    db: database,
    config,
    fetch: (path, init) => handle(new Request(BASE_URL + path, init)),
    client(auth = {}) {
      const headers: Record<string, string> = {};
      if (auth.token) headers.authorization = `Bearer ${auth.token}`;
      if (auth.apiKey) headers['x-organization-api-key'] = auth.apiKey;
      if (auth.cookie) headers.cookie = auth.cookie;
      const client = createClient<paths>({ baseUrl: BASE_URL, fetch: handle, headers });
      client.use({
        async onResponse({ request, response, schemaPath }) {
          await checkResponse(request.method, schemaPath, response);
          return undefined;
        },
      });
      return client;
    },
  };
}

let counter = 0;
/** A short unique suffix for slugs and emails, so tests sharing a database never collide. */
export function unique(prefix = 't'): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export interface Tenant {
  slug: string;
  orgId: string;
  adminEmail: string;
  adminToken: string;
  apiKey: string;
  apiKeyId: string;
}

/** The superadmin of each test database, created once. */
const superadmins = new WeakMap<Database, Promise<{ email: string; password: string }>>();
export async function superadminToken(t: TestApp): Promise<string> {
  let superadmin = superadmins.get(t.db);
  if (!superadmin) {
    superadmin = (async () => {
      const email = `root-${unique()}@example.test`;
      const password = 'root-password-1';
      await ensureAdmin(t.db.fork(), email, password);
      return { email, password };
    })();
    superadmins.set(t.db, superadmin);
  }
  const { email, password } = await superadmin;
  return login(t, email, password);
}

export async function login(t: TestApp, email: string, password: string): Promise<string> {
  const { data, response } = await t.client().POST('/auth/login', { body: { email, password, issueToken: true } });
  if (!data) throw new Error(`login of ${email} failed with ${response.status}`);
  if (!data.token) throw new Error('login answered without a token');
  return data.token;
}

export const PASSWORD = 'correct-horse-battery';

/** An organization with an admin (logged in) and an API key, made through the API. */
export async function createTenant(t: TestApp): Promise<Tenant> {
  const root = t.client({ token: await superadminToken(t) });
  const slug = unique('org-');
  const org = await root.POST('/orgs', { body: { name: `Org ${slug}`, slug } });
  if (!org.data) throw new Error(`create org failed: ${org.response.status}`);
  const adminEmail = `admin-${slug}@example.test`;
  const user = await root.POST('/orgs/{org}/users', { params: { path: { org: slug } }, body: { email: adminEmail, password: PASSWORD, role: 'admin' } });
  if (!user.data) throw new Error(`create admin failed: ${user.response.status}`);
  const adminToken = await login(t, adminEmail, PASSWORD);
  const key = await t.client({ token: adminToken }).POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: 'test' } });
  if (!key.data) throw new Error(`create key failed: ${key.response.status}`);
  return { slug, orgId: org.data.id, adminEmail, adminToken, apiKey: key.data.key, apiKeyId: key.data.id };
}

/** Adds a user of the given role to a tenant and returns a session token for them. */
export async function addUser(t: TestApp, tenant: Tenant, role: 'admin' | 'user' | 'viewer') {
  const email = `${role}-${unique()}@example.test`;
  const res = await t.client({ token: tenant.adminToken }).POST('/orgs/{org}/users', { params: { path: { org: 'me' } }, body: { email, password: PASSWORD, role } });
  if (!res.data) throw new Error(`create ${role} failed: ${res.response.status}`);
  return { id: res.data.id, email, token: await login(t, email, PASSWORD) };
}

/** Appends messages through the ingestion API (which also moves the chat's counters); expects 201. */
export async function appendBatch(t: TestApp, tenant: Tenant, chatId: string, messages: components['schemas']['MessageCreate'][]) {
  const { data, response } = await t.client({ apiKey: tenant.apiKey }).POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', {
    params: { path: { slug: tenant.slug, chatId } },
    body: { messages },
  });
  if (response.status !== 201 || !data) throw new Error(`append to ${chatId} answered ${response.status}`);
  return data.items;
}
