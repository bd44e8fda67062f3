import OpenAI from 'openai';
import * as traceloop from '@traceloop/node-server-sdk';

/*
 * An application instrumented with OpenLLMetry (Traceloop's SDK), configured by its own
 * environment variables: TRACELOOP_BASE_URL (the OTLP endpoint) and TRACELOOP_API_KEY (sent as
 * `Authorization: Bearer`). Its OpenAI client talks to a stand-in for the OpenAI API on a local
 * port, so no network and no model are needed; the spans are the instrumentation's own.
 */
const openAi = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch: async (request) => {
    const { messages } = (await request.json()) as { messages: { role: string; content: string }[] };
    const last = messages.at(-1)!.content;
    return Response.json({
      id: `chatcmpl-${messages.length}`,
      object: 'chat.completion',
      created: 1_790_000_000,
      model: 'gpt-4o-mini-2024-07-18',
      choices: [{ index: 0, message: { role: 'assistant', content: `You said: ${last}` }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10 * messages.length, completion_tokens: 4, total_tokens: 10 * messages.length + 4 },
    });
  },
});

traceloop.initialize({ appName: 'openllmetry-app', disableBatch: true, instrumentModules: { openAI: OpenAI } });
const client = new OpenAI({ apiKey: 'not-used', baseURL: `http://127.0.0.1:${openAi.port}/v1` });
const history: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'system', content: 'Be brief.' }];
await traceloop.withAssociationProperties({ session_id: process.argv[2] ?? 'openllmetry-session', user_id: 'customer-9' }, async () => {
  for (const question of ['Hello', 'How are you?']) {
    history.push({ role: 'user', content: question });
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history });
    history.push(completion.choices[0]!.message);
  }
});
await traceloop.forceFlush();
openAi.stop(true);
process.exit(0);
