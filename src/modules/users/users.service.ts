import type { Em } from '../../db/orm.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, forbidden, validationFailed } from '../../http/problem.ts';
import { Organization } from '../orgs/organization.entity.ts';
import { Session, User, type Role } from './user.entity.ts';

type UserDto = components['schemas']['User'];

export const hashPassword = (password: string) => Bun.password.hash(password, { algorithm: 'argon2id' });

export function toUserDto(user: User, org: Pick<Organization, 'slug'>): UserDto {
  return {
    id: user.id,
    email: user.email,
    firstName: user.firstName ?? null,
    lastName: user.lastName ?? null,
    role: user.role,
    organizationId: user.organizationId,
    organizationSlug: org.slug,
    active: user.active,
    createdAt: iso(user.createdAt),
    updatedAt: iso(user.updatedAt),
    lastLoginAt: isoOrNull(user.lastLoginAt),
  };
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export interface NewUser {
  email: string;
  password: string;
  role: Role;
  firstName?: string | null;
  lastName?: string | null;
}

export async function createUser(em: Em, organizationId: string, input: NewUser, grantedBy: Role | 'system'): Promise<User> {
  if (input.role === 'superadmin' && grantedBy !== 'superadmin' && grantedBy !== 'system') {
    throw forbidden('Only a superadmin may grant the superadmin role.');
  }
  const email = normalizeEmail(input.email);
  if (await em.count(User, { email })) throw conflict('A user with this email exists already.');
  const user = em.create(User, {
    organizationId,
    email,
    passwordHash: await hashPassword(input.password),
    role: input.role,
    firstName: input.firstName?.trim() || null,
    lastName: input.lastName?.trim() || null,
  });
  await em.flush();
  return user;
}

export interface ProfileChange {
  firstName?: string | null;
  lastName?: string | null;
  currentPassword?: string;
  newPassword?: string;
}

/**
 * Updates the caller's own profile. A password change needs the current password and ends
 * every other session of the user.
 */
export async function updateProfile(em: Em, user: User, change: ProfileChange, currentSessionId: string): Promise<User> {
  if (change.firstName !== undefined) user.firstName = change.firstName?.trim() || null;
  if (change.lastName !== undefined) user.lastName = change.lastName?.trim() || null;
  if (change.newPassword !== undefined) {
    await em.populate(user, ['passwordHash']);
    const ok = await Bun.password.verify(change.currentPassword ?? '', user.passwordHash);
    if (!ok) throw validationFailed([{ pointer: '/body/currentPassword', message: 'is not the current password' }]);
    user.passwordHash = await hashPassword(change.newPassword);
    await em.nativeUpdate(Session, { userId: user.id, id: { $ne: currentSessionId }, revokedAt: null }, { revokedAt: new Date() });
  }
  await em.flush();
  return user;
}
