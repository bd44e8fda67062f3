import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ok, type Organization, type Role } from '../api.ts';
import { Logo } from '../pages/login.tsx';
import { BASE, Link, useLocation } from '../router.tsx';
import { can, useSession } from '../session.ts';
import { Badge } from './ui.tsx';
import { useNotice } from '../notice.ts';

interface NavItem {
  href: string;
  label: string;
  allowed(role: Role): boolean;
}

export const NAV: NavItem[] = [
  { href: `${BASE}/chats`, label: 'Conversations', allowed: () => true },
  { href: `${BASE}/analytics`, label: 'Analytics', allowed: () => true },
  { href: `${BASE}/exports`, label: 'Exports', allowed: can.exportData },
  { href: `${BASE}/keys`, label: 'API keys', allowed: can.manageKeys },
  { href: `${BASE}/users`, label: 'Users', allowed: can.manageUsers },
  { href: `${BASE}/audit`, label: 'Audit log', allowed: can.readAudit },
  { href: `${BASE}/settings`, label: 'Settings', allowed: can.manageSettings },
  { href: `${BASE}/orgs`, label: 'Organizations', allowed: can.manageOrganizations },
];

export function Shell({ children }: { children: ComponentChildren }) {
  const { me, organization, logout } = useSession();
  const { path } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const [notice, dismiss] = useNotice();
  useEffect(() => setMenuOpen(false), [path]);

  return (
    <div class={`shell ${menuOpen ? 'menu-open' : ''}`}>
      <a class="skip-link" href="#content">
        Skip to content
      </a>
      <aside class="sidebar" id="sidebar">
        <div class="brand">
          <Logo />
          <span>ChatLogger</span>
        </div>
        <nav aria-label="Main">
          <ul class="nav">
            {NAV.filter((item) => item.allowed(me.role)).map((item) => (
              <li key={item.href}>
                <Link href={item.href} class="nav-link" aria-current={path === item.href || path.startsWith(item.href + '/') ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="sidebar-footer">
          <Link href={`${BASE}/account`} class="nav-link" aria-current={path === `${BASE}/account` ? 'page' : undefined}>
            Account
          </Link>
        </div>
      </aside>
      <button type="button" class="scrim" aria-label="Close menu" tabIndex={-1} onClick={() => setMenuOpen(false)} />
      <div class="main">
        <header class="topbar">
          <button type="button" class="btn btn-icon menu-button" aria-controls="sidebar" aria-expanded={menuOpen} onClick={() => setMenuOpen(!menuOpen)}>
            <span aria-hidden="true">☰</span>
            <span class="visually-hidden">Menu</span>
          </button>
          <div class="org">
            {me.role === 'superadmin' ? <OrgSwitcher /> : <span class="org-name">{organization?.name ?? me.organizationSlug}</span>}
          </div>
          <div class="who">
            <span class="who-email" title={me.email}>
              {me.email}
            </span>
            <Badge tone={`role-${me.role}`}>{me.role}</Badge>
            <button type="button" class="btn btn-small" onClick={() => void logout()}>
              Log out
            </button>
          </div>
        </header>
        <main id="content" class="content" tabIndex={-1}>
          {children}
        </main>
        <div class="toast-region" role="status" aria-live="polite">
          {notice && (
            <div class="toast">
              {notice}
              <button type="button" class="btn btn-small" onClick={dismiss}>
                Dismiss
              </button>
            </div>
          )}
        </div>
      </div>
    </div>
  );
}

/** A superadmin looks at one organization at a time; the choice is remembered in this browser. */
function OrgSwitcher() {
  const { me, org, organization, switchOrg } = useSession();
  const [orgs, setOrgs] = useState<Organization[]>([]);
  useEffect(() => {
    let live = true;
    (async () => {
      const all: Organization[] = [];
      let cursor: string | undefined;
      // The switcher lists up to 1,000 organizations; the Organizations page pages through all.
      for (let i = 0; i < 5; i++) {
        const page = await ok(api.GET('/orgs', { params: { query: { limit: 200, cursor } } }));
        all.push(...page.items);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      if (live) setOrgs(all);
    })().catch(() => {});
    return () => {
      live = false;
    };
  }, [organization?.id]);
  const current = org === 'me' ? me.organizationSlug : org;
  const options = orgs.some((o) => o.slug === current) ? orgs : [...orgs, ...(organization ? [organization] : [])];
  return (
    <label class="org-switcher">
      <span class="visually-hidden">Organization</span>
      <select value={current} onChange={(e) => switchOrg(e.currentTarget.value)}>
        {options.map((o) => (
          <option key={o.id} value={o.slug}>
            {o.name} ({o.slug}){o.active ? '' : ' — inactive'}
          </option>
        ))}
      </select>
    </label>
  );
}
