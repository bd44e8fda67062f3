/**
 * The crash scenario shared by test/crash.test.ts and bench/crash.ts: a real server process under
 * sustained single-message ingestion with client-chosen ids is killed with SIGKILL, several
 * times, and restarted on the same database; the clients send every message that got no 2xx
 * again, with the same id, until it is acknowledged. Then what the clients were told is compared
 * with what the server holds.
 */
import { startServer, type RunningServer } from './process.ts';
import { createTenantOverHttp, IngestLoad, verify, type Verdict } from './ingest-load.ts';

export interface CrashOptions {
  /** The server's environment (database, admin credentials), without PORT. */
  env: Record<string, string>;
  superadmin: { email: string; password: string };
  clients: number;
  kills: number;
  /** Load before each kill, and after the last restart. */
  loadMs: number;
  chats?: number;
  log?: (message: string) => void;
}

export interface CrashResult extends Verdict {
  kills: number;
  requests: number;
  /** Requests that got no answer at all (the process died under them, or was not up yet). */
  networkErrors: number;
  /** Error statuses answered (503 while the database was still opening, say). */
  errorStatuses: number;
  unacknowledged: number;
  restartMs: number[];
}

export async function crashScenario(options: CrashOptions): Promise<CrashResult> {
  const log = options.log ?? (() => {});
  let server: RunningServer = await startServer(options.env);
  const url = () => `http://127.0.0.1:${server.port}`;
  const tenant = await createTenantOverHttp(url(), options.superadmin, options.chats ?? 8);
  // The server may change while a request is being prepared: every request reads the current one.
  const load = new IngestLoad({ baseUrl: url, tenant, clients: options.clients, timeoutMs: 30_000 }).start();
  const restartMs: number[] = [];
  try {
    for (let kill = 1; kill <= options.kills; kill++) {
      await Bun.sleep(options.loadMs * (0.75 + Math.random() / 2));
      const acknowledged = load.acknowledged.size;
      server.proc.kill('SIGKILL');
      await server.exited;
      log(`kill ${kill}: SIGKILL after ${acknowledged} acknowledged messages`);
      const startedAt = performance.now();
      server = await startServer(options.env);
      restartMs.push(performance.now() - startedAt);
      log(`kill ${kill}: restarted in ${Math.round(restartMs.at(-1)!)} ms`);
    }
    await Bun.sleep(options.loadMs);
  } finally {
    await load.stop();
  }
  const verdict = await verify(url(), load, tenant);
  server.proc.kill('SIGTERM');
  await server.exited;
  return {
    ...verdict,
    kills: options.kills,
    requests: load.attempts.length,
    networkErrors: load.attempts.filter((a) => a.status === 0).length,
    errorStatuses: load.attempts.filter((a) => a.status >= 400).length,
    unacknowledged: load.unacknowledged.size,
    restartMs,
  };
}
