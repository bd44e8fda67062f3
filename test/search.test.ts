import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components, operations } from '../src/generated/openapi.ts';
import { parseSearch, termsOf } from '../src/modules/conversations/search.ts';
import { createTenant, createTestApp, appendBatch, superadminToken, type Tenant, type TestApp } from './support/harness.ts';


/*
 * Conversation search (`q` of GET /orgs/{org}/chats) in several languages, through the API, on
 * the database of the run (PGlite, or PostgreSQL with TEST_DATABASE_URL).
 */

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type ListQuery = NonNullable<operations['listChats']['parameters']['query']>;
type MessageCreate = components['schemas']['MessageCreate'];

let t: TestApp;
let tenant: Tenant;
let other: Tenant;
/** Chat ids by name. */
const chats: Record<string, string> = {};

async function chat(owner: Tenant, name: string, title: string | null, contents: string[]): Promise<string> {
  const { data } = await t.client({ apiKey: owner.apiKey }).POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: owner.slug } }, body: { title } });
  const messages: MessageCreate[] = contents.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content }));
  if (messages.length) await appendBatch(t, owner, data!.id, messages);
  chats[name] = data!.id;
  return data!.id;
}

beforeAll(async () => {
  t = await createTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
  await chat(tenant, 'zh', '发票问题', ['我的发票在哪里？', '请查看账户页面。']);
  await chat(tenant, 'ja', null, ['請求書はどこですか', 'アカウントのページにあります。']);
  await chat(tenant, 'th', null, ['สวัสดีครับ ใบแจ้งหนี้ของฉันอยู่ที่ไหน']);
  await chat(tenant, 'fr', 'Facturation', ['Où est ma facture?', 'Voici votre résumé de compte.']);
  await chat(tenant, 'de', null, ['Wo finde ich die Rechnungsübersicht?', 'Unter Konto. Die Straße ist richtig.']);
  await chat(tenant, 'en', 'Refund request', ['I want my money back', 'Your order was refunded yesterday, see our refund policy.']);
  await chat(tenant, 'studies', null, ['The studies were published in the journal']);
  await chat(tenant, 'emoji', null, ['Great job 🎉 thanks', 'You are welcome 😀']);
  await chat(tenant, 'quote', null, ["O'Brien said \"hello\" -- twice"]);
  // The other organization says the same things: it must never show up.
  await chat(other, 'otherZh', '发票', ['我的发票在哪里？']);
  await chat(other, 'otherEn', 'Refunds', ['refund refunds refunded 🎉 Où Rechnungsübersicht']);
});

const rawGet = (path: string, token: string) => t.fetch(path, { headers: { authorization: `Bearer ${token}` } });

async function find(q: string, query: ListQuery = {}, owner = tenant) {
  const { data, response } = await t.client({ token: owner.adminToken }).GET('/orgs/{org}/chats', { params: { path: { org: 'me' }, query: { ...query, q } } });
  expect(response.status).toBe(200);
  return data!;
}

const names = async (q: string, query: ListQuery = {}, owner = tenant) => {
  const byId = new Map(Object.entries(chats).map(([name, id]) => [id, name]));
  return (await find(q, query, owner)).items.map((c) => byId.get(c.id)).sort();
};

describe('matching', () => {
  test('Chinese, Japanese and Thai: any part of a sentence, not only whole sentences', async () => {
    expect(await names('发票')).toEqual(['zh']);
    expect(await names('哪里')).toEqual(['zh']);
    expect(await names('发票在哪里')).toEqual(['zh']);
    expect(await names('票发')).toEqual([]); // the characters in that order only
    expect(await names('請求書')).toEqual(['ja']);
    expect(await names('ページ')).toEqual(['ja']);
    expect(await names('ใบแจ้งหนี้')).toEqual(['th']);
    expect(await names('账户')).toEqual(['zh']);
  });

  test('case and accents fold both ways', async () => {
    expect(await names('ou')).toEqual(['fr']);
    expect(await names('OÙ')).toEqual(['fr']);
    expect(await names('resume')).toEqual(['fr']);
    expect(await names('Résumé')).toEqual(['fr']);
    expect(await names('strasse')).toEqual(['de']);
    expect(await names('FACTURE')).toEqual(['fr']);
  });

  test('words match as prefixes: plurals, inflections, compound words', async () => {
    expect(await names('refund')).toEqual(['en']);
    expect(await names('refunds')).toEqual([]); // longer than what is written is not found without stems
    expect(await names('rechnung')).toEqual(['de']);
    expect(await names('factur')).toEqual(['fr']);
    // Under three characters a word matches exactly: `ou` is not a prefix of `our`.
    expect(await names('yo')).toEqual([]);
  });

  test('emoji are words', async () => {
    expect(await names('🎉')).toEqual(['emoji']);
    expect(await names('😀 welcome')).toEqual(['emoji']);
    expect(await names('🎉 thanks')).toEqual(['emoji']);
    // Every word in the title or in one message: these two are in different messages.
    expect(await names('🎉 welcome')).toEqual([]);
    expect(await names('🚀')).toEqual([]);
  });

  test('quoted phrases, -exclusion and OR keep working', async () => {
    expect(await names('"refund policy"')).toEqual(['en']);
    expect(await names('"policy refund"')).toEqual([]);
    expect(await names('"发票在"')).toEqual(['zh']);
    expect(await names('facture -ou')).toEqual([]);
    // Exclusion is per message too: the chat has a message with `facture` and without `resume`.
    expect(await names('facture -resume')).toEqual(['fr']);
    expect(await names('facture -"rue"')).toEqual(['fr']);
    expect(await names('rechnung OR 請求書')).toEqual(['de', 'ja']);
    expect(await names('rechnung or facture')).toEqual(['de', 'fr']);
    expect(await names("o'brien")).toEqual(['quote']);
  });

  test('a title matches as well as a message', async () => {
    expect(await names('问题')).toEqual(['zh']);
    expect(await names('facturation')).toEqual(['fr']);
  });
});

describe("the organization's search language", () => {
  test('adds its stems to the words as written, and never loses a literal match', async () => {
    const admin = t.client({ token: tenant.adminToken });
    const path = { params: { path: { org: 'me' } } };
    expect((await admin.GET('/orgs/{org}', path)).data!.settings.searchLanguage).toBe('simple');
    expect(await names('study')).toEqual([]);

    const set = await admin.PATCH('/orgs/{org}', { ...path, body: { settings: { searchLanguage: 'english' } } });
    expect(set.response.status).toBe(200);
    expect(set.data!.settings.searchLanguage).toBe('english');
    try {
      expect(await names('studies')).toEqual(['studies']);
      expect(await names('refunds')).toEqual(['en']);
      expect(await names('refund')).toEqual(['en']);
      // Stop words are still literal words.
      expect(await names('"the studies"')).toEqual(['studies']);
      expect(await names('发票')).toEqual(['zh']);
      // Another organization's setting is its own.
      expect(await names('refunds', {}, other)).toEqual(['otherEn']);
    } finally {
      await admin.PATCH('/orgs/{org}', { ...path, body: { settings: { searchLanguage: 'simple' } } });
    }
  });

  test('an unknown language is a 422', async () => {
    const response = await t.client({ token: tenant.adminToken }).PATCH('/orgs/{org}', {
      params: { path: { org: 'me' } },
      body: { settings: { searchLanguage: 'klingon' as 'english' } },
    });
    expect(response.response.status).toBe(422);
  });
});

describe('tenancy', () => {
  test("a search never finds another organization's chats, whatever the script", async () => {
    for (const q of ['发票', 'refund', '🎉', 'ou', 'rechnung']) {
      const own = await names(q);
      expect(own).not.toContain('otherZh');
      expect(own).not.toContain('otherEn');
    }
    expect(await names('发票', {}, other)).toEqual(['otherZh']);
    expect(await names('resume', {}, other)).toEqual([]);
  });

  test('a superadmin searches another organization by its slug', async () => {
    const root = t.client({ token: await superadminToken(t) });
    const { data } = await root.GET('/orgs/{org}/chats', { params: { path: { org: other.slug }, query: { q: '发票' } } });
    expect(data!.items.map((c) => c.id)).toEqual([chats.otherZh!]);
  });
});

describe('hostile queries: an empty list or a 4xx, never a 500', () => {
  const empty = ['-', '--', 'OR', 'or or', '"', '""', '" "', '-""', '!!', '&|!():*', "'", '\\', '<->', '<1>', '(', ')', '\u0000', '%', '_', '*'];
  for (const q of empty) {
    test(`q=${JSON.stringify(q)}`, async () => {
      const response = await rawGet(`/orgs/me/chats?q=${encodeURIComponent(q)}`, tenant.adminToken);
      if (response.status === 200) {
        const body = (await response.json()) as components['schemas']['ChatList'];
        expect(body.items).toEqual([]);
      } else {
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
        expect(response.headers.get('content-type')).toContain('application/problem+json');
      }
    });
  }

  test('unbalanced quotes read as a phrase to the end', async () => {
    expect(await names('"refund policy')).toEqual(['en']);
    expect(await names('refund "')).toEqual(['en']);
  });

  test('a long query of many words is answered; one over the limit is a 422', async () => {
    const words = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    expect(words.length).toBeLessThanOrEqual(200);
    expect(await names(words)).toEqual([]);
    expect(await names(Array.from({ length: 100 }, () => '发').join(''))).toEqual([]);
    expect(await names(Array.from({ length: 66 }, () => '-x').join(' '))).toHaveLength(Object.keys(chats).length - 2);
    const tooLong = await rawGet(`/orgs/me/chats?q=${'发'.repeat(201)}`, tenant.adminToken);
    expect(tooLong.status).toBe(422);
  });

  // A title or a message without the word is enough (no GIN index answers a negation: the planner
  // walks the chats instead).
  test('only excluded words list the chats with a title or a message without them', async () => {
    const all = await names('-zzzz');
    expect(all).toEqual(Object.keys(chats).filter((name) => !name.startsWith('other')).sort());
  });
});

describe('highlight', () => {
  test('the folded words and phrases the search looks for, excluded ones left out', async () => {
    expect((await find('Refund -policy')).highlight).toEqual([{ tokens: ['refund'], prefix: true }]);
    expect((await find('发票')).highlight).toEqual([{ tokens: ['发', '票'], prefix: false }]);
    expect((await find('"refund policy" OR Où')).highlight).toEqual([
      { tokens: ['refund', 'policy'], prefix: false },
      { tokens: ['ou'], prefix: false },
    ]);
    expect((await find('🎉')).highlight).toEqual([{ tokens: ['u1f389'], prefix: true }]);
    expect((await find('!!')).highlight).toEqual([]);
    const { data } = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats', { params: { path: { org: 'me' } } });
    expect(data!.highlight).toBeUndefined();
  });
});

describe('the query syntax', () => {
  test('words, phrases, exclusions and OR', () => {
    const word = (text: string, negated = false) => ({ text, phrase: false, negated });
    const phrase = (text: string, negated = false) => ({ text, phrase: true, negated });
    expect(parseSearch('a b')).toEqual([[word('a')], [word('b')]]);
    expect(parseSearch('a OR b c')).toEqual([[word('a'), word('b')], [word('c')]]);
    expect(parseSearch('OR a or')).toEqual([[word('a')]]);
    expect(parseSearch('-a -"b c" "d')).toEqual([[word('a', true)], [phrase('b c', true)], [phrase('d')]]);
    expect(parseSearch('- a')).toEqual([[word('-')], [word('a')]]);
  });

  test("a tsquery's phrases, for highlighting", () => {
    expect(termsOf(`'refund':* | 'refund':* & ( 'a' <-> 'b' <2> 'c':* ) & 'o''brien' & !'x'`)).toEqual([
      { tokens: ['refund'], prefix: true },
      { tokens: ['a', 'b', 'c'], prefix: true },
      { tokens: ["o'brien"], prefix: false },
      { tokens: ['x'], prefix: false },
    ]);
  });
});

describe("the dashboard's marks", () => {
  // What the API answered as `highlight` marks the same words in the original text.
  const marks = async (q: string, text: string) => {
    const { marker } = await import('../web/src/highlight.ts');
    const mark = marker((await find(q)).highlight);
    return mark ? mark(text).filter((_, i) => i % 2 === 1) : [];
  };

  test('accents, case, prefixes, phrases, Chinese and emoji', async () => {
    expect(await marks('ou resume', 'Où est mon Résumé? Our resumes.')).toEqual(['Où', 'Résumé', 'resumes']);
    expect(await marks('refund', 'Refunds were REFUNDED; no prefund.')).toEqual(['Refunds', 'REFUNDED']);
    expect(await marks('"refund policy"', 'our refund  policy, not policy refund')).toEqual(['refund  policy']);
    expect(await marks('发票', '我的发票在哪里？发 票')).toEqual(['发票', '发 票']);
    expect(await marks('rechnung', 'Die Rechnungsübersicht')).toEqual(['Rechnungsübersicht']);
    expect(await marks('strasse', 'Die Straße')).toEqual(['Straße']);
    expect(await marks('🎉', 'Great 🎉 job')).toEqual(['🎉']);
    expect(await marks('-refund', 'refund')).toEqual([]);
  });
});
