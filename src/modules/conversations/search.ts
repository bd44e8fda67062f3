import type { Em } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import type { components } from '../../generated/openapi.ts';

/*
 * Conversation search: the query syntax, the SQL condition a chat list adds for it, and the terms
 * the dashboard highlights. Matching itself is done by the database functions of
 * Migration20261203100000_search:
 *
 *   chatlogger_search_vector(org, text)   the folded words of a title or message, tagged with
 *                                         their organization (stored in `search`)
 *   chatlogger_search_query(org, language, clauses)   the tsquery of a parsed search
 *
 * Both fold the same way (accents, case, one word per Chinese/Japanese/Thai character, emoji as
 * words), so whatever a query folds to is found in any text that folds to the same words.
 */

export type SearchLanguage = components['schemas']['SearchLanguage'];
export type HighlightTerm = components['schemas']['SearchTerm'];

/** The organization setting's default: words as written and their prefixes, no language's stems. */
export const DEFAULT_SEARCH_LANGUAGE: SearchLanguage = 'simple';

/** One word or "quoted phrase" of a search; `negated` for -excluded ones. */
export interface SearchAlternative {
  text: string;
  phrase: boolean;
  negated: boolean;
}

/** Clauses that must all match, each a list of alternatives joined by OR. */
export type SearchClauses = SearchAlternative[][];

/**
 * The syntax of `q`, as web search engines read it: words (all must match), "quoted phrases"
 * (an unclosed quote runs to the end), -excluded words or phrases, and OR between alternatives.
 * Anything else is text: punctuation that folds to no word is dropped by the database.
 */
export function parseSearch(q: string): SearchClauses {
  const clauses: SearchClauses = [];
  let or = false;
  for (const m of q.matchAll(/(-?)"([^"]*)"?|(\S+)/g)) {
    let alternative: SearchAlternative;
    if (m[2] !== undefined) {
      alternative = { text: m[2], phrase: true, negated: m[1] === '-' };
    } else {
      const word = m[3]!;
      if (word.toLowerCase() === 'or') {
        or = clauses.length > 0;
        continue;
      }
      const negated = word.startsWith('-') && word.length > 1;
      alternative = { text: negated ? word.slice(1) : word, phrase: false, negated };
    }
    if (or) clauses[clauses.length - 1]!.push(alternative);
    else clauses.push([alternative]);
    or = false;
  }
  return clauses;
}

/**
 * The tsquery of a search, as SQL over two bind parameters. `chatlogger_search_query` is
 * immutable, so with the parameters bound the planner folds it into a constant: the statistics of
 * the `search` columns see its words, and no row evaluates it again.
 */
export function searchQuerySql(param: (value: unknown) => string, language: SearchLanguage, q: string): string {
  return `chatlogger_search_query($1::uuid, ${param(language)}::regconfig, ${param(JSON.stringify(parseSearch(q)))}::jsonb)`;
}

/**
 * A chat matches when its title, or one of its messages, matches the whole search ($1 is the
 * organization): two conditions on `chats c`, which the list runs as two queries of one page each
 * and merges. Apart, each is planned for what it is: the messages side is a semi-join, which the
 * planner, knowing the page's limit and the word's frequency in this organization, answers by
 * walking the chats in sort order and probing each one's messages (messages_chat_idx) when the
 * word is common, or by gathering the few matching messages from messages_search_idx when it is
 * rare. (As one `title or exists (...)` condition, the planner hashes every matching message of
 * the organization whatever the limit: 3 s for a word in 100,000 messages.) Both GIN indexes
 * hold words tagged with their organization (chats_search_idx, messages_search_idx).
 */
export function searchConditionsSql(param: (value: unknown) => string, language: SearchLanguage, q: string): { inMessages: string; inTitle: string } {
  const tsquery = searchQuerySql(param, language, q);
  return {
    inMessages: `exists (select 1 from messages m where m.organization_id = $1 and m.chat_id = c.id and m.search @@ ${tsquery})`,
    inTitle: `c.search @@ ${tsquery}`,
  };
}

/**
 * What a search looks for, to highlight: each word or phrase as the folded words it matches in
 * order (a Chinese word is its characters), with `prefix` when longer words starting with it match
 * too. Excluded words are not highlighted.
 */
export async function highlightTerms(em: Em, language: SearchLanguage, q: string): Promise<HighlightTerm[]> {
  const wanted = parseSearch(q)
    .map((clause) => clause.filter((alternative) => !alternative.negated))
    .filter((clause) => clause.length);
  if (!wanted.length) return [];
  // Without an organization the words come untagged.
  const [row] = await query<{ tsquery: string | null }>(em, `select chatlogger_search_query(null, $1::regconfig, $2::jsonb)::text as tsquery`, [
    language,
    JSON.stringify(wanted),
  ]);
  return row?.tsquery ? termsOf(row.tsquery) : [];
}

/** The phrases of a tsquery's text form: lexemes joined by <N>, each quoted, `:*` for a prefix. */
export function termsOf(tsquery: string): HighlightTerm[] {
  const terms: HighlightTerm[] = [];
  const seen = new Set<string>();
  let current: HighlightTerm | undefined;
  let joined = false;
  for (const m of tsquery.matchAll(/'((?:[^'\\]|''|\\.)*)'(:\*)?|<(?:-|\d+)>|[&|!()]/g)) {
    if (m[0].startsWith('<')) {
      joined = true;
      continue;
    }
    if (m[1] === undefined) {
      current = undefined;
      joined = false;
      continue;
    }
    const lexeme = m[1].replace(/''/g, "'").replace(/\\(.)/g, '$1');
    if (current && joined) {
      current.tokens.push(lexeme);
      current.prefix = m[2] !== undefined;
    } else {
      current = { tokens: [lexeme], prefix: m[2] !== undefined };
      terms.push(current);
    }
    joined = false;
  }
  return terms.filter((term) => {
    const key = JSON.stringify(term);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
