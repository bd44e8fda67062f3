import { Migration } from '@mikro-orm/migrations';

/*
 * Conversation search that matches across languages, with its indexes scoped by organization.
 *
 * The words of a text are folded before they are indexed: accents removed (unaccent), lower
 * case, and every character of the scripts written without spaces (Chinese, Japanese, Thai, Lao,
 * Khmer, Myanmar) made a word of its own, so that a query's run of them is a phrase of characters
 * that matches anywhere inside a sentence. Emoji, which the text-search parser drops, become words
 * such as `u1f389`. The folded text is parsed with the `simple` configuration: the index holds the
 * words as written (no language's stems), so it never depends on an organization's setting and a
 * literal word is never lost; stemming happens in the query (chatlogger_search_query).
 *
 * The vectors are stored columns (generated, so every write path fills them without a change to
 * chatlogger_create_chats / chatlogger_append_messages): a list that walks an organization's chats
 * in sort order checks a chat's messages against the stored vector instead of re-parsing each
 * text, and the planner has statistics of the words to choose between walking and gathering.
 *
 * The GIN indexes are scoped by organization in their keys: every word is stored with a tag of
 * its organization (chatlogger_search_tag), so a search reads posting lists of its own
 * organization only. (A leading organization_id column through btree_gin was measured first: GIN
 * answers such a key as a partial match, reading the organization's whole posting list into a
 * bitmap on every search, and the planner priced it above reading all the organization's rows.)
 *
 * All functions are immutable (their dictionaries are fixed by the migration); on Citus they are
 * created on the coordinator after the extension, which copies them to every node.
 */

/** Code points of the scripts written without spaces between words. */
const UNSPACED = String.raw`\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f`;
/** Emoji and pictographs. */
const EMOJI = String.raw`\u2600-\u27bf\U0001f000-\U0001faff`;

const SEARCH_TEXT = `
create function chatlogger_search_text(body text) returns text
language plpgsql immutable strict parallel safe as $fn$
declare
  folded text := lower(public.unaccent('public.unaccent'::regdictionary, body));
  symbol text;
begin
  if folded ~ '[${UNSPACED}]' then
    folded := regexp_replace(folded, '([${UNSPACED}])', ' \\1 ', 'g');
  end if;
  if folded ~ '[${EMOJI}]' then
    for symbol in select distinct m[1] from regexp_matches(folded, '([${EMOJI}])', 'g') as m loop
      folded := replace(folded, symbol, ' u' || to_hex(ascii(symbol)) || ' ');
    end loop;
  end if;
  return folded;
end
$fn$`;

/*
 * Every word of the index is prefixed with a tag of its organization (6 letters from the md5 of its
 * id), so a search reads only posting lists of its own organization: a word that is common in a
 * large tenant costs nothing to a small one, and the statistics of a word are the statistics of
 * that word in that organization. Two organizations may share a tag (1 in 16.7 million): their
 * searches would then share posting lists, never results (every query still filters by
 * organization_id). The tag is '' without an organization, for the highlighted terms.
 */
const SEARCH_TAG = `
create function chatlogger_search_tag(org uuid) returns text
language sql immutable parallel safe as $fn$
  select coalesce(translate(left(md5(org::text), 6), '0123456789', 'ghijklmnop'), '')
$fn$`;

/*
 * The folded text with the tag written before every run of characters that is neither white space
 * nor ASCII punctuation, so the text-search parser reads each word with its tag already on it:
 * the index and the queries parse the same tagged text. (Tagging the parsed lexemes one by one
 * and re-reading them as a tsvector cost four times as much on every message written.)
 */
const SEARCH_TAGGED = `
create function chatlogger_search_tagged(tag text, body text) returns text
language sql immutable parallel safe as $fn$
  select case when tag = '' then chatlogger_search_text(body)
              else regexp_replace(chatlogger_search_text(body), '([^[:space:]\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e]+)', tag || '\\1', 'g') end
$fn$`;

/** Runs on every message written (a generated column). */
const SEARCH_VECTOR = `
create function chatlogger_search_vector(org uuid, body text) returns tsvector
language sql immutable parallel safe as $fn$
  select to_tsvector('simple'::regconfig, chatlogger_search_tagged(chatlogger_search_tag(org), coalesce(body, '')))
$fn$`;

const SEARCH_QUERY = `
create function chatlogger_search_query(org uuid, language regconfig, clauses jsonb) returns tsquery
language plpgsql immutable parallel safe as $fn$
declare
  clause jsonb;
  alternative jsonb;
  alternatives text[];
  parts text[] := '{}';
  words text;
  first text;
  n integer;
  token record;
  previous integer;
  stem text;
  tag text := chatlogger_search_tag(org);
begin
  for clause in select value from jsonb_array_elements(clauses) loop
    alternatives := '{}';
    for alternative in select value from jsonb_array_elements(clause) loop
      words := null;
      n := 0;
      for token in
        select u.lexeme, p.position
          from unnest(to_tsvector('simple'::regconfig, chatlogger_search_tagged(tag, alternative->>'text'))) as u, unnest(u.positions) as p(position)
         order by p.position
      loop
        n := n + 1;
        if n = 1 then
          first := case when left(token.lexeme, char_length(tag)) = tag then substr(token.lexeme, char_length(tag) + 1) else token.lexeme end;
          words := chatlogger_search_lexeme(token.lexeme);
        else
          words := words || ' <' || (token.position - previous) || '> ' || chatlogger_search_lexeme(token.lexeme);
        end if;
        previous := token.position;
      end loop;
      continue when n = 0;
      if n = 1 and not coalesce((alternative->>'phrase')::boolean, false) then
        if char_length(first) >= 3 then
          words := words || ':*';
        end if;
        select string_agg(s.lexeme, '') into stem from unnest(to_tsvector(language, first)) as s;
        if char_length(stem) >= 3 and stem <> first then
          words := words || ' | ' || chatlogger_search_lexeme(tag || stem) || ':*';
        end if;
      end if;
      words := '(' || words || ')';
      if coalesce((alternative->>'negated')::boolean, false) then
        words := '!' || words;
      end if;
      alternatives := alternatives || words;
    end loop;
    if cardinality(alternatives) > 0 then
      parts := parts || ('(' || array_to_string(alternatives, ' | ') || ')');
    end if;
  end loop;
  if cardinality(parts) = 0 then
    return null;
  end if;
  return array_to_string(parts, ' & ')::tsquery;
end
$fn$`;

/** A lexeme quoted for a tsquery's text form. */
const SEARCH_LEXEME = String.raw`
create function chatlogger_search_lexeme(lexeme text) returns text
language sql immutable strict parallel safe as $fn$
  select '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''''
$fn$`;

export class Migration20261203100000_search extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create extension if not exists unaccent`);
    this.addSql(SEARCH_TEXT);
    this.addSql(SEARCH_LEXEME);
    this.addSql(SEARCH_TAG);
    this.addSql(SEARCH_TAGGED);
    this.addSql(SEARCH_VECTOR);
    this.addSql(SEARCH_QUERY);
    this.addSql(`drop index if exists messages_content_search_idx`);
    this.addSql(`drop index if exists chats_title_search_idx`);
    this.addSql(`alter table messages add column search tsvector generated always as (chatlogger_search_vector(organization_id, content)) stored`);
    this.addSql(`alter table chats add column search tsvector generated always as (chatlogger_search_vector(organization_id, coalesce(title, ''))) stored`);
    this.addSql(`create index messages_search_idx on messages using gin (search)`);
    this.addSql(`create index chats_search_idx on chats using gin (search)`);
    // A search for a frequent word walks the chats in sort order until a page is full: starting a
    // parallel worker for that walk costs far more than the walk. Reads of chats are pages: no
    // parallel scans on them.
    this.addSql(`alter table chats set (parallel_workers = 0)`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table chats reset (parallel_workers)`);
    this.addSql(`drop index if exists chats_search_idx`);
    this.addSql(`drop index if exists messages_search_idx`);
    this.addSql(`alter table chats drop column if exists search`);
    this.addSql(`alter table messages drop column if exists search`);
    this.addSql(`drop function if exists chatlogger_search_query(uuid, regconfig, jsonb)`);
    this.addSql(`drop function if exists chatlogger_search_vector(uuid, text)`);
    this.addSql(`drop function if exists chatlogger_search_tagged(text, text)`);
    this.addSql(`drop function if exists chatlogger_search_tag(uuid)`);
    this.addSql(`drop function if exists chatlogger_search_lexeme(text)`);
    this.addSql(`drop function if exists chatlogger_search_text(text)`);
    this.addSql(`create index chats_title_search_idx on chats using gin (to_tsvector('simple', coalesce(title, '')))`);
    this.addSql(`create index messages_content_search_idx on messages using gin (to_tsvector('simple', content))`);
  }
}
