import { tenantSchemaName } from '../schema/tenant-schema-name';

/** The default prefix of tenant database names. */
export const DEFAULT_DATABASE_PREFIX = 'tenant_';

/**
 * Maps a validated tenant id to its database name when the tenant record
 * names none (`acme-eu` → `tenant_acme_eu`): the same safe mapping as schema
 * names, so the result only holds `[a-z0-9_]`.
 *
 * @example
 * ```ts
 * tenantDatabaseName('acme'); // 'tenant_acme'
 * ```
 */
export function tenantDatabaseName(id: string, prefix: string = DEFAULT_DATABASE_PREFIX): string {
  return tenantSchemaName({ id }, prefix);
}
