import type { Schemas } from './api.ts';

export type SearchTerm = Schemas['SearchTerm'];

/** Marks the parts of a text that a search matched: every odd part is a match. */
export type Marker = (text: string) => string[];

/*
 * The API answers a search with the folded words it looked for (SearchTerm): lower case, accents
 * removed, one token per Chinese, Japanese or Thai character, an emoji as `u` and its code point.
 * The text is folded the same way here, character by character, remembering where each folded
 * character came from, so a match in the folded text marks the original characters.
 */

const LETTERS: Record<string, string> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', đ: 'd', ð: 'd', ł: 'l', þ: 'th', ı: 'i' };
const UNSPACED = /^[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]$/u;
const EMOJI = /^[\u2600-\u27bf\u{1f000}-\u{1faff}]$/u;

function foldChar(c: string): string {
  if (EMOJI.test(c)) return ` u${c.codePointAt(0)!.toString(16)} `;
  const lower = c.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
  return [...lower].map((l) => LETTERS[l] ?? l).join('');
}

function fold(text: string): { folded: string; from: number[]; to: number[] } {
  let folded = '';
  const from: number[] = [];
  const to: number[] = [];
  let i = 0;
  for (const c of text) {
    const f = foldChar(c);
    for (let k = 0; k < f.length; k++) {
      from.push(i);
      to.push(i + c.length);
    }
    folded += f;
    i += c.length;
  }
  return { folded, from, to };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const WORD = '[\\p{L}\\p{N}]';

function termPattern(term: SearchTerm): string {
  const last = term.tokens.length - 1;
  return term.tokens
    .map((token, i) => {
      const unspaced = UNSPACED.test(token);
      const before = i === 0 && !unspaced ? `(?<!${WORD})` : '';
      const after = i === last && !unspaced ? (term.prefix ? `${WORD}*` : `(?!${WORD})`) : '';
      // Between the words of a phrase: anything that is not a letter or digit, or nothing.
      return `${before}${escape(token)}${after}`;
    })
    .join(`[^\\p{L}\\p{N}]*?`);
}

/** A marker for the terms of a search; null when there is nothing to mark. */
export function marker(terms: readonly SearchTerm[] | undefined): Marker | null {
  if (!terms?.length) return null;
  // Longer terms first, so a phrase wins over one of its words.
  const sorted = [...terms].sort((a, b) => b.tokens.join(' ').length - a.tokens.join(' ').length);
  const pattern = new RegExp(sorted.map(termPattern).join('|'), 'gu');
  return (text) => {
    const { folded, from, to } = fold(text);
    const parts: string[] = [];
    let at = 0;
    for (const m of folded.matchAll(pattern)) {
      if (!m[0].length) continue;
      // A match may start or end on folding's padding (around an emoji): trim it.
      const lead = m[0].length - m[0].trimStart().length;
      const trail = m[0].length - m[0].trimEnd().length;
      const start = from[m.index + lead]!;
      const end = to[m.index + m[0].length - 1 - trail]!;
      if (start < at) continue;
      parts.push(text.slice(at, start), text.slice(start, end));
      at = end;
    }
    parts.push(text.slice(at));
    return parts;
  };
}
