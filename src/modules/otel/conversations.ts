import type { components } from '../../generated/openapi.ts';
import { validateRequest } from '../../http/contract.ts';
import { HttpError } from '../../http/problem.ts';
import { EVENT_TIME_RULE, isPlausibleEventMicros } from '../../http/time.ts';
import type { Attributes, Span } from './otlp.ts';
import { conversationIdOf, finishReasons, userIdOf, viewOf, UnreadableSpan, type Entry, type SpanView } from './span-views.ts';

type ChatCreate = components['schemas']['ChatCreate'];
type MessageCreate = components['schemas']['MessageCreate'];

/*
 * Spans in, conversations out: pure, so every hard case is testable without a server.
 *
 * Identity is what makes re-sent data harmless. Every LLM call re-sends the whole history, an
 * agent span repeats what its model calls said, exporters retry: the same message arrives many
 * times, and must be stored once. So ids are derived, never drawn:
 * - a chat is UUIDv5(NAMESPACE, "conversation:" + its conversation id), or "trace:" + the trace
 *   id when no span of it names a conversation;
 * - a tool's result is UUIDv5(NAMESPACE, chat id + "/tool-result/" + the tool call id), so the
 *   tool span and the next call's history agree whatever text each one shows;
 * - any other message is UUIDv5(NAMESPACE, chat id + "/" + SHA-256(role, text, tool calls) + "/"
 *   + n), n counting the earlier messages with the same role and content in the span's own view
 *   of the conversation. Positions are deliberately left out: an agent span shows the user's
 *   question and the final answer without the steps in between, and histories get trimmed.
 * Storing a message whose id exists already writes nothing, so a retry, a repeat and an overlap
 * all come down to appending what is new. Within one request, when several spans show the same
 * message, the model call that produced it wins (its usage, model and latency), then the
 * earliest sighting; across requests the first stored is kept.
 */
export const NAMESPACE = '1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b';

export interface Conversation {
  chat: ChatCreate & { id: string };
  /** Ready for the append, each with its id and createdAt; in conversation order. */
  messages: (MessageCreate & { id: string; createdAt: string })[];
  /** The spans whose content this conversation holds (all are rejected if it cannot be stored). */
  spanIds: string[];
}

export interface Mapping {
  conversations: Conversation[];
  rejected: { spanId: string; reason: string }[];
}

const namespaceBytes = Buffer.from(NAMESPACE.replaceAll('-', ''), 'hex');

/** RFC 9562 name-based UUID, version 5 (SHA-1). */
export function uuidV5(name: string): string {
  const hash = new Bun.CryptoHasher('sha1').update(namespaceBytes).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const chatIdOf = (conversation: { id: string } | { traceId: string }) =>
  uuidV5('id' in conversation ? `conversation:${conversation.id}` : `trace:${conversation.traceId}`);

/** What identifies a message's content: its role, text and tool calls. */
function contentOf(entry: Entry): string {
  const calls = entry.toolCalls.map((call) => call.id ?? `${call.name}(${call.arguments})`).join('\u0000');
  return `${entry.role}\u0000${entry.text}\u0000${calls}`;
}

/**
 * A message's id from its identity (see the top of this file). Only the sighting kept for each
 * message is hashed: a request's spans show every message many times.
 */
function messageId(chatId: string, identity: Sighting['identity']): string {
  if ('toolCallId' in identity) return uuidV5(`${chatId}/tool-result/${identity.toolCallId}`);
  const digest = new Bun.CryptoHasher('sha256').update(identity.content).digest('hex');
  return uuidV5(`${chatId}/${digest}/${identity.n}`);
}

// Which sighting of a message describes it best.
const PRIORITY = { llmOutput: 5, toolOutput: 4, llmInput: 3, wrapperOutput: 2, wrapperInput: 1 } as const;

interface Sighting {
  /** Equal for every sighting of one message (within its chat). */
  key: string;
  identity: { toolCallId: string } | { content: string; n: number };
  entry: Entry;
  view: SpanView;
  priority: number;
  /** Microseconds since the epoch. */
  at: bigint;
  /** The first output of an LLM call carries the call's usage, latency and cost. */
  carriesUsage: boolean;
  finishReason: string | null;
}

const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/;
const SPAN_ID = /^(?!0{16})[0-9a-f]{16}$/;

function invalidSpan(span: Span): string | null {
  if (!TRACE_ID.test(span.traceId)) return 'invalid trace id';
  if (!SPAN_ID.test(span.spanId)) return 'invalid span id';
  if (span.startUnixNano <= 0n || span.endUnixNano <= 0n) return 'missing start or end time';
  if (span.endUnixNano < span.startUnixNano) return 'ends before it starts';
  // The window of client event times (src/http/time.ts), as for a message's createdAt.
  if (!isPlausibleEventMicros(span.startUnixNano / 1000n) || !isPlausibleEventMicros(span.endUnixNano / 1000n)) return `time out of range (${EVENT_TIME_RULE})`;
  return null;
}

/** The conversation of a span: its own id, else its nearest ancestor's in the request, else the trace's. */
function conversationResolver(spans: Span[]) {
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  const perTrace = new Map<string, Set<string>>();
  for (const span of spans) {
    const own = conversationIdOf(span.attributes);
    if (!own) continue;
    let ids = perTrace.get(span.traceId);
    if (!ids) perTrace.set(span.traceId, (ids = new Set()));
    ids.add(own.id);
  }
  const inherited = (span: Span, read: (a: Attributes) => string | null): string | null => {
    for (let current: Span | undefined = span, hops = 0; current && hops < 64; current = current.parentSpanId ? byId.get(current.parentSpanId) : undefined, hops++) {
      const value = read(current.attributes);
      if (value) return value;
    }
    return null;
  };
  return {
    conversation(span: Span): { chatId: string; label: Record<string, string> } {
      const own = inherited(span, (a) => conversationIdOf(a)?.id ?? null);
      // A trace that names exactly one conversation: its other spans belong to it too.
      const traceIds = perTrace.get(span.traceId);
      const id = own ?? (traceIds?.size === 1 ? [...traceIds][0]! : null);
      if (id) return { chatId: chatIdOf({ id }), label: { 'gen_ai.conversation.id': id } };
      return { chatId: chatIdOf({ traceId: span.traceId }), label: { trace_id: span.traceId } };
    },
    userId: (span: Span) => inherited(span, userIdOf),
  };
}

const micros = (nanos: bigint) => nanos / 1000n;

/** RFC 3339 with microseconds, from microseconds since the epoch. */
function isoMicros(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 23)}${String(us % 1000n).padStart(3, '0')}Z`;
}

function sightingsOf(view: SpanView): Sighting[] {
  const { span, kind } = view;
  const inputs = view.entries.filter((e) => e.side === 'input');
  const start = micros(span.startUnixNano);
  const end = micros(view.outputUnixNano);
  const reasons = finishReasons(span.attributes);
  const occurrences = new Map<string, number>();
  const seenResults = new Set<string>();
  const sightings: Sighting[] = [];
  let inputIndex = 0;
  let outputIndex = 0;
  for (const entry of view.entries) {
    let key: string;
    let identity: Sighting['identity'];
    if (entry.role === 'tool' && entry.toolCallId) {
      if (seenResults.has(entry.toolCallId)) continue;
      seenResults.add(entry.toolCallId);
      key = `tool-result\u0000${entry.toolCallId}`;
      identity = { toolCallId: entry.toolCallId };
    } else {
      const content = contentOf(entry);
      const n = occurrences.get(content) ?? 0;
      occurrences.set(content, n + 1);
      key = `${n}\u0000${content}`;
      identity = { content, n };
    }
    // Inputs were said before the call started, in order; outputs when it ended.
    const isInput = entry.side === 'input';
    const at = isInput ? start - BigInt(inputs.length - 1 - inputIndex++) : end + BigInt(outputIndex++);
    const priority =
      kind === 'tool' ? PRIORITY.toolOutput : kind === 'llm' ? (isInput ? PRIORITY.llmInput : PRIORITY.llmOutput) : isInput ? PRIORITY.wrapperInput : PRIORITY.wrapperOutput;
    const isFirstOutput = !isInput && outputIndex === 1;
    sightings.push({
      key,
      identity,
      entry,
      view,
      priority,
      at,
      carriesUsage: kind === 'llm' && isFirstOutput && entry.role === 'assistant',
      finishReason: entry.finishReason ?? (isInput ? null : (reasons[outputIndex - 1] ?? null)),
    });
  }
  return sightings;
}

/**
 * A tool's result comes after the message that asked for it, even when the tool's span ended
 * before the span of the model call that asked (clocks, or a call span that outlasts its tools).
 */
function resultsAfterCalls(best: Map<string, Sighting>): void {
  const askedAt = new Map<string, bigint>();
  for (const s of best.values()) for (const call of s.entry.toolCalls) if (call.id) askedAt.set(call.id, s.at);
  let shift = 0n;
  for (const [id, s] of best) {
    const asked = s.entry.toolCallId ? askedAt.get(s.entry.toolCallId) : undefined;
    if (asked !== undefined && s.at <= asked) best.set(id, { ...s, at: asked + 1n + shift++ });
  }
}

/**
 * The conversation in order, each message strictly after the one before. Each span's view fixes
 * the order of what it shows (a later call's history puts the previous answer before the new
 * question); times only order what no view relates. Span clocks cannot do it alone: SDKs take a
 * span's start from the millisecond clock and its end from a finer one, so a call may seem to
 * start before the previous one ended.
 */
function inOrder(best: Map<string, Sighting>, views: Sighting[][]): Sighting[] {
  const after = new Map<string, Set<string>>();
  const waiting = new Map<string, number>([...best.keys()].map((key) => [key, 0]));
  for (const view of views) {
    for (let i = 1; i < view.length; i++) {
      const [from, to] = [view[i - 1]!.key, view[i]!.key];
      if (from === to) continue;
      let next = after.get(from);
      if (!next) after.set(from, (next = new Set()));
      if (next.has(to)) continue;
      next.add(to);
      waiting.set(to, waiting.get(to)! + 1);
    }
  }
  const rank = (s: Sighting) => (s.entry.side === 'output' ? 0 : 1);
  const earlier = (a: Sighting, b: Sighting) => a.at < b.at || (a.at === b.at && rank(a) < rank(b));
  const ordered: Sighting[] = [];
  const left = new Set(best.keys());
  let last: bigint | null = null;
  while (left.size) {
    // The earliest message nothing unplaced must precede; on a cycle (views that disagree), the earliest.
    let pick: Sighting | undefined;
    let fallback: Sighting | undefined;
    for (const key of left) {
      const s = best.get(key)!;
      if (!fallback || earlier(s, fallback)) fallback = s;
      if (waiting.get(key) === 0 && (!pick || earlier(s, pick))) pick = s;
    }
    const chosen = pick ?? fallback!;
    left.delete(chosen.key);
    for (const next of after.get(chosen.key) ?? []) waiting.set(next, waiting.get(next)! - 1);
    const at: bigint = last !== null && chosen.at <= last ? last + 1n : chosen.at;
    last = at;
    ordered.push(at === chosen.at ? chosen : { ...chosen, at });
  }
  return ordered;
}

const better = (a: Sighting, b: Sighting) => a.priority > b.priority || (a.priority === b.priority && a.at < b.at);

// The contract's limits (openapi.yaml): data past them is cut rather than refused, because the
// same history comes back with every later call and refusing it would stop the conversation.
const MAX_CONTENT = 262_144;
const MAX_NAME = 128;
const MAX_TOOL_CALLS_BYTES = 65_536;
const MAX_METADATA_BYTES = 16_384;
const MAX_INT = 2_147_483_647;
const MAX_TITLE = 200;
const MAX_ATTACHMENTS = 20;

/** Text PostgreSQL can store: no NUL, well-formed UTF-16. */
const storable = (text: string) => (text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text).toWellFormed();
const cut = (text: string, max: number) => (text.length > max ? text.slice(0, max).toWellFormed() : text);
const int = (value: number | null) => (value !== null && Number.isInteger(value) && value >= 0 && value <= MAX_INT ? value : null);

function toolCallsOf(entry: Entry): { value: unknown; truncated: boolean } {
  if (!entry.toolCalls.length) return { value: undefined, truncated: false };
  const calls = entry.toolCalls.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: storable(cut(call.name, MAX_NAME)), arguments: storable(call.arguments) },
  }));
  if (Buffer.byteLength(JSON.stringify(calls)) <= MAX_TOOL_CALLS_BYTES) return { value: calls, truncated: false };
  // Too large: each call keeps an equal share of the arguments' text.
  const share = Math.floor((MAX_TOOL_CALLS_BYTES - 512 * calls.length) / calls.length / 6);
  for (const call of calls) call.function.arguments = cut(call.function.arguments, Math.max(0, share));
  return { value: calls, truncated: true };
}

function messageOf(chatId: string, best: Sighting): MessageCreate & { id: string; createdAt: string } {
  const { entry, view } = best;
  const span = view.span;
  const content = storable(entry.text);
  const toolCalls = toolCallsOf(entry);
  const metadata: Record<string, unknown> = { traceId: span.traceId, spanId: span.spanId };
  if (entry.toolCallId) metadata.toolCallId = storable(cut(entry.toolCallId, MAX_NAME));
  if (best.finishReason) metadata.finishReason = storable(cut(best.finishReason, MAX_NAME));
  if (view.provider && entry.role === 'assistant' && entry.side === 'output') metadata.provider = storable(cut(view.provider, MAX_NAME));
  if (entry.attachments.length) {
    metadata.attachments = entry.attachments.slice(0, MAX_ATTACHMENTS).map((a) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, storable(cut(v, 512))])));
  }
  if (content.length > MAX_CONTENT || toolCalls.truncated) metadata.truncated = true;
  const usage = best.carriesUsage;
  const produced = entry.side === 'output' && entry.role === 'assistant';
  return {
    id: messageId(chatId, best.identity),
    role: entry.role,
    content: cut(content, MAX_CONTENT),
    name: entry.name ? storable(cut(entry.name, MAX_NAME)) : null,
    model: produced && view.model ? storable(cut(view.model, MAX_NAME)) : null,
    promptTokens: usage ? int(view.promptTokens) : null,
    completionTokens: usage ? int(view.completionTokens) : null,
    latencyMs: usage || view.kind === 'tool' ? int(Math.round(Number(view.outputUnixNano - span.startUnixNano) / 1e6)) : null,
    costUsd: usage && view.costUsd !== null && view.costUsd >= 0 && view.costUsd <= 1e9 ? view.costUsd : null,
    ...(toolCalls.value === undefined ? {} : { toolCalls: toolCalls.value }),
    metadata,
    createdAt: isoMicros(best.at),
  };
}

/** Resource and span attributes worth keeping on the chat (by their OpenTelemetry names). */
const RESOURCE_KEPT = ['service.version', 'service.namespace', 'deployment.environment.name', 'deployment.environment'];
const SPAN_KEPT = ['gen_ai.agent.name', 'gen_ai.agent.id', 'ai.telemetry.functionId', 'traceloop.workflow.name'];
const SPAN_KEPT_PREFIXES = ['ai.telemetry.metadata.', 'traceloop.association.properties.'];

function chatMetadata(view: SpanView, label: Record<string, string>): Record<string, unknown> {
  const { span } = view;
  const metadata: Record<string, unknown> = { ...label };
  const add = (key: string, value: unknown) => {
    if (value === undefined || value === null || key in metadata) return;
    const candidate = { ...metadata, [key]: value };
    if (Buffer.byteLength(JSON.stringify(candidate)) <= MAX_METADATA_BYTES && depth(value) <= 6) metadata[key] = value;
  };
  for (const key of RESOURCE_KEPT) add(key, span.resource[key]);
  for (const key of SPAN_KEPT) add(key, span.attributes[key]);
  for (const [key, value] of Object.entries(span.attributes)) if (SPAN_KEPT_PREFIXES.some((prefix) => key.startsWith(prefix))) add(key, value);
  // OpenInference's free-form metadata is a JSON document.
  const free = span.attributes.metadata;
  if (typeof free === 'string') {
    try {
      add('metadata', JSON.parse(free));
    } catch {
      add('metadata', free);
    }
  }
  return sanitized(metadata) as Record<string, unknown>;
}

function depth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let max = 0;
  for (const child of Object.values(value)) max = Math.max(max, depth(child));
  return max + 1;
}

function sanitized(value: unknown): unknown {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.map(sanitized);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k), sanitized(v)]));
  return value;
}

function tagsOf(a: Attributes): string[] | undefined {
  const tags = a['tag.tags'];
  if (!Array.isArray(tags)) return undefined;
  const clean = [...new Set(tags.filter((t): t is string => typeof t === 'string').map((t) => storable(t.trim())).filter((t) => t.length >= 1 && t.length <= 64))];
  return clean.length ? clean.slice(0, 32) : undefined;
}

function titleOf(sightings: Sighting[]): string | null {
  const user = sightings.find((s) => s.entry.role === 'user' && s.entry.text.trim() !== '');
  if (!user) return null;
  const line = storable(user.entry.text.trim().split('\n')[0]!.trim());
  return line.length > MAX_TITLE ? `${line.slice(0, MAX_TITLE - 1).toWellFormed()}…` : line;
}

function chatOf(chatId: string, views: SpanView[], sightings: Sighting[], label: Record<string, string>, userId: string | null): ChatCreate & { id: string } {
  // The earliest span of the conversation describes it.
  const earliest = views.reduce((a, b) => (b.span.startUnixNano < a.span.startUnixNano ? b : a));
  const service = earliest.span.resource['service.name'];
  const source = typeof service === 'string' && service.trim() !== '' ? storable(cut(service.trim(), 100)) : null;
  const ordered = [...sightings].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return {
    id: chatId,
    title: titleOf(ordered),
    tags: views.map((view) => tagsOf(view.span.attributes)).find((tags) => tags !== undefined) ?? [],
    metadata: chatMetadata(earliest, label),
    externalUserId: userId ? storable(cut(userId, 255)) : null,
    source,
  };
}

/** Spans in, conversations out (see the comment at the top for how messages are recognised). */
export function mapSpans(spans: Span[]): Mapping {
  const rejected: Mapping['rejected'] = [];
  const valid: Span[] = [];
  for (const span of spans) {
    const reason = invalidSpan(span);
    if (reason) rejected.push({ spanId: span.spanId, reason });
    else valid.push(span);
  }
  const resolver = conversationResolver(valid);
  const groups = new Map<string, { views: SpanView[]; label: Record<string, string>; userId: string | null }>();
  for (const span of valid) {
    let view: SpanView | null;
    try {
      view = viewOf(span);
    } catch (error) {
      if (!(error instanceof UnreadableSpan)) throw error;
      rejected.push({ spanId: span.spanId, reason: error.message });
      continue;
    }
    if (!view) continue;
    const { chatId, label } = resolver.conversation(span);
    let group = groups.get(chatId);
    if (!group) groups.set(chatId, (group = { views: [], label, userId: null }));
    group.views.push(view);
    group.userId ??= view.userId ?? resolver.userId(span);
  }

  const conversations: Conversation[] = [];
  for (const [chatId, { views, label, userId }] of groups) {
    const best = new Map<string, Sighting>();
    const all: Sighting[] = [];
    const sequences: Sighting[][] = [];
    for (const view of views) {
      const sequence = sightingsOf(view);
      sequences.push(sequence);
      for (const sighting of sequence) {
        all.push(sighting);
        const current = best.get(sighting.key);
        if (!current || better(sighting, current)) best.set(sighting.key, sighting);
      }
    }
    const chat = chatOf(chatId, views, all, label, userId);
    resultsAfterCalls(best);
    const messages = inOrder(best, sequences).map((sighting) => messageOf(chatId, sighting));
    const spanIds = views.map((view) => view.span.spanId);
    // The contract's own rules, as for the REST API: a conversation that breaks them is refused
    // whole (its spans are reported), never half-stored.
    const problem = contractProblem(chat, messages);
    if (problem) {
      for (const spanId of spanIds) rejected.push({ spanId, reason: problem });
      continue;
    }
    conversations.push({ chat, messages, spanIds });
  }
  return { conversations, rejected };
}

const microsOfIso = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n + BigInt(iso.slice(23, 26));

/**
 * Messages already stored keep their time (a write never changes them); the new ones of a
 * conversation are placed around them in the order this export's spans show. Without this, the
 * earlier messages that a later call's history brings would be stamped after what an earlier
 * export stored (a tool's result stored from its own span, before the call that asked for it).
 */
export function placeAmongStored(conversation: Conversation, storedMicros: ReadonlyMap<string, bigint>): Conversation {
  const messages = conversation.messages;
  const times = messages.map((m) => storedMicros.get(m.id) ?? null);
  if (times.every((t) => t === null)) return conversation;
  const placed = messages.map((m) => microsOfIso(m.createdAt));
  let i = 0;
  while (i < messages.length) {
    if (times[i] !== null) {
      i++;
      continue;
    }
    let end = i;
    while (end + 1 < messages.length && times[end + 1] === null) end++;
    const lower = i > 0 ? times[i - 1]! : null;
    const upper = end + 1 < messages.length ? times[end + 1]! : null;
    let previous = lower;
    for (let k = i; k <= end; k++) {
      if (previous !== null && placed[k]! <= previous) placed[k] = previous + 1n;
      previous = placed[k]!;
    }
    if (upper !== null && placed[end]! >= upper) {
      for (let k = i; k <= end; k++) placed[k] = upper - BigInt(end - k + 1);
    }
    i = end + 1;
  }
  return { ...conversation, messages: messages.map((m, k) => (times[k] === null ? { ...m, createdAt: isoMicros(placed[k]!) } : m)) };
}

function contractProblem(chat: ChatCreate, messages: MessageCreate[]): string | null {
  try {
    validateRequest('createChat', { body: chat, query: {} });
    for (const message of messages) validateRequest('createMessage', { body: message, query: {} });
    return null;
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    const first = error.errors?.[0];
    return first ? `${first.pointer.replace(/^\/body/, '') || 'message'} ${first.message}` : error.message;
  }
}
