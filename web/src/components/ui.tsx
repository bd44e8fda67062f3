import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.ts';

export function ErrorBanner({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const fields = error instanceof ApiError ? error.fieldErrors : [];
  return (
    <div class="banner banner-error" role="alert">
      <div>
        <strong>{message}</strong>
        {fields.length > 0 && (
          <ul class="field-errors">
            {fields.map((f) => (
              <li key={f.pointer}>
                {f.pointer ? <code>{f.pointer.replace(/^\/(body|query)\//, '')}</code> : null} {f.message}
              </li>
            ))}
          </ul>
        )}
      </div>
      {onRetry && (
        <button type="button" class="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function PageHeader({ title, subtitle, children }: { title: ComponentChildren; subtitle?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <div class="page-heading">
        <h1>{title}</h1>
        {subtitle && <p class="subtitle">{subtitle}</p>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}

export function Field({ label, hint, children, class: className }: { label: string; hint?: ComponentChildren; children: ComponentChildren; class?: string }) {
  return (
    <label class={`field ${className ?? ''}`}>
      <span class="field-label">{label}</span>
      {children}
      {hint && <span class="field-hint">{hint}</span>}
    </label>
  );
}

export function Badge({ children, tone = 'neutral', title }: { children: ComponentChildren; tone?: string; title?: string }) {
  return (
    <span class={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

/**
 * A modal confirmation (the native <dialog>: focus is trapped and Escape cancels). `onConfirm`
 * may throw; its message is shown in the dialog.
 */
export function Confirm({
  open,
  title,
  children,
  confirmLabel,
  danger = false,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      setError(undefined);
      dialog.showModal();
    } else if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog" onClose={onClose} aria-labelledby={titleId}>
      <form
        method="dialog"
        onSubmit={async (event) => {
          event.preventDefault();
          setBusy(true);
          try {
            await onConfirm();
            onClose();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h2 id={titleId}>{title}</h2>
        {children && <div class="dialog-body">{children}</div>}
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class={danger ? 'btn btn-danger' : 'btn btn-primary'} disabled={busy}>
            {confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="btn btn-small"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        } catch {
          // Clipboard access can be refused; the text stays selectable.
        }
      }}
    >
      {copied ? 'Copied' : label}
    </button>
  );
}

/** The sentinel and status line at the end of an infinitely scrolled list. */
export function ListFooter({ loading, done, error, count, noun, sentinel, onRetry }: { loading: boolean; done: boolean; error?: Error; count: number; noun: string; sentinel(el: Element | null): void; onRetry(): void }) {
  return (
    <div class="list-footer">
      <div ref={sentinel} class="sentinel" aria-hidden="true" />
      <ErrorBanner error={error} onRetry={onRetry} />
      {loading ? <Loading label={count ? `Loading more ${noun}…` : `Loading ${noun}…`} /> : done && count > 0 ? <span class="muted">{count === 1 ? `The only ${noun.replace(/s$/, '')}` : `All ${count.toLocaleString()} ${noun}`} shown</span> : null}
      {!loading && !done && !error && count > 0 && (
        <button type="button" class="btn btn-small" onClick={onRetry}>
          Load more
        </button>
      )}
    </div>
  );
}
