import knexFactory, { type Knex } from 'knex';
import type { TenantRecord, TenantStatus } from '../context/tenant-record';
import { assertValidTenantId } from '../context/tenant-id';
import { TenantNotFoundError } from '../errors';
import { toTenancyLogger, type TenancyLogger, type TenancyLoggerInput } from '../logger';
import { DEFAULT_LEDGER_TABLE, assertTableName } from '../store/central-migrations';
import type { TenantStore } from '../store/tenant-store';
import { toMigrationSource, type TenantMigrationsOption } from './migration-sources';
import {
  TenantPlacement,
  TENANT_MIGRATIONS_TABLE,
  type TenantPlacementOptions,
} from './tenant-placement';

/** One step of a fleet migration, for progress displays. */
export interface TenantMigrationProgress {
  /** The tenant just handled. */
  readonly tenantId: string;
  /** `migrated` (something applied), `current` (nothing to do), `skipped` (ledger says current), `failed`. */
  readonly outcome: 'migrated' | 'current' | 'skipped' | 'failed';
  /** Migrations applied to this tenant in this run. */
  readonly applied: readonly string[];
  /** The error of a failed tenant. */
  readonly error?: string | undefined;
  /** Tenants handled so far. */
  readonly done: number;
  /** Tenants in this run. */
  readonly total: number;
}

/** Options of {@link FleetMigrator.migrateTenants}. */
export interface MigrateTenantsOptions {
  /** Tenants migrated at once. Default: `4`. */
  readonly concurrency?: number | undefined;
  /** Migrate only this tenant. Default: every tenant in `statuses`. */
  readonly tenant?: string | undefined;
  /** Which tenants to migrate. Default: `active`, `suspended`, `archived`. */
  readonly statuses?: readonly TenantStatus[] | undefined;
  /**
   * Re-check tenants whose ledger entry already says they are on the latest
   * version (slower). Default: `false` (resume skips them).
   */
  readonly verify?: boolean | undefined;
  /** Called after each tenant. Default: nothing. */
  readonly onProgress?: ((progress: TenantMigrationProgress) => void) | undefined;
}

/** What a fleet migration did. */
export interface MigrateTenantsResult {
  /** The latest migration name of the tenant migration source. */
  readonly latest: string | null;
  /** Tenants that applied at least one migration. */
  readonly migrated: readonly string[];
  /** Tenants already current (checked or skipped by the ledger). */
  readonly current: readonly string[];
  /** Tenants that failed, with their error; the others went on. */
  readonly failed: readonly { readonly tenantId: string; readonly error: string }[];
}

/** One row of the drift report. */
export interface TenantMigrationState {
  readonly tenantId: string;
  readonly tenantStatus: TenantStatus;
  /** Last applied migration recorded in the ledger, or `null` if never migrated. */
  readonly version: string | null;
  /** Number of applied migrations. */
  readonly applied: number;
  /** Migrations not yet applied. */
  readonly pending: number;
  /** `ok`, `failed` (last run failed) or `never`. */
  readonly status: 'ok' | 'failed' | 'never';
  /** The error of the last failed run. */
  readonly error: string | null;
  /** Whether the tenant is on the latest version. */
  readonly upToDate: boolean;
  /** The migrations a `migrateTenants()` run would apply to it, in order (from the ledger). */
  readonly pendingMigrations: readonly string[];
}

/** The drift report: which tenant is on which version. */
export interface TenantMigrationStatus {
  readonly latest: string | null;
  readonly total: number;
  readonly tenants: readonly TenantMigrationState[];
}

/** Options of {@link FleetMigrator}. */
export interface FleetMigratorOptions extends TenantPlacementOptions {
  /** The tenant migrations: a Knex migration source, a list, or `{ directory }`. Required. */
  readonly migrations: TenantMigrationsOption;
  /** The tenant store (lists the fleet). Required. */
  readonly store: TenantStore;
  /** The central per-tenant ledger table. Default: `tenantry_tenant_migrations`. */
  readonly ledgerTable?: string | undefined;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
}

interface LedgerRow {
  tenant_id: string;
  version: string | null;
  applied: number;
  status: 'ok' | 'failed';
  error: string | null;
}

const ROW_MODE_LEDGER_ID = '*';

/** The statuses `migrateTenants()` and `status()` cover by default: the same tenants in both. */
const MIGRATED_STATUSES: readonly TenantStatus[] = Object.freeze([
  'active',
  'suspended',
  'archived',
]);

/**
 * The one pseudo-tenant of row mode (and of the row tier of a mixed fleet),
 * whose tenant tables are shared: migrations run once, for all.
 */
const ROW_MODE_TENANT: TenantRecord = Object.freeze({
  id: ROW_MODE_LEDGER_ID,
  name: 'all tenants',
  status: 'active',
  isolation: Object.freeze({ tier: 'row' as const }),
  config: {},
});

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/**
 * Applies the tenant migrations across the fleet with Knex's migrator: in
 * every tenant schema (schema mode), every tenant database (database mode),
 * or once (row mode). Each tenant keeps Knex's own ledger
 * (`tenantry_migrations`) in its schema/database; a central ledger records
 * each tenant's version for resume and the drift report. A failing tenant is
 * reported and never blocks the others.
 *
 * @example
 * ```ts
 * const fleet = new FleetMigrator(knex, { mode: 'schema', store, migrations: { directory: 'migrations/tenant' } });
 * const result = await fleet.migrateTenants({ concurrency: 8, onProgress: (p) => console.log(p.tenantId) });
 * const drift = await fleet.status();
 * ```
 */
export class FleetMigrator {
  readonly #central: Knex;
  readonly #placement: TenantPlacement;
  readonly #source: Knex.MigrationSource<unknown>;
  readonly #store: TenantStore;
  readonly #ledger: string;
  readonly #logger: TenancyLogger;

  constructor(central: Knex, options: FleetMigratorOptions) {
    if (!options?.migrations) {
      throw new TypeError('Cannot create FleetMigrator because options.migrations is missing.');
    }
    this.#central = central;
    this.#placement = new TenantPlacement(central, options);
    this.#source = toMigrationSource(options.migrations);
    this.#store = options.store;
    this.#ledger = assertTableName(options.ledgerTable ?? DEFAULT_LEDGER_TABLE, 'ledgerTable');
    this.#logger = toTenancyLogger(options.logger);
  }

  /** Every migration name of the source, in order. */
  async migrationNames(): Promise<string[]> {
    const list = await this.#source.getMigrations([]);
    return list.map((m) => this.#source.getMigrationName(m));
  }

  /**
   * Migrates one tenant to the latest version; returns the names applied.
   * Records the outcome in the central ledger. Throws on failure.
   */
  async migrateTenant(
    tenant: TenantRecord,
    migrationKnex: Knex = this.#central,
  ): Promise<string[]> {
    try {
      const applied = await this.#placement.withTenantStorage(
        tenant,
        migrationKnex,
        async (knex, wrap, scope) => {
          const [, names] = (await knex.migrate.latest(wrap(this.#source))) as [number, string[]];
          const ledger =
            scope.schema !== undefined
              ? knex.withSchema(scope.schema).from(TENANT_MIGRATIONS_TABLE)
              : knex.from(TENANT_MIGRATIONS_TABLE);
          const rows = (await ledger.select('name').orderBy('id')) as { name: string }[];
          await this.#record(this.#ledgerId(tenant.id), {
            version: rows.at(-1)?.name ?? null,
            applied: rows.length,
            status: 'ok',
            error: null,
          });
          return names;
        },
      );
      return applied;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await this.#record(this.#ledgerId(tenant.id), {
        status: 'failed',
        error: message.slice(0, 2000),
      }).catch((e: unknown) => this.#logger.error('cannot record migration failure', { error: e }));
      throw error;
    }
  }

  /** Migrates the fleet. See {@link MigrateTenantsOptions}. */
  async migrateTenants(options: MigrateTenantsOptions = {}): Promise<MigrateTenantsResult> {
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(
        `Cannot migrate with concurrency ${String(concurrency)}: use an integer >= 1.`,
      );
    }
    const names = await this.migrationNames();
    const latest = names.at(-1) ?? null;
    const tenants = await this.#fleet(options, 'migrate');
    const ledger = await this.#ledgerRows();
    const migrated: string[] = [];
    const current: string[] = [];
    const failed: { tenantId: string; error: string }[] = [];
    let done = 0;
    // Schema mode shares one pool sized for the concurrency (Knex's migrator
    // holds a connection per tenant for the migration transaction).
    const migrationKnex =
      this.#placement.mode === 'schema' || this.#placement.tiers
        ? knexFactory({
            ...(this.#central.client as { config: Knex.Config }).config,
            pool: { min: 0, max: concurrency + 1 },
          })
        : this.#central;
    try {
      await pool(tenants, concurrency, async (tenant) => {
        const entry = ledger.get(this.#ledgerId(tenant.id));
        let progress: Omit<TenantMigrationProgress, 'done' | 'total'>;
        if (
          !options.verify &&
          latest !== null &&
          entry?.status === 'ok' &&
          entry.version === latest &&
          entry.applied === names.length
        ) {
          current.push(tenant.id);
          progress = { tenantId: tenant.id, outcome: 'skipped', applied: [] };
        } else {
          try {
            const applied = await this.migrateTenant(tenant, migrationKnex);
            (applied.length > 0 ? migrated : current).push(tenant.id);
            progress = {
              tenantId: tenant.id,
              outcome: applied.length > 0 ? 'migrated' : 'current',
              applied,
            };
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            failed.push({ tenantId: tenant.id, error: message });
            this.#logger.warn('tenant migration failed', { tenantId: tenant.id, error: message });
            progress = { tenantId: tenant.id, outcome: 'failed', applied: [], error: message };
          }
        }
        done += 1;
        options.onProgress?.({ ...progress, done, total: tenants.length });
      });
    } finally {
      if (migrationKnex !== this.#central) await migrationKnex.destroy();
    }
    return { latest, migrated: migrated.sort(), current: current.sort(), failed };
  }

  /**
   * The drift report: each tenant's recorded version against the latest, for
   * exactly the tenants `migrateTenants()` with the same options would
   * handle (`tenant`, else `statuses`: default `active`, `suspended`,
   * `archived`), so the two agree on which tenants are due. An unknown
   * `tenant` is 404 `TENANT_NOT_FOUND`, as in `migrateTenants()`.
   */
  async status(
    options: Pick<MigrateTenantsOptions, 'tenant' | 'statuses'> = {},
  ): Promise<TenantMigrationStatus> {
    const names = await this.migrationNames();
    const latest = names.at(-1) ?? null;
    const ledger = await this.#ledgerRows();
    const tenants = await this.#fleet(options, 'report on');
    const states = tenants.map((t): TenantMigrationState => {
      const row = ledger.get(this.#ledgerId(t.id));
      const applied = row?.applied ?? 0;
      return {
        tenantId: t.id,
        tenantStatus: t.status,
        version: row?.version ?? null,
        applied,
        pending: Math.max(0, names.length - applied),
        status: row ? row.status : 'never',
        error: row?.error ?? null,
        // As migrateTenants() decides: a tenant whose last run failed is due again.
        upToDate:
          (row?.version ?? null) === latest && applied === names.length && row?.status !== 'failed',
        pendingMigrations: names.slice(Math.min(applied, names.length)),
      };
    });
    return { latest, total: names.length, tenants: states };
  }

  /** Removes a tenant's ledger entry (after a purge). */
  async forget(tenantId: string): Promise<void> {
    await this.#central(this.#ledger).where({ tenant_id: tenantId }).delete();
  }

  /**
   * The storages a run covers: row mode, the shared tables once; a mixed
   * fleet, the shared tables once (the row tier) and each schema- and
   * database-tier tenant (a row-tier `tenant` means the shared tables);
   * otherwise each tenant.
   */
  async #fleet(
    options: Pick<MigrateTenantsOptions, 'tenant' | 'statuses'>,
    verb: string,
  ): Promise<TenantRecord[]> {
    // Row mode: the tenant tables are shared, so the migrations run once.
    if (this.#placement.mode === 'row' && !this.#placement.tiers) return [ROW_MODE_TENANT];
    if (options.tenant !== undefined) {
      const id = assertValidTenantId(options.tenant, '--tenant option');
      const one = await this.#store.findById(id);
      if (!one)
        throw new TenantNotFoundError(`Cannot ${verb} tenant "${id}" because it does not exist.`);
      return [this.#placement.tierOf(one) === 'row' ? ROW_MODE_TENANT : one];
    }
    const listed = await this.#store.list({ status: options.statuses ?? MIGRATED_STATUSES });
    if (!this.#placement.tiers) return listed;
    return [ROW_MODE_TENANT, ...listed.filter((t) => this.#placement.tierOf(t) !== 'row')];
  }

  #ledgerId(id: string): string {
    if (this.#placement.mode === 'row' && !this.#placement.tiers) return ROW_MODE_LEDGER_ID;
    return id;
  }

  async #ledgerRows(): Promise<Map<string, LedgerRow>> {
    const rows = (await this.#central(this.#ledger).select('*')) as LedgerRow[];
    return new Map(rows.map((r) => [r.tenant_id, r]));
  }

  async #record(
    tenantId: string,
    values: Partial<Omit<LedgerRow, 'tenant_id'>> & { status: 'ok' | 'failed' },
  ): Promise<void> {
    await this.#central(this.#ledger)
      .insert({ tenant_id: tenantId, applied: 0, ...values, updated_at: this.#central.fn.now() })
      .onConflict('tenant_id')
      .merge({ ...values, updated_at: this.#central.fn.now() });
  }
}
