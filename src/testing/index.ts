/**
 * tenantry/testing: helpers for your own test suite.
 *
 * @example
 * ```ts
 * import { findCrossTenantRows } from 'tenantry/testing';
 * ```
 */
export { findCrossTenantRows } from './find-cross-tenant-rows';
export type {
  CrossTenantReport,
  CrossTenantRow,
  FindCrossTenantRowsOptions,
  LeakTestStatement,
} from './find-cross-tenant-rows';
