import { Migration } from '@mikro-orm/migrations';

/**
 * The tables that grow with usage (chats, messages, exports) are keyed by organization_id first:
 * their primary keys, unique constraints and references all include it, so a row can never
 * point at another tenant's row and the schema can be distributed by organization_id as is.
 * organizations, users, sessions and api_keys are small global tables.
 */
export class Migration20261124000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table organizations (
        id uuid primary key,
        name text not null,
        slug text not null,
        active boolean not null default true,
        settings jsonb not null default '{}',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        constraint organizations_slug_key unique (slug)
      )`);
    this.addSql(`
      create table users (
        id uuid primary key,
        organization_id uuid not null references organizations (id) on delete cascade,
        email text not null check (email = lower(email)),
        password_hash text not null,
        role text not null check (role in ('superadmin', 'admin', 'user', 'viewer')),
        first_name text,
        last_name text,
        active boolean not null default true,
        last_login_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        constraint users_email_key unique (email)
      )`);
    this.addSql(`create index users_organization_idx on users (organization_id)`);
    this.addSql(`
      create table sessions (
        id uuid primary key,
        user_id uuid not null references users (id) on delete cascade,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        revoked_at timestamptz
      )`);
    this.addSql(`create index sessions_user_idx on sessions (user_id)`);
    this.addSql(`
      create table api_keys (
        id uuid primary key,
        organization_id uuid not null references organizations (id) on delete cascade,
        label text not null,
        prefix text not null,
        key_hash text not null,
        created_by uuid references users (id) on delete set null,
        created_at timestamptz not null default now(),
        last_used_at timestamptz,
        expires_at timestamptz,
        revoked_at timestamptz,
        constraint api_keys_key_hash_key unique (key_hash)
      )`);
    this.addSql(`create index api_keys_organization_idx on api_keys (organization_id, created_at desc)`);
    this.addSql(`
      create table chats (
        organization_id uuid not null references organizations (id) on delete cascade,
        id uuid not null,
        title text,
        tags text[] not null default '{}',
        metadata jsonb not null default '{}',
        external_user_id text,
        source text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        last_message_at timestamptz,
        message_count integer not null default 0,
        primary key (organization_id, id)
      )`);
    this.addSql(`create index chats_created_idx on chats (organization_id, created_at desc, id desc)`);
    this.addSql(`create index chats_external_user_idx on chats (organization_id, external_user_id) where external_user_id is not null`);
    this.addSql(`
      create table messages (
        organization_id uuid not null,
        id uuid not null,
        chat_id uuid not null,
        role text not null check (role in ('system', 'user', 'assistant', 'tool', 'function')),
        content text not null,
        name text,
        model text,
        prompt_tokens integer,
        completion_tokens integer,
        total_tokens integer,
        latency_ms integer,
        cost_usd numeric(20, 10),
        tool_calls jsonb,
        metadata jsonb not null default '{}',
        created_at timestamptz not null,
        primary key (organization_id, id),
        foreign key (organization_id, chat_id) references chats (organization_id, id) on delete cascade
      )`);
    this.addSql(`create index messages_chat_idx on messages (organization_id, chat_id, created_at, id)`);
    this.addSql(`create index messages_created_idx on messages (organization_id, created_at)`);
    this.addSql(`
      create table exports (
        organization_id uuid not null references organizations (id) on delete cascade,
        id uuid not null,
        created_by uuid references users (id) on delete set null,
        format text not null check (format in ('csv', 'json', 'ndjson')),
        scope text not null check (scope in ('chats', 'messages')),
        filters jsonb not null default '{}',
        snapshot_at timestamptz not null,
        created_at timestamptz not null default now(),
        primary key (organization_id, id)
      )`);
  }

  override async down(): Promise<void> {
    for (const table of ['exports', 'messages', 'chats', 'api_keys', 'sessions', 'users', 'organizations']) {
      this.addSql(`drop table if exists ${table}`);
    }
  }
}
