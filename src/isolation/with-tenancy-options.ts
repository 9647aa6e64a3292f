import type { TenancyLogger } from '../logger';
import type { DatabaseIsolationOptions } from './database/database-tenant-knex';

/**
 * How tenants are kept apart:
 * - `row`: shared tables with a tenant column; every statement is scoped.
 * - `schema`: one PostgreSQL schema per tenant; every table reference is
 *   rewritten to the tenant's schema.
 * - `database`: one database (and pool) per tenant.
 */
export type IsolationMode = 'row' | 'schema' | 'database';

/**
 * A shared (non-tenant) table: a plain name (schema `public`) or a name with
 * the schema it lives in. In schema mode references are qualified with that
 * schema; in row mode the schema is only used for matching.
 */
export type SharedTableOption = string | { readonly name: string; readonly schema?: string };

/** Which tables hold tenant data. */
export interface TenantTablesOption {
  /** Tables declared as tenant-scoped. Default: `[]`. */
  readonly tables?: readonly string[];
  /**
   * Also treat every table of the `public` schema that has the tenant column
   * as tenant-scoped, read from the catalog on first use (row mode). Default: `false`.
   */
  readonly discover?: boolean;
}

/** Options of the PostgreSQL row-level-security backstop (row mode). */
export interface RlsOptions {
  /** Turn the backstop on. Default: `false` (when the object form is used: `true`). */
  readonly enabled?: boolean;
  /** The setting the policies read. Default: `app.tenant_id`. */
  readonly setting?: string;
  /**
   * What the start-up safety check does when the application role is a
   * superuser, has BYPASSRLS, or owns a tenant table (so RLS would not apply):
   * `refuse` makes every statement fail with TENANCY_CONFIG_INVALID, `warn`
   * logs an error and continues. Default: `refuse`.
   */
  readonly onUnsafeRole?: 'refuse' | 'warn';
  /**
   * Bind the tenant setting to a named prepared statement (no parse and plan
   * per statement; a server connection that lacks it costs one resend, also
   * behind a transaction pooler) instead of parsing an unnamed one each time.
   * Leave it off when raw SQL could run `PREPARE`/`DEALLOCATE` on the same
   * database role (an injected raw statement could replace the named one for
   * later statements on that server connection). Default: `false`.
   *
   * @example
   * ```ts
   * withTenancy(knex, { tenantTables: ['documents'], rls: { preparedSetting: true } });
   * ```
   */
  readonly preparedSetting?: boolean;
}

/**
 * Options of {@link withTenancy}.
 *
 * @example
 * ```ts
 * const options: WithTenancyOptions = {
 *   mode: 'row',
 *   tenantTables: ['documents', 'comments'],
 *   sharedTables: ['countries', 'tenants'],
 * };
 * ```
 */
export interface WithTenancyOptions {
  /** The isolation mode. Default: `row`. */
  readonly mode?: IsolationMode;
  /**
   * The tenant tables: a list of names, or `{ tables, discover }`.
   * Default: `[]` (then `discover` must be on, or nothing is tenant-scoped and
   * every non-shared table is refused).
   */
  readonly tenantTables?: readonly string[] | TenantTablesOption;
  /**
   * Tables that are not tenant-scoped (reference data, the `tenants` table).
   * Default: `[]`.
   */
  readonly sharedTables?: readonly SharedTableOption[];
  /**
   * What to do with a table that is neither a tenant table nor a shared one
   * (nor a CTE name): `refuse` throws UNSAFE_QUERY before any SQL is sent
   * (fail closed); `shared` treats it as shared. Default: `refuse`.
   */
  readonly unknownTables?: 'refuse' | 'shared';
  /** The tenant column in row mode. Default: `tenant_id`. */
  readonly tenantColumn?: string;
  /** The row-level-security backstop (row mode): `true` or options. Default: off. */
  readonly rls?: boolean | RlsOptions;
  /**
   * Allow raw SQL (`knex.raw`, `whereRaw`, `joinRaw`, `orderByRaw`, ...) in
   * statements that involve tenant tables. The tenant predicate is still
   * added, but the raw text itself is trusted. Each allowed statement emits a
   * `raw_query_allowed` audit event. Default: `false`.
   */
  readonly allowRaw?: boolean;
  /** Prefix of tenant schema names in schema mode. Default: `tenant_`. */
  readonly schemaPrefix?: string;
  /** Where diagnostics go. Default: `silentLogger`. */
  readonly logger?: TenancyLogger;
  /** Options of database mode. Default: none. */
  readonly database?: DatabaseIsolationOptions;
}
