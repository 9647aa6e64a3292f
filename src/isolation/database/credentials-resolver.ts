import type { TenantRecord } from '../../context/tenant-record';
import { TenantUnavailableError } from '../../errors';

/**
 * Turns a tenant's `passwordRef` (the name of a secret, never the secret)
 * into the password. May be async (a vault call); called each time a tenant
 * pool opens a connection, so rotated secrets are picked up.
 */
export type CredentialsResolver = (
  passwordRef: string,
  tenant: TenantRecord,
) => string | Promise<string>;

/**
 * The default {@link CredentialsResolver}: `passwordRef` names an
 * environment variable (e.g. `TENANT_ACME_DB_PASSWORD`).
 *
 * @example
 * ```ts
 * createDatabaseTenantKnex(knex, { database: { credentials: envCredentialsResolver } });
 * ```
 */
export const envCredentialsResolver: CredentialsResolver = (passwordRef, tenant) => {
  const value = process.env[passwordRef];
  if (value === undefined) {
    throw new TenantUnavailableError(
      `Cannot connect to the database of tenant "${tenant.id}" because its password secret is not set. Ask the operator to set it.`,
    );
  }
  return value;
};
