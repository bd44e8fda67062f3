import { describe, expect, test } from 'bun:test';
import { chatIdOf, mapSpans, uuidV5, type Conversation } from '../src/modules/otel/conversations.ts';
import type { Attributes, Span, SpanEvent } from '../src/modules/otel/otlp.ts';

/*
 * The span-to-conversation mapping on its own: spans in, chats and messages out. The endpoint
 * tests (otel.test.ts) run the same through real exporters and the database.
 */

const T0 = 1_790_000_000_000_000_000n; // nanoseconds
const MS = 1_000_000n;
let counter = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const newTraceId = () => hex(++counter, 32);

interface SpanInit {
  trace: string;
  id?: string;
  parent?: string;
  name?: string;
  start: bigint;
  end: bigint;
  attributes?: Attributes;
  events?: SpanEvent[];
  resource?: Attributes;
}

function span(init: SpanInit): Span {
  return {
    traceId: init.trace,
    spanId: init.id ?? hex(++counter, 16),
    parentSpanId: init.parent ?? null,
    name: init.name ?? 'span',
    startUnixNano: init.start,
    endUnixNano: init.end,
    attributes: init.attributes ?? {},
    events: init.events ?? [],
    resource: init.resource ?? { 'service.name': 'support-bot' },
  };
}

const text = (role: string, content: string) => ({ role, parts: [{ type: 'text', content }] });

/** A model call in the current GenAI conventions, with the whole history as its input. */
function chatCall(trace: string, at: bigint, history: object[], output: object[], extra: Attributes = {}, parent?: string): Span {
  return span({
    trace,
    parent,
    name: 'chat gpt-4o',
    start: at,
    end: at + 800n * MS,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'You are a support agent.' }]),
      'gen_ai.input.messages': JSON.stringify(history),
      'gen_ai.output.messages': JSON.stringify(output),
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 20,
      ...extra,
    },
  });
}

const only = (mapping: ReturnType<typeof mapSpans>): Conversation => {
  expect(mapping.rejected).toEqual([]);
  expect(mapping.conversations).toHaveLength(1);
  return mapping.conversations[0]!;
};
const said = (conversation: Conversation) => conversation.messages.map((m) => `${m.role}: ${m.content}`);

/** What a store keeps: the union by id, the first sighting winning (as ON CONFLICT DO NOTHING does). */
function store(...batches: Conversation[][]) {
  const chats = new Map<string, Map<string, Conversation['messages'][number]>>();
  for (const conversations of batches) {
    for (const c of conversations) {
      const messages = chats.get(c.chat.id) ?? new Map();
      chats.set(c.chat.id, messages);
      for (const m of c.messages) if (!messages.has(m.id)) messages.set(m.id, m);
    }
  }
  return (chatId: string) => [...(chats.get(chatId)?.values() ?? [])].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((m) => `${m.role}: ${m.content}`);
}

describe('GenAI semantic conventions', () => {
  test('system instructions, input and output become messages with model, tokens, latency and finish reason', () => {
    const trace = newTraceId();
    const c = only(
      mapSpans([chatCall(trace, T0, [text('user', 'Where is my invoice?')], [{ role: 'assistant', parts: [{ type: 'text', content: 'In Billing.' }], finish_reason: 'stop' }])]),
    );
    expect(said(c)).toEqual(['system: You are a support agent.', 'user: Where is my invoice?', 'assistant: In Billing.']);
    const answer = c.messages[2]!;
    expect(answer).toMatchObject({ model: 'gpt-4o-2024-08-06', promptTokens: 100, completionTokens: 20, latencyMs: 800, metadata: { finishReason: 'stop', provider: 'openai' } });
    expect(c.messages[1]).toMatchObject({ model: null, promptTokens: null, latencyMs: null });
    expect(c.chat).toMatchObject({ id: chatIdOf({ traceId: trace }), title: 'Where is my invoice?', source: 'support-bot', metadata: { trace_id: trace } });
    // Inputs were said before the call, the output when it ended, in order.
    expect(c.messages.map((m) => m.createdAt)).toEqual([...c.messages.map((m) => m.createdAt)].sort());
    expect(answer.createdAt).toBe(new Date(Number((T0 + 800n * MS) / MS)).toISOString().replace('Z', '000Z'));
  });

  test('tool calls and tool results are stored as such', () => {
    const trace = newTraceId();
    const c = only(
      mapSpans([
        chatCall(
          trace,
          T0,
          [
            text('user', 'Weather in Paris?'),
            { role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'weather', arguments: { city: 'Paris' } }] },
            { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: { sky: 'sunny' } }] },
          ],
          [text('assistant', 'Sunny.')],
        ),
      ]),
    );
    expect(c.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant']);
    expect(c.messages[2]!.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }]);
    expect(c.messages[3]).toMatchObject({ role: 'tool', content: '{"sky":"sunny"}', metadata: { toolCallId: 'call_1' } });
  });

  test('the same content in an inference-details event is read like span attributes', () => {
    const trace = newTraceId();
    const s = span({
      trace,
      start: T0,
      end: T0 + MS,
      attributes: { 'gen_ai.operation.name': 'chat' },
      events: [
        {
          name: 'gen_ai.client.inference.operation.details',
          timeUnixNano: T0,
          attributes: { 'gen_ai.input.messages': JSON.stringify([text('user', 'hi')]), 'gen_ai.output.messages': JSON.stringify([text('assistant', 'hello')]) },
        },
      ],
    });
    expect(said(only(mapSpans([s])))).toEqual(['user: hi', 'assistant: hello']);
  });
});

describe('each message is stored once', () => {
  const user1 = text('user', 'I was charged twice.');
  const bot1 = text('assistant', 'Sorry! Which order?');
  const user2 = text('user', 'Order 42.');
  const bot2 = text('assistant', 'Refunded.');
  const user3 = text('user', 'Thanks!');
  const bot3 = text('assistant', 'You are welcome.');
  const conversation = (extra: Attributes = {}) => {
    const trace = newTraceId();
    return [
      chatCall(trace, T0, [user1], [bot1], extra),
      chatCall(trace, T0 + 5000n * MS, [user1, bot1, user2], [bot2], extra),
      chatCall(trace, T0 + 9000n * MS, [user1, bot1, user2, bot2, user3], [bot3], extra),
    ];
  };
  const expected = [
    'system: You are a support agent.',
    'user: I was charged twice.',
    'assistant: Sorry! Which order?',
    'user: Order 42.',
    'assistant: Refunded.',
    'user: Thanks!',
    'assistant: You are welcome.',
  ];

  test('a multi-turn conversation sent as one span per call, each with the whole history', () => {
    const c = only(mapSpans(conversation()));
    expect(said(c)).toEqual(expected);
    // Every assistant message keeps the usage of the call that produced it.
    expect(c.messages.filter((m) => m.role === 'assistant').map((m) => m.promptTokens)).toEqual([100, 100, 100]);
  });

  test('a call whose start the millisecond clock puts before the previous call\'s end: the answer still comes before the next question', () => {
    const trace = newTraceId();
    const first = chatCall(trace, T0, [user1], [bot1]);
    const second = chatCall(trace, first.endUnixNano - 500_000n, [user1, bot1, user2], [bot2]);
    const c = only(mapSpans([second, first]));
    expect(said(c)).toEqual(expected.slice(0, 5));
    expect(new Set(c.messages.map((m) => m.createdAt)).size).toBe(c.messages.length);
  });

  test('the calls in separate requests, in any order, add up to the same conversation', () => {
    const spans = conversation();
    const chatId = only(mapSpans(spans)).chat.id;
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]]) {
      const read = store(...order.map((i) => mapSpans([spans[i]!]).conversations));
      expect(read(chatId)).toEqual(expected);
    }
  });

  test('the same export again maps to the same ids (a retry stores nothing new)', () => {
    const spans = conversation();
    expect(mapSpans(spans)).toEqual(mapSpans(spans));
    const read = store(mapSpans(spans).conversations, mapSpans(spans).conversations);
    expect(read(only(mapSpans(spans)).chat.id)).toEqual(expected);
  });

  test('an agent span with nested model and tool spans adds nothing the steps did not say', () => {
    // As the AI SDK's OpenTelemetry integration writes them: invoke_agent > step > chat / execute_tool.
    const trace = newTraceId();
    const agent = span({ trace, name: 'invoke_agent', start: T0, end: T0 + 3000n * MS, id: 'a000000000000001' });
    const step1 = span({ trace, parent: agent.spanId, start: T0, end: T0 + 1000n * MS, attributes: { 'gen_ai.operation.name': 'agent_step' } });
    const call1 = chatCall(
      trace,
      T0 + 1n * MS,
      [text('user', 'Weather in Paris?')],
      [{ role: 'assistant', parts: [{ type: 'tool_call', id: 'call-1', name: 'weather', arguments: { city: 'Paris' } }], finish_reason: 'tool_call' }],
      {},
      step1.spanId,
    );
    const tool = span({
      trace,
      parent: step1.spanId,
      start: T0 + 900n * MS,
      end: T0 + 950n * MS,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'weather',
        'gen_ai.tool.call.id': 'call-1',
        'gen_ai.tool.call.arguments': '{"city":"Paris"}',
        'gen_ai.tool.call.result': '{"city":"Paris","sky":"sunny"}',
      },
    });
    const call2 = chatCall(
      trace,
      T0 + 1000n * MS,
      [
        text('user', 'Weather in Paris?'),
        { role: 'assistant', parts: [{ type: 'tool_call', id: 'call-1', name: 'weather', arguments: { city: 'Paris' } }] },
        { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call-1', response: { city: 'Paris', sky: 'sunny' } }] },
      ],
      [text('assistant', 'It is sunny in Paris.')],
    );
    agent.attributes = {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'You are a support agent.' }]),
      'gen_ai.input.messages': JSON.stringify([text('user', 'Weather in Paris?')]),
      // The final text with every step's tool calls and results, as the AI SDK writes it.
      'gen_ai.output.messages': JSON.stringify([
        {
          role: 'assistant',
          parts: [
            { type: 'text', content: 'It is sunny in Paris.' },
            { type: 'tool_call', id: 'call-1', name: 'weather', arguments: { city: 'Paris' } },
            { type: 'tool_call_response', id: 'call-1', response: { city: 'Paris', sky: 'sunny' } },
          ],
        },
      ]),
      'gen_ai.usage.input_tokens': 200,
      'gen_ai.usage.output_tokens': 40,
    };
    const steps = [call1, tool, call2, step1];
    const fromSteps = only(mapSpans(steps));
    const all = only(mapSpans([...steps, agent]));
    const agentFirst = only(mapSpans([agent, ...steps]));
    expect(said(all)).toEqual(['system: You are a support agent.', 'user: Weather in Paris?', 'assistant: ', 'tool: {"city":"Paris","sky":"sunny"}', 'assistant: It is sunny in Paris.']);
    expect(all.messages.map((m) => m.id)).toEqual(fromSteps.messages.map((m) => m.id));
    expect(agentFirst.messages).toEqual(all.messages);
    // The agent's summed usage is never stored: each step keeps its own.
    expect(all.messages.reduce((sum, m) => sum + (m.promptTokens ?? 0), 0)).toBe(200);
    // The tool span and the next call's history are one message; the tool span describes it.
    expect(all.messages[3]).toMatchObject({ name: 'weather', latencyMs: 50, metadata: { toolCallId: 'call-1' } });
    // Sent alone, in a later request, the agent span adds nothing either.
    const read = store(mapSpans(steps).conversations, mapSpans([agent]).conversations);
    expect(read(all.chat.id)).toEqual(said(all));
  });

  test('two conversations interleaved in one request stay apart', () => {
    const a = conversation({ 'gen_ai.conversation.id': 'conv-a' });
    const b = conversation({ 'gen_ai.conversation.id': 'conv-b' }).map((s) => ({ ...s, traceId: a[0]!.traceId }));
    const mapping = mapSpans([a[0]!, b[0]!, b[1]!, a[1]!, a[2]!, b[2]!]);
    expect(mapping.conversations.map((c) => c.chat.id).sort()).toEqual([chatIdOf({ id: 'conv-a' }), chatIdOf({ id: 'conv-b' })].sort());
    for (const c of mapping.conversations) expect(said(c)).toEqual(expected);
    // Same content, other conversation: other ids.
    const [first, second] = mapping.conversations;
    expect(first!.messages.map((m) => m.id).filter((id) => second!.messages.some((m) => m.id === id))).toEqual([]);
  });

  test('a message said twice is stored twice; a summary that repeats it adds no third', () => {
    const trace = newTraceId();
    const yes = text('user', 'yes');
    const spans = [chatCall(trace, T0, [yes], [bot1]), chatCall(trace, T0 + 5000n * MS, [yes, bot1, yes], [bot2])];
    const agent = span({ trace, start: T0 + 4000n * MS, end: T0 + 7000n * MS, attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.input.messages': JSON.stringify([yes]) } });
    expect(said(only(mapSpans([...spans, agent])))).toEqual(['system: You are a support agent.', 'user: yes', 'assistant: Sorry! Which order?', 'user: yes', 'assistant: Refunded.']);
  });

  test('ids follow the documented derivation, so clients can compute them', () => {
    const c = only(mapSpans([chatCall(newTraceId(), T0, [user1], [bot1], { 'gen_ai.conversation.id': 'ticket-7' })]));
    expect(c.chat.id).toBe(uuidV5('conversation:ticket-7'));
    expect(c.chat.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('other formats', () => {
  test('OpenLLMetry: gen_ai.prompt.N / gen_ai.completion.N with tool calls, prompt/completion tokens', () => {
    const trace = newTraceId();
    const s = span({
      trace,
      start: T0,
      end: T0 + 1200n * MS,
      attributes: {
        'llm.request.type': 'chat',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.prompt.0.role': 'system',
        'gen_ai.prompt.0.content': 'Be brief.',
        'gen_ai.prompt.1.role': 'user',
        'gen_ai.prompt.1.content': 'Weather in Oslo?',
        'gen_ai.completion.0.role': 'assistant',
        'gen_ai.completion.0.finish_reason': 'tool_calls',
        'gen_ai.completion.0.tool_calls.0.id': 'call_9',
        'gen_ai.completion.0.tool_calls.0.name': 'weather',
        'gen_ai.completion.0.tool_calls.0.arguments': '{"city":"Oslo"}',
        'gen_ai.usage.prompt_tokens': 31,
        'gen_ai.usage.completion_tokens': 9,
        'traceloop.association.properties.session_id': 'sess-1',
        'traceloop.association.properties.user_id': 'user-7',
      },
    });
    const c = only(mapSpans([s]));
    expect(said(c)).toEqual(['system: Be brief.', 'user: Weather in Oslo?', 'assistant: ']);
    expect(c.messages[2]).toMatchObject({ model: 'gpt-4o-mini', promptTokens: 31, completionTokens: 9, latencyMs: 1200, metadata: { finishReason: 'tool_calls' } });
    expect(c.messages[2]!.toolCalls).toEqual([{ id: 'call_9', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }]);
    expect(c.chat).toMatchObject({ id: chatIdOf({ id: 'sess-1' }), externalUserId: 'user-7' });
  });

  test('OpenInference: llm.input_messages / llm.output_messages, session.id, user.id, tags, metadata, cost', () => {
    const trace = newTraceId();
    const s = span({
      trace,
      start: T0,
      end: T0 + 300n * MS,
      attributes: {
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'claude-sonnet',
        'llm.input_messages.0.message.role': 'system',
        'llm.input_messages.0.message.content': 'Be kind.',
        'llm.input_messages.1.message.role': 'user',
        'llm.input_messages.1.message.contents.0.message_content.type': 'text',
        'llm.input_messages.1.message.contents.0.message_content.text': 'What is in this picture?',
        'llm.input_messages.1.message.contents.1.message_content.type': 'image',
        'llm.input_messages.1.message.contents.1.message_content.image.image.url': 'https://example.test/cat.png',
        'llm.output_messages.0.message.role': 'assistant',
        'llm.output_messages.0.message.content': 'A cat.',
        'llm.token_count.prompt': 12,
        'llm.token_count.completion': 3,
        'llm.cost.total': 0.0042,
        'session.id': 'chat-77',
        'user.id': 'alice',
        'tag.tags': ['vision', 'beta'],
        metadata: '{"plan":"pro"}',
      },
    });
    const c = only(mapSpans([s]));
    expect(said(c)).toEqual(['system: Be kind.', 'user: What is in this picture?', 'assistant: A cat.']);
    expect(c.messages[1]!.metadata).toMatchObject({ attachments: [{ type: 'image', uri: 'https://example.test/cat.png' }] });
    expect(c.messages[2]).toMatchObject({ model: 'claude-sonnet', promptTokens: 12, completionTokens: 3, costUsd: 0.0042, latencyMs: 300 });
    expect(c.chat).toMatchObject({ id: chatIdOf({ id: 'chat-77' }), externalUserId: 'alice', tags: ['vision', 'beta'], metadata: { metadata: { plan: 'pro' } } });
  });

  test('the deprecated per-message events, with the body as gen_ai.event.content or as attributes', () => {
    const trace = newTraceId();
    const s = span({
      trace,
      start: T0,
      end: T0 + 2000n * MS,
      attributes: { 'gen_ai.system': 'az.ai.inference', 'gen_ai.request.model': 'phi-4', 'gen_ai.usage.input_tokens': 7, 'gen_ai.usage.output_tokens': 2 },
      events: [
        { name: 'gen_ai.system.message', timeUnixNano: T0, attributes: { 'gen_ai.event.content': '{"role":"system","content":"Answer in French."}' } },
        { name: 'gen_ai.user.message', timeUnixNano: T0, attributes: { content: 'Hello' } },
        { name: 'gen_ai.choice', timeUnixNano: T0, attributes: { 'gen_ai.event.content': '{"message":{"content":"Bonjour"},"finish_reason":"stop","index":0}' } },
      ],
    });
    const c = only(mapSpans([s]));
    expect(said(c)).toEqual(['system: Answer in French.', 'user: Hello', 'assistant: Bonjour']);
    expect(c.messages[2]).toMatchObject({ model: 'phi-4', promptTokens: 7, completionTokens: 2, metadata: { finishReason: 'stop' } });
  });

  test('the older gen_ai.content.prompt / gen_ai.content.completion events', () => {
    const s = span({
      trace: newTraceId(),
      start: T0,
      end: T0 + MS,
      events: [
        { name: 'gen_ai.content.prompt', timeUnixNano: T0, attributes: { 'gen_ai.prompt': '[{"role":"user","content":"Ping"}]' } },
        { name: 'gen_ai.content.completion', timeUnixNano: T0, attributes: { 'gen_ai.completion': '[{"role":"assistant","content":"Pong"}]' } },
      ],
    });
    expect(said(only(mapSpans([s])))).toEqual(['user: Ping', 'assistant: Pong']);
  });

  test('the Vercel AI SDK ai.* spans: doGenerate calls under ai.generateText, and ai.toolCall', () => {
    const trace = newTraceId();
    const root = span({
      trace,
      start: T0,
      end: T0 + 3000n * MS,
      attributes: {
        'ai.operationId': 'ai.generateText',
        'ai.prompt': JSON.stringify({ system: 'You are a weather bot.', messages: [{ role: 'user', content: 'Weather in Paris?' }] }),
        'ai.response.text': 'It is sunny in Paris.',
        'ai.response.toolCalls': JSON.stringify([{ toolCallId: 'call-1', toolName: 'weather', input: { city: 'Paris' } }]),
        'ai.usage.inputTokens': 60,
        'ai.telemetry.metadata.sessionId': 'web-session-3',
        'ai.telemetry.metadata.userId': 'bob',
      },
    });
    const base = { 'ai.model.id': 'mock-1', 'ai.model.provider': 'mock-provider', 'ai.telemetry.metadata.sessionId': 'web-session-3' };
    const system = { role: 'system', content: 'You are a weather bot.' };
    const user = { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] };
    const call = { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'weather', input: { city: 'Paris' } }] };
    const result = { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'call-1', toolName: 'weather', output: { type: 'json', value: { sky: 'sunny' } } }] };
    const do1 = span({
      trace,
      parent: root.spanId,
      start: T0,
      end: T0 + 1000n * MS,
      attributes: { ...base, 'ai.operationId': 'ai.generateText.doGenerate', 'ai.prompt.messages': JSON.stringify([system, user]), 'ai.response.text': '', 'ai.response.toolCalls': JSON.stringify([call.content[0]]), 'ai.response.finishReason': 'tool-calls', 'ai.usage.inputTokens': 20, 'ai.usage.outputTokens': 5 },
    });
    const toolSpan = span({ trace, parent: do1.spanId, start: T0 + 1000n * MS, end: T0 + 1010n * MS, attributes: { 'ai.operationId': 'ai.toolCall', 'ai.toolCall.id': 'call-1', 'ai.toolCall.name': 'weather', 'ai.toolCall.result': '{"sky":"sunny"}' } });
    const do2 = span({
      trace,
      parent: root.spanId,
      start: T0 + 1100n * MS,
      end: T0 + 2000n * MS,
      attributes: { ...base, 'ai.operationId': 'ai.generateText.doGenerate', 'ai.prompt.messages': JSON.stringify([system, user, call, result]), 'ai.response.text': 'It is sunny in Paris.', 'ai.response.finishReason': 'stop', 'ai.usage.inputTokens': 40, 'ai.usage.outputTokens': 7 },
    });
    const c = only(mapSpans([do1, toolSpan, do2, root]));
    expect(said(c)).toEqual(['system: You are a weather bot.', 'user: Weather in Paris?', 'assistant: ', 'tool: {"sky":"sunny"}', 'assistant: It is sunny in Paris.']);
    expect(c.messages.map((m) => m.promptTokens)).toEqual([null, null, 20, null, 40]);
    expect(c.chat).toMatchObject({ id: chatIdOf({ id: 'web-session-3' }), externalUserId: 'bob' });
  });
});

describe('conversations and end users', () => {
  test('a span without a conversation id takes its ancestor\'s, or the one its trace names', () => {
    const trace = newTraceId();
    const root = span({ trace, start: T0, end: T0 + 5000n * MS, attributes: { 'session.id': 's-1', 'user.id': 'u-1' } });
    const child = chatCall(trace, T0 + MS, [text('user', 'a')], [text('assistant', 'b')], {}, root.spanId);
    const sibling = chatCall(trace, T0 + 2000n * MS, [text('user', 'c')], [text('assistant', 'd')]);
    const mapping = mapSpans([child, sibling, root]);
    expect(mapping.conversations).toHaveLength(1);
    expect(mapping.conversations[0]!.chat).toMatchObject({ id: chatIdOf({ id: 's-1' }), externalUserId: 'u-1' });
  });

  test('without any, the trace is the conversation', () => {
    const [a, b] = [newTraceId(), newTraceId()];
    const mapping = mapSpans([chatCall(a, T0, [text('user', 'x')], [text('assistant', 'y')]), chatCall(b, T0, [text('user', 'x')], [text('assistant', 'y')])]);
    expect(mapping.conversations.map((c) => c.chat.id).sort()).toEqual([chatIdOf({ traceId: a }), chatIdOf({ traceId: b })].sort());
  });

  test('spans without conversation content are accepted and ignored', () => {
    const mapping = mapSpans([span({ trace: newTraceId(), name: 'GET /health', start: T0, end: T0 + MS, attributes: { 'http.request.method': 'GET' } })]);
    expect(mapping).toEqual({ conversations: [], rejected: [] });
  });
});

describe('spans that cannot be stored', () => {
  test('invalid ids, times and message attributes are rejected with a reason; the rest is mapped', () => {
    const trace = newTraceId();
    const good = chatCall(trace, T0, [text('user', 'fine')], [text('assistant', 'ok')]);
    const badTrace = { ...chatCall(trace, T0, [text('user', 'x')], []), traceId: '00000000000000000000000000000000' };
    const badTime = { ...chatCall(trace, T0, [text('user', 'x')], []), startUnixNano: 0n };
    const badJson = span({ trace, start: T0, end: T0 + MS, attributes: { 'gen_ai.input.messages': '[{"role":"user"' } });
    const badRole = span({ trace, start: T0, end: T0 + MS, attributes: { 'gen_ai.input.messages': JSON.stringify([text('narrator', 'Once upon a time')]) } });
    const mapping = mapSpans([good, badTrace, badTime, badJson, badRole]);
    expect(mapping.rejected.map((r) => r.reason)).toEqual([
      'invalid trace id',
      'missing start or end time',
      'gen_ai.input.messages is not valid JSON',
      'a message has the unknown role "narrator"',
    ]);
    expect(mapping.conversations).toHaveLength(1);
    expect(said(mapping.conversations[0]!)).toEqual(['system: You are a support agent.', 'user: fine', 'assistant: ok']);
  });

  test('spans outside the window of client event times are rejected (2000-01-01 to a day ahead)', () => {
    const trace = newTraceId();
    const NS_PER_MS = 1_000_000n;
    const at = (iso: string) => BigInt(Date.parse(iso)) * NS_PER_MS;
    const cases = [
      { start: at('1999-12-31T23:59:59Z'), end: at('2000-01-01T00:00:01Z') },
      { start: 1n, end: 2n },
      { start: T0, end: BigInt(Date.now() + 2 * 86_400_000) * NS_PER_MS },
      { start: at('9999-12-31T00:00:00Z'), end: at('9999-12-31T23:59:59Z') },
    ];
    for (const { start, end } of cases) {
      const bad = { ...chatCall(trace, T0, [text('user', 'x')], [text('assistant', 'y')]), startUnixNano: start, endUnixNano: end };
      const mapping = mapSpans([bad]);
      expect(mapping.conversations).toEqual([]);
      expect(mapping.rejected.map((r) => r.reason)).toEqual([expect.stringContaining('time out of range')]);
    }
  });

  test('what PostgreSQL cannot store is replaced, and what exceeds the limits is cut and marked', () => {
    const long = 'x'.repeat(300_000);
    const c = only(mapSpans([chatCall(newTraceId(), T0, [text('user', 'nul\u0000here \ud800')], [text('assistant', long)], { 'gen_ai.response.model': 'm'.repeat(300) })]));
    expect(c.messages[1]!.content).toBe('nul\uFFFDhere \uFFFD');
    expect(c.messages[2]!.content).toHaveLength(262_144);
    expect(c.messages[2]!.metadata).toMatchObject({ truncated: true });
    expect(c.messages[2]!.model).toHaveLength(128);
  });
});
