import { Migration } from '@mikro-orm/migrations';

/*
 * The writes that insert chats and messages or change the analytics rollups become functions of
 * one organization, and the triggers that kept the rollups go.
 *
 * Why functions: on Citus each function is distributed by its first argument, `org`, so a call
 * runs whole on the node that holds that organization's shards (one round trip from the
 * coordinator, every statement local to that node). On PostgreSQL and PGlite a call is one round
 * trip too, with its plans cached per connection. Every statement inside names `organization_id =
 * org` on each tenant table, so each is a single-shard statement on Citus.
 *
 * Why no triggers: Citus does not run statement-level triggers with transition tables on
 * distributed tables. The rollups are now written by the same functions that write the messages,
 * in the same transaction, from the rows they actually inserted or are about to delete.
 *
 * Transaction ids: `created_xid` defaults to pg_current_xact_id(). A function runs on the node
 * that holds the organization, so its rows get that node's transaction ids, and
 * chatlogger_snapshot() takes the snapshot that exports compare them with on that same node.
 *
 * Rollup shards (analytics_shard(), advisory locks) keep working as before: every rollup write
 * happens inside these functions, so on Citus on the organization's node, in one lock space.
 */

const SLOT_SUMS = [
  'messages',
  'system_messages',
  'user_messages',
  'assistant_messages',
  'tool_messages',
  'function_messages',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'cost_usd',
  'latency_count',
  'latency_sum',
];

/** Rollups that count messages per period and key (the tag rollup is separate: tags belong to chats). */
const COUNTS = [
  { table: 'analytics_model_days', period: 'day', key: 'model', value: 'm.model', where: 'm.model is not null', flag: 'with_model' },
  { table: 'analytics_latency_days', period: 'day', key: 'latency_ms', value: 'm.latency_ms', where: 'LATENCY', flag: 'with_latency' },
  { table: 'analytics_latency_months', period: 'month', key: 'latency_ms', value: 'm.latency_ms', where: 'LATENCY', flag: 'with_latency' },
  { table: 'analytics_latency_day_bins', period: 'day', key: 'bin', value: 'analytics_latency_bin(m.latency_ms)', where: 'LATENCY', flag: 'with_latency' },
  { table: 'analytics_latency_month_bins', period: 'month', key: 'bin', value: 'analytics_latency_bin(m.latency_ms)', where: 'LATENCY', flag: 'with_latency' },
] as const;
const LATENCY = `m.role = 'assistant' and m.latency_ms is not null`;
const ROLLUP_TABLES = ['analytics_slots', 'analytics_tag_days', ...COUNTS.map((c) => c.table)];

const OLD_TRIGGERS = [
  ['analytics_messages_inserted', 'messages'],
  ['analytics_messages_deleted', 'messages'],
  ['analytics_messages_updated', 'messages'],
  ['analytics_messages_truncated', 'messages'],
  ['analytics_chat_deleted', 'chats'],
  ['analytics_chat_retagged', 'chats'],
  ['analytics_organizations_deleted', 'organizations'],
] as const;

/**
 * analytics_add(org, deltas, direction): adds `direction` (1 or -1) times the messages `deltas` to every rollup,
 * in the transaction's own shard, keys in order; after a removal, this shard's rows that came back
 * to zero are deleted.
 */
const ANALYTICS_ADD = `
create function analytics_add(org uuid, deltas analytics_message[], direction integer) returns void language plpgsql as $fn$
declare
  own_shard smallint;
  with_model boolean;
  with_latency boolean;
  with_tags boolean;
begin
  if coalesce(cardinality(deltas), 0) = 0 then
    return;
  end if;
  own_shard := analytics_shard();
  select bool_or(m.model is not null), bool_or(${LATENCY}), bool_or(cardinality(m.tags) > 0)
    into with_model, with_latency, with_tags
    from unnest(deltas) m;

  insert into analytics_slots as r (organization_id, slot, shard, ${SLOT_SUMS.join(', ')})
  select org, analytics_slot(m.created_at), own_shard, direction * count(*),
         direction * count(*) filter (where m.role = 'system'), direction * count(*) filter (where m.role = 'user'),
         direction * count(*) filter (where m.role = 'assistant'), direction * count(*) filter (where m.role = 'tool'),
         direction * count(*) filter (where m.role = 'function'),
         direction * coalesce(sum(m.prompt_tokens), 0), direction * coalesce(sum(m.completion_tokens), 0), direction * coalesce(sum(m.total_tokens), 0),
         direction * coalesce(sum(m.cost_usd), 0),
         direction * count(*) filter (where ${LATENCY}),
         direction * coalesce(sum(m.latency_ms) filter (where m.role = 'assistant'), 0)
    from unnest(deltas) m
   group by 2
   order by 2
  on conflict (organization_id, slot, shard) do update
     set ${SLOT_SUMS.map((c) => `${c} = r.${c} + excluded.${c}`).join(', ')};
${COUNTS.map(
  (c) => `
  if ${c.flag} then
    insert into ${c.table} as r (organization_id, ${c.period}, ${c.key}, shard, messages)
    select org, analytics_${c.period}(m.created_at), ${c.value}, own_shard, direction * count(*)
      from unnest(deltas) m
     where ${c.where === 'LATENCY' ? LATENCY : c.where}
     group by 2, 3
     order by 2, 3
    on conflict (organization_id, ${c.period}, ${c.key}, shard) do update set messages = r.messages + excluded.messages;
  end if;`,
).join('')}
  if with_tags then
    insert into analytics_tag_days as r (organization_id, day, tag, shard, messages)
    select org, analytics_day(m.created_at), t.tag, own_shard, direction * count(*)
      from unnest(deltas) m
      cross join lateral unnest(m.tags) as t(tag)
     where t.tag is not null
     group by 2, 3
     order by 2, 3
    on conflict (organization_id, day, tag, shard) do update set messages = r.messages + excluded.messages;
  end if;

  if direction < 0 then
    delete from analytics_slots r
     using (select distinct analytics_slot(m.created_at) as slot from unnest(deltas) m) k
     where r.organization_id = org and r.slot = k.slot and r.shard = own_shard
       and ${SLOT_SUMS.map((c) => `r.${c} = 0`).join(' and ')};
${COUNTS.map(
  (c) => `
    if ${c.flag} then
      delete from ${c.table} r
       using (select distinct analytics_${c.period}(m.created_at) as period, ${c.value} as key from unnest(deltas) m where ${c.where === 'LATENCY' ? LATENCY : c.where}) k
       where r.organization_id = org and r.${c.period} = k.period and r.${c.key} = k.key and r.shard = own_shard and r.messages = 0;
    end if;`,
).join('')}
    if with_tags then
      delete from analytics_tag_days r
       using (select distinct analytics_day(m.created_at) as day from unnest(deltas) m) k
       where r.organization_id = org and r.day = k.day and r.shard = own_shard and r.messages = 0;
    end if;
  end if;
end
$fn$`;

/** The columns of analytics_message, read from messages m joined with their chat c. */
const ANALYTICS_ROW = `row(m.role, m.model, m.prompt_tokens, m.completion_tokens, m.total_tokens, m.latency_ms, m.cost_usd, m.created_at, c.tags)::analytics_message`;

/*
 * Creates the chats of one organization (a JSON array of objects with id, title, tags, metadata,
 * external_user_id, source); an id that exists already is left as it is. Answers every chat of
 * the input as stored, `created` telling which this call inserted.
 */
const CREATE_CHATS = `
create function chatlogger_create_chats(org uuid, input jsonb)
returns table (created boolean, id uuid, title text, tags text[], metadata jsonb, external_user_id text, source text,
               created_at timestamptz, updated_at timestamptz, last_message_at timestamptz, message_count integer)
language plpgsql as $fn$
#variable_conflict use_column
begin
  insert into chats (organization_id, id, title, tags, metadata, external_user_id, source)
  select org, r.id, r.title, coalesce(r.tags, '{}'), coalesce(r.metadata, '{}'), r.external_user_id, r.source
    from jsonb_array_elements(input) with ordinality as t(doc, ord),
         jsonb_to_record(t.doc) as r(id uuid, title text, tags text[], metadata jsonb, external_user_id text, source text)
   order by t.ord
  on conflict (organization_id, id) do nothing;
  return query
  select c.created_xid = pg_current_xact_id_if_assigned(), c.id, c.title, c.tags, c.metadata, c.external_user_id, c.source,
         c.created_at, c.updated_at, c.last_message_at, c.message_count
    from chats c
   where c.organization_id = org and c.id in (select (e->>'id')::uuid from jsonb_array_elements(input) as e);
end
$fn$`;

/*
 * Appends messages of one organization (a JSON array of objects with the messages columns and
 * chat_id; created_at may be null). A message is written only if its chat exists; an id that
 * exists already is left as it is (a retry, or another chat's message: the caller tells them
 * apart). The chats are locked first, in key order, so concurrent calls touching the same chats
 * queue instead of deadlocking, and their counters move in the same transaction. Messages without
 * created_at get the transaction's time plus their position in microseconds, so a batch keeps its
 * order. Answers every stored message whose id is in the input: `created` for the ones this call
 * wrote (their content is what was sent, so it is not copied back), the whole row otherwise.
 */
const APPEND_MESSAGES = `
create function chatlogger_append_messages(org uuid, input jsonb)
returns table (created boolean, id uuid, chat_id uuid, created_at timestamptz, cost_usd numeric, role text, content text, name text,
               model text, prompt_tokens integer, completion_tokens integer, total_tokens integer, latency_ms integer,
               tool_calls jsonb, metadata jsonb)
language plpgsql as $fn$
#variable_conflict use_column
declare
  ids uuid[] := array(select (e->>'id')::uuid from jsonb_array_elements(input) as e);
  chat_ids uuid[];
  added_rows analytics_message[];
begin
  chat_ids := array(select c.id
                      from chats c
                     where c.organization_id = org and c.id in (select (e->>'chat_id')::uuid from jsonb_array_elements(input) as e)
                     order by c.id
                       for no key update);

  insert into messages (organization_id, id, chat_id, role, content, name, model, prompt_tokens, completion_tokens,
                        total_tokens, latency_ms, cost_usd, tool_calls, metadata, created_at)
  select org, r.id, r.chat_id, r.role, r.content, r.name, r.model, r.prompt_tokens, r.completion_tokens,
         r.total_tokens, r.latency_ms, r.cost_usd, r.tool_calls, coalesce(r.metadata, '{}'),
         coalesce(r.created_at, now() + t.ord * interval '1 microsecond')
    from jsonb_array_elements(input) with ordinality as t(doc, ord)
   cross join jsonb_to_record(t.doc) as r(
           chat_id uuid, id uuid, role text, content text, name text, model text, prompt_tokens integer,
           completion_tokens integer, total_tokens integer, latency_ms integer, cost_usd numeric, tool_calls jsonb,
           metadata jsonb, created_at timestamptz)
   where r.chat_id = any(chat_ids)
   order by t.ord
  on conflict (organization_id, id) do nothing;

  select array_agg(${ANALYTICS_ROW})
    into added_rows
    from messages m
    join chats c on c.organization_id = org and c.id = m.chat_id
   where m.organization_id = org and m.id = any(ids) and m.created_xid = pg_current_xact_id_if_assigned();

  if added_rows is not null then
    update chats c
       set message_count = c.message_count + n.added,
           last_message_at = greatest(c.last_message_at, n.last),
           has_assistant_reply = c.has_assistant_reply or n.replied,
           updated_at = now()
      from (select m.chat_id, count(*) as added, max(m.created_at) as last, bool_or(m.role = 'assistant') as replied
              from messages m
             where m.organization_id = org and m.id = any(ids) and m.created_xid = pg_current_xact_id_if_assigned()
             group by m.chat_id) n
     where c.organization_id = org and c.id = n.chat_id;
    perform analytics_add(org, added_rows, 1);
  end if;

  return query
  select coalesce(m.created_xid = pg_current_xact_id_if_assigned(), false), m.id, m.chat_id, m.created_at, m.cost_usd,
         m.role, case when m.created_xid = pg_current_xact_id_if_assigned() then null else m.content end, m.name, m.model,
         m.prompt_tokens, m.completion_tokens, m.total_tokens, m.latency_ms, m.tool_calls, m.metadata
    from messages m
   where m.organization_id = org and m.id = any(ids);
end
$fn$`;

/*
 * Deletes chats of one organization and their messages, subtracting the messages from the rollups
 * first; answers how many chats and messages went. The chats must be locked by the caller's
 * transaction already (the three callers below select and lock them), so no message can be added
 * to them meanwhile: what is subtracted is exactly what is deleted.
 */
const REMOVE_CHATS = `
create function chatlogger_remove_chats(org uuid, chat_ids uuid[], out chats integer, out messages integer) language plpgsql as $fn$
declare
  removed analytics_message[];
begin
  select array_agg(${ANALYTICS_ROW})
    into removed
    from messages m
    join chats c on c.organization_id = org and c.id = m.chat_id
   where m.organization_id = org and m.chat_id = any(chat_ids);
  perform analytics_add(org, removed, -1);
  delete from messages m where m.organization_id = org and m.chat_id = any(chat_ids);
  get diagnostics messages = row_count;
  delete from chats c where c.organization_id = org and c.id = any(chat_ids);
  get diagnostics chats = row_count;
end
$fn$`;

// Locks first, in its own statement: the statements of chatlogger_remove_chats then see every
// message committed to these chats before the locks were granted.
const LOCK_AND_REMOVE = (selector: string, lock = 'order by c.id for update') => `
declare
  ids uuid[];
begin
  ids := array(select c.id from chats c where c.organization_id = org and ${selector} ${lock});
  return query select r.chats, r.messages from chatlogger_remove_chats(org, ids) r;
end`;

/** Deletes one chat with its messages (0 chats: there is no such chat). */
const DELETE_CHAT = `
create function chatlogger_delete_chat(org uuid, chat uuid) returns table (chats integer, messages integer) language plpgsql as $fn$
${LOCK_AND_REMOVE('c.id = chat')}
$fn$`;

/** Deletes every chat of one end user of the organization, with their messages. */
const ERASE_END_USER = `
create function chatlogger_erase_end_user(org uuid, end_user text) returns table (chats integer, messages integer) language plpgsql as $fn$
${LOCK_AND_REMOVE('c.external_user_id = end_user')}
$fn$`;

/*
 * Deletes up to \`batch\` chats of the organization whose last activity is before \`cutoff\`, oldest
 * first, along chats_activity_idx. Chats being written to right now (locked) are left for the next
 * run rather than waited for.
 */
const PURGE_CHATS = `
create function chatlogger_purge_chats(org uuid, cutoff timestamptz, batch integer) returns table (chats integer, messages integer) language plpgsql as $fn$
${LOCK_AND_REMOVE('greatest(c.created_at, c.last_message_at) < cutoff', 'order by greatest(c.created_at, c.last_message_at), c.id limit batch for update skip locked')}
$fn$`;


/*
 * Moves a chat's messages, per day, from the tags `removed` to the tags `added` (a tag edit). The
 * counts per day are read first, so the upsert reads no distributed table (Citus runs it on the
 * organization's node inside the delegated call).
 */
const RETAG_CHAT = `
create or replace function analytics_retag_chat(org uuid, chat uuid, removed text[], added text[]) returns void language plpgsql as $fn$
declare
  own_shard smallint;
  days timestamptz[];
  counts bigint[];
begin
  select array_agg(d.day order by d.day), array_agg(d.n order by d.day)
    into days, counts
    from (select analytics_day(m.created_at) as day, count(*) as n
            from messages m
           where m.organization_id = org and m.chat_id = chat
           group by 1) d;
  if days is null then
    return;
  end if;
  own_shard := analytics_shard();
  insert into analytics_tag_days as r (organization_id, day, tag, shard, messages)
  select org, d.day, t.tag, own_shard, sum(t.sign * d.n)
    from unnest(days, counts) as d(day, n)
    cross join (select tag, -1 as sign from unnest(removed) as tag union all select tag, 1 from unnest(added) as tag) t
   where t.tag is not null
   group by 2, 3
   order by 2, 3
  on conflict (organization_id, day, tag, shard) do update set messages = r.messages + excluded.messages;
  delete from analytics_tag_days r
   where r.organization_id = org and r.shard = own_shard and r.messages = 0 and r.tag = any(removed || added) and r.day = any(days);
end
$fn$`;

/** The snapshot an export compares created_xid with, taken where the organization's rows are. */
const SNAPSHOT = `
create function chatlogger_snapshot(org uuid) returns text language plpgsql volatile as $fn$
begin
  return pg_current_snapshot()::text;
end
$fn$`;

export class Migration20261202000000_tenant_write_functions extends Migration {
  override async up(): Promise<void> {
    for (const [trigger, table] of OLD_TRIGGERS) this.addSql(`drop trigger if exists ${trigger} on ${table}`);
    for (const [fn] of OLD_TRIGGERS) this.addSql(`drop function if exists ${fn}()`);

    // Deleting an organization by hand takes its rollups with it (a trigger did that before).
    for (const table of ROLLUP_TABLES) {
      this.addSql(`delete from ${table} r where not exists (select 1 from organizations o where o.id = r.organization_id)`);
      this.addSql(`alter table ${table} add constraint ${table}_organization_id_fkey foreign key (organization_id) references organizations (id) on delete cascade`);
    }

    this.addSql(`
      create type analytics_message as (
        role text, model text, prompt_tokens integer, completion_tokens integer, total_tokens integer,
        latency_ms integer, cost_usd numeric, created_at timestamptz, tags text[]
      )`);
    this.addSql(ANALYTICS_ADD);
    this.addSql(RETAG_CHAT);
    this.addSql(CREATE_CHATS);
    this.addSql(APPEND_MESSAGES);
    this.addSql(REMOVE_CHATS);
    this.addSql(DELETE_CHAT);
    this.addSql(ERASE_END_USER);
    this.addSql(PURGE_CHATS);
    this.addSql(SNAPSHOT);
  }

  override async down(): Promise<void> {
    for (const fn of [
      'chatlogger_snapshot(uuid)',
      'chatlogger_purge_chats(uuid, timestamptz, integer)',
      'chatlogger_erase_end_user(uuid, text)',
      'chatlogger_delete_chat(uuid, uuid)',
      'chatlogger_remove_chats(uuid, uuid[])',
      'chatlogger_append_messages(uuid, jsonb)',
      'chatlogger_create_chats(uuid, jsonb)',
      'analytics_add(uuid, analytics_message[], integer)',
    ]) {
      this.addSql(`drop function if exists ${fn}`);
    }
    this.addSql(`drop type if exists analytics_message`);
    for (const table of ROLLUP_TABLES) this.addSql(`alter table ${table} drop constraint if exists ${table}_organization_id_fkey`);
    // The triggers come back with Migration20261124300000_analytics_rollups if it is rolled back and re-applied.
  }
}
