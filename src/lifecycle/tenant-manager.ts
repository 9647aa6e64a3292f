import { randomBytes } from 'node:crypto';
import { resolveTxt as dnsResolveTxt } from 'node:dns/promises';
import type { Knex } from 'knex';
import { inject, injectable } from 'tsyringe';
import { assertValidTenantId } from '../context/tenant-id';
import { normalizeHostname } from '../context/host-name';
import type { TenantDomain, TenantRecord, TenantStatus } from '../context/tenant-record';
import {
  DomainVerificationError,
  HostInvalidError,
  TenantNotFoundError,
  TenantProvisioningError,
  TenantStateError,
} from '../errors';
import { silentLogger, type TenancyLogger } from '../logger';
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

/** Something that caches tenants and can forget one (e.g. `CachedTenantStore`, `TenantConfigService`). */
export interface TenantCacheInvalidator {
  invalidate(id: string): void;
  invalidateAll?(): void;
  /** Forgets a custom domain (e.g. `CachedTenantStore.invalidateDomain`). */
  invalidateDomain?(domain: string): void;
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
  readonly migrations?: TenantMigrationsOption;
  /** Fills a newly provisioned tenant. Default: none. */
  readonly seed?: TenantSeed;
  /** Local caches to invalidate after each change. Default: none. */
  readonly caches?: readonly TenantCacheInvalidator[];
  /** Tells other processes about each change (LISTEN/NOTIFY). Default: none. */
  readonly notifier?: TenantChangeNotifier;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLogger;
  /** How `verifyDomain()` proves control of a custom domain. Default: {@link dnsTxtDomainVerifier}. */
  readonly verifyDomain?: DomainVerifier;
}

/** The DI token of {@link TenantManagerOptions}. */
export const TENANT_MANAGER_OPTIONS: unique symbol = Symbol.for('tenantry.TenantManagerOptions');

/** What {@link TenantManager.create} accepts. */
export interface CreateTenantInput extends Omit<NewTenant, 'status'> {
  /** Provision right away. Default: `true`. */
  readonly provision?: boolean;
}

// Allowed transitions. `deleted` is final: a deleted id is purged, never revived.
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

  constructor(@inject(TENANT_MANAGER_OPTIONS) options: TenantManagerOptions) {
    if (!options || typeof options.knex !== 'function' || !options.store) {
      throw new TypeError(
        'Cannot create TenantManager because options.knex and options.store are required.',
      );
    }
    this.#options = options;
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
    this.events = new TenantEvents(this.#logger);
    this.#placement = new TenantPlacement(options.knex, options);
    this.#fleet = options.migrations
      ? new FleetMigrator(options.knex, { ...options, migrations: options.migrations })
      : undefined;
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

  /** Creates a tenant (status `provisioning`) and, by default, provisions it. */
  async create(input: CreateTenantInput): Promise<TenantRecord> {
    const id = assertValidTenantId(input.id, 'new tenant');
    const created = await this.#store.create({
      id,
      name: input.name ?? id,
      status: 'provisioning',
      isolation: this.#placement.initialIsolation(id, input.isolation),
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
      if (this.#fleet && this.#placement.mode !== 'row') await this.#fleet.migrateTenant(tenant);
      if (this.#options.seed && fresh) {
        const seed = this.#options.seed;
        await this.#placement.withTenantStorage(tenant, this.#options.knex, (knex, _wrap, scope) =>
          knex.transaction(async (trx) => {
            if (scope.schema !== undefined)
              await trx.raw('set local search_path to ??', [scope.schema]);
            await seed(trx, tenant);
          }),
        );
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
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
   * Marks the tenant `deleted` (never served again). With `purge: true` its
   * schema/database, ledger entry and record are removed as well.
   */
  async delete(
    id: string,
    options: { readonly purge?: boolean; readonly reason?: string } = {},
  ): Promise<TenantRecord> {
    const before = await this.get(id);
    this.#assertFrom(before, 'delete');
    const deleted = await this.#transition(id, FROM.delete, 'deleted', options.reason ?? null);
    if (options.purge) {
      await this.#placement.dropStorage(deleted);
      await this.#fleet?.forget(id);
      await this.#store.remove(id);
      await this.#changed(deleted);
    }
    await this.events.emit('tenant.deleted', {
      tenant: deleted,
      previousStatus: before.status,
      purged: options.purge === true,
      at: new Date(),
    });
    return deleted;
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

  /** Migrates the fleet (see `FleetMigrator.migrateTenants`). */
  migrateTenants(options?: MigrateTenantsOptions): Promise<MigrateTenantsResult> {
    return this.#requireFleet().migrateTenants(options);
  }

  /** The drift report (see `FleetMigrator.status`). */
  migrationStatus(options?: { readonly tenant?: string }): Promise<TenantMigrationStatus> {
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
