import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
// PGlite loads these files from next to its own module (`new URL('./pglite.wasm', import.meta.url)`).
// Importing them makes `bun build --compile` embed them; built with `--asset-naming='[name].[ext]'`
// (the `build:binary` script) they land exactly where PGlite looks, in the binary's root. From
// source the imports are plain paths and PGlite reads its own copies. The package's `exports` do
// not list these files, hence the relative paths.
import pgliteWasm from '../../node_modules/@electric-sql/pglite/dist/pglite.wasm' with { type: 'file' };
import initdbWasm from '../../node_modules/@electric-sql/pglite/dist/initdb.wasm' with { type: 'file' };
import pgliteData from '../../node_modules/@electric-sql/pglite/dist/pglite.data' with { type: 'file' };

export const PGLITE_FILES = [pgliteWasm, initdbWasm, pgliteData];

// The extension the search migration creates (unaccent), as the bundle PGlite installs at start;
// embedded in the binary like the files above.
import unaccentBundle from '../../node_modules/@electric-sql/pglite/dist/unaccent.tar.gz' with { type: 'file' };

export const PGLITE_EXTENSIONS = { unaccent: unaccentBundle };

/**
 * The URL PGlite installs an extension's bundle from. PGlite reads it as a stream, which the files
 * embedded in the single executable (under /$bunfs/) do not offer: those are copied out once.
 */
export async function extensionBundleUrl(file: string): Promise<URL> {
  if (!file.startsWith('/$bunfs/')) return pathToFileURL(file);
  const copy = join(tmpdir(), `chatlogger-${process.pid}-${basename(file)}`);
  if (!existsSync(copy)) await Bun.write(copy, Bun.file(file));
  return pathToFileURL(copy);
}
