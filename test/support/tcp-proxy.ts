import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a database server, so tests can take the database away
 * from a server process without stopping the database (which other runs share):
 * - `cut()`: every connection is destroyed and the port stops accepting (connection refused),
 * - `freeze()`: connections stay open but nothing is forwarded any more (a hung network),
 * - `freezeExisting()`: the open connections go silent, new ones work (state lost in a firewall),
 * - `restore()`: accepting and forwarding again, on the same port.
 */
export interface TcpProxy {
  readonly port: number;
  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string;
  /** Connections accepted since the start (a test can check that traffic went through). */
  readonly accepted: number;
  cut(): Promise<void>;
  freeze(): void;
  freezeExisting(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export interface ProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Start cut: the port is reserved but refuses connections until `restore()`. */
  startCut?: boolean;
}

export async function startTcpProxy({ targetHost, targetPort, startCut = false }: ProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const silenced = new WeakSet<net.Socket>();
  let frozen = false;
  let accepted = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const onConnection = (client: net.Socket) => {
    accepted += 1;
    const upstream = net.connect(targetPort, targetHost);
    track(client);
    track(upstream);
    const quiet = () => frozen || silenced.has(client);
    client.on('data', (chunk) => void (quiet() || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (quiet() || client.write(chunk)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };

  let server: net.Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const s = net.createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve((s.address() as net.AddressInfo).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (!s) return resolve();
      s.close(() => resolve());
    });
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const port = await listen(0);
  if (startCut) await stopListening();

  return {
    port,
    get accepted() {
      return accepted;
    },
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    async cut() {
      frozen = false;
      await Promise.all([stopListening(), destroyAll()]);
    },
    freeze() {
      frozen = true;
    },
    freezeExisting() {
      for (const socket of sockets) silenced.add(socket);
    },
    async restore() {
      // Connections that saw a freeze carry half-forwarded protocol messages: they go.
      if (frozen) destroyAll();
      frozen = false;
      if (!server) await listen(port);
    },
    async close() {
      await Promise.all([stopListening(), destroyAll()]);
    },
  };
}
