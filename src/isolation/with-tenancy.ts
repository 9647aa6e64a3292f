import type { Knex } from 'knex';
import { quoteValue } from '../message-text';
import { createDatabaseTenantKnex } from './database/database-tenant-knex';
import { createScopedKnex } from './scoped-knex';
import { createTieredTenantKnex } from './tiered/tiered-tenant-knex';
import type { TenantKnex } from './tenant-knex';
import type { WithTenancyOptions } from './with-tenancy-options';

/**
 * Wraps a Knex instance so every statement is scoped to the tenant of the
 * current scope (`runWithTenant()`, `resolveTenant()`):
 *
 * - `row` (default): tenant tables share rows, told apart by `tenant_id`.
 *   Reads and writes get the tenant predicate (ANDed around the user's own
 *   conditions), inserts are stamped, anything that cannot be proven safe is
 *   refused with `UNSAFE_QUERY` before any SQL is sent.
 * - `schema`: every tenant table reference is rewritten to the tenant's schema.
 * - `database`: each tenant has its own database and pool.
 * - `tiers: true`: each tenant on its own tier (its record's `isolation.tier`,
 *   else `mode`), every statement routed to that tier's engine.
 *
 * Statements on tenant tables with no active tenant throw
 * `TENANT_SCOPE_REQUIRED`. The base Knex is not changed: it stays unscoped.
 * Bad options throw TypeError here, at start-up.
 *
 * @example
 * ```ts
 * const db = withTenancy(knex({ client: 'pg', connection }), {
 *   tenantTables: ['documents', 'comments'],
 *   sharedTables: ['countries'],
 * });
 * await runWithTenant('acme', () => db('documents').where({ id: 1 }).first());
 * ```
 */
export function withTenancy(knex: Knex, options: WithTenancyOptions = {}): TenantKnex {
  if (typeof knex !== 'function' || typeof knex.client !== 'object') {
    throw new TypeError('withTenancy(knex, options) needs a Knex instance as its first argument.');
  }
  if (options.tiers !== undefined && typeof options.tiers !== 'boolean') {
    throw new TypeError(
      `Cannot use tiers=${quoteValue(options.tiers)} because it must be true or false.`,
    );
  }
  const mode = options.mode ?? 'row';
  if (options.tiers === true) {
    if (!['row', 'schema', 'database'].includes(mode)) {
      throw new TypeError(
        `Cannot use isolation mode "${String(mode)}" as the default tier because it is unknown. Use "row", "schema" or "database".`,
      );
    }
    return createTieredTenantKnex(knex, options);
  }
  switch (mode) {
    case 'row':
    case 'schema':
      return createScopedKnex(knex, { ...options, mode });
    case 'database':
      return createDatabaseTenantKnex(knex, options);
    default:
      throw new TypeError(
        `Cannot use isolation mode "${String(mode)}" because it is unknown. Use "row", "schema" or "database".`,
      );
  }
}
