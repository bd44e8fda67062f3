import { Elysia } from 'elysia';
import { badRequest, payloadTooLarge, unsupportedMediaType, validationFailed } from './problem.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Deeper documents are refused before any recursive code (validation, storage) walks them. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether objects and arrays nest more than `levels` deep (a scalar is 0, `{}` is 1). Recursion
 * ends at `levels`, so the stack stays shallow; nothing is allocated per value.
 */
export function nestedDeeperThan(value: unknown, levels: number, depth = 0): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (depth >= levels) return true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeperThan(child, levels, depth + 1)) return true;
  }
  return false;
}

export async function readCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  // A declared length (already checked against the cap) bounds what HTTP framing delivers, so
  // the native read is safe and far cheaper than pulling the stream chunk by chunk.
  if (request.headers.has('content-length')) return new Uint8Array(await request.arrayBuffer());
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
 * A request body not read yet. The global parser hands this to Elysia instead of the document, so
 * nothing is read or parsed before the route has authenticated (and rate-limited) the caller: the
 * `operation` macro of src/http/contract.ts reads it, after the route's authentication.
 */
export class PendingBody {
  private value: Promise<unknown> | undefined;
  constructor(private readonly reader: () => Promise<unknown>) {}
  read(): Promise<unknown> {
    return (this.value ??= this.reader());
  }
}

async function parseJson(request: Request, contentType: string | undefined, maxBytes: number): Promise<unknown> {
  const bytes = await readCapped(request, maxBytes);
  if (bytes.byteLength === 0) return null;
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
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('The request body is not valid JSON.');
  }
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) throw validationFailed([{ pointer: '/body', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  return value;
}

/**
 * Request bodies are JSON only, read with a hard size cap (also when no Content-Length is sent),
 * decoded as strict UTF-8 and parsed once. Everything else is a 4xx with a clear reason. The body
 * is read only when the route asks for it (PendingBody), after authentication.
 */
export const jsonBody = (maxBytes: number) =>
  new Elysia({ name: 'json-body' }).onParse({ as: 'global' }, ({ request, contentType }) => {
    // Refused before reading a byte when the client announces the size (costs nothing).
    if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw payloadTooLarge(maxBytes);
    // Not undefined: undefined would hand the stream to Elysia's own parser.
    return new PendingBody(() => parseJson(request, contentType, maxBytes));
  });
