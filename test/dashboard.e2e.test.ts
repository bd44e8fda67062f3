/**
 * The dashboard in a real browser (Debian's Chromium, headless, driven by playwright-core)
 * against a real server process on 127.0.0.1 (`bun src/main.ts`, PGlite in a temporary directory
 * or a fresh database on TEST_DATABASE_URL), seeded before it starts (dashboard.seed.ts).
 *
 * Every page is loaded under the Content-Security-Policy the server's /app pages carry, and a
 * violation, an uncaught error or a request to another origin fails the run. Screenshots of the
 * main screens land in artifacts/screenshots/. Figures (page weight, time to first rows with
 * 10,000 chats, the bundle's build time at boot) are printed.
 *
 * Without /usr/bin/chromium the tests are skipped with a note, except under CI=true, where that
 * is a failure.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { openDatabase } from '../src/db/orm.ts';
import { createServerDatabase, testDatabaseKind } from './support/database.ts';
import { childEnv, killAll, parseJson, PROJECT_ROOT, startServer, stopProcess, type RunningServer } from './support/process.ts';
import { BULK_CHATS, LONG_CHAT_MESSAGES, SEARCH_WORD, seedDashboard, type Seeded } from './dashboard.seed.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The policy of the server's /app pages; applied here too, so the test holds without it. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
const SHOTS = join(PROJECT_ROOT, 'artifacts', 'screenshots');
const ROOT = { email: 'root@dashboard.test', password: 'root-password-for-the-dashboard' };
const LAPTOP = { width: 1366, height: 860 };
const PHONE = { width: 390, height: 844 };

// The page's globals, for the callbacks that run in the browser (this file is compiled without DOM types).
declare const document: { querySelectorAll(selector: string): { length: number }; documentElement: { scrollWidth: number }; body: { scrollHeight: number }; activeElement: { textContent: string | null } | null };
declare const window: { scrollTo(x: number, y: number): void };

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') {
    test('Chromium is installed for the dashboard tests', () => {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does).`);
    });
  } else {
    console.warn(`dashboard.e2e: skipped, ${CHROMIUM} is missing (apt-get install chromium)`);
  }
}

const tempDirs: string[] = [];
let server: RunningServer;
let seeded: Seeded;
let browser: Browser;
let admin: { context: BrowserContext; page: Page };
const problems: string[] = [];
const figures: Record<string, string> = {};
const digits = (text: string | null) => (text ?? '').replace(/[^0-9]/g, '');

async function newContext(viewport = LAPTOP): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'Europe/Amsterdam', acceptDownloads: true });
  await context.route(/\/app(\/|\?|$)/, async (route) => {
    if (route.request().resourceType() !== 'document') return route.continue();
    const response = await route.fetch();
    const headers: Record<string, string> = { ...response.headers(), 'content-security-policy': CSP };
    // The fetched body is already decoded.
    delete headers['content-encoding'];
    delete headers['content-length'];
    await route.fulfill({ response, headers });
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(server.url.replace('0.0.0.0', '127.0.0.1')) && !url.startsWith('data:')) problems.push(`request to another origin: ${url}`);
  });
  return { context, page };
}

const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
const shot = (page: Page, name: string, fullPage = false) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });

async function loginThroughApi(context: BrowserContext, email: string, password: string) {
  const response = await context.request.post(url('/auth/login'), { data: { email, password } });
  expect(response.status()).toBe(200);
}

const suite = haveChromium ? describe : describe.skip;

suite('dashboard in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const dataDir = mkdtempSync(join(tmpdir(), 'chatlogger-dashboard-'));
    tempDirs.push(dataDir);
    const databaseUrl = testDatabaseKind === 'postgresql' ? await createServerDatabase() : undefined;
    const db = await openDatabase({ databaseUrl, dataDir, databasePoolSize: 4 });
    try {
      await db.migrate();
      seeded = await seedDashboard(db, ROOT);
    } finally {
      await db.close();
    }
    server = await startServer(childEnv({ DATA_DIR: dataDir, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', LOG_LEVEL: 'info', RETENTION_ENABLED: 'false', ADMIN_EMAIL: ROOT.email, ADMIN_PASSWORD: ROOT.password }), { timeoutMs: 60_000 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    admin = await newContext();
  }, 240_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (server) await stopProcess(server);
    await killAll();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    console.log(`dashboard figures:\n${Object.entries(figures).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
  }, 60_000);

  test('the server built the bundle at boot and says how long it took', async () => {
    const line = await server.waitForLine((l) => parseJson(l)?.msg === 'dashboard ready', 20_000);
    const ready = parseJson(line)!;
    expect(['memory', 'dist']).toContain(ready.source as string);
    expect(ready.ms as number).toBeLessThan(5_000);
    figures['bundle at boot'] = `${ready.ms} ms (${ready.source}), ${ready.bytes} bytes of assets, ${ready.gzipBytes} gzipped`;
  });

  test('page weight: what the first visit loads, and the charts loaded later', async () => {
    const html = await (await fetch(url('/app'))).text();
    const initial = [...html.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    const mainJs = await (await fetch(url(initial.find((a) => a.endsWith('.js'))!))).text();
    const lazy = [...new Set([...mainJs.matchAll(/(chunk-[0-9a-z]{8}\.js)/g)].map((m) => `/app/assets/${m[1]}`))].filter((a) => !initial.includes(a));
    const size = async (asset: string) => {
      const raw = (await (await fetch(url(asset), { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()).byteLength;
      const zipped = await fetch(url(asset), { headers: { 'accept-encoding': 'gzip' }, decompress: false } as RequestInit);
      expect(zipped.headers.get('content-encoding')).toBe('gzip');
      return { raw, gzip: (await zipped.arrayBuffer()).byteLength };
    };
    const js = await size(initial.find((a) => a.endsWith('.js'))!);
    const css = await size(initial.find((a) => a.endsWith('.css'))!);
    const later = await Promise.all(lazy.map(size));
    expect(js.gzip).toBeLessThan(40 * 1024);
    expect(css.gzip).toBeLessThan(10 * 1024);
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    figures['page weight, first visit'] = `JS ${kib(js.raw)} (${kib(js.gzip)} gzip), CSS ${kib(css.raw)} (${kib(css.gzip)} gzip)`;
    figures['page weight, analytics chunk'] = later.map((c) => `JS ${kib(c.raw)} (${kib(c.gzip)} gzip)`).join(', ');
  });

  test('login: a wrong password shows the problem detail, the right one opens the conversations', async () => {
    const { page } = admin;
    await page.goto(url('/'));
    await page.waitForURL(/\/app$/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot(page, 'login');
    await page.getByLabel('Email').fill(seeded.adminEmail);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/invalid|incorrect|wrong/i);

    await page.getByLabel('Password').fill(seeded.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Conversations' }).waitFor();
    await page.waitForURL(/\/app\/chats$/);
    await page.locator('.chat-row').first().waitFor();
    expect(await page.locator('.chat-row').count()).toBe(50);
    await shot(page, 'conversations');
  }, 60_000);

  test('the list scrolls on: the next page loads when its end comes into view', async () => {
    const { page } = admin;
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await page.waitForFunction((n) => document.querySelectorAll('.chat-row').length > n, 50);
    await page.getByText(`All ${seeded.chats} conversations shown`).waitFor();
    expect(await page.locator('.chat-row').count()).toBe(seeded.chats);
  }, 30_000);

  test('search by a word of a message, then read the transcript with it highlighted', async () => {
    const { page } = admin;
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByLabel('Search').fill(SEARCH_WORD);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL(new RegExp(`q=${SEARCH_WORD}`));
    await page.waitForFunction(() => document.querySelectorAll('.chat-row').length === 1);
    await page.getByText('The only conversation shown').waitFor();
    const row = page.locator('.chat-row').first();
    expect(await row.locator('.chat-title').textContent()).toBe(seeded.searchChatTitle);

    await row.locator('.chat-link').click();
    await page.getByRole('heading', { name: seeded.searchChatTitle }).waitFor();
    await page.getByText(/All \d+ messages shown/).waitFor();
    expect(await page.locator('mark').first().textContent()).toBe(SEARCH_WORD);
    // Roles are told apart, and an assistant message shows its model, tokens, latency and cost.
    for (const role of ['user', 'assistant', 'tool']) expect(await page.locator(`.msg-${role}`).count()).toBeGreaterThan(0);
    const reply = page.locator('.msg-assistant').last();
    expect(await reply.locator('.chip').textContent()).toMatch(/gpt|claude/);
    const stats = await reply.locator('.msg-stats').textContent();
    expect(stats).toMatch(/Tokens.*\d+ \+ \d+ = \d+/);
    expect(stats).toMatch(/Latency\s*[\d.]+ (ms|s)/);
    expect(stats).toMatch(/Cost\s*\$0\.\d+/);
    // Tool calls and metadata are pretty-printed on demand.
    const tool = page.locator('details', { hasText: 'Tool calls' }).first();
    await tool.locator('summary').click();
    const calls = await tool.locator('pre').textContent();
    expect(calls).toContain('"function": {');
    // The arguments string of the call is shown parsed.
    expect(calls).toContain('"charge": "ch_3PqX"');
    await shot(page, 'transcript');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'transcript-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  }, 30_000);

  test('analytics: the totals on the page are the API summary, and the charts render', async () => {
    const { page, context } = admin;
    const summaryCall = page.waitForResponse((r) => r.url().includes('/analytics/orgs/me/summary'));
    await page.getByRole('link', { name: 'Analytics' }).click();
    const pageResponse = await summaryCall;
    await page.locator('[data-stat="messages"] .stat-value').waitFor();
    // The same question asked of the API independently.
    const api = await context.request.get(pageResponse.url());
    expect(api.status()).toBe(200);
    const summary = (await api.json()) as { totals: Record<string, number>; range: { tz: string } };
    expect(summary.range.tz).toBe('Europe/Amsterdam');
    expect(summary.totals.messages).toBe(seeded.messages);
    expect(summary.totals.chats).toBe(seeded.chats);
    expect(digits(await page.locator('[data-stat="messages"] .stat-value').textContent())).toBe(String(summary.totals.messages));
    expect(digits(await page.locator('[data-stat="chats"] .stat-value').textContent())).toBe(String(summary.totals.chats));
    expect(digits(await page.locator('[data-stat="endUsers"] .stat-value').textContent())).toBe(String(summary.totals.endUsers));
    // The daily chart's totals add up to the summary's.
    expect(digits(await page.locator('[data-total="messages"]').textContent())).toBe(String(summary.totals.messages));
    expect(digits(await page.locator('[data-total="chats"]').textContent())).toBe(String(summary.totals.chats));
    await page.waitForFunction(() => document.querySelectorAll('.chart-canvas canvas').length >= 4);
    const box = await page.locator('.chart-canvas canvas').first().boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(await page.locator('.bar-row').count()).toBeGreaterThan(3);
    await shot(page, 'analytics', true);
  }, 30_000);

  test('exports: create a CSV of the conversations and download it', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Exports' }).click();
    await page.getByRole('heading', { name: 'Exports', exact: true }).waitFor();
    await page.getByLabel('Contents').selectOption('chats');
    await page.getByLabel('Format').selectOption('csv');
    await page.getByRole('button', { name: 'Create export' }).click();
    const download = page.waitForEvent('download');
    await page.getByRole('status').getByRole('link', { name: 'Download CSV' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^chatlogger-chats-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = readFileSync((await file.path())!, 'utf8').replace(/^\uFEFF/, '');
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('chatId,title,tags,externalUserId,source,createdAt,updatedAt,lastMessageAt,messageCount,metadata');
    expect(lines.length - 1).toBe(seeded.chats);
    expect(csv).toContain(seeded.longChatTitle);
    expect(await page.locator('tr[data-export]').count()).toBe(1);
    await shot(page, 'exports');
  }, 30_000);

  test('API keys: create one, it ingests; revoke it, it stops', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Label').fill('e2e widget');
    await page.getByLabel('Allowed browser origins').fill('https://shop.example.com');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = page.locator('[data-secret]');
    await secret.waitFor();
    const key = (await secret.textContent())!.trim();
    expect(key).toMatch(/^clk_[A-Za-z0-9_-]{40}$/);
    const row = page.locator('tr', { hasText: 'e2e widget' });
    await row.waitFor();
    expect(await row.textContent()).toContain('https://shop.example.com');
    await shot(page, 'apikeys');

    const ingest = () => fetch(url(`/api/v1/orgs/${seeded.slug}/chats`), { method: 'POST', headers: { 'x-organization-api-key': key, 'content-type': 'application/json' }, body: '{"title":"from the e2e key"}' });
    expect((await ingest()).status).toBe(201);

    await row.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await row.getByText('revoked').waitFor();
    expect(await row.getByRole('button', { name: 'Revoke' }).count()).toBe(0);
    const refused = await ingest();
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
  }, 30_000);

  test('users: the admin sees the members and invites one; a refused change shows why', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Users' }).click();
    await page.locator(`tr[data-user="${seeded.viewerEmail}"]`).waitFor();
    // The admin's own row is locked: nobody changes their own role.
    expect(await page.locator(`tr[data-user="${seeded.adminEmail}"] select`).isDisabled()).toBe(true);
    const form = page.getByRole('form', { name: 'Invite a user' });
    await form.getByLabel('Email').fill('new-user@acme.test');
    await form.getByLabel('Role').selectOption('user');
    await form.getByLabel('Initial password').fill('short');
    await form.getByRole('button', { name: 'Add user' }).click();
    // The browser's own check stops a short password before the API is asked.
    expect(await form.getByLabel('Initial password').evaluate((el) => (el as unknown as { validity: { tooShort: boolean } }).validity.tooShort)).toBe(true);
    await form.getByRole('button', { name: 'Generate' }).click();
    await form.getByRole('button', { name: 'Add user' }).click();
    await page.locator('tr[data-user="new-user@acme.test"]').waitFor();
    // The same email again: the API's 409 detail is shown.
    await form.getByLabel('Email').fill('new-user@acme.test');
    await form.getByRole('button', { name: 'Generate' }).click();
    await form.getByRole('button', { name: 'Add user' }).click();
    await form.getByRole('alert').waitFor();
    expect(await form.getByRole('alert').textContent()).toMatch(/exists|in use|already/i);
    await shot(page, 'users');
  }, 30_000);

  test('settings: retention is saved through the API', async () => {
    const { page, context } = admin;
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('radio', { name: /Delete conversations inactive/ }).check();
    await page.getByLabel('Retention in days').fill('400');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    const org = (await (await context.request.get(url('/orgs/me'))).json()) as { settings: { retentionDays: number | null } };
    expect(org.settings.retentionDays).toBe(400);
    await shot(page, 'settings');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.locator('td code', { hasText: 'organization.updated' }).first().waitFor();
    await shot(page, 'audit');
  }, 30_000);

  test('a chat of 5,000 messages scrolls with a bounded DOM', async () => {
    const { page } = admin;
    await page.goto(url(`/app/chats?q=${encodeURIComponent('"very long conversation"')}`));
    await page.locator('.chat-link', { hasText: seeded.longChatTitle }).click();
    await page.getByRole('heading', { name: seeded.longChatTitle }).waitFor();
    await page.locator('.msg').first().waitFor();
    const started = performance.now();
    let maxInDom = 0;
    for (let i = 0; i < 200; i++) {
      await page.mouse.wheel(0, 30_000);
      maxInDom = Math.max(maxInDom, await page.locator('.msg').count());
      if (await page.getByText(`All ${LONG_CHAT_MESSAGES.toLocaleString('en-US')} messages shown`).isVisible()) break;
      await page.waitForTimeout(50);
    }
    await page.getByText(`All ${LONG_CHAT_MESSAGES.toLocaleString('en-US')} messages shown`).waitFor();
    const ms = Math.round(performance.now() - started);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page
      .getByText(`Reply number ${LONG_CHAT_MESSAGES}:`)
      .waitFor({ timeout: 10_000 })
      .catch(async (error: Error) => {
        // Which blocks were rendered, and where: enough to tell a windowing bug from a slow page.
        const blocks = await page.evaluate(`JSON.stringify({ scrollY, height: document.body.scrollHeight, blocks: [...document.querySelectorAll('.msg-block')].slice(-6).map((b) => [b.children.length, b.offsetHeight, Math.round(b.getBoundingClientRect().top)]) })`);
        throw new Error(`${error.message}\n${blocks}`);
      });
    expect(await page.getByText(`#${LONG_CHAT_MESSAGES}`, { exact: true }).isVisible()).toBe(true);
    // Only the blocks near the viewport are in the DOM.
    expect(maxInDom).toBeLessThan(1_000);
    // 2,500 replies of 120 tokens each.
    expect(digits(await page.locator('.facts div', { hasText: 'Tokens' }).locator('dd').textContent())).toBe('300000');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByText('Question number 1:', { exact: false }).first().waitFor();
    figures['5,000-message transcript'] = `scrolled to the end in ${ms} ms (25 pages of 200), at most ${maxInDom} messages in the DOM`;
  }, 120_000);

  test('a viewer sees no admin actions, and admin pages refuse them', async () => {
    const viewer = await newContext();
    await loginThroughApi(viewer.context, seeded.viewerEmail, seeded.password);
    const { page } = viewer;
    await page.goto(url('/app/chats'));
    await page.locator('.chat-row').first().waitFor();
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual(['Conversations', 'Analytics']);
    // Keyboard: the first Tab reaches the skip link; a focused row opens with Enter.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.locator('.chat-link', { hasText: seeded.searchChatTitle }).focus();
    await page.keyboard.press('Enter');
    await page.locator('.msg').first().waitFor();
    for (const name of ['Edit', 'Delete']) expect(await page.getByRole('button', { name, exact: true }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /Erase/ }).count()).toBe(0);
    expect(await page.getByRole('link', { name: /Download all data/ }).count()).toBe(0);
    for (const path of ['/app/keys', '/app/users', '/app/exports', '/app/settings', '/app/audit', '/app/orgs']) {
      await page.goto(url(path));
      await page.getByText('Your role does not give access to this page.').waitFor();
    }
    await shot(page, 'viewer-forbidden');
    // A session that ends elsewhere: the next call answers 401 and the sign-in form says why.
    await viewer.context.request.post(url('/auth/logout'));
    await page.getByRole('link', { name: 'Analytics' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('status').textContent()).toContain('Your session has ended');
    await viewer.context.close();
  }, 60_000);

  test('a superadmin switches to an organization and reads its conversations', async () => {
    const root = await newContext();
    await loginThroughApi(root.context, ROOT.email, ROOT.password);
    const { page } = root;
    await page.goto(url('/app/orgs'));
    const row = page.locator(`tr[data-org="${seeded.slug}"]`);
    await row.getByRole('button', { name: 'Open' }).click();
    await page.waitForURL(/\/app\/chats$/);
    await page.locator('.chat-row').first().waitFor();
    expect(await page.getByLabel('Organization').inputValue()).toBe(seeded.slug);
    await page.goto(url('/app/orgs'));
    await page.locator(`tr[data-org="${seeded.bulk.slug}"]`).waitFor();
    await shot(page, 'organizations');
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    await shot(page, 'account');
    await root.context.close();
  }, 60_000);

  test('phone width: the menu folds away and the list stays readable', async () => {
    const phone = await newContext(PHONE);
    await loginThroughApi(phone.context, seeded.adminEmail, seeded.password);
    const { page } = phone;
    await page.goto(url('/app/chats'));
    await page.locator('.chat-row').first().waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
    // Nothing is wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    // Only the search shows until the other filters are asked for.
    expect(await page.getByLabel('Tags', { exact: true }).isVisible()).toBe(false);
    await shot(page, 'phone-conversations');
    await page.getByRole('button', { name: 'Filters' }).click();
    expect(await page.getByLabel('Tags', { exact: true }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Analytics' }).click();
    await page.locator('[data-stat="messages"] .stat-value').waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.waitForFunction(() => document.querySelectorAll('.chart-canvas canvas').length >= 4);
    await shot(page, 'phone-analytics', true);
    await phone.context.close();
  }, 60_000);

  test('time to the first rows of a list of 10,000 conversations', async () => {
    const bulk = await newContext();
    await loginThroughApi(bulk.context, seeded.bulk.adminEmail, seeded.password);
    const { page } = bulk;
    const timings: number[] = [];
    for (const visit of ['cold', 'warm']) {
      const started = performance.now();
      await page.goto(url('/app/chats'));
      await page.locator('.chat-row').first().waitFor();
      const wall = performance.now() - started;
      const mark = await page.evaluate(() => performance.getEntriesByName('chatlogger:first-chat-rows')[0]?.startTime ?? null);
      expect(mark).not.toBeNull();
      timings.push(mark!);
      figures[`first rows, ${BULK_CHATS.toLocaleString('en-US')} chats, ${visit}`] = `${Math.round(mark!)} ms from navigation start (${Math.round(wall)} ms seen by the test)`;
    }
    expect(await page.locator('.chat-title').first().textContent()).toBe('Bulk conversation 1');
    expect(timings[1]!).toBeLessThan(5_000);
    await bulk.context.close();
  }, 60_000);

  test('a conversation logged over OTLP by the Vercel AI SDK reads like any other, and Source finds it', async () => {
    // The application: the AI SDK with its OpenTelemetry integration, exporting OTLP/protobuf.
    // Spans go in one export, as the SDK's default batching sends them (README: with one export a
    // span, concurrent requests may store an agent span's answer before the call that carries its usage).
    const loggedIn = await fetch(url('/auth/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: seeded.adminEmail, password: seeded.password, issueToken: true }) });
    const { token } = (await loggedIn.json()) as { token: string };
    const created = await fetch(url('/orgs/me/apikeys'), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"label":"otel app"}' });
    const { key } = (await created.json()) as { key: string };
    const { TracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
    const { resourceFromAttributes } = await import('@opentelemetry/resources');
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    const { generateText, stepCountIs, tool } = await import('ai');
    const { MockLanguageModelV4 } = await import('ai/test');
    const { OpenTelemetry } = await import('@ai-sdk/otel');
    const { z } = await import('zod');
    const exporter = new OTLPTraceExporter({ url: url(`/api/v1/orgs/${seeded.slug}/otel/v1/traces`), headers: { 'x-organization-api-key': key } });
    const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'otel-travel-agent' }), spanProcessors: [new BatchSpanProcessor({ exporter })] });
    const usage = (input: number, output: number) => ({ inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: output, text: output, reasoning: 0 } });
    let calls = 0;
    const model = new MockLanguageModelV4({
      modelId: 'gpt-4o-mini',
      doGenerate: async () =>
        ++calls === 1
          ? { content: [{ type: 'tool-call' as const, toolCallId: 'call_trains', toolName: 'trains', input: '{"from":"Paris","to":"Lyon"}' }], finishReason: { unified: 'tool-calls' as const, raw: 'tool_calls' }, usage: usage(120, 18), warnings: [] }
          : { content: [{ type: 'text' as const, text: 'The next train to Lyon leaves at 14:04.' }], finishReason: { unified: 'stop' as const, raw: 'stop' }, usage: usage(160, 12), warnings: [] },
    });
    await generateText({
      model,
      instructions: 'You are a travel assistant.',
      prompt: 'When is the next train from Paris to Lyon?',
      tools: { trains: tool({ inputSchema: z.object({ from: z.string(), to: z.string() }), execute: async () => ({ departures: ['14:04', '15:04'] }) }) },
      stopWhen: stepCountIs(3),
      telemetry: { integrations: [new OpenTelemetry({ tracer: provider.getTracer('ai') })] },
    } as never);
    await provider.shutdown();

    const { page } = admin;
    await loginThroughApi(admin.context, seeded.adminEmail, seeded.password);
    await page.goto(url('/app/chats'));
    await page.getByLabel('Source').fill('otel-travel-agent');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL(/source=otel-travel-agent/);
    await page.waitForFunction(() => document.querySelectorAll('.chat-row').length === 1);
    const row = page.locator('.chat-row').first();
    expect(await row.locator('.chat-title').textContent()).toBe('When is the next train from Paris to Lyon?');
    expect(await row.locator('.chat-source').textContent()).toBe('otel-travel-agent');
    await row.locator('.chat-link').click();
    await page.getByText(/All 5 messages shown/).waitFor();
    // System instructions, the tool call and its result are shown as such, once each.
    expect(await page.locator('.msg .role').allTextContents()).toEqual(['system', 'user', 'assistant', 'tool', 'assistant']);
    expect(await page.locator('.msg-tool .msg-name').textContent()).toBe('trains');
    const tools = page.locator('details', { hasText: 'Tool calls' }).first();
    await tools.locator('summary').click();
    expect(await tools.locator('pre').textContent()).toContain('"to": "Lyon"');
    const reply = page.locator('.msg-assistant').last();
    expect(await reply.locator('.chip').textContent()).toBe('gpt-4o-mini');
    expect(await reply.locator('.msg-stats').textContent()).toMatch(/Tokens.*160 \+ 12 = 172/);
    await shot(page, 'otlp-transcript');
  }, 60_000);

  test('no page broke the CSP, threw, or called another origin', () => {
    expect(problems).toEqual([]);
  });
});
