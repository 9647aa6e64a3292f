import type { Knex } from 'knex';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { TenantRecord, TenantTier } from '../context/tenant-record';
import type { IsolationMode } from './with-tenancy-options';

/** What {@link TenantKnex.unscoped} needs. */
export interface UnscopedOptions {
  /** Why the tenant wall is crossed; goes to the audit event. Required, non-empty. */
  readonly reason: string;
}

/**
 * How a tiered {@link TenantKnex} (`withTenancy(knex, { tiers: true })`)
 * picks a tenant's tier.
 *
 * @example
 * ```ts
 * db.tenancy.tiers?.tierOf(record); // 'schema'
 * ```
 */
export interface TenancyTiersInfo {
  /** The tier of a record that names none: the instance's `mode`. */
  readonly defaultTier: TenantTier;
  /** The tier a record is served on (its `isolation.tier`, else `defaultTier`); throws `TENANT_UNAVAILABLE` for an unknown tier. */
  tierOf(record: TenantRecord): TenantTier;
}

/**
 * Read-only facts about a {@link TenantKnex}.
 *
 * @example
 * ```ts
 * db.tenancy.mode; // 'row'
 * ```
 */
export interface TenancyInfo {
  /** The isolation mode; with tiers, the default tier (see `tiers`). */
  readonly mode: IsolationMode;
  /**
   * Set when each tenant is served on its own tier (`tiers: true`): how the
   * tier is picked. Default: `undefined` (every tenant on `mode`).
   */
  readonly tiers?: TenancyTiersInfo | undefined;
  /** The tenant column (row mode). */
  readonly tenantColumn: string;
  /** The declared (and, once discovered, the discovered) tenant tables. */
  readonly tenantTables: readonly string[];
  /** The declared shared tables. */
  readonly sharedTables: readonly string[];
  /** Whether the RLS backstop is on. */
  readonly rls: boolean;
  /**
   * Resolves once start-up work (table discovery, the RLS safety check) is
   * done; rejects with its error. Statements wait for it on their own.
   */
  ready(): Promise<void>;
}

/**
 * A Knex instance scoped to the current tenant: query it exactly as plain
 * Knex (`db('documents').where(...)`, `db.transaction`, `db.raw`); every
 * statement is scoped to the tenant of the current scope, and refused
 * (before any SQL is sent) when it cannot be.
 *
 * @example
 * ```ts
 * const db: TenantKnex = withTenancy(knex, { tenantTables: ['documents'] });
 * await runWithTenant('acme', () => db('documents').where({ id: 1 }));
 * ```
 */
export type TenantKnex = Knex & {
  /**
   * The plain, unscoped Knex this instance wraps, after emitting an
   * `unscoped_query` audit event with the reason: with `runAsSystem()`, the
   * only way past the scoping.
   *
   * @example
   * ```ts
   * const all = await db.unscoped({ reason: 'billing export' })('documents').count();
   * ```
   */
  unscoped(options: UnscopedOptions): Knex;
  /** Read-only facts about the instance. */
  readonly tenancy: TenancyInfo;
};

/**
 * The DI token of the application's {@link TenantKnex}.
 *
 * @example
 * ```ts
 * @injectable()
 * class DocumentService {
 *   constructor(@inject(TENANT_KNEX) private readonly db: TenantKnex) {}
 * }
 * ```
 */
export const TENANT_KNEX: unique symbol = Symbol.for('tenantry.TenantKnex');

/**
 * Registers `db` under {@link TENANT_KNEX} in a container (default: the root
 * container). The instance holds no tenant itself (it reads the scope per
 * statement), so one registration serves every request.
 *
 * @example
 * ```ts
 * registerTenantKnex(withTenancy(knex, { tenantTables: ['documents'] }));
 * const docs = container.resolve(DocumentService);
 * ```
 */
export function registerTenantKnex(
  db: TenantKnex,
  target: DependencyContainer = rootContainer,
): DependencyContainer {
  target.register<TenantKnex>(TENANT_KNEX, { useValue: db });
  return target;
}
