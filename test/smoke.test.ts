import { describe, expect, test, beforeAll } from 'bun:test';
import { createTenant, createTestApp, type TestApp, type Tenant } from './support/harness.ts';

let t: TestApp;
let tenant: Tenant;
beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
});

describe('the seed flow', () => {
  test('a plugin logs a chat and its messages with the API key', async () => {
    const api = t.client({ apiKey: tenant.apiKey });
    const chat = await api.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: { title: 'Support' } });
    expect(chat.response.status).toBe(201);
    const msg = await api.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', {
      params: { path: { slug: tenant.slug, chatId: chat.data!.id } },
      body: { role: 'user', content: 'hello' },
    });
    expect(msg.response.status).toBe(201);
    expect(msg.data!.chatId).toBe(chat.data!.id);
  });
});
