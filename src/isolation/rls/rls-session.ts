import type { Knex } from 'knex';
import { TenancyConfigError } from '../../errors';
import type { TenancyLogger } from '../../logger';
import type { CapturedScope } from '../scope-capture';
import { sendWithSetting, type KnexPgStatement, type PipelineOutcome } from './pipelined-setting';
import { DEFAULT_RLS_SETTING, assertRlsSetting } from './row-level-security';

/**
 * Sets the tenant setting on pooled connections (RLS backstop). A checkout
 * binds the connection to the scope's tenant; the value itself travels with
 * the first statement sent on it (same round trip) when that can be done
 * safely, else in a `set_config` round trip just before it. Either way no
 * statement of a tenantry checkout runs before its tenant is set.
 */
export interface RlsSession {
  /**
   * Checks a connection out through `acquire` (the client's own checkout)
   * and binds it to the scope's tenant (or to none) before handing it over.
   */
  checkout(acquire: () => Promise<unknown>, scope: CapturedScope): Promise<unknown>;
  /**
   * Sends a statement on a connection from {@link checkout}: `send` is the
   * client's own `_query`, used as is once the connection carries its tenant.
   */
  query(
    connection: unknown,
    statement: KnexPgStatement,
    send: () => Promise<unknown>,
  ): Promise<unknown>;
  /** Sets any value still owed to the connection, in its own round trip (streams). */
  settle(connection: unknown): Promise<void>;
}

/** Options of {@link createRlsSession}. */
export interface RlsSessionOptions {
  readonly tables: readonly string[];
  readonly setting: string | undefined;
  readonly onUnsafeRole: 'refuse' | 'warn' | undefined;
  readonly logger: TenancyLogger;
}

interface PgConnection {
  query(config: { text: string; values: unknown[] }): Promise<unknown>;
}

/** A tarn pool, as knex clients share it. */
interface PoolLike {
  acquire(): { promise: Promise<unknown> };
  release(resource: unknown): boolean;
}

/**
 * Per shared pool: which tenantry settings each connection carries (only
 * non-empty values are recorded; {@link UNKNOWN} when a pipelined statement
 * left it in doubt), the value a tenantry checkout still owes a connection
 * (sent with its first statement), and whether the pool.acquire() now being
 * called is a tenantry checkout (which sets the value itself).
 */
interface PoolGuard {
  claimed: boolean;
  readonly carried: WeakMap<object, Map<string, string>>;
  readonly owed: WeakMap<object, Owed>;
  /** Set inside a transaction block: carried once that block commits. */
  readonly tentative: WeakMap<object, Owed>;
}

/** A setting value a connection is to carry. */
interface Owed {
  readonly setting: string;
  readonly value: string;
}

/**
 * Recorded when the setting may or may not have taken (the statement it was
 * pipelined with failed, or left a transaction block open that may yet roll
 * back). Never equal to a tenant id or '', so the next checkout sets it again
 * and any other borrower gets it cleared.
 */
const UNKNOWN = '\u0000unknown';

function record(guard: PoolGuard, connection: unknown, setting: string, value: string): void {
  const key = connection as object;
  let map = guard.carried.get(key);
  if (map === undefined) {
    map = new Map();
    guard.carried.set(key, map);
  }
  if (value === '') map.delete(setting);
  else map.set(setting, value);
}

const guards = new WeakMap<object, PoolGuard>();

async function setValue(
  guard: PoolGuard,
  connection: unknown,
  setting: string,
  value: string,
): Promise<void> {
  // Recorded as in doubt first: if the round trip fails, the connection is discarded anyway.
  record(guard, connection, setting, UNKNOWN);
  await (connection as PgConnection).query({
    text: 'select set_config($1, $2, false)',
    values: [setting, value],
  });
  record(guard, connection, setting, value);
}

// A connection whose setting could not be (re)set is never reused: knex's pool
// validation destroys connections flagged __knex__disposed.
function discard(pool: PoolLike, connection: unknown, error: unknown): never {
  (connection as { __knex__disposed?: unknown }).__knex__disposed = error;
  pool.release(connection);
  throw error;
}

/**
 * Wraps the shared pool's acquire() once: a connection still carrying a
 * tenant setting is cleared before any borrower that is not a tenantry
 * checkout (the base Knex, `unscoped()`, another instance) gets it. That is
 * what lets tenantry checkouts skip the reset on release.
 */
function guardPool(pool: PoolLike): PoolGuard {
  const existing = guards.get(pool);
  if (existing !== undefined) return existing;
  const guard: PoolGuard = {
    claimed: false,
    carried: new WeakMap(),
    owed: new WeakMap(),
    tentative: new WeakMap(),
  };
  const original = pool.acquire;
  pool.acquire = function guardedAcquire(this: PoolLike) {
    const pending = original.call(this);
    if (guard.claimed) {
      guard.claimed = false;
      return pending;
    }
    pending.promise = pending.promise.then(async (connection) => {
      guard.owed.delete(connection as object);
      guard.tentative.delete(connection as object);
      const map = guard.carried.get(connection as object);
      if (map === undefined || map.size === 0) return connection;
      try {
        for (const name of [...map.keys()]) await setValue(guard, connection, name, '');
      } catch (error) {
        discard(pool, connection, error);
      }
      return connection;
    });
    return pending;
  };
  guards.set(pool, guard);
  return guard;
}

/**
 * Tenant affinity: when this checkout is next in line, moves a free
 * connection that already carries `desired` to where tarn takes the next one
 * from (the end of its free list), so the `set_config` round trip is skipped
 * for tenants with a warm connection. Only a preference: every checkout still
 * checks and sets the value itself, so this can never hand a connection a
 * wrong tenant. Reads tarn's internal arrays and does nothing if their shape
 * is not the expected one.
 */
function preferCarrying(pool: PoolLike, guard: PoolGuard, setting: string, desired: string): void {
  const { free, pendingAcquires } = pool as { free?: unknown; pendingAcquires?: unknown };
  if (!Array.isArray(free) || !Array.isArray(pendingAcquires) || pendingAcquires.length > 0) return;
  const carries = (entry: unknown): boolean => {
    const resource = (entry as { resource?: unknown } | undefined)?.resource;
    if (typeof resource !== 'object' || resource === null) return false;
    return (guard.carried.get(resource)?.get(setting) ?? '') === desired;
  };
  const last = free.length - 1;
  if (last < 1 || carries(free[last])) return;
  for (let i = last - 1; i >= 0; i -= 1) {
    if (carries(free[i])) {
      [free[i], free[last]] = [free[last], free[i]];
      return;
    }
  }
}

/**
 * Start-up safety check: RLS does not apply to superusers and BYPASSRLS
 * roles, and (without FORCE) to table owners. Returns the problems found.
 */
export async function rlsRoleProblems(knex: Knex, tables: readonly string[]): Promise<string[]> {
  const role = (await knex.raw(
    'select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user',
  )) as { rows: Array<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }> };
  const problems: string[] = [];
  const me = role.rows[0];
  if (me?.rolsuper) problems.push(`role "${me.rolname}" is a superuser`);
  if (me?.rolbypassrls) problems.push(`role "${me?.rolname}" has BYPASSRLS`);
  const owned = (await knex.raw(
    `select c.relname, c.relrowsecurity, c.relforcerowsecurity,
            pg_get_userbyid(c.relowner) = current_user as owned
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' and c.relname = any(?)`,
    [tables as string[]],
  )) as {
    rows: Array<{
      relname: string;
      relrowsecurity: boolean;
      relforcerowsecurity: boolean;
      owned: boolean;
    }>;
  };
  for (const t of owned.rows) {
    if (t.owned) problems.push(`role owns tenant table "${t.relname}"`);
    if (!t.relrowsecurity || !t.relforcerowsecurity) {
      problems.push(`row level security is not enabled and forced on "${t.relname}"`);
    }
  }
  return problems;
}

/**
 * Runs the safety check and returns the per-checkout session. The setting
 * is always sent as a bound parameter of `set_config()`, never spliced into SQL.
 */
export async function createRlsSession(
  base: Knex,
  options: RlsSessionOptions,
): Promise<RlsSession> {
  const setting = assertRlsSetting(options.setting ?? DEFAULT_RLS_SETTING);
  const problems = await rlsRoleProblems(base, options.tables);
  if (problems.length > 0) {
    const message =
      `Cannot rely on the RLS backstop because ${problems.join('; ')}. Connect as a plain login role that ` +
      'does not own the tenant tables, and apply the policies with applyRowLevelSecurity().';
    if ((options.onUnsafeRole ?? 'refuse') === 'refuse') throw new TenancyConfigError(message);
    options.logger.error(message, { problems });
  }
  return {
    checkout(acquire, scope) {
      const pool = (base.client as { pool?: PoolLike }).pool;
      if (pool === undefined) return acquire(); // knex throws its own "Unable to acquire"
      const guard = guardPool(pool);
      const desired = scope.kind === 'tenant' ? scope.id : '';
      preferCarrying(pool, guard, setting, desired);
      let pending: Promise<unknown>;
      // knex's acquireConnection() calls pool.acquire() synchronously, so the
      // claim is consumed by exactly this checkout.
      guard.claimed = true;
      try {
        pending = acquire();
      } finally {
        guard.claimed = false;
      }
      return pending.then((connection) => {
        const key = connection as object;
        const map = guard.carried.get(key);
        guard.owed.delete(key);
        guard.tentative.delete(key);
        // Nothing to send when the connection already carries this tenant (or none);
        // otherwise the value is owed and goes out with the first statement.
        const bind = (): unknown => {
          if ((map?.get(setting) ?? '') !== desired) {
            guard.owed.set(key, { setting, value: desired } satisfies Owed);
          }
          return connection;
        };
        let others: string[] | undefined;
        for (const [name, value] of map ?? []) {
          if (name !== setting && value !== '') (others ??= []).push(name);
        }
        if (others === undefined) return bind();
        // Settings of another tenantry instance (another setting name) are cleared first.
        const clear = others;
        return (async () => {
          for (const name of clear) await setValue(guard, connection, name, '');
        })().then(bind, (error: unknown) => discard(pool, connection, error));
      });
    },

    query(connection, statement, send) {
      const guard = guardOf(base);
      if (guard === undefined) return send();
      const owed = takeOwed(guard, connection);
      if (owed === undefined) {
        const tentative = guard.tentative.get(connection as object);
        return tentative === undefined ? send() : watchBlock(guard, connection, tentative, send);
      }
      const settled = (outcome: PipelineOutcome): void => {
        // Only a success outside a transaction block is sure to stay set; inside
        // one (the statement was BEGIN) it stays only if the block commits.
        const sure = outcome.ok && outcome.transactionStatus === 'I';
        record(guard, connection, owed.setting, sure ? owed.value : UNKNOWN);
        if (outcome.ok && outcome.transactionStatus === 'T') {
          guard.tentative.set(connection as object, owed);
        }
      };
      // In doubt while in flight: a checkout that gets this connection before the
      // statement settles (a knex timeout without cancel releases it early) must set
      // its own value, queued behind this one, never trust the old one.
      record(guard, connection, owed.setting, UNKNOWN);
      const pipelined = sendWithSetting(connection, owed.setting, owed.value, statement, settled);
      if (pipelined !== undefined) return pipelined;
      return owe(guard, connection, owed).then(send);
    },

    async settle(connection) {
      const guard = guardOf(base);
      const owed = guard === undefined ? undefined : takeOwed(guard, connection);
      if (guard !== undefined && owed !== undefined) await owe(guard, connection, owed);
    },
  };
}

/** The guard of the pool `base` now uses, if a tenantry checkout ever guarded it. */
function guardOf(base: Knex): PoolGuard | undefined {
  const pool = (base.client as { pool?: PoolLike }).pool;
  return pool === undefined ? undefined : guards.get(pool);
}

/** The value a checkout still owes `connection`, removed: it is paid exactly once. */
function takeOwed(guard: PoolGuard, connection: unknown): Owed | undefined {
  const owed = guard.owed.get(connection as object);
  if (owed !== undefined) guard.owed.delete(connection as object);
  return owed;
}

/**
 * A statement inside the transaction block a value was set in: once the
 * block has ended, the value is carried if it ended in a COMMIT that
 * committed (an aborted block answers COMMIT with ROLLBACK), else in doubt.
 */
function watchBlock(
  guard: PoolGuard,
  connection: unknown,
  tentative: Owed,
  send: () => Promise<unknown>,
): Promise<unknown> {
  const after = (committed: boolean): void => {
    const status = (
      connection as { getTransactionStatus?: () => string | null }
    ).getTransactionStatus?.();
    if (status === 'T' || status === 'E') return; // still inside the block
    guard.tentative.delete(connection as object);
    record(guard, connection, tentative.setting, committed ? tentative.value : UNKNOWN);
  };
  return send().then(
    (result) => {
      const command = (result as { response?: { command?: unknown } } | undefined)?.response
        ?.command;
      after(command === 'COMMIT');
      return result;
    },
    (error: unknown) => {
      after(false);
      throw error;
    },
  );
}

// Pays an owed value in its own round trip. A connection that cannot take it
// is flagged for knex's pool to destroy when the statement's caller releases it.
async function owe(guard: PoolGuard, connection: unknown, owed: Owed): Promise<void> {
  try {
    await setValue(guard, connection, owed.setting, owed.value);
  } catch (error) {
    (connection as { __knex__disposed?: unknown }).__knex__disposed = error;
    throw error;
  }
}
