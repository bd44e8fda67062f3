/**
 * The contract's own promises, checked on openapi.yaml as the server reads it and on the server's
 * answers: every operation has a summary and documents 431; rate-limited operations declare
 * their RateLimit headers on every answer that carries them; a known path with another method is
 * a 405 with Allow.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { createApp } from '../src/app.ts';
import { listOperations, spec } from '../src/http/contract.ts';
import { MemoryStore } from '../src/http/rate-limit-store.ts';
import { createLogger } from '../src/logger.ts';
import { BASE_URL, createTenant, createTestApp, testConfig, type Tenant, type TestApp } from './support/harness.ts';

setDefaultTimeout(30_000);

type Responses = Record<string, { $ref?: string; headers?: Record<string, unknown> }>;
const components = spec.components as unknown as { responses: Responses; schemas: Record<string, { properties: Record<string, Record<string, unknown>> }> };
const resolved = (response: { $ref?: string; headers?: Record<string, unknown> }) =>
  response.$ref ? components.responses[response.$ref.split('/').pop()!]! : response;

describe('openapi.yaml', () => {
  test('Export.status is parsed whole: its description intact, no stray keyword', () => {
    expect(components.schemas.Export!.properties.status).toEqual({ type: 'string', enum: ['ready'], description: 'Exports are streamed on download, so they are ready at once.' });
  });

  test('every operation has a summary and documents 431', () => {
    for (const { operationId, operation } of listOperations()) {
      expect({ operationId, summary: typeof operation.summary }).toEqual({ operationId, summary: 'string' });
      expect({ operationId, has431: '431' in (operation.responses as Responses) }).toEqual({ operationId, has431: true });
    }
  });

  test('rate-limited operations declare the RateLimit headers on every answer after the limit is counted', () => {
    const limited = ['createChat', 'createMessage', 'createMessageBatch', 'exportOtlpTraces', 'login'];
    for (const { operationId, operation } of listOperations().filter((o) => limited.includes(o.operationId))) {
      for (const [status, response] of Object.entries(operation.responses as Responses)) {
        // 401 on ingestion: no key, no budget. 431: refused before routing.
        if (status === '431' || (status === '401' && operationId !== 'login')) continue;
        const headers = Object.keys(resolved(response).headers ?? {});
        expect({ operationId, status, headers: headers.filter((h) => h.startsWith('RateLimit-')).sort() }).toEqual({ operationId, status, headers: ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] });
      }
    }
  });
});

describe('the server', () => {
  let t: TestApp;
  let tenant: Tenant;
  beforeAll(async () => {
    t = await createTestApp();
    tenant = await createTenant(t);
  });

  test('a known path with a method it does not take is a 405 problem with Allow; an unknown path a 404', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/orgs/me/chats', 'GET'],
      ['PUT', '/health', 'GET'],
      ['GET', `/api/v1/orgs/${tenant.slug}/chats`, 'POST'],
      ['POST', `/orgs/me/chats/${crypto.randomUUID()}`, 'DELETE, GET, PATCH'],
      ['PUT', '/orgs/nope/users', 'GET, POST'],
    ];
    for (const [method, path, allow] of cases) {
      const response = await t.fetch(path, { method, headers: { authorization: `Bearer ${tenant.adminToken}` } });
      expect({ path, status: response.status, allow: response.headers.get('allow'), type: response.headers.get('content-type') }).toEqual({ path, status: 405, allow, type: 'application/problem+json' });
      expect(((await response.json()) as { type: string }).type).toBe('/problems/method-not-allowed');
    }
    expect((await t.fetch('/no/such/path', { method: 'DELETE' })).status).toBe(404);
    expect((await t.fetch('/orgs/me/chats/x/y/z')).status).toBe(404);
  });

  test('RateLimit headers come on answers other than 429: an ingestion 422, a login 401', async () => {
    const app = createApp({ config: testConfig({ INGEST_RATE_LIMIT_PER_MINUTE: '10', LOGIN_RATE_LIMIT_PER_MINUTE: '10', TRUST_PROXY: '1' }), db: t.db, log: createLogger('silent'), rateLimitStore: new MemoryStore() });
    const invalid = await app.handle(new Request(`${BASE_URL}/api/v1/orgs/${tenant.slug}/chats`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-organization-api-key': tenant.apiKey }, body: '{"title":42}' }));
    expect(invalid.status).toBe(422);
    expect(invalid.headers.get('ratelimit-limit')).toBe('10');
    const wrong = await app.handle(new Request(`${BASE_URL}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.9' }, body: JSON.stringify({ email: 'nobody@example.test', password: 'wrong-password' }) }));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('ratelimit-remaining')).toBe('9');
  });
});
