import type { Em } from '../../db/orm.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { notFound, validationFailed } from '../../http/problem.ts';
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
  };
}

export async function createApiKey(
  em: Em,
  organizationId: string,
  input: { label: string; expiresAt?: string | null },
  actor: Actor | null,
): Promise<{ key: ApiKey; rawKey: string }> {
  const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
  if (expiresAt && expiresAt.getTime() <= Date.now()) {
    throw validationFailed([{ pointer: '/body/expiresAt', message: 'must be in the future' }]);
  }
  const rawKey = generateRawKey();
  const key = em.create(ApiKey, {
    organizationId,
    label: input.label.trim(),
    prefix: rawKey.slice(0, VISIBLE_LENGTH),
    keyHash: hashKey(rawKey),
    createdBy: actor?.id ?? null,
    expiresAt,
  });
  recordAudit(em, {
    organizationId,
    action: 'apikey.created',
    actor,
    target: { type: 'apikey', id: key.id },
    details: { label: key.label, prefix: key.prefix, expiresAt: expiresAt?.toISOString() ?? null },
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
}

export interface ApiKeyCaller {
  apiKeyId: string;
  organizationId: string;
}

/** How stale `lastUsedAt` may get: one write per key per minute, not one per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Resolves the organization behind a raw key presented under `slug`. Any failure (no key,
 * unknown key, revoked or expired key, another organization's key, an unknown or deactivated
 * organization) returns null, so the caller answers all of them the same way.
 */
export async function authenticateApiKey(em: Em, slug: string, rawKey: string | null | undefined): Promise<ApiKeyCaller | null> {
  if (!rawKey || !rawKey.startsWith(KEY_PREFIX) || rawKey.length > 100) return null;
  const rows = await em.execute<{ id: string; organization_id: string; last_used_at: string | Date | null }[]>(
    `select k.id, k.organization_id, k.last_used_at
       from api_keys k join organizations o on o.id = k.organization_id
      where k.key_hash = ? and o.slug = ? and o.active
        and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())`,
    [hashKey(rawKey), slug],
  );
  const row = rows[0];
  if (!row) return null;
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (Date.now() - lastUsed > LAST_USED_RESOLUTION_MS) {
    // Best effort and off the request's path: a lost update only makes lastUsedAt older.
    em.fork()
      .execute(`update api_keys set last_used_at = now() where id = ?`, [row.id])
      .catch(() => {});
  }
  return { apiKeyId: row.id, organizationId: row.organization_id };
}
