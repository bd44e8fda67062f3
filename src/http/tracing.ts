import type { AnyElysia } from 'elysia';

/** Traces of HTTP requests, exported over OTLP/HTTP while OTEL_EXPORTER_OTLP_ENDPOINT is set. */
export interface Tracing {
  /** An Elysia plugin that opens one server span per request. */
  plugin: AnyElysia;
  /** Exports the spans ended so far (tests; shutdown does it too). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts tracing. OpenTelemetry is imported here and only here, so a server without an endpoint
 * never loads it: tracing off costs nothing.
 */
export async function startTracing(options: { endpoint: string; serviceVersion: string }): Promise<Tracing> {
  const { createTracing } = await import('./tracing-otel.ts');
  return createTracing(options);
}
