import { useEffect, useState } from 'preact/hooks';
import { api, ok, type Schemas } from '../api.ts';
import { ErrorBanner, Field, Loading, PageHeader } from '../components/ui.tsx';
import { fmtDateTime } from '../format.ts';
import { useSession } from '../session.ts';

export function Settings() {
  const { org, me, organization, reloadOrganization } = useSession();
  const [name, setName] = useState('');
  const [keepForever, setKeepForever] = useState(true);
  const [days, setDays] = useState('365');
  const [active, setActive] = useState(true);
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!organization) return;
    setName(organization.name);
    setKeepForever(organization.settings.retentionDays === null);
    setDays(String(organization.settings.retentionDays ?? 365));
    setActive(organization.active);
  }, [organization]);

  if (!organization) return <Loading />;
  // Nobody deactivates their own organization; only a superadmin changes the flag at all.
  const canToggleActive = me.role === 'superadmin' && organization.id !== me.organizationId;

  return (
    <>
      <PageHeader title="Settings" subtitle={`Organization ${organization.slug}, created ${fmtDateTime(organization.createdAt)}.`} />
      <form
        class="card form-stack"
        aria-label="Organization settings"
        onSubmit={async (event) => {
          event.preventDefault();
          setBusy(true);
          setError(undefined);
          setSaved(false);
          try {
            const body: Schemas['OrganizationUpdate'] = {
              name: name.trim(),
              settings: { retentionDays: keepForever ? null : Number(days) },
            };
            if (canToggleActive && active !== organization.active) body.active = active;
            await ok(api.PATCH('/orgs/{org}', { params: { path: { org } }, body }));
            setSaved(true);
            reloadOrganization();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <ErrorBanner error={error} />
        {saved && (
          <p class="banner banner-success" role="status">
            Settings saved.
          </p>
        )}
        <Field label="Name">
          <input type="text" name="name" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <fieldset class="fieldset">
          <legend>Retention</legend>
          <label class="radio">
            <input type="radio" name="retention" checked={keepForever} onChange={() => setKeepForever(true)} />
            Keep conversations forever
          </label>
          <label class="radio">
            <input type="radio" name="retention" checked={!keepForever} onChange={() => setKeepForever(false)} />
            Delete conversations inactive for more than
            <input
              type="number"
              name="retentionDays"
              class="input-inline"
              min={1}
              max={36500}
              required={!keepForever}
              disabled={keepForever}
              value={days}
              aria-label="Retention in days"
              onInput={(e) => setDays(e.currentTarget.value)}
            />
            days
          </label>
          <p class="field-hint">A background task deletes them with their messages, and records each purge in the audit log.</p>
        </fieldset>
        {canToggleActive && (
          <label class="checkbox">
            <input type="checkbox" name="active" checked={active} onChange={(e) => setActive(e.currentTarget.checked)} />
            Active (a deactivated organization keeps its data; its users and API keys stop working)
          </label>
        )}
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save settings'}
          </button>
        </div>
      </form>
    </>
  );
}
