import { beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { components, operations } from '../src/generated/openapi.ts';
import { addUser, createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

type Summary = components['schemas']['AnalyticsSummary'];
type Timeseries = components['schemas']['AnalyticsTimeseries'];
type MessageCreate = components['schemas']['MessageCreate'];
type Role = components['schemas']['MessageRole'];
type SummaryQuery = NonNullable<operations['getAnalyticsSummary']['parameters']['query']>;
type TimeseriesQuery = operations['getAnalyticsTimeseries']['parameters']['query'];

let t: TestApp;
const as = (token: string) => t.client({ token });

// ---- fixture ---------------------------------------------------------------------------------

interface FixtureChat {
  id: string;
  createdAt: number;
  tags: string[];
  externalUserId: string | null;
}
interface FixtureMessage {
  chatId: string;
  role: Role;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  latencyMs: number | null;
  costUsd: number | null;
  createdAt: number;
}
interface Fixture {
  chats: FixtureChat[];
  messages: FixtureMessage[];
}

/** A small deterministic PRNG, so a failure reproduces. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A chat made through the ingestion API and then moved to `createdAt` (the API always creates
 * chats "now"; only the database can backdate one). Its messages go through the API with client
 * createdAt values, which also maintains the chat's message count.
 */
async function ingest(tenant: Tenant, fixture: Fixture, chat: { createdAt: string; tags: string[]; externalUserId: string | null }, messages: (Omit<MessageCreate, 'createdAt'> & { createdAt: string })[]) {
  const api = t.client({ apiKey: tenant.apiKey });
  const created = await api.POST('/api/v1/orgs/{slug}/chats', {
    params: { path: { slug: tenant.slug } },
    body: { tags: chat.tags, externalUserId: chat.externalUserId, title: 'fixture' },
  });
  expect(created.response.status).toBe(201);
  const id = created.data!.id;
  await t.db.fork().execute(`update chats set created_at = ? where organization_id = ? and id = ?`, [chat.createdAt, tenant.orgId, id]);
  fixture.chats.push({ id, createdAt: Date.parse(chat.createdAt), tags: chat.tags, externalUserId: chat.externalUserId });
  for (let i = 0; i < messages.length; i += 100) {
    const batch = messages.slice(i, i + 100);
    const res = await api.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages/batch', {
      params: { path: { slug: tenant.slug, chatId: id } },
      body: { messages: batch },
    });
    expect(res.response.status).toBe(201);
  }
  for (const m of messages) {
    fixture.messages.push({
      chatId: id,
      role: m.role,
      model: m.model ?? null,
      promptTokens: m.promptTokens ?? null,
      completionTokens: m.completionTokens ?? null,
      totalTokens: m.totalTokens ?? (m.promptTokens != null && m.completionTokens != null ? m.promptTokens + m.completionTokens : null),
      latencyMs: m.latencyMs ?? null,
      costUsd: m.costUsd ?? null,
      createdAt: Date.parse(m.createdAt),
    });
  }
  return id;
}

const TAGS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda', 'mu', 'nu'];
const MODELS = ['gpt-a', 'gpt-b', 'claude-c', 'llama-d', 'm-e', 'm-f', 'm-g', 'm-h', 'm-i', 'm-j', 'm-k', 'm-l'];
const ROLES: Role[] = ['system', 'user', 'assistant', 'tool', 'function'];

/** Instants that matter: DST changes in Amsterdam, midnight in Kolkata, range edges. */
const EDGES = [
  '2025-03-29T22:59:59.999Z', // Amsterdam Mar 29 23:59:59.999 CET
  '2025-03-29T23:00:00Z', // Amsterdam Mar 30 00:00 (a 23-hour day)
  '2025-03-30T00:59:59Z', // 01:59:59 CET
  '2025-03-30T01:00:00Z', // 03:00 CEST
  '2025-03-30T21:59:59Z', // Mar 30 23:59:59 CEST
  '2025-03-30T22:00:00Z', // Mar 31 00:00 CEST
  '2025-10-25T21:59:59Z', // Oct 25 23:59:59 CEST
  '2025-10-25T22:00:00Z', // Oct 26 00:00 CEST (a 25-hour day)
  '2025-10-26T00:30:00Z', // 02:30 CEST, the first one
  '2025-10-26T01:30:00Z', // 02:30 CET, the second one
  '2025-10-26T22:59:59Z', // Oct 26 23:59:59 CET
  '2025-10-26T23:00:00Z', // Oct 27 00:00 CET
  '2025-06-14T18:29:59.999Z', // Kolkata Jun 14 23:59:59.999
  '2025-06-14T18:30:00Z', // Kolkata Jun 15 00:00
  '2025-06-15T18:29:59Z', // Kolkata Jun 15 23:59:59
  '2025-06-15T18:30:00Z', // Kolkata Jun 16 00:00
  '2025-06-16T00:00:00Z', // UTC midnight
];
const WINDOW_START = Date.parse('2025-03-20T00:00:00Z');
const WINDOW_END = Date.parse('2025-11-05T00:00:00Z');

async function buildFixture(tenant: Tenant, seed: number, chatCount: number): Promise<Fixture> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const at = () => new Date(WINDOW_START + Math.floor(random() * (WINDOW_END - WINDOW_START))).toISOString();
  const fixture: Fixture = { chats: [], messages: [] };
  let edge = 0;
  for (let c = 0; c < chatCount; c++) {
    const tags = TAGS.filter(() => random() < 0.3);
    const externalUserId = c % 5 === 4 ? null : `user-${c % 7}`;
    // Chats are created at the edges too, so daily chat counts cross DST and midnight.
    const createdAt = c < EDGES.length ? EDGES[c]! : at();
    const noReply = c % 6 === 5;
    const count = c % 9 === 8 ? 0 : 3 + Math.floor(random() * 12);
    const messages: (Omit<MessageCreate, 'createdAt'> & { createdAt: string })[] = [];
    for (let k = 0; k < count; k++) {
      let role = k === 0 ? 'system' : pick(ROLES);
      if (noReply && role === 'assistant') role = 'user';
      const assistant = role === 'assistant';
      const withTokens = random() < 0.8;
      messages.push({
        role,
        content: `message ${c}.${k}`,
        model: assistant || random() < 0.2 ? pick(MODELS) : null,
        promptTokens: withTokens ? Math.floor(random() * 500) : null,
        completionTokens: withTokens && random() < 0.9 ? Math.floor(random() * 900) : null,
        ...(random() < 0.1 ? { totalTokens: Math.floor(random() * 2000) } : {}),
        latencyMs: (assistant && random() < 0.85) || random() < 0.1 ? Math.floor(random() * 5000) : null,
        costUsd: random() < 0.7 ? Math.round(random() * 1e6) / 1e8 : null,
        // One message in four lands exactly on an edge instant.
        createdAt: random() < 0.25 ? EDGES[edge++ % EDGES.length]! : at(),
      });
    }
    await ingest(tenant, fixture, { createdAt, tags, externalUserId }, messages);
  }
  return fixture;
}

// ---- the expected values, computed in TypeScript ---------------------------------------------

/** The offset of `tz` at an instant, in milliseconds. */
const formats = new Map<string, Intl.DateTimeFormat>();
function offsetAt(instant: number, tz: string): number {
  let format = formats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formats.set(tz, format);
  }
  const parts = Object.fromEntries(
    format
      .formatToParts(new Date(instant))
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return local - (instant - (((instant % 1000) + 1000) % 1000));
}
/** The local calendar date (as a UTC midnight) of an instant in tz. */
const localDates = new Map<string, number>();
const localDate = (instant: number, tz: string) => {
  const key = `${tz} ${instant}`;
  let date = localDates.get(key);
  if (date === undefined) {
    const local = instant + offsetAt(instant, tz);
    date = local - (((local % 86_400_000) + 86_400_000) % 86_400_000);
    localDates.set(key, date);
  }
  return date;
};
/** The instant of local midnight of a calendar date (given as a UTC midnight) in tz. */
function midnight(date: number, tz: string): number {
  let instant = date - offsetAt(date, tz);
  instant = date - offsetAt(instant, tz);
  return instant;
}
const DAY = 86_400_000;
const HOUR = 3_600_000;
const isoDay = (date: number) => new Date(date).toISOString().slice(0, 10);
const iso6 = (instant: number) => new Date(instant).toISOString().replace('Z', '000Z');

function percentileCont(values: number[], p: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
const sum = (values: (number | null)[]) => values.reduce<number>((a, v) => a + (v ?? 0), 0);
const avg = (values: number[]) => (values.length ? sum(values) / values.length : null);

function top<K extends string>(counts: Map<string, number>, key: K) {
  return [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, 10)
    .map(([name, messages]) => ({ [key]: name, messages }) as { [P in K]: string } & { messages: number });
}

function expectedSummary(f: Fixture, from: number, to: number, tz: string): Summary {
  const chats = f.chats.filter((c) => c.createdAt >= from && c.createdAt < to);
  const messages = f.messages.filter((m) => m.createdAt >= from && m.createdAt < to);
  const latencies = messages.filter((m) => m.role === 'assistant' && m.latencyMs !== null).map((m) => m.latencyMs!);
  const counts = chats.map((c) => f.messages.filter((m) => m.chatId === c.id).length);
  const days: Summary['daily'] = [];
  for (let d = localDate(from, tz); d <= localDate(to - 1, tz); d += DAY) {
    const inDay = (instant: number) => localDate(instant, tz) === d;
    const dayMessages = messages.filter((m) => inDay(m.createdAt));
    days.push({ date: isoDay(d), chats: chats.filter((c) => inDay(c.createdAt)).length, messages: dayMessages.length, totalTokens: sum(dayMessages.map((m) => m.totalTokens)) });
  }
  const chatById = new Map(f.chats.map((c) => [c.id, c]));
  const tagCounts = new Map<string, number>();
  const modelCounts = new Map<string, number>();
  for (const m of messages) {
    for (const tag of chatById.get(m.chatId)!.tags) tagCounts.set(tag, (tagCounts.get(tag) ?? 0) + 1);
    if (m.model !== null) modelCounts.set(m.model, (modelCounts.get(m.model) ?? 0) + 1);
  }
  const byRole = (role: Role) => messages.filter((m) => m.role === role).length;
  return {
    range: { from: iso6(from), to: iso6(to), tz },
    totals: {
      chats: chats.length,
      messages: messages.length,
      messagesByRole: { system: byRole('system'), user: byRole('user'), assistant: byRole('assistant'), tool: byRole('tool'), function: byRole('function') },
      endUsers: new Set(chats.map((c) => c.externalUserId).filter((u) => u !== null)).size,
      promptTokens: sum(messages.map((m) => m.promptTokens)),
      completionTokens: sum(messages.map((m) => m.completionTokens)),
      totalTokens: sum(messages.map((m) => m.totalTokens)),
      costUsd: sum(messages.map((m) => m.costUsd)),
    },
    latency: { count: latencies.length, avg: avg(latencies), p50: percentileCont(latencies, 0.5), p95: percentileCont(latencies, 0.95), p99: percentileCont(latencies, 0.99) },
    conversations: {
      messagesPerChat: { avg: avg(counts), p50: percentileCont(counts, 0.5), p95: percentileCont(counts, 0.95) },
      chatsWithoutAssistantReply: chats.filter((c) => !f.messages.some((m) => m.chatId === c.id && m.role === 'assistant')).length,
    },
    daily: days,
    topTags: top(tagCounts, 'tag'),
    topModels: top(modelCounts, 'model'),
  };
}

type Metric = TimeseriesQuery['metric'];
type Interval = NonNullable<TimeseriesQuery['interval']>;

function bucketStarts(from: number, to: number, tz: string, interval: Interval): number[] {
  const starts: number[] = [];
  if (interval === 'hour') {
    const local = from + offsetAt(from, tz);
    for (let s = from - (((local % HOUR) + HOUR) % HOUR); s < to; s += HOUR) starts.push(s);
    return starts;
  }
  let date = localDate(from, tz);
  if (interval === 'week') date -= ((new Date(date).getUTCDay() + 6) % 7) * DAY;
  for (; midnight(date, tz) < to; date += interval === 'week' ? 7 * DAY : DAY) starts.push(midnight(date, tz));
  return starts;
}

function expectedTimeseries(f: Fixture, from: number, to: number, tz: string, metric: Metric, interval: Interval): Timeseries {
  const starts = bucketStarts(from, to, tz, interval);
  const points = starts.map((start, i) => {
    const end = starts[i + 1] ?? Infinity;
    const inBucket = (instant: number) => instant >= Math.max(start, from) && instant < Math.min(end, to);
    const chats = f.chats.filter((c) => inBucket(c.createdAt));
    const messages = f.messages.filter((m) => inBucket(m.createdAt));
    const latencies = messages.filter((m) => m.role === 'assistant' && m.latencyMs !== null).map((m) => m.latencyMs!);
    const value: Record<Metric, number | null> = {
      chats: chats.length,
      endUsers: new Set(chats.map((c) => c.externalUserId).filter((u) => u !== null)).size,
      messages: messages.length,
      promptTokens: sum(messages.map((m) => m.promptTokens)),
      completionTokens: sum(messages.map((m) => m.completionTokens)),
      totalTokens: sum(messages.map((m) => m.totalTokens)),
      costUsd: sum(messages.map((m) => m.costUsd)),
      latencyAvg: avg(latencies),
      latencyP50: percentileCont(latencies, 0.5),
      latencyP95: percentileCont(latencies, 0.95),
    };
    return { start: iso6(start), value: value[metric] };
  });
  return { metric, interval, range: { from: iso6(from), to: iso6(to), tz }, points };
}

/** Deep equality, with floating-point sums and averages compared to 9 significant digits. */
function expectClose(actual: unknown, expected: unknown, path = '$') {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Number.isInteger(expected) && Number.isInteger(actual)) expect({ path, value: actual }).toEqual({ path, value: expected });
    else expect({ path, close: Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)) }).toEqual({ path, close: true });
    return;
  }
  if (expected === null || typeof expected !== 'object') {
    expect({ path, value: actual }).toEqual({ path, value: expected });
    return;
  }
  expect({ path, keys: Object.keys(actual as object).sort() }).toEqual({ path, keys: Object.keys(expected).sort() });
  for (const key of Object.keys(expected)) expectClose((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
}

// ---- the suite -------------------------------------------------------------------------------

let tenant: Tenant;
let other: Tenant;
let fixture: Fixture;

beforeAll(async () => {
  t = await createTestApp();
  [tenant, other] = await Promise.all([createTenant(t), createTenant(t)]);
  fixture = await buildFixture(tenant, 7, 34);
  // Another organization, with data in the same days, that must never be counted.
  await buildFixture(other, 99, 6);
}, 120_000);

async function summary(query: SummaryQuery, token = tenant.adminToken, org = 'me') {
  return as(token).GET('/analytics/orgs/{org}/summary', { params: { path: { org }, query } });
}
async function timeseries(query: TimeseriesQuery, token = tenant.adminToken) {
  return as(token).GET('/analytics/orgs/{org}/timeseries', { params: { path: { org: 'me' }, query } });
}

describe('summary', () => {
  const cases: { name: string; query: SummaryQuery; from: string; to: string; days?: number }[] = [
    { name: 'Amsterdam across spring DST (a 23-hour day)', query: { from: '2025-03-28', to: '2025-04-01', tz: 'Europe/Amsterdam' }, from: '2025-03-27T23:00:00Z', to: '2025-04-01T22:00:00Z', days: 5 },
    { name: 'Amsterdam across autumn DST (a 25-hour day)', query: { from: '2025-10-26', to: '2025-10-26', tz: 'Europe/Amsterdam' }, from: '2025-10-25T22:00:00Z', to: '2025-10-26T23:00:00Z', days: 1 },
    { name: 'Kolkata around midnight', query: { from: '2025-06-14', to: '2025-06-16', tz: 'Asia/Kolkata' }, from: '2025-06-13T18:30:00Z', to: '2025-06-16T18:30:00Z', days: 3 },
    { name: 'the whole year in UTC', query: { from: '2025-01-01', to: '2025-12-31' }, from: '2025-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z', days: 365 },
    { name: 'date-time bounds, to exclusive', query: { from: '2025-03-30T00:59:59Z', to: '2025-10-26T01:30:00Z', tz: 'Asia/Kolkata' }, from: '2025-03-30T00:59:59Z', to: '2025-10-26T01:30:00Z' },
    { name: 'date-time bounds with an offset', query: { from: '2025-06-15T00:00:00+05:30', to: '2025-06-16T00:00:00.000+05:30', tz: 'Asia/Kolkata' }, from: '2025-06-14T18:30:00Z', to: '2025-06-15T18:30:00Z', days: 1 },
  ];
  for (const c of cases) {
    test(`every field matches a direct computation: ${c.name}`, async () => {
      const { data, response } = await summary(c.query);
      expect(response.status).toBe(200);
      const expected = expectedSummary(fixture, Date.parse(c.from), Date.parse(c.to), c.query.tz ?? 'UTC');
      if (c.days !== undefined) expect(data!.daily).toHaveLength(c.days);
      expect(expected.totals.messages).toBeGreaterThan(0);
      expectClose(data, expected);
    });
  }

  test('the fixture exercises what it should', () => {
    const all = expectedSummary(fixture, Date.parse('2025-01-01T00:00:00Z'), Date.parse('2026-01-01T00:00:00Z'), 'UTC');
    expect(all.totals.messages).toBe(fixture.messages.length);
    expect(all.topTags).toHaveLength(10);
    expect(all.topModels).toHaveLength(10);
    expect(all.conversations.chatsWithoutAssistantReply).toBeGreaterThan(0);
    expect(all.latency.count).toBeGreaterThan(10);
    expect(Object.values(all.totals.messagesByRole).every((n) => n > 0)).toBe(true);
  });

  test('DST days: the 23-hour and 25-hour days hold exactly their local messages', async () => {
    const { data } = await summary({ from: '2025-03-30', to: '2025-03-30', tz: 'Europe/Amsterdam' });
    expect(data!.range).toEqual({ from: '2025-03-29T23:00:00.000000Z', to: '2025-03-30T22:00:00.000000Z', tz: 'Europe/Amsterdam' });
    const autumn = await summary({ from: '2025-10-26', to: '2025-10-26', tz: 'Europe/Amsterdam' });
    expect(autumn.data!.range.to).toBe('2025-10-26T23:00:00.000000Z');
  });

  test('an empty range is all zeros and nulls, with every day present', async () => {
    const { data, response } = await summary({ from: '2024-02-25', to: '2024-03-05', tz: 'Asia/Kolkata' });
    expect(response.status).toBe(200);
    expect(data).toEqual({
      range: { from: '2024-02-24T18:30:00.000000Z', to: '2024-03-05T18:30:00.000000Z', tz: 'Asia/Kolkata' },
      totals: { chats: 0, messages: 0, messagesByRole: { system: 0, user: 0, assistant: 0, tool: 0, function: 0 }, endUsers: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costUsd: 0 },
      latency: { count: 0, avg: null, p50: null, p95: null, p99: null },
      conversations: { messagesPerChat: { avg: null, p50: null, p95: null }, chatsWithoutAssistantReply: 0 },
      daily: ['02-25', '02-26', '02-27', '02-28', '02-29', '03-01', '03-02', '03-03', '03-04', '03-05'].map((d) => ({ date: `2024-${d}`, chats: 0, messages: 0, totalTokens: 0 })),
      topTags: [],
      topModels: [],
    });
  });

  test('defaults: the 30 days ending today in tz, and data of today counts', async () => {
    const fresh = await createTenant(t);
    const f: Fixture = { chats: [], messages: [] };
    const now = new Date().toISOString();
    await ingest(fresh, f, { createdAt: now, tags: ['today'], externalUserId: 'u1' }, [{ role: 'assistant', content: 'hi', latencyMs: 120, model: 'm', createdAt: now }]);
    for (const tz of ['UTC', 'Asia/Kolkata', 'America/Los_Angeles']) {
      const { data, response } = await summary(tz === 'UTC' ? {} : { tz }, fresh.adminToken);
      expect(response.status).toBe(200);
      const today = localDate(Date.now(), tz);
      const to = midnight(today + DAY, tz);
      const from = midnight(today - 29 * DAY, tz);
      expect(data!.range).toEqual({ from: iso6(from), to: iso6(to), tz });
      expect(data!.daily).toHaveLength(30);
      expect(data!.daily.at(-1)!.date).toBe(isoDay(today));
      expectClose(data, expectedSummary(f, from, to, tz));
      expect(data!.totals.messages).toBe(1);
    }
    // Only `from`: up to the end of today; only `to`: the 30 days ending that day.
    const onlyTo = await summary({ to: '2025-06-30', tz: 'Europe/Amsterdam' }, fresh.adminToken);
    expect(onlyTo.data!.range).toEqual({ from: '2025-05-31T22:00:00.000000Z', to: '2025-06-30T22:00:00.000000Z', tz: 'Europe/Amsterdam' });
    const today = localDate(Date.now(), 'UTC');
    const onlyFrom = await summary({ from: isoDay(today - 3 * DAY) }, fresh.adminToken);
    expect(onlyFrom.data!.range.to).toBe(iso6(today + DAY));
    expect(onlyFrom.data!.daily).toHaveLength(4);
  });

  test('range validation: 422 with the pointer of the field', async () => {
    const invalid: [SummaryQuery, string][] = [
      [{ from: 'yesterday' }, '/query/from'],
      [{ from: '2025-02-30' }, '/query/from'],
      [{ to: '2025-13-01' }, '/query/to'],
      [{ to: '2025-06-01T25:00:00Z' }, '/query/to'],
      [{ to: '2025-06-01T10:00:00' }, '/query/to'],
      [{ tz: 'Mars/Olympus_Mons' }, '/query/tz'],
      [{ tz: '+05:30' }, '/query/tz'],
      [{ tz: 'UTC+3' }, '/query/tz'],
      [{ tz: '' }, '/query/tz'],
      [{ from: '2025-06-02', to: '2025-06-01' }, '/query/to'],
      [{ from: '2025-06-01T10:00:00Z', to: '2025-06-01T10:00:00Z' }, '/query/to'],
      [{ from: '2024-01-01', to: '2025-01-01' }, '/query/to'], // 367 days
    ];
    for (const [query, pointer] of invalid) {
      const { response, error } = await summary(query);
      expect({ query, status: response.status }).toEqual({ query, status: 422 });
      expect({ query, pointers: (error as { errors: { pointer: string }[] }).errors.map((e) => e.pointer) }).toEqual({ query, pointers: [pointer] });
    }
    // 366 days (a leap year) is allowed; a 366-day date-time range too.
    expect((await summary({ from: '2024-01-01', to: '2024-12-31' })).response.status).toBe(200);
    expect((await summary({ from: '2025-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' })).response.status).toBe(200);
  });

  test('tenant isolation: another organization is a 404, and its data is never counted', async () => {
    const { response } = await summary({ from: '2025-03-28', to: '2025-04-01' }, other.adminToken, tenant.slug);
    expect(response.status).toBe(404);
    const ts = await as(other.adminToken).GET('/analytics/orgs/{org}/timeseries', { params: { path: { org: tenant.slug }, query: { metric: 'messages' } } });
    expect(ts.response.status).toBe(404);
    // The other organization sees only its own (smaller) fixture.
    const mine = await summary({ from: '2025-01-01', to: '2025-12-31' });
    const theirs = await summary({ from: '2025-01-01', to: '2025-12-31' }, other.adminToken);
    expect(mine.data!.totals.messages).toBe(fixture.messages.length);
    expect(theirs.data!.totals.chats).toBe(6);
    expect(theirs.data!.totals.messages).toBeLessThan(mine.data!.totals.messages);
  });

  test('roles: a viewer may read analytics; anonymous callers may not', async () => {
    const viewer = await addUser(t, tenant, 'viewer');
    const { data, response } = await summary({ from: '2025-03-28', to: '2025-04-01', tz: 'Europe/Amsterdam' }, viewer.token);
    expect(response.status).toBe(200);
    expectClose(data, expectedSummary(fixture, Date.parse('2025-03-27T23:00:00Z'), Date.parse('2025-04-01T22:00:00Z'), 'Europe/Amsterdam'));
    const ts = await timeseries({ metric: 'chats' }, viewer.token);
    expect(ts.response.status).toBe(200);
    const anonymous = await t.client().GET('/analytics/orgs/{org}/summary', { params: { path: { org: 'me' } } });
    expect(anonymous.response.status).toBe(401);
  });
});

describe('timeseries', () => {
  const cases: { query: TimeseriesQuery; from: string; to: string; buckets: number }[] = [
    { query: { metric: 'messages', interval: 'hour', from: '2025-10-26', to: '2025-10-26', tz: 'Europe/Amsterdam' }, from: '2025-10-25T22:00:00Z', to: '2025-10-26T23:00:00Z', buckets: 25 },
    { query: { metric: 'latencyP95', interval: 'hour', from: '2025-03-30', to: '2025-03-30', tz: 'Europe/Amsterdam' }, from: '2025-03-29T23:00:00Z', to: '2025-03-30T22:00:00Z', buckets: 23 },
    { query: { metric: 'totalTokens', interval: 'hour', from: '2025-06-14T17:00:00Z', to: '2025-06-15T19:00:00Z', tz: 'Asia/Kolkata' }, from: '2025-06-14T17:00:00Z', to: '2025-06-15T19:00:00Z', buckets: 27 },
    { query: { metric: 'chats', interval: 'day', from: '2025-03-25', to: '2025-04-05', tz: 'Europe/Amsterdam' }, from: '2025-03-24T23:00:00Z', to: '2025-04-05T22:00:00Z', buckets: 12 },
    { query: { metric: 'endUsers', from: '2025-01-01', to: '2025-12-31' }, from: '2025-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z', buckets: 365 },
    { query: { metric: 'costUsd', interval: 'day', from: '2025-06-10', to: '2025-06-20', tz: 'Asia/Kolkata' }, from: '2025-06-09T18:30:00Z', to: '2025-06-20T18:30:00Z', buckets: 11 },
    { query: { metric: 'latencyAvg', interval: 'week', from: '2025-03-20', to: '2025-11-04', tz: 'Europe/Amsterdam' }, from: '2025-03-19T23:00:00Z', to: '2025-11-04T23:00:00Z', buckets: 34 },
    { query: { metric: 'latencyP50', interval: 'week', from: '2025-03-20', to: '2025-11-04', tz: 'Asia/Kolkata' }, from: '2025-03-19T18:30:00Z', to: '2025-11-04T18:30:00Z', buckets: 34 },
    { query: { metric: 'promptTokens', interval: 'week', from: '2025-10-20T12:00:00Z', to: '2025-11-01T00:00:00Z', tz: 'Europe/Amsterdam' }, from: '2025-10-20T12:00:00Z', to: '2025-11-01T00:00:00Z', buckets: 2 },
    { query: { metric: 'completionTokens', interval: 'day', from: '2025-10-24', to: '2025-10-28', tz: 'Europe/Amsterdam' }, from: '2025-10-23T22:00:00Z', to: '2025-10-28T23:00:00Z', buckets: 5 },
  ];
  for (const c of cases) {
    const { metric, interval = 'day', tz = 'UTC' } = c.query;
    test(`${metric} per ${interval} in ${tz} from ${c.query.from}: every bucket matches`, async () => {
      const { data, response } = await timeseries(c.query);
      expect(response.status).toBe(200);
      expect(data!.points).toHaveLength(c.buckets);
      const expected = expectedTimeseries(fixture, Date.parse(c.from), Date.parse(c.to), tz, metric, interval);
      expect(expected.points.some((p) => p.value !== 0 && p.value !== null)).toBe(true);
      expectClose(data, expected);
    });
  }

  test('weeks start on Monday at midnight in tz; the autumn DST hour appears twice', async () => {
    const week = await timeseries({ metric: 'messages', interval: 'week', from: '2025-10-22', to: '2025-10-29', tz: 'Europe/Amsterdam' });
    expect(week.data!.points.map((p) => p.start)).toEqual(['2025-10-19T22:00:00.000000Z', '2025-10-26T23:00:00.000000Z']);
    const hours = await timeseries({ metric: 'messages', interval: 'hour', from: '2025-10-26', to: '2025-10-26', tz: 'Europe/Amsterdam' });
    expect(hours.data!.points.slice(1, 4).map((p) => p.start)).toEqual(['2025-10-25T23:00:00.000000Z', '2025-10-26T00:00:00.000000Z', '2025-10-26T01:00:00.000000Z']);
  });

  test('an empty range: 0 for counts, null for latency, every bucket present', async () => {
    const counts = await timeseries({ metric: 'messages', interval: 'day', from: '2024-02-27', to: '2024-03-01' });
    expect(counts.data!.points).toEqual(['27', '28', '29'].map((d) => ({ start: `2024-02-${d}T00:00:00.000000Z`, value: 0 })).concat([{ start: '2024-03-01T00:00:00.000000Z', value: 0 }]));
    const latency = await timeseries({ metric: 'latencyP95', interval: 'hour', from: '2024-02-27', to: '2024-02-27', tz: 'Asia/Kolkata' });
    expect(latency.data!.points).toHaveLength(24);
    expect(latency.data!.points[0]).toEqual({ start: '2024-02-26T18:30:00.000000Z', value: null });
    expect(latency.data!.points.every((p) => p.value === null)).toBe(true);
  });

  test('validation: too many buckets, unknown metric or interval, bad range', async () => {
    const tooMany = await timeseries({ metric: 'messages', interval: 'hour', from: '2025-01-01', to: '2025-03-31' });
    expect(tooMany.response.status).toBe(422);
    expect((tooMany.error as { errors: { pointer: string }[] }).errors.map((e) => e.pointer)).toEqual(['/query/interval']);
    // 2,000 hourly buckets exactly is allowed (83 days and 8 hours).
    const limit = await timeseries({ metric: 'messages', interval: 'hour', from: '2025-01-01T00:00:00Z', to: '2025-03-25T08:00:00Z' });
    expect(limit.response.status).toBe(200);
    expect(limit.data!.points).toHaveLength(2000);
    const raw = await t.fetch('/analytics/orgs/me/timeseries?metric=speed', { headers: { authorization: `Bearer ${tenant.adminToken}` } });
    expect(raw.status).toBe(422);
    expect(((await raw.json()) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer)).toEqual(['/query/metric']);
    const badInterval = await t.fetch('/analytics/orgs/me/timeseries?metric=chats&interval=month', { headers: { authorization: `Bearer ${tenant.adminToken}` } });
    expect(badInterval.status).toBe(422);
    const badTz = await timeseries({ metric: 'chats', tz: 'Not/AZone' });
    expect((badTz.error as { errors: { pointer: string }[] }).errors.map((e) => e.pointer)).toEqual(['/query/tz']);
    const missing = await t.fetch('/analytics/orgs/me/timeseries', { headers: { authorization: `Bearer ${tenant.adminToken}` } });
    expect(missing.status).toBe(422);
  });
});
