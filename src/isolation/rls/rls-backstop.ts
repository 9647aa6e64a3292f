import { discardConnection } from '../knex-adapter';
import type { Knex } from 'knex';
import { TenancyConfigError, TenantScopeError } from '../../errors';
import type { TenancyLogger } from '../../logger';
import { connectionScope, describeScope, sameScope, type CapturedScope } from '../scope-capture';
import {
  SET_LOCAL_CONFIG,
  isMultiStatementRefusal,
  isOutsideTransactionOnly,
  withSetting,
  type KnexPgStatement,
  type PgClient,
  type SettingOrder,
} from './pipelined-setting';
import { DEFAULT_RLS_SETTING, assertRlsSetting } from './row-level-security';

/**
 * The RLS backstop's statement hook. Every statement carries its tenant in
 * the transaction it runs in (`set_config(setting, tenant, true)`, in the
 * same round trip): a single statement in its own implicit transaction, a
 * transaction right after its BEGIN and on every savepoint path. Nothing is
 * tracked per connection and nothing outlives a transaction, which is what
 * makes the backstop hold behind a transaction-mode pooler (PgBouncer).
 */
export interface RlsBackstop {
  /**
   * Sends `statement` on `connection` for `client` (the scoped client or a
   * transaction's copy of it): `send` is the client's own `_query`, given the
   * connection (or a view of it) to send on.
   */
  query(
    client: unknown,
    connection: unknown,
    statement: KnexPgStatement,
    send: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown>;
  /** The same for a stream (`send` is the client's own `_stream`). */
  stream(
    client: unknown,
    connection: unknown,
    statement: KnexPgStatement,
    send: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown>;
}

/** Options of {@link createRlsBackstop}. */
export interface RlsBackstopOptions {
  readonly tables: readonly string[];
  readonly setting: string | undefined;
  readonly onUnsafeRole: 'refuse' | 'warn' | undefined;
  readonly preparedSetting: boolean | undefined;
  readonly logger: TenancyLogger;
}

// The statements knex's transactions send (Transaction_PG), matched whole so a
// raw statement that merely starts like one is treated as a plain statement.
const BEGIN = /^\s*begin(?:\s+transaction(?:\s+[a-z ]+)?)?\s*;?\s*$/i;
const SAVEPOINT = /^\s*savepoint\s+"?[\w$]+"?\s*;?\s*$/i;
const ROLLBACK_TO = /^\s*rollback\s+to\s+(?:savepoint\s+)?"?[\w$]+"?\s*;?\s*$/i;
const RELEASE = /^\s*release\s+(?:savepoint\s+)?"?[\w$]+"?\s*;?\s*$/i;
const END = /^\s*(?:commit|rollback|end|abort)(?:\s+(?:work|transaction))?\s*;?\s*$/i;

/**
 * The scope each open knex transaction was opened in, by connection: its
 * statements run as that tenant, and a statement sent on it from another
 * scope is refused. Set by its BEGIN, dropped by its COMMIT or ROLLBACK.
 */
const transactionScopes = new WeakMap<object, CapturedScope>();

function valueOf(scope: CapturedScope): string {
  return scope.kind === 'tenant' ? scope.id : '';
}

function isTransacting(client: unknown): boolean {
  return (client as { transacting?: unknown } | null)?.transacting === true;
}

function sqlOf(statement: KnexPgStatement): string {
  return typeof statement.sql === 'string' ? statement.sql : '';
}

function hasBindings(statement: KnexPgStatement): boolean {
  return Array.isArray(statement.bindings) && statement.bindings.length > 0;
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
 * Runs the safety check and returns the statement hook. The tenant is always
 * sent as a bound parameter of `set_config()`, never spliced into SQL.
 */
export async function createRlsBackstop(
  base: Knex,
  options: RlsBackstopOptions,
): Promise<RlsBackstop> {
  const setting = assertRlsSetting(options.setting ?? DEFAULT_RLS_SETTING);
  const problems = await rlsRoleProblems(base, options.tables);
  if (problems.length > 0) {
    const message =
      `Cannot rely on the RLS backstop because ${problems.join('; ')}. Connect as a plain login role that ` +
      'does not own the tenant tables, and apply the policies with applyRowLevelSecurity().';
    if ((options.onUnsafeRole ?? 'refuse') === 'refuse') throw new TenancyConfigError(message);
    options.logger.error(message, { problems });
  }

  const prepared = options.preparedSetting === true;

  /** Sends with the setting pipelined, or (another driver) in a transaction block of its own. */
  const pipelined = (
    connection: unknown,
    value: string,
    order: SettingOrder,
    send: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown> => {
    const view = withSetting(connection, setting, value, order, prepared);
    if (view !== undefined) return send(view);
    return order === 'before'
      ? inOwnBlock(connection, setting, value, () => send(connection))
      : send(connection).then(async (result) => {
          await (connection as PgClient).query({
            text: SET_LOCAL_CONFIG,
            values: [setting, value],
          });
          return result;
        });
  };

  /** A statement on a knex transaction: always as the scope that opened it. */
  const inTransaction = (
    connection: unknown,
    sql: string,
    send: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown> => {
    const key = connection as object;
    const scope = connectionScope();
    if (BEGIN.test(sql)) {
      transactionScopes.set(key, scope);
      return pipelined(connection, valueOf(scope), 'after', send);
    }
    if (END.test(sql)) {
      transactionScopes.delete(key);
      return send(connection);
    }
    if (RELEASE.test(sql)) return send(connection);
    const opened = transactionScopes.get(key);
    if (opened === undefined) {
      return Promise.reject(
        new TenantScopeError(
          'Cannot run a statement on this transaction because tenantry did not see it begin, so its tenant ' +
            'is unknown. Open transactions with db.transaction() on the tenant-scoped Knex.',
        ),
      );
    }
    if (ROLLBACK_TO.test(sql)) return pipelined(connection, valueOf(opened), 'after', send);
    // Code with no scope (a lazily awaited builder, a callback that lost its
    // context) runs as the transaction's tenant; any other scope is refused.
    if (scope.kind !== 'none' && !sameScope(scope, opened)) {
      return Promise.reject(
        new TenantScopeError(
          `Cannot run a statement from ${describeScope(scope)} on a transaction opened under ` +
            `${describeScope(opened)} because a transaction runs as the tenant that opened it. ` +
            'Open a transaction inside the scope that uses it.',
        ),
      );
    }
    if (SAVEPOINT.test(sql)) return pipelined(connection, valueOf(opened), 'after', send);
    return send(connection);
  };

  return {
    query(client, connection, statement, send) {
      const sql = sqlOf(statement);
      if (isTransacting(client)) return inTransaction(connection, sql, send);
      // A raw COMMIT/ROLLBACK on a pooled connection: a setting ahead of it would fail in an aborted block.
      if (END.test(sql)) return send(connection);
      const value = valueOf(connectionScope());
      const sent = pipelined(connection, value, 'before', send);
      if (hasBindings(statement)) return sent;
      return sent.catch((error: unknown) => {
        // Raw SQL with several statements cannot use the extended protocol: PostgreSQL
        // refused it at Parse (nothing ran), so it runs in a transaction block of its own.
        if (isMultiStatementRefusal(error)) {
          return inOwnBlock(connection, setting, value, () => send(connection));
        }
        // VACUUM, DISCARD ALL, CREATE DATABASE, ...: refused before doing anything because
        // they cannot run inside a transaction, so they cannot carry a setting either. None
        // of them returns or writes table rows, so they run as sent.
        if (isOutsideTransactionOnly(error)) return send(connection);
        throw error;
      });
    },

    stream(client, connection, statement, send) {
      if (isTransacting(client)) return inTransaction(connection, sqlOf(statement), send);
      return pipelined(connection, valueOf(connectionScope()), 'before', send);
    },
  };
}

/**
 * Runs `run` inside a transaction block that carries the setting: BEGIN and
 * the setting, the statement, COMMIT (ROLLBACK on error). On a connection
 * already inside a block (raw BEGIN sent earlier) the setting is set in it.
 * A connection that cannot roll back is flagged for knex's pool to destroy.
 */
async function inOwnBlock(
  connection: unknown,
  setting: string,
  value: string,
  run: () => Promise<unknown>,
): Promise<unknown> {
  const client = connection as PgClient;
  const set = { text: SET_LOCAL_CONFIG, values: [setting, value] };
  if ((client.getTransactionStatus?.() ?? 'I') !== 'I') {
    await client.query(set);
    return run();
  }
  await client.query('begin');
  try {
    await client.query(set);
    const result = await run();
    await client.query('commit');
    return result;
  } catch (error) {
    await Promise.resolve(client.query('rollback')).catch((rollbackError: unknown) => {
      discardConnection(connection, rollbackError);
    });
    throw error;
  }
}
