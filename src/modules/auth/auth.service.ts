import type { Em } from '../../db/orm.ts';
import { unauthorized } from '../../http/problem.ts';
import { recordAudit } from '../audit/audit.service.ts';
import { Organization } from '../orgs/organization.entity.ts';
import { Session, User } from '../users/user.entity.ts';
import { normalizeEmail } from '../users/users.service.ts';

/** Compared against when the email is unknown, so both failures cost one argon2 verification. */
const decoyHash = Bun.password.hash(crypto.randomUUID(), { algorithm: 'argon2id' });

const invalidCredentials = () => unauthorized('The email or password is incorrect.');

export interface Caller {
  user: User;
  organization: Organization;
  sessionId: string;
}

/** Checks credentials and opens a server-side session that the token will name. */
export async function login(em: Em, email: string, password: string, ttlSeconds: number): Promise<Caller & { session: Session }> {
  // Accounts belong to one organization, so an email may have several (one per organization):
  // the account is the one whose password matches (the oldest usable one, should several match).
  // Every candidate is verified, so the answer takes as long whichever of them matches.
  const candidates = await em.find(User, { email: normalizeEmail(email) }, { populate: ['passwordHash'], orderBy: { createdAt: 'asc', id: 'asc' } });
  const matching: User[] = [];
  for (const candidate of candidates) if (await Bun.password.verify(password, candidate.passwordHash)) matching.push(candidate);
  if (!candidates.length) await Bun.password.verify(password, await decoyHash);
  const organizations = new Map((await em.find(Organization, { id: { $in: candidates.map((c) => c.organizationId) } })).map((o) => [o.id, o]));
  const user = matching.find((c) => c.active && organizations.get(c.organizationId)?.active);
  const audit = (u: User) => ({ organizationId: u.organizationId, actor: { id: u.id, email: u.email }, target: { type: 'user', id: u.id } });
  if (!user) {
    // Recorded off the response's path, so a known email answers as fast as an unknown one
    // (which has no organization to record it in; the request log still shows its 401). Each
    // organization with an account of that email sees the attempt on its own account.
    const fork = em.fork();
    for (const candidate of candidates) {
      const reason = !matching.includes(candidate) ? 'wrong password' : !candidate.active ? 'user deactivated' : 'organization deactivated';
      recordAudit(fork, { ...audit(candidate), action: 'auth.login_failed', details: { reason } });
    }
    if (candidates.length) fork.flush().catch(() => {});
    throw invalidCredentials();
  }
  const organization = organizations.get(user.organizationId)!;

  // Its own transaction, before the session's: on Citus `users` and `sessions` are reference
  // tables, and updating the user after inserting the session (which locks the user's row for
  // its foreign key) upgrades a shard-resource lock that concurrent logins hold: a deadlock.
  user.lastLoginAt = new Date();
  await em.flush();
  const session = em.create(Session, { userId: user.id, expiresAt: new Date(Date.now() + ttlSeconds * 1000) });
  recordAudit(em, { ...audit(user), action: 'auth.login', details: {} });
  await em.flush();
  return { user, organization, session, sessionId: session.id };
}

/** Revokes a session; unknown or already revoked sessions are fine. */
export async function logout(em: Em, sessionId: string): Promise<void> {
  await em.nativeUpdate(Session, { id: sessionId, revokedAt: null }, { revokedAt: new Date() });
}

/**
 * A verified token is only as good as its session: revoked or expired sessions, deactivated
 * users and deactivated organizations are refused on every request.
 */
export async function resolveSession(em: Em, sessionId: string, userId: string): Promise<Caller | null> {
  const session = await em.findOne(Session, { id: sessionId, userId, revokedAt: null, expiresAt: { $gt: new Date() } });
  if (!session) return null;
  const user = await em.findOne(User, { id: userId, active: true });
  if (!user) return null;
  const organization = await em.findOne(Organization, { id: user.organizationId, active: true });
  if (!organization) return null;
  return { user, organization, sessionId };
}
