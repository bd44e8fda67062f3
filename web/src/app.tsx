import type { ComponentChildren, ComponentType } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { api, ok, setUnauthorizedHandler, type Organization, type User } from './api.ts';
import { NAV, Shell } from './components/layout.tsx';
import { Empty, ErrorBanner, Loading } from './components/ui.tsx';
import { Account } from './pages/account.tsx';
import { ApiKeys } from './pages/apikeys.tsx';
import { Audit } from './pages/audit.tsx';
import { Conversations } from './pages/conversations.tsx';
import { Exports } from './pages/exports.tsx';
import { Login } from './pages/login.tsx';
import { Organizations } from './pages/orgs.tsx';
import { Settings } from './pages/settings.tsx';
import { Transcript } from './pages/transcript.tsx';
import { Users } from './pages/users.tsx';
import { BASE, Link, match, navigate, useLocation } from './router.tsx';
import { SessionContext, useSession, type Session } from './session.ts';

const ORG_KEY = 'chatlogger.org';

type Auth = { state: 'checking' } | { state: 'out'; notice?: string } | { state: 'in'; me: User };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });

  useEffect(() => {
    setUnauthorizedHandler(() => setAuth((a) => (a.state === 'in' ? { state: 'out', notice: 'Your session has ended. Sign in again.' } : a)));
    ok(api.GET('/users/me'), { quiet401: true }).then(
      (me) => setAuth({ state: 'in', me }),
      () => setAuth({ state: 'out' }),
    );
  }, []);

  if (auth.state === 'checking') return <Loading label="Loading ChatLogger…" />;
  if (auth.state === 'out') return <Login notice={auth.notice} onLoggedIn={(me) => setAuth({ state: 'in', me })} />;
  return <SignedIn me={auth.me} setMe={(me) => setAuth({ state: 'in', me })} onLoggedOut={() => setAuth({ state: 'out', notice: 'You have signed out.' })} />;
}

function SignedIn({ me, setMe, onLoggedOut }: { me: User; setMe(me: User): void; onLoggedOut(): void }) {
  const [org, setOrg] = useState(() => (me.role === 'superadmin' ? localStorage.getItem(ORG_KEY) || 'me' : 'me'));
  const [organization, setOrganization] = useState<Organization | null>(null);
  const [orgTick, setOrgTick] = useState(0);

  useEffect(() => {
    let live = true;
    ok(api.GET('/orgs/{org}', { params: { path: { org } } })).then(
      (o) => live && setOrganization(o),
      () => {
        // A remembered organization that is gone: back to the superadmin's own.
        if (live && org !== 'me') {
          localStorage.removeItem(ORG_KEY);
          setOrg('me');
        }
      },
    );
    return () => {
      live = false;
    };
  }, [org, orgTick]);

  const switchOrg = useCallback(
    (slug: string) => {
      const next = slug === me.organizationSlug ? 'me' : slug;
      if (next === 'me') localStorage.removeItem(ORG_KEY);
      else localStorage.setItem(ORG_KEY, next);
      setOrganization(null);
      setOrg(next);
      navigate(`${BASE}/chats`);
    },
    [me.organizationSlug],
  );

  const session = useMemo<Session>(
    () => ({
      me,
      org,
      organization,
      switchOrg,
      setMe,
      reloadOrganization: () => setOrgTick((t) => t + 1),
      logout: async () => {
        await api.POST('/auth/logout').catch(() => {});
        onLoggedOut();
      },
    }),
    [me, org, organization, switchOrg, setMe, onLoggedOut],
  );

  return (
    <SessionContext.Provider value={session}>
      <Shell>
        {/* A change of organization starts every page afresh. */}
        <Routes key={org} />
      </Shell>
    </SessionContext.Provider>
  );
}

function Routes() {
  const { path } = useLocation();
  const { me } = useSession();

  useEffect(() => {
    if (path === BASE || path === '/' || path === `${BASE}/login`) navigate(`${BASE}/chats`, { replace: true });
  }, [path]);

  const chat = match(`${BASE}/chats/:id`, path);
  if (chat) return <Transcript id={chat.id!} />;
  const page = PAGES[path];
  if (!page) {
    if (path === BASE || path === `${BASE}/login`) return null;
    return (
      <Empty title="There is no such page.">
        <Link href={`${BASE}/chats`}>Go to conversations</Link>
      </Empty>
    );
  }
  const nav = NAV.find((item) => item.href === path);
  if (nav && !nav.allowed(me.role)) return <Forbidden />;
  return page();
}

const PAGES: Record<string, () => ComponentChildren> = {
  [`${BASE}/chats`]: () => <Conversations />,
  [`${BASE}/analytics`]: () => <LazyAnalytics />,
  [`${BASE}/exports`]: () => <Exports />,
  [`${BASE}/keys`]: () => <ApiKeys />,
  [`${BASE}/users`]: () => <Users />,
  [`${BASE}/audit`]: () => <Audit />,
  [`${BASE}/settings`]: () => <Settings />,
  [`${BASE}/orgs`]: () => <Organizations />,
  [`${BASE}/account`]: () => <Account />,
};

/** The charts (uPlot, half of the script) load only when Analytics is first opened. */
let analytics: Promise<ComponentType> | undefined;
function LazyAnalytics() {
  const [Page, setPage] = useState<ComponentType | null>(null);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    analytics ??= import('./pages/analytics.tsx').then((m) => m.Analytics);
    analytics.then(
      (component) => setPage(() => component),
      (e) => {
        analytics = undefined;
        setError(e);
      },
    );
  }, []);
  if (error) return <ErrorBanner error={new Error('The analytics page could not be loaded; reload the page.')} />;
  return Page ? <Page /> : <Loading label="Loading analytics…" />;
}

function Forbidden() {
  return (
    <Empty title="Your role does not give access to this page.">
      <Link href={`${BASE}/chats`}>Go to conversations</Link>
    </Empty>
  );
}

