/**
 * Sustained single-message ingestion against a real server, as a chat plugin would send it:
 * every message has a client-chosen id, and a request that got no 2xx (an error status, a
 * refused or reset connection, a timeout) is sent again with the same id until it is
 * acknowledged. Used by the outage and crash tests and by bench/crash.ts.
 */

export interface Reply {
  status: number;
  contentType: string;
  body: unknown;
  ms: number;
  /** Set when no HTTP answer came: a network error or the client-side timeout. */
  error?: string;
}

/** One HTTP call with a time limit; never throws. */
export async function timedCall(
  url: string,
  init: { method?: string; json?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Reply> {
  const startedAt = performance.now();
  const headers: Record<string, string> = { ...init.headers };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
      signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
    });
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (contentType.includes('json') && text) body = JSON.parse(text);
    return { status: response.status, contentType, body, ms: performance.now() - startedAt };
  } catch (error) {
    return { status: 0, contentType: '', body: undefined, ms: performance.now() - startedAt, error: String(error) };
  }
}

/** Whether a reply is a well-formed RFC 9457 problem with the reply's own status. */
export function isProblem(reply: Reply): boolean {
  const body = reply.body as Record<string, unknown> | undefined;
  return (
    reply.contentType.startsWith('application/problem+json') &&
    typeof body === 'object' &&
    body !== null &&
    typeof body.type === 'string' &&
    typeof body.title === 'string' &&
    body.status === reply.status &&
    typeof body.detail === 'string'
  );
}

export interface Tenant {
  slug: string;
  apiKey: string;
  adminToken: string;
  chatIds: string[];
}

/** Logs in as the bootstrap superadmin and makes an organization, its admin, an API key and chats. */
export async function createTenantOverHttp(baseUrl: string, superadmin: { email: string; password: string }, chats: number): Promise<Tenant> {
  const must = async (reply: Promise<Reply>, what: string) => {
    const r = await reply;
    if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${r.error ?? JSON.stringify(r.body)}`);
    return r.body as Record<string, unknown>;
  };
  const login = async (email: string, password: string) =>
    String((await must(timedCall(`${baseUrl}/auth/login`, { method: 'POST', json: { email, password, issueToken: true } }), `login ${email}`)).token);
  const root = { authorization: `Bearer ${await login(superadmin.email, superadmin.password)}` };
  const slug = `load-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await must(timedCall(`${baseUrl}/orgs`, { method: 'POST', json: { name: `Load ${slug}`, slug }, headers: root }), 'create org');
  const email = `admin@${slug}.test`;
  const password = 'load-admin-password';
  await must(timedCall(`${baseUrl}/orgs/${slug}/users`, { method: 'POST', json: { email, password, role: 'admin' }, headers: root }), 'create admin');
  const adminToken = await login(email, password);
  const admin = { authorization: `Bearer ${adminToken}` };
  const apiKey = String((await must(timedCall(`${baseUrl}/orgs/me/apikeys`, { method: 'POST', json: { label: 'load' }, headers: admin }), 'create key')).key);
  const chatIds: string[] = [];
  for (let i = 0; i < chats; i++) {
    const chat = await must(
      timedCall(`${baseUrl}/api/v1/orgs/${slug}/chats`, { method: 'POST', json: { title: `chat ${i}` }, headers: { 'x-organization-api-key': apiKey } }),
      'create chat',
    );
    chatIds.push(String(chat.id));
  }
  return { slug, apiKey, adminToken, chatIds };
}

export interface Attempt {
  id: string;
  status: number;
  problem: boolean;
  ms: number;
  /** performance.now() when the request was sent. */
  at: number;
  error?: string;
}

export interface LoadOptions {
  /** The server to send to, read for every request (a restarted server listens elsewhere). */
  baseUrl(): string;
  tenant: Tenant;
  clients: number;
  /** Client-side limit of one request; a request that takes longer counts as hung. */
  timeoutMs: number;
  /** Pause before sending a refused or failed message again. */
  retryDelayMs?: number;
}

/** Runs until `stop()`; then each client retries its unacknowledged message until `drainMs` ends. */
export class IngestLoad {
  readonly attempts: Attempt[] = [];
  /** Message id -> its chat, for every message that got a 2xx. */
  readonly acknowledged = new Map<string, string>();
  /** Message ids that were sent but never acknowledged (only after `stop()`). */
  readonly unacknowledged = new Set<string>();
  private stopping = false;
  private drainUntil = Infinity;
  private clients: Promise<void>[] = [];

  constructor(private readonly options: LoadOptions) {}

  start(): this {
    this.clients = Array.from({ length: this.options.clients }, (_, n) => this.client(n));
    return this;
  }

  async stop(drainMs = 30_000): Promise<void> {
    this.stopping = true;
    this.drainUntil = performance.now() + drainMs;
    await Promise.all(this.clients);
  }

  private async client(n: number) {
    const { tenant, timeoutMs, retryDelayMs = 50 } = this.options;
    let sent = 0;
    while (!this.stopping) {
      const id = crypto.randomUUID();
      const chatId = tenant.chatIds[(n + sent++) % tenant.chatIds.length]!;
      for (;;) {
        if (this.stopping && performance.now() > this.drainUntil) {
          this.unacknowledged.add(id);
          break;
        }
        const at = performance.now();
        const reply = await timedCall(`${this.options.baseUrl()}/api/v1/orgs/${tenant.slug}/chats/${chatId}/messages`, {
          method: 'POST',
          json: { id, role: 'user', content: `message ${id}` },
          headers: { 'x-organization-api-key': tenant.apiKey },
          timeoutMs,
        });
        this.attempts.push({ id, status: reply.status, problem: isProblem(reply), ms: reply.ms, at, error: reply.error });
        if (reply.status >= 200 && reply.status < 300) {
          this.acknowledged.set(id, chatId);
          break;
        }
        await Bun.sleep(retryDelayMs);
      }
    }
  }
}

/** What a chat holds, read through the dashboard API (works for both databases). */
export async function readBack(baseUrl: string, tenant: Tenant) {
  const auth = { authorization: `Bearer ${tenant.adminToken}` };
  const stored: { id: string; chatId: string; content: string }[] = [];
  const counters = new Map<string, { messageCount: number; listed: number }>();
  for (const chatId of tenant.chatIds) {
    let listed = 0;
    let cursor: string | null = null;
    do {
      const query = `limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await timedCall(`${baseUrl}/orgs/me/chats/${chatId}/messages?${query}`, { headers: auth, timeoutMs: 60_000 });
      if (page.status !== 200) throw new Error(`reading chat ${chatId}: ${page.status} ${JSON.stringify(page.body)}`);
      const body = page.body as { items: { id: string; chatId: string; content: string }[]; nextCursor: string | null };
      for (const item of body.items) stored.push({ id: item.id, chatId: item.chatId, content: item.content });
      listed += body.items.length;
      cursor = body.nextCursor;
    } while (cursor);
    const chat = await timedCall(`${baseUrl}/orgs/me/chats/${chatId}`, { headers: auth });
    if (chat.status !== 200) throw new Error(`reading chat ${chatId}: ${chat.status}`);
    counters.set(chatId, { messageCount: Number((chat.body as { messageCount: number }).messageCount), listed });
  }
  return { stored, counters };
}

export interface Verdict {
  acknowledged: number;
  stored: number;
  /** Acknowledged but not stored: must be 0. */
  lost: string[];
  /** Stored more than once, or with another chat or content than sent: must be 0. */
  duplicates: string[];
  wrong: string[];
  /** Chats whose messageCount differs from the messages they hold: must be 0. */
  counterMismatches: string[];
}

/** Compares what the clients were told with what the server holds. */
export async function verify(baseUrl: string, load: IngestLoad, tenant: Tenant): Promise<Verdict> {
  const { stored, counters } = await readBack(baseUrl, tenant);
  const seen = new Map<string, number>();
  const wrong: string[] = [];
  for (const message of stored) {
    seen.set(message.id, (seen.get(message.id) ?? 0) + 1);
    const chatId = load.acknowledged.get(message.id);
    if (chatId !== undefined && (chatId !== message.chatId || message.content !== `message ${message.id}`)) wrong.push(message.id);
  }
  return {
    acknowledged: load.acknowledged.size,
    stored: seen.size,
    lost: [...load.acknowledged.keys()].filter((id) => !seen.has(id)),
    duplicates: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    wrong,
    counterMismatches: [...counters].filter(([, c]) => c.messageCount !== c.listed).map(([id, c]) => `${id}: messageCount ${c.messageCount}, holds ${c.listed}`),
  };
}
