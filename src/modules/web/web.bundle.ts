import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Logger } from '../../logger.ts';

const PROJECT_ROOT = join(import.meta.dir, '..', '..', '..');
/** A `bun build --compile` binary runs from Bun's virtual file system, without web/ or node_modules. */
const COMPILED = import.meta.dir.startsWith('/$bunfs') || import.meta.dir.includes('~BUN');
/** The dashboard's sources: `web/index.html` and what it imports. */
export const WEB_SOURCE = join(PROJECT_ROOT, 'web', 'index.html');
/**
 * Where `bun run build:web` writes the bundle; the server prefers it when present. A compiled
 * binary (dist/chatlogger) looks beside itself, so dist/web works for it too.
 */
export const WEB_DIST = COMPILED ? join(dirname(process.execPath), 'web') : join(PROJECT_ROOT, 'dist', 'web');
export const ASSET_PATH = '/app/assets/';

export interface WebFile {
  body: Uint8Array<ArrayBuffer>;
  gzip: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

export interface WebBundle {
  index: WebFile;
  /** By file name, as requested under `/app/assets/`. */
  assets: Map<string, WebFile>;
  source: 'dist' | 'memory';
  ms: number;
}

export interface BuiltFile {
  /** `index.html` or `assets/<name>-<hash>.<ext>`. */
  path: string;
  body: Uint8Array<ArrayBuffer>;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
const typeOf = (path: string) => TYPES[extname(path)] ?? 'application/octet-stream';

/**
 * Bundles the dashboard with Bun's bundler, minified: index.html referencing hashed JS and CSS
 * under /app/assets/, so the assets can be cached for good and only index.html is revalidated.
 */
export async function buildWeb(source = WEB_SOURCE): Promise<BuiltFile[]> {
  const result = await Bun.build({
    entrypoints: [source],
    target: 'browser',
    minify: true,
    // Pages imported with import() (the charts) become chunks loaded when first needed.
    splitting: true,
    publicPath: ASSET_PATH,
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return Promise.all(
    result.outputs.map(async (output) => {
      const path = output.path.endsWith('.html') ? 'index.html' : `assets/${basename(output.path)}`;
      return { path, body: new Uint8Array(await output.arrayBuffer()), type: typeOf(path) };
    }),
  );
}

function readDist(dist: string): BuiltFile[] {
  const read = (path: string) => new Uint8Array(readFileSync(path));
  const files: BuiltFile[] = [{ path: 'index.html', body: read(join(dist, 'index.html')), type: typeOf('index.html') }];
  const assets = join(dist, 'assets');
  if (existsSync(assets)) {
    for (const name of readdirSync(assets)) files.push({ path: `assets/${name}`, body: read(join(assets, name)), type: typeOf(name) });
  }
  return files;
}

function toWebFile(file: BuiltFile): WebFile {
  return {
    body: file.body,
    gzip: Bun.gzipSync(file.body, { level: 9 }),
    type: file.type,
    etag: `"${Bun.hash(file.body).toString(36)}"`,
  };
}

export interface BundleOptions {
  log: Logger;
  /** A directory written by `bun run build:web`; used when it holds an index.html. */
  dist?: string;
  /** The index.html to bundle otherwise; null when there are no sources (a compiled binary). */
  source?: string | null;
}

/** Reads the prebuilt bundle, or bundles the sources in memory; logs what it did and how long it took. */
export async function loadWebBundle({ log, dist = WEB_DIST, source = COMPILED ? null : WEB_SOURCE }: BundleOptions): Promise<WebBundle> {
  const started = performance.now();
  const from = existsSync(join(dist, 'index.html')) ? 'dist' : 'memory';
  if (from === 'memory' && (!source || !existsSync(source))) {
    log.warn({ dist }, 'no dashboard: build it with `bun run build:web`; /app answers 503');
    throw new Error('no dashboard bundle');
  }
  try {
    const files = from === 'dist' ? readDist(dist) : await buildWeb(source!);
    const assets = new Map<string, WebFile>();
    let index: WebFile | undefined;
    for (const file of files) {
      if (file.path === 'index.html') index = toWebFile(file);
      else assets.set(file.path.slice('assets/'.length), toWebFile(file));
    }
    if (!index) throw new Error('the dashboard bundle has no index.html');
    const ms = Math.round(performance.now() - started);
    const bytes = [...assets.values()].reduce((sum, f) => sum + f.body.length, 0);
    const gzipBytes = [...assets.values()].reduce((sum, f) => sum + f.gzip.length, 0);
    log.info({ source: from, ms, assets: assets.size, bytes, gzipBytes }, 'dashboard ready');
    return { index, assets, source: from, ms };
  } catch (error) {
    log.error({ err: error, source: from }, 'dashboard bundle failed; /app answers 503');
    throw error;
  }
}

let bundle: Promise<WebBundle> | undefined;

/**
 * The dashboard's files, loaded once per process: read from dist/web when it was built ahead, else
 * bundled in memory from web/ (tens of milliseconds), so `bun start` needs no build step.
 */
export function webBundle(log: Logger): Promise<WebBundle> {
  bundle ??= loadWebBundle({ log });
  return bundle;
}
