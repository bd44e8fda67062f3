import { Elysia } from 'elysia';
import { headersTooLarge } from './problem.ts';
import { pathOf } from './security-headers.ts';

/** Bun refuses more than about 150 header lines with a bare 431; the app answers first. */
export const MAX_HEADER_COUNT = 100;

/** The size of the request line and header section as sent: `name: value\r\n` per header. */
function headerBytes(request: Request): { bytes: number; count: number } {
  const url = request.url;
  let bytes = request.method.length + url.length - url.indexOf(pathOf(url)) + ' HTTP/1.1\r\n'.length + 1;
  let count = 0;
  request.headers.forEach((value, name) => {
    bytes += name.length + value.length + 4;
    count += 1;
  });
  return { bytes, count };
}

/**
 * Requests whose headers exceed `maxBytes` (or MAX_HEADER_COUNT lines) get a 431 problem before
 * anything else reads them. Bun's own limit (16 KiB) stays above, as a last resort.
 */
export const headerLimit = (maxBytes: number) =>
  new Elysia({ name: 'header-limit' }).onRequest(({ request }) => {
    const { bytes, count } = headerBytes(request);
    if (bytes > maxBytes || count > MAX_HEADER_COUNT) {
      throw headersTooLarge(`The request line and headers may take at most ${maxBytes} bytes in ${MAX_HEADER_COUNT} fields.`);
    }
  });
