import type { Knex } from 'knex';
import { auditedUnscoped } from '../unscoped-access';
import type { TenantRecord, TenantTier } from '../../context/tenant-record';
import { tryCurrentTenant } from '../../context/tenant-scope';
import { TenantUnavailableError } from '../../errors';
import { quoteValue } from '../../message-text';
import {
  createDatabaseTenantKnex,
  type DatabaseTenantKnex,
} from '../database/database-tenant-knex';
import type { KnexEventListener, TenantPoolManager } from '../database/tenant-pool-manager';
import { createScopedKnex } from '../scoped-knex';
import type { TenancyInfo, TenantKnex } from '../tenant-knex';
import type { WithTenancyOptions } from '../with-tenancy-options';
import { isTenantTier, tenantTierOf } from './tenant-tier';

/**
 * A {@link TenantKnex} serving every tier at once (`withTenancy(knex, { tiers: true })`).
 * `tenantPools` is the pool manager of the database tier (built on first use).
 */
export type TieredTenantKnex = TenantKnex & {
  /** The pool manager of the database tier. */
  readonly tenantPools: TenantPoolManager;
};

const NOT_THENABLE = new Set<PropertyKey>(['then', 'catch', 'finally']);
const OWN = ['tenancy', 'unscoped', 'destroy', 'tenantPools'];

/**
 * Tiered tenancy: one Knex-shaped object that routes every call (builder,
 * raw statement, transaction, schema call) to the engine of the **current
 * tenant's tier**, read from its record (`isolation.tier`, else `options.mode`,
 * the default tier):
 *
 * - `row`: the row-mode engine (tenant predicate, stamped inserts, final-SQL verifier, optional RLS);
 * - `schema`: the schema-mode engine (tables rewritten to the record's `isolation.schema`, verifier);
 * - `database`: the database-mode engine (the record's own database and pool).
 *
 * The engine is chosen when the builder is created, so a builder keeps its
 * tenant and tier (each engine then refuses or keeps it exactly as in single
 * mode). Code with no tenant scope (or in a system scope) uses the default
 * tier's engine, as a single-mode app does. A schema-tier record must name
 * its schema and a database-tier record its database (provisioning fills
 * both); otherwise the statement is refused with 503 `TENANT_UNAVAILABLE`,
 * never served on another tier. Each engine is built on first use from the
 * same base Knex and options; the default tier's at start-up.
 *
 * @example
 * ```ts
 * const db = createTieredTenantKnex(knex, { mode: 'row', tiers: true, tenantTables: ['documents'] });
 * await runWithTenant(
 *   { id: 'acme', name: 'Acme', status: 'active', isolation: { tier: 'schema', schema: 'tenant_acme' }, config: {} },
 *   () => db('documents').select('*'), // select * from "tenant_acme"."documents"
 * );
 * ```
 */
export function createTieredTenantKnex(
  base: Knex,
  options: WithTenancyOptions = {},
): TieredTenantKnex {
  const defaultTier: TenantTier = options.mode ?? 'row';
  if (!isTenantTier(defaultTier)) {
    throw new TypeError(
      `Cannot use default tier ${quoteValue(defaultTier)} because it is unknown. Use mode "row", "schema" or "database".`,
    );
  }
  const tenantOption = options.tenantTables;
  if (
    tenantOption !== undefined &&
    !Array.isArray(tenantOption) &&
    (tenantOption as { discover?: boolean }).discover === true
  ) {
    throw new TypeError(
      'Cannot discover tenant tables with tiers because schema-tier tenants keep their tables in their own schemas. ' +
        'List tenantTables.',
    );
  }
  const rlsEnabled =
    options.rls === true || (typeof options.rls === 'object' && options.rls.enabled !== false);

  const engines = new Map<TenantTier, TenantKnex>();
  // Every tier shares the options; what only one tier can use stays there:
  // RLS (and allowRaw, which needs it) is a row-tier backstop.
  const build = (tier: TenantTier): TenantKnex => {
    if (tier === 'database') return createDatabaseTenantKnex(base, { ...options, mode: tier });
    if (tier === 'schema') {
      return createScopedKnex(base, {
        ...options,
        mode: tier,
        rls: undefined,
        allowRaw: undefined,
      });
    }
    return createScopedKnex(base, { ...options, mode: tier });
  };
  // Knex event listeners (db.on('query', ...)) of every tier: each engine emits its own
  // statements' events, so a listener goes to every engine, built now or later.
  const listeners: { event: string; listener: KnexEventListener }[] = [];
  const engine = (tier: TenantTier): TenantKnex => {
    let built = engines.get(tier);
    if (built === undefined) {
      built = build(tier);
      engines.set(tier, built);
      for (const { event, listener } of listeners) built.on(event, listener);
    }
    return built;
  };
  engine(defaultTier); // validates the options at start-up
  // Database options are validated now too (the pool manager opens nothing before a tenant's first statement).
  if (options.database !== undefined) engine('database');

  const engineInScope = (): TenantKnex => {
    const context = tryCurrentTenant();
    if (context === undefined) return engine(defaultTier);
    const record = context.tenant;
    const tier = tenantTierOf(record, defaultTier);
    if (tier === 'schema' && record.isolation?.schema === undefined) {
      throw new TenantUnavailableError(
        `Cannot serve tenant "${record.id}" on the schema tier because its record names no schema. ` +
          'Provision it with TenantManager (which stores isolation.schema) or set isolation.schema.',
      );
    }
    if (tier === 'database' && record.isolation?.database === undefined) {
      throw new TenantUnavailableError(
        `Cannot serve tenant "${record.id}" on the database tier because its record names no database. ` +
          'Provision it with TenantManager (which stores isolation.database) or set isolation.database.',
      );
    }
    return engine(tier);
  };

  const tierOf = (record: TenantRecord): TenantTier => tenantTierOf(record, defaultTier);
  const tenancy: TenancyInfo = Object.freeze({
    mode: defaultTier,
    get tenantColumn() {
      return engine(defaultTier).tenancy.tenantColumn;
    },
    get tenantTables() {
      return engine(defaultTier).tenancy.tenantTables;
    },
    get sharedTables() {
      return engine(defaultTier).tenancy.sharedTables;
    },
    rls: rlsEnabled,
    tiers: Object.freeze({ defaultTier, tierOf }),
    ready: () =>
      Promise.all([...engines.values()].map((e) => e.tenancy.ready())).then(() => undefined),
  });
  const unscoped = auditedUnscoped(base);
  const destroy = async (): Promise<void> => {
    await Promise.all([...engines.values()].map((e) => e.destroy()));
  };
  const off = (event: string, listener: KnexEventListener): TieredTenantKnex => {
    const at = listeners.findIndex((l) => l.event === event && l.listener === listener);
    if (at !== -1) listeners.splice(at, 1);
    for (const e of engines.values()) e.removeListener(event, listener);
    return proxy;
  };
  const own: Record<string, unknown> = {
    tenancy,
    unscoped,
    destroy,
    on: (event: string, listener: KnexEventListener): TieredTenantKnex => {
      listeners.push({ event, listener });
      for (const e of engines.values()) e.on(event, listener);
      return proxy;
    },
    off,
    removeListener: off,
  };

  // The target is a function so the proxy is callable like knex('table').
  const target = function tieredTenantKnexTarget() {} as unknown as Knex;
  const proxy: TieredTenantKnex = new Proxy(target, {
    apply(_target, _this, args: unknown[]) {
      return (engineInScope() as unknown as (...a: unknown[]) => unknown)(...args);
    },
    get(_target, property) {
      if (typeof property === 'string' && property in own) return own[property];
      if (property === 'tenantPools') return (engine('database') as DatabaseTenantKnex).tenantPools;
      // Never thenable: `await db` or returning it from an async function must not query.
      if (NOT_THENABLE.has(property) || typeof property === 'symbol') return undefined;
      const knex = engineInScope();
      const value: unknown = Reflect.get(knex, property, knex);
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(knex)
        : value;
    },
    has(_target, property) {
      return OWN.includes(property as string);
    },
  }) as TieredTenantKnex;
  return proxy;
}
