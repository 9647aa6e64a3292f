import knexFactory, { type Knex } from 'knex';
import type { TenantDatabaseSettings, TenantRecord } from '../../context/tenant-record';
import { TenancyError, TenantUnavailableError } from '../../errors';
import { silentLogger, type TenancyLogger } from '../../logger';
import { ConnectionBudget } from './connection-budget';
import { envCredentialsResolver, type CredentialsResolver } from './credentials-resolver';
import { DEFAULT_DATABASE_PREFIX, tenantDatabaseName } from './tenant-database-name';

/** Connection defaults applied when a tenant record leaves a field out. */
export interface DatabaseConnectionDefaults {
  /** Default host. Default: `127.0.0.1`. */
  readonly host?: string;
  /** Default port. Default: `5432`. */
  readonly port?: number;
  /** Default role. Default: `postgres`. */
  readonly user?: string;
  /** Password used when a tenant has no `passwordRef`. Default: none. */
  readonly password?: string;
}

/** Options of database isolation mode (a database per tenant). */
export interface DatabaseIsolationOptions {
  /**
   * Most connections open at once across ALL tenant pools (the global
   * budget). Default: `50`.
   */
  readonly connectionBudget?: number;
  /** Most tenant pools kept open (least recently used are closed first). Default: `100`. */
  readonly maxPools?: number;
  /** Most connections of one tenant's pool. Default: `min(5, connectionBudget)`. */
  readonly maxConnectionsPerTenant?: number;
  /** A tenant pool unused this long is closed. Default: `60000` ms. */
  readonly poolIdleMillis?: number;
  /** An idle connection inside a pool is closed after this long. Default: `10000` ms. */
  readonly connectionIdleMillis?: number;
  /** How long a query may wait for a connection (pool or budget). Default: `10000` ms. */
  readonly acquireTimeoutMillis?: number;
  /** TCP connect timeout to a tenant server. Default: `5000` ms. */
  readonly connectTimeoutMillis?: number;
  /** Prefix of default database names (`tenant_<id>`). Default: `tenant_`. */
  readonly databasePrefix?: string;
  /** Resolves `passwordRef`. Default: {@link envCredentialsResolver} (an env var). */
  readonly credentials?: CredentialsResolver;
  /** Defaults for host/port/user/password. Default: taken from the base Knex connection. */
  readonly defaults?: DatabaseConnectionDefaults;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLogger;
}

/** Fully resolved connection placement of one tenant (no secret). */
export interface ResolvedTenantDatabase {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly passwordRef?: string;
}

/** A snapshot of the manager, for health endpoints and tests. */
export interface TenantPoolStats {
  /** Open tenant pools. */
  readonly pools: number;
  /** Connections open or opening (budget slots taken). */
  readonly connections: number;
  /** The highest `connections` ever observed. */
  readonly peakConnections: number;
  /** The configured budget. */
  readonly budget: number;
  /** Connection requests waiting for a budget slot. */
  readonly waiting: number;
}

interface PoolEntry {
  /** Unique per pool (a tenant may briefly have an old pool reviving and a new one). */
  readonly seq: number;
  /** The tenant + placement fingerprint. */
  readonly key: string;
  readonly tenantId: string;
  knex: Knex;
  lastUsed: number;
  closing: Promise<void> | undefined;
  abort: AbortController;
}

interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

const RELEASED = Symbol('tenantry.budgetReleased');

function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    code === '3D000' ||
    code === '53300' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH'].includes(
      code,
    ) ||
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(
      message,
    )
  );
}

function unavailable(tenantId: string, error: unknown): TenancyError {
  if (error instanceof TenancyError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  // The message is shown to clients: it names the failure class, never the host or database.
  return new TenantUnavailableError(
    `Cannot reach the database of tenant "${tenantId}" because the connection failed` +
      `${typeof code === 'string' ? ` (${code})` : ''}. Retry later.`,
    { cause: error },
  );
}

/**
 * Owns one lazily created Knex pool per tenant database, under an LRU cap
 * (`maxPools`), a GLOBAL connection budget shared by every pool, and idle
 * eviction. A tenant whose database is down or missing fails with 503
 * `TENANT_UNAVAILABLE` without affecting any other tenant.
 *
 * @example
 * ```ts
 * const pools = new TenantPoolManager({ connectionBudget: 50 });
 * const knex = pools.knexFor(tenantRecord);
 * await knex('documents').select('*');
 * await pools.destroy();
 * ```
 */
export class TenantPoolManager {
  readonly #options: Required<
    Omit<DatabaseIsolationOptions, 'defaults' | 'logger' | 'credentials'>
  >;
  readonly #defaults: Required<Omit<DatabaseConnectionDefaults, 'password'>> & {
    password?: string;
  };
  readonly #credentials: CredentialsResolver;
  readonly #logger: TenancyLogger;
  readonly #budget: ConnectionBudget;
  // A Map iterates in insertion order: re-inserting on use makes it an LRU.
  readonly #pools = new Map<number, PoolEntry>();
  // The pool new builders of a placement use.
  readonly #byKey = new Map<string, PoolEntry>();
  #seq = 0;
  readonly #closing = new Set<Promise<void>>();
  // Every pool ever opened, so shutdown also closes one revived after eviction.
  readonly #live = new Set<PoolEntry>();
  readonly #sweeper: NodeJS.Timeout;
  #destroyed = false;

  constructor(options: DatabaseIsolationOptions = {}) {
    const budget = options.connectionBudget ?? 50;
    const intOption = (name: string, value: number, min: number) => {
      if (!Number.isInteger(value) || value < min) {
        throw new TypeError(
          `Cannot use database option ${name}=${String(value)} because it must be an integer >= ${min}.`,
        );
      }
      return value;
    };
    this.#options = {
      connectionBudget: intOption('connectionBudget', budget, 1),
      maxPools: intOption('maxPools', options.maxPools ?? 100, 1),
      maxConnectionsPerTenant: intOption(
        'maxConnectionsPerTenant',
        options.maxConnectionsPerTenant ?? Math.min(5, budget),
        1,
      ),
      poolIdleMillis: intOption('poolIdleMillis', options.poolIdleMillis ?? 60_000, 0),
      connectionIdleMillis: intOption(
        'connectionIdleMillis',
        options.connectionIdleMillis ?? 10_000,
        1,
      ),
      acquireTimeoutMillis: intOption(
        'acquireTimeoutMillis',
        options.acquireTimeoutMillis ?? 10_000,
        1,
      ),
      connectTimeoutMillis: intOption(
        'connectTimeoutMillis',
        options.connectTimeoutMillis ?? 5_000,
        1,
      ),
      databasePrefix: options.databasePrefix ?? DEFAULT_DATABASE_PREFIX,
    };
    // Validates the prefix now rather than at the first request.
    tenantDatabaseName('probe', this.#options.databasePrefix);
    this.#defaults = {
      host: options.defaults?.host ?? '127.0.0.1',
      port: options.defaults?.port ?? 5432,
      user: options.defaults?.user ?? 'postgres',
      ...(options.defaults?.password !== undefined ? { password: options.defaults.password } : {}),
    };
    this.#credentials = options.credentials ?? envCredentialsResolver;
    this.#logger = options.logger ?? silentLogger;
    this.#budget = new ConnectionBudget({
      max: this.#options.connectionBudget,
      acquireTimeoutMillis: this.#options.acquireTimeoutMillis,
      onPressure: () => this.#evictIdle(0, Math.max(1, this.#budget.waiting)),
    });
    this.#sweeper = setInterval(
      () => {
        this.#evictIdle(this.#options.poolIdleMillis, Infinity);
        this.#enforceCap();
      },
      Math.max(50, Math.min(5_000, Math.floor(this.#options.poolIdleMillis / 2))),
    );
    this.#sweeper.unref();
  }

  /** Where a tenant's database lives: the record's settings over the defaults. */
  placementOf(tenant: TenantRecord): ResolvedTenantDatabase {
    const s: Partial<TenantDatabaseSettings> = tenant.isolation.database ?? {};
    return {
      host: s.host ?? this.#defaults.host,
      port: s.port ?? this.#defaults.port,
      database: s.database ?? tenantDatabaseName(tenant.id, this.#options.databasePrefix),
      user: s.user ?? this.#defaults.user,
      ...(s.passwordRef !== undefined ? { passwordRef: s.passwordRef } : {}),
    };
  }

  /**
   * The Knex of `tenant`'s own database, creating its pool on first use.
   * Every statement built from it runs in that database, whatever scope is
   * active when it executes.
   */
  knexFor(tenant: TenantRecord): Knex {
    if (this.#destroyed) {
      throw new TenantUnavailableError(
        `Cannot reach the database of tenant "${tenant.id}" because the pool manager is shut down.`,
      );
    }
    const placement = this.placementOf(tenant);
    const key = JSON.stringify([
      tenant.id,
      placement.host,
      placement.port,
      placement.database,
      placement.user,
      placement.passwordRef ?? null,
    ]);
    let entry = this.#byKey.get(key);
    if (entry) {
      this.#pools.delete(entry.seq);
    } else {
      // A tenant that moved (new placement) must not keep its old pool open.
      for (const other of [...this.#pools.values()]) {
        if (other.tenantId === tenant.id) void this.#evict(other, 'placement changed');
      }
      entry = this.#createPool(key, tenant, placement);
      this.#byKey.set(key, entry);
    }
    entry.lastUsed = Date.now();
    this.#pools.set(entry.seq, entry);
    this.#enforceCap();
    return entry.knex;
  }

  /** Counters for health checks and tests. */
  stats(): TenantPoolStats {
    return {
      pools: this.#pools.size,
      connections: this.#budget.used,
      peakConnections: this.#budget.peak,
      budget: this.#budget.max,
      waiting: this.#budget.waiting,
    };
  }

  /** Closes the pool of one tenant (e.g. after it was suspended or moved). */
  async closeTenant(tenantId: string): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const entry of [...this.#pools.values()]) {
      if (entry.tenantId === tenantId) closing.push(this.#evict(entry, 'closed'));
    }
    await Promise.all(closing);
  }

  /** Closes every pool and waits for in-flight queries; the manager is unusable afterwards. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearInterval(this.#sweeper);
    this.#budget.close();
    for (const entry of this.#live) void this.#evict(entry, 'shutdown');
    this.#pools.clear();
    this.#byKey.clear();
    await Promise.all([...this.#closing]);
  }

  #createPool(key: string, tenant: TenantRecord, placement: ResolvedTenantDatabase): PoolEntry {
    const credentials = this.#credentials;
    const defaults = this.#defaults;
    const connectTimeout = this.#options.connectTimeoutMillis;
    const logger = this.#logger;
    const knex = knexFactory({
      client: 'pg',
      log: {
        warn: (message: unknown) => logger.warn(String(message), { tenantId: tenant.id }),
        error: (message: unknown) => logger.error(String(message), { tenantId: tenant.id }),
        debug: (message: unknown) => logger.debug(String(message), { tenantId: tenant.id }),
        deprecate: (message: unknown) => logger.warn(String(message), { tenantId: tenant.id }),
      },
      // A function, so the secret is resolved at connect time and never stored in the pool config.
      connection: async () => ({
        host: placement.host,
        port: placement.port,
        database: placement.database,
        user: placement.user,
        password:
          placement.passwordRef !== undefined
            ? await credentials(placement.passwordRef, tenant)
            : defaults.password,
        connectionTimeoutMillis: connectTimeout,
        application_name: `tenantry:${tenant.id}`,
      }),
      pool: {
        min: 0,
        max: this.#options.maxConnectionsPerTenant,
        idleTimeoutMillis: this.#options.connectionIdleMillis,
        reapIntervalMillis: Math.min(1_000, this.#options.connectionIdleMillis),
        acquireTimeoutMillis: this.#options.acquireTimeoutMillis,
        createTimeoutMillis: this.#options.acquireTimeoutMillis + connectTimeout,
      },
    });
    const entry: PoolEntry = {
      seq: ++this.#seq,
      key,
      tenantId: tenant.id,
      knex,
      lastUsed: 0,
      closing: undefined,
      abort: new AbortController(),
    };
    this.#instrument(entry);
    this.#live.add(entry);
    return entry;
  }

  // Knex has no hook around opening/closing a physical connection, so the
  // client instance's methods are wrapped: a budget slot is taken before a
  // connection is opened and given back exactly once when it is closed.
  #instrument(entry: PoolEntry): void {
    const { knex, tenantId } = entry;
    type Conn = { [RELEASED]?: boolean };
    const client = knex.client as {
      acquireRawConnection(): Promise<Conn>;
      destroyRawConnection(c: Conn): Promise<void>;
      acquireConnection(): Promise<unknown>;
      initializePool(): void;
      pool?: unknown;
      _query(connection: unknown, obj: unknown): Promise<unknown>;
    };
    const budget = this.#budget;
    const logger = this.#logger;
    const openRaw = client.acquireRawConnection.bind(client);
    const closeRaw = client.destroyRawConnection.bind(client);
    const acquire = client.acquireConnection.bind(client);
    const query = client._query.bind(client);
    client.acquireRawConnection = async () => {
      await budget.acquire(entry.abort.signal);
      try {
        return await openRaw();
      } catch (error) {
        budget.release();
        logger.warn('tenant database connection failed', {
          tenantId,
          code: (error as { code?: unknown }).code,
        });
        throw unavailable(tenantId, error);
      }
    };
    client.destroyRawConnection = async (connection) => {
      try {
        await closeRaw(connection);
      } finally {
        if (!connection[RELEASED]) {
          connection[RELEASED] = true;
          budget.release();
        }
      }
    };
    client.acquireConnection = async () => {
      // A builder created just before its pool was evicted (LRU cap or
      // budget pressure) still runs: the pool is reopened and re-listed.
      while (entry.closing !== undefined || client.pool === undefined) {
        if (entry.closing !== undefined) {
          await entry.closing;
          continue;
        }
        if (this.#destroyed) throw unavailable(tenantId, new Error('pool manager shut down'));
        entry.abort = new AbortController();
        client.initializePool();
      }
      if (!this.#pools.has(entry.seq)) this.#pools.set(entry.seq, entry);
      entry.lastUsed = Date.now();
      // acquire() registers its pending request synchronously, so the cap is
      // enforced only after this pool counts as busy and cannot be picked.
      const pending = acquire();
      this.#enforceCap();
      try {
        return await pending;
      } catch (error) {
        // A pool timeout means this tenant cannot be served now: 503, not a 500.
        throw unavailable(tenantId, error);
      }
    };
    client._query = async (connection, obj) => {
      try {
        return await query(connection, obj);
      } catch (error) {
        throw isUnavailable(error) ? unavailable(tenantId, error) : error;
      }
    };
  }

  // Pools with queries in flight are never closed, so the cap can be
  // exceeded briefly under load; it is restored as soon as pools go idle.
  #enforceCap(): void {
    if (this.#pools.size > this.#options.maxPools) {
      this.#evictIdle(0, this.#pools.size - this.#options.maxPools);
    }
  }

  #evictIdle(idleForMillis: number, limit: number): void {
    const now = Date.now();
    let evicted = 0;
    for (const entry of this.#pools.values()) {
      if (evicted >= limit) break;
      const pool = (entry.knex.client as { pool?: TarnPool }).pool;
      // Pending creates do not count: one may be waiting for a budget slot
      // for a query that already ran on another connection; eviction aborts it.
      const busy = pool !== undefined && (pool.numUsed() > 0 || pool.numPendingAcquires() > 0);
      if (!busy && now - entry.lastUsed >= idleForMillis) {
        void this.#evict(entry, idleForMillis === 0 ? 'budget or pool cap' : 'idle');
        evicted += 1;
      }
    }
  }

  #evict(entry: PoolEntry, reason: string): Promise<void> {
    this.#pools.delete(entry.seq);
    if (this.#byKey.get(entry.key) === entry) this.#byKey.delete(entry.key);
    if (entry.closing) return entry.closing;
    this.#logger.debug('closing tenant pool', { tenantId: entry.tenantId, reason });
    entry.abort.abort();
    const closing: Promise<void> = entry.knex
      .destroy()
      .catch((error: unknown) =>
        this.#logger.warn('closing tenant pool failed', { tenantId: entry.tenantId, error }),
      )
      .finally(() => {
        this.#closing.delete(closing);
        entry.closing = undefined;
      });
    entry.closing = closing;
    this.#closing.add(closing);
    return closing;
  }
}
