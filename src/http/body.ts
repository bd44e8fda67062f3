import { Elysia } from 'elysia';
import { badRequest, payloadTooLarge, unsupportedMediaType } from './problem.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

async function readCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw payloadTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * Request bodies are JSON only, read with a hard size cap (also when no Content-Length is sent),
 * decoded as strict UTF-8 and parsed once. Everything else is a 4xx with a clear reason.
 */
export const jsonBody = (maxBytes: number) =>
  new Elysia({ name: 'json-body' })
    .onRequest(({ request }) => {
      const length = Number(request.headers.get('content-length') ?? 0);
      if (length > maxBytes) throw payloadTooLarge(maxBytes);
    })
    .onParse({ as: 'global' }, async ({ request, contentType }) => {
      const bytes = await readCapped(request, maxBytes);
      if (bytes.byteLength === 0) return undefined;
      const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
      if (mediaType !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(mediaType)) {
        throw unsupportedMediaType();
      }
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw badRequest('The request body is not valid UTF-8.');
      }
      try {
        return JSON.parse(text);
      } catch {
        throw badRequest('The request body is not valid JSON.');
      }
    });
