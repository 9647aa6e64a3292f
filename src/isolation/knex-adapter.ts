/**
 * The one door to knex's private internals (knex 3.3.x, the peer range).
 * Every touch of something knex does not document is here, with a comment
 * saying what it is and why it is needed; the rest of src/isolation/ talks
 * to knex through these functions and types. {@link checkKnexInternals}
 * verifies each touch when a TenantKnex is created, so a knex upgrade that
 * moves one fails at start-up with a message naming it. And whatever the
 * rewrite sees or misses, the final-SQL verifier is the authority on what is
 * sent: a broken touch can only turn into refusals, never unscoped SQL.
 *
 * Statement records (`compiler.single`, `compiler.grouped`, builder
 * `_statements`) are read and copied by the rewrite through the types below;
 * their shapes are pinned by the start-up probe (scoped-knex.ts), which
 * compiles each statement kind and requires the verifier to accept it.
 */
import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { TenancyConfigError } from '../errors';

/** A Knex statement record (`builder._statements[i]`, `compiler.grouped[k][i]`): knex has no types for it. */
export interface KnexStatement {
  grouping?: string;
  type?: string;
  value?: unknown;
  bool?: string;
  [key: string]: unknown;
}

/** The parts of a knex JoinClause the rewrite reads. */
export interface KnexJoin {
  table: unknown;
  joinType: string;
  schema?: string;
  clauses: KnexStatement[];
}

/** The parts of a knex QueryBuilder the rewrite reads. */
export interface KnexBuilder {
  _single: Record<string, unknown>;
  _statements: KnexStatement[];
  _method?: string;
  clone(): KnexBuilder;
  as(alias: string): KnexBuilder;
  select(...columns: unknown[]): KnexBuilder;
  from(table: unknown): KnexBuilder;
  where(column: string, value: unknown): KnexBuilder;
}

/** The parts of a knex QueryCompiler the rewrite reads and replaces (its own copies, never the builder's). */
export interface KnexCompiler {
  method: string;
  /** The builder this compiler was made for (knex sets it in the constructor). */
  builder: KnexBuilder;
  single: Record<string, unknown>;
  grouped: Record<string, KnexStatement[] | undefined>;
  toSQL(method?: string, tz?: unknown): unknown;
  client: { queryBuilder(): KnexBuilder };
}

/** A compiled statement as knex hands it to the client (`toSQL()` output, enriched in place). */
export interface KnexCompiledStatement {
  sql?: unknown;
  bindings?: unknown;
  options?: unknown;
  response?: unknown;
}

/** The knex Runner methods tenantry wraps. */
export interface KnexRunner {
  run(...args: unknown[]): unknown;
  stream(...args: unknown[]): unknown;
  /**
   * Internal: acquires the connection, then calls `callback(runner, params)`,
   * which compiles the statement (`builder.toSQL()`) and sends it synchronously.
   */
  ensureConnection(
    callback: (runner: unknown, params: unknown) => unknown,
    params?: unknown,
  ): unknown;
}

/** The parts of a knex Client the scoped subclass overrides or calls. */
export interface KnexClient extends EventEmitter {
  config: Record<string, unknown>;
  queryBuilder(): KnexBuilder;
  queryCompiler(builder: KnexBuilder, bindings?: unknown): KnexCompiler;
  raw(...args: unknown[]): { sql?: unknown; toSQL(...args: unknown[]): unknown };
  runner(builder: unknown): unknown;
  schemaBuilder(): unknown;
  acquireConnection(): Promise<unknown>;
  /** Sends one statement: positions its bindings, emits 'query', calls `_query`. */
  query(connection: unknown, statement: KnexCompiledStatement | string): Promise<unknown>;
  stream(
    connection: unknown,
    statement: KnexCompiledStatement | string,
    ...rest: unknown[]
  ): unknown;
  /** The dialect's `?` -> `$n` rewrite: what PostgreSQL receives. */
  positionBindings(sql: string): string;
  /** Internal: the dialect's send of one statement on a connection. */
  _query(connection: unknown, statement: KnexCompiledStatement): Promise<unknown>;
  /** Internal: the dialect's streaming send. */
  _stream(
    connection: unknown,
    statement: KnexCompiledStatement,
    ...rest: unknown[]
  ): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  destroy(callback?: unknown): Promise<void>;
}

/** A knex dialect client class. */
export type KnexClientClass = new (...args: never[]) => KnexClient;

/** A dialect's query compiler class: `new Compiler(client, builder, bindings)`. */
export type KnexCompilerClass = new (...args: unknown[]) => KnexCompiler;

// Touch 1 — knex has no public factory for "a Knex around this client";
// make-knex is what knex itself uses for transactions.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const makeKnex = require('knex/lib/knex-builder/make-knex') as unknown;

// Touch 2 — the installed knex's version, for messages (knex exports no VERSION).
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const KNEX_VERSION = String((require('knex/package.json') as { version?: unknown }).version);

/** The dialect client class of a Knex (touch 3: `knex.client.constructor`). */
export function dialectClientClass(knex: Knex): KnexClientClass {
  return knex.client.constructor as KnexClientClass;
}

/**
 * A Knex around `client`, an instance of a subclass of the base Knex's
 * dialect client that shares the base's pool and settings (touch 1, and
 * touch 4: the client's own fields are copied, and its EventEmitter state
 * reset so it has listeners of its own). The events a user listens to on the
 * base Knex (`query`, `query-error`, ...) are forwarded to it.
 */
export function knexAroundClient(ClientClass: KnexClientClass, base: Knex): Knex {
  const baseClient = base.client as KnexClient;
  const client = Object.create(ClientClass.prototype as object) as KnexClient &
    Record<string, unknown>;
  Object.assign(client, baseClient);
  // Reset by assignment, never `delete`: deleting a property puts the client
  // in V8's slow (dictionary) mode, and knex reads client properties on every
  // statement.
  client._events = undefined;
  client._eventsCount = 0;
  EventEmitter.call(client);
  for (const event of ['start', 'query', 'query-error', 'query-response']) {
    client.on(event, (...args: unknown[]) => baseClient.emit(event, ...args));
  }
  return (makeKnex as (client: unknown) => Knex)(client);
}

/**
 * The dialect's compiler class of `compiler` subclassed once, its `toSQL`
 * replaced by `toSQL(original)` (touch 5: `compiler.constructor` and its
 * prototype's toSQL), or undefined when the compiler is not what knex 3.3
 * makes (then the caller instruments that one compiler instead).
 */
export function subclassCompiler(
  compiler: KnexCompiler,
  builder: KnexBuilder,
  toSQL: (
    compiler: KnexCompiler,
    method: string | undefined,
    tz: unknown,
    original: (this: KnexCompiler, method?: string, tz?: unknown) => unknown,
  ) => unknown,
): KnexCompilerClass | undefined {
  const Base = compiler.constructor as KnexCompilerClass;
  if (compiler.builder !== builder || typeof Base.prototype.toSQL !== 'function') return undefined;
  const original = Base.prototype.toSQL as (
    this: KnexCompiler,
    method?: string,
    tz?: unknown,
  ) => unknown;
  return class ScopedQueryCompiler extends Base {
    override toSQL(method?: string, tz?: unknown): unknown {
      return toSQL(this, method, tz, original);
    }
  };
}

/**
 * Runs the compile-and-send step of one execution inside `around` (touch 6:
 * the runner's internal `ensureConnection(callback)`, whose callback compiles
 * and sends synchronously). One runner per execution, so the wrapper gives
 * each execution its own scope without a slot on the shared builder.
 */
export function aroundRunnerCompile(runner: KnexRunner, around: <T>(fn: () => T) => T): void {
  const ensureConnection = runner.ensureConnection;
  runner.ensureConnection = function ensureConnectionInScope(callback, params) {
    return ensureConnection.call(
      this,
      (r: unknown, p: unknown) => around(() => callback(r, p)),
      params,
    );
  };
}

/**
 * Verifies every touch above on `base` (a fresh runner and compiler of its
 * client), throwing TENANCY_CONFIG_INVALID naming the first one that is gone.
 */
export function checkKnexInternals(base: Knex): void {
  const missing = (what: string): never => {
    throw new TenancyConfigError(
      `Cannot start the tenant-scoped Knex because knex ${KNEX_VERSION} no longer has ${what}, which ` +
        "tenantry's isolation engine hooks. Use a knex version in tenantry's peer range.",
    );
  };
  if (typeof makeKnex !== 'function') missing('knex/lib/knex-builder/make-knex');
  const client = base.client as Partial<KnexClient & KnexPoolClient<object>> & {
    constructor?: unknown;
  };
  if (typeof client.constructor !== 'function') missing('a dialect client class');
  for (const method of [
    'queryBuilder',
    'queryCompiler',
    'raw',
    'runner',
    'acquireConnection',
    'query',
    'stream',
    'positionBindings',
    '_query',
    '_stream',
    'acquireRawConnection',
    'destroyRawConnection',
    'releaseConnection',
    'initializePool',
  ] as const) {
    if (typeof client[method] !== 'function') missing(`Client#${method}()`);
  }
  // The verifier parses what PostgreSQL receives: `?` numbered as `$n`.
  if (
    (client.positionBindings as (sql: string) => string).call(client, 'select ?') !== 'select $1'
  ) {
    missing('a Client#positionBindings() that numbers ? as $1');
  }
  const builder = (client.queryBuilder as () => KnexBuilder).call(client);
  if (!Array.isArray(builder._statements) || typeof builder._single !== 'object') {
    missing('QueryBuilder#_statements/_single');
  }
  const runner = (client.runner as (b: unknown) => Partial<KnexRunner>).call(client, builder);
  if (typeof runner.ensureConnection !== 'function') missing('Runner#ensureConnection()');
  const compiler = (
    client.queryCompiler as (b: KnexBuilder) => Partial<KnexCompiler> & { constructor?: unknown }
  ).call(client, builder);
  if (compiler.builder !== builder) missing('QueryCompiler#builder');
  if (typeof compiler.single !== 'object' || typeof compiler.grouped !== 'object') {
    missing('QueryCompiler#single/grouped');
  }
}

// ---- database mode: one tenant pool's connections ---------------------------

/** The parts of a tarn pool (knex's pool) database mode reads. */
export interface KnexPool {
  numFree(): number;
  idleTimeoutMillis: number;
  check(): void;
}

/**
 * What database mode does around one tenant Knex's connections. Each hook
 * gets the client's original method (bound) to call.
 */
export interface KnexConnectionHooks<C extends object> {
  openConnection(original: () => Promise<C>): Promise<C>;
  closeConnection(connection: C, original: (connection: C) => Promise<void>): Promise<void>;
  lend(original: () => Promise<unknown>): Promise<unknown>;
  giveBack(connection: unknown, original: (connection: unknown) => Promise<void>): Promise<void>;
  send(
    connection: unknown,
    statement: unknown,
    original: (connection: unknown, statement: unknown) => Promise<unknown>,
  ): Promise<unknown>;
}

interface KnexPoolClient<C> {
  acquireRawConnection(): Promise<C>;
  destroyRawConnection(connection: C): Promise<void>;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  initializePool(): void;
  pool?: KnexPool;
  _query(connection: unknown, statement: unknown): Promise<unknown>;
}

/**
 * Wraps a tenant Knex's connection life cycle (touch 7: the client
 * instance's `acquireRawConnection`, `destroyRawConnection`,
 * `acquireConnection`, `releaseConnection` and `_query`): knex has no hook
 * around opening or closing a physical connection or lending one out.
 */
export function hookConnections<C extends object>(knex: Knex, hooks: KnexConnectionHooks<C>): void {
  const client = knex.client as KnexPoolClient<C>;
  const openRaw = client.acquireRawConnection.bind(client);
  const closeRaw = client.destroyRawConnection.bind(client);
  const acquire = client.acquireConnection.bind(client);
  const release = client.releaseConnection.bind(client);
  const query = client._query.bind(client);
  client.acquireRawConnection = () => hooks.openConnection(openRaw);
  client.destroyRawConnection = (connection) => hooks.closeConnection(connection, closeRaw);
  client.acquireConnection = () => hooks.lend(acquire);
  client.releaseConnection = (connection) => hooks.giveBack(connection, release);
  client._query = (connection, statement) => hooks.send(connection, statement, query);
}

/** The Knex's pool, or undefined while it is closed (touch 8: `client.pool`). */
export function poolOf(knex: Knex): KnexPool | undefined {
  return (knex.client as KnexPoolClient<object>).pool;
}

/** Opens a closed Knex's pool again (touch 9: `client.initializePool()`, what knex calls on first use). */
export function reopenPool(knex: Knex): void {
  (knex.client as KnexPoolClient<object>).initializePool();
}

/**
 * Closes the pool's idle connections now (touch 10: tarn has no call for
 * that; its reaper `check()` closes those idle longer than
 * `idleTimeoutMillis`, so it runs once with 0).
 */
export function closeIdleConnections(pool: KnexPool): void {
  const idleTimeout = pool.idleTimeoutMillis;
  pool.idleTimeoutMillis = 0;
  try {
    pool.check();
  } finally {
    pool.idleTimeoutMillis = idleTimeout;
  }
}

// ---- connections outside the pool, and broken ones ----------------------------

/**
 * A physical connection of the Knex outside its pool, and how to close it
 * (touch 11: the client's `acquireRawConnection`/`destroyRawConnection`):
 * for session state that must never be lent to a request (LISTEN).
 */
export function dedicatedConnection<C>(knex: Knex): {
  open(): Promise<C>;
  close(connection: C): Promise<void>;
} {
  const client = knex.client as KnexPoolClient<C>;
  return {
    open: () => client.acquireRawConnection(),
    close: (connection) => client.destroyRawConnection(connection),
  };
}

/**
 * Marks a pooled connection broken so knex discards it instead of lending it
 * again (touch 12: knex's `__knex__disposed` flag, which its pool validation
 * reads).
 */
export function discardConnection(connection: unknown, reason: unknown): void {
  (connection as { __knex__disposed?: unknown }).__knex__disposed = reason;
}

const OPENS_OUTSIDE = Symbol('tenantry.opensConnectionsOutside');

/**
 * Makes the Knex's pool open its physical connections inside `outside`
 * (touch 13: the client's `acquireRawConnection`, which the pool's `create`
 * calls on the client it belongs to). Idempotent per client: several
 * TenantKnex instances may share one base Knex.
 */
export function openConnectionsOutside(knex: Knex, outside: <T>(fn: () => T) => T): void {
  const client = knex.client as KnexPoolClient<object> & { [OPENS_OUTSIDE]?: true };
  if (client[OPENS_OUTSIDE]) return;
  const open = client.acquireRawConnection;
  client.acquireRawConnection = function acquireRawConnectionOutsideScopes(this: unknown) {
    return outside(() => open.call(this));
  };
  client[OPENS_OUTSIDE] = true;
}
