import net from 'node:net';

/**
 * HTTP/1.1 over a plain socket, for requests that no HTTP client would send: invalid bytes in
 * headers, duplicate or contradicting headers, bodies shorter or longer than announced.
 */

export interface RawReply {
  /** Undefined when the server closed the connection (or stayed silent) without answering. */
  status?: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
}

const HEADER_END = '\r\n\r\n';

function complete(buffer: Buffer): RawReply | undefined {
  const text = buffer.toString('latin1');
  const end = text.indexOf(HEADER_END);
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine!.split(' ')[1]);
  const rest = buffer.subarray(Buffer.byteLength(text.slice(0, end + HEADER_END.length), 'latin1'));
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.byteLength < length) return undefined;
    return { status, headers, body: rest.subarray(0, length).toString('utf8'), ms: 0 };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const raw = rest.toString('latin1');
    if (!raw.includes('0\r\n\r\n')) return undefined;
    let body = '';
    let at = 0;
    for (;;) {
      const eol = raw.indexOf('\r\n', at);
      const size = parseInt(raw.slice(at, eol), 16);
      if (!size) break;
      body += raw.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), ms: 0 };
  }
  // No length: a 1xx/204/304, or the body runs until the connection closes.
  return status === 204 || status === 304 || (status >= 100 && status < 200) ? { status, headers, body: '', ms: 0 } : undefined;
}

/**
 * Sends `bytes` and reads the first response. With `halfClose` the socket's writing side is
 * closed after sending (a client that gave up mid-body); otherwise it stays open until the
 * answer, the server's close or `timeoutMs`.
 */
export function rawRequest(port: number, bytes: Uint8Array | string, { halfClose = false, timeoutMs = 5000 } = {}): Promise<RawReply> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = net.connect(port, '127.0.0.1');
    const finish = (reply: RawReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...reply, ms: performance.now() - startedAt });
    };
    const partial = (): RawReply => {
      const buffer = Buffer.concat(chunks);
      const parsed = complete(buffer);
      if (parsed) return parsed;
      const text = buffer.toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const end = text.indexOf(HEADER_END);
      return { status: match ? Number(match[1]) : undefined, headers: {}, body: end >= 0 ? text.slice(end + 4) : '', ms: 0 };
    };
    const timer = setTimeout(() => finish(partial()), timeoutMs);
    socket.on('connect', () => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
      if (halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const parsed = complete(Buffer.concat(chunks));
      if (parsed) finish(parsed);
    });
    socket.on('error', () => finish(partial()));
    socket.on('close', () => finish(partial()));
  });
}
