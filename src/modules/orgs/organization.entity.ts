import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import type { components } from '../../generated/openapi.ts';

type SearchLanguage = components['schemas']['SearchLanguage'];

export interface OrganizationSettings {
  retentionDays?: number | null;
  /** Overrides INGEST_RATE_LIMIT_PER_MINUTE for each of the organization's keys; set by a superadmin. */
  ingestRateLimitPerMinute?: number | null;
  /** The text-search configuration whose stems a conversation search adds; absent: 'simple'. */
  searchLanguage?: SearchLanguage;
}

export const Organization = defineEntity({
  name: 'Organization',
  tableName: 'organizations',
  properties: {
    ...baseProperties(),
    name: p.text(),
    slug: p.text().unique(),
    active: p.boolean().default(true),
    settings: p.json<OrganizationSettings>().onCreate(() => ({})),
  },
});
export type Organization = InferEntity<typeof Organization>;

/** The organization that holds the superadmins created by the headless bootstrap. */
export const SYSTEM_ORG_SLUG = 'system';
