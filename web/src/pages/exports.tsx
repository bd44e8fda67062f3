import { useState } from 'preact/hooks';
import { api, ok, type Export, type Schemas } from '../api.ts';
import { Empty, ErrorBanner, Field, ListFooter, PageHeader } from '../components/ui.tsx';
import { dayStart, fmtDate, fmtDateTime, parseTags } from '../format.ts';
import { usePaged } from '../hooks.ts';
import { useSession } from '../session.ts';

type ExportCreate = Schemas['ExportCreate'];

export function Exports() {
  const { org } = useSession();
  const list = usePaged<Export>((cursor) => ok(api.GET('/exports/orgs/{org}', { params: { path: { org }, query: { limit: 50, cursor } } })), [org]);
  const [created, setCreated] = useState<Export | null>(null);

  return (
    <>
      <PageHeader title="Exports" subtitle="Snapshots of your conversations as CSV, JSON or NDJSON. Each download holds exactly the data that existed when the export was created." />
      <NewExport
        onCreated={(e) => {
          setCreated(e);
          list.update((items) => [e, ...items.filter((x) => x.id !== e.id)]);
        }}
      />
      {created && (
        <div class="banner banner-success" role="status">
          <span>Export created.</span>
          <a class="btn btn-small btn-primary" href={created.downloadUrl} download>
            Download {created.format.toUpperCase()}
          </a>
        </div>
      )}
      <section class="card">
        <h2>Previous exports</h2>
        {list.items.length === 0 && list.done ? (
          <Empty title="No exports yet." />
        ) : (
          <div class="table-scroll">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Created</th>
                  <th scope="col">Contents</th>
                  <th scope="col">Filters</th>
                  <th scope="col">
                    <span class="visually-hidden">Download</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((e) => (
                  <tr key={e.id} data-export={e.id}>
                    <td>{fmtDateTime(e.createdAt)}</td>
                    <td>
                      {e.scope === 'chats' ? 'Conversations' : 'Messages'} · {e.format.toUpperCase()}
                    </td>
                    <td class="muted">{describeFilters(e.filters)}</td>
                    <td class="actions">
                      <a class="btn btn-small" href={e.downloadUrl} download>
                        Download
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <ListFooter loading={list.loading} done={list.done} error={list.error} count={list.items.length} noun="exports" sentinel={list.sentinel} onRetry={list.loadMore} />
      </section>
    </>
  );
}

function describeFilters(filters: Export['filters']): string {
  const parts: string[] = [];
  if (filters.from) parts.push(`from ${fmtDate(filters.from)}`);
  if (filters.to) parts.push(`before ${fmtDate(filters.to)}`);
  if (filters.tags?.length) parts.push(`tags ${filters.tags.join(', ')}`);
  if (filters.externalUserId) parts.push(`end user ${filters.externalUserId}`);
  return parts.length ? parts.join(' · ') : 'everything';
}

function NewExport({ onCreated }: { onCreated(e: Export): void }) {
  const { org } = useSession();
  const [format, setFormat] = useState<ExportCreate['format']>('csv');
  const [scope, setScope] = useState<ExportCreate['scope']>('chats');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [tags, setTags] = useState('');
  const [user, setUser] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  return (
    <form
      class="card form-grid"
      aria-label="New export"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          const tagList = parseTags(tags);
          const body: ExportCreate = {
            format,
            scope,
            from: from ? dayStart(from) : undefined,
            to: to ? dayStart(to, 1) : undefined,
            tags: tagList.length ? tagList : undefined,
            externalUserId: user.trim() || undefined,
          };
          onCreated(await ok(api.POST('/exports/orgs/{org}', { params: { path: { org } }, body })));
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 class="form-title">New export</h2>
      <ErrorBanner error={error} />
      <Field label="Contents">
        <select name="scope" value={scope} onChange={(e) => setScope(e.currentTarget.value as ExportCreate['scope'])}>
          <option value="chats">Conversations</option>
          <option value="messages">Messages</option>
        </select>
      </Field>
      <Field label="Format">
        <select name="format" value={format} onChange={(e) => setFormat(e.currentTarget.value as ExportCreate['format'])}>
          <option value="csv">CSV (spreadsheets)</option>
          <option value="json">JSON</option>
          <option value="ndjson">NDJSON (one object per line)</option>
        </select>
      </Field>
      <Field label="Created from">
        <input type="date" name="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
      </Field>
      <Field label="Created until">
        <input type="date" name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
      </Field>
      <Field label="Any of these tags">
        <input type="text" name="tags" placeholder="billing, vip" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
      </Field>
      <Field label="End user">
        <input type="text" name="externalUserId" value={user} onInput={(e) => setUser(e.currentTarget.value)} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create export'}
        </button>
      </div>
    </form>
  );
}
