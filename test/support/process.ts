import type { Subprocess } from 'bun';
import { join } from 'node:path';

/**
 * Helpers for tests that run the real entry points (`src/main.ts`, `src/cli.ts`) as child
 * processes. Every process started here is tracked, so `killAll()` in an `afterAll` hook ends
 * whatever a failing test left running.
 */

export const PROJECT_ROOT = join(import.meta.dir, '..', '..');

type Proc = Subprocess<'pipe', 'pipe', 'pipe'>;
const live = new Set<Proc>();

/**
 * A minimal environment for a child: nothing of the test runner's own environment leaks in
 * (NODE_ENV=test, TEST_DATABASE_URL, a developer's JWT_SECRET or DATABASE_URL...).
 */
export function childEnv(env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const value = process.env[name];
    if (value !== undefined) result[name] = value;
  }
  for (const [name, value] of Object.entries(env)) if (value !== undefined) result[name] = value;
  return result;
}

export interface Spawned {
  proc: Proc;
  /** Complete stdout lines so far (grows while the process runs). */
  lines: string[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process has ended and its output is fully read. */
  exited: Promise<number>;
  /** Resolves with the first stdout line (past or future) that matches; rejects on exit or timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
}

async function collect(stream: ReadableStream<Uint8Array>, onText: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
  onText(decoder.decode());
}

/** Starts `bun <args>` in the project root with exactly `env` (see `childEnv`). */
export function spawnBun(args: string[], env: Record<string, string>): Spawned {
  return spawnProcess([process.execPath, ...args], env);
}

/** Starts any command (a compiled binary, `curl`...) in the project root with exactly `env`. */
export function spawnProcess(argv: string[], env: Record<string, string>): Spawned {
  const proc = Bun.spawn(argv, {
    cwd: PROJECT_ROOT,
    env,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  live.add(proc);
  const lines: string[] = [];
  let out = '';
  let partial = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  const outDone = collect(proc.stdout, (text) => {
    out += text;
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const part of parts) if (part.trim() !== '') lines.push(part);
    notify();
  });
  const errDone = collect(proc.stderr, (text) => {
    err += text;
  });
  let ended = false;
  const exited = (async () => {
    const code = await proc.exited;
    await Promise.allSettled([outDone, errDone]);
    if (partial.trim() !== '') lines.push(partial);
    partial = '';
    live.delete(proc);
    ended = true;
    notify();
    return code;
  })();

  const spawned: Spawned = {
    proc,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine(match, timeoutMs) {
      return new Promise<string>((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < lines.length; seen++) {
            if (match(lines[seen]!)) {
              finish();
              resolve(lines[seen]!);
              return;
            }
          }
          if (ended) {
            finish();
            reject(new Error(`process exited (${proc.exitCode}) before the expected line\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no matching line within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  return spawned;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `bun <args>` to completion; killed (and reported) if it takes longer than `timeoutMs`. */
export async function runBun(
  args: string[],
  env: Record<string, string>,
  { timeoutMs = 30_000, stdin }: { timeoutMs?: number; stdin?: string } = {},
): Promise<RunResult> {
  const startedAt = performance.now();
  const child = spawnBun(args, env);
  if (stdin !== undefined) child.proc.stdin.write(stdin);
  child.proc.stdin.end();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.proc.kill('SIGKILL');
  }, timeoutMs);
  const exitCode = await child.exited;
  clearTimeout(timer);
  if (timedOut) throw new Error(`bun ${args.join(' ')} took longer than ${timeoutMs} ms\nstdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
  return { exitCode, stdout: child.stdout(), stderr: child.stderr(), ms: performance.now() - startedAt };
}

export interface RunningServer extends Spawned {
  port: number;
  url: string;
  /** The parsed `listening` log line. */
  listening: Record<string, unknown>;
}

const randomPort = () => 20_000 + Math.floor(Math.random() * 20_000);

/**
 * Starts `bun src/main.ts` on a random port in 20000-40000 and waits for its `listening` log
 * line; a start that fails because the port is taken is retried on another port.
 */
export async function startServer(
  env: Record<string, string>,
  { timeoutMs = 60_000, attempts = 5, command = [process.execPath, 'src/main.ts'] }: { timeoutMs?: number; attempts?: number; command?: string[] } = {},
): Promise<RunningServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = randomPort();
    const child = spawnProcess(command, { ...env, PORT: String(port) });
    try {
      const line = await child.waitForLine((l) => parseJson(l)?.msg === 'listening', timeoutMs);
      const listening = parseJson(line)!;
      return { ...child, port, url: String(listening.url), listening };
    } catch (error) {
      lastError = error;
      if (child.proc.exitCode === null) {
        child.proc.kill('SIGKILL');
        await child.exited;
        throw error;
      }
      await child.exited;
      const output = child.stdout() + child.stderr();
      if (!/EADDRINUSE|address.*in use|port.*in use/i.test(output)) throw error;
    }
  }
  throw lastError;
}

/** Sends a signal and waits for the exit, up to `timeoutMs` (after which the process is killed). */
export async function stopProcess(child: Spawned, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ exitCode: number | null; ms: number }> {
  const startedAt = performance.now();
  child.proc.kill(signal);
  let timer: Timer | undefined;
  const result = await Promise.race([
    child.exited.then((code) => code as number | null),
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const ms = performance.now() - startedAt;
  if (result === null) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  return { exitCode: result, ms };
}

/** Kills every process these helpers started that is still running. For `afterAll`. */
export async function killAll(): Promise<void> {
  const running = [...live];
  for (const proc of running) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  await Promise.allSettled(running.map((proc) => proc.exited));
  live.clear();
}

export function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
