import { useEffect, useState } from 'preact/hooks';
import { api, ok, type Chat } from '../api.ts';
import { Empty, ErrorBanner, Field, ListFooter, PageHeader } from '../components/ui.tsx';
import { dayStart, fmtInt, fmtRelative, fmtDateTime } from '../format.ts';
import { usePaged } from '../hooks.ts';
import { BASE, Link, navigate, useLocation, withQuery } from '../router.tsx';
import { can, useSession } from '../session.ts';
import { marker, type Marker } from '../highlight.ts';
import { Highlighted } from './message.tsx';

interface Filters {
  q: string;
  tags: string;
  mode: string;
  from: string;
  to: string;
  user: string;
  source: string;
}

const FILTER_KEYS = ['q', 'tags', 'mode', 'from', 'to', 'user', 'source'] as const;
const readFilters = (query: URLSearchParams): Filters => ({
  q: query.get('q') ?? '',
  tags: query.get('tags') ?? '',
  mode: query.get('mode') ?? 'any',
  from: query.get('from') ?? '',
  to: query.get('to') ?? '',
  user: query.get('user') ?? '',
  source: query.get('source') ?? '',
});

/** Marks the first rows on screen once per page load, for measuring time to first render. */
let firstRowsMarked = false;

export function Conversations() {
  const { org, me } = useSession();
  const { query } = useLocation();
  const applied = readFilters(query);
  const key = FILTER_KEYS.map((k) => applied[k]).join('\u0000');
  const [draft, setDraft] = useState<Filters>(applied);
  useEffect(() => setDraft(applied), [key]);

  const [terms, setTerms] = useState<Marker | null>(null);
  const list = usePaged<Chat>(
    (cursor) =>
      ok(
        api.GET('/orgs/{org}/chats', {
          params: {
            path: { org },
            query: {
              limit: 50,
              cursor,
              q: applied.q.trim() || undefined,
              tags: applied.tags.split(',').map((t) => t.trim()).filter(Boolean).join(',') || undefined,
              tagMode: applied.mode === 'all' ? 'all' : undefined,
              from: applied.from ? dayStart(applied.from) : undefined,
              to: applied.to ? dayStart(applied.to, 1) : undefined,
              externalUserId: applied.user.trim() || undefined,
              source: applied.source.trim() || undefined,
            },
          },
        }),
      ).then((page) => {
        // Every page of a search carries the same terms; the first sets them.
        if (!cursor) setTerms(() => marker(page.highlight));
        return page;
      }),
    [org, key],
  );

  useEffect(() => {
    if (!firstRowsMarked && list.items.length > 0) {
      firstRowsMarked = true;
      performance.mark('chatlogger:first-chat-rows');
    }
  }, [list.items.length]);

  const filtered = FILTER_KEYS.some((k) => k !== 'mode' && applied[k]);
  const activeFilters = (['tags', 'from', 'to', 'user', 'source'] as const).filter((k) => applied[k]).length;
  const [moreOpen, setMoreOpen] = useState(false);
  const apply = (filters: Filters) => navigate(withQuery(`${BASE}/chats`, { ...filters, mode: filters.tags && filters.mode === 'all' ? 'all' : undefined }), { replace: false });
  const addTag = (tag: string) => {
    const tags = new Set(applied.tags.split(',').map((t) => t.trim()).filter(Boolean));
    tags.add(tag);
    apply({ ...applied, tags: [...tags].join(', ') });
  };

  return (
    <>
      <PageHeader title="Conversations" subtitle="Every chat your widgets and assistants logged, newest activity first." />
      <form
        class={`filters card ${moreOpen ? 'filters-open' : ''}`}
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          apply(draft);
        }}
      >
        <Field label="Search" class="field-grow">
          <input type="search" name="q" placeholder='Words in titles and messages: refund "credit card" -spam' value={draft.q} maxLength={200} onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })} />
        </Field>
        <div class="filter-actions">
          <button type="submit" class="btn btn-primary">
            Search
          </button>
          <button type="button" class="btn filters-toggle" aria-expanded={moreOpen} onClick={() => setMoreOpen(!moreOpen)}>
            Filters{activeFilters ? ` (${activeFilters})` : ''}
          </button>
          {filtered && (
            <button type="button" class="btn" onClick={() => navigate(`${BASE}/chats`)}>
              Clear
            </button>
          )}
        </div>
        <Field label="Tags" class="filter-more">
          <input type="text" name="tags" placeholder="billing, vip" value={draft.tags} onInput={(e) => setDraft({ ...draft, tags: e.currentTarget.value })} />
        </Field>
        <Field label="Match" class="filter-more">
          <select name="mode" value={draft.mode} onChange={(e) => setDraft({ ...draft, mode: e.currentTarget.value })}>
            <option value="any">any tag</option>
            <option value="all">all tags</option>
          </select>
        </Field>
        <Field label="Active from" class="filter-more">
          <input type="date" name="from" value={draft.from} onInput={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
        </Field>
        <Field label="Active until" class="filter-more">
          <input type="date" name="to" value={draft.to} onInput={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
        </Field>
        <Field label="End user" class="filter-more">
          <input type="text" name="user" placeholder="customer-42" value={draft.user} onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })} />
        </Field>
        <Field label="Source" class="filter-more">
          <input type="text" name="source" placeholder="my-llm-app" value={draft.source} onInput={(e) => setDraft({ ...draft, source: e.currentTarget.value })} />
        </Field>
      </form>

      {list.items.length === 0 && list.error ? (
        <ErrorBanner error={list.error} onRetry={list.loadMore} />
      ) : list.items.length === 0 && list.done ? (
        filtered ? (
          <Empty title="No conversation matches these filters.">
            <button type="button" class="btn" onClick={() => navigate(`${BASE}/chats`)}>
              Clear the filters
            </button>
          </Empty>
        ) : (
          <Empty title="No conversations yet.">
            <p>
              Conversations appear here as soon as a chat widget or assistant sends them with an API key
              {can.manageKeys(me.role) ? (
                <>
                  {' '}
                  (<Link href={`${BASE}/keys`}>create one</Link>)
                </>
              ) : null}
              .
            </p>
          </Empty>
        )
      ) : (
        <ul class="chat-list" aria-label="Conversations" aria-busy={list.loading}>
          {list.items.map((chat) => (
            <ChatRow key={chat.id} chat={chat} q={applied.q} terms={terms} onTag={addTag} />
          ))}
        </ul>
      )}
      {(list.items.length > 0 || list.loading) && (
        <ListFooter loading={list.loading} done={list.done} error={list.items.length ? list.error : undefined} count={list.items.length} noun="conversations" sentinel={list.sentinel} onRetry={list.loadMore} />
      )}
    </>
  );
}

function ChatRow({ chat, q, terms, onTag }: { chat: Chat; q: string; terms: Marker | null; onTag(tag: string): void }) {
  const href = withQuery(`${BASE}/chats/${chat.id}`, { q: q || undefined });
  const activity = chat.lastMessageAt ?? chat.createdAt;
  return (
    <li class="chat-row">
      <Link href={href} class="chat-link">
        <span class="chat-title">{chat.title ? <Highlighted text={chat.title} terms={terms} /> : <span class="muted">Untitled conversation</span>}</span>
        <span class="chat-meta">
          {chat.externalUserId && <span class="chat-user" title="End user">{chat.externalUserId}</span>}
          {chat.source && <span class="chat-source" title="Source">{chat.source}</span>}
          <span>{fmtInt(chat.messageCount)} messages</span>
        </span>
        <time class="chat-time" dateTime={activity} title={fmtDateTime(activity)}>
          {fmtRelative(activity)}
        </time>
      </Link>
      {chat.tags.length > 0 && (
        <span class="chat-tags">
          {chat.tags.map((tag) => (
            <button type="button" key={tag} class="tag" title={`Filter by ${tag}`} onClick={() => onTag(tag)}>
              {tag}
            </button>
          ))}
        </span>
      )}
    </li>
  );
}

