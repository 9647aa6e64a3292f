import type { Knex } from 'knex';
import type { KnexEventListener } from './tenant-pool-manager';
import { auditedUnscoped } from '../unscoped-access';
import { currentSystemReason, tryCurrentTenant } from '../../context/tenant-scope';
import { TenantScopeError } from '../../errors';
import { toTenancyLogger } from '../../logger';
import { telemetryHooks } from '../../telemetry/tenancy-telemetry';
import { checkKnexInternals } from '../knex-adapter';
import type { TenancyInfo, TenantKnex } from '../tenant-knex';
import type { WithTenancyOptions } from '../with-tenancy-options';
import { TenantPoolManager, type DatabaseIsolationOptions } from './tenant-pool-manager';

export type { DatabaseIsolationOptions };

/** The options `createDatabaseTenantKnex()` reads: `withTenancy()`'s options. */
export type DatabaseTenantKnexOptions = WithTenancyOptions;

/**
 * A Knex whose every builder, raw statement, schema call and transaction
 * runs in the current tenant's own database. `tenantPools` exposes the pool
 * manager (stats, `closeTenant()`); `destroy()` closes every tenant pool
 * this instance opened and never the base Knex passed in (close it yourself).
 */
export type DatabaseTenantKnex = TenantKnex & {
  /** The pool manager behind this instance. */
  readonly tenantPools: TenantPoolManager;
};

/** The base Knex's connection, when it is one tenant connections can be built from. */
function baseConnectionOf(base: Knex): string | Record<string, unknown> | undefined {
  const connection = (base.client as { config?: { connection?: unknown } }).config?.connection;
  if (typeof connection === 'string') return connection;
  if (connection !== null && typeof connection === 'object' && !Array.isArray(connection)) {
    return connection as Record<string, unknown>;
  }
  return undefined; // a connection function: tenants use database.connection / database.defaults
}

const NOT_THENABLE = new Set<PropertyKey>(['then', 'catch', 'finally']);

/**
 * Database isolation mode: returns a Knex-shaped object that routes every
 * call to the pool of the current tenant's own database (its placement comes
 * from the tenant record's `isolation.database`, over defaults taken from
 * `base`'s connection). The tenant is captured when the builder is created,
 * so a builder keeps its tenant even if it runs later. With no tenant scope
 * it throws `TenantScopeError` before anything is sent (fail closed).
 * `withTenancy(knex, { mode: 'database' })` calls this. Shared tables live
 * in the central database: reach them with `db.unscoped({ reason })` (the
 * base Knex, audited) or the base Knex itself.
 *
 * @example
 * ```ts
 * const db = createDatabaseTenantKnex(centralKnex, { database: { connectionBudget: 50 } });
 * await runWithTenant(acmeRecord, () => db('documents').select('*'));
 * await db.destroy();
 * ```
 */
export function createDatabaseTenantKnex(
  base: Knex,
  options: DatabaseTenantKnexOptions = {},
): DatabaseTenantKnex {
  // Tenant Knexes are made by the same knex as the base one: its pool hooks must be there.
  checkKnexInternals(base);
  const dbOptions = options.database ?? {};
  const logger =
    dbOptions.logger ??
    (options.logger === undefined ? undefined : toTenancyLogger(options.logger));
  const connection = dbOptions.connection ?? baseConnectionOf(base);
  const telemetryOption = dbOptions.telemetry ?? options.telemetry;
  const telemetry = telemetryHooks(telemetryOption);
  const manager = new TenantPoolManager({
    ...dbOptions,
    ...(connection !== undefined ? { connection } : {}),
    ...(logger ? { logger } : {}),
    ...(telemetryOption !== undefined ? { telemetry: telemetryOption } : {}),
  });

  const tenantKnex = (): Knex => {
    const context = tryCurrentTenant();
    if (!context) {
      const system = currentSystemReason();
      telemetry?.statementRefused(
        system !== undefined ? { kind: 'system' } : { kind: 'none' },
        'database',
        'TENANT_SCOPE_REQUIRED',
      );
      throw new TenantScopeError(
        system !== undefined
          ? `Cannot pick a tenant database because this code runs in a system scope ("${system}"). Use runWithTenant() for per-tenant work.`
          : 'Cannot pick a tenant database because no tenant scope is active. Use resolveTenant() for requests or runWithTenant() for jobs.',
      );
    }
    return manager.knexFor(context.tenant);
  };

  const destroy = (): Promise<void> => manager.destroy();
  const sharedTables = (options.sharedTables ?? []).map((t) =>
    typeof t === 'string' ? t : t.schema ? `${t.schema}.${t.name}` : t.name,
  );
  const tenantTables = Array.isArray(options.tenantTables)
    ? [...(options.tenantTables as readonly string[])]
    : [...((options.tenantTables as { tables?: readonly string[] } | undefined)?.tables ?? [])];
  const tenancy: TenancyInfo = Object.freeze({
    mode: 'database',
    tenantColumn: options.tenantColumn ?? 'tenant_id',
    tenantTables: Object.freeze(tenantTables),
    sharedTables: Object.freeze(sharedTables),
    rls: false,
    ready: () => Promise.resolve(),
  });
  const unscoped = auditedUnscoped(base);
  // Knex events of every tenant's database (a tenant's Knex is picked per statement, so
  // db.on('query', ...) cannot go to one of them): registered with the pool manager.
  const events = {
    on: (event: string, listener: KnexEventListener): DatabaseTenantKnex => {
      manager.onKnexEvent(event, listener);
      return proxy;
    },
    off: (event: string, listener: KnexEventListener): DatabaseTenantKnex => {
      manager.offKnexEvent(event, listener);
      return proxy;
    },
  };
  const own: Record<string, unknown> = {
    destroy,
    tenantPools: manager,
    tenancy,
    unscoped,
    on: events.on,
    off: events.off,
    removeListener: events.off,
  };
  // The target is a function so the proxy is callable like knex('table').
  const target = function tenantKnexTarget() {} as unknown as Knex;
  const proxy: DatabaseTenantKnex = new Proxy(target, {
    apply(_target, _this, args: unknown[]) {
      return (tenantKnex() as unknown as (...a: unknown[]) => unknown)(...args);
    },
    get(_target, property) {
      if (typeof property === 'string' && Object.hasOwn(own, property)) return own[property];
      // Never thenable: `await db` or returning it from an async function must not query.
      if (NOT_THENABLE.has(property) || typeof property === 'symbol') return undefined;
      const knex = tenantKnex();
      const value: unknown = Reflect.get(knex, property, knex);
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(knex)
        : value;
    },
    has(_target, property) {
      return ['tenantPools', 'destroy', 'tenancy', 'unscoped'].includes(property as string);
    },
  }) as DatabaseTenantKnex;
  return proxy;
}
