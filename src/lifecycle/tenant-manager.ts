import { randomBytes } from 'node:crypto';
import { resolveTxt as dnsResolveTxt } from 'node:dns/promises';
import type { Knex } from 'knex';
import { inject, injectable } from 'tsyringe';
import { assertValidTenantId } from '../context/tenant-id';
import { normalizeHostname } from '../context/host-name';
import type {
  TenantDomain,
  TenantIsolationSettings,
  TenantRecord,
  TenantStatus,
  TenantTier,
} from '../context/tenant-record';
import { runWithTenant } from '../context/tenant-scope';
import {
  DomainVerificationError,
  HostInvalidError,
  TenantNotFoundError,
  TenantProvisioningError,
  TenantPurgeError,
  TenantStateError,
} from '../errors';
import type { TenantKnex } from '../isolation/tenant-knex';
import { toTenancyLogger, type TenancyLogger, type TenancyLoggerInput } from '../logger';
import { clause, quoteValue } from '../message-text';
import { DEFAULT_TENANTS_TABLE } from '../store/central-migrations';
import type { NewTenant, TenantPatch, TenantStore } from '../store/tenant-store';
import {
  FleetMigrator,
  type MigrateTenantsOptions,
  type MigrateTenantsResult,
  type TenantMigrationStatus,
} from './fleet-migrator';
import type { TenantMigrationsOption } from './migration-sources';
import type { TenantChangeNotifier } from './tenant-change-notifier';
import { TenantEvents } from './tenant-events';
import { TenantPlacement, type TenantPlacementOptions, type TenantSeed } from './tenant-placement';
import { assertRegionLabel } from './tenant-residency';
import { isTenantTier } from '../isolation/tiered/tenant-tier';
import { TenantRows, describeRowsLeft } from './tenant-rows';
import type { MoveTenantOptions, TenantMove } from './move/move-types';
import { TenantMover } from './move/tenant-mover';
import { DEFAULT_RLS_SETTING } from '../isolation/rls/row-level-security';

/** Something that caches tenants and can forget one (e.g. `CachedTenantStore`, `TenantConfigService`). */
export interface TenantCacheInvalidator {
  invalidate(id: string): void;
  invalidateAll?(): void | undefined;
  /** Forgets a custom domain (e.g. `CachedTenantStore.invalidateDomain`). */
  invalidateDomain?(domain: string): void | undefined;
}

/** What a custom-domain verification checks. */
export interface DomainChallenge {
  /** The tenant claiming the domain. */
  readonly tenantId: string;
  /** The domain (normalised host name). */
  readonly domain: string;
  /** The random token the tenant must publish. */
  readonly token: string;
  /** Where the default check looks for it: a DNS TXT record `_tenantry-challenge.<domain>`. */
  readonly recordName: string;
}

/**
 * Proves a tenant controls a domain: `true` when the challenge token is
 * published (a DNS TXT record, an HTTP well-known file, ...). Anything else,
 * or a throw, leaves the domain unverified.
 */
export type DomainVerifier = (challenge: DomainChallenge) => boolean | Promise<boolean>;

/**
 * The default {@link DomainVerifier}: the TXT records of
 * `_tenantry-challenge.<domain>` must contain the token.
 *
 * @example
 * ```ts
 * new TenantManager({ knex, store, mode: 'row', verifyDomain: dnsTxtDomainVerifier() });
 * ```
 */
export function dnsTxtDomainVerifier(
  resolveTxt: (name: string) => Promise<string[][]> = (name) => dnsResolveTxt(name),
): DomainVerifier {
  return async ({ recordName, token }) => {
    const records = await resolveTxt(recordName);
    return records.some((chunks) => chunks.join('') === token);
  };
}

/** Options of {@link TenantManager}. */
export interface TenantManagerOptions extends TenantPlacementOptions {
  /** The central Knex (where the `tenants` table and tenant schemas live). Required. */
  readonly knex: Knex;
  /** The tenant store to write through. Required. */
  readonly store: TenantStore;
  /** The tenant migrations. Default: none (provisioning only creates storage). */
  readonly migrations?: TenantMigrationsOption | undefined;
  /**
   * Fills a newly provisioned tenant, in one transaction. In row mode it runs
   * inside the tenant's scope and receives a transaction of {@link db} (so
   * inserts are stamped with the tenant), which is then required; in schema
   * mode it gets a transaction whose search_path is the tenant's schema; in
   * database mode one on the tenant's database. Default: none.
   */
  readonly seed?: TenantSeed | undefined;
  /**
   * The application's scoped Knex (`withTenancy()`), row mode. Its declared
   * tenant and shared tables tell purge where rows live (besides every table
   * on `knex`'s search path with the tenant column, and every table with a
   * foreign key to the tenants table), its tenant column is the one purged,
   * and row-mode seeds run with it. Default: none (the tenant column is
   * `tenant_id`; row-mode seeds are refused at construction).
   */
  readonly db?: TenantKnex | undefined;
  /**
   * The setting the RLS backstop's policies read: purge sets it to the
   * tenant for its own transaction, so FORCE'd row-level security does not
   * hide the rows it deletes and counts. Default: `app.tenant_id`.
   */
  readonly rlsSetting?: string | undefined;
  /** Local caches to invalidate after each change. Default: none. */
  readonly caches?: readonly TenantCacheInvalidator[] | undefined;
  /** Tells other processes about each change (LISTEN/NOTIFY). Default: none. */
  readonly notifier?: TenantChangeNotifier | undefined;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
  /** How `verifyDomain()` proves control of a custom domain. Default: {@link dnsTxtDomainVerifier}. */
  readonly verifyDomain?: DomainVerifier | undefined;
}

/** The DI token of {@link TenantManagerOptions}. */
export const TENANT_MANAGER_OPTIONS: unique symbol = Symbol.for('tenantry.TenantManagerOptions');

/** What {@link TenantManager.create} accepts. */
export interface CreateTenantInput extends Omit<NewTenant, 'status'> {
  /** Provision right away. Default: `true`. */
  readonly provision?: boolean | undefined;
  /**
   * The tier the tenant lives on (mixed fleets, `tiers: true`); stored as
   * `isolation.tier`. Default: `isolation.tier`, else the manager's `mode`.
   *
   * @example
   * ```ts
   * await tenants.create({ id: 'bigco', tier: 'database', server: 'eu-1', region: 'eu' });
   * ```
   */
  readonly tier?: TenantTier | undefined;
  /**
   * The server (a name of `servers`) of a database-tier tenant; stored as
   * `isolation.database.server`. Default: the central server.
   */
  readonly server?: string | undefined;
  /**
   * The region the tenant's data is pinned to (data residency); stored as
   * `isolation.region`. Provisioning refuses a server outside it with 409
   * `TENANT_REGION_MISMATCH`. Default: not pinned.
   */
  readonly region?: string | undefined;
}

/** The isolation a create input asks for: `isolation` with `tier` and `region` applied. */
function requestedIsolation(input: CreateTenantInput): TenantIsolationSettings | undefined {
  const { tier, server, region } = input;
  if (server !== undefined && (typeof server !== 'string' || server === '')) {
    throw new TypeError(`Cannot create tenant "${input.id}" with an empty server name.`);
  }
  if (tier === undefined && region === undefined) return input.isolation;
  if (tier !== undefined && !isTenantTier(tier)) {
    throw new TypeError(
      `Cannot create tenant "${input.id}" on tier ${quoteValue(tier)} because it is unknown. Use "row", "schema" or "database".`,
    );
  }
  if (region !== undefined) assertRegionLabel(region, 'region');
  return {
    ...input.isolation,
    ...(tier !== undefined ? { tier } : {}),
    ...(region !== undefined ? { region } : {}),
  };
}

// Allowed transitions. `deleted` is final: a deleted id is purged, never revived;
// its record stays (the tombstone: never served, the id not reusable) until a
// purge has verified that nothing of it is left.
const FROM: Readonly<
  Record<'activate' | 'suspend' | 'archive' | 'delete' | 'provision', readonly TenantStatus[]>
> = {
  provision: ['provisioning', 'provisioning_failed', 'active', 'suspended'],
  activate: ['suspended', 'archived'],
  suspend: ['active'],
  archive: ['active', 'suspended'],
  delete: ['active', 'suspended', 'archived', 'provisioning', 'provisioning_failed'],
};

type CasStore = TenantStore & {
  updateIfStatus?(
    id: string,
    from: readonly TenantStatus[],
    patch: TenantPatch,
  ): Promise<TenantRecord | undefined>;
};

/**
 * Creates, provisions and moves tenants through their lifecycle:
 * `provisioning → active ⇄ suspended → archived → deleted` (plus
 * `provisioning_failed`, retryable). A transition that is not allowed
 * throws 409 `TENANT_STATE_INVALID`. Each change invalidates local caches,
 * notifies other processes, and emits a typed event.
 *
 * Injectable: register {@link TENANT_MANAGER_OPTIONS} and resolve it. It
 * holds no tenant, so it is safe as a singleton.
 *
 * @example
 * ```ts
 * container.register(TENANT_MANAGER_OPTIONS, { useValue: { knex, store, mode: 'schema', migrations } });
 * const tenants = container.resolve(TenantManager);
 * tenants.events.subscribe('tenant.suspended', ({ tenant }) => log(tenant.id));
 * await tenants.create({ id: 'acme', name: 'Acme' });
 * await tenants.suspend('acme', 'unpaid invoice');
 * ```
 */
@injectable()
export class TenantManager {
  /** The lifecycle events. */
  readonly events: TenantEvents;
  readonly #options: TenantManagerOptions;
  readonly #store: CasStore;
  readonly #placement: TenantPlacement;
  readonly #fleet: FleetMigrator | undefined;
  readonly #logger: TenancyLogger;
  readonly #rows: TenantRows;
  readonly #mover: TenantMover;

  constructor(@inject(TENANT_MANAGER_OPTIONS) options: TenantManagerOptions) {
    if (!options || typeof options.knex !== 'function' || !options.store) {
      throw new TypeError(
        'Cannot create TenantManager because options.knex and options.store are required.',
      );
    }
    this.#options = options;
    this.#store = options.store;
    this.#logger = toTenancyLogger(options.logger);
    this.events = new TenantEvents(this.#logger);
    this.#placement = new TenantPlacement(options.knex, options);
    if ((this.#placement.mode === 'row' || this.#placement.tiers) && options.seed && !options.db) {
      throw new TypeError(
        'Cannot seed row-mode tenants without options.db, because the seed must run with the scoped Knex to stamp the tenant column. Pass db (the withTenancy() instance).',
      );
    }
    const db = options.db;
    // KnexTenantStore names its table; other stores (or wrappers) use the default.
    const storeTable = (options.store as { tableName?: unknown }).tableName;
    this.#rows = new TenantRows(options.knex, {
      tenantColumn: db?.tenancy.tenantColumn ?? 'tenant_id',
      declaredTables: () =>
        db && (db.tenancy.mode === 'row' || db.tenancy.tiers !== undefined)
          ? db.tenancy.tenantTables
          : [],
      sharedTables: () => db?.tenancy.sharedTables ?? [],
      tenantsTable: typeof storeTable === 'string' ? storeTable : DEFAULT_TENANTS_TABLE,
      ...(options.rlsSetting !== undefined ? { rlsSetting: options.rlsSetting } : {}),
    });
    this.#fleet = options.migrations
      ? new FleetMigrator(options.knex, { ...options, migrations: options.migrations })
      : undefined;
    const tenantColumn = db?.tenancy.tenantColumn ?? 'tenant_id';
    this.#mover = new TenantMover({
      knex: options.knex,
      store: options.store,
      placement: options,
      migrations: options.migrations,
      defaultTier: this.#placement.mode,
      // tenantry's own central tables (the migration ledger, the moves) hold no tenant data.
      rowTables: async () =>
        (await this.#rows.tables())
          .filter((t) => !t.name.startsWith('tenantry_'))
          .map((t) => ({
            schema: t.schema,
            name: t.name,
            column: t.columns.includes(tenantColumn) ? tenantColumn : (t.columns[0] as string),
          })),
      rlsSetting: options.rlsSetting ?? DEFAULT_RLS_SETTING,
      events: this.events,
      logger: this.#logger,
      changed: (tenant) => this.#changed(tenant),
    });
  }

  /** The isolation mode. */
  get mode(): TenantPlacement['mode'] {
    return this.#placement.mode;
  }

  /** The tenant, or 404 `TENANT_NOT_FOUND`. */
  async get(id: string): Promise<TenantRecord> {
    const tenant = await this.#store.findById(assertValidTenantId(id, 'tenant id'));
    if (!tenant) throw new TenantNotFoundError(`Cannot find tenant "${id}". Check the tenant id.`);
    return tenant;
  }

  /** Every tenant (optionally by status). */
  list(status?: readonly TenantStatus[]): Promise<TenantRecord[]> {
    return this.#store.list(status ? { status } : {});
  }

  /**
   * Creates a tenant (status `provisioning`) and, by default, provisions it.
   * Refused with 409 `TENANT_STATE_INVALID` while the id is taken, including
   * by a deleted tenant that is not purged yet, and while anything of an
   * earlier tenant with this id is left (rows, schema, database): a new
   * tenant never starts on another tenant's data.
   */
  async create(input: CreateTenantInput): Promise<TenantRecord> {
    const id = assertValidTenantId(input.id, 'new tenant');
    const requested = requestedIsolation(input);
    const existing = await this.#store.findById(id);
    if (existing?.status === 'deleted') {
      throw new TenantStateError(
        `Cannot create tenant "${id}" because a deleted tenant with this id is not purged yet. Purge it first: delete("${id}", { purge: true }).`,
      );
    }
    if (existing === undefined) {
      const left = await this.#leftovers(this.#placeholder(id, requested, input.server));
      if (left) {
        throw new TenantStateError(
          `Cannot create tenant "${id}" because data of an earlier tenant with this id is left (${left}). Purge it first: purge("${id}").`,
        );
      }
    }
    const isolation = this.#placement.initialIsolation(id, requested, input.server);
    // Data residency before anything is stored: a pinned tenant is never created outside its region.
    this.#placement.assertResidency({ id, isolation });
    const created = await this.#store.create({
      id,
      name: input.name ?? id,
      status: 'provisioning',
      isolation,
      config: input.config ?? {},
    });
    await this.#changed(created);
    await this.events.emit('tenant.created', { tenant: created, at: new Date() });
    if (input.provision === false) return created;
    return this.provision(id);
  }

  /**
   * Creates the tenant's schema (schema mode) or database (database mode),
   * runs the tenant migrations and the seed, then marks it `active`.
   * Idempotent: running it again only applies pending migrations. On failure
   * the storage created by this attempt is dropped, the tenant is marked
   * `provisioning_failed` with the reason, and 500 `TENANT_PROVISIONING_FAILED`
   * is thrown; calling `provision()` again retries.
   */
  async provision(id: string): Promise<TenantRecord> {
    const tenant = await this.get(id);
    this.#assertFrom(tenant, 'provision');
    const fresh = tenant.status === 'provisioning' || tenant.status === 'provisioning_failed';
    let created = false;
    try {
      created = await this.#placement.ensureStorage(tenant);
      const tier = this.#placement.tierOf(tenant);
      if (this.#fleet && tier !== 'row') await this.#fleet.migrateTenant(tenant);
      if (this.#options.seed && fresh && tier === 'row') {
        const seed = this.#options.seed;
        const db = this.#options.db as TenantKnex;
        await runWithTenant(tenant, () => db.transaction((trx) => seed(trx, tenant)));
      } else if (this.#options.seed && fresh) {
        // In the tenant's scope as well, so services the seed calls see their tenant.
        const seed = this.#options.seed;
        await this.#placement.withTenantStorage(tenant, this.#options.knex, (knex, _wrap, scope) =>
          runWithTenant(tenant, () =>
            knex.transaction(async (trx) => {
              if (scope.schema !== undefined)
                await trx.raw('set local search_path to ??', [scope.schema]);
              await seed(trx, tenant);
            }),
          ),
        );
      }
    } catch (error) {
      const reason = clause(error instanceof Error ? error.message : String(error));
      if (created) {
        await this.#placement
          .dropStorage(tenant)
          .catch((e: unknown) =>
            this.#logger.error('cannot roll back tenant storage', { tenantId: id, error: e }),
          );
      }
      if (fresh) {
        const failed = await this.#store.update(id, {
          status: 'provisioning_failed',
          statusReason: reason.slice(0, 1000),
        });
        await this.#changed(failed);
      }
      throw new TenantProvisioningError(
        `Cannot provision tenant "${id}" because ${reason}. Fix the cause and call provision("${id}") again.`,
        { cause: error },
      );
    }
    if (!fresh) return this.get(id);
    const active = await this.#transition(
      id,
      ['provisioning', 'provisioning_failed'],
      'active',
      null,
    );
    await this.events.emit('tenant.provisioned', {
      tenant: active,
      previousStatus: tenant.status,
      at: new Date(),
    });
    await this.events.emit('tenant.activated', {
      tenant: active,
      previousStatus: tenant.status,
      at: new Date(),
    });
    return active;
  }

  /** `active → suspended`: the tenant is refused (403 TENANT_SUSPENDED) everywhere. */
  async suspend(id: string, reason?: string): Promise<TenantRecord> {
    return this.#move(id, 'suspend', 'suspended', reason ?? null, 'tenant.suspended');
  }

  /** `suspended | archived → active`. */
  async activate(id: string): Promise<TenantRecord> {
    return this.#move(id, 'activate', 'active', null, 'tenant.activated');
  }

  /** `active | suspended → archived`: kept, not served. */
  async archive(id: string, reason?: string): Promise<TenantRecord> {
    return this.#move(id, 'archive', 'archived', reason ?? null, 'tenant.archived');
  }

  /**
   * Marks the tenant `deleted` (never served again; the record stays as a
   * tombstone, so the id cannot be created anew). With `purge: true` its
   * data is removed as well (see {@link purge}); a purge that failed is
   * retried by calling `delete(id, { purge: true })` again on the deleted
   * tenant.
   *
   * @example
   * ```ts
   * await tenants.delete('acme', { purge: true, reason: 'contract ended' });
   * ```
   */
  async delete(
    id: string,
    options: { readonly purge?: boolean | undefined; readonly reason?: string } = {},
  ): Promise<TenantRecord> {
    const before = await this.get(id);
    if (before.status === 'deleted' && options.purge) {
      await this.#purge(id, before);
      await this.events.emit('tenant.deleted', {
        tenant: before,
        previousStatus: 'deleted',
        purged: true,
        at: new Date(),
      });
      return before;
    }
    this.#assertFrom(before, 'delete');
    const deleted = await this.#transition(id, FROM.delete, 'deleted', options.reason ?? null);
    if (options.purge) await this.#purge(id, deleted);
    await this.events.emit('tenant.deleted', {
      tenant: deleted,
      previousStatus: before.status,
      purged: options.purge === true,
      at: new Date(),
    });
    return deleted;
  }

  /**
   * Removes everything of a deleted (or record-less) tenant id, then its
   * record: in row mode its rows in every table that holds tenants' rows
   * (declared, found by the tenant column, or by a foreign key to the
   * tenants table), children before parents in one transaction that counts
   * them again before it commits; in schema and database mode its schema or
   * database (checked gone afterwards) and its rows in central tables; and
   * its migration ledger entry. The record goes last, only once all that is
   * verified: until then the id stays a tombstone. A failure throws 500
   * `TENANT_PURGE_FAILED`, notes the reason on the record, and can be
   * retried. An active, suspended or archived tenant is refused (409): call
   * `delete()` first.
   *
   * @example
   * ```ts
   * await tenants.delete('acme');
   * await tenants.purge('acme');
   * ```
   */
  async purge(id: string): Promise<void> {
    const valid = assertValidTenantId(id, 'tenant id');
    const tenant = await this.#store.findById(valid);
    if (tenant && tenant.status !== 'deleted') {
      throw new TenantStateError(
        `Cannot purge tenant "${valid}" because it is ${tenant.status}. Delete it first.`,
      );
    }
    if (!tenant && !(await this.#leftovers(this.#placeholder(valid, undefined)))) {
      throw new TenantNotFoundError(
        `Cannot purge tenant "${valid}" because there is neither a tenant nor data with this id. Check the tenant id.`,
      );
    }
    await this.#purge(valid, tenant);
  }

  async #purge(id: string, tenant: TenantRecord | undefined): Promise<void> {
    const target = tenant ?? this.#placeholder(id, undefined);
    try {
      await this.#placement.dropStorage(target);
      await this.#rows.purge(id);
      await this.#fleet?.forget(id);
      const left = await this.#leftovers(target);
      if (left) throw new Error(`${left} is still there after the purge`);
      // Last, and inside the try: with a foreign key to tenants, a row written
      // meanwhile (a stale cache elsewhere) makes this fail, and the tombstone stays.
      if (tenant) await this.#store.remove(id);
    } catch (error) {
      const reason = clause(error instanceof Error ? error.message : String(error));
      if (tenant) {
        await this.#store
          .update(id, { statusReason: `purge failed: ${reason}`.slice(0, 1000) })
          .catch((e: unknown) =>
            this.#logger.error('cannot note a failed purge', { tenantId: id, error: e }),
          );
      }
      throw new TenantPurgeError(
        `Cannot purge tenant "${id}" because ${reason}. The tenant stays deleted; fix the cause and purge again.`,
        { cause: error },
      );
    }
    if (tenant) await this.#changed(tenant);
    this.#logger.info('tenant purged', { tenantId: id, mode: this.mode });
  }

  // What is left of a tenant id: its schema/database, or its rows. Undefined: nothing.
  async #leftovers(tenant: TenantRecord): Promise<string | undefined> {
    // A record the placement policy refuses reaches no storage: provisioning then fails on it.
    if (!this.#placement.reachable(tenant)) return undefined;
    if (await this.#placement.storageExists(tenant)) return this.#placement.storageName(tenant);
    const rows = await this.#rows.remaining(tenant.id);
    return rows.length > 0 ? describeRowsLeft(rows) : undefined;
  }

  #placeholder(
    id: string,
    isolation: CreateTenantInput['isolation'],
    server?: string | undefined,
  ): TenantRecord {
    return {
      id,
      name: id,
      status: 'deleted',
      isolation: this.#placement.initialIsolation(id, isolation, server),
      config: {},
    };
  }

  /**
   * Sets per-tenant configuration overrides: `null` removes a key (the
   * application default applies again). Emits `tenant.config_changed`.
   */
  async setConfig(id: string, changes: Readonly<Record<string, unknown>>): Promise<TenantRecord> {
    const tenant = await this.get(id);
    const config: Record<string, unknown> = { ...tenant.config };
    const keys: string[] = [];
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === undefined) {
        if (key in config) keys.push(key);
        delete config[key];
      } else if (JSON.stringify(config[key]) !== JSON.stringify(value)) {
        config[key] = value;
        keys.push(key);
      }
    }
    if (keys.length === 0) return tenant;
    const updated = await this.#store.update(id, { config });
    await this.#changed(updated);
    await this.events.emit('tenant.config_changed', { tenant: updated, keys, at: new Date() });
    return updated;
  }

  /**
   * Adds a custom domain to a tenant, unverified, with a fresh challenge
   * token. It resolves only after {@link verifyDomain}. The host is
   * normalised (case, trailing dot, punycode); a domain another tenant
   * already holds verified is 409 `TENANT_STATE_INVALID`.
   *
   * @example
   * ```ts
   * const { challenge } = await tenants.addDomain('acme', 'App.Acme-Corp.com');
   * // publish TXT _tenantry-challenge.app.acme-corp.com = challenge.token, then:
   * await tenants.verifyDomain('acme', 'app.acme-corp.com');
   * ```
   */
  async addDomain(
    id: string,
    domain: string,
  ): Promise<{ tenant: TenantRecord; challenge: DomainChallenge }> {
    const host = this.#host(domain);
    const tenant = await this.get(id);
    await this.#assertFree(host, tenant.id);
    const existing = (tenant.domains ?? []).find((d) => d.domain === host);
    const token = existing?.token ?? `tenantry-verify=${randomBytes(24).toString('base64url')}`;
    if (existing?.verified === true) return { tenant, challenge: this.#challenge(id, host, token) };
    const domains: TenantDomain[] = [
      ...(tenant.domains ?? []).filter((d) => d.domain !== host),
      { domain: host, verified: false, token },
    ];
    const updated = await this.#saveDomains(tenant.id, domains, host);
    return { tenant: updated, challenge: this.#challenge(id, host, token) };
  }

  /**
   * Runs the verification function for a domain added with {@link addDomain}
   * and marks it verified, so it resolves from now on. A failed check throws
   * 409 `DOMAIN_VERIFICATION_FAILED` and leaves it unverified.
   */
  async verifyDomain(id: string, domain: string): Promise<TenantRecord> {
    const host = this.#host(domain);
    const tenant = await this.get(id);
    const entry = (tenant.domains ?? []).find((d) => d.domain === host);
    if (entry === undefined) {
      throw new TenantNotFoundError(
        `Cannot verify domain ${host} because tenant "${tenant.id}" has not added it. Call addDomain() first.`,
      );
    }
    if (entry.verified) return tenant;
    await this.#assertFree(host, tenant.id);
    const verify = this.#options.verifyDomain ?? dnsTxtDomainVerifier();
    let ok: unknown;
    try {
      ok = await verify(this.#challenge(tenant.id, host, entry.token ?? ''));
    } catch (cause) {
      throw new DomainVerificationError(
        `Cannot verify domain ${host} because the check failed. Publish the challenge and retry.`,
        { cause },
      );
    }
    if (ok !== true || entry.token === undefined) {
      throw new DomainVerificationError(
        `Cannot verify domain ${host} because the challenge token is not published at _tenantry-challenge.${host}. Publish it and retry.`,
      );
    }
    const domains = (tenant.domains ?? []).map((d) =>
      d.domain === host
        ? { domain: host, verified: true, verifiedAt: new Date().toISOString() }
        : d,
    );
    return this.#saveDomains(tenant.id, domains, host);
  }

  /** Removes a custom domain from a tenant (verified or not); it stops resolving at once in this process. */
  async removeDomain(id: string, domain: string): Promise<TenantRecord> {
    const host = this.#host(domain);
    const tenant = await this.get(id);
    if (!(tenant.domains ?? []).some((d) => d.domain === host)) return tenant;
    return this.#saveDomains(
      tenant.id,
      (tenant.domains ?? []).filter((d) => d.domain !== host),
      host,
    );
  }

  #host(domain: string): string {
    const host = normalizeHostname(domain);
    if (host === undefined || !host.includes('.')) {
      throw new HostInvalidError(
        `Cannot use "${String(domain).slice(0, 100)}" as a custom domain because it is not a DNS name. Pass a host such as app.acme-corp.com.`,
      );
    }
    return host;
  }

  #challenge(tenantId: string, domain: string, token: string): DomainChallenge {
    return Object.freeze({ tenantId, domain, token, recordName: `_tenantry-challenge.${domain}` });
  }

  async #assertFree(host: string, id: string): Promise<void> {
    // Ask the store itself, not a cached answer: a stale "unknown" could let two tenants verify one domain.
    (this.#store as { invalidateDomain?: (d: string) => void }).invalidateDomain?.(host);
    const holder = await this.#store.findByDomain?.(host);
    if (holder !== undefined && holder.id !== id) {
      throw new TenantStateError(
        `Cannot give domain ${host} to tenant "${id}" because another tenant holds it verified. Remove it there first.`,
      );
    }
  }

  async #saveDomains(id: string, domains: TenantDomain[], host: string): Promise<TenantRecord> {
    const updated = await this.#store.update(id, { domains });
    for (const cache of this.#options.caches ?? []) cache.invalidateDomain?.(host);
    await this.#changed(updated);
    return updated;
  }

  /**
   * Moves an active tenant online to another tier (`row`, `schema`,
   * `database`) or database server: creates the target (tenant migrations
   * applied), installs change capture on the source, copies its tables with
   * `COPY` (foreign-key order), freezes its writes (status `moving`: reads
   * served, writes 503 `TENANT_UNAVAILABLE` with `Retry-After`, refused by the
   * database too), applies the changes captured meanwhile, verifies row
   * counts and checksums per table, switches the record (caches invalidated
   * on every instance) and removes the source (unless `keepSource`). Every
   * step is recorded (`tenantry_tenant_moves`); a failure before the switch
   * rolls back to the source and throws 500 `TENANT_MOVE_FAILED`; a move whose
   * process died is finished by {@link resumeMove} or undone by
   * {@link rollbackMove}. Emits `tenant.move_started|checkpoint|succeeded|failed`.
   *
   * @example
   * ```ts
   * const move = await tenants.move('acme', { tier: 'database', server: 'eu-1' });
   * console.log(move.status, move.checkpoint.freezeMs);
   * ```
   */
  async move(id: string, options: MoveTenantOptions): Promise<TenantMove> {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(
        'Cannot move a tenant without options. Pass { tier: "row" | "schema" | "database" }.',
      );
    }
    const tenant = await this.get(id);
    return this.#mover.move(tenant, options);
  }

  /**
   * Finishes a tenant's open move from its last recorded step (after its
   * process died, or a failure after the switch).
   *
   * @example
   * ```ts
   * await tenants.resumeMove('acme');
   * ```
   */
  async resumeMove(id: string): Promise<TenantMove> {
    return this.#mover.resume(assertValidTenantId(id, 'tenant id'));
  }

  /**
   * Undoes a tenant's open move that is not switched yet: writes allowed on
   * the source again, its change capture removed, the target dropped.
   *
   * @example
   * ```ts
   * await tenants.rollbackMove('acme');
   * ```
   */
  async rollbackMove(id: string): Promise<TenantMove> {
    return this.#mover.rollback(assertValidTenantId(id, 'tenant id'));
  }

  /**
   * Removes the source a move kept (`keepSource: true`) and finishes it.
   *
   * @example
   * ```ts
   * await tenants.cleanupMove('acme');
   * ```
   */
  async cleanupMove(id: string): Promise<TenantMove> {
    return this.#mover.cleanup(assertValidTenantId(id, 'tenant id'));
  }

  /**
   * The moves of a tenant, newest first (status, last step, checkpoint data).
   *
   * @example
   * ```ts
   * const [last] = await tenants.moves('acme');
   * ```
   */
  async moves(id: string): Promise<TenantMove[]> {
    return this.#mover.history(assertValidTenantId(id, 'tenant id'));
  }

  /** Migrates the fleet (see `FleetMigrator.migrateTenants`). */
  migrateTenants(options?: MigrateTenantsOptions): Promise<MigrateTenantsResult> {
    return this.#requireFleet().migrateTenants(options);
  }

  /** The drift report (see `FleetMigrator.status`). */
  migrationStatus(
    options?: Pick<MigrateTenantsOptions, 'tenant' | 'statuses'>,
  ): Promise<TenantMigrationStatus> {
    return this.#requireFleet().status(options);
  }

  #requireFleet(): FleetMigrator {
    if (!this.#fleet) {
      throw new TypeError(
        'Cannot migrate tenants because TenantManager has no migrations option. Pass migrations.',
      );
    }
    return this.#fleet;
  }

  async #move(
    id: string,
    action: 'suspend' | 'activate' | 'archive',
    to: TenantStatus,
    reason: string | null,
    event: 'tenant.suspended' | 'tenant.activated' | 'tenant.archived',
  ): Promise<TenantRecord> {
    const before = await this.get(id);
    this.#assertFrom(before, action);
    const after = await this.#transition(id, FROM[action], to, reason);
    await this.events.emit(event, { tenant: after, previousStatus: before.status, at: new Date() });
    return after;
  }

  #assertFrom(tenant: TenantRecord, action: keyof typeof FROM): void {
    if (!FROM[action].includes(tenant.status)) {
      throw new TenantStateError(
        `Cannot ${action} tenant "${tenant.id}" because it is ${tenant.status}. ` +
          `Allowed from: ${FROM[action].join(', ')}.`,
      );
    }
  }

  // Compare-and-set where the store supports it, so two racing processes
  // cannot both apply a transition from a status one of them already left.
  async #transition(
    id: string,
    from: readonly TenantStatus[],
    to: TenantStatus,
    reason: string | null,
  ): Promise<TenantRecord> {
    let after: TenantRecord | undefined;
    if (this.#store.updateIfStatus) {
      after = await this.#store.updateIfStatus(id, from, { status: to, statusReason: reason });
    } else {
      const now = await this.get(id);
      if (from.includes(now.status))
        after = await this.#store.update(id, { status: to, statusReason: reason });
    }
    if (!after) {
      const now = await this.get(id);
      throw new TenantStateError(
        `Cannot move tenant "${id}" to ${to} because it is ${now.status} now. Reload and retry.`,
      );
    }
    await this.#changed(after);
    return after;
  }

  async #changed(tenant: TenantRecord): Promise<void> {
    for (const cache of this.#options.caches ?? []) cache.invalidate(tenant.id);
    if (this.#options.notifier) {
      await this.#options.notifier.publish(tenant.id).catch((error: unknown) =>
        this.#logger.error('cannot notify other processes of a tenant change', {
          tenantId: tenant.id,
          error,
        }),
      );
    }
  }
}
