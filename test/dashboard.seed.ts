/**
 * Data for the dashboard's browser tests, written before the server starts (PGlite allows one
 * process at a time): an organization with realistic support conversations written through the
 * API, one chat of 5,000 messages, and an organization of 10,000 chats inserted in SQL.
 */
import type { components } from '../src/generated/openapi.ts';
import type { Database } from '../src/db/orm.ts';
import { ensureAdmin } from '../src/modules/users/bootstrap.ts';
import { createTestApp, login, PASSWORD, unique, type TestApp } from './support/harness.ts';

type MessageCreate = components['schemas']['MessageCreate'];

export interface Seeded {
  slug: string;
  adminEmail: string;
  viewerEmail: string;
  password: string;
  /** The one chat whose messages contain SEARCH_WORD. */
  searchChatTitle: string;
  longChatTitle: string;
  chats: number;
  messages: number;
  bulk: { slug: string; adminEmail: string; chats: number };
}

/** A word that only one message of the seeded organization contains. */
export const SEARCH_WORD = 'kumquat';
export const LONG_CHAT_MESSAGES = 5_000;
/** A chat with a system prompt, a tool call and its result. */
const SEARCH_CHAT = 9;
export const BULK_CHATS = 10_000;

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet'];
const SOURCES = ['web', 'ios', 'android'];

interface Topic {
  title: string;
  tags: string[];
  turns: [user: string, assistant: string][];
  tool?: { name: string; args: Record<string, unknown>; result: string };
}

const TOPICS: Topic[] = [
  {
    title: 'Invoice shows the wrong VAT number',
    tags: ['billing'],
    turns: [
      ['Hi, my last invoice has our old VAT number on it. Can you fix it?', 'Of course. You can update the VAT number under Billing > Company details; the next invoice will use it. Shall I reissue the last one?'],
      ['Yes please, reissue it.', 'Done: invoice INV-2041 has been reissued with the new VAT number and sent to your billing email.'],
    ],
    tool: { name: 'reissue_invoice', args: { invoice: 'INV-2041' }, result: '{"status":"reissued"}' },
  },
  {
    title: 'Refund for a double charge',
    tags: ['billing', 'refund'],
    turns: [
      ['I was charged twice for the March plan.', 'I am sorry about that. I can see two charges of $49 on March 3rd. I have started a refund for the duplicate.'],
      ['How long will the refund take?', 'Refunds reach your card within 5 to 10 business days, depending on your bank.'],
    ],
    tool: { name: 'create_refund', args: { charge: 'ch_3PqX', amount: 49 }, result: '{"refund":"re_81","status":"pending"}' },
  },
  {
    title: 'Cannot log in after password reset',
    tags: ['login', 'account'],
    turns: [
      ['I reset my password but the app still says invalid credentials.', 'Your account was locked after several attempts. I have unlocked it; please try again now.'],
      ['It works now, thanks!', 'Glad to hear it. Have a good day!'],
    ],
  },
  {
    title: 'Where is my order?',
    tags: ['shipping'],
    turns: [
      ['My order #5512 has not arrived yet.', 'Order #5512 left our warehouse on Monday and is with the carrier. The tracking says delivery is expected tomorrow.'],
      ['Can I change the delivery address?', 'The carrier allows address changes until the parcel is out for delivery. I have sent you a link to change it.'],
    ],
    tool: { name: 'track_order', args: { order: 5512 }, result: '{"status":"in_transit","eta":"tomorrow"}' },
  },
  {
    title: 'Feature request: export to Excel',
    tags: ['feature', 'feedback'],
    turns: [
      ['Could you add an export to Excel?', 'Thanks for the suggestion! You can already export CSV files, which Excel opens directly. I have passed the request for native .xlsx on to the product team.'],
    ],
  },
  {
    title: 'API rate limit questions',
    tags: ['api'],
    turns: [
      ['What is the rate limit of the API?', 'The API allows 600 requests per minute per key. Responses include headers with the remaining quota.'],
      ['Can it be raised for our plan?', 'Yes, the Business plan allows 3,000 requests per minute. I can put you in touch with sales.'],
    ],
  },
  {
    title: 'Mobile app crashes on start',
    tags: ['bug', 'mobile'],
    turns: [
      ['The iOS app crashes as soon as I open it.', 'Thanks for reporting it. Version 4.2.1 fixes a crash on start for iOS 17; could you update from the App Store?'],
      ['Updated, and it opens now.', 'Great, thanks for letting us know!'],
    ],
  },
  {
    title: 'Upgrade to the annual plan',
    tags: ['sales', 'billing'],
    turns: [
      ['How much do we save with the annual plan?', 'The annual plan costs the same as 10 months, so you save about 17%.'],
      ['OK, upgrade us please.', 'Your organization is now on the annual plan. The prorated difference appears on your next invoice.'],
    ],
  },
];

const HOUR = 3_600_000;

function conversation(topic: Topic, n: number, start: number, model: string): MessageCreate[] {
  const messages: MessageCreate[] = [];
  let at = start;
  const next = (seconds: number) => new Date((at += seconds * 1000)).toISOString();
  if (n % 3 === 0) messages.push({ role: 'system', content: 'You are a friendly support assistant for Acme. Answer briefly.', createdAt: next(0) });
  topic.turns.forEach(([user, assistant], turn) => {
    const userText = n === SEARCH_CHAT && turn === 0 ? `${user} It was for the ${SEARCH_WORD} jam subscription.` : user;
    messages.push({ role: 'user', content: userText, metadata: turn === 0 ? { browser: n % 2 ? 'Firefox 128' : 'Chrome 131', locale: 'en-GB' } : {}, createdAt: next(30 + (n % 50)) });
    if (topic.tool && turn === 0) {
      messages.push({
        role: 'assistant',
        content: '',
        model,
        promptTokens: 420 + n,
        completionTokens: 18,
        latencyMs: 600 + ((n * 37) % 900),
        costUsd: 0.0011,
        toolCalls: [{ id: `call_${n}`, type: 'function', function: { name: topic.tool.name, arguments: JSON.stringify(topic.tool.args) } }],
        createdAt: next(2),
      });
      messages.push({ role: 'tool', name: topic.tool.name, content: topic.tool.result, createdAt: next(1) });
    }
    messages.push({
      role: 'assistant',
      content: assistant,
      model,
      promptTokens: 500 + n * 3 + turn * 40,
      completionTokens: 40 + ((n * 13) % 120),
      latencyMs: 700 + ((n * 97 + turn * 211) % 2600),
      costUsd: Number((0.0008 + ((n * 7) % 30) / 10_000).toFixed(6)),
      metadata: { finishReason: 'stop', traceId: `tr-${n}-${turn}` },
      createdAt: next(3),
    });
  });
  return messages;
}

async function ingest(t: TestApp, slug: string, apiKey: string, chat: { title: string; tags: string[]; externalUserId: string; source: string; metadata?: Record<string, unknown> }, messages: MessageCreate[]) {
  const client = t.client({ apiKey });
  const created = await client.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug } }, body: chat });
  if (!created.data) throw new Error(`seeding a chat failed: ${created.response.status}`);
  for (let i = 0; i < messages.length; i += 1000) {
    const batch = await client.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', { params: { path: { slug, chatId: created.data.id } }, body: { messages: messages.slice(i, i + 1000) } });
    if (batch.response.status !== 201) throw new Error(`seeding messages failed: ${batch.response.status}`);
  }
  return created.data.id;
}

/** `root` is the superadmin the server will also be started with. */
export async function seedDashboard(db: Database, root: { email: string; password: string }): Promise<Seeded> {
  const t = await createTestApp({}, db);
  await ensureAdmin(db.fork(), root.email, root.password);
  const superadmin = t.client({ token: await login(t, root.email, root.password) });
  const slug = unique('acme-');
  const org = await superadmin.POST('/orgs', { body: { name: 'Acme Support', slug } });
  if (!org.data) throw new Error(`create org: ${org.response.status}`);
  const adminEmail = `ada-${slug}@acme.test`;
  const viewerEmail = `victor-${slug}@acme.test`;
  for (const [email, role, firstName] of [[adminEmail, 'admin', 'Ada'], [viewerEmail, 'viewer', 'Victor']] as const) {
    const user = await superadmin.POST('/orgs/{org}/users', { params: { path: { org: slug } }, body: { email, password: PASSWORD, role, firstName, lastName: 'Lovelace' } });
    if (!user.data) throw new Error(`create ${role}: ${user.response.status}`);
  }
  const admin = t.client({ token: await login(t, adminEmail, PASSWORD) });
  const key = await admin.POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: 'website widget' } });
  if (!key.data) throw new Error(`create key: ${key.response.status}`);

  const now = Date.now();
  let chats = 0;
  let messages = 0;
  let searchChatTitle = '';
  const CHATS = 64;
  for (let n = 0; n < CHATS; n++) {
    const topic = TOPICS[n % TOPICS.length]!;
    const model = MODELS[n % MODELS.length]!;
    // Spread over the last 18 days, newest first.
    const start = now - (n * 18 * 24 * HOUR) / CHATS - HOUR;
    const title = n < TOPICS.length ? topic.title : `${topic.title} (#${1000 + n})`;
    const list = conversation(topic, n, start, model);
    const chatId = await ingest(t, slug, key.data.key, { title, tags: topic.tags, externalUserId: `customer-${(n * 7) % 23}`, source: SOURCES[n % SOURCES.length]!, metadata: { plan: n % 4 ? 'pro' : 'free', widgetVersion: '2.3.0' } }, list);
    // The API stamps a chat with the time it was sent; date it at its first message instead.
    await db.fork().execute(`update chats set created_at = ?, updated_at = ? where id = ?`, [list[0]!.createdAt, list[0]!.createdAt, chatId]);
    if (n === SEARCH_CHAT) searchChatTitle = title;
    chats++;
    messages += list.length;
  }

  const longChatTitle = 'Load test: a very long conversation';
  const long: MessageCreate[] = [];
  const longStart = now - 3 * 24 * HOUR;
  for (let i = 0; i < LONG_CHAT_MESSAGES; i++) {
    const assistant = i % 2 === 1;
    long.push({
      role: assistant ? 'assistant' : 'user',
      content: assistant ? `Reply number ${i + 1}: here is what I found about item ${i}.` : `Question number ${i + 1}: tell me about item ${i}.`,
      ...(assistant ? { model: 'gpt-4o-mini', promptTokens: 100, completionTokens: 20, latencyMs: 400 + (i % 300), costUsd: 0.0001 } : {}),
      createdAt: new Date(longStart + i * 1000).toISOString(),
    });
  }
  const longId = await ingest(t, slug, key.data.key, { title: longChatTitle, tags: ['load-test'], externalUserId: 'load-tester', source: 'api' }, long);
  await db.fork().execute(`update chats set created_at = ?, updated_at = ? where id = ?`, [long[0]!.createdAt, long[0]!.createdAt, longId]);
  chats++;
  messages += long.length;

  // 10,000 chats for the first-render measurement, straight in SQL (the API would take minutes).
  const bulkSlug = unique('bulk-');
  const bulkOrg = await superadmin.POST('/orgs', { body: { name: 'Bulk Co', slug: bulkSlug } });
  if (!bulkOrg.data) throw new Error(`create bulk org: ${bulkOrg.response.status}`);
  const bulkAdmin = `admin-${bulkSlug}@bulk.test`;
  const bulkUser = await superadmin.POST('/orgs/{org}/users', { params: { path: { org: bulkSlug } }, body: { email: bulkAdmin, password: PASSWORD, role: 'admin' } });
  if (!bulkUser.data) throw new Error(`create bulk admin: ${bulkUser.response.status}`);
  await db.fork().execute(
    `insert into chats (organization_id, id, title, tags, external_user_id, source, created_at, updated_at, last_message_at, message_count)
     select ?, gen_random_uuid(), 'Bulk conversation ' || n, array['bulk', 'tag-' || (n % 10)], 'user-' || (n % 500), 'web',
            now() - n * interval '1 minute', now() - n * interval '1 minute', now() - n * interval '1 minute', 4
       from generate_series(1, ?) as n`,
    [bulkOrg.data.id, BULK_CHATS],
  );

  return {
    slug,
    adminEmail,
    viewerEmail,
    password: PASSWORD,
    searchChatTitle,
    longChatTitle,
    chats,
    messages,
    bulk: { slug: bulkSlug, adminEmail: bulkAdmin, chats: BULK_CHATS },
  };
}
