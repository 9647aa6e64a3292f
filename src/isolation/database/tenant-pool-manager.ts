import knexFactory, { type Knex } from 'knex';
import type { TenantRecord } from '../../context/tenant-record';
import { TenancyError, TenantUnavailableError } from '../../errors';
import { silentLogger, type TenancyLogger } from '../../logger';
import {
  telemetryHooks,
  type TelemetryHooks,
  type TelemetryOption,
  type StatementScope,
} from '../../telemetry/tenancy-telemetry';
import { closeIdleConnections, hookConnections, poolOf, reopenPool } from '../knex-adapter';
import { outsideTenantScopes } from '../scope-capture';
import { ConnectionBudget } from './connection-budget';
import { envCredentialsResolver, type CredentialsResolver } from './credentials-resolver';
import {
  TenantPlacementRules,
  connectionObject,
  tenantConnectionConfig,
  type PgConnectionConfig,
  type TenantDatabaseTarget,
  type TenantPlacementPolicy,
} from './tenant-connection';
import { DEFAULT_DATABASE_PREFIX, tenantDatabaseName } from './tenant-database-name';

/** A listener of a knex event, typed as knex types `on()`. */
export type KnexEventListener = Parameters<Knex['on']>[1];

/** Connection defaults applied when a tenant record leaves a field out. */
export interface DatabaseConnectionDefaults {
  /** Default host. Default: `127.0.0.1`. */
  readonly host?: string | undefined;
  /** Default port. Default: `5432`. */
  readonly port?: number | undefined;
  /** Default role. Default: `postgres`. */
  readonly user?: string | undefined;
  /** Password used when a tenant has no `passwordRef`. Default: none. */
  readonly password?: string | undefined;
}

/** Options of database isolation mode (a database per tenant). */
export interface DatabaseIsolationOptions extends TenantPlacementPolicy {
  /**
   * The connection every tenant connection is built from: `ssl` and every
   * other option are inherited, only host, port, database, user and password
   * are replaced. A URL is parsed with `pg-connection-string`. Default: the
   * base Knex's connection (`withTenancy`); none for a `TenantPoolManager`
   * created on its own.
   */
  readonly connection?: string | PgConnectionConfig | undefined;
  /**
   * Most connections open at once across ALL tenant pools (the global
   * budget). Default: `50`.
   */
  readonly connectionBudget?: number | undefined;
  /**
   * Most tenant pools handed out (a soft cap): past it the least recently
   * used pool stops being handed out and closes once no query waits for or
   * holds its connections, so more pools can be open while those drain.
   * Default: `100`.
   */
  readonly maxPools?: number | undefined;
  /** Most connections of one tenant's pool. Default: `min(5, connectionBudget)`. */
  readonly maxConnectionsPerTenant?: number | undefined;
  /** A tenant pool unused this long is closed. Default: `60000` ms. */
  readonly poolIdleMillis?: number | undefined;
  /** An idle connection inside a pool is closed after this long. Default: `10000` ms. */
  readonly connectionIdleMillis?: number | undefined;
  /**
   * How long a query may wait for a connection (its pool or a budget slot)
   * before it fails with 503 `TENANT_UNAVAILABLE`. Default: `10000` ms.
   */
  readonly acquireTimeoutMillis?: number | undefined;
  /** TCP connect timeout to a tenant server. Default: `5000` ms. */
  readonly connectTimeoutMillis?: number | undefined;
  /** Prefix of default database names (`tenant_<id>`). Default: `tenant_`. */
  readonly databasePrefix?: string | undefined;
  /** Resolves `passwordRef`. Default: {@link envCredentialsResolver} (an env var). */
  readonly credentials?: CredentialsResolver | undefined;
  /** Defaults for host/port/user/password. Default: taken from the base Knex connection. */
  readonly defaults?: DatabaseConnectionDefaults | undefined;
  /** Logger. Default: silent. */
  readonly logger?: TenancyLogger | undefined;
  /**
   * Tracing and metrics of the tenant pools: a `tenantry.statement` event per
   * statement routed to a tenant database, `statement`, `poolWait` and
   * `refused` (stage `pool`) counters. Default: `withTenancy()`'s
   * `telemetry`, else `tenancyTelemetry()`'s defaults.
   */
  readonly telemetry?: TelemetryOption | undefined;
}

/** Fully resolved connection placement of one tenant (no secret). */
export type ResolvedTenantDatabase = TenantDatabaseTarget;

/** A snapshot of the manager, for health endpoints and tests. */
export interface TenantPoolStats {
  /** Open tenant pools: the ones handed out plus the ones draining before they close. */
  readonly pools: number;
  /** Open pools no longer handed out (over `maxPools`, or closed by `closeTenant()`), waiting for their borrowers. */
  readonly draining: number;
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
  /** Unique per pool (a tenant may briefly have a draining pool and a new one). */
  readonly seq: number;
  /** The tenant + placement fingerprint. */
  readonly key: string;
  readonly tenantId: string;
  /** The scope its statements are reported as (telemetry). */
  readonly scope: StatementScope;
  readonly knex: Knex;
  lastUsed: number;
  /** Acquisitions in progress: waiting for a pooled connection or a budget slot. */
  pending: number;
  /** Connections handed to a query or transaction and not released yet. */
  borrowed: number;
  /** Never hand this pool out again (tenant closed or moved, shutdown). */
  invalidated: boolean;
  closing: Promise<void> | undefined;
  abort: AbortController;
  /** Called once the pool has closed (closeTenant() waits for a drain). */
  onClosed: (() => void)[];
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
 * Owns one lazily created Knex pool per tenant database, under a GLOBAL
 * connection budget shared by every pool (never exceeded), a soft cap on
 * open pools (`maxPools`), and idle eviction. A tenant whose database is
 * down or missing fails with 503 `TENANT_UNAVAILABLE` without affecting any
 * other tenant.
 *
 * A pool is never destroyed while a query waits for or holds one of its
 * connections: over `maxPools`, the least recently used pool is *retired*
 * (no longer handed out) and closes once its borrowers are done, so
 * `maxPools` can be exceeded by pools that are draining. When the budget is
 * full, idle pools are closed and idle connections of busy pools are closed
 * to give their slots to the queue of waiting connections (first come,
 * first served); a wait longer than `acquireTimeoutMillis` fails with 503.
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
    Omit<
      DatabaseIsolationOptions,
      | 'defaults'
      | 'logger'
      | 'credentials'
      | 'connection'
      | 'servers'
      | 'passwordRefs'
      | 'telemetry'
    >
  >;
  readonly #connection: Record<string, unknown>;
  readonly #rules: TenantPlacementRules;
  readonly #defaults: Required<Omit<DatabaseConnectionDefaults, 'password'>> & {
    password?: string;
  };
  readonly #credentials: CredentialsResolver;
  readonly #logger: TenancyLogger;
  readonly #telemetry: TelemetryHooks | undefined;
  readonly #budget: ConnectionBudget;
  // The pools handed out to new builders. A Map iterates in insertion order:
  // re-inserting on use makes it an LRU.
  readonly #listed = new Map<number, PoolEntry>();
  // The pool of a placement that may still be handed out (listed, or retired
  // by the cap but not closed yet, so a tenant that comes back reuses it).
  readonly #byKey = new Map<string, PoolEntry>();
  // Every pool that is open, closing, or listed: what shutdown must close.
  readonly #live = new Set<PoolEntry>();
  readonly #closing = new Set<Promise<void>>();
  #seq = 0;
  // Listeners of knex events ('query', 'query-response', ...) given to every
  // tenant's Knex, the open ones and the ones opened later.
  readonly #knexListeners: { event: string; listener: KnexEventListener }[] = [];
  // Connections being closed whose budget slot is about to come back.
  #releasing = 0;
  readonly #sweeper: NodeJS.Timeout;
  #destroyed = false;
  #destroying: Promise<void> | undefined;

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
    this.#connection = options.connection !== undefined ? connectionObject(options.connection) : {};
    const base = this.#connection;
    const password =
      options.defaults?.password ?? (typeof base.password === 'string' ? base.password : undefined);
    this.#defaults = {
      host: options.defaults?.host ?? (typeof base.host === 'string' ? base.host : '127.0.0.1'),
      port: options.defaults?.port ?? (base.port !== undefined ? Number(base.port) : 5432),
      user: options.defaults?.user ?? (typeof base.user === 'string' ? base.user : 'postgres'),
      ...(password !== undefined ? { password } : {}),
    };
    this.#rules = new TenantPlacementRules(options, this.#defaults, this.#options.databasePrefix);
    this.#credentials = options.credentials ?? envCredentialsResolver;
    this.#logger = options.logger ?? silentLogger;
    this.#telemetry = telemetryHooks(options.telemetry);
    this.#budget = new ConnectionBudget({
      max: this.#options.connectionBudget,
      acquireTimeoutMillis: this.#options.acquireTimeoutMillis,
      onPressure: () => this.#relievePressure(),
    });
    this.#sweeper = setInterval(
      () => this.#closeIdlePools(),
      Math.max(50, Math.min(5_000, Math.floor(this.#options.poolIdleMillis / 2))),
    );
    this.#sweeper.unref();
  }

  /**
   * Where a tenant's database lives: the record's settings over the defaults,
   * checked against the configured servers and allowed secret names (throws
   * `TENANT_UNAVAILABLE` for a record that points elsewhere).
   */
  placementOf(tenant: TenantRecord): ResolvedTenantDatabase {
    return this.#rules.targetOf(tenant);
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
    if (!entry) {
      // A tenant that moved (new placement) must not keep its old pool open.
      for (const other of [...this.#live]) {
        if (other.tenantId === tenant.id && other.key !== key) {
          this.#invalidate(other, 'placement changed');
        }
      }
      entry = this.#createPool(key, tenant, placement);
      this.#byKey.set(key, entry);
      this.#live.add(entry);
    }
    this.#list(entry);
    this.#enforceCap();
    return entry.knex;
  }

  /**
   * Listens to a knex event (`query`, `query-response`, `query-error`,
   * `start`) of every tenant's Knex: the pools open now and every pool
   * opened later. The listener runs once per statement, in whichever
   * tenant's database it ran.
   */
  onKnexEvent(event: string, listener: KnexEventListener): void {
    this.#knexListeners.push({ event, listener });
    for (const entry of this.#live) entry.knex.on(event, listener);
  }

  /** Stops a listener given to {@link onKnexEvent} (on every pool). */
  offKnexEvent(event: string, listener: KnexEventListener): void {
    const at = this.#knexListeners.findIndex((l) => l.event === event && l.listener === listener);
    if (at === -1) return;
    this.#knexListeners.splice(at, 1);
    for (const entry of this.#live) entry.knex.removeListener(event, listener);
  }

  /** Counters for health checks and tests. */
  stats(): TenantPoolStats {
    let pools = 0;
    let draining = 0;
    for (const entry of this.#live) {
      if (entry.closing !== undefined || poolOf(entry.knex) === undefined) continue;
      pools += 1;
      if (!this.#listed.has(entry.seq)) draining += 1;
    }
    return {
      pools,
      draining,
      connections: this.#budget.used,
      peakConnections: this.#budget.peak,
      budget: this.#budget.max,
      waiting: this.#budget.waiting,
    };
  }

  /**
   * Closes the pools of one tenant (e.g. after it was suspended or moved):
   * they are no longer handed out, and the returned promise settles once the
   * queries already running on them are done and the pools are closed.
   */
  async closeTenant(tenantId: string): Promise<void> {
    const closed: Promise<void>[] = [];
    for (const entry of [...this.#live]) {
      if (entry.tenantId !== tenantId) continue;
      closed.push(this.#whenClosed(entry));
      this.#invalidate(entry, 'closed');
    }
    await Promise.all(closed);
  }

  /**
   * Closes every pool this manager opened, waiting for in-flight queries;
   * queries still waiting for a connection fail with `TENANT_UNAVAILABLE`.
   * The manager is unusable afterwards. Calling it again returns the same
   * promise.
   */
  destroy(): Promise<void> {
    this.#destroying ??= this.#shutdown();
    return this.#destroying;
  }

  async #shutdown(): Promise<void> {
    this.#destroyed = true;
    clearInterval(this.#sweeper);
    this.#budget.close();
    this.#listed.clear();
    this.#byKey.clear();
    for (const entry of [...this.#live]) {
      entry.invalidated = true;
      if (entry.closing === undefined && poolOf(entry.knex) !== undefined)
        this.#close(entry, 'shutdown');
    }
    // A pool revived by a late builder while others closed is closed too.
    while (this.#closing.size > 0) await Promise.all([...this.#closing]);
  }

  #createPool(key: string, tenant: TenantRecord, placement: ResolvedTenantDatabase): PoolEntry {
    const credentials = this.#credentials;
    const defaults = this.#defaults;
    const base = this.#connection;
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
      connection: async () =>
        tenantConnectionConfig(
          base,
          placement,
          placement.passwordRef !== undefined
            ? await credentials(placement.passwordRef, tenant)
            : defaults.password,
          { connectionTimeoutMillis: connectTimeout, application_name: `tenantry:${tenant.id}` },
        ),
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
      scope: Object.freeze({ kind: 'tenant', id: tenant.id, record: tenant }),
      knex,
      lastUsed: Date.now(),
      pending: 0,
      borrowed: 0,
      invalidated: false,
      closing: undefined,
      abort: new AbortController(),
      onClosed: [],
    };
    this.#instrument(entry);
    for (const { event, listener } of this.#knexListeners) knex.on(event, listener);
    return entry;
  }

  // Knex has no hook around opening/closing a physical connection or lending
  // one out, so the client instance's methods are wrapped: a budget slot is
  // taken before a connection is opened and given back exactly once when it
  // is closed, and the manager counts the acquisitions and loans of each
  // pool itself (tarn's own counters briefly show neither while it
  // validates a connection, which is how evictions used to abort queries).
  #instrument(entry: PoolEntry): void {
    const { knex, tenantId } = entry;
    type Conn = { [RELEASED]?: boolean };
    const budget = this.#budget;
    const logger = this.#logger;
    const telemetry = this.#telemetry;
    const timeout = this.#options.acquireTimeoutMillis;
    const perTenant = this.#options.maxConnectionsPerTenant;
    hookConnections<Conn>(knex, {
      openConnection: async (openRaw) => {
        const queued = budget.waiting;
        const slot = budget.acquire(entry.abort.signal);
        // acquire() queues synchronously when no slot is free: that is a budget wait.
        if (telemetry !== undefined && budget.waiting > queued) {
          const started = performance.now();
          await slot;
          telemetry.poolWait(tenantId, 'budget', performance.now() - started);
        } else {
          await slot;
        }
        try {
          // Opened outside every tenant scope: the socket's later callbacks must not run as this request.
          return await outsideTenantScopes(openRaw);
        } catch (error) {
          budget.release();
          logger.warn('tenant database connection failed', {
            tenantId,
            code: (error as { code?: unknown }).code,
          });
          throw unavailable(tenantId, error);
        }
      },
      closeConnection: async (connection, closeRaw) => {
        if (connection[RELEASED]) return closeRaw(connection);
        connection[RELEASED] = true;
        this.#releasing += 1;
        try {
          await closeRaw(connection);
        } finally {
          // Given back only once the connection is closed, so the server never
          // sees more than the budget.
          this.#releasing -= 1;
          budget.release();
        }
      },
      lend: async (acquire) => {
        // Counted first, so no eviction can pick this pool from here on.
        entry.pending += 1;
        try {
          // A builder handed out before its pool closed (idle, budget pressure,
          // cap) still runs: the pool is reopened for it.
          while (entry.closing !== undefined || poolOf(knex) === undefined) {
            if (entry.closing !== undefined) {
              await entry.closing;
              continue;
            }
            if (this.#destroyed) throw unavailable(tenantId, new Error('pool manager shut down'));
            entry.abort = new AbortController();
            reopenPool(knex);
            this.#revived(entry);
          }
          entry.lastUsed = Date.now();
          // The pool's connections are lent out or promised to the acquisitions
          // queued before this one (`pending` counts this one too): it waits.
          const started =
            telemetry !== undefined && entry.borrowed + entry.pending - 1 >= perTenant
              ? performance.now()
              : undefined;
          const connection = await acquire();
          if (started !== undefined) {
            telemetry?.poolWait(tenantId, 'pool', performance.now() - started);
          }
          entry.borrowed += 1;
          return connection;
        } catch (error) {
          if ((error as { name?: unknown }).name === 'KnexTimeoutError') {
            telemetry?.poolRefused(tenantId, 'TENANT_UNAVAILABLE');
            throw new TenantUnavailableError(
              `Cannot get a database connection for tenant "${tenantId}" because its pool and the ` +
                `connection budget stayed busy for ${timeout} ms. Retry later.`,
              { cause: error },
            );
          }
          if (this.#destroyed && !(error instanceof TenancyError)) {
            throw new TenantUnavailableError(
              `Cannot reach the database of tenant "${tenantId}" because the pool manager is shut down.`,
              { cause: error },
            );
          }
          // Any other failure to get a connection means this tenant cannot be served now: 503.
          throw unavailable(tenantId, error);
        } finally {
          entry.pending -= 1;
          this.#closeIfDrained(entry);
        }
      },
      giveBack: async (connection, release) => {
        try {
          await release(connection);
        } finally {
          entry.borrowed -= 1;
          entry.lastUsed = Date.now();
          this.#closeIfDrained(entry);
          // Someone waits for a budget slot: this pool may just have become closable.
          if (budget.waiting > 0 && !this.#isBusy(entry)) this.#relievePressure();
        }
      },
      send: async (connection, statement, query) => {
        if (telemetry !== undefined) {
          const s = statement as { method?: unknown; sql?: unknown };
          telemetry.statement(entry.scope, 'database', s.method, s.sql);
        }
        try {
          return await query(connection, statement);
        } catch (error) {
          throw isUnavailable(error) ? unavailable(tenantId, error) : error;
        }
      },
    });
  }

  #list(entry: PoolEntry): void {
    this.#listed.delete(entry.seq);
    this.#listed.set(entry.seq, entry);
    entry.lastUsed = Date.now();
  }

  // A pool reopened for a late builder is handed out again unless its
  // placement has a newer pool or it was closed on purpose.
  #revived(entry: PoolEntry): void {
    this.#live.add(entry);
    if (entry.invalidated || this.#byKey.has(entry.key)) return;
    this.#byKey.set(entry.key, entry);
    this.#list(entry);
    this.#enforceCap();
  }

  // maxPools is a soft cap: the least recently used pools stop being handed
  // out at once, but each closes only when no query waits for or holds one
  // of its connections. The check waits for the current turn of the event
  // loop: builders handed out in it (a burst of requests) have not asked for
  // their connection yet, and closing their pool under them would make each
  // reopen it, evicting another in turn (a burst over 60 tenants with a cap
  // of 20 used to close 700 pools for 360 queries).
  #enforceCap(): void {
    for (const entry of this.#listed.values()) {
      if (this.#listed.size <= this.#options.maxPools) return;
      this.#listed.delete(entry.seq);
      setImmediate(() => {
        if (!this.#destroyed) this.#closeIfDrained(entry, 'pool cap');
      });
    }
  }

  #invalidate(entry: PoolEntry, reason: string): void {
    entry.invalidated = true;
    this.#listed.delete(entry.seq);
    if (this.#byKey.get(entry.key) === entry) this.#byKey.delete(entry.key);
    this.#closeIfDrained(entry, reason);
  }

  #isBusy(entry: PoolEntry): boolean {
    return entry.pending > 0 || entry.borrowed > 0;
  }

  #closeIfDrained(entry: PoolEntry, reason = 'drained'): void {
    if (
      !this.#listed.has(entry.seq) &&
      !this.#isBusy(entry) &&
      entry.closing === undefined &&
      poolOf(entry.knex) !== undefined
    ) {
      this.#close(entry, reason);
    }
  }

  // The sweeper: listed pools unused for poolIdleMillis are closed; unlisted
  // idle pools are closed whatever their age (a safety net).
  #closeIdlePools(): void {
    const now = Date.now();
    for (const entry of [...this.#live]) {
      if (this.#isBusy(entry) || entry.closing !== undefined) continue;
      if (this.#listed.has(entry.seq)) {
        if (now - entry.lastUsed < this.#options.poolIdleMillis) continue;
        this.#listed.delete(entry.seq);
      }
      if (poolOf(entry.knex) !== undefined) this.#close(entry, 'idle');
      else if (!this.#listed.has(entry.seq)) this.#forget(entry);
    }
  }

  // Someone waits for a budget slot: free as many slots as there are
  // waiters (minus connections already closing), first by closing idle pools
  // (unlisted ones, then least recently used), then by closing the idle
  // connections of busy pools. The freed slots go to the waiters in order.
  #relievePressure(): void {
    let needed = this.#budget.waiting - this.#releasing;
    if (needed <= 0) return;
    const candidates = [
      ...[...this.#live].filter((entry) => !this.#listed.has(entry.seq)),
      ...this.#listed.values(),
    ];
    for (const entry of candidates) {
      if (needed <= 0) return;
      const pool = poolOf(entry.knex);
      if (this.#isBusy(entry) || entry.closing !== undefined || pool === undefined) continue;
      const free = pool.numFree();
      if (free === 0) continue;
      needed -= free;
      this.#listed.delete(entry.seq);
      this.#close(entry, 'budget pressure');
    }
    for (const entry of candidates) {
      if (needed <= 0) return;
      const pool = poolOf(entry.knex);
      if (entry.closing !== undefined || pool === undefined) continue;
      const free = pool.numFree();
      if (free === 0) continue;
      needed -= free;
      closeIdleConnections(pool);
    }
  }

  #whenClosed(entry: PoolEntry): Promise<void> {
    if (poolOf(entry.knex) === undefined && entry.closing === undefined) return Promise.resolve();
    return new Promise((resolve) => entry.onClosed.push(resolve));
  }

  #forget(entry: PoolEntry): void {
    this.#live.delete(entry);
    if (this.#byKey.get(entry.key) === entry) this.#byKey.delete(entry.key);
    for (const resolve of entry.onClosed.splice(0)) resolve();
  }

  #close(entry: PoolEntry, reason: string): void {
    // A closing pool is never handed out: the tenant's next builder gets a new one.
    if (this.#byKey.get(entry.key) === entry) this.#byKey.delete(entry.key);
    this.#logger.debug('closing tenant pool', { tenantId: entry.tenantId, reason });
    // Only connection attempts nobody waits for are left (their acquisitions
    // were served by other connections): stop them waiting for the budget.
    entry.abort.abort();
    const closing: Promise<void> = entry.knex
      .destroy()
      .catch((error: unknown) =>
        this.#logger.warn('closing tenant pool failed', { tenantId: entry.tenantId, error }),
      )
      .finally(() => {
        this.#closing.delete(closing);
        entry.closing = undefined;
        if (poolOf(entry.knex) === undefined && !this.#listed.has(entry.seq)) this.#forget(entry);
      });
    entry.closing = closing;
    this.#closing.add(closing);
  }
}
