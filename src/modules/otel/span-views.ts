import type { AttributeValue, Attributes, Span } from './otlp.ts';

/*
 * What one span says about a conversation, whichever instrumentation wrote it: the messages it
 * saw (input) and produced (output), in the order the model saw them, plus model, usage and the
 * conversation and end-user ids. Formats read, first match wins:
 * - GenAI semantic conventions: gen_ai.system_instructions, gen_ai.input.messages,
 *   gen_ai.output.messages (on the span or its gen_ai.client.inference.operation.details event);
 * - OpenInference: llm.input_messages.N.message.*, llm.output_messages.N.message.*;
 * - the older flattened GenAI form (OpenLLMetry): gen_ai.prompt.N.*, gen_ai.completion.N.*;
 * - the Vercel AI SDK's own spans: ai.prompt.messages / ai.prompt, ai.response.text and toolCalls;
 * - the older GenAI events: gen_ai.content.prompt / gen_ai.content.completion, and the
 *   per-message events gen_ai.{system,user,assistant,tool}.message and gen_ai.choice;
 * - tool execution spans (execute_tool, ai.toolCall, OpenInference TOOL): the tool's result.
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool' | 'function';

export interface ToolCall {
  id: string | null;
  name: string;
  arguments: string;
}

export interface Attachment {
  type: string;
  mimeType?: string;
  uri?: string;
}

/** One message as a span shows it. */
export interface Entry {
  role: Role;
  text: string;
  toolCalls: ToolCall[];
  /** For a tool's result: the call it answers. */
  toolCallId: string | null;
  name: string | null;
  finishReason: string | null;
  attachments: Attachment[];
  /** Seen by the model (input), or produced by this span (output). */
  side: 'input' | 'output';
}

/**
 * - llm: one model call (the usage, latency and model of its output are that call's);
 * - wrapper: an agent or workflow around model calls (repeats their messages; its usage is a sum);
 * - tool: one tool execution.
 */
export type SpanKind = 'llm' | 'wrapper' | 'tool';

export interface SpanView {
  span: Span;
  kind: SpanKind;
  entries: Entry[];
  conversationId: string | null;
  conversationSource: string | null;
  userId: string | null;
  model: string | null;
  provider: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  /** When the output was produced (ns): the span's end, or the response time it records. */
  outputUnixNano: bigint;
}

/** A span whose conversation data cannot be read (its spans are reported as rejected). */
export class UnreadableSpan extends Error {}

const str = (value: AttributeValue | undefined): string | null => (typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : null);
const num = (value: AttributeValue | undefined): number | null => {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : null;
};
const first = <T>(...values: (T | null | undefined)[]): T | null => values.find((v) => v !== null && v !== undefined) ?? null;
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON-valued attribute: SDKs send a JSON string, or (where supported) the structure itself. */
function structured(value: AttributeValue | undefined, what: string): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    throw new UnreadableSpan(`${what} is not valid JSON`);
  }
}

function messageArray(value: AttributeValue | undefined, what: string): unknown[] {
  const parsed = structured(value, what);
  if (!Array.isArray(parsed)) throw new UnreadableSpan(`${what} is not a JSON array of messages`);
  return parsed;
}

/** Attributes `prefix.N.rest` grouped by N, in index order, each as { rest: value }. */
function indexed(attributes: Attributes, prefix: string): Attributes[] {
  const groups = new Map<number, Attributes>();
  for (const [key, value] of Object.entries(attributes)) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const dot = rest.indexOf('.');
    if (dot <= 0) continue;
    const index = Number(rest.slice(0, dot));
    if (!Number.isInteger(index) || index < 0) continue;
    let group = groups.get(index);
    if (!group) groups.set(index, (group = {}));
    group[rest.slice(dot + 1)] = value;
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
}

const ROLES: Record<string, Role> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  human: 'user',
  assistant: 'assistant',
  model: 'assistant',
  ai: 'assistant',
  tool: 'tool',
  ipython: 'tool',
  function: 'function',
};

function roleOf(value: unknown, fallback: Role | null): Role {
  if (value === undefined || value === null || value === '') {
    if (fallback) return fallback;
    throw new UnreadableSpan('a message has no role');
  }
  const role = ROLES[String(value).toLowerCase()];
  if (!role) throw new UnreadableSpan(`a message has the unknown role "${String(value)}"`);
  return role;
}

const asText = (value: unknown): string => (typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value));

/** A tool result as text: Vercel wraps it as { type: 'text' | 'json' | ..., value }. */
function resultText(value: unknown): string {
  if (isRecord(value) && typeof value.type === 'string' && 'value' in value) return asText(value.value);
  return asText(value);
}

function toolCallOf(raw: Record<string, unknown>): ToolCall {
  const fn = isRecord(raw.function) ? raw.function : undefined;
  const id = raw.id ?? raw.toolCallId ?? raw.tool_call_id;
  return {
    id: typeof id === 'string' && id !== '' ? id : null,
    name: String(raw.name ?? raw.toolName ?? fn?.name ?? ''),
    arguments: asText(raw.arguments ?? raw.input ?? raw.args ?? fn?.arguments ?? ''),
  };
}

interface Parsed {
  texts: string[];
  toolCalls: ToolCall[];
  results: { id: string | null; name: string | null; text: string }[];
  attachments: Attachment[];
}

const MAX_URI = 512;

/** The parts of a message in any of the shapes SDKs use (GenAI parts, Vercel, OpenAI, Anthropic). */
function readParts(parts: unknown[], parsed: Parsed): void {
  for (const part of parts) {
    if (typeof part === 'string') {
      parsed.texts.push(part);
      continue;
    }
    if (!isRecord(part)) continue;
    const type = String(part.type ?? 'text');
    switch (type) {
      case 'text':
      case 'input_text':
      case 'output_text':
        parsed.texts.push(asText(part.content ?? part.text ?? ''));
        break;
      case 'reasoning':
      case 'thinking':
      case 'redacted_thinking':
        // The model's reasoning is not part of what was said.
        break;
      case 'tool_call':
      case 'tool-call':
      case 'tool_use':
      case 'function_call':
        parsed.toolCalls.push(toolCallOf(part));
        break;
      case 'tool_call_response':
      case 'tool-result':
      case 'tool_result':
      case 'function_call_output': {
        const id = part.id ?? part.toolCallId ?? part.tool_use_id ?? part.call_id;
        parsed.results.push({
          id: typeof id === 'string' && id !== '' ? id : null,
          name: typeof part.toolName === 'string' ? part.toolName : null,
          text: resultText(part.response ?? part.output ?? part.result ?? part.content),
        });
        break;
      }
      default: {
        // Images, audio, files: recorded as attachments, without their (often base64) content.
        const attachment: Attachment = { type: typeof part.modality === 'string' ? part.modality : type };
        const mime = part.mime_type ?? part.mimeType ?? part.mediaType;
        if (typeof mime === 'string') attachment.mimeType = mime;
        const uri = part.uri ?? part.url ?? (isRecord(part.image_url) ? part.image_url.url : part.image_url);
        if (typeof uri === 'string' && !uri.startsWith('data:') && uri.length <= MAX_URI) attachment.uri = uri;
        parsed.attachments.push(attachment);
      }
    }
  }
}

/**
 * One message object, in the GenAI (`parts`), OpenAI (`content`, `tool_calls`), Vercel
 * (`content` parts) or Anthropic shape, as entries: tool results become entries of their own.
 */
function entriesOfMessage(raw: unknown, side: Entry['side'], fallbackRole: Role | null, finishReason: string | null = null): Entry[] {
  if (typeof raw === 'string') raw = { content: raw };
  if (!isRecord(raw)) throw new UnreadableSpan('a message is not an object');
  const role = roleOf(raw.role, fallbackRole);
  const parsed: Parsed = { texts: [], toolCalls: [], results: [], attachments: [] };
  const content = raw.parts ?? raw.content;
  if (Array.isArray(content)) readParts(content, parsed);
  else if (content !== undefined && content !== null) parsed.texts.push(asText(content));
  const calls = raw.tool_calls ?? raw.toolCalls;
  if (Array.isArray(calls)) for (const call of calls) if (isRecord(call)) parsed.toolCalls.push(toolCallOf(call));
  if (isRecord(raw.function_call)) parsed.toolCalls.push(toolCallOf(raw.function_call));
  const name = typeof raw.name === 'string' && raw.name !== '' ? raw.name : null;
  const callId = raw.tool_call_id ?? raw.toolCallId ?? (role === 'tool' ? raw.id : undefined);
  const ownFinish = typeof raw.finish_reason === 'string' ? raw.finish_reason : finishReason;

  const entries: Entry[] = [];
  const text = parsed.texts.join('\n');
  if (role === 'tool' && parsed.results.length === 0) {
    // An OpenAI-style tool message: its content is the result of tool_call_id.
    return [{ role, text, toolCalls: [], toolCallId: typeof callId === 'string' && callId !== '' ? callId : null, name, finishReason: null, attachments: parsed.attachments, side }];
  }
  // A message holding only tool results (a Vercel tool message, an Anthropic user message) is
  // those results; anything else it says is an entry of its own role.
  if (role !== 'tool' && (text !== '' || parsed.toolCalls.length || parsed.attachments.length || parsed.results.length === 0)) {
    entries.push({ role, text, toolCalls: parsed.toolCalls, toolCallId: null, name, finishReason: ownFinish, attachments: parsed.attachments, side });
  }
  for (const result of parsed.results) {
    entries.push({ role: 'tool', text: result.text, toolCalls: [], toolCallId: result.id, name: result.name, finishReason: null, attachments: [], side });
  }
  return entries;
}

function entriesOfList(list: unknown[], side: Entry['side'], fallbackRole: Role | null): Entry[] {
  return list.flatMap((raw) => entriesOfMessage(raw, side, fallbackRole));
}

// ---------------------------------------------------------------------------------------------
// Formats.

const GENAI_DETAILS_EVENT = 'gen_ai.client.inference.operation.details';

function genAi(span: Span): Entry[] | null {
  const details = span.events.find((event) => event.name === GENAI_DETAILS_EVENT)?.attributes ?? {};
  const read = (key: string) => span.attributes[key] ?? details[key];
  const system = read('gen_ai.system_instructions');
  const input = read('gen_ai.input.messages');
  const output = read('gen_ai.output.messages');
  if (system === undefined && input === undefined && output === undefined) return null;
  const entries: Entry[] = [];
  if (system !== undefined) {
    const parts = structured(system, 'gen_ai.system_instructions');
    const parsed: Parsed = { texts: [], toolCalls: [], results: [], attachments: [] };
    readParts(Array.isArray(parts) ? parts : [parts], parsed);
    if (parsed.texts.length) entries.push(entry('system', parsed.texts.join('\n'), 'input'));
  }
  if (input !== undefined) entries.push(...entriesOfList(messageArray(input, 'gen_ai.input.messages'), 'input', null));
  if (output !== undefined) entries.push(...entriesOfList(messageArray(output, 'gen_ai.output.messages'), 'output', 'assistant'));
  return entries;
}

function entry(role: Role, text: string, side: Entry['side']): Entry {
  return { role, text, toolCalls: [], toolCallId: null, name: null, finishReason: null, attachments: [], side };
}

/** OpenInference's flattened messages: `message.role`, `message.content`, `message.tool_calls.N.tool_call.*`. */
function openInferenceMessage(group: Attributes, side: Entry['side']): Entry[] {
  const contents = indexed(group, 'message.contents.').map((part) => ({
    type: part['message_content.type'] ?? 'text',
    text: part['message_content.text'],
    url: part['message_content.image.image.url'],
  }));
  const toolCalls = indexed(group, 'message.tool_calls.').map((call) => ({
    id: call['tool_call.id'],
    name: call['tool_call.function.name'],
    arguments: call['tool_call.function.arguments'],
  }));
  return entriesOfMessage(
    {
      role: group['message.role'],
      content: contents.length ? contents : group['message.content'],
      tool_calls: toolCalls,
      tool_call_id: group['message.tool_call_id'],
      name: group['message.name'],
    },
    side,
    side === 'output' ? 'assistant' : null,
  );
}

function openInference(span: Span): Entry[] | null {
  const input = indexed(span.attributes, 'llm.input_messages.');
  const output = indexed(span.attributes, 'llm.output_messages.');
  if (!input.length && !output.length) return null;
  return [...input.flatMap((group) => openInferenceMessage(group, 'input')), ...output.flatMap((group) => openInferenceMessage(group, 'output'))];
}

/** `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` (OpenLLMetry and the GenAI conventions before 1.28). */
function flattenedMessage(group: Attributes, side: Entry['side']): Entry[] {
  const toolCalls = indexed(group, 'tool_calls.').map((call) => ({ id: call.id, name: call.name, arguments: call.arguments }));
  if (group['function_call.name'] !== undefined) toolCalls.push({ id: null, name: group['function_call.name'], arguments: group['function_call.arguments'] });
  let content: unknown = group.content;
  // Multimodal content is written as the JSON of its parts.
  if (typeof content === 'string' && content.startsWith('[')) {
    try {
      const parts: unknown = JSON.parse(content);
      if (Array.isArray(parts) && parts.every((p) => isRecord(p) && typeof p.type === 'string')) content = parts;
    } catch {
      // plain text that happens to start with a bracket
    }
  }
  return entriesOfMessage(
    { role: group.role, content, tool_calls: toolCalls, tool_call_id: group.tool_call_id, name: group.name, finish_reason: group.finish_reason },
    side,
    side === 'output' ? 'assistant' : null,
  );
}

function flattened(span: Span): Entry[] | null {
  const prompt = indexed(span.attributes, 'gen_ai.prompt.');
  const completion = indexed(span.attributes, 'gen_ai.completion.');
  if (!prompt.length && !completion.length) return null;
  return [...prompt.flatMap((group) => flattenedMessage(group, 'input')), ...completion.flatMap((group) => flattenedMessage(group, 'output'))];
}

/** The Vercel AI SDK's `ai.*` spans (its LegacyOpenTelemetry integration and versions before 7). */
function vercel(span: Span): Entry[] | null {
  const a = span.attributes;
  const entries: Entry[] = [];
  if (a['ai.prompt.messages'] !== undefined) {
    entries.push(...entriesOfList(messageArray(a['ai.prompt.messages'], 'ai.prompt.messages'), 'input', null));
  } else if (a['ai.prompt'] !== undefined) {
    const prompt = structured(a['ai.prompt'], 'ai.prompt');
    if (!isRecord(prompt)) throw new UnreadableSpan('ai.prompt is not a JSON object');
    const system = prompt.system ?? prompt.instructions;
    if (typeof system === 'string' && system !== '') entries.push(entry('system', system, 'input'));
    if (typeof prompt.prompt === 'string') entries.push(entry('user', prompt.prompt, 'input'));
    else if (Array.isArray(prompt.prompt)) entries.push(...entriesOfList(prompt.prompt, 'input', null));
    if (Array.isArray(prompt.messages)) entries.push(...entriesOfList(prompt.messages, 'input', null));
  }
  const text = a['ai.response.text'] ?? a['ai.result.text'];
  const calls = a['ai.response.toolCalls'] ?? a['ai.result.toolCalls'];
  if (text !== undefined || calls !== undefined) {
    const toolCalls = calls === undefined ? [] : messageArray(calls, 'ai.response.toolCalls');
    const finish = str(a['ai.response.finishReason'] ?? a['ai.finishReason']);
    entries.push(...entriesOfMessage({ role: 'assistant', content: asText(text ?? ''), tool_calls: toolCalls, finish_reason: finish ?? undefined }, 'output', 'assistant'));
  }
  return entries.length || a['ai.operationId'] !== undefined ? entries : null;
}

const PER_MESSAGE_EVENTS: Record<string, Role> = {
  'gen_ai.system.message': 'system',
  'gen_ai.user.message': 'user',
  'gen_ai.assistant.message': 'assistant',
  'gen_ai.tool.message': 'tool',
};

/** The GenAI events before the conventions moved messages into attributes. */
function events(span: Span): Entry[] | null {
  const entries: Entry[] = [];
  let seen = false;
  for (const event of span.events) {
    const body = event.attributes['gen_ai.event.content'] !== undefined ? structured(event.attributes['gen_ai.event.content'], 'gen_ai.event.content') : event.attributes;
    if (event.name === 'gen_ai.content.prompt') {
      seen = true;
      entries.push(...entriesOfList(messageArray(event.attributes['gen_ai.prompt'], 'gen_ai.prompt'), 'input', null));
    } else if (event.name === 'gen_ai.content.completion') {
      seen = true;
      entries.push(...entriesOfList(messageArray(event.attributes['gen_ai.completion'], 'gen_ai.completion'), 'output', 'assistant'));
    } else if (PER_MESSAGE_EVENTS[event.name]) {
      seen = true;
      if (!isRecord(body)) throw new UnreadableSpan(`${event.name} has no message`);
      entries.push(...entriesOfMessage({ ...body, tool_calls: structuredField(body.tool_calls) }, 'input', PER_MESSAGE_EVENTS[event.name]!));
    } else if (event.name === 'gen_ai.choice') {
      seen = true;
      if (!isRecord(body)) throw new UnreadableSpan('gen_ai.choice has no message');
      const message = structuredField(body.message);
      const finish = typeof body.finish_reason === 'string' ? body.finish_reason : null;
      const raw = isRecord(message) ? { ...message, tool_calls: structuredField(message.tool_calls) } : { content: body.content, tool_calls: structuredField(body.tool_calls) };
      entries.push(...entriesOfMessage(raw, 'output', 'assistant', finish));
    }
  }
  return seen ? entries : null;
}

function structuredField(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** A tool execution span's result, as the tool message answering its call. */
function toolResult(span: Span): Entry[] {
  const a = span.attributes;
  const id = str(a['gen_ai.tool.call.id'] ?? a['ai.toolCall.id'] ?? a['tool_call.id']);
  const result = a['gen_ai.tool.call.result'] ?? a['ai.toolCall.result'] ?? a['ai.toolCall.output'] ?? a['output.value'];
  // Without the call's id the result cannot be placed in its conversation.
  if (!id || result === undefined) return [];
  return [{ ...entry('tool', resultText(structuredField(result)), 'output'), toolCallId: id, name: str(a['gen_ai.tool.name'] ?? a['ai.toolCall.name'] ?? a['tool.name']) }];
}

const WRAPPER_OPERATIONS = new Set(['invoke_agent', 'create_agent', 'agent_step', 'invoke_workflow']);
const VERCEL_WRAPPERS = new Set(['ai.generateText', 'ai.streamText', 'ai.generateObject', 'ai.streamObject']);

function kindOf(a: Attributes): SpanKind {
  const operation = str(a['gen_ai.operation.name']);
  const openInferenceKind = str(a['openinference.span.kind'])?.toUpperCase();
  const vercelOperation = str(a['ai.operationId']);
  if (operation === 'execute_tool' || vercelOperation === 'ai.toolCall' || openInferenceKind === 'TOOL') return 'tool';
  if ((operation && WRAPPER_OPERATIONS.has(operation)) || (vercelOperation && VERCEL_WRAPPERS.has(vercelOperation))) return 'wrapper';
  if (openInferenceKind === 'AGENT' || openInferenceKind === 'CHAIN') return 'wrapper';
  const traceloopKind = str(a['traceloop.span.kind']);
  if (traceloopKind === 'workflow' || traceloopKind === 'agent' || traceloopKind === 'task') return 'wrapper';
  return 'llm';
}

/** The first of these keys that a span (or its Vercel telemetry metadata) carries. */
const CONVERSATION_KEYS = [
  'gen_ai.conversation.id',
  'session.id',
  'traceloop.association.properties.conversation_id',
  'traceloop.association.properties.session_id',
  'ai.telemetry.metadata.conversationId',
  'ai.telemetry.metadata.sessionId',
  'ai.settings.runtimeContext.conversationId',
  'ai.settings.runtimeContext.sessionId',
  'ai.settings.context.conversationId',
  'ai.settings.context.sessionId',
];
const USER_KEYS = [
  'user.id',
  'enduser.id',
  'traceloop.association.properties.user_id',
  'ai.telemetry.metadata.userId',
  'ai.settings.runtimeContext.userId',
  'ai.settings.context.userId',
];

export function conversationIdOf(a: Attributes): { id: string; key: string } | null {
  for (const key of CONVERSATION_KEYS) {
    const id = str(a[key]);
    if (id) return { id, key };
  }
  return null;
}

export function userIdOf(a: Attributes): string | null {
  for (const key of USER_KEYS) {
    const id = str(a[key]);
    if (id) return id;
  }
  return null;
}

/**
 * An agent's output sums up its steps: the final text together with the tool calls and results
 * of every step (the AI SDK's invoke_agent and ai.generateText spans). The steps' own model-call
 * and tool spans say each of those where it happened; the wrapper adds only the final text.
 */
function asWrapperSaid(entry: Entry): Entry[] {
  if (entry.side === 'input') return [entry];
  if (entry.role === 'tool') return [];
  if (entry.text === '' && entry.attachments.length === 0) return [];
  return [{ ...entry, toolCalls: [] }];
}

/** The span's conversation content, or null for a span that carries none. */
export function viewOf(span: Span): SpanView | null {
  const a = span.attributes;
  const kind = kindOf(a);
  let entries = kind === 'tool' ? toolResult(span) : (genAi(span) ?? openInference(span) ?? flattened(span) ?? vercel(span) ?? events(span));
  if (entries && kind === 'wrapper') entries = entries.flatMap(asWrapperSaid);
  if (!entries || entries.length === 0) return null;
  const conversation = conversationIdOf(a);
  return {
    span,
    kind,
    entries,
    conversationId: conversation?.id ?? null,
    conversationSource: conversation?.key ?? null,
    userId: userIdOf(a),
    model: str(first(a['gen_ai.response.model'], a['ai.response.model'], a['gen_ai.request.model'], a['llm.model_name'], a['ai.model.id'])),
    provider: str(first(a['gen_ai.provider.name'], a['gen_ai.system'], a['llm.provider'], a['llm.system'], a['ai.model.provider'])),
    promptTokens: num(first(a['gen_ai.usage.input_tokens'], a['gen_ai.usage.prompt_tokens'], a['llm.token_count.prompt'], a['ai.usage.inputTokens'], a['ai.usage.promptTokens'])),
    completionTokens: num(first(a['gen_ai.usage.output_tokens'], a['gen_ai.usage.completion_tokens'], a['llm.token_count.completion'], a['ai.usage.outputTokens'], a['ai.usage.completionTokens'])),
    costUsd: num(first(a['gen_ai.usage.cost'], a['llm.cost.total'])),
    outputUnixNano: outputTime(span),
  };
}

/**
 * The AI SDK's ai.*.doGenerate span lasts until the tools it asked for have run, so its end is
 * after their results; its ai.response.timestamp is when the model answered.
 */
function outputTime(span: Span): bigint {
  const stamp = span.attributes['ai.response.timestamp'];
  const ms = typeof stamp === 'string' ? Date.parse(stamp) : NaN;
  if (!Number.isFinite(ms)) return span.endUnixNano;
  const at = BigInt(ms) * 1_000_000n;
  return at >= span.startUnixNano && at <= span.endUnixNano ? at : span.endUnixNano;
}

/** Finish reasons by output position, from gen_ai.response.finish_reasons when messages lack them. */
export function finishReasons(a: Attributes): string[] {
  const value = a['gen_ai.response.finish_reasons'];
  if (Array.isArray(value)) return value.map((v) => String(v));
  if (typeof value === 'string') {
    const parsed = structuredField(value);
    return Array.isArray(parsed) ? parsed.map((v) => String(v)) : [value];
  }
  return [];
}
