import { Component } from 'preact';
import type { Message } from '../api.ts';
import type { Marker } from '../highlight.ts';
import { fmtCost, fmtDateTime, fmtInt, fmtMs, fmtTime, isEmptyObject, pretty } from '../format.ts';

/** OpenAI-style tool calls carry their arguments as a JSON string: shown parsed, they read like the rest. */
function readableToolCalls(calls: unknown): unknown {
  if (!Array.isArray(calls)) return calls;
  return calls.map((call) => {
    const fn = (call as { function?: { arguments?: unknown } } | null)?.function;
    if (fn && typeof fn.arguments === 'string') {
      try {
        return { ...call, function: { ...fn, arguments: JSON.parse(fn.arguments) } };
      } catch {
        // Not JSON: shown as the model wrote it.
      }
    }
    return call;
  });
}

/** A text with what the search matched marked (see highlight.ts). */
export function Highlighted({ text, terms }: { text: string; terms: Marker | null }) {
  if (!terms) return <>{text}</>;
  const parts = terms(text);
  return <>{parts.map((part, i) => (i % 2 === 1 ? <mark key={i}>{part}</mark> : part))}</>;
}

export function MessageView({ message: m, index, terms }: { message: Message; index: number; terms: Marker | null }) {
  const hasStats = m.promptTokens != null || m.completionTokens != null || m.totalTokens != null || m.latencyMs != null || m.costUsd != null;
  return (
    <article class={`msg msg-${m.role}`} aria-label={`Message ${index + 1}, ${m.role}`}>
      <header class="msg-head">
        <span class={`role role-${m.role}`}>{m.role}</span>
        {m.name && <span class="msg-name">{m.name}</span>}
        {m.model && (
          <span class="chip" title="Model">
            {m.model}
          </span>
        )}
        <span class="msg-when">
          <time dateTime={m.createdAt} title={fmtDateTime(m.createdAt)}>
            {fmtTime(m.createdAt)}
          </time>
          <span class="msg-index">#{index + 1}</span>
        </span>
      </header>
      {m.content ? (
        <div class="msg-content">
          <Highlighted text={m.content} terms={terms} />
        </div>
      ) : (
        <div class="msg-content muted">(no text)</div>
      )}
      {hasStats && (
        <dl class="msg-stats">
          {(m.promptTokens != null || m.completionTokens != null || m.totalTokens != null) && (
            <div>
              <dt>Tokens</dt>
              <dd title="prompt + completion = total">
                {fmtInt(m.promptTokens)} + {fmtInt(m.completionTokens)} = {fmtInt(m.totalTokens)}
              </dd>
            </div>
          )}
          {m.latencyMs != null && (
            <div>
              <dt>Latency</dt>
              <dd>{fmtMs(m.latencyMs)}</dd>
            </div>
          )}
          {m.costUsd != null && (
            <div>
              <dt>Cost</dt>
              <dd>{fmtCost(m.costUsd)}</dd>
            </div>
          )}
        </dl>
      )}
      {m.toolCalls != null && (
        <details class="msg-json">
          <summary>Tool calls</summary>
          <pre>{pretty(readableToolCalls(m.toolCalls))}</pre>
        </details>
      )}
      {!isEmptyObject(m.metadata) && (
        <details class="msg-json">
          <summary>Metadata</summary>
          <pre>{pretty(m.metadata)}</pre>
        </details>
      )}
    </article>
  );
}

interface BlockProps {
  messages: Message[];
  start: number;
  end: number;
  terms: Marker | null;
}

/**
 * A run of messages that is only in the DOM while near the viewport: off screen it becomes an
 * empty box of its measured height, so a chat of thousands of messages scrolls like a short one.
 */
export class MessageBlock extends Component<BlockProps, { visible: boolean; height: number }> {
  override state = { visible: true, height: 0 };
  private element: HTMLDivElement | null = null;
  private observer?: IntersectionObserver;

  override componentDidMount() {
    this.observer = new IntersectionObserver(
      (entries) => {
        // The last entry is the current state; this.state may lag behind a pending update, so
        // the observed value is always applied (an unchanged state renders nothing).
        const entry = entries[entries.length - 1];
        if (!entry || !this.element) return;
        if (entry.isIntersecting) this.setState({ visible: true });
        else this.setState({ visible: false, height: this.element.offsetHeight });
      },
      { rootMargin: '1500px 0px' },
    );
    if (this.element) this.observer.observe(this.element);
  }

  override componentWillUnmount() {
    this.observer?.disconnect();
  }

  override shouldComponentUpdate(next: BlockProps, nextState: { visible: boolean; height: number }) {
    // Messages only ever append, so a block changes only when it grows.
    return next.start !== this.props.start || next.end !== this.props.end || next.terms !== this.props.terms || nextState.visible !== this.state.visible || nextState.height !== this.state.height;
  }

  override render() {
    const { messages, start, end, terms } = this.props;
    const ref = (element: HTMLDivElement | null) => {
      this.element = element;
    };
    if (!this.state.visible) return <div ref={ref} class="msg-block" style={{ height: `${this.state.height}px` }} />;
    const slice = messages.slice(start, end);
    return (
      <div ref={ref} class="msg-block">
        {slice.map((m, i) => (
          <MessageView key={m.id} message={m} index={start + i} terms={terms} />
        ))}
      </div>
    );
  }
}
