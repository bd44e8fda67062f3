import { useMemo, useState } from 'preact/hooks';
import { api, ok, type Chat, type Message } from '../api.ts';
import { Confirm, CopyButton, Empty, ErrorBanner, Field, ListFooter, Loading } from '../components/ui.tsx';
import { fmtCost, fmtDateTime, fmtInt, isEmptyObject, parseTags, pretty } from '../format.ts';
import { useAsync, usePaged } from '../hooks.ts';
import { BASE, Link, navigate, useLocation } from '../router.tsx';
import { can, useSession } from '../session.ts';
import { MessageBlock } from './message.tsx';
import { marker } from '../highlight.ts';
import { notify } from '../notice.ts';

const PAGE = 200;
const BLOCK = 50;

export function Transcript({ id }: { id: string }) {
  const { org } = useSession();
  const { query } = useLocation();
  const q = query.get('q');
  // What the search looked for, as the API folded it (the same words it matched).
  const search = useAsync(async () => (q ? (await ok(api.GET('/orgs/{org}/chats', { params: { path: { org }, query: { q, limit: 1 } } }))).highlight : undefined), [org, q]);
  const terms = useMemo(() => marker(search.data), [search.data]);
  const chat = useAsync(() => ok(api.GET('/orgs/{org}/chats/{chatId}', { params: { path: { org, chatId: id } } })), [org, id]);
  const messages = usePaged<Message>(
    (cursor) => ok(api.GET('/orgs/{org}/chats/{chatId}/messages', { params: { path: { org, chatId: id }, query: { limit: PAGE, cursor } } })),
    [org, id],
    '2000px',
  );

  const back = (
    <Link href={q ? `${BASE}/chats?q=${encodeURIComponent(q)}` : `${BASE}/chats`} class="back-link">
      ← Conversations
    </Link>
  );
  if (chat.error) {
    return (
      <>
        {back}
        <ErrorBanner error={chat.error} onRetry={chat.reload} />
      </>
    );
  }
  if (!chat.data) return <Loading label="Loading the conversation…" />;

  const blocks: number[] = [];
  for (let start = 0; start < messages.items.length; start += BLOCK) blocks.push(start);

  return (
    <>
      {back}
      <ChatHeader chat={chat.data} onChange={chat.setData} messages={messages.items} complete={messages.done} />
      <section class="transcript" aria-label="Transcript">
        {messages.done && messages.items.length === 0 ? (
          <Empty title="This conversation has no messages yet." />
        ) : (
          blocks.map((start) => <MessageBlock key={start} messages={messages.items} start={start} end={Math.min(start + BLOCK, messages.items.length)} terms={terms} />)
        )}
      </section>
      <ListFooter loading={messages.loading} done={messages.done} error={messages.error} count={messages.items.length} noun="messages" sentinel={messages.sentinel} onRetry={messages.loadMore} />
    </>
  );
}

function ChatHeader({ chat, onChange, messages, complete }: { chat: Chat; onChange(chat: Chat): void; messages: Message[]; complete: boolean }) {
  const { me, org } = useSession();
  const [editing, setEditing] = useState(false);
  const [confirm, setConfirm] = useState<'delete' | 'erase' | null>(null);
  const totals = useMemo(() => {
    let tokens = 0;
    let cost = 0;
    for (const m of messages) {
      tokens += m.totalTokens ?? 0;
      cost += m.costUsd ?? 0;
    }
    return { tokens, cost };
  }, [messages.length]);
  const endUser = chat.externalUserId;

  return (
    <header class="chat-header card">
      {editing ? (
        <EditChat chat={chat} onDone={(updated) => { if (updated) onChange(updated); setEditing(false); }} />
      ) : (
        <>
          <div class="chat-header-top">
            <h1>{chat.title || <span class="muted">Untitled conversation</span>}</h1>
            <div class="page-actions">
              {can.editChats(me.role) && (
                <button type="button" class="btn" onClick={() => setEditing(true)}>
                  Edit
                </button>
              )}
              {can.deleteChats(me.role) && (
                <button type="button" class="btn btn-danger-outline" onClick={() => setConfirm('delete')}>
                  Delete
                </button>
              )}
            </div>
          </div>
          {chat.tags.length > 0 && (
            <div class="chat-tags">
              {chat.tags.map((tag) => (
                <Link key={tag} class="tag" href={`${BASE}/chats?tags=${encodeURIComponent(tag)}`}>
                  {tag}
                </Link>
              ))}
            </div>
          )}
        </>
      )}
      <dl class="facts">
        <div>
          <dt>Messages</dt>
          <dd>{fmtInt(chat.messageCount)}</dd>
        </div>
        <div>
          <dt>Tokens</dt>
          <dd title={complete ? undefined : `over the ${messages.length} messages loaded so far`}>
            {fmtInt(totals.tokens)}
            {complete ? '' : '+'}
          </dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd title={complete ? undefined : `over the ${messages.length} messages loaded so far`}>
            {fmtCost(totals.cost)}
            {complete ? '' : '+'}
          </dd>
        </div>
        <div>
          <dt>End user</dt>
          <dd>{endUser ? <Link href={`${BASE}/chats?user=${encodeURIComponent(endUser)}`}>{endUser}</Link> : '—'}</dd>
        </div>
        <div>
          <dt>Source</dt>
          <dd>{chat.source ?? '—'}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{fmtDateTime(chat.createdAt)}</dd>
        </div>
        <div>
          <dt>Last message</dt>
          <dd>{fmtDateTime(chat.lastMessageAt)}</dd>
        </div>
        <div>
          <dt>Chat id</dt>
          <dd class="id-cell">
            <code>{chat.id}</code> <CopyButton text={chat.id} />
          </dd>
        </div>
      </dl>
      {!isEmptyObject(chat.metadata) && (
        <details class="msg-json">
          <summary>Chat metadata</summary>
          <pre>{pretty(chat.metadata)}</pre>
        </details>
      )}
      {endUser && can.manageEndUsers(me.role) && (
        <div class="end-user-actions">
          <a class="btn btn-small" href={`/orgs/${encodeURIComponent(org)}/end-users/${encodeURIComponent(endUser)}/export`} download>
            Download all data of {endUser}
          </a>
          <button type="button" class="btn btn-small btn-danger-outline" onClick={() => setConfirm('erase')}>
            Erase {endUser}…
          </button>
        </div>
      )}
      {can.deleteChats(me.role) && (
        <Confirm
          open={confirm === 'delete'}
          title="Delete this conversation?"
          confirmLabel="Delete conversation"
          danger
          onClose={() => setConfirm(null)}
          onConfirm={async () => {
            await ok(api.DELETE('/orgs/{org}/chats/{chatId}', { params: { path: { org, chatId: chat.id } } }));
            navigate(`${BASE}/chats`);
          }}
        >
          <p>The chat and its {fmtInt(chat.messageCount)} messages are deleted for good.</p>
        </Confirm>
      )}
      {endUser && can.manageEndUsers(me.role) && (
        <Confirm
          open={confirm === 'erase'}
          title={`Erase everything of ${endUser}?`}
          confirmLabel="Erase end user"
          danger
          onClose={() => setConfirm(null)}
          onConfirm={async () => {
            const result = await ok(api.DELETE('/orgs/{org}/end-users/{externalUserId}', { params: { path: { org, externalUserId: endUser } } }));
            navigate(`${BASE}/chats`);
            notify(`Erased ${result.chats} conversations and ${result.messages} messages of ${result.externalUserId}.`);
          }}
        >
          <p>
            Every conversation of this end user in this organization is deleted, with its messages. The audit log keeps a record of the erasure.
          </p>
        </Confirm>
      )}
    </header>
  );
}

function EditChat({ chat, onDone }: { chat: Chat; onDone(updated?: Chat): void }) {
  const { org } = useSession();
  const [title, setTitle] = useState(chat.title ?? '');
  const [tags, setTags] = useState(chat.tags.join(', '));
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="edit-chat"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          const updated = await ok(api.PATCH('/orgs/{org}/chats/{chatId}', { params: { path: { org, chatId: chat.id } }, body: { title: title.trim() || null, tags: parseTags(tags) } }));
          onDone(updated);
        } catch (e) {
          setError(e);
          setBusy(false);
        }
      }}
    >
      <ErrorBanner error={error} />
      <Field label="Title">
        <input type="text" value={title} maxLength={500} onInput={(e) => setTitle(e.currentTarget.value)} />
      </Field>
      <Field label="Tags" hint="Separated by commas">
        <input type="text" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          Save
        </button>
        <button type="button" class="btn" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

