import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Organization, Role, User } from './api.ts';

export interface Session {
  me: User;
  /** The `{org}` of every call: `me`, or the slug a superadmin switched to. */
  org: string;
  /** The organization being looked at (null while it loads). */
  organization: Organization | null;
  switchOrg(slug: string): void;
  setMe(user: User): void;
  reloadOrganization(): void;
  logout(): Promise<void>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

const RANK: Record<Role, number> = { viewer: 0, user: 1, admin: 2, superadmin: 3 };
const atLeast = (role: Role, minimum: Role) => RANK[role] >= RANK[minimum];

/**
 * What each role may do, mirroring the README's role table (the server enforces it anyway);
 * the dashboard hides or disables what is not allowed.
 */
export const can = {
  editChats: (role: Role) => atLeast(role, 'user'),
  exportData: (role: Role) => atLeast(role, 'user'),
  deleteChats: (role: Role) => atLeast(role, 'admin'),
  manageEndUsers: (role: Role) => atLeast(role, 'admin'),
  manageUsers: (role: Role) => atLeast(role, 'admin'),
  manageKeys: (role: Role) => atLeast(role, 'admin'),
  readAudit: (role: Role) => atLeast(role, 'admin'),
  manageSettings: (role: Role) => atLeast(role, 'admin'),
  manageOrganizations: (role: Role) => role === 'superadmin',
};

export const ROLES: Role[] = ['viewer', 'user', 'admin', 'superadmin'];
