import type {
  TenantDomain,
  TenantIsolationSettings,
  TenantRecord,
  TenantStatus,
} from '../context/tenant-record';

/** What a new tenant is created from. */
export interface NewTenant {
  /** The tenant id (validated against `TENANT_ID_PATTERN`). */
  readonly id: string;
  /** Display name. Default: the id. */
  readonly name?: string | undefined;
  /** Initial status. Default: `active`. */
  readonly status?: TenantStatus | undefined;
  /** Isolation placement. Default: `{}`. */
  readonly isolation?: TenantIsolationSettings | undefined;
  /** Per-tenant config overrides. Default: `{}`. */
  readonly config?: Readonly<Record<string, unknown>> | undefined;
  /** Custom domains (normalised host names). Default: none. */
  readonly domains?: readonly TenantDomain[] | undefined;
}

/** A partial update of a tenant. `id` and `createdAt` never change. */
export interface TenantPatch {
  readonly name?: string | undefined;
  readonly status?: TenantStatus | undefined;
  readonly statusReason?: string | null | undefined;
  readonly isolation?: TenantIsolationSettings | undefined;
  readonly config?: Readonly<Record<string, unknown>> | undefined;
  /** Custom domains, replacing the whole list (normalised host names). */
  readonly domains?: readonly TenantDomain[] | undefined;
}

/** Filters for {@link TenantStore.list}. */
export interface TenantListOptions {
  /** Only tenants with one of these statuses. Default: all. */
  readonly status?: readonly TenantStatus[] | undefined;
}

/**
 * Where tenants are kept. `resolveTenant()` only calls `findById` (and
 * `findByDomain` for the `domain` strategy), and only
 * with an id that already passed `TENANT_ID_PATTERN`.
 *
 * @example
 * ```ts
 * const store: TenantStore = new InMemoryTenantStore([{ id: 'acme', name: 'Acme' }]);
 * ```
 */
export interface TenantStore {
  /** The tenant with this id, or `undefined`. */
  findById(id: string): Promise<TenantRecord | undefined>;
  /** Every tenant, ordered by id. */
  list(options?: TenantListOptions): Promise<TenantRecord[]>;
  /** Creates a tenant; throws `TenantStateError` if the id is taken. */
  create(tenant: NewTenant): Promise<TenantRecord>;
  /** Updates a tenant; throws `TenantNotFoundError` if it does not exist. */
  update(id: string, patch: TenantPatch): Promise<TenantRecord>;
  /** Removes a tenant record; returns whether it existed. */
  remove(id: string): Promise<boolean>;
  /**
   * The tenant holding `domain` (a normalised host name) as a **verified**
   * custom domain, or `undefined`. Optional: needed by the `domain` strategy.
   */
  findByDomain?(domain: string): Promise<TenantRecord | undefined>;
}
