import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

/*
 * An instrumented application configured by environment variables only: the exporter is
 * built without options, so OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS decide
 * where its spans go. It records one model call and exits.
 */
const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'env-configured-app' }),
  spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
});
const span = provider.getTracer('env-app').startSpan('chat gpt-4o', {
  attributes: {
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': 'gpt-4o',
    'gen_ai.conversation.id': process.argv[2] ?? 'env-conversation',
    'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Configured by environment variables?' }] }]),
    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'Yes, only those.' }], finish_reason: 'stop' }]),
  },
});
span.end();
await provider.shutdown();
