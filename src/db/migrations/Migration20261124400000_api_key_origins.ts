import { Migration } from '@mikro-orm/migrations';

/**
 * The browser origins an API key accepts (exact origins such as `https://shop.example.com`).
 * Empty means any origin, which is what every existing key did.
 */
export class Migration20261124400000_api_key_origins extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table api_keys add column allowed_origins text[] not null default '{}'`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table api_keys drop column allowed_origins`);
  }
}
