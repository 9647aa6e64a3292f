import type { TenantTier } from '../context/tenant-record';

/** A tenant resolved for a request (or a WebSocket upgrade) by `resolveTenant()`. */
export interface TenantResolvedEvent {
  /** The resolved tenant (found in the store, active, membership checked). */
  readonly tenantId: string;
  /** The resolution source that named it (`header`, `jwt_claim`, ...). */
  readonly source: string;
}

/** Where a refusal happened. */
export type TenancyRefusalStage = 'resolution' | 'statement' | 'pool';

/** A request, statement or connection refused with a coded error. */
export interface TenancyRefusalEvent {
  /** The error's stable code (`TENANT_NOT_FOUND`, `UNSAFE_QUERY`, `TENANT_SCOPE_REQUIRED`...). */
  readonly code: string;
  /** Where it was refused. */
  readonly stage: TenancyRefusalStage;
  /**
   * The tenant, only when it is known and verified: the scope a statement ran
   * in, the tenant whose pool refused. A resolution refusal never carries the
   * id the client sent (it is unverified, and any string would become a label).
   */
  readonly tenantId?: string | undefined;
}

/** A statement proven tenant-safe and sent (row/schema mode) or routed to a tenant database. */
export interface TenantStatementEvent {
  /** The tenant it ran as; undefined in a system scope (or on a shared table with no scope). */
  readonly tenantId?: string | undefined;
  /** `tenant`, `system` or `none` (a statement on shared tables only). */
  readonly scope: 'tenant' | 'system' | 'none';
  /** The isolation mode of the tenant-scoped Knex that sent it. */
  readonly mode: TenantTier;
  /** The tenant's tier (its record's `isolation.tier`), else the mode. */
  readonly tier: TenantTier;
  /** `select`, `insert`, `update`, `delete`, or another leading SQL keyword (lower case) for raw SQL. */
  readonly kind: string;
}

/** A database-mode connection request that had to wait. */
export interface TenantPoolWaitEvent {
  /** The tenant whose pool waited. */
  readonly tenantId: string;
  /**
   * `pool`: every connection of the tenant's pool was lent out
   * (`maxConnectionsPerTenant`); `budget`: opening a connection waited for a
   * slot of the global `connectionBudget`.
   */
  readonly reason: 'pool' | 'budget';
  /** How long it waited, in milliseconds. */
  readonly waitMs: number;
}

/**
 * Receives tenantry's counters. Implement the methods you need (each is
 * optional), or use `prometheusTenancyMetrics()` from `tenantry/prometheus`.
 * Called synchronously on the request and statement path: keep each call
 * cheap, and never throw (a throwing method is caught and logged).
 *
 * @example
 * ```ts
 * const counts = new Map<string, number>();
 * const metrics: TenancyMetrics = {
 *   statement: (e) => counts.set(e.tenantId ?? '-', (counts.get(e.tenantId ?? '-') ?? 0) + 1),
 * };
 * const telemetry = tenancyTelemetry({ metrics });
 * ```
 */
export interface TenancyMetrics {
  /** A request resolved a tenant. */
  readonly tenantResolved?: ((event: TenantResolvedEvent) => void) | undefined;
  /** A request, statement or pool acquisition was refused. */
  readonly refused?: ((event: TenancyRefusalEvent) => void) | undefined;
  /** A statement was sent. */
  readonly statement?: ((event: TenantStatementEvent) => void) | undefined;
  /** A database-mode connection request waited. */
  readonly poolWait?: ((event: TenantPoolWaitEvent) => void) | undefined;
}
