import { Migration } from '@mikro-orm/migrations';

/**
 * Accounts belong to one organization: an email is unique within its organization, not across
 * the service. A global unique email let a tenant learn (by a 409) that another tenant, or the
 * superadmin, has an account with that email, and squat an email before another tenant invited
 * it. The same person in two organizations has two accounts; login picks the one whose password
 * matches. The unique constraint replaces the (organization_id, email) index it covers.
 */
export class Migration20261203000000_users_email_per_organization extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table users drop constraint users_email_key`);
    this.addSql(`drop index if exists users_organization_email_idx`);
    this.addSql(`alter table users add constraint users_organization_email_key unique (organization_id, email)`);
    // Login looks accounts up by email alone.
    this.addSql(`create index users_email_idx on users (email)`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists users_email_idx`);
    this.addSql(`alter table users drop constraint users_organization_email_key`);
    this.addSql(`create index users_organization_email_idx on users (organization_id, email)`);
    this.addSql(`alter table users add constraint users_email_key unique (email)`);
  }
}
