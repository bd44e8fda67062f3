import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { Glob } from 'bun';
import { dirname, join, relative, resolve } from 'node:path';

setDefaultTimeout(30_000);

/*
 * The layers of src/, lowest first. A file imports from its own layer or from lower ones, never
 * from a higher one, so each layer can be read (and tested) without those above it.
 */
const LAYERS: { name: string; holds: (path: string) => boolean }[] = [
  { name: 'base', holds: (p) => ['config.ts', 'logger.ts', 'origins.ts', 'env.d.ts'].includes(p) || p.startsWith('generated/') },
  { name: 'db', holds: (p) => p.startsWith('db/') },
  { name: 'observability', holds: (p) => p.startsWith('observability/') },
  { name: 'http', holds: (p) => p.startsWith('http/') },
  { name: 'modules', holds: (p) => p.startsWith('modules/') },
  { name: 'composition', holds: (p) => ['app.ts', 'main.ts', 'cli.ts'].includes(p) },
];

/**
 * The one kind of arrow allowed upward: the database layer registers the entity classes with
 * MikroORM. An entity is a table's mapping (it imports only MikroORM and db/base.ts), not code
 * of its module.
 */
const allowedUpward = (from: string, to: string) => from === 'db/orm.ts' && to.endsWith('.entity.ts');

const SRC = resolve(import.meta.dir, '../src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

const layerOf = (path: string) => {
  const index = LAYERS.findIndex((layer) => layer.holds(path));
  return index;
};

async function importsOfSrc() {
  const arrows: { from: string; to: string }[] = [];
  for await (const file of new Glob('**/*.{ts,tsx}').scan(SRC)) {
    const text = await Bun.file(join(SRC, file)).text();
    for (const match of text.matchAll(IMPORT)) {
      const target = relative(SRC, resolve(SRC, dirname(file), match[1] ?? match[2]!));
      if (!target.startsWith('..')) arrows.push({ from: file, to: target });
    }
  }
  return arrows;
}

describe('layers of src/', () => {
  test('every file of src/ belongs to one layer', async () => {
    const unplaced: string[] = [];
    for await (const file of new Glob('**/*.{ts,tsx}').scan(SRC)) if (layerOf(file) < 0) unplaced.push(file);
    expect(unplaced).toEqual([]);
  });

  test('imports point down: no file imports from a layer above its own', async () => {
    const arrows = await importsOfSrc();
    expect(arrows.length).toBeGreaterThan(100);
    const upward = arrows
      .filter(({ from, to }) => layerOf(to) > layerOf(from) && !allowedUpward(from, to))
      .map(({ from, to }) => `${from} (${LAYERS[layerOf(from)]!.name}) -> ${to} (${LAYERS[layerOf(to)]!.name})`);
    expect(upward).toEqual([]);
  });

  test('the check sees an upward import when there is one', () => {
    // The rule itself, on a made-up arrow: a database file importing an HTTP helper.
    expect(layerOf('http/problem.ts')).toBeGreaterThan(layerOf('db/connect.ts'));
    expect(allowedUpward('db/connect.ts', 'http/problem.ts')).toBe(false);
    expect(allowedUpward('db/orm.ts', 'modules/users/user.entity.ts')).toBe(true);
  });
});
