import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';

export const ROLES = ['viewer', 'user', 'admin', 'superadmin'] as const;
export type Role = (typeof ROLES)[number];

/** Roles are ordered: each includes every right of the ones before it. */
export const roleAtLeast = (role: Role, minimum: Role) => ROLES.indexOf(role) >= ROLES.indexOf(minimum);

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    ...baseProperties(),
    organizationId: p.uuid(),
    // Unique within the organization (users_organization_email_key), not across the service.
    email: p.text(),
    passwordHash: p.text().hidden().lazy(),
    role: p.text().$type<Role>(),
    firstName: p.text().nullable(),
    lastName: p.text().nullable(),
    active: p.boolean().default(true),
    lastLoginAt: p.datetime().nullable(),
  },
});
export type User = InferEntity<typeof User>;

export const Session = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.uuid().primary().onCreate(() => Bun.randomUUIDv7()),
    userId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
  },
});
export type Session = InferEntity<typeof Session>;
