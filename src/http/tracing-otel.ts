import { Elysia } from 'elysia';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Span, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { requestIdOf } from './request-id.ts';
import type { Tracing } from './tracing.ts';

const headerGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/**
 * One SERVER span per request, continuing the caller's trace when it sends `traceparent`.
 * Named and labelled like the metrics (method and route template, never the path: paths carry
 * tenants' slugs and ids). Loaded by `startTracing` only.
 */
export function createTracing({ endpoint, serviceVersion }: { endpoint: string; serviceVersion: string }): Tracing {
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'chatlogger', 'service.version': serviceVersion }),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('chatlogger');
  const propagator = new W3CTraceContextPropagator();
  const spans = new WeakMap<Request, Span>();

  const plugin = new Elysia({ name: 'request-tracing' })
    .onRequest(({ request }) => {
      const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
      spans.set(request, tracer.startSpan(request.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method } }, parent));
    })
    .onAfterResponse({ as: 'global' }, (context) => {
      const { request, route, set, responseValue } = context;
      const span = spans.get(request);
      if (!span) return;
      const template = route || 'unmatched';
      const status = responseValue instanceof Response ? responseValue.status : Number(set.status ?? 200);
      span.updateName(`${request.method} ${template}`);
      span.setAttributes({ 'http.route': template, 'http.response.status_code': status, 'chatlogger.request_id': requestIdOf(request) ?? '' });
      const { tenant, org } = context as { tenant?: { organizationId?: string }; org?: { id?: string } };
      const organizationId = tenant?.organizationId ?? org?.id;
      if (organizationId) span.setAttribute('chatlogger.organization_id', organizationId);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });

  return { plugin, flush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
}
