import { useState } from 'preact/hooks';
import { api, ok, type Role, type Schemas, type User } from '../api.ts';
import { Badge, Confirm, CopyButton, Empty, ErrorBanner, Field, ListFooter, PageHeader } from '../components/ui.tsx';
import { fmtDateTime, fmtRelative } from '../format.ts';
import { usePaged } from '../hooks.ts';
import { ROLES, useSession } from '../session.ts';

const ROLE_HELP: Record<Role, string> = {
  viewer: 'reads conversations and analytics',
  user: 'also edits conversations and exports',
  admin: 'also manages users, API keys and settings',
  superadmin: 'everything, in every organization',
};

export function Users() {
  const { org, me } = useSession();
  const list = usePaged<User>((cursor) => ok(api.GET('/orgs/{org}/users', { params: { path: { org }, query: { limit: 100, cursor } } })), [org]);
  const [deleting, setDeleting] = useState<User | null>(null);
  const [rowError, setRowError] = useState<unknown>();
  const grantable = ROLES.filter((r) => r !== 'superadmin' || me.role === 'superadmin');
  const replace = (user: User) => list.update((items) => items.map((u) => (u.id === user.id ? user : u)));

  const patch = async (user: User, body: Schemas['UserUpdate']) => {
    setRowError(undefined);
    try {
      replace(await ok(api.PATCH('/orgs/{org}/users/{userId}', { params: { path: { org, userId: user.id } }, body })));
    } catch (e) {
      setRowError(e);
      // Show the stored value again (a refused role change leaves the select as it was).
      replace({ ...user });
    }
  };

  return (
    <>
      <PageHeader title="Users" subtitle="People who can sign in to this organization's dashboard." />
      <NewUser grantable={grantable} onCreated={(user) => list.update((items) => [...items, user].sort((a, b) => a.email.localeCompare(b.email)))} />
      <section class="card">
        <h2>Members</h2>
        <ErrorBanner error={rowError} />
        {list.items.length === 0 && list.done ? (
          <Empty title="No users." />
        ) : (
          <div class="table-scroll">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last sign-in</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((user) => {
                  const self = user.id === me.id;
                  // Only a superadmin may change a superadmin; nobody changes their own role or status.
                  const locked = self || (user.role === 'superadmin' && me.role !== 'superadmin');
                  const name = [user.firstName, user.lastName].filter(Boolean).join(' ');
                  return (
                    <tr key={user.id} data-user={user.email}>
                      <td>
                        <div>{name || user.email}</div>
                        {name && <div class="muted small">{user.email}</div>}
                        {self && <Badge>you</Badge>}
                      </td>
                      <td>
                        <label>
                          <span class="visually-hidden">Role of {user.email}</span>
                          <select value={user.role} disabled={locked} onChange={(e) => void patch(user, { role: e.currentTarget.value as Role })}>
                            {(grantable.includes(user.role) ? grantable : [...grantable, user.role]).map((r) => (
                              <option key={r} value={r}>
                                {r}
                              </option>
                            ))}
                          </select>
                        </label>
                      </td>
                      <td>{user.active ? <Badge tone="success">active</Badge> : <Badge tone="warning">deactivated</Badge>}</td>
                      <td title={fmtDateTime(user.lastLoginAt)}>{user.lastLoginAt ? fmtRelative(user.lastLoginAt) : 'never'}</td>
                      <td class="actions">
                        {!locked && (
                          <>
                            <button type="button" class="btn btn-small" onClick={() => void patch(user, { active: !user.active })}>
                              {user.active ? 'Deactivate' : 'Activate'}
                            </button>
                            <button type="button" class="btn btn-small btn-danger-outline" onClick={() => setDeleting(user)}>
                              Delete
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        <ListFooter loading={list.loading} done={list.done} error={list.error} count={list.items.length} noun="users" sentinel={list.sentinel} onRetry={list.loadMore} />
      </section>
      <Confirm
        open={deleting !== null}
        title={`Delete ${deleting?.email ?? ''}?`}
        confirmLabel="Delete user"
        danger
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await ok(api.DELETE('/orgs/{org}/users/{userId}', { params: { path: { org, userId: deleting!.id } } }));
          const id = deleting!.id;
          list.update((items) => items.filter((u) => u.id !== id));
        }}
      >
        <p>They can no longer sign in. API keys they created keep working. Deactivating instead keeps the account for later.</p>
      </Confirm>
    </>
  );
}

function randomPassword(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

function NewUser({ grantable, onCreated }: { grantable: Role[]; onCreated(user: User): void }) {
  const { org } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [firstName, setFirstName] = useState('');
  const [lastName, setLastName] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [invited, setInvited] = useState<{ email: string; password: string } | null>(null);

  return (
    <form
      class="card form-grid"
      aria-label="Invite a user"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        setInvited(null);
        try {
          const user = await ok(
            api.POST('/orgs/{org}/users', { params: { path: { org } }, body: { email: email.trim(), password, role, firstName: firstName.trim() || null, lastName: lastName.trim() || null } }),
          );
          onCreated(user);
          setInvited({ email: user.email, password });
          setEmail('');
          setPassword('');
          setFirstName('');
          setLastName('');
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 class="form-title">Invite a user</h2>
      <ErrorBanner error={error} />
      {invited && (
        <div class="banner banner-success form-wide" role="status">
          <span>
            {invited.email} can sign in now with the password you chose. Share it with them privately; they can change it under Account.
          </span>
          <CopyButton text={invited.password} label="Copy password" />
        </div>
      )}
      <Field label="Email">
        <input type="email" name="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
      </Field>
      <Field label="Role" hint={ROLE_HELP[role]}>
        <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          {grantable.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </Field>
      <Field label="First name">
        <input type="text" name="firstName" maxLength={100} value={firstName} onInput={(e) => setFirstName(e.currentTarget.value)} />
      </Field>
      <Field label="Last name">
        <input type="text" name="lastName" maxLength={100} value={lastName} onInput={(e) => setLastName(e.currentTarget.value)} />
      </Field>
      <Field label="Initial password" hint="At least 8 characters">
        <span class="input-with-button">
          <input type="text" name="password" required minLength={8} autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <button type="button" class="btn btn-small" onClick={() => setPassword(randomPassword())}>
            Generate
          </button>
        </span>
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add user'}
        </button>
      </div>
    </form>
  );
}
