import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { notFound, validationFailed, type FieldError } from '../../http/problem.ts';
import { canonicalOrigin } from '../../origins.ts';
import { isUuid } from '../../http/ids.ts';
import { recordAudit, type Actor } from '../audit/audit.service.ts';
import { ApiKey } from './apikey.entity.ts';

type ApiKeyDto = components['schemas']['ApiKey'];

const KEY_PREFIX = 'clk_';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Visible part shown in listings: `clk_` and 8 characters. */
const VISIBLE_LENGTH = KEY_PREFIX.length + 8;

function randomBase62(length: number): string {
  // Rejection sampling keeps every character uniformly likely (62 does not divide 256).
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/** A key carries 40 random base62 characters (~238 bits); only its SHA-256 is stored. */
export function generateRawKey(): string {
  return KEY_PREFIX + randomBase62(40);
}

export function hashKey(rawKey: string): string {
  return new Bun.CryptoHasher('sha256').update(rawKey).digest('hex');
}

export function toApiKeyDto(key: ApiKey): ApiKeyDto {
  return {
    id: key.id,
    label: key.label,
    prefix: key.prefix,
    createdBy: key.createdBy ?? null,
    createdAt: iso(key.createdAt),
    lastUsedAt: isoOrNull(key.lastUsedAt),
    expiresAt: isoOrNull(key.expiresAt),
    revokedAt: isoOrNull(key.revokedAt),
    allowedOrigins: [...(key.allowedOrigins ?? [])],
  };
}

/** Each origin in its canonical form, once; anything that is not an exact origin is a 422. */
function allowedOriginsOf(input: string[] | undefined): string[] {
  const origins = new Set<string>();
  const errors: FieldError[] = [];
  (input ?? []).forEach((text, index) => {
    const origin = canonicalOrigin(text);
    if (origin) origins.add(origin);
    else errors.push({ pointer: `/body/allowedOrigins/${index}`, message: 'must be an exact origin such as https://shop.example.com (scheme and host, no path)' });
  });
  if (errors.length) throw validationFailed(errors);
  return [...origins];
}

export async function createApiKey(
  em: Em,
  organizationId: string,
  input: { label: string; expiresAt?: string | null; allowedOrigins?: string[] },
  actor: Actor | null,
): Promise<{ key: ApiKey; rawKey: string }> {
  const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
  if (expiresAt && expiresAt.getTime() <= Date.now()) {
    throw validationFailed([{ pointer: '/body/expiresAt', message: 'must be in the future' }]);
  }
  const allowedOrigins = allowedOriginsOf(input.allowedOrigins);
  const rawKey = generateRawKey();
  const key = em.create(ApiKey, {
    organizationId,
    label: input.label.trim(),
    prefix: rawKey.slice(0, VISIBLE_LENGTH),
    keyHash: hashKey(rawKey),
    createdBy: actor?.id ?? null,
    expiresAt,
    allowedOrigins,
  });
  recordAudit(em, {
    organizationId,
    action: 'apikey.created',
    actor,
    target: { type: 'apikey', id: key.id },
    details: { label: key.label, prefix: key.prefix, expiresAt: expiresAt?.toISOString() ?? null, allowedOrigins },
  });
  await em.flush();
  return { key, rawKey };
}

export function listApiKeys(em: Em, organizationId: string): Promise<ApiKey[]> {
  return em.find(ApiKey, { organizationId }, { orderBy: { createdAt: 'desc', id: 'desc' } });
}

/** Revoking is idempotent; a key of another organization is as absent as a missing one. */
export async function revokeApiKey(em: Em, organizationId: string, keyId: string, actor: Actor | null): Promise<void> {
  if (!isUuid(keyId)) throw notFound('API key');
  const key = await em.findOne(ApiKey, { id: keyId, organizationId });
  if (!key) throw notFound('API key');
  if (key.revokedAt) return;
  key.revokedAt = new Date();
  recordAudit(em, { organizationId, action: 'apikey.revoked', actor, target: { type: 'apikey', id: key.id }, details: { label: key.label, prefix: key.prefix } });
  await em.flush();
  forgetApiKey(key.id);
}

export interface ApiKeyCaller {
  apiKeyId: string;
  organizationId: string;
  /** The browser origins the key accepts; empty accepts any. */
  allowedOrigins: string[];
  /** The organization's `settings.ingestRateLimitPerMinute`; null means the server's default. */
  ingestRateLimitPerMinute: number | null;
}

/** How stale `lastUsedAt` may get: one write per key per minute, not one per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

interface CachedKey {
  caller: ApiKeyCaller;
  /** When this lookup must be repeated: the cache's time to live, or the key's expiry if sooner. */
  until: number;
  lastUsed: number;
}

/**
 * Successful lookups by (key hash, slug), so the ingestion hot path does not query the key on
 * every request. A revocation or deactivation through this process removes its entries at once;
 * another instance's change takes effect within the time to live (API_KEY_CACHE_SECONDS).
 */
const keyCache = new Map<string, CachedKey>();
const KEY_CACHE_LIMIT = 10_000;

export function forgetApiKey(apiKeyId: string): void {
  for (const [k, entry] of keyCache) if (entry.caller.apiKeyId === apiKeyId) keyCache.delete(k);
}

export function forgetOrganizationKeys(organizationId: string): void {
  for (const [k, entry] of keyCache) if (entry.caller.organizationId === organizationId) keyCache.delete(k);
}

/**
 * Resolves the organization behind a raw key presented under `slug`. Any failure (no key,
 * unknown key, revoked or expired key, another organization's key, an unknown or deactivated
 * organization) returns null, so the caller answers all of them the same way.
 */
export async function authenticateApiKey(
  em: Em,
  slug: string,
  rawKey: string | null | undefined,
  cacheSeconds = 0,
): Promise<ApiKeyCaller | null> {
  if (!rawKey || !rawKey.startsWith(KEY_PREFIX) || rawKey.length > 100) return null;
  const hash = hashKey(rawKey);
  const cacheKey = `${hash}/${slug}`;
  const now = Date.now();
  const cached = keyCache.get(cacheKey);
  if (cached && cached.until > now) {
    if (now - cached.lastUsed > LAST_USED_RESOLUTION_MS) {
      cached.lastUsed = now;
      touchLastUsed(em, cached.caller);
    }
    return cached.caller;
  }

  const rows = await query<{
    id: string;
    organization_id: string;
    last_used_at: string | null;
    expires_at: string | null;
    allowed_origins: string[];
    ingest_rate_limit: number | null;
  }>(
    em,
    `select k.id, k.organization_id, k.last_used_at, k.expires_at, k.allowed_origins,
            (o.settings->>'ingestRateLimitPerMinute')::int as ingest_rate_limit
       from api_keys k join organizations o on o.id = k.organization_id
      where k.key_hash = $1 and o.slug = $2 and o.active
        and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())`,
    [hash, slug],
  );
  const row = rows[0];
  if (!row) {
    keyCache.delete(cacheKey);
    return null;
  }
  const stale = now - (row.last_used_at ? new Date(row.last_used_at).getTime() : 0) > LAST_USED_RESOLUTION_MS;
  const lastUsed = stale ? now : new Date(row.last_used_at!).getTime();
  const caller: ApiKeyCaller = {
    apiKeyId: row.id,
    organizationId: row.organization_id,
    allowedOrigins: row.allowed_origins,
    ingestRateLimitPerMinute: row.ingest_rate_limit,
  };
  if (stale) touchLastUsed(em, caller);
  if (cacheSeconds > 0) {
    const expiresAt = row.expires_at ? new Date(row.expires_at).getTime() : Infinity;
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(cacheKey, { caller, until: Math.min(now + cacheSeconds * 1000, expiresAt), lastUsed });
  }
  return caller;
}

/** Best effort and off the request's path: a lost update only makes lastUsedAt older. */
function touchLastUsed(em: Em, key: ApiKeyCaller) {
  query(em.fork(), `update api_keys set last_used_at = now() where organization_id = $1 and id = $2`, [key.organizationId, key.apiKeyId]).catch(() => {});
}
