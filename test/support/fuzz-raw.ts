/**
 * Requests that only a raw socket can send, for the real HTTP parser in front of the app:
 * invalid UTF-8 in bodies and headers, duplicate and contradicting headers, bodies shorter or
 * longer than their Content-Length, broken chunked encoding, malformed request lines, oversized
 * URLs and headers. Each carries `x-fuzz-case: <n>` where it can, so a test can tell the requests
 * that reached the app from those the parser refused.
 */

export interface RawCase {
  n: number;
  name: string;
  bytes: Uint8Array;
  /** Close the writing side after sending: a client that gave up before its body was complete. */
  halfClose: boolean;
}

export interface RawContext {
  slug: string;
  apiKey: string;
  chatId: string;
  bearer: string;
}

const latin1 = (text: string) => Uint8Array.from(Buffer.from(text, 'latin1'));
const concat = (...parts: (string | number[] | Uint8Array)[]) =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p as Uint8Array)))));

export function rawCases(ctx: RawContext): RawCase[] {
  const messages = `/api/v1/orgs/${ctx.slug}/chats/${ctx.chatId}/messages`;
  const key = `x-organization-api-key: ${ctx.apiKey}\r\n`;
  const json = '{"role":"user","content":"raw"}';
  const head = (n: number, method: string, path: string, headers: string) =>
    `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-fuzz-case: ${n}\r\n${headers}`;
  const post = (n: number, headers: string, body: string | number[] | Uint8Array, length?: number | string) => {
    const size = typeof body === 'string' ? Buffer.byteLength(body, 'latin1') : body.length;
    return concat(head(n, 'POST', messages, `${headers}content-length: ${length ?? size}\r\n\r\n`), body);
  };

  const list: [string, (n: number) => Uint8Array, boolean?][] = [
    ['invalid UTF-8 in body', (n) => post(n, `${key}content-type: application/json\r\n`, concat('{"role":"user","content":"', [0xff, 0xfe, 0xc0, 0xaf], '"}'))],
    ['overlong and surrogate UTF-8', (n) => post(n, `${key}content-type: application/json\r\n`, concat('{"role":"user","content":"', [0xed, 0xa0, 0x80, 0xe0, 0x80, 0xaf], '"}'))],
    ['UTF-16 body', (n) => post(n, `${key}content-type: application/json; charset=utf-16\r\n`, Uint8Array.from(Buffer.from(json, 'utf16le')))],
    ['duplicate API key headers', (n) => post(n, `${key}${key}content-type: application/json\r\n`, json)],
    ['API key and a wrong one', (n) => post(n, `${key}x-organization-api-key: clk_wrong\r\ncontent-type: application/json\r\n`, json)],
    ['duplicate content types', (n) => post(n, `${key}content-type: application/json\r\ncontent-type: text/plain\r\n`, json)],
    ['duplicate authorization', (n) => concat(head(n, 'GET', '/users/me', `authorization: Bearer ${ctx.bearer}\r\nauthorization: Bearer x\r\n\r\n`))],
    ['duplicate cookies', (n) => concat(head(n, 'GET', '/users/me', `cookie: chatlogger_session=${ctx.bearer}\r\ncookie: chatlogger_session=x\r\n\r\n`))],
    ['duplicate host', (n) => concat(`GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['contradicting content lengths', (n) => concat(head(n, 'POST', messages, `${key}content-type: application/json\r\ncontent-length: 5\r\ncontent-length: ${json.length}\r\n\r\n`), json)],
    ['content length and chunked', (n) => concat(head(n, 'POST', messages, `${key}content-type: application/json\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n`), `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`)],
    ['bad chunk size', (n) => concat(head(n, 'POST', messages, `${key}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`), `zz\r\n${json}\r\n0\r\n\r\n`)],
    ['chunked, invalid UTF-8', (n) => concat(head(n, 'POST', messages, `${key}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`), '4\r\n', [0x22, 0xff, 0xfe, 0x22], '\r\n0\r\n\r\n')],
    ['chunked, never ends', (n) => concat(head(n, 'POST', messages, `${key}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`), '10\r\n{"role":"us'), true],
    ['body shorter than content-length', (n) => post(n, `${key}content-type: application/json\r\n`, '{"role":"us', 1000), true],
    ['body shorter, connection kept open', (n) => post(n, `${key}content-type: application/json\r\n`, '{"role":"us', 1000)],
    ['body longer than content-length', (n) => post(n, `${key}content-type: application/json\r\n`, `${json}GARBAGE\r\n\r\n`, json.length)],
    ['smuggled second request', (n) => post(n, `${key}content-type: application/json\r\n`, `${json}GET /users/me HTTP/1.1\r\nhost: x\r\n\r\n`, json.length)],
    ['negative content-length', (n) => post(n, `${key}content-type: application/json\r\n`, json, -1)],
    ['non-numeric content-length', (n) => post(n, `${key}content-type: application/json\r\n`, json, '12abc')],
    ['huge content-length, small body', (n) => post(n, `${key}content-type: application/json\r\n`, json, '99999999999999999999'), true],
    ['content-length above the limit', (n) => post(n, `${key}content-type: application/json\r\n`, json, String(64 * 1024 * 1024)), true],
    ['empty body with content type', (n) => post(n, `${key}content-type: application/json\r\n`, '')],
    ['no content type', (n) => post(n, key, json)],
    ['UTF-8 in a header value', (n) => post(n, `x-organization-api-key: clé-${ctx.apiKey}\r\ncontent-type: application/json\r\n`, json)],
    ['invalid UTF-8 in a header value', (n) => post(n, `x-organization-api-key: ${ctx.apiKey}\xff\xfe\r\ncontent-type: application/json\r\n`, json)],
    ['NUL in a header value', (n) => post(n, `x-organization-api-key: ${ctx.apiKey}\x00\r\ncontent-type: application/json\r\n`, json)],
    ['NUL in the path', (n) => concat(`GET /health\x00 HTTP/1.1\r\nhost: x\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['obsolete line folding', (n) => post(n, `x-organization-api-key: clk_\r\n ${ctx.apiKey}\r\ncontent-type: application/json\r\n`, json)],
    ['header without colon', (n) => post(n, `${key}garbage header line\r\ncontent-type: application/json\r\n`, json)],
    ['space before colon', (n) => post(n, `x-organization-api-key : ${ctx.apiKey}\r\ncontent-type: application/json\r\n`, json)],
    ['bare LF line ends', (n) => latin1(`GET /health HTTP/1.1\nhost: x\nx-fuzz-case: ${n}\n\n`)],
    ['unknown method', (n) => concat(head(n, 'BREW', '/health', '\r\n'))],
    ['lowercase method', (n) => concat(head(n, 'get', '/health', '\r\n'))],
    ['relative path', (n) => concat(`GET health HTTP/1.1\r\nhost: x\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['absolute-form target', (n) => concat(head(n, 'GET', 'http://evil.example/users/me', `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['asterisk target', (n) => concat(head(n, 'OPTIONS', '*', '\r\n'))],
    ['HTTP/9.9', (n) => latin1(`GET /health HTTP/9.9\r\nhost: x\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['HTTP/1.0 without host', (n) => latin1(`GET /health HTTP/1.0\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['HTTP/1.1 without host', (n) => latin1(`GET /health HTTP/1.1\r\nx-fuzz-case: ${n}\r\n\r\n`)],
    ['raw spaces in the path', (n) => concat(head(n, 'GET', '/orgs/me/chats?q=a b c', `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['raw UTF-8 in the path', (n) => concat(head(n, 'GET', `/orgs/me/chats/${'é'}`, `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['invalid UTF-8 in the path', (n) => concat(`GET /orgs/me/chats/`, [0xff, 0xfe], ` HTTP/1.1\r\nhost: x\r\nx-fuzz-case: ${n}\r\nauthorization: Bearer ${ctx.bearer}\r\n\r\n`)],
    ['invalid percent-encoding in the path', (n) => concat(head(n, 'GET', '/orgs/%ZZ/chats/%E0%A4%A', `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['dot segments', (n) => concat(head(n, 'GET', '/api/v1/../../users/me', `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['100 KB URL', (n) => concat(head(n, 'GET', `/orgs/me/chats?q=${'a'.repeat(100_000)}`, `authorization: Bearer ${ctx.bearer}\r\n\r\n`))],
    ['20 KB header', (n) => concat(head(n, 'GET', '/users/me', `authorization: Bearer ${'x'.repeat(20_000)}\r\n\r\n`))],
    ['1000 headers', (n) => concat(head(n, 'GET', '/health', `${Array.from({ length: 1000 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')}\r\n`))],
    ['expect 100-continue', (n) => post(n, `${key}content-type: application/json\r\nexpect: 100-continue\r\n`, json)],
    ['connection upgrade', (n) => concat(head(n, 'GET', '/health', 'connection: upgrade\r\nupgrade: websocket\r\n\r\n'))],
    ['garbage', () => latin1('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n')],
    ['empty request', () => latin1('\r\n\r\n')],
    ['headers never end', (n) => concat(head(n, 'GET', '/health', 'x-a: b\r\n')), true],
  ];
  return list.map(([name, build, halfClose], n) => ({ n, name, bytes: build(n), halfClose: halfClose ?? false }));
}
