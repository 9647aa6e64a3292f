import type { TenancyLoggerInput } from '../logger';
import type { TelemetryOption } from '../telemetry/tenancy-telemetry';
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
export type SharedTableOption =
  string | { readonly name: string; readonly schema?: string | undefined };

/** Which tables hold tenant data. */
export interface TenantTablesOption {
  /** Tables declared as tenant-scoped. Default: `[]`. */
  readonly tables?: readonly string[] | undefined;
  /**
   * Also treat every table of the `public` schema that has the tenant column
   * as tenant-scoped, read from the catalog on first use (row mode). Default: `false`.
   */
  readonly discover?: boolean | undefined;
}

/** Options of the PostgreSQL row-level-security backstop (row mode). */
export interface RlsOptions {
  /** Turn the backstop on. Default: `false` (when the object form is used: `true`). */
  readonly enabled?: boolean | undefined;
  /** The setting the policies read. Default: `app.tenant_id`. */
  readonly setting?: string | undefined;
  /**
   * What the start-up safety check does when the application role is a
   * superuser, has BYPASSRLS, or owns a tenant table (so RLS would not apply):
   * `refuse` makes every statement fail with TENANCY_CONFIG_INVALID, `warn`
   * logs an error and continues. Default: `refuse`.
   */
  readonly onUnsafeRole?: 'refuse' | 'warn' | undefined;
  /**
   * Bind the tenant setting to a named prepared statement (no parse and plan
   * per statement; a server connection that lacks it costs one resend, also
   * behind a transaction pooler) instead of parsing an unnamed one each time.
   * Leave it off when raw SQL could run `PREPARE`/`DEALLOCATE` on the same
   * database role (an injected raw statement could replace the named one for
   * later statements on that server connection). Through the tenant-scoped
   * Knex that is only possible with `allowRaw` (the final-SQL verifier refuses
   * PREPARE, DEALLOCATE and DISCARD otherwise). Default: `true` without
   * `allowRaw`, `false` with it.
   *
   * @example
   * ```ts
   * withTenancy(knex, { tenantTables: ['documents'], rls: { preparedSetting: true } });
   * ```
   */
  readonly preparedSetting?: boolean | undefined;
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
  /** The isolation mode; with `tiers`, the default tier of records that name none. Default: `row`. */
  readonly mode?: IsolationMode | undefined;
  /**
   * Serve each tenant on its own tier (tiered tenancy): a record's
   * `isolation.tier` (`row`, `schema` or `database`, else `mode`) picks the
   * engine of each statement, under the same verification as that mode
   * alone. RLS and `allowRaw` apply to the row tier only; `discover` is
   * refused (list `tenantTables`). Default: `false`.
   *
   * @example
   * ```ts
   * withTenancy(knex, { mode: 'row', tiers: true, tenantTables: ['documents'] });
   * ```
   */
  readonly tiers?: boolean | undefined;
  /**
   * The tenant tables: a list of names, or `{ tables, discover }`.
   * Default: `[]` (then `discover` must be on, or nothing is tenant-scoped and
   * every non-shared table is refused).
   */
  readonly tenantTables?: readonly string[] | TenantTablesOption | undefined;
  /**
   * Tables that are not tenant-scoped (reference data, the `tenants` table).
   * Default: `[]`.
   */
  readonly sharedTables?: readonly SharedTableOption[] | undefined;
  /**
   * What to do with a table that is neither a tenant table nor a shared one
   * (nor a CTE name): `refuse` throws UNSAFE_QUERY before any SQL is sent
   * (fail closed); `shared` treats it as shared. Default: `refuse`.
   */
  readonly unknownTables?: 'refuse' | 'shared' | undefined;
  /** The tenant column in row mode. Default: `tenant_id`. */
  readonly tenantColumn?: string | undefined;
  /** The row-level-security backstop (row mode): `true` or options. Default: off. */
  readonly rls?: boolean | RlsOptions | undefined;
  /**
   * Trust raw SQL without proof. Raw SQL (`knex.raw`, `whereRaw`,
   * `orderByRaw`, `raw('??', [col])`, ...) needs no option: a statement is
   * sent when its final SQL is proven tenant-safe, raw parts included. With
   * `allowRaw`, a statement holding raw SQL that the verifier refuses is
   * sent anyway, with a `raw_query_allowed` audit event; it is accepted only
   * together with the RLS backstop (`rls`), which then enforces the tenant
   * inside PostgreSQL. Default: `false`.
   */
  readonly allowRaw?: boolean | undefined;
  /**
   * Functions (besides PostgreSQL's built-in allow-list of functions that
   * cannot run SQL text or reach other tables) that statements on tenant
   * tables may call: names as PostgreSQL stores them, `name` or
   * `schema.name`. Declare only functions that compute on their arguments.
   * Default: `[]`.
   */
  readonly safeFunctions?: readonly string[] | undefined;
  /**
   * How many statement proofs to cache (one per distinct SQL text; in row
   * mode the text is the same for every tenant). `0` turns the cache off.
   * Default: `5000`.
   */
  readonly proofCacheSize?: number | undefined;
  /** Prefix of tenant schema names in schema mode. Default: `tenant_`. */
  readonly schemaPrefix?: string | undefined;
  /**
   * Where diagnostics go (refused statements at `warn`, with the clause and
   * table): a TenancyLogger, pino, bunyan, winston or console. Default: `silentLogger`.
   */
  readonly logger?: TenancyLoggerInput | undefined;
  /** Options of database mode. Default: none. */
  readonly database?: DatabaseIsolationOptions | undefined;
  /**
   * Tracing and metrics of every statement: a `tenantry.statement` (or
   * `tenantry.statement.refused`) event with the tenant on the active
   * OpenTelemetry span, and the `statement`/`refused`/`poolWait` counters of
   * its metrics. `false` turns the per-statement hook off. Default: tracing
   * with `tenancyTelemetry()`'s defaults (one check per statement when no
   * tracer is registered), no metrics.
   *
   * @example
   * ```ts
   * withTenancy(knex, { tenantTables: ['documents'], telemetry: tenancyTelemetry({ metrics }) });
   * ```
   */
  readonly telemetry?: TelemetryOption | undefined;
}
