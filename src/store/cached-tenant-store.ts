import { copyTenantRecord, type TenantRecord } from '../context/tenant-record';
import type { NewTenant, TenantListOptions, TenantPatch, TenantStore } from './tenant-store';

/** Options of {@link CachedTenantStore}. */
export interface CachedTenantStoreOptions {
  /** How long a found tenant is served from the cache, in ms. `0` disables caching. Default: `30000`. */
  readonly ttlMs?: number | undefined;
  /** Most entries kept (found and unknown ids); the least recently used is evicted. Default: `1000`. */
  readonly maxEntries?: number | undefined;
  /**
   * How long an unknown id is remembered as unknown, in ms, so a flood of
   * requests for a missing tenant does not reach the store. Default: `min(5000, ttlMs)`.
   */
  readonly negativeTtlMs?: number | undefined;
  /** Clock in ms, for tests. Default: `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** Counters of a {@link CachedTenantStore}, for tests and metrics. */
export interface CachedTenantStoreStats {
  /** `findById` calls answered from the cache (found or known-unknown). */
  readonly hits: number;
  /** `findById` calls that were not in the cache (or had expired). */
  readonly misses: number;
  /** `findById` calls that joined an already running store call for the same id. */
  readonly coalesced: number;
  /** Calls made to the wrapped store's `findById`. */
  readonly storeCalls: number;
  /** Entries dropped because the cache was full. */
  readonly evictions: number;
  /** Entries currently cached. */
  readonly size: number;
}

interface Entry {
  readonly record: TenantRecord | undefined;
  readonly expiresAt: number;
  /** Read since it was (re)inserted: a full cache gives it a second chance before evicting it. */
  used: boolean;
}

function checkedMs(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new TypeError(
      `Cannot use CachedTenantStore option ${name}=${String(value)} because it is not an integer >= ${min}.`,
    );
  }
  return value;
}

function freezeRecord(record: TenantRecord): TenantRecord {
  // One cached object is shared by concurrent requests, so nobody may change it.
  const copy = copyTenantRecord(record);
  copy.isolation = Object.freeze({ ...record.isolation });
  copy.config = Object.freeze({ ...record.config });
  if (record.domains !== undefined) {
    copy.domains = Object.freeze(record.domains.map((d) => Object.freeze({ ...d })));
  }
  return Object.freeze(copy);
}

/**
 * Wraps any {@link TenantStore} with a bounded TTL + LRU (second-chance) cache of
 * `findById`: a cache hit costs zero store round trips; concurrent misses for
 * one id share one store call; unknown ids are remembered briefly; writes
 * through the wrapper invalidate the id. Call {@link invalidate} when a tenant
 * changes elsewhere (another process, a NOTIFY listener).
 *
 * @example
 * ```ts
 * const store = new CachedTenantStore(new KnexTenantStore(knex), { ttlMs: 30_000, maxEntries: 10_000 });
 * app.use(resolveTenant({ store, strategies: ['header'] }));
 * await store.update('acme', { status: 'suspended' }); // also invalidates 'acme'
 * ```
 */
export class CachedTenantStore implements TenantStore {
  readonly #inner: TenantStore;
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<TenantRecord | undefined>>();
  // Custom domains, cached like ids (negative answers too), in their own map.
  readonly #domains = new Map<string, Entry>();
  readonly #domainInflight = new Map<string, Promise<TenantRecord | undefined>>();
  #hits = 0;
  #misses = 0;
  #coalesced = 0;
  #storeCalls = 0;
  #evictions = 0;

  constructor(inner: TenantStore, options: CachedTenantStoreOptions = {}) {
    if (typeof inner?.findById !== 'function') {
      throw new TypeError(
        'Cannot build a CachedTenantStore because the wrapped store has no findById(). Pass a TenantStore.',
      );
    }
    this.#inner = inner;
    this.#ttlMs = checkedMs('ttlMs', options.ttlMs, 30_000, 0);
    this.#negativeTtlMs = checkedMs(
      'negativeTtlMs',
      options.negativeTtlMs,
      Math.min(5000, this.#ttlMs),
      0,
    );
    this.#maxEntries = checkedMs('maxEntries', options.maxEntries, 1000, 1);
    this.#now = options.now ?? Date.now;
  }

  /** The counters since construction (or the last {@link resetStats}). */
  get stats(): CachedTenantStoreStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      coalesced: this.#coalesced,
      storeCalls: this.#storeCalls,
      evictions: this.#evictions,
      size: this.#entries.size,
    };
  }

  /**
   * Sets every counter back to zero (the cache itself is kept).
   *
   * @example
   * ```ts
   * store.resetStats();
   * ```
   */
  resetStats(): void {
    this.#hits = this.#misses = this.#coalesced = this.#storeCalls = this.#evictions = 0;
  }

  /**
   * The cached answer for `id` without waiting: the record, `null` when the
   * id is cached as unknown, or `undefined` when it is not cached (or
   * expired). A hit counts in `stats.hits`. `resolveTenant()` uses it to
   * serve a warm request without a single promise.
   *
   * @example
   * ```ts
   * const cached = store.peek('acme'); // TenantRecord | null | undefined
   * ```
   */
  peek(id: string): TenantRecord | null | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    // Second-chance LRU: a hit only marks the entry (a Map delete and re-insert
    // per hit would churn the Map's table on every request); eviction moves
    // marked entries to the back instead of dropping them.
    entry.used = true;
    this.#hits += 1;
    return entry.record ?? null;
  }

  async findById(id: string): Promise<TenantRecord | undefined> {
    const cached = this.peek(id);
    if (cached !== undefined) return cached ?? undefined;
    this.#misses += 1;
    const running = this.#inflight.get(id);
    if (running !== undefined) {
      this.#coalesced += 1;
      return running;
    }
    this.#storeCalls += 1;
    const call = this.#inner.findById(id).then(
      (found) => {
        const record = found === undefined ? undefined : freezeRecord(found);
        // Cache only if no invalidate() ran meanwhile: it removed this call from #inflight.
        if (this.#inflight.get(id) === call) {
          this.#inflight.delete(id);
          this.#remember(id, record);
        }
        return record;
      },
      (error: unknown) => {
        if (this.#inflight.get(id) === call) this.#inflight.delete(id);
        throw error;
      },
    );
    this.#inflight.set(id, call);
    return call;
  }

  /**
   * Forgets one tenant, so the next lookup reads the store. A lookup already
   * running for it is not cached either. Safe to call for unknown ids.
   *
   * @example
   * ```ts
   * store.invalidate('acme');
   * ```
   */
  invalidate(id: string): void {
    this.#entries.delete(id);
    this.#inflight.delete(id);
    for (const [domain, entry] of this.#domains) {
      if (entry.record?.id === id) this.#domains.delete(domain);
    }
  }

  /**
   * Forgets one custom domain (found or cached as unknown), so the next
   * `findByDomain` reads the store. `TenantManager` calls it when a domain is
   * added, verified or removed.
   *
   * @example
   * ```ts
   * store.invalidateDomain('app.acme-corp.com');
   * ```
   */
  invalidateDomain(domain: string): void {
    this.#domains.delete(domain);
    this.#domainInflight.delete(domain);
  }

  /**
   * The cached answer for a custom domain without waiting, like {@link peek}.
   *
   * @example
   * ```ts
   * store.peekDomain('app.acme-corp.com'); // TenantRecord | null | undefined
   * ```
   */
  peekDomain(domain: string): TenantRecord | null | undefined {
    const entry = this.#domains.get(domain);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#domains.delete(domain);
      return undefined;
    }
    entry.used = true;
    this.#hits += 1;
    return entry.record ?? null;
  }

  /**
   * The tenant holding a verified custom domain, cached like {@link findById}
   * (unknown domains for `negativeTtlMs`, concurrent misses coalesced). Throws
   * a `TypeError` when the wrapped store has no `findByDomain`.
   */
  async findByDomain(domain: string): Promise<TenantRecord | undefined> {
    const cached = this.peekDomain(domain);
    if (cached !== undefined) return cached ?? undefined;
    this.#misses += 1;
    const running = this.#domainInflight.get(domain);
    if (running !== undefined) {
      this.#coalesced += 1;
      return running;
    }
    const inner = this.#inner.findByDomain;
    if (inner === undefined) {
      throw new TypeError(
        'Cannot look up a custom domain because the wrapped tenant store has no findByDomain(). Use a store that supports domains.',
      );
    }
    this.#storeCalls += 1;
    const call = inner.call(this.#inner, domain).then(
      (found) => {
        const record = found === undefined ? undefined : freezeRecord(found);
        if (this.#domainInflight.get(domain) === call) {
          this.#domainInflight.delete(domain);
          this.#rememberIn(this.#domains, domain, record);
        }
        return record;
      },
      (error: unknown) => {
        if (this.#domainInflight.get(domain) === call) this.#domainInflight.delete(domain);
        throw error;
      },
    );
    this.#domainInflight.set(domain, call);
    return call;
  }

  /** Whether the wrapped store can look tenants up by domain. */
  get supportsDomains(): boolean {
    return typeof this.#inner.findByDomain === 'function';
  }

  /**
   * Forgets every tenant.
   *
   * @example
   * ```ts
   * store.invalidateAll();
   * ```
   */
  invalidateAll(): void {
    this.#entries.clear();
    this.#inflight.clear();
    this.#domains.clear();
    this.#domainInflight.clear();
  }

  /** Not cached: listing is an admin operation. */
  list(options?: TenantListOptions): Promise<TenantRecord[]> {
    return this.#inner.list(options);
  }

  async create(tenant: NewTenant): Promise<TenantRecord> {
    try {
      return await this.#inner.create(tenant);
    } finally {
      // The id may be negatively cached from an earlier lookup.
      this.invalidate(tenant.id);
    }
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord> {
    try {
      return await this.#inner.update(id, patch);
    } finally {
      this.invalidate(id);
      // A domain just added may be cached as unknown.
      for (const d of patch.domains ?? []) this.invalidateDomain(d.domain);
    }
  }

  async remove(id: string): Promise<boolean> {
    try {
      return await this.#inner.remove(id);
    } finally {
      this.invalidate(id);
    }
  }

  #remember(id: string, record: TenantRecord | undefined): void {
    this.#rememberIn(this.#entries, id, record);
  }

  #rememberIn(entries: Map<string, Entry>, key: string, record: TenantRecord | undefined): void {
    const ttl = record === undefined ? this.#negativeTtlMs : this.#ttlMs;
    if (ttl <= 0) return;
    entries.delete(key); // a re-remembered key goes to the back
    entries.set(key, { record, expiresAt: this.#now() + ttl, used: false });
    // Each pass either evicts the oldest entry or clears its mark and moves it
    // to the back, so this ends within 2 × size passes.
    while (entries.size > this.#maxEntries) {
      const oldest = entries.entries().next();
      if (oldest.done === true) break;
      const [oldestKey, entry] = oldest.value;
      entries.delete(oldestKey);
      // The entry just remembered is never the one evicted.
      if (entry.used || oldestKey === key) {
        entry.used = false;
        entries.set(oldestKey, entry);
      } else {
        this.#evictions += 1;
      }
    }
  }
}
