/**
 * The lifecycle status of a tenant. Only `active` tenants are served by
 * `resolveTenant()`; every other status is refused with `TENANT_SUSPENDED`
 * (or `TENANT_NOT_FOUND` for `deleted`).
 */
export type TenantStatus =
  'active' | 'suspended' | 'archived' | 'provisioning' | 'provisioning_failed' | 'deleted';

/** Where a tenant's own database lives (database isolation mode). */
export interface TenantDatabaseSettings {
  /**
   * Name of a configured server (`database.servers`) the database lives on.
   * Default: the server of the application's base connection.
   */
  readonly server?: string;
  /**
   * Server host; must match a configured server (prefer `server`). Default:
   * the application's default connection host.
   */
  readonly host?: string;
  /** Server port; must match a configured server. Default: the application's default connection port. */
  readonly port?: number;
  /** Database name. Required. */
  readonly database: string;
  /** Role to connect as. Default: the application's default user. */
  readonly user?: string;
  /**
   * Name of the secret that holds the password (resolved by the configured
   * credentials resolver; never a plaintext password). Only names allowed by
   * `database.passwordRefs` are resolved. Default: none.
   */
  readonly passwordRef?: string;
}

/** Per-tenant isolation placement, filled in by provisioning. */
export interface TenantIsolationSettings {
  /** Schema name in schema mode (e.g. `tenant_acme`). */
  readonly schema?: string;
  /** Connection settings in database mode. */
  readonly database?: TenantDatabaseSettings;
}

/**
 * A tenant as the tenant store knows it.
 *
 * @example
 * ```ts
 * const acme: TenantRecord = { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} };
 * ```
 */
export interface TenantRecord {
  /** The tenant id: also its slug, used in hosts, paths and schema names. */
  readonly id: string;
  /** Display name. */
  readonly name: string;
  /** Lifecycle status. */
  readonly status: TenantStatus;
  /** Why the status was set (e.g. a provisioning failure), if known. */
  readonly statusReason?: string | null;
  /** Isolation placement (schema name, database settings). */
  readonly isolation: TenantIsolationSettings;
  /** Per-tenant configuration overrides. */
  readonly config: Readonly<Record<string, unknown>>;
  /** When the tenant was created. */
  readonly createdAt?: Date;
  /** When the tenant was last changed. */
  readonly updatedAt?: Date;
}
