import { useState } from 'preact/hooks';
import { api, ok, type Organization } from '../api.ts';
import { Badge, ErrorBanner, Field, ListFooter, PageHeader } from '../components/ui.tsx';
import { fmtDate } from '../format.ts';
import { usePaged } from '../hooks.ts';
import { useSession } from '../session.ts';

const slugify = (name: string) =>
  name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);

export function Organizations() {
  const { me, org, switchOrg } = useSession();
  const list = usePaged<Organization>((cursor) => ok(api.GET('/orgs', { params: { query: { limit: 100, cursor } } })), []);
  const current = org === 'me' ? me.organizationSlug : org;

  return (
    <>
      <PageHeader title="Organizations" subtitle="Each organization's data is isolated; as superadmin you can open any of them." />
      <NewOrganization onCreated={(o) => list.update((items) => [...items, o].sort((a, b) => a.slug.localeCompare(b.slug)))} />
      <section class="card">
        <h2>All organizations</h2>
        <div class="table-scroll">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Status</th>
                <th scope="col">Retention</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((o) => (
                <tr key={o.id} data-org={o.slug}>
                  <td>{o.name}</td>
                  <td>
                    <code>{o.slug}</code>
                  </td>
                  <td>{o.active ? <Badge tone="success">active</Badge> : <Badge tone="warning">inactive</Badge>}</td>
                  <td>{o.settings.retentionDays == null ? 'forever' : `${o.settings.retentionDays} days`}</td>
                  <td>{fmtDate(o.createdAt)}</td>
                  <td class="actions">
                    {o.slug === current ? (
                      <Badge>current</Badge>
                    ) : (
                      <button type="button" class="btn btn-small" onClick={() => switchOrg(o.slug)}>
                        Open
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <ListFooter loading={list.loading} done={list.done} error={list.error} count={list.items.length} noun="organizations" sentinel={list.sentinel} onRetry={list.loadMore} />
      </section>
    </>
  );
}

function NewOrganization({ onCreated }: { onCreated(o: Organization): void }) {
  const [name, setName] = useState('');
  const [slug, setSlug] = useState('');
  const [slugEdited, setSlugEdited] = useState(false);
  const [error, setError] = useState<unknown>();
  const [created, setCreated] = useState<Organization | null>(null);
  const [busy, setBusy] = useState(false);
  const { switchOrg } = useSession();

  return (
    <form
      class="card form-grid"
      aria-label="New organization"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          const o = await ok(api.POST('/orgs', { body: { name: name.trim(), slug } }));
          onCreated(o);
          setCreated(o);
          setName('');
          setSlug('');
          setSlugEdited(false);
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 class="form-title">New organization</h2>
      <ErrorBanner error={error} />
      {created && (
        <div class="banner banner-success form-wide" role="status">
          <span>{created.name} is ready. Open it to add its first admin under Users.</span>
          <button type="button" class="btn btn-small btn-primary" onClick={() => switchOrg(created.slug)}>
            Open {created.slug}
          </button>
        </div>
      )}
      <Field label="Name">
        <input
          type="text"
          name="name"
          required
          maxLength={200}
          value={name}
          onInput={(e) => {
            setName(e.currentTarget.value);
            if (!slugEdited) setSlug(slugify(e.currentTarget.value));
          }}
        />
      </Field>
      <Field label="Slug" hint="Lowercase letters, digits and hyphens; used in API URLs">
        <input
          type="text"
          name="slug"
          required
          minLength={2}
          maxLength={63}
          pattern="[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"
          value={slug}
          onInput={(e) => {
            setSlug(e.currentTarget.value);
            setSlugEdited(true);
          }}
        />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create organization'}
        </button>
      </div>
    </form>
  );
}
