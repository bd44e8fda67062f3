import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import { iso, isoOrNull } from '../../http/time.ts';
import type { components } from '../../generated/openapi.ts';
import { conflict, forbidden, notFound, validationFailed } from '../../http/problem.ts';
import { decodeCursor, page } from '../../http/cursor.ts';
import { isUuid } from '../../http/ids.ts';
import { recordAudit } from '../audit/audit.service.ts';
import { Organization } from '../orgs/organization.entity.ts';
import { Session, User, type Role } from './user.entity.ts';

type UserDto = components['schemas']['User'];
type UserUpdate = components['schemas']['UserUpdate'];

/** The dashboard user acting, or null for the system (bootstrap, CLI). */
export type Acting = Pick<User, 'id' | 'email' | 'role'> | null;

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

const isSuperadmin = (acting: Acting) => acting === null || acting.role === 'superadmin';
const actor = (acting: Acting) => (acting ? { id: acting.id, email: acting.email } : null);

export interface NewUser {
  email: string;
  password: string;
  role: Role;
  firstName?: string | null;
  lastName?: string | null;
}

export async function createUser(em: Em, organizationId: string, input: NewUser, acting: Acting): Promise<User> {
  if (input.role === 'superadmin' && !isSuperadmin(acting)) throw forbidden('Only a superadmin may grant the superadmin role.');
  const email = normalizeEmail(input.email);
  // Accounts belong to one organization: other tenants' accounts are neither seen nor in the way.
  if (await em.count(User, { organizationId, email })) throw conflict('A user with this email exists already in this organization.');
  const user = em.create(User, {
    organizationId,
    email,
    passwordHash: await hashPassword(input.password),
    role: input.role,
    firstName: input.firstName?.trim() || null,
    lastName: input.lastName?.trim() || null,
  });
  recordAudit(em, {
    organizationId,
    action: 'user.created',
    actor: actor(acting),
    target: { type: 'user', id: user.id },
    details: { email, role: user.role },
  });
  await em.flush();
  return user;
}

/** The organization's users, by email. */
export async function listUsers(em: Em, organizationId: string, query: { limit: number; cursor?: string }) {
  const after = decodeCursor(query.cursor, 1);
  const users = await em.find(
    User,
    { organizationId, ...(after ? { email: { $gt: after[0] } } : {}) },
    { orderBy: { email: 'asc' }, limit: query.limit + 1 },
  );
  return page(users, query.limit, (user) => [user.email]);
}

async function findMember(em: Em, organizationId: string, userId: string): Promise<User> {
  const user = isUuid(userId) ? await em.findOne(User, { id: userId.toLowerCase(), organizationId }) : null;
  if (!user) throw notFound('user');
  return user;
}

/**
 * An organization must keep an active admin. All its active admins' rows are locked, in id
 * order so that concurrent requests queue instead of deadlocking: of two admins demoting each
 * other at the same moment, the second sees the first's change and is refused.
 */
async function assertAnotherActiveAdmin(em: Em, user: User): Promise<void> {
  if (user.role !== 'admin' || !user.active) return;
  const admins = await query<{ id: string }>(em, `select id from users where organization_id = $1 and role = 'admin' and active order by id for update`, [
    user.organizationId,
  ]);
  if (!admins.some((admin) => admin.id !== user.id)) throw conflict('The organization would be left without an active admin.');
}

function assertMayManage(acting: Acting, target: User): void {
  if (target.role === 'superadmin' && !isSuperadmin(acting)) throw forbidden('Only a superadmin may change a superadmin.');
}

async function endSessions(em: Em, userId: string): Promise<void> {
  await em.nativeUpdate(Session, { userId, revokedAt: null }, { revokedAt: new Date() });
}

/** Changes role, names or active flag. A role change or deactivation ends the user's sessions. */
export async function updateUser(em: Em, organizationId: string, userId: string, change: UserUpdate, acting: Acting): Promise<User> {
  return em.transactional(async (tx) => {
    const user = await findMember(tx, organizationId, userId);
    assertMayManage(acting, user);
    if (change.role === 'superadmin' && !isSuperadmin(acting)) throw forbidden('Only a superadmin may grant the superadmin role.');
    const roleChanges = change.role !== undefined && change.role !== user.role;
    const deactivates = change.active === false && user.active;
    if (acting && acting.id === user.id && (roleChanges || deactivates)) {
      throw conflict('You cannot change your own role or deactivate yourself.');
    }
    if ((roleChanges && user.role === 'admin') || deactivates) await assertAnotherActiveAdmin(tx, user);

    const changes: Record<string, unknown> = {};
    if (roleChanges) {
      changes.role = { from: user.role, to: change.role };
      user.role = change.role!;
    }
    if (change.active !== undefined && change.active !== user.active) {
      changes.active = change.active;
      user.active = change.active;
    }
    for (const field of ['firstName', 'lastName'] as const) {
      if (change[field] === undefined) continue;
      const value = change[field]?.trim() || null;
      if (value !== (user[field] ?? null)) {
        changes[field] = true;
        user[field] = value;
      }
    }
    if (roleChanges || deactivates) await endSessions(tx, user.id);
    if (Object.keys(changes).length) {
      recordAudit(tx, { organizationId, action: 'user.updated', actor: actor(acting), target: { type: 'user', id: user.id }, details: { email: user.email, changes } });
    }
    return user;
  });
}

export async function deleteUser(em: Em, organizationId: string, userId: string, acting: Acting): Promise<void> {
  await em.transactional(async (tx) => {
    const user = await findMember(tx, organizationId, userId);
    assertMayManage(acting, user);
    if (acting && acting.id === user.id) throw conflict('You cannot delete yourself.');
    await assertAnotherActiveAdmin(tx, user);
    recordAudit(tx, { organizationId, action: 'user.deleted', actor: actor(acting), target: { type: 'user', id: user.id }, details: { email: user.email, role: user.role } });
    tx.remove(user);
  });
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
  const audit = { organizationId: user.organizationId, actor: actor(user), target: { type: 'user', id: user.id } };
  const names: string[] = [];
  for (const field of ['firstName', 'lastName'] as const) {
    if (change[field] === undefined) continue;
    const value = change[field]?.trim() || null;
    if (value !== (user[field] ?? null)) names.push(field);
    user[field] = value;
  }
  if (names.length) recordAudit(em, { ...audit, action: 'user.updated', details: { email: user.email, changes: Object.fromEntries(names.map((n) => [n, true])) } });
  if (change.newPassword !== undefined) {
    await em.populate(user, ['passwordHash']);
    const ok = await Bun.password.verify(change.currentPassword ?? '', user.passwordHash);
    if (!ok) throw validationFailed([{ pointer: '/body/currentPassword', message: 'is not the current password' }]);
    user.passwordHash = await hashPassword(change.newPassword);
    await em.nativeUpdate(Session, { userId: user.id, id: { $ne: currentSessionId }, revokedAt: null }, { revokedAt: new Date() });
    recordAudit(em, { ...audit, action: 'user.password_changed', details: { email: user.email } });
  }
  await em.flush();
  return user;
}
