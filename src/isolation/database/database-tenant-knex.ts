// PLACEHOLDER owned by the database-mode work (issue 4): replaced by the real
// per-tenant pool manager. Until then database mode refuses to start.
import type { Knex } from 'knex';
import { TenancyConfigError } from '../../errors';
import type { TenantKnex } from '../tenant-knex';
import type { WithTenancyOptions } from '../with-tenancy-options';

/** Options of database isolation mode (filled in by the database-mode work). */
export interface DatabaseIsolationOptions {
  /** Placeholder field; the real options replace this interface. */
  readonly maxPools?: number;
}

/** Refuses: database mode is not built yet. */
export function createDatabaseTenantKnex(_base: Knex, _options: WithTenancyOptions): TenantKnex {
  throw new TenancyConfigError(
    'Cannot use isolation mode "database" because it is not implemented yet. Use "row".',
  );
}
