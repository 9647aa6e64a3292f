import { assertValidTenantId } from '../../context/tenant-id';
import type { TenantRecord } from '../../context/tenant-record';

/** The default prefix of tenant schema names. */
export const DEFAULT_SCHEMA_PREFIX = 'tenant_';

const PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,20}$/;

/**
 * Maps a tenant to its PostgreSQL schema name: the record's
 * `isolation.schema` when provisioning stored one, else `<prefix><id>` with
 * `-` turned into `_` (`acme-eu` → `tenant_acme_eu`). The id is validated
 * first, so the result only ever holds `[a-z0-9_]` and fits PostgreSQL's
 * 63-byte identifier limit; it is still quoted wherever it is used.
 *
 * @example
 * ```ts
 * tenantSchemaName({ id: 'acme-eu' }); // 'tenant_acme_eu'
 * ```
 */
export function tenantSchemaName(
  tenant: Pick<TenantRecord, 'id'> & Partial<Pick<TenantRecord, 'isolation'>>,
  prefix: string = DEFAULT_SCHEMA_PREFIX,
): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(
      `Cannot use schema prefix "${prefix}" because it is not a plain identifier. Use 1-21 of [a-z0-9_], starting with a letter or _.`,
    );
  }
  const stored = tenant.isolation?.schema;
  if (stored !== undefined) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(stored)) {
      throw new TypeError(
        `Cannot use stored schema name "${stored}" for tenant "${tenant.id}" because it is not a plain identifier.`,
      );
    }
    return stored;
  }
  const id = assertValidTenantId(tenant.id, 'tenant record');
  const name = `${prefix}${id.replace(/-/g, '_')}`;
  // prefix <= 21 and id <= 63 could exceed 63 bytes; refuse rather than truncate (truncation could collide).
  if (name.length > 63) {
    throw new TypeError(
      `Cannot map tenant "${id}" to a schema name because "${name}" is longer than 63 bytes. Use a shorter prefix or store isolation.schema.`,
    );
  }
  return name;
}
