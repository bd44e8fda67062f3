import { Migration } from '@mikro-orm/migrations';

/**
 * Retention deletes one organization at a time, which chats_activity_idx (organization_id,
 * last activity) serves already. The index on last activity alone was redundant: one more index
 * to update with every message (each append moves its chat's last_message_at), and one the
 * planner could pick for a single tenant's chat list over the tenant-prefixed index.
 */
export class Migration20261124500000_drop_retention_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index if exists chats_retention_idx`);
  }

  override async down(): Promise<void> {
    this.addSql(`create index chats_retention_idx on chats ((greatest(created_at, last_message_at)))`);
  }
}
