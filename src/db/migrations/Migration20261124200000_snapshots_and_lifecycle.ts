import { Migration } from '@mikro-orm/migrations';

/**
 * Exports are snapshots. Each chat and message records the transaction that wrote it, and an
 * export records the database snapshot taken when it was created: a row belongs to the export
 * exactly when its writing transaction is visible in that snapshot (pg_visible_in_snapshot), so
 * rows committed later never leak in, whatever createdAt a client gave them.
 */
export class Migration20261124200000_snapshots_and_lifecycle extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table chats add column created_xid xid8 not null default pg_current_xact_id()`);
    this.addSql(`alter table messages add column created_xid xid8 not null default pg_current_xact_id()`);
    this.addSql(`alter table exports add column snapshot pg_snapshot not null default pg_current_snapshot()`);
    this.addSql(`alter table exports add column status text not null default 'ready'`);
    this.addSql(`create index exports_created_idx on exports (organization_id, created_at desc, id desc)`);
    // Retention walks chats by last activity across organizations.
    this.addSql(`create index chats_retention_idx on chats ((greatest(created_at, last_message_at)))`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists chats_retention_idx`);
    this.addSql(`drop index if exists exports_created_idx`);
    this.addSql(`alter table exports drop column status`);
    this.addSql(`alter table exports drop column snapshot`);
    this.addSql(`alter table messages drop column created_xid`);
    this.addSql(`alter table chats drop column created_xid`);
  }
}
