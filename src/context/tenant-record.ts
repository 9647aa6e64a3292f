/**
 * The lifecycle status of a tenant. `active` tenants are served by
 * `resolveTenant()`; a `moving` tenant (the write freeze of an online move)
 * is served for reads while writes are answered 503 `TENANT_UNAVAILABLE`
 * with `Retry-After`; every other status is refused with `TENANT_SUSPENDED`
 * (or `TENANT_NOT_FOUND` for `deleted`).
 */
export type TenantStatus =
  | 'active'
  | 'moving'
  | 'suspended'
  | 'archived'
  | 'provisioning'
  | 'provisioning_failed'
  | 'deleted';

/** Where a tenant's own database lives (database isolation mode). */
export interface TenantDatabaseSettings {
  /**
   * Name of a configured server (`database.servers`) the database lives on.
   * Default: the server of the application's base connection.
   */
  readonly server?: string | undefined;
  /**
   * Server host; must match a configured server (prefer `server`). Default:
   * the application's default connection host.
   */
  readonly host?: string | undefined;
  /** Server port; must match a configured server. Default: the application's default connection port. */
  readonly port?: number | undefined;
  /** Database name. Required. */
  readonly database: string;
  /** Role to connect as. Default: the application's default user. */
  readonly user?: string | undefined;
  /**
   * Name of the secret that holds the password (resolved by the configured
   * credentials resolver; never a plaintext password). Only names allowed by
   * `database.passwordRefs` are resolved. Default: none.
   */
  readonly passwordRef?: string | undefined;
}

/**
 * The isolation tier a tenant lives on (tiered tenancy): its rows in the
 * shared tables (`row`), its own schema (`schema`) or its own database
 * (`database`). A record without one lives on the application's default tier
 * (`isolation.mode`).
 */
export type TenantTier = 'row' | 'schema' | 'database';

/** Per-tenant isolation placement, filled in by provisioning. */
export interface TenantIsolationSettings {
  /**
   * The tenant's tier when the application serves several tiers at once.
   * Default: the application's default tier (`isolation.mode`).
   */
  readonly tier?: TenantTier | undefined;
  /**
   * Region the tenant's data is pinned to (data residency): provisioning and
   * moves refuse a server labelled with another region. Default: not pinned.
   */
  readonly region?: string | undefined;
  /** Schema name in schema mode (e.g. `tenant_acme`). */
  readonly schema?: string | undefined;
  /** Connection settings in database mode. */
  readonly database?: TenantDatabaseSettings | undefined;
}

/**
 * A custom domain of a tenant (`app.acme-corp.com`, the white-label case).
 * Only a `verified` domain resolves to its tenant; an unverified one is kept
 * with its challenge token until `TenantManager.verifyDomain()` proves the
 * tenant controls it.
 *
 * @example
 * ```ts
 * const domain: TenantDomain = { domain: 'app.acme-corp.com', verified: true, verifiedAt: new Date() };
 * ```
 */
export interface TenantDomain {
  /** The host name, normalised (lower case, no trailing dot, punycode). */
  readonly domain: string;
  /** Whether the tenant proved it controls the domain. Only verified domains resolve. */
  readonly verified: boolean;
  /** The challenge the verification checks (a DNS TXT value or an HTTP token), while unverified. */
  readonly token?: string | undefined;
  /** When the domain was verified (ISO 8601 in JSON stores). */
  readonly verifiedAt?: string | undefined;
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
  readonly statusReason?: string | null | undefined;
  /** Isolation placement (schema name, database settings). */
  readonly isolation: TenantIsolationSettings;
  /** Per-tenant configuration overrides. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Custom domains (white-label hosts) of the tenant. Default: none. */
  readonly domains?: readonly TenantDomain[] | undefined;
  /** When the tenant was created. */
  readonly createdAt?: Date | undefined;
  /** When the tenant was last changed. */
  readonly updatedAt?: Date | undefined;
}

/** A {@link TenantRecord} whose fields can still be set (before it is frozen). */
export type MutableTenantRecord = { -readonly [K in keyof TenantRecord]: TenantRecord[K] };

/**
 * A shallow copy of `record`, to be frozen by the caller. Copied with
 * `Object.assign`, not spread: V8 gives each frozen spread copy a map of its
 * own (92 maps for 100 records, measured), which turns every read of a record
 * field on the request path into a megamorphic miss. A record with an own
 * `__proto__` key is spread, so the copy cannot get another prototype.
 * Internal.
 */
export function copyTenantRecord(record: TenantRecord): MutableTenantRecord {
  return Object.hasOwn(record, '__proto__') ? { ...record } : Object.assign({}, record);
}
