/**
 * What Bun's development mode costs a small request, apart from the application:
 *   bun bench/serve-mode.ts
 * Bun.serve runs in development mode unless told otherwise or NODE_ENV=production. This serves
 * a JSON body parsed and answered (about what an ingestion request costs Bun itself) with
 * `development: true` and with `development: false`, alternately, ROUNDS times each, and prints
 * requests/s for each run: the two modes measured under the same load of the machine.
 * ChatLogger's servers pass `development: false` (src/main.ts), whatever NODE_ENV says, so the
 * mode never depends on the environment; on the development machine the two modes differ by less
 * than the noise between runs.
 */
import { log, markdownTable } from './support.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 32;
const WARMUP = 3_000;
const MEASURED = 10_000;
const body = JSON.stringify({ role: 'user', content: 'Hello! I would like to know the status of my order, it has not arrived yet.' });

async function run(development: boolean): Promise<number> {
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    development,
    fetch: async (request) => Response.json({ received: Object.keys((await request.json()) as object).length }, { status: 201 }),
  });
  const url = `http://127.0.0.1:${server.port}/`;
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) await (await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).arrayBuffer();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, () => send(WARMUP / CONNECTIONS)));
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => send(MEASURED / CONNECTIONS)));
  const perSecond = Math.round(MEASURED / ((performance.now() - started) / 1000));
  server.stop(true);
  return perSecond;
}

const rows: string[][] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const dev = await run(true);
  const prod = await run(false);
  log(`round ${round}: development ${dev} requests/s, production ${prod} requests/s`);
  rows.push([String(round), String(dev), String(prod), `${(prod / dev).toFixed(2)}×`]);
}
console.log(markdownTable(['round', 'development: true (req/s)', 'development: false (req/s)', 'false / true'], rows, 1));
