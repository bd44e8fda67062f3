import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { context as otelContext, trace, type Attributes as OtelAttributes, type Tracer } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { generateText, registerTelemetry, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { LegacyOpenTelemetry, OpenTelemetry } from '@ai-sdk/otel';
import { z } from 'zod';
import type { components } from '../src/generated/openapi.ts';
import { chatIdOf, mapSpans } from '../src/modules/otel/conversations.ts';
import { decodeTraceRequest } from '../src/modules/otel/otlp.ts';
import { checkResponse } from './support/contract.ts';
import { childEnv, spawnBun } from './support/process.ts';
import { createTenant, createTestApp, type Tenant, type TestApp } from './support/harness.ts';

/*
 * The OTLP endpoint driven by clients nobody here wrote: the OpenTelemetry JS SDK's own OTLP
 * exporters (protobuf and JSON) against a real port, and the Vercel AI SDK exporting the spans of
 * real generateText runs (mock models from `ai/test`). Conversations are read back through the
 * dashboard API.
 */

// Real exporters, child processes and argon2-hashed fixtures on a shared 2-core machine.
setDefaultTimeout(60_000);

type Message = components['schemas']['Message'];
type Chat = components['schemas']['Chat'];

const TRACES = '/api/v1/orgs/{slug}/otel/v1/traces';
let t: TestApp;
let server: ReturnType<typeof Bun.serve>;
let acme: Tenant;

beforeAll(async () => {
  t = await createTestApp();
  server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (request) => t.app.handle(request) });
  acme = await createTenant(t);
});
afterAll(() => server.stop(true));

const endpointOf = (tenant: Tenant) => `http://127.0.0.1:${server.port}/api/v1/orgs/${tenant.slug}/otel`;

function exporterFor(tenant: Tenant, kind: 'protobuf' | 'json', options: { compression?: 'gzip'; bearer?: boolean } = {}): SpanExporter {
  const headers: Record<string, string> = options.bearer ? { authorization: `Bearer ${tenant.apiKey}` } : { 'x-organization-api-key': tenant.apiKey };
  const config = { url: `${endpointOf(tenant)}/v1/traces`, headers, compression: options.compression as never };
  return kind === 'protobuf' ? new ProtoExporter(config) : new JsonExporter(config);
}

/**
 * A tracer exporting through a BatchSpanProcessor (what SDK set-ups use), whose spans are also
 * kept in memory, to be re-sent or sent in another order.
 */
function pipeline(exporter: SpanExporter | null, service = 'support-bot') {
  const memory = new InMemorySpanExporter();
  const processors: (SimpleSpanProcessor | BatchSpanProcessor)[] = [new SimpleSpanProcessor({ exporter: memory })];
  if (exporter) processors.push(new BatchSpanProcessor({ exporter }));
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': service }), spanProcessors: processors });
  return { tracer: provider.getTracer('test'), provider, spans: () => memory.getFinishedSpans() };
}

/** Sends spans with the real exporter and returns its verdict. */
function exportSpans(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(spans, (result) => (result.code === ExportResultCode.SUCCESS ? resolve() : reject(result.error ?? new Error('export failed')))),
  );
}

const text = (role: string, content: string) => ({ role, parts: [{ type: 'text', content }] });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A model call span in the GenAI conventions, lasting about `ms`. */
async function modelCall(tracer: Tracer, history: object[], answer: string, attributes: OtelAttributes = {}, ms = 25, parent?: ReturnType<Tracer['startSpan']>) {
  const context = parent ? trace.setSpan(otelContext.active(), parent) : undefined;
  const span = tracer.startSpan(
    'chat gpt-4o',
    {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.input.messages': JSON.stringify(history),
        ...attributes,
      },
    },
    context,
  );
  await sleep(ms);
  span.setAttributes({
    'gen_ai.response.model': 'gpt-4o-2024-08-06',
    'gen_ai.usage.input_tokens': 10 * history.length,
    'gen_ai.usage.output_tokens': answer.length,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.output.messages': JSON.stringify([{ ...text('assistant', answer), finish_reason: 'stop' }]),
  });
  span.end();
}

// ---------------------------------------------------------------------------------------------
// Reading back, as the dashboard does.

async function chatOf(tenant: Tenant, chatId: string): Promise<Chat> {
  const { data, response } = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId } } });
  if (!data) throw new Error(`chat ${chatId}: ${response.status}`);
  return data as Chat;
}

async function transcript(tenant: Tenant, chatId: string): Promise<Message[]> {
  const { data, response } = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats/{chatId}/messages', {
    params: { path: { org: 'me', chatId }, query: { limit: 200 } },
  });
  if (!data) throw new Error(`messages of ${chatId}: ${response.status}`);
  return data.items;
}

const said = (messages: Message[]) => messages.map((m) => `${m.role}: ${m.content}`);

async function expectSingleChat(tenant: Tenant, chatId: string, lines: string[]) {
  const messages = await transcript(tenant, chatId);
  expect(said(messages)).toEqual(lines);
  expect((await chatOf(tenant, chatId)).messageCount).toBe(lines.length);
  return messages;
}

// ---------------------------------------------------------------------------------------------

describe('the OpenTelemetry JS SDK exporters', () => {
  for (const [kind, compression] of [
    ['protobuf', undefined],
    ['json', undefined],
    ['protobuf', 'gzip'],
    ['json', 'gzip'],
  ] as const) {
    test(`a multi-turn conversation over OTLP/${kind}${compression ? ' gzip' : ''}: once each, with model, tokens and latency`, async () => {
      const tenant = await createTenant(t);
      const exporter = exporterFor(tenant, kind, { compression });
      const { tracer, provider } = pipeline(exporter, `app-${kind}`);
      const conversation = { 'gen_ai.conversation.id': `ticket-${kind}-${compression ?? 'plain'}`, 'user.id': 'customer-42' };
      const user1 = text('user', 'I was charged twice.');
      const user2 = text('user', 'Order 42.');
      await modelCall(tracer, [user1], 'Which order?', conversation, 30);
      await modelCall(tracer, [user1, text('assistant', 'Which order?'), user2], 'Refunded.', conversation, 40);
      await provider.forceFlush();

      const chatId = chatIdOf({ id: conversation['gen_ai.conversation.id'] });
      const messages = await expectSingleChat(tenant, chatId, ['user: I was charged twice.', 'assistant: Which order?', 'user: Order 42.', 'assistant: Refunded.']);
      expect(messages[1]).toMatchObject({ model: 'gpt-4o-2024-08-06', promptTokens: 10, completionTokens: 12, totalTokens: 22 });
      expect(messages[3]).toMatchObject({ promptTokens: 30, completionTokens: 9 });
      expect(messages[1]!.latencyMs).toBeGreaterThanOrEqual(30);
      expect(messages[3]!.latencyMs).toBeGreaterThanOrEqual(40);
      expect(await chatOf(tenant, chatId)).toMatchObject({ source: `app-${kind}`, externalUserId: 'customer-42', title: 'I was charged twice.' });
      await provider.shutdown();
    });
  }

  test('the same export sent again stores nothing twice', async () => {
    const exporter = exporterFor(acme, 'protobuf');
    const { tracer, provider, spans } = pipeline(exporter);
    const conversation = { 'gen_ai.conversation.id': `retry-${crypto.randomUUID()}` };
    await modelCall(tracer, [text('user', 'Hello')], 'Hi!', conversation);
    await modelCall(tracer, [text('user', 'Hello'), text('assistant', 'Hi!'), text('user', 'Bye')], 'Goodbye!', conversation);
    await provider.forceFlush();
    const chatId = chatIdOf({ id: conversation['gen_ai.conversation.id'] });
    const expected = ['user: Hello', 'assistant: Hi!', 'user: Bye', 'assistant: Goodbye!'];
    await expectSingleChat(acme, chatId, expected);
    const before = await chatOf(acme, chatId);
    for (let i = 0; i < 3; i++) await exportSpans(exporterFor(acme, i % 2 ? 'json' : 'protobuf'), spans());
    await expectSingleChat(acme, chatId, expected);
    expect((await chatOf(acme, chatId)).lastMessageAt).toBe(before.lastMessageAt);
  });

  test('spans of one trace in separate requests, out of order, make the same conversation', async () => {
    // No conversation id anywhere: the trace is the conversation.
    const { tracer, spans } = pipeline(null);
    const root = tracer.startSpan('handle request');
    const history = [text('user', 'First')];
    await modelCall(tracer, history, 'One', {}, 5, root);
    await modelCall(tracer, [...history, text('assistant', 'One'), text('user', 'Second')], 'Two', {}, 5, root);
    await modelCall(tracer, [...history, text('assistant', 'One'), text('user', 'Second'), text('assistant', 'Two'), text('user', 'Third')], 'Three', {}, 5, root);
    root.end();
    const [call1, call2, call3, rootSpan] = spans();
    const exporter = exporterFor(acme, 'protobuf');
    for (const batch of [[call3!], [rootSpan!, call1!], [call2!]]) await exportSpans(exporter, batch);
    const chatId = chatIdOf({ traceId: rootSpan!.spanContext().traceId });
    const messages = await expectSingleChat(acme, chatId, ['user: First', 'assistant: One', 'user: Second', 'assistant: Two', 'user: Third', 'assistant: Three']);
    // The last call's history arrived first: the earlier answers are in it, without their usage
    // (the first stored sighting of a message is kept); the last answer has its own.
    expect(messages[5]).toMatchObject({ promptTokens: 50, model: 'gpt-4o-2024-08-06' });
  });

  test('a tool span exported before the model calls around it: the transcript keeps the conversation order', async () => {
    const { tracer, spans } = pipeline(null);
    const conversation = { 'gen_ai.conversation.id': `tool-first-${crypto.randomUUID()}` };
    const question = text('user', 'Is my parcel late?');
    const call = { role: 'assistant', parts: [{ type: 'tool_call', id: 'call-77', name: 'track', arguments: { parcel: 42 } }] };
    const result = { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call-77', response: { status: 'delivered' } }] };
    const first = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.input.messages': JSON.stringify([question]), ...conversation } });
    await sleep(5);
    first.setAttribute('gen_ai.output.messages', JSON.stringify([call]));
    first.end();
    const toolSpan = tracer.startSpan('execute_tool track', {
      attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'track', 'gen_ai.tool.call.id': 'call-77', 'gen_ai.tool.call.result': '{"status":"delivered"}', ...conversation },
    });
    await sleep(5);
    toolSpan.end();
    await modelCall(tracer, [question, call, result], 'It was delivered.', conversation, 5);
    const [firstSpan, toolRecorded, lastSpan] = spans();
    const exporter = exporterFor(acme, 'protobuf');
    for (const batch of [[toolRecorded!], [lastSpan!], [firstSpan!]]) await exportSpans(exporter, batch);
    await expectSingleChat(acme, chatIdOf({ id: conversation['gen_ai.conversation.id'] }), [
      'user: Is my parcel late?',
      'assistant: ',
      'tool: {"status":"delivered"}',
      'assistant: It was delivered.',
    ]);
  });

  test('an application configured by environment variables only', async () => {
    const tenant = await createTenant(t);
    const child = spawnBun(
      ['test/support/otel-env-app.ts', 'env-conversation-1'],
      childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(tenant), OTEL_EXPORTER_OTLP_HEADERS: `x-organization-api-key=${tenant.apiKey}` }),
    );
    expect(await child.exited).toBe(0);
    await expectSingleChat(tenant, chatIdOf({ id: 'env-conversation-1' }), ['user: Configured by environment variables?', 'assistant: Yes, only those.']);
    expect((await chatOf(tenant, chatIdOf({ id: 'env-conversation-1' }))).source).toBe('env-configured-app');
  });

  test('OpenLLMetry (Traceloop SDK) with TRACELOOP_BASE_URL and TRACELOOP_API_KEY', async () => {
    const tenant = await createTenant(t);
    const child = spawnBun(
      ['test/support/otel-traceloop-app.ts', 'openllmetry-session-1'],
      childEnv({ TRACELOOP_BASE_URL: endpointOf(tenant), TRACELOOP_API_KEY: tenant.apiKey, TRACELOOP_TELEMETRY: 'false' }),
    );
    expect(await child.exited).toBe(0);
    const chatId = chatIdOf({ id: 'openllmetry-session-1' });
    const messages = await expectSingleChat(tenant, chatId, ['system: Be brief.', 'user: Hello', 'assistant: You said: Hello', 'user: How are you?', 'assistant: You said: How are you?']);
    expect(messages[2]).toMatchObject({ model: 'gpt-4o-mini-2024-07-18', promptTokens: 20, completionTokens: 4 });
    expect(messages[4]).toMatchObject({ promptTokens: 40, completionTokens: 4 });
    expect(await chatOf(tenant, chatId)).toMatchObject({ source: 'openllmetry-app', externalUserId: 'customer-9' });
  });

  test('Authorization: Bearer with the API key works like the header', async () => {
    const tenant = await createTenant(t);
    const { tracer, provider } = pipeline(exporterFor(tenant, 'json', { bearer: true }));
    await modelCall(tracer, [text('user', 'Bearer?')], 'Yes.', { 'gen_ai.conversation.id': 'bearer-1' });
    await provider.forceFlush();
    await expectSingleChat(tenant, chatIdOf({ id: 'bearer-1' }), ['user: Bearer?', 'assistant: Yes.']);
  });

  test('the same conversation id in two organizations: two chats, each seen only by its own', async () => {
    const [a, b] = await Promise.all([createTenant(t), createTenant(t)]);
    for (const [tenant, answer] of [[a, 'For A.'], [b, 'For B.']] as const) {
      const { tracer, provider } = pipeline(exporterFor(tenant, 'protobuf'));
      await modelCall(tracer, [text('user', 'Who am I?')], answer, { 'gen_ai.conversation.id': 'shared-id' });
      await provider.forceFlush();
    }
    const chatId = chatIdOf({ id: 'shared-id' });
    await expectSingleChat(a, chatId, ['user: Who am I?', 'assistant: For A.']);
    await expectSingleChat(b, chatId, ['user: Who am I?', 'assistant: For B.']);
  });
});

describe('the Vercel AI SDK', () => {
  const usage = (input: number, output: number) => ({
    inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: output, text: output, reasoning: 0 },
  });

  /** A mock model that first asks for the weather tool, then answers; each call takes 20 ms. */
  function weatherModel() {
    let calls = 0;
    return new MockLanguageModelV4({
      modelId: 'mock-weather-1',
      doGenerate: async () => {
        calls++;
        await sleep(20);
        if (calls % 2 === 1) {
          return { content: [{ type: 'tool-call', toolCallId: `call-${calls}`, toolName: 'weather', input: JSON.stringify({ city: 'Paris' }) }], finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage: usage(20, 5), warnings: [] };
        }
        return { content: [{ type: 'text', text: `Sunny (answer ${calls / 2}).` }], finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(40, 7), warnings: [] };
      },
    });
  }
  const tools = { weather: tool({ description: 'Weather in a city', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => ({ city, sky: 'sunny' }) }) };

  async function twoTurns(telemetry: object, runtimeContext: object) {
    const model = weatherModel();
    const first = await generateText({ model, instructions: 'You are a weather bot.', prompt: 'Weather in Paris?', tools, stopWhen: stepCountIs(3), telemetry, runtimeContext } as never);
    await generateText({
      model,
      instructions: 'You are a weather bot.',
      messages: [{ role: 'user', content: 'Weather in Paris?' }, ...first.response.messages, { role: 'user', content: 'And tomorrow?' }],
      tools,
      stopWhen: stepCountIs(3),
      telemetry,
      runtimeContext,
    } as never);
  }

  const expected = [
    'system: You are a weather bot.',
    'user: Weather in Paris?',
    'assistant: ',
    'tool: {"city":"Paris","sky":"sunny"}',
    'assistant: Sunny (answer 1).',
    'user: And tomorrow?',
    'assistant: ',
    'tool: {"city":"Paris","sky":"sunny"}',
    'assistant: Sunny (answer 2).',
  ];

  async function checkWeatherChat(tenant: Tenant, chatId: string) {
    const messages = await expectSingleChat(tenant, chatId, expected);
    const assistants = messages.filter((m) => m.role === 'assistant');
    expect(assistants.map((m) => [m.model, m.promptTokens, m.completionTokens])).toEqual([
      ['mock-weather-1', 20, 5],
      ['mock-weather-1', 40, 7],
      ['mock-weather-1', 20, 5],
      ['mock-weather-1', 40, 7],
    ]);
    for (const m of assistants) expect(m.latencyMs).toBeGreaterThanOrEqual(20);
    expect(messages[2]!.toolCalls).toEqual([{ id: 'call-1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }]);
    expect(messages[3]).toMatchObject({ name: 'weather', metadata: { toolCallId: 'call-1' } });
    return messages;
  }

  test('registerTelemetry(new OpenTelemetry()): invoke_agent, step, chat and execute_tool spans, two turns', async () => {
    const tenant = await createTenant(t);
    const { tracer, provider } = pipeline(exporterFor(tenant, 'protobuf'), 'weather-app');
    registerTelemetry(
      new OpenTelemetry({
        tracer,
        // The AI SDK's runtime context names the conversation and the end user.
        enrichSpan: ({ runtimeContext }) => ({ 'gen_ai.conversation.id': runtimeContext?.conversationId as string, 'user.id': runtimeContext?.userId as string }),
      }),
    );
    await twoTurns({ functionId: 'weather-bot', includeRuntimeContext: { conversationId: true, userId: true } }, { conversationId: 'vercel-conv-1', userId: 'user-7' });
    await provider.forceFlush();
    const chatId = chatIdOf({ id: 'vercel-conv-1' });
    await checkWeatherChat(tenant, chatId);
    expect(await chatOf(tenant, chatId)).toMatchObject({ source: 'weather-app', externalUserId: 'user-7', title: 'Weather in Paris?' });
  });

  test('LegacyOpenTelemetry per call: ai.generateText, doGenerate and ai.toolCall spans', async () => {
    const tenant = await createTenant(t);
    const { tracer, provider } = pipeline(exporterFor(tenant, 'json'), 'weather-app');
    await twoTurns(
      { integrations: [new LegacyOpenTelemetry({ tracer })], functionId: 'weather-bot', includeRuntimeContext: { conversationId: true } },
      { conversationId: 'vercel-legacy-1' },
    );
    await provider.forceFlush();
    await checkWeatherChat(tenant, chatIdOf({ id: 'vercel-legacy-1' }));
  });
});

describe('OTLP answers', () => {
  const path = (tenant: Tenant) => `/api/v1/orgs/${tenant.slug}/otel/v1/traces`;

  async function post(tenant: Tenant, body: string | Uint8Array, headers: Record<string, string>): Promise<Response> {
    const response = await t.fetch(path(tenant), { method: 'POST', headers: { 'x-organization-api-key': tenant.apiKey, ...headers }, body });
    await checkResponse('POST', TRACES, response);
    return response;
  }

  /** An OTLP/JSON request built by the SDK's own serializer from spans the SDK recorded. */
  async function recordedSpans(build: (tracer: Tracer) => Promise<void>): Promise<ReadableSpan[]> {
    const { tracer, spans } = pipeline(null);
    await build(tracer);
    return spans();
  }

  test('some spans rejected: 200 with partial_success in both encodings; the rest is stored', async () => {
    const spans = await recordedSpans(async (tracer) => {
      await modelCall(tracer, [text('user', 'Valid one')], 'Stored.', { 'gen_ai.conversation.id': 'partial-1' });
      await modelCall(tracer, [{ role: 'narrator', parts: [] }], 'Never.', { 'gen_ai.conversation.id': 'partial-2' });
    });
    const tenant = await createTenant(t);
    const json = await post(tenant, JsonTraceSerializer.serializeRequest(spans)!, { 'content-type': 'application/json' });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toBe('application/json');
    const body = (await json.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    expect(body.partialSuccess.rejectedSpans).toBe('1');
    expect(body.partialSuccess.errorMessage).toContain('unknown role "narrator"');

    const protobuf = await post(tenant, ProtobufTraceSerializer.serializeRequest(spans)!, { 'content-type': 'application/x-protobuf' });
    expect(protobuf.status).toBe(200);
    expect(protobuf.headers.get('content-type')).toBe('application/x-protobuf');
    const decoded = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(await protobuf.arrayBuffer()));
    expect(decoded.partialSuccess).toMatchObject({ rejectedSpans: 1 });
    expect(decoded.partialSuccess?.errorMessage).toContain('narrator');
    await expectSingleChat(tenant, chatIdOf({ id: 'partial-1' }), ['user: Valid one', 'assistant: Stored.']);
  });

  test('a conversation the database refuses is rejected whole; the others are stored', async () => {
    const tenant = await createTenant(t);
    // A REST client used, in another chat, the id the OTLP mapping derives for "Clash" (409).
    const clashChat = chatIdOf({ id: 'clash-1' });
    const api = t.client({ apiKey: tenant.apiKey });
    const other = await api.POST('/api/v1/orgs/{slug}/chats', { params: { path: { slug: tenant.slug } }, body: {} });
    const spans = await recordedSpans(async (tracer) => {
      await modelCall(tracer, [text('user', 'Clash')], 'Never stored.', { 'gen_ai.conversation.id': 'clash-1' });
      await modelCall(tracer, [text('user', 'Fine')], 'Stored.', { 'gen_ai.conversation.id': 'clash-2' });
    });
    const taken = mapSpans(decodeTraceRequest(JsonTraceSerializer.serializeRequest(spans)!, 'json')).conversations.find((c) => c.chat.id === clashChat)!.messages[0]!.id;
    const stolen = await api.POST('/api/v1/orgs/{slug}/chats/{chatId}/messages', { params: { path: { slug: tenant.slug, chatId: other.data!.id } }, body: { id: taken, role: 'user', content: 'first' } });
    expect(stolen.response.status).toBe(201);

    const response = await post(tenant, JsonTraceSerializer.serializeRequest(spans)!, { 'content-type': 'application/json' });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    expect(body.partialSuccess.rejectedSpans).toBe('1');
    expect(body.partialSuccess.errorMessage).toContain('already used by a message of another chat');
    await expectSingleChat(tenant, chatIdOf({ id: 'clash-2' }), ['user: Fine', 'assistant: Stored.']);
    const missing = await t.client({ token: tenant.adminToken }).GET('/orgs/{org}/chats/{chatId}', { params: { path: { org: 'me', chatId: clashChat } } });
    expect(missing.response.status).toBe(404);
  });

  test('everything accepted: an empty ExportTraceServiceResponse', async () => {
    const json = await post(acme, '{"resourceSpans":[]}', { 'content-type': 'application/json' });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({});
    const protobuf = await post(acme, new Uint8Array(), { 'content-type': 'application/x-protobuf' });
    expect(protobuf.status).toBe(200);
    expect(new Uint8Array(await protobuf.arrayBuffer())).toEqual(new Uint8Array());
  });

  test('a body that is not OTLP is a 400; another media type or content encoding a 415', async () => {
    for (const [body, contentType] of [
      ['not json', 'application/json'],
      ['[1,2]', 'application/json'],
      ['{"resourceSpans":5}', 'application/json'],
      ['{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}', 'application/json'],
      [new Uint8Array([0x0a, 0x05, 0x01]), 'application/x-protobuf'],
    ] as const) {
      const response = await post(acme, body, { 'content-type': contentType });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ type: '/problems/bad-request' });
    }
    const badGzip = await post(acme, 'not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(badGzip.status).toBe(400);
    for (const headers of <Record<string, string>[]>[{ 'content-type': 'text/plain' }, { 'content-type': 'application/json', 'content-encoding': 'br' }]) {
      const response = await post(acme, '{}', headers);
      expect(response.status).toBe(415);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
    }
  });

  test('missing, wrong and other organizations\' keys are 401, before the body is read', async () => {
    const other = await createTenant(t);
    const attempts: Record<string, string>[] = [{}, { 'x-organization-api-key': 'clk_wrong' }, { 'x-organization-api-key': other.apiKey }, { authorization: `Bearer ${acme.adminToken}` }];
    for (const headers of attempts) {
      const response = await t.fetch(path(acme), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: 'not even json' });
      await checkResponse('POST', TRACES, response);
      expect(response.status).toBe(401);
    }
  });

  test('413 for a body, or a gzip-decoded body, over MAX_BODY_BYTES', async () => {
    const small = await createTestApp({ MAX_BODY_BYTES: '2048' });
    const tenant = await createTenant(small);
    const big = JSON.stringify({ resourceSpans: [], padding: 'x'.repeat(4000) });
    for (const [body, encoding] of [
      [big, undefined],
      [Bun.gzipSync(big), 'gzip'],
    ] as const) {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-organization-api-key': tenant.apiKey };
      if (encoding) headers['content-encoding'] = encoding;
      const response = await small.fetch(path(tenant), { method: 'POST', headers, body });
      await checkResponse('POST', TRACES, response);
      expect(response.status).toBe(413);
    }
  });

  test('429 with Retry-After when the key\'s rate limit is spent (OTLP exporters retry it)', async () => {
    const limited = await createTestApp({ INGEST_RATE_LIMIT_PER_MINUTE: '1' });
    const tenant = await createTenant(limited);
    const send = () =>
      limited.fetch(path(tenant), { method: 'POST', headers: { 'content-type': 'application/json', 'x-organization-api-key': tenant.apiKey }, body: '{}' });
    expect((await send()).status).toBe(200);
    const refused = await send();
    await checkResponse('POST', TRACES, refused);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('a key limited to browser origins refuses other origins (403), and answers CORS to its own', async () => {
    const tenant = await createTenant(t);
    const key = await t.client({ token: tenant.adminToken }).POST('/orgs/{org}/apikeys', { params: { path: { org: 'me' } }, body: { label: 'web', allowedOrigins: ['https://shop.example.test'] } });
    const send = (origin: string) =>
      t.fetch(path(tenant), { method: 'POST', headers: { 'content-type': 'application/json', 'x-organization-api-key': key.data!.key, origin }, body: '{}' });
    const refused = await send('https://evil.example.test');
    await checkResponse('POST', TRACES, refused);
    expect(refused.status).toBe(403);
    const allowed = await send('https://shop.example.test');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://shop.example.test');
  });
});
