import { Migration } from '@mikro-orm/migrations';

/** Indexes for the dashboard's lists and search, and the audit log. */
export class Migration20261124100000_dashboard_reads extends Migration {
  override async up(): Promise<void> {
    // Chats by last activity: greatest() ignores a null last_message_at.
    this.addSql(`create index chats_activity_idx on chats (organization_id, (greatest(created_at, last_message_at)) desc, id desc)`);
    this.addSql(`create index chats_tags_idx on chats using gin (tags)`);
    this.addSql(`create index chats_source_idx on chats (organization_id, source) where source is not null`);
    // Full-text search with the language-neutral 'simple' configuration: chat logs mix languages.
    this.addSql(`create index chats_title_search_idx on chats using gin (to_tsvector('simple', coalesce(title, '')))`);
    this.addSql(`create index messages_content_search_idx on messages using gin (to_tsvector('simple', content))`);
    this.addSql(`create index users_organization_email_idx on users (organization_id, email)`);
    this.addSql(`drop index users_organization_idx`);
    this.addSql(`
      create table audit_events (
        organization_id uuid not null references organizations (id) on delete cascade,
        id uuid not null,
        at timestamptz not null default now(),
        actor_id uuid,
        actor_email text,
        action text not null,
        target_type text,
        target_id text,
        details jsonb not null default '{}',
        primary key (organization_id, id)
      )`);
    this.addSql(`create index audit_events_action_idx on audit_events (organization_id, action, id desc)`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists audit_events`);
    this.addSql(`create index users_organization_idx on users (organization_id)`);
    for (const index of ['users_organization_email_idx', 'messages_content_search_idx', 'chats_title_search_idx', 'chats_source_idx', 'chats_tags_idx', 'chats_activity_idx']) {
      this.addSql(`drop index if exists ${index}`);
    }
  }
}
