/**
 * The TCP peer of each request, recorded by the server (main.ts), which is the only place that
 * knows it: `app.handle(request)` carries no socket.
 */
const peers = new WeakMap<Request, string>();

export function rememberPeer(request: Request, address: string | undefined): void {
  if (address) peers.set(request, address);
}

/**
 * The client's address. With `trustProxy` = N, the N proxies in front of the server each
 * appended to X-Forwarded-For, so the client is the N-th entry from the right; anything left of
 * it was written by the client and is not believed. Without a trusted proxy the header is
 * ignored. Undefined when the request did not come through a socket (in-process tests).
 */
export function clientIp(request: Request, trustProxy: number): string | undefined {
  if (trustProxy > 0) {
    const forwarded = (request.headers.get('x-forwarded-for') ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    if (forwarded.length) return forwarded[Math.max(0, forwarded.length - trustProxy)];
  }
  return peers.get(request);
}
