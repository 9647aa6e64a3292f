import { currentTenant } from '../context/tenant-scope';
import { assertValidTenantId } from '../context/tenant-id';
import { TenantNotFoundError } from '../errors';
import type { TenantStore } from '../store/tenant-store';

/** Options of {@link TenantConfigService}. */
export interface TenantConfigServiceOptions<TConfig extends Record<string, unknown>> {
  /** Where tenant overrides come from (`tenant.config`). Required. */
  readonly store: TenantStore;
  /** The application defaults: every key a tenant may override. Required. */
  readonly defaults: TConfig;
  /** How long a tenant's overrides are cached. Default: `30000` ms. */
  readonly ttlMs?: number | undefined;
}

/**
 * Per-tenant configuration: `get(key)` answers the tenant's override, else
 * the application default. Overrides are cached per tenant (TTL) and
 * dropped by `invalidate(id)`: pass the service to `TenantManager`'s
 * `caches` and to `TenantChangeNotifier.listen()` so a change shows
 * everywhere at once.
 *
 * @example
 * ```ts
 * const tenantConfig = new TenantConfigService({ store, defaults: { theme: 'light', maxSeats: 10 } });
 * const seats = await runWithTenant('acme', () => tenantConfig.get('maxSeats'));
 * ```
 */
export class TenantConfigService<TConfig extends Record<string, unknown>> {
  readonly #store: TenantStore;
  readonly #defaults: Readonly<TConfig>;
  readonly #ttl: number;
  readonly #cache = new Map<
    string,
    { config: Readonly<Record<string, unknown>>; expires: number }
  >();
  #generation = 0;

  constructor(options: TenantConfigServiceOptions<TConfig>) {
    if (!options?.store || typeof options.defaults !== 'object' || options.defaults === null) {
      throw new TypeError(
        'Cannot create TenantConfigService because store and defaults are required.',
      );
    }
    this.#store = options.store;
    this.#defaults = Object.freeze({ ...options.defaults });
    this.#ttl = options.ttlMs ?? 30_000;
  }

  /** The value of `key` for the current tenant (or `tenantId`): override, else default. */
  async get<K extends keyof TConfig & string>(key: K, tenantId?: string): Promise<TConfig[K]> {
    const overrides = await this.#overrides(tenantId ?? currentTenant().id);
    return (Object.hasOwn(overrides, key) ? overrides[key] : this.#defaults[key]) as TConfig[K];
  }

  /** Every key, overrides applied, for the current tenant (or `tenantId`). */
  async all(tenantId?: string): Promise<TConfig> {
    const overrides = await this.#overrides(tenantId ?? currentTenant().id);
    const merged: Record<string, unknown> = { ...this.#defaults };
    for (const key of Object.keys(this.#defaults)) {
      if (Object.hasOwn(overrides, key)) merged[key] = overrides[key];
    }
    return merged as TConfig;
  }

  /** Forgets the cached overrides of one tenant. */
  invalidate(id: string): void {
    this.#cache.delete(id);
    this.#generation += 1;
  }

  /** Forgets every cached override. */
  invalidateAll(): void {
    this.#cache.clear();
    this.#generation += 1;
  }

  async #overrides(id: string): Promise<Readonly<Record<string, unknown>>> {
    assertValidTenantId(id, 'tenant config lookup');
    const hit = this.#cache.get(id);
    if (hit && hit.expires > Date.now()) return hit.config;
    const generation = this.#generation;
    const tenant = await this.#store.findById(id);
    if (!tenant)
      throw new TenantNotFoundError(
        `Cannot read the config of tenant "${id}" because it does not exist.`,
      );
    // An invalidation that ran during the lookup wins: do not cache a value it meant to drop.
    if (generation === this.#generation) {
      this.#cache.set(id, { config: tenant.config, expires: Date.now() + this.#ttl });
    }
    return tenant.config;
  }
}
