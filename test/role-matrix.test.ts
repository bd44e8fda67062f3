import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { listOperations } from '../src/http/contract.ts';
import { checkResponse } from './support/contract.ts';
import { addUser, createTenant, createTestApp, login, PASSWORD, superadminToken, unique, type Tenant, type TestApp } from './support/harness.ts';

/**
 * Every operation of openapi.yaml, tried by every kind of caller, against an explicit table of
 * expected statuses. Tenant A owns every resource the requests name.
 *
 * Callers (the columns of EXPECTED):
 * - anonymous   no credentials
 * - viewer, user, admin   members of A, naming A by its slug
 * - superadmin  the run's superadmin (of the `system` organization), naming A by its slug
 * - adminB      the admin of tenant B, naming A's slug and A's resource ids
 * - viewerB     a viewer of tenant B, the same (404 before 403: a role check must not reveal A)
 * - adminBMe    the admin of tenant B, naming its own organization as `me` with A's resource ids
 * - keyA        A's API key, under A's slug
 * - keyB        B's API key, under A's slug with A's resource ids
 * - keyBOwn     B's API key, under B's own slug with A's resource ids
 * Routes that name no organization (`/users/me`, `/orgs`, `/auth/...`) are called by tenant B's
 * admin and viewer for themselves. Session callers send `Authorization: Bearer`; key callers send
 * `x-organization-api-key`. Mutating cells get a target of their own (a fresh chat, user, key or
 * session), so every cell is independent of the others.
 *
 * For every cell: a 401/403/404 is application/problem+json, the response matches the contract,
 * a 2xx acted on the organization it should have (B's for B's callers naming `me`), and a 404 answered to anyone but the superadmin has exactly the body of a 404 for a resource that
 * does not exist (an unknown slug, a random id). B's key under A's slug gets exactly the 401 of a
 * key that does not exist.
 */

setDefaultTimeout(60_000);

const CALLERS = ['anonymous', 'viewer', 'user', 'admin', 'superadmin', 'adminB', 'viewerB', 'adminBMe', 'keyA', 'keyB', 'keyBOwn'] as const;
type Caller = (typeof CALLERS)[number];
type Row = readonly [number, number, number, number, number, number, number, number, number, number, number];

// prettier-ignore
const EXPECTED: Record<string, Row> = {
  //                       anon  viewr user  admin super admB  viewB B@me  keyA  keyB  kB@B
  getHealth:             [ 200,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200 ],
  getReady:              [ 200,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200 ],
  getVersion:            [ 200,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200 ],
  getMetrics:            [ 401,  401,  401,  401,  401,  401,  401,  401,  401,  401,  401 ],
  createChat:            [ 401,  401,  401,  401,  401,  401,  401,  401,  201,  401,  201 ],
  createMessage:         [ 401,  401,  401,  401,  401,  401,  401,  401,  201,  401,  404 ],
  createMessageBatch:    [ 401,  401,  401,  401,  401,  401,  401,  401,  201,  401,  404 ],
  exportOtlpTraces:      [ 401,  401,  401,  401,  401,  401,  401,  401,  200,  401,  200 ],
  login:                 [ 200,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200 ],
  logout:                [ 204,  204,  204,  204,  204,  204,  204,  204,  204,  204,  204 ],
  getMe:                 [ 401,  200,  200,  200,  200,  200,  200,  200,  401,  401,  401 ],
  updateMe:              [ 401,  200,  200,  200,  200,  200,  200,  200,  401,  401,  401 ],
  listOrganizations:     [ 401,  403,  403,  403,  200,  403,  403,  403,  401,  401,  401 ],
  createOrganization:    [ 401,  403,  403,  403,  201,  403,  403,  403,  401,  401,  401 ],
  getOrganization:       [ 401,  200,  200,  200,  200,  404,  404,  200,  401,  401,  401 ],
  updateOrganization:    [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  listUsers:             [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  createUser:            [ 401,  403,  403,  201,  201,  404,  404,  201,  401,  401,  401 ],
  updateUser:            [ 401,  403,  403,  200,  200,  404,  404,  404,  401,  401,  401 ],
  deleteUser:            [ 401,  403,  403,  204,  204,  404,  404,  404,  401,  401,  401 ],
  listChats:             [ 401,  200,  200,  200,  200,  404,  404,  200,  401,  401,  401 ],
  getChat:               [ 401,  200,  200,  200,  200,  404,  404,  404,  401,  401,  401 ],
  updateChat:            [ 401,  403,  200,  200,  200,  404,  404,  404,  401,  401,  401 ],
  deleteChat:            [ 401,  403,  403,  204,  204,  404,  404,  404,  401,  401,  401 ],
  listChatMessages:      [ 401,  200,  200,  200,  200,  404,  404,  404,  401,  401,  401 ],
  listAuditEvents:       [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  listApiKeys:           [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  createApiKey:          [ 401,  403,  403,  201,  201,  404,  404,  201,  401,  401,  401 ],
  revokeApiKey:          [ 401,  403,  403,  204,  204,  404,  404,  404,  401,  401,  401 ],
  eraseEndUser:          [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  exportEndUser:         [ 401,  403,  403,  200,  200,  404,  404,  200,  401,  401,  401 ],
  getAnalyticsSummary:   [ 401,  200,  200,  200,  200,  404,  404,  200,  401,  401,  401 ],
  getAnalyticsTimeseries:[ 401,  200,  200,  200,  200,  404,  404,  200,  401,  401,  401 ],
  createExport:          [ 401,  403,  201,  201,  201,  404,  404,  201,  401,  401,  401 ],
  listExports:           [ 401,  403,  200,  200,  200,  404,  404,  200,  401,  401,  401 ],
  downloadExport:        [ 401,  403,  200,  200,  200,  404,  404,  404,  401,  401,  401 ],
};

function expectedStatus(operationId: string, caller: Caller): number | undefined {
  return EXPECTED[operationId]?.[CALLERS.indexOf(caller)];
}

let t: TestApp;
let A: Tenant;
let B: Tenant;
let rootToken: string;
let viewer: { id: string; email: string; token: string };
let member: { id: string; email: string; token: string };
let viewerB: { id: string; email: string; token: string };
let loginUser: { email: string };
let chatA: string;
let exportA: string;

beforeAll(async () => {
  // With METRICS_TOKEN, so /metrics exists: no session or API key may open it.
  t = await createTestApp({ METRICS_TOKEN: 'matrix-metrics-token-0123456789' });
  [A, B, rootToken] = await Promise.all([createTenant(t), createTenant(t), superadminToken(t)]);
  [viewer, member, viewerB, loginUser] = await Promise.all([
    addUser(t, A, 'viewer'),
    addUser(t, A, 'user'),
    addUser(t, B, 'viewer'),
    freshUserOfA('viewer').then((u) => ({ email: u.email })),
  ]);
  chatA = await freshChatOfA();
  // A message, so the chat's message list is not trivially empty.
  const message = await keyRequest(A.slug, A.apiKey, `/chats/${chatA}/messages`, { role: 'user', content: 'hello' });
  if (message.status !== 201) throw new Error(`fixture message: ${message.status}`);
  const exported = await t.client({ token: A.adminToken }).POST('/exports/orgs/{org}', {
    params: { path: { org: 'me' } },
    body: { format: 'csv', scope: 'chats' },
  });
  if (!exported.data) throw new Error(`fixture export: ${exported.response.status}`);
  exportA = exported.data.id;
});

// ---------------------------------------------------------------------------------------------
// Fixtures. Made through routes that predate this test (ingestion, POST users/apikeys).

function keyRequest(slug: string, apiKey: string, path: string, body: unknown) {
  return t.fetch(`/api/v1/orgs/${slug}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-organization-api-key': apiKey },
    body: JSON.stringify(body),
  });
}

async function freshChatOfA(): Promise<string> {
  const response = await keyRequest(A.slug, A.apiKey, '/chats', { title: 'matrix fixture', tags: ['matrix'] });
  if (response.status !== 201) throw new Error(`fixture chat: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

async function freshUserOfA(role: 'user' | 'viewer' = 'user'): Promise<{ id: string; email: string }> {
  const email = `target-${unique()}@example.test`;
  const { data, response } = await t.client({ token: A.adminToken }).POST('/orgs/{org}/users', {
    params: { path: { org: 'me' } },
    body: { email, password: PASSWORD, role },
  });
  if (!data) throw new Error(`fixture user: ${response.status}`);
  return { id: data.id, email };
}

async function freshKeyOfA(): Promise<string> {
  const { data, response } = await t.client({ token: A.adminToken }).POST('/orgs/{org}/apikeys', {
    params: { path: { org: 'me' } },
    body: { label: 'matrix fixture' },
  });
  if (!data) throw new Error(`fixture key: ${response.status}`);
  return data.id;
}

/** A session of its own for the caller (logout ends the session it is called with). */
async function freshSession(caller: Caller): Promise<string | undefined> {
  switch (caller) {
    case 'viewer':
      return login(t, viewer.email, PASSWORD);
    case 'user':
      return login(t, member.email, PASSWORD);
    case 'admin':
      return login(t, A.adminEmail, PASSWORD);
    case 'superadmin':
      return superadminToken(t);
    case 'adminB':
    case 'adminBMe':
      return login(t, B.adminEmail, PASSWORD);
    case 'viewerB':
      return login(t, viewerB.email, PASSWORD);
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Who sends what.

function credentials(caller: Caller, sessionOverride?: string): Record<string, string> {
  const bearer = (token: string) => ({ authorization: `Bearer ${sessionOverride ?? token}` });
  switch (caller) {
    case 'anonymous':
      return {};
    case 'viewer':
      return bearer(viewer.token);
    case 'user':
      return bearer(member.token);
    case 'admin':
      return bearer(A.adminToken);
    case 'superadmin':
      return bearer(rootToken);
    case 'adminB':
    case 'adminBMe':
      return bearer(B.adminToken);
    case 'viewerB':
      return bearer(viewerB.token);
    case 'keyA':
      return { 'x-organization-api-key': A.apiKey };
    case 'keyB':
    case 'keyBOwn':
      return { 'x-organization-api-key': B.apiKey };
  }
}

/** The `{org}` of dashboard routes and the `{slug}` of ingestion routes for a caller. */
function orgParams(caller: Caller): { org: string; slug: string } {
  if (caller === 'adminBMe') return { org: 'me', slug: B.slug };
  if (caller === 'keyBOwn') return { org: B.slug, slug: B.slug };
  return { org: A.slug, slug: A.slug };
}

/** The caller's own organization's slug (a path naming it is not "another organization"). */
function homeSlug(caller: Caller): string | undefined {
  if (caller === 'anonymous' || caller === 'superadmin') return undefined;
  return ['adminB', 'viewerB', 'adminBMe', 'keyB', 'keyBOwn'].includes(caller) ? B.slug : A.slug;
}

interface CellRequest {
  /** Path parameters other than `org`/`slug`. */
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  /** Replaces the caller's session token (for logout). */
  session?: string;
  /** For a 2xx: checks the organization the call acted on; returns what is wrong, if anything. */
  verify?: (body: Record<string, unknown>) => string | undefined;
}

/** The organization a 2xx must have acted on: B's for B's callers, else A's. */
const actedOnSlug = (caller: Caller) => (caller === 'adminBMe' ? B.slug : A.slug);
const ownUserOf = (caller: Caller) => (body: Record<string, unknown>) =>
  caller === 'superadmin' || body.organizationSlug === homeSlug(caller) ? undefined : `acted on the user of "${String(body.organizationSlug)}"`;
const slugIs = (slug: string, field: string) => (body: Record<string, unknown>) =>
  body[field] === slug ? undefined : `${field} is "${String(body[field])}", expected "${slug}"`;
const listLacks = (id: () => string, field = 'id') => (body: Record<string, unknown>) =>
  (body.items as Record<string, unknown>[]).some((item) => item[field] === id()) ? `lists ${id()} of tenant A` : undefined;

/** Per operation: the ids and body of one cell. Operations not listed need neither. */
const REQUESTS: Record<string, (caller: Caller) => Promise<CellRequest> | CellRequest> = {
  createChat: () => ({ body: { title: 'Support chat', tags: ['matrix'], externalUserId: 'customer-1' } }),
  createMessage: () => ({ params: { chatId: chatA }, body: { role: 'user', content: 'Where is my invoice?' } }),
  createMessageBatch: () => ({
    params: { chatId: chatA },
    body: { messages: [{ role: 'assistant', content: 'In Billing.', model: 'gpt-4o' }, { role: 'user', content: 'Thanks!' }] },
  }),
  exportOtlpTraces: () => ({ body: { resourceSpans: [] } }),
  login: () => ({ body: { email: loginUser.email, password: PASSWORD } }),
  logout: async (caller) => ({ session: await freshSession(caller) }),
  getMe: (caller) => ({ verify: ownUserOf(caller) }),
  updateMe: (caller) => ({ body: { firstName: 'Matrix' }, verify: ownUserOf(caller) }),
  createOrganization: () => ({ body: { name: 'Matrix Inc.', slug: unique('mx-') } }),
  getOrganization: (caller) => ({ verify: slugIs(actedOnSlug(caller), 'slug') }),
  updateOrganization: (caller) => ({ body: { name: `Renamed by ${caller}` }, verify: slugIs(actedOnSlug(caller), 'slug') }),
  listUsers: (caller) => ({ verify: caller === 'adminBMe' ? listLacks(() => viewer.id) : undefined }),
  createUser: (caller) => ({
    body: { email: `new-${unique()}@example.test`, password: PASSWORD, role: 'viewer' },
    verify: slugIs(actedOnSlug(caller), 'organizationSlug'),
  }),
  listChats: (caller) => ({ verify: caller === 'adminBMe' ? listLacks(() => chatA) : undefined }),
  updateUser: async () => ({ params: { userId: (await freshUserOfA()).id }, body: { firstName: 'Renamed' } }),
  deleteUser: async () => ({ params: { userId: (await freshUserOfA()).id } }),
  getChat: () => ({ params: { chatId: chatA } }),
  updateChat: async () => ({ params: { chatId: await freshChatOfA() }, body: { title: 'Renamed', tags: ['curated'] } }),
  deleteChat: async () => ({ params: { chatId: await freshChatOfA() } }),
  listChatMessages: () => ({ params: { chatId: chatA } }),
  listApiKeys: (caller) => ({ verify: caller === 'adminBMe' ? listLacks(() => A.apiKeyId) : undefined }),
  createApiKey: () => ({ body: { label: 'matrix key' } }),
  revokeApiKey: async () => ({ params: { keyId: await freshKeyOfA() } }),
  // An end user of its own per cell, so no cell erases what another one reads.
  eraseEndUser: () => ({ params: { externalUserId: `gone ${unique()}/x` } }),
  exportEndUser: () => ({ params: { externalUserId: 'customer-1' } }),
  getAnalyticsTimeseries: () => ({ query: { metric: 'messages', interval: 'day' } }),
  createExport: () => ({ body: { format: 'ndjson', scope: 'messages' } }),
  listExports: (caller) => ({ verify: caller === 'adminBMe' ? listLacks(() => exportA) : undefined }),
  downloadExport: () => ({ params: { exportId: exportA } }),
};

interface Sent {
  response: Response;
  text: string;
}

async function send(method: string, template: string, params: Record<string, string>, headers: Record<string, string>, body: unknown, query?: Record<string, string>): Promise<Sent> {
  const search = query ? `?${new URLSearchParams(query)}` : '';
  const pathname = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return encodeURIComponent(value);
  });
  const init: RequestInit = { method: method.toUpperCase(), headers: { ...headers } };
  if (body !== undefined) {
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await t.fetch(pathname + search, init);
  return { response, text: await response.clone().text() };
}

const UNKNOWN_KEY = `clk_${'x'.repeat(40)}`;

/** The same request, naming an organization and resources that do not exist. */
function missingTwin(caller: Caller, params: Record<string, string>): Record<string, string> {
  const twin: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (name === 'org' || name === 'slug') twin[name] = value === 'me' || value === homeSlug(caller) ? value : unique('nope-');
    else twin[name] = crypto.randomUUID();
  }
  return twin;
}

// ---------------------------------------------------------------------------------------------

const operations = listOperations();
const observed = new Map<string, Map<Caller, number>>();
const discrepancies: string[] = [];
let cellsTried = 0;
let identityChecks = 0;

function short(text: string) {
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

async function runCell(op: (typeof operations)[number], caller: Caller, prepared: CellRequest): Promise<string[]> {
  const problems: string[] = [];
  const where = `${op.operationId} × ${caller}`;
  const expected = expectedStatus(op.operationId, caller)!;
  const params = { ...orgParams(caller), ...prepared.params };
  const headers = credentials(caller, prepared.session);
  const { response, text } = await send(op.method, op.path, params, headers, prepared.body, prepared.query);
  const status = response.status;
  cellsTried += 1;
  observed.get(op.operationId)!.set(caller, status);

  if (status !== expected) problems.push(`${where}: expected ${expected}, got ${status} ${short(text)}`);
  if (status >= 200 && status < 300 && prepared.verify) {
    const wrong = prepared.verify(JSON.parse(text) as Record<string, unknown>);
    if (wrong) problems.push(`${where}: ${wrong}`);
  }

  if (status === 401 || status === 403 || status === 404) {
    const type = response.headers.get('content-type') ?? '';
    if (!type.startsWith('application/problem+json')) problems.push(`${where}: ${status} has content-type "${type}", not application/problem+json`);
    try {
      const problem = JSON.parse(text) as { status?: unknown };
      if (problem.status !== status) problems.push(`${where}: problem body says status ${String(problem.status)}, response is ${status}`);
    } catch {
      problems.push(`${where}: ${status} body is not JSON: ${short(text)}`);
    }
  }

  // Only operations the contract documents are checked against it (an unknown route is a 404 anyway).
  try {
    await checkResponse(op.method, op.path, response.clone() as unknown as Parameters<typeof checkResponse>[2]);
  } catch (error) {
    problems.push(`${where}: contract: ${short((error as Error).message)}`);
  }

  // Another organization's resource answers exactly like one that does not exist.
  const pathNamesSomething = /\{(org|slug|chatId|userId|keyId)\}/.test(op.path);
  if (status === 404 && caller !== 'superadmin' && pathNamesSomething) {
    identityChecks += 1;
    const twin = await send(op.method, op.path, missingTwin(caller, params), headers, prepared.body, prepared.query);
    if (twin.response.status !== 404 || twin.text !== text) {
      problems.push(`${where}: 404 body differs from a nonexistent resource's: ${short(text)} vs ${twin.response.status} ${short(twin.text)}`);
    }
  }
  // Another organization's key gets exactly the 401 of a key that does not exist.
  if (status === 401 && caller === 'keyB' && op.path.includes('{slug}')) {
    identityChecks += 1;
    const twin = await send(op.method, op.path, params, { 'x-organization-api-key': UNKNOWN_KEY }, prepared.body, prepared.query);
    if (twin.response.status !== 401 || twin.text !== text) {
      problems.push(`${where}: 401 body differs from an unknown key's: ${short(text)} vs ${twin.response.status} ${short(twin.text)}`);
    }
  }
  return problems;
}

describe('role matrix', () => {
  test('every operation of openapi.yaml has a row, and every row names an operation', () => {
    const ids = operations.map((op) => op.operationId);
    expect([
      ...ids.filter((id) => !(id in EXPECTED)).map((id) => `EXPECTED has no row for ${id}`),
      ...Object.keys(EXPECTED).filter((id) => !ids.includes(id)).map((id) => `EXPECTED has a row for unknown operation ${id}`),
      ...Object.keys(REQUESTS).filter((id) => !ids.includes(id)).map((id) => `REQUESTS names unknown operation ${id}`),
    ]).toEqual([]);
  });

  for (const op of operations) {
    test(`${op.method.toUpperCase()} ${op.path} (${op.operationId})`, async () => {
      if (!EXPECTED[op.operationId]) throw new Error(`EXPECTED has no row for ${op.operationId}`);
      observed.set(op.operationId, new Map());
      const build = REQUESTS[op.operationId] ?? (() => ({}));
      // Fixtures in parallel (argon2 for users and logins), requests one after the other.
      const prepared = await Promise.all(CALLERS.map((caller) => build(caller)));
      const problems: string[] = [];
      for (const [i, caller] of CALLERS.entries()) problems.push(...(await runCell(op, caller, prepared[i]!)));
      discrepancies.push(...problems);
      expect(problems).toEqual([]);
    });
  }
});

afterAll(() => {
  const ops = observed.size;
  console.log(
    `role matrix: ${ops} operations × ${CALLERS.length} callers = ${cellsTried} cells tried ` +
      `(${identityChecks} compared with a nonexistent twin), ${discrepancies.length} discrepancies` +
      (discrepancies.length ? `\n  ${discrepancies.join('\n  ')}` : ''),
  );
});

// ---------------------------------------------------------------------------------------------
// README: the "## Roles" table must say what the contract's x-roles and this matrix say.

const ROLES = ['superadmin', 'admin', 'user', 'viewer'] as const;

function parseRolesTable(markdown: string): { header: string[]; rows: string[][] } {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.trim() === '## Roles');
  if (start < 0) throw new Error('README.md has no "## Roles" heading');
  const end = lines.findIndex((line, i) => i > start && /^##\s/.test(line));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const tableStart = section.findIndex((line) => line.trimStart().startsWith('|'));
  if (tableStart < 0) throw new Error('the "## Roles" section has no table');
  const table: string[] = [];
  for (const line of section.slice(tableStart)) {
    if (!line.trimStart().startsWith('|')) break;
    table.push(line);
  }
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split('|')
      .map((cell) => cell.trim().replaceAll('`', ''));
  const [header, separator, ...rows] = table.map(cells);
  if (!header || !separator?.every((cell) => /^:?-+:?$/.test(cell))) throw new Error('the "## Roles" table has no header row');
  return { header, rows };
}

describe('README "## Roles"', () => {
  test('the table equals the x-roles of openapi.yaml and the statuses the matrix proves', async () => {
    const { header, rows } = parseRolesTable(await Bun.file(new URL('../README.md', import.meta.url)).text());
    expect(header).toEqual(['Method', 'Path', ...ROLES]);

    const dashboard = operations.filter((op) => Array.isArray(op.operation['x-roles']));
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      const [method, path, ...marks] = row;
      const where = `README row "${method} ${path}"`;
      const op = dashboard.find((o) => o.method.toUpperCase() === method && o.path === path);
      if (!op) {
        problems.push(`${where}: no dashboard operation (with x-roles) in openapi.yaml`);
        continue;
      }
      if (seen.has(op.operationId)) problems.push(`${where}: listed twice`);
      seen.add(op.operationId);
      if (marks.length !== ROLES.length) {
        problems.push(`${where}: ${marks.length} role cells, expected ${ROLES.length}`);
        continue;
      }
      const xRoles = op.operation['x-roles'] as string[];
      for (const [i, role] of ROLES.entries()) {
        const mark = marks[i];
        if (mark !== '✓' && mark !== '—') {
          problems.push(`${where}, ${role}: cell "${mark}" is neither ✓ nor —`);
          continue;
        }
        const readme = mark === '✓';
        const contract = xRoles.includes(role);
        const status = expectedStatus(op.operationId, role);
        const matrix = status !== undefined && status >= 200 && status < 300;
        if (readme !== contract) problems.push(`${where}, ${role}: README says ${mark}, x-roles ${contract ? 'allows' : 'does not allow'} it`);
        if (readme !== matrix) problems.push(`${where}, ${role}: README says ${mark}, the matrix expects ${status}`);
        const proven = observed.get(op.operationId)?.get(role);
        if (proven !== undefined && (proven >= 200 && proven < 300) !== readme) {
          problems.push(`${where}, ${role}: README says ${mark}, the server answered ${proven}`);
        }
      }
    }
    for (const op of dashboard) {
      if (!seen.has(op.operationId)) problems.push(`README has no row for ${op.method.toUpperCase()} ${op.path} (${op.operationId})`);
    }
    // The other way round too: what x-roles allows, the matrix expects to succeed.
    for (const op of dashboard) {
      const xRoles = op.operation['x-roles'] as string[];
      for (const role of ROLES) {
        const status = expectedStatus(op.operationId, role);
        const allowed = status !== undefined && status >= 200 && status < 300;
        if (allowed !== xRoles.includes(role)) problems.push(`${op.operationId}, ${role}: x-roles ${xRoles.includes(role) ? 'allows' : 'forbids'} it, the matrix expects ${status}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
