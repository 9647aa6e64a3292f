import type { Knex } from 'knex';
import { TenancyConfigError } from '../../errors';
import type { TenancyLogger } from '../../logger';
import type { CapturedScope } from '../scope-capture';
import { DEFAULT_RLS_SETTING, assertRlsSetting } from './row-level-security';

/** Sets and clears the tenant setting on pooled connections (RLS backstop). */
export interface RlsSession {
  /** On checkout: binds the connection to the scope's tenant (or to none). */
  enter(connection: unknown, scope: CapturedScope): Promise<void>;
  /** On release: clears the setting so the next borrower inherits nothing. */
  leave(connection: unknown): Promise<void>;
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
  // What each physical connection currently holds, to skip a round trip when nothing changes.
  const current = new WeakMap<object, string>();
  const set = async (connection: unknown, value: string): Promise<void> => {
    const key = connection as object;
    if (current.get(key) === value) return;
    current.delete(key); // unknown until the statement succeeds
    await (connection as PgConnection).query({
      text: 'select set_config($1, $2, false)',
      values: [setting, value],
    });
    current.set(key, value);
  };
  return {
    async enter(connection, scope) {
      await set(connection, scope.kind === 'tenant' ? scope.id : '');
    },
    async leave(connection) {
      await set(connection, '');
    },
  };
}
