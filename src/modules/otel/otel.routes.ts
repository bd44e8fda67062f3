import { Elysia } from 'elysia';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Config } from '../../config.ts';
import { API_KEY_HEADER, type Auth } from '../auth/auth.plugin.ts';
import { readCapped } from '../../http/body.ts';
import { ingestionCors } from '../../http/cors.ts';
import { pathParams } from '../../http/path-params.ts';
import { badRequest, HttpError, payloadTooLarge, unauthorized } from '../../http/problem.ts';
import type { IngestRateLimit } from '../ingestion/ingest-rate-limit.ts';
import { authenticateApiKey } from '../apikeys/apikeys.service.ts';
import { metrics } from '../../observability/metrics.ts';
import { mapSpans } from './conversations.ts';
import { decodeTraceRequest, encodeTraceResponse, NotOtlpError, type OtlpEncoding } from './otlp.ts';
import { storeConversations } from './otel.storage.ts';

const gunzipAsync = promisify(gunzip);

const MEDIA_TYPES: Record<string, OtlpEncoding> = {
  'application/x-protobuf': 'protobuf',
  'application/protobuf': 'protobuf',
  'application/json': 'json',
};
const CONTENT_TYPE: Record<OtlpEncoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

const unsupported = (detail: string) => new HttpError(415, 'unsupported-media-type', 'Unsupported Media Type', detail);

function encodingOf(contentType: string | null): OtlpEncoding {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  const encoding = MEDIA_TYPES[mediaType];
  if (!encoding) throw unsupported('Send OTLP traces as application/x-protobuf or application/json.');
  return encoding;
}

/** The body as sent, un-gzipped; both sizes are held to MAX_BODY_BYTES. */
async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw payloadTooLarge(maxBytes);
  const contentEncoding = request.headers.get('content-encoding')?.trim().toLowerCase() || 'identity';
  if (contentEncoding !== 'identity' && contentEncoding !== 'gzip' && contentEncoding !== 'x-gzip') {
    throw unsupported('The only content encoding accepted is gzip.');
  }
  const bytes = await readCapped(request, maxBytes);
  if (contentEncoding === 'identity') return bytes;
  try {
    return await gunzipAsync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw payloadTooLarge(maxBytes);
    throw badRequest('The body is not valid gzip.');
  }
}

/** The key from `x-organization-api-key` (what OTEL_EXPORTER_OTLP_HEADERS sets) or `Authorization: Bearer`. */
function presentedKey(headers: Record<string, string | undefined>): string | undefined {
  return headers[API_KEY_HEADER] ?? headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
}

const MAX_REASONS = 5;

function partialSuccessMessage(rejected: { spanId: string; reason: string }[]): string {
  const listed = rejected.slice(0, MAX_REASONS).map((r) => `span ${r.spanId || '(no id)'}: ${r.reason}`);
  const more = rejected.length > MAX_REASONS ? `; and ${rejected.length - MAX_REASONS} more` : '';
  return `${rejected.length} span${rejected.length === 1 ? '' : 's'} could not be stored: ${listed.join('; ')}${more}`;
}

/**
 * OTLP/HTTP traces per organization: `OTEL_EXPORTER_OTLP_ENDPOINT=<server>/api/v1/orgs/<slug>/otel`.
 * The body is read by the handler itself, after the API key and the rate limit have been checked
 * (protobuf and gzip are not for the JSON body parser; this plugin is registered before it).
 */
export const otelRoutes = (config: Config, auth: Auth, rateLimit: IngestRateLimit) =>
  new Elysia({ name: 'otel-routes', prefix: '/api/v1/orgs/:slug/otel' })
    .use(pathParams)
    .use(auth)
    .use(rateLimit)
    .macro({
      otlpApiKey: {
        async resolve({ em, headers, params, set }) {
          const slug = (params as Record<string, string> | undefined)?.slug ?? '';
          const tenant = await authenticateApiKey(em, slug, presentedKey(headers), config.apiKeyCacheSeconds);
          if (!tenant) throw unauthorized(`A valid API key of organization "${slug}" is required in the ${API_KEY_HEADER} header or as a Bearer token.`);
          Object.assign(set.headers, ingestionCors(tenant.allowedOrigins, headers.origin));
          return { tenant };
        },
      },
    })
    .post(
      '/v1/traces',
      async ({ em, tenant, request }) => {
        const encoding = encodingOf(request.headers.get('content-type'));
        const body = await readBody(request, config.maxBodyBytes);
        let spans;
        try {
          spans = decodeTraceRequest(body, encoding);
        } catch (error) {
          if (error instanceof NotOtlpError) throw badRequest(`The body is not an OTLP trace export (${error.message}).`);
          throw error;
        }
        const { conversations, rejected } = mapSpans(spans);
        const stored = await storeConversations(em, tenant.organizationId, conversations);
        for (const { conversation, reason } of stored.failed) for (const spanId of conversation.spanIds) rejected.push({ spanId, reason });
        metrics.chatsCreated.inc(stored.chatsCreated);
        metrics.messagesStored.inc(stored.messagesCreated);
        const partial = rejected.length ? { rejectedSpans: rejected.length, errorMessage: partialSuccessMessage(rejected) } : undefined;
        return new Response(encodeTraceResponse(encoding, partial), { status: 200, headers: { 'content-type': CONTENT_TYPE[encoding] } });
      },
      // The handler reads the body itself, after authentication: Elysia must not parse it.
      { otlpApiKey: true, ingestRateLimit: true, parse: 'none' },
    );
