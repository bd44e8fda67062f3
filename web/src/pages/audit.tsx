import { api, ok, type AuditEvent } from '../api.ts';
import { Empty, Field, ListFooter, PageHeader } from '../components/ui.tsx';
import { fmtDateTime, isEmptyObject } from '../format.ts';
import { usePaged } from '../hooks.ts';
import { BASE, navigate, useLocation, withQuery } from '../router.tsx';
import { useSession } from '../session.ts';

const ACTIONS = [
  'auth.login',
  'auth.login_failed',
  'user.created',
  'user.updated',
  'user.deleted',
  'user.password_changed',
  'apikey.created',
  'apikey.revoked',
  'organization.created',
  'organization.updated',
  'chat.updated',
  'chat.deleted',
  'export.created',
  'enduser.erased',
  'retention.purged',
];

/** Ids are UUIDs; their first block is enough to tell rows apart (the full id is the tooltip). */
const shortId = (id: string | null) => (id && /^[0-9a-f]{8}-[0-9a-f-]{27}$/.test(id) ? `${id.slice(0, 8)}…` : id ?? '');

export function Audit() {
  const { org } = useSession();
  const { query } = useLocation();
  const action = query.get('action') ?? '';
  const list = usePaged<AuditEvent>(
    (cursor) => ok(api.GET('/orgs/{org}/audit', { params: { path: { org }, query: { limit: 100, cursor, action: action || undefined } } })),
    [org, action],
  );

  return (
    <>
      <PageHeader title="Audit log" subtitle="Who did what in this organization, newest first. Secrets are never recorded.">
        <Field label="Action">
          <select value={action} onChange={(e) => navigate(withQuery(`${BASE}/audit`, { action: e.currentTarget.value }), { replace: true })}>
            <option value="">All actions</option>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </Field>
      </PageHeader>
      <section class="card">
        {list.items.length === 0 && list.done ? (
          <Empty title="No events." />
        ) : (
          <div class="table-scroll">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Who</th>
                  <th scope="col">Target</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((e) => (
                  <tr key={e.id}>
                    <td class="nowrap">{fmtDateTime(e.at)}</td>
                    <td>
                      <code>{e.action}</code>
                    </td>
                    <td>{e.actorEmail ?? <span class="muted">system</span>}</td>
                    <td class="muted" title={e.targetId ?? undefined}>
                      {e.targetType ? `${e.targetType} ${shortId(e.targetId)}` : '—'}
                    </td>
                    <td>{isEmptyObject(e.details) ? '—' : <code class="details">{JSON.stringify(e.details)}</code>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <ListFooter loading={list.loading} done={list.done} error={list.error} count={list.items.length} noun="events" sentinel={list.sentinel} onRetry={list.loadMore} />
      </section>
    </>
  );
}
