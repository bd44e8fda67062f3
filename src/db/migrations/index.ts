import { Migration20261124000000_initial } from './Migration20261124000000_initial.ts';
import { Migration20261124100000_dashboard_reads } from './Migration20261124100000_dashboard_reads.ts';
import { Migration20261124200000_snapshots_and_lifecycle } from './Migration20261124200000_snapshots_and_lifecycle.ts';
import { Migration20261124300000_analytics_rollups } from './Migration20261124300000_analytics_rollups.ts';
import { Migration20261124400000_api_key_origins } from './Migration20261124400000_api_key_origins.ts';
import { Migration20261124500000_drop_retention_index } from './Migration20261124500000_drop_retention_index.ts';
import { Migration20261202000000_tenant_write_functions } from './Migration20261202000000_tenant_write_functions.ts';
import { Migration20261203000000_users_email_per_organization } from './Migration20261203000000_users_email_per_organization.ts';
import { Migration20261203100000_search } from './Migration20261203100000_search.ts';

/**
 * Every migration, in order. Listed explicitly (not discovered from the file system) so the
 * same list runs from source, from the CLI and from a compiled binary.
 */
export const migrations = [
  { name: 'Migration20261124000000_initial', class: Migration20261124000000_initial },
  { name: 'Migration20261124100000_dashboard_reads', class: Migration20261124100000_dashboard_reads },
  { name: 'Migration20261124200000_snapshots_and_lifecycle', class: Migration20261124200000_snapshots_and_lifecycle },
  { name: 'Migration20261124300000_analytics_rollups', class: Migration20261124300000_analytics_rollups },
  { name: 'Migration20261124400000_api_key_origins', class: Migration20261124400000_api_key_origins },
  { name: 'Migration20261124500000_drop_retention_index', class: Migration20261124500000_drop_retention_index },
  { name: 'Migration20261202000000_tenant_write_functions', class: Migration20261202000000_tenant_write_functions },
  { name: 'Migration20261203000000_users_email_per_organization', class: Migration20261203000000_users_email_per_organization },
  { name: 'Migration20261203100000_search', class: Migration20261203100000_search },
];
