import type { Knex } from 'knex';
import { TenancyConfigError } from '../errors';
import type { TenantKnex } from './tenant-knex';
import type { WithTenancyOptions } from './with-tenancy-options';

/** Builds the row/schema-mode scoped instance (implementation in progress). */
export function createScopedKnex(_base: Knex, _options: WithTenancyOptions): TenantKnex {
  throw new TenancyConfigError('Cannot scope Knex yet because the row engine is not built. Wait.');
}
