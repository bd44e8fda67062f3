import { useState } from 'preact/hooks';
import { api, ok, type User } from '../api.ts';
import { ErrorBanner, Field } from '../components/ui.tsx';

export function Login({ onLoggedIn, notice }: { onLoggedIn(user: User): void; notice?: string }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  return (
    <main class="login">
      <form
        class="card login-card"
        onSubmit={async (event) => {
          event.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            const session = await ok(api.POST('/auth/login', { body: { email: email.trim(), password } }), { quiet401: true });
            onLoggedIn(session.user);
          } catch (e) {
            setError(e);
            setBusy(false);
          }
        }}
      >
        <div class="brand brand-large">
          <Logo />
          <span>ChatLogger</span>
        </div>
        <h1>Sign in</h1>
        {notice && !error && (
          <p class="banner banner-info" role="status">
            {notice}
          </p>
        )}
        <ErrorBanner error={error} />
        <Field label="Email">
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} autofocus />
        </Field>
        <Field label="Password">
          <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

export function Logo() {
  return (
    <svg class="logo" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true">
      <path d="M4 5h16v10H9l-5 4z" fill="currentColor" opacity="0.9" />
      <path class="logo-lines" d="M8 9h8M8 12h5" />
    </svg>
  );
}
