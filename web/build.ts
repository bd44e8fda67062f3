/**
 * `bun run build:web`: writes the dashboard bundle to dist/web/, which the server then serves
 * instead of bundling web/ in memory at start. Prints the size of what a browser downloads.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildWeb, WEB_DIST } from '../src/modules/web/web.bundle.ts';

const started = performance.now();
const files = await buildWeb();
const ms = Math.round(performance.now() - started);
rmSync(WEB_DIST, { recursive: true, force: true });
for (const file of files) {
  const target = join(WEB_DIST, file.path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, file.body);
}
const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
for (const file of files) console.log(`${file.path.padEnd(36)} ${kb(file.body.length).padStart(10)}  gzip ${kb(Bun.gzipSync(file.body, { level: 9 }).length).padStart(9)}`);
console.log(`built ${files.length} files into ${WEB_DIST} in ${ms} ms`);
