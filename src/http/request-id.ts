import { Elysia } from 'elysia';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller may send as its own id: short, and safe to put in a log line or a header. */
const ACCEPTED = /^[A-Za-z0-9._-]{1,128}$/;

const ids = new WeakMap<Request, string>();

/** The id of a request that went through the `requestId` plugin. */
export function requestIdOf(request: Request): string | undefined {
  return ids.get(request);
}

/**
 * Gives every request an id: the caller's `X-Request-Id` when it is acceptable, otherwise a new
 * UUIDv7. It is answered in the same header on every response, errors included (Elysia merges
 * `set.headers` into the Responses that handlers and the error plugin build).
 */
export const requestId = () =>
  new Elysia({ name: 'request-id' }).onRequest(({ request, set }) => {
    const given = request.headers.get(REQUEST_ID_HEADER);
    const id = given !== null && ACCEPTED.test(given) ? given : Bun.randomUUIDv7();
    ids.set(request, id);
    set.headers[REQUEST_ID_HEADER] = id;
  });
