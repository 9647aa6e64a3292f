import { dedicatedConnection } from '../isolation/knex-adapter';
import type { Knex } from 'knex';
import type pg from 'pg';
import { assertValidTenantId, isValidTenantId } from '../context/tenant-id';
import { toTenancyLogger, type TenancyLogger, type TenancyLoggerInput } from '../logger';
import type { TenantCacheInvalidator } from './tenant-manager';
import { quoteInput } from '../message-text';

/** Options of {@link TenantChangeNotifier}. */
export interface TenantChangeNotifierOptions {
  /** The NOTIFY channel. Default: `tenantry_tenant_changed`. */
  readonly channel?: string | undefined;
  /** First delay before reconnecting a dropped listener (doubles up to 5 s). Default: `100` ms. */
  readonly reconnectDelayMillis?: number | undefined;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
}

const ALL = '*';

/**
 * Cross-process cache invalidation over PostgreSQL LISTEN/NOTIFY. Every
 * process runs `listen(cache)`; `TenantManager` calls `publish(id)` after
 * each change, and every listening process drops that tenant from its
 * caches within milliseconds. A dropped listener reconnects (with backoff)
 * and then clears its caches entirely, since notifications sent while it
 * was away are lost: the staleness bound is the reconnect time, and at
 * worst the cache TTL.
 *
 * @example
 * ```ts
 * const notifier = new TenantChangeNotifier(knex);
 * await notifier.listen(cachedStore, tenantConfig);
 * const manager = new TenantManager({ knex, store, notifier, caches: [cachedStore] });
 * ```
 */
export class TenantChangeNotifier {
  readonly #knex: Knex;
  readonly #channel: string;
  readonly #delay: number;
  readonly #logger: TenancyLogger;
  readonly #targets = new Set<TenantCacheInvalidator>();
  #client: pg.Client | undefined;
  #closed = false;
  #connecting: Promise<void> | undefined;
  #reconnects = 0;

  constructor(knex: Knex, options: TenantChangeNotifierOptions = {}) {
    this.#knex = knex;
    this.#channel = options.channel ?? 'tenantry_tenant_changed';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#channel)) {
      throw new TypeError(
        `Cannot use channel ${quoteInput(this.#channel)} because it is not a plain identifier.`,
      );
    }
    this.#delay = options.reconnectDelayMillis ?? 100;
    this.#logger = toTenancyLogger(options.logger);
  }

  /** How many times the listener reconnected after a drop. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Whether the listener connection is up. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  /** Tells every listening process that tenant `id` changed (`*`: all tenants). */
  async publish(id: string): Promise<void> {
    const payload = id === ALL ? ALL : assertValidTenantId(id, 'notification');
    await this.#knex.raw('select pg_notify(?, ?)', [this.#channel, payload]);
  }

  /** Starts listening (once) and invalidates `targets` on every notification. */
  async listen(...targets: TenantCacheInvalidator[]): Promise<void> {
    for (const t of targets) this.#targets.add(t);
    if (this.#client || this.#closed) return;
    await (this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined)));
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (client)
      await this.#rawClient()
        .close(client)
        .catch(() => undefined);
  }

  #rawClient(): { open(): Promise<pg.Client>; close(c: pg.Client): Promise<void> } {
    return dedicatedConnection<pg.Client>(this.#knex);
  }

  // A dedicated connection outside the pool: LISTEN is session state and
  // must never be handed to a request.
  async #connect(): Promise<void> {
    const client = await this.#rawClient().open();
    client.on('notification', (message) => {
      if (message.channel !== this.#channel) return;
      const id = message.payload ?? '';
      if (id === ALL) this.#invalidateAll();
      else if (isValidTenantId(id)) for (const t of this.#targets) t.invalidate(id);
    });
    const dropped = (error?: unknown) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#logger.warn('tenant change listener dropped; reconnecting', { error });
      client.removeAllListeners('end');
      this.#scheduleReconnect(this.#delay);
    };
    client.on('error', dropped);
    client.on('end', () => dropped());
    await client.query(`LISTEN ${this.#channel}`);
    if (this.#closed) {
      await this.#rawClient()
        .close(client)
        .catch(() => undefined);
      return;
    }
    this.#client = client;
  }

  #scheduleReconnect(delay: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#connect().then(
        () => {
          this.#reconnects += 1;
          // Notifications sent while we were away are lost: forget everything.
          this.#invalidateAll();
        },
        (error: unknown) => {
          this.#logger.warn('tenant change listener reconnect failed', { error });
          this.#scheduleReconnect(Math.min(5_000, delay * 2));
        },
      );
    }, delay);
    timer.unref();
  }

  #invalidateAll(): void {
    for (const t of this.#targets) {
      if (t.invalidateAll) t.invalidateAll();
    }
  }
}
