import { Migration20261124000000_initial } from './Migration20261124000000_initial.ts';
import { Migration20261124100000_dashboard_reads } from './Migration20261124100000_dashboard_reads.ts';
import { Migration20261124200000_snapshots_and_lifecycle } from './Migration20261124200000_snapshots_and_lifecycle.ts';

/**
 * Every migration, in order. Listed explicitly (not discovered from the file system) so the
 * same list runs from source, from the CLI and from a compiled binary.
 */
export const migrations = [
  { name: 'Migration20261124000000_initial', class: Migration20261124000000_initial },
  { name: 'Migration20261124100000_dashboard_reads', class: Migration20261124100000_dashboard_reads },
  { name: 'Migration20261124200000_snapshots_and_lifecycle', class: Migration20261124200000_snapshots_and_lifecycle },
];
