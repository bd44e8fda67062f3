import { useState } from 'preact/hooks';
import { api, ok, type ApiKey, type ApiKeyCreate, type ApiKeyWithSecret } from '../api.ts';
import { Badge, Confirm, CopyButton, Empty, ErrorBanner, Field, Loading, PageHeader } from '../components/ui.tsx';
import { dayStart, dayOf, fmtDateTime, fmtRelative } from '../format.ts';
import { useAsync } from '../hooks.ts';
import { useSession } from '../session.ts';

function status(key: ApiKey): { label: string; tone: string } {
  if (key.revokedAt) return { label: 'revoked', tone: 'danger' };
  if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now()) return { label: 'expired', tone: 'warning' };
  return { label: 'active', tone: 'success' };
}

export function ApiKeys() {
  const { org } = useSession();
  const keys = useAsync(() => ok(api.GET('/orgs/{org}/apikeys', { params: { path: { org } } })), [org]);
  const [created, setCreated] = useState<ApiKeyWithSecret | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);

  return (
    <>
      <PageHeader title="API keys" subtitle="Chat widgets and assistants send conversations with an organization API key." />
      <NewKey
        onCreated={(key) => {
          setCreated(key);
          keys.reload();
        }}
      />
      {created && <NewKeySecret apiKey={created} onDismiss={() => setCreated(null)} />}
      <section class="card">
        <h2>Keys</h2>
        {keys.error ? (
          <ErrorBanner error={keys.error} onRetry={keys.reload} />
        ) : !keys.data ? (
          <Loading />
        ) : keys.data.items.length === 0 ? (
          <Empty title="No API keys yet." />
        ) : (
          <div class="table-scroll">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Label</th>
                  <th scope="col">Key</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Origins</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.items.map((key) => {
                  const s = status(key);
                  return (
                    <tr key={key.id} data-key={key.id}>
                      <td>{key.label}</td>
                      <td>
                        <code>{key.prefix}…</code>
                      </td>
                      <td>
                        <Badge tone={s.tone}>{s.label}</Badge>
                      </td>
                      <td title={fmtDateTime(key.createdAt)}>{fmtRelative(key.createdAt)}</td>
                      <td title={fmtDateTime(key.lastUsedAt)}>{key.lastUsedAt ? fmtRelative(key.lastUsedAt) : 'never'}</td>
                      <td>{key.expiresAt ? fmtDateTime(key.expiresAt) : 'never'}</td>
                      <td class="small">{key.allowedOrigins.length ? key.allowedOrigins.join(', ') : <span class="muted">any</span>}</td>
                      <td class="actions">
                        {!key.revokedAt && (
                          <button type="button" class="btn btn-small btn-danger-outline" onClick={() => setRevoking(key)}>
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Confirm
        open={revoking !== null}
        title={`Revoke “${revoking?.label ?? ''}”?`}
        confirmLabel="Revoke key"
        danger
        onClose={() => setRevoking(null)}
        onConfirm={async () => {
          await ok(api.DELETE('/orgs/{org}/apikeys/{keyId}', { params: { path: { org, keyId: revoking!.id } } }));
          if (created?.id === revoking!.id) setCreated(null);
          keys.reload();
        }}
      >
        <p>The key stops working at once: widgets that still use it get 401 answers. This cannot be undone.</p>
      </Confirm>
    </>
  );
}

function NewKey({ onCreated }: { onCreated(key: ApiKeyWithSecret): void }) {
  const { org } = useSession();
  const [label, setLabel] = useState('');
  const [expires, setExpires] = useState('');
  const [origins, setOrigins] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);

  return (
    <form
      class="card form-grid"
      aria-label="New API key"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          // The key works through the whole day chosen.
          const allowedOrigins = origins.split(/[\s,]+/).map((o) => o.trim()).filter(Boolean);
          const body: ApiKeyCreate = { label: label.trim(), expiresAt: expires ? dayStart(expires, 1) : undefined, allowedOrigins: allowedOrigins.length ? allowedOrigins : undefined };
          onCreated(await ok(api.POST('/orgs/{org}/apikeys', { params: { path: { org } }, body })));
          setLabel('');
          setExpires('');
          setOrigins('');
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 class="form-title">New key</h2>
      <ErrorBanner error={error} />
      <Field label="Label" hint="Where the key is used, e.g. “website widget”">
        <input type="text" name="label" required maxLength={100} value={label} onInput={(e) => setLabel(e.currentTarget.value)} />
      </Field>
      <Field label="Expires after" hint="Leave empty for a key that does not expire">
        <input type="date" name="expiresAt" min={dayOf(tomorrow)} value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
      </Field>
      <Field label="Allowed browser origins" hint="One per line, e.g. https://shop.example.com. Empty: any origin" class="form-wide">
        <textarea name="allowedOrigins" rows={2} value={origins} onInput={(e) => setOrigins(e.currentTarget.value)} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}

function NewKeySecret({ apiKey, onDismiss }: { apiKey: ApiKeyWithSecret; onDismiss(): void }) {
  const { me, organization } = useSession();
  const slug = organization?.slug ?? me.organizationSlug;
  const example = `curl -X POST ${location.origin}/api/v1/orgs/${slug}/chats \\
  -H 'x-organization-api-key: ${apiKey.key}' -H 'content-type: application/json' \\
  -d '{"title":"Support chat","externalUserId":"customer-42"}'`;
  return (
    <section class="card secret" aria-labelledby="secret-title">
      <h2 id="secret-title">Copy the key “{apiKey.label}” now</h2>
      <p>It is shown only this once; ChatLogger keeps only a hash of it.</p>
      <div class="secret-row">
        <code class="secret-value" data-secret>
          {apiKey.key}
        </code>
        <CopyButton text={apiKey.key} />
      </div>
      <details>
        <summary>Send a first conversation with it</summary>
        <pre>{example}</pre>
      </details>
      <button type="button" class="btn btn-small" onClick={onDismiss}>
        I have stored it
      </button>
    </section>
  );
}
