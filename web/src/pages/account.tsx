import { useState } from 'preact/hooks';
import { api, ok } from '../api.ts';
import { Badge, ErrorBanner, Field, PageHeader } from '../components/ui.tsx';
import { fmtDateTime } from '../format.ts';
import { useSession } from '../session.ts';

export function Account() {
  const { me } = useSession();
  return (
    <>
      <PageHeader title="Your account" subtitle={<>{me.email} · <Badge tone={`role-${me.role}`}>{me.role}</Badge> in {me.organizationSlug} · last sign-in {fmtDateTime(me.lastLoginAt)}</>} />
      <div class="grid-2">
        <Profile />
        <Password />
      </div>
    </>
  );
}

function Profile() {
  const { me, setMe } = useSession();
  const [firstName, setFirstName] = useState(me.firstName ?? '');
  const [lastName, setLastName] = useState(me.lastName ?? '');
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  return (
    <form
      class="card form-stack"
      aria-label="Profile"
      onSubmit={async (event) => {
        event.preventDefault();
        setError(undefined);
        setSaved(false);
        try {
          setMe(await ok(api.PATCH('/users/me', { body: { firstName: firstName.trim() || null, lastName: lastName.trim() || null } })));
          setSaved(true);
        } catch (e) {
          setError(e);
        }
      }}
    >
      <h2>Profile</h2>
      <ErrorBanner error={error} />
      {saved && (
        <p class="banner banner-success" role="status">
          Saved.
        </p>
      )}
      <Field label="First name">
        <input type="text" maxLength={100} value={firstName} autocomplete="given-name" onInput={(e) => setFirstName(e.currentTarget.value)} />
      </Field>
      <Field label="Last name">
        <input type="text" maxLength={100} value={lastName} autocomplete="family-name" onInput={(e) => setLastName(e.currentTarget.value)} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary">
          Save profile
        </button>
      </div>
    </form>
  );
}

function Password() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  return (
    <form
      class="card form-stack"
      aria-label="Password"
      onSubmit={async (event) => {
        event.preventDefault();
        setError(undefined);
        setSaved(false);
        if (next !== confirm) {
          setError(new Error('The new passwords do not match.'));
          return;
        }
        try {
          await ok(api.PATCH('/users/me', { body: { currentPassword: current, newPassword: next } }));
          setSaved(true);
          setCurrent('');
          setNext('');
          setConfirm('');
        } catch (e) {
          setError(e);
        }
      }}
    >
      <h2>Password</h2>
      <ErrorBanner error={error} />
      {saved && (
        <p class="banner banner-success" role="status">
          Password changed. Your other sessions have been signed out.
        </p>
      )}
      <Field label="Current password">
        <input type="password" required autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
      </Field>
      <Field label="New password" hint="At least 8 characters">
        <input type="password" required minLength={8} autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} />
      </Field>
      <Field label="New password again">
        <input type="password" required minLength={8} autocomplete="new-password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary">
          Change password
        </button>
      </div>
    </form>
  );
}
