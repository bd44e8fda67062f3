import { Migration } from '@mikro-orm/migrations';

/*
 * Analytics rollups, kept exact by triggers in the transactions that write messages.
 *
 * - analytics_slots: per organization and 15-minute UTC slot, message counts (all and per role),
 *   token and cost sums, and the count and sum of assistant latencies. Every time zone offset in
 *   use is a multiple of 15 minutes, so an hour, day or week in any zone is a union of slots.
 * - analytics_model_days, analytics_tag_days: messages per UTC day and model, and per UTC day and
 *   tag of the message's chat (a message counts once per tag, as the summary's top tags do).
 * - analytics_latency_days, analytics_latency_months: how many assistant messages had each
 *   latency_ms value, per UTC day and per UTC month, from which percentiles are exact; and
 *   analytics_latency_day_bins, analytics_latency_month_bins: the same per bin of values (two
 *   significant digits, see analytics_latency_bin), so a percentile first finds its bin and then
 *   reads the values of that bin only.
 * - chats.has_assistant_reply, for "chats without an assistant reply".
 *
 * Every rollup row has a `shard`. A transaction that changes rollups first takes the lowest
 * shard no other transaction holds (a transaction-level advisory lock, tried without waiting)
 * and writes only rows of that shard. So concurrent writers never update the same rollup row:
 * they neither wait for each other nor deadlock, whatever order they write in. Rows are additive,
 * so readers sum over shards; a deletion subtracts in its own shard too, which keeps every sum
 * exact. Rows that come back to zero are deleted.
 *
 * Statement-level triggers with transition tables on messages see whole statements (a batch, a
 * cascade of chat deletions), so the writing statements need not know about rollups. Tags belong
 * to chats and can change: a tag edit moves the chat's counts between tags, and a chat deletion
 * subtracts them before its messages go by cascade (after it, the chat's tags are gone).
 */

const SLOT = `date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00')`;
const DAY = `date_bin('1 day', at, timestamptz '2000-01-01 00:00:00+00')`;
const MONTH = `date_trunc('month', at at time zone 'UTC') at time zone 'UTC'`;

/** `pg_try_advisory_xact_lock(SHARD_LOCK_CLASS, shard)`: no other lock uses this class. */
const SHARD_LOCK_CLASS = 20261124;

const MESSAGE_COLUMNS = 'organization_id, chat_id, role, model, prompt_tokens, completion_tokens, total_tokens, latency_ms, cost_usd, created_at';

/** The changed messages of one statement, each with +1 (added) or -1 (removed). */
const DELTAS = {
  insert: `select 1 as sign, ${MESSAGE_COLUMNS} from new_rows`,
  // Messages deleted with their whole organization are left to analytics_organizations_deleted
  // (which may fire first).
  delete: `select -1 as sign, ${MESSAGE_COLUMNS} from old_rows where organization_id in (select id from organizations)`,
  // Only rows whose rolled-up columns changed (an edit of content changes nothing here).
  update: `select -1 as sign, * from (select ${MESSAGE_COLUMNS} from old_rows except all select ${MESSAGE_COLUMNS} from new_rows) removed
           union all
           select 1 as sign, * from (select ${MESSAGE_COLUMNS} from new_rows except all select ${MESSAGE_COLUMNS} from old_rows) added`,
};

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

const LATENCY = `role = 'assistant' and latency_ms is not null`;

/** Rollups that count messages per period and key, and the messages they count. */
const COUNTS = [
  { table: 'analytics_model_days', period: 'day', key: 'model', type: 'text', value: 'model', where: 'model is not null' },
  { table: 'analytics_latency_days', period: 'day', key: 'latency_ms', type: 'integer', value: 'latency_ms', where: LATENCY },
  { table: 'analytics_latency_months', period: 'month', key: 'latency_ms', type: 'integer', value: 'latency_ms', where: LATENCY },
  { table: 'analytics_latency_day_bins', period: 'day', key: 'bin', type: 'integer', value: 'analytics_latency_bin(latency_ms)', where: LATENCY },
  { table: 'analytics_latency_month_bins', period: 'month', key: 'bin', type: 'integer', value: 'analytics_latency_bin(latency_ms)', where: LATENCY },
] as const;
const ROLLUP_TABLES = ['analytics_slots', 'analytics_tag_days', ...COUNTS.map((c) => c.table)];

/** Adds the deltas `d` to every rollup, in the shard `shard`, in key order. */
const APPLY = (delta: string, shard: string) => `
with d as (${delta}),
${COUNTS.map(
  (c) => `${c.table} as (
  insert into ${c.table} as r (organization_id, ${c.period}, ${c.key}, shard, messages)
  select organization_id, analytics_${c.period}(created_at), ${c.value}, ${shard}, sum(sign)
    from d
   where ${c.where}
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (organization_id, ${c.period}, ${c.key}, shard) do update set messages = r.messages + excluded.messages
),`,
).join('\n')}
tags as (
  insert into analytics_tag_days as r (organization_id, day, tag, shard, messages)
  select c.organization_id, per_chat.day, t.tag, ${shard}, sum(per_chat.messages)
    from (select organization_id, chat_id, analytics_day(created_at) as day, sum(sign) as messages from d group by 1, 2, 3) per_chat
    join chats c on c.organization_id = per_chat.organization_id and c.id = per_chat.chat_id
    cross join lateral unnest(c.tags) as t(tag)
   where t.tag is not null
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (organization_id, day, tag, shard) do update set messages = r.messages + excluded.messages
)
insert into analytics_slots as r (organization_id, slot, shard, ${SLOT_SUMS.join(', ')})
select organization_id, analytics_slot(created_at), ${shard}, sum(sign),
       sum(case when role = 'system' then sign else 0 end), sum(case when role = 'user' then sign else 0 end),
       sum(case when role = 'assistant' then sign else 0 end), sum(case when role = 'tool' then sign else 0 end),
       sum(case when role = 'function' then sign else 0 end),
       coalesce(sum(sign * prompt_tokens), 0), coalesce(sum(sign * completion_tokens), 0), coalesce(sum(sign * total_tokens), 0),
       coalesce(sum(sign * cost_usd), 0),
       sum(case when ${LATENCY} then sign else 0 end),
       coalesce(sum(sign * latency_ms) filter (where role = 'assistant'), 0)
  from d
 group by 1, 2
 order by 1, 2
on conflict (organization_id, slot, shard) do update
   set ${SLOT_SUMS.map((c) => `${c} = r.${c} + excluded.${c}`).join(', ')}`;

/** After removals: delete this shard's rows that the deltas `d` brought back to zero. */
const PRUNE = (delta: string, shard: string) => `
with d as (${delta}),
${COUNTS.map(
  (c) => `${c.table} as (
  delete from ${c.table} r
   using (select distinct organization_id, analytics_${c.period}(created_at) as period, ${c.value} as key from d where ${c.where}) k
   where r.organization_id = k.organization_id and r.${c.period} = k.period and r.${c.key} = k.key and r.shard = ${shard} and r.messages = 0
),`,
).join('\n')}
tags as (
  delete from analytics_tag_days r
   using (select distinct organization_id, analytics_day(created_at) as day from d) k
   where r.organization_id = k.organization_id and r.day = k.day and r.shard = ${shard} and r.messages = 0
)
delete from analytics_slots r
 using (select distinct organization_id, analytics_slot(created_at) as slot from d) k
 where r.organization_id = k.organization_id and r.slot = k.slot and r.shard = ${shard}
   and ${SLOT_SUMS.map((c) => `r.${c} = 0`).join(' and ')}`;

/*
 * Chats that got an assistant message have a reply. Only a chat's first reply writes the chat
 * row, which the ingestion statement has locked already (it moves the chat's counters). After
 * removals the flag is recomputed for the chats that lost one; a chat deleted with its messages
 * is gone already and left alone.
 */
const REPLIED = `
update chats c set has_assistant_reply = true
  from (select distinct organization_id, chat_id from new_rows where role = 'assistant') k
 where c.organization_id = k.organization_id and c.id = k.chat_id and not c.has_assistant_reply`;
const RECOUNT_REPLIES = (delta: string) => `
with d as (${delta})
update chats c set has_assistant_reply = r.replied
  from (select k.organization_id, k.chat_id,
               exists (select 1 from messages m where m.organization_id = k.organization_id and m.chat_id = k.chat_id and m.role = 'assistant') as replied
          from (select distinct organization_id, chat_id from d where role = 'assistant') k) r
 where c.organization_id = r.organization_id and c.id = r.chat_id and c.has_assistant_reply <> r.replied`;

const TRIGGERS = {
  insert: { name: 'analytics_messages_inserted', transition: 'new table as new_rows' },
  delete: { name: 'analytics_messages_deleted', transition: 'old table as old_rows' },
  update: { name: 'analytics_messages_updated', transition: 'old table as old_rows new table as new_rows' },
};

function messagesTriggerFunction(op: keyof typeof TRIGGERS): string {
  const delta = DELTAS[op];
  const body =
    op === 'insert'
      ? [APPLY(delta, 'own_shard'), REPLIED]
      : [APPLY(delta, 'own_shard'), PRUNE(delta, 'own_shard'), RECOUNT_REPLIES(delta)];
  return `
    create function ${TRIGGERS[op].name}() returns trigger language plpgsql as $fn$
    declare
      own_shard smallint;
    begin
      if not exists (select 1 from ${op === 'insert' ? 'new_rows' : 'old_rows'}) then
        return null;
      end if;
      own_shard := analytics_shard();
      ${body.join(';\n')};
      return null;
    end
    $fn$`;
}

export class Migration20261124300000_analytics_rollups extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create function analytics_slot(at timestamptz) returns timestamptz language sql immutable parallel safe return ${SLOT}`);
    this.addSql(`create function analytics_day(at timestamptz) returns timestamptz language sql immutable parallel safe return ${DAY}`);
    this.addSql(`create function analytics_month(at timestamptz) returns timestamptz language sql immutable parallel safe return ${MONTH}`);
    // Bins of latency values, at most 10% wide: values below 100 alone, then two significant
    // digits (100, 110, ... 990, 1000, 1100, ...). A bin is named by its smallest value.
    this.addSql(`
      create function analytics_latency_bin_width(latency_ms integer) returns integer language sql immutable parallel safe
      return case when latency_ms < 100 then 1 when latency_ms < 1000 then 10 when latency_ms < 10000 then 100
                  when latency_ms < 100000 then 1000 when latency_ms < 1000000 then 10000 when latency_ms < 10000000 then 100000
                  when latency_ms < 100000000 then 1000000 when latency_ms < 1000000000 then 10000000 else 100000000 end`);
    this.addSql(`
      create function analytics_latency_bin(latency_ms integer) returns integer language sql immutable parallel safe
      return latency_ms - latency_ms % analytics_latency_bin_width(latency_ms)`);
    // The shard a transaction writes rollups in: taken once, kept (and locked) until it ends.
    this.addSql(`
      create function analytics_shard() returns smallint language plpgsql as $fn$
      declare
        shard integer := nullif(current_setting('chatlogger.analytics_shard', true), '')::integer;
      begin
        if shard is null then
          shard := 0;
          while not pg_try_advisory_xact_lock(${SHARD_LOCK_CLASS}, shard) loop
            shard := shard + 1;
          end loop;
          perform set_config('chatlogger.analytics_shard', shard::text, true);
        end if;
        return shard;
      end
      $fn$`);

    this.addSql(`
      create table analytics_slots (
        organization_id uuid not null,
        slot timestamptz not null,
        shard smallint not null,
        messages bigint not null,
        system_messages bigint not null,
        user_messages bigint not null,
        assistant_messages bigint not null,
        tool_messages bigint not null,
        function_messages bigint not null,
        prompt_tokens bigint not null,
        completion_tokens bigint not null,
        total_tokens bigint not null,
        cost_usd numeric not null,
        latency_count bigint not null,
        latency_sum bigint not null,
        primary key (organization_id, slot, shard)
      )`);
    this.addSql(`
      create table analytics_tag_days (
        organization_id uuid not null,
        day timestamptz not null,
        tag text not null,
        shard smallint not null,
        messages integer not null,
        primary key (organization_id, day, tag, shard)
      )`);
    for (const c of COUNTS) {
      this.addSql(`
        create table ${c.table} (
          organization_id uuid not null,
          ${c.period} timestamptz not null,
          ${c.key} ${c.type} not null,
          shard smallint not null,
          messages integer not null,
          primary key (organization_id, ${c.period}, ${c.key}, shard)
        )`);
    }
    this.addSql(`alter table chats add column has_assistant_reply boolean not null default false`);

    for (const op of ['insert', 'delete', 'update'] as const) {
      const { name, transition } = TRIGGERS[op];
      this.addSql(messagesTriggerFunction(op));
      this.addSql(`create trigger ${name} after ${op} on messages referencing ${transition} for each statement execute function ${name}()`);
    }
    this.addSql(`
      create function analytics_messages_truncated() returns trigger language plpgsql as $fn$
      begin
        ${ROLLUP_TABLES.map((table) => `delete from ${table};`).join('\n        ')}
        update chats set has_assistant_reply = false where has_assistant_reply;
        return null;
      end
      $fn$`);
    this.addSql(`create trigger analytics_messages_truncated after truncate on messages for each statement execute function analytics_messages_truncated()`);

    // Moves a chat's messages, per day, from the tags `removed` to the tags `added`.
    this.addSql(`
      create function analytics_retag_chat(org uuid, chat uuid, removed text[], added text[]) returns void language plpgsql as $fn$
      declare
        own_shard smallint := analytics_shard();
      begin
        insert into analytics_tag_days as r (organization_id, day, tag, shard, messages)
        select org, per_day.day, t.tag, own_shard, sum(t.sign * per_day.messages)
          from (select analytics_day(created_at) as day, count(*) as messages
                  from messages where organization_id = org and chat_id = chat group by 1) per_day
          cross join (select tag, -1 as sign from unnest(removed) as tag union all select tag, 1 from unnest(added) as tag) t
         where t.tag is not null
         group by 2, 3
         order by 2, 3
        on conflict (organization_id, day, tag, shard) do update set messages = r.messages + excluded.messages;
        delete from analytics_tag_days r
         where r.organization_id = org and r.shard = own_shard and r.messages = 0 and r.tag = any(removed || added)
           and r.day in (select analytics_day(created_at) from messages where organization_id = org and chat_id = chat);
      end
      $fn$`);
    // Before the delete: its cascade removes the messages once the chat (and its tags) is gone.
    // A chat deleted with its whole organization is left to analytics_organizations_deleted.
    this.addSql(`
      create function analytics_chat_deleted() returns trigger language plpgsql as $fn$
      begin
        if exists (select 1 from organizations where id = old.organization_id) then
          perform analytics_retag_chat(old.organization_id, old.id, old.tags, '{}');
        end if;
        return old;
      end
      $fn$`);
    this.addSql(`create trigger analytics_chat_deleted before delete on chats for each row when (cardinality(old.tags) > 0) execute function analytics_chat_deleted()`);
    this.addSql(`
      create function analytics_chat_retagged() returns trigger language plpgsql as $fn$
      begin
        perform analytics_retag_chat(new.organization_id, new.id,
                                     array(select unnest(old.tags) except all select unnest(new.tags)),
                                     array(select unnest(new.tags) except all select unnest(old.tags)));
        return null;
      end
      $fn$`);
    this.addSql(`create trigger analytics_chat_retagged after update of tags on chats for each row when (old.tags is distinct from new.tags) execute function analytics_chat_retagged()`);
    this.addSql(`
      create function analytics_organizations_deleted() returns trigger language plpgsql as $fn$
      begin
        ${ROLLUP_TABLES.map((table) => `delete from ${table} where organization_id in (select id from old_rows);`).join('\n        ')}
        return null;
      end
      $fn$`);
    this.addSql(`create trigger analytics_organizations_deleted after delete on organizations referencing old table as old_rows for each statement execute function analytics_organizations_deleted()`);

    // The triggers exist (and their lock holds writers back) before the backfill reads messages.
    this.addSql(APPLY(`select 1 as sign, ${MESSAGE_COLUMNS} from messages`, '0::smallint'));
    this.addSql(`
      update chats c set has_assistant_reply = true
       where exists (select 1 from messages m where m.organization_id = c.organization_id and m.chat_id = c.id and m.role = 'assistant')`);

    // Analytics over chats read this index only; raw latencies (range edges, hours) come from
    // messages_latency_idx without visiting the table.
    this.addSql(`drop index chats_created_idx`);
    this.addSql(`create index chats_created_idx on chats (organization_id, created_at desc, id desc) include (external_user_id, message_count, has_assistant_reply)`);
    this.addSql(`create index messages_latency_idx on messages (organization_id, created_at) include (latency_ms) where role = 'assistant' and latency_ms is not null`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists messages_latency_idx`);
    this.addSql(`drop index if exists chats_created_idx`);
    this.addSql(`create index chats_created_idx on chats (organization_id, created_at desc, id desc)`);
    this.addSql(`drop trigger if exists analytics_organizations_deleted on organizations`);
    this.addSql(`drop trigger if exists analytics_chat_retagged on chats`);
    this.addSql(`drop trigger if exists analytics_chat_deleted on chats`);
    for (const name of [...Object.values(TRIGGERS).map((t) => t.name), 'analytics_messages_truncated']) this.addSql(`drop trigger if exists ${name} on messages`);
    this.addSql(`alter table chats drop column if exists has_assistant_reply`);
    for (const table of ROLLUP_TABLES) this.addSql(`drop table if exists ${table}`);
    for (const fn of [
      'analytics_organizations_deleted()',
      'analytics_chat_retagged()',
      'analytics_chat_deleted()',
      'analytics_retag_chat(uuid, uuid, text[], text[])',
      'analytics_messages_truncated()',
      'analytics_messages_updated()',
      'analytics_messages_deleted()',
      'analytics_messages_inserted()',
      'analytics_shard()',
      'analytics_latency_bin(integer)',
      'analytics_latency_bin_width(integer)',
      'analytics_month(timestamptz)',
      'analytics_day(timestamptz)',
      'analytics_slot(timestamptz)',
    ]) {
      this.addSql(`drop function if exists ${fn}`);
    }
  }
}
