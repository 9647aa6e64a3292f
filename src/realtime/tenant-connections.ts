import { assertServableTenant } from '../context/run-for-tenant';
import { TenancyError } from '../errors';
import { toTenancyLogger, type TenancyLogger, type TenancyLoggerInput } from '../logger';
import type { TenantStore } from '../store/tenant-store';

/**
 * WebSocket close codes (private range 4000–4999) sent to a connection whose
 * tenant may no longer be served; the close reason is the error code.
 */
export const TENANT_CLOSE_CODES = Object.freeze({
  /** The tenant was suspended, archived or is not provisioned: reason `TENANT_SUSPENDED`. */
  TENANT_SUSPENDED: 4403,
  /** The tenant was deleted or is gone: reason `TENANT_NOT_FOUND`. */
  TENANT_NOT_FOUND: 4404,
});

/** Options of {@link TenantConnections}. */
export interface TenantConnectionsOptions {
  /** Where each connected tenant's status is read again (a `CachedTenantStore` is fine). Required. */
  readonly store: TenantStore;
  /**
   * How often every connected tenant's status is re-checked. `0` disables the
   * timer (then only `recheck()` and change notifications re-check).
   * Default: `30000` ms.
   */
  readonly recheckIntervalMs?: number | undefined;
  /** Receives re-check failures and disconnects. Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
}

/** Closes one connection with a WebSocket close code and a reason. */
export type CloseConnection = (code: number, reason: string) => void;

/**
 * The long-lived connections of each tenant, re-checked against the tenant
 * store on an interval and on change notifications: a tenant suspended,
 * archived or deleted while connected has all its connections closed with
 * a {@link TENANT_CLOSE_CODES} code. It is a `TenantCacheInvalidator`, so a
 * `TenantChangeNotifier` can drive it (`notifier.listen(cache, connections)`,
 * the cache first). A store failing during a re-check keeps the connections
 * (they were admitted; an outage is no revocation) and logs a warning.
 *
 * @example
 * ```ts
 * const connections = new TenantConnections({ store, recheckIntervalMs: 10_000 });
 * await notifier.listen(cachedStore, connections);
 * const tenancy = wsTenancy({ handlers: [resolveTenant({ store })], connections });
 * ```
 */
export class TenantConnections {
  readonly #store: TenantStore;
  readonly #logger: TenancyLogger;
  readonly #intervalMs: number;
  readonly #byTenant = new Map<string, Set<CloseConnection>>();
  readonly #checking = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: TenantConnectionsOptions) {
    if (
      options === undefined ||
      options === null ||
      typeof options.store?.findById !== 'function'
    ) {
      throw new TypeError(
        'Cannot track tenant connections without a tenant store. Pass store: a TenantStore.',
      );
    }
    const interval = options.recheckIntervalMs ?? 30_000;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) {
      throw new TypeError(
        'Cannot use recheckIntervalMs because it is not a number >= 0. Pass milliseconds, e.g. 30000.',
      );
    }
    this.#store = options.store;
    this.#logger = toTenancyLogger(options.logger);
    this.#intervalMs = interval;
  }

  /** How many connections are tracked, over all tenants. */
  get size(): number {
    let n = 0;
    for (const set of this.#byTenant.values()) n += set.size;
    return n;
  }

  /**
   * Tracks one connection of tenant `tenantId`; returns the function that
   * stops tracking it (call it when the connection closes).
   *
   * @example
   * ```ts
   * const untrack = connections.track('acme', (code, reason) => ws.close(code, reason));
   * ws.once('close', untrack);
   * ```
   */
  track(tenantId: string, close: CloseConnection): () => void {
    let set = this.#byTenant.get(tenantId);
    if (set === undefined) {
      set = new Set();
      this.#byTenant.set(tenantId, set);
    }
    const entry: CloseConnection = (code, reason) => close(code, reason);
    set.add(entry);
    this.#arm();
    return () => {
      const current = this.#byTenant.get(tenantId);
      if (current === undefined) return;
      current.delete(entry);
      if (current.size === 0) this.#byTenant.delete(tenantId);
      if (this.#byTenant.size === 0) this.#disarm();
    };
  }

  /**
   * Reads tenant `tenantId` again and closes its connections if it may no
   * longer be served. Concurrent calls for one tenant share one lookup.
   *
   * @example
   * ```ts
   * await connections.recheck('acme');
   * ```
   */
  recheck(tenantId: string): Promise<void> {
    const running = this.#checking.get(tenantId);
    if (running !== undefined) return running;
    const check = this.#check(tenantId).finally(() => this.#checking.delete(tenantId));
    this.#checking.set(tenantId, check);
    return check;
  }

  /** Re-checks every connected tenant. */
  async recheckAll(): Promise<void> {
    await Promise.all([...this.#byTenant.keys()].map((id) => this.recheck(id)));
  }

  /** `TenantCacheInvalidator`: a change notification for `id` re-checks it. */
  invalidate(id: string): void {
    if (this.#byTenant.has(id)) void this.recheck(id);
  }

  /** `TenantCacheInvalidator`: a lost notification stream re-checks everyone. */
  invalidateAll(): void {
    void this.recheckAll();
  }

  /** Stops the timer (connections are left open). */
  close(): void {
    this.#closed = true;
    this.#disarm();
  }

  async #check(tenantId: string): Promise<void> {
    let refusal: TenancyError | undefined;
    try {
      assertServableTenant(tenantId, await this.#store.findById(tenantId));
    } catch (error) {
      if (
        error instanceof TenancyError &&
        (error.code === 'TENANT_SUSPENDED' || error.code === 'TENANT_NOT_FOUND')
      ) {
        refusal = error;
      } else {
        this.#logger.warn('tenant connection re-check failed; connections kept', {
          tenantId,
          error,
        });
        return;
      }
    }
    if (refusal === undefined) return;
    const set = this.#byTenant.get(tenantId);
    if (set === undefined) return;
    this.#byTenant.delete(tenantId);
    if (this.#byTenant.size === 0) this.#disarm();
    const code =
      refusal.code === 'TENANT_SUSPENDED'
        ? TENANT_CLOSE_CODES.TENANT_SUSPENDED
        : TENANT_CLOSE_CODES.TENANT_NOT_FOUND;
    this.#logger.info('closing connections of a tenant that may no longer be served', {
      tenantId,
      code: refusal.code,
      connections: set.size,
    });
    for (const close of set) {
      try {
        close(code, refusal.code);
      } catch (error) {
        this.#logger.warn('closing a tenant connection failed', { tenantId, error });
      }
    }
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed || this.#intervalMs === 0) return;
    this.#timer = setInterval(() => void this.recheckAll(), this.#intervalMs);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * The connections a ws/Socket.IO adapter re-checks: the ones passed in, or a
 * new {@link TenantConnections} on `store`. Throws TypeError without either.
 */
export function connectionsOf(options: {
  readonly connections?: TenantConnections | undefined;
  readonly store?: TenantStore | undefined;
  readonly recheckIntervalMs?: number | undefined;
  readonly logger?: TenancyLoggerInput | undefined;
}): TenantConnections {
  if (options.connections !== undefined) return options.connections;
  if (options.store === undefined) {
    throw new TypeError(
      'Cannot re-check connected tenants without a store. Pass store (or connections).',
    );
  }
  return new TenantConnections({
    store: options.store,
    recheckIntervalMs: options.recheckIntervalMs,
    logger: options.logger,
  });
}
