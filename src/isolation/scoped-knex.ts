import type { Knex } from 'knex';
import { emitTenancyAudit } from '../context/audit';
import { auditedUnscoped } from './unscoped-access';
import { runWithTenant } from '../context/tenant-scope';
import { TenancyConfigError, TenancyError, UnsafeQueryError } from '../errors';
import { toTenancyLogger } from '../logger';
import type { KnexPgStatement } from './rls/pipelined-setting';
import { createRlsBackstop, type RlsBackstop } from './rls/rls-backstop';
import { DEFAULT_SCHEMA_PREFIX, tenantSchemaName } from './schema/tenant-schema-name';
import {
  captureScope,
  connectionScope,
  executionScope,
  outsideTenantScopes,
  runAsStatementScope,
  sameScope,
  withExecutionScope,
  type CapturedScope,
} from './scope-capture';
import { stampStatement, statementStamp } from './statement-stamp';
import {
  KNEX_VERSION,
  aroundRunnerCompile,
  checkKnexInternals,
  dialectClientClass,
  knexAroundClient,
  openConnectionsOutside,
  subclassCompiler,
  type KnexBuilder,
  type KnexClient,
  type KnexCompiler,
  type KnexCompilerClass,
  type KnexRunner,
} from './knex-adapter';
import { BUILT_SCOPE, ScopeEngine, compileScope } from './statement-scoper';
import { TableCatalog } from './table-catalog';
import { DEFAULT_PROOF_CACHE_SIZE, FinalSqlVerifier } from './verifier/final-sql-verifier';
import { loadSqlParser, sqlParserLoaded } from './verifier/sql-parser';
import { telemetryHooks } from '../telemetry/tenancy-telemetry';
import type { TenancyInfo, TenantKnex } from './tenant-knex';
import type { WithTenancyOptions } from './with-tenancy-options';

interface RawLike {
  sql?: unknown;
  toSQL(...args: unknown[]): unknown;
  [BUILT_SCOPE]?: CapturedScope;
}

interface ScopedTarget {
  [BUILT_SCOPE]?: CapturedScope;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Row or schema mode options after defaults. */
type ScopedOptions = WithTenancyOptions & { readonly mode: 'row' | 'schema' };

/**
 * Builds the row/schema-mode instance: a Knex around a per-instance subclass
 * of the base client's dialect class, sharing the base pool. The subclass
 * hooks `queryCompiler()` (so every builder the dialect compiles is seen:
 * subqueries, callbacks, unions, CTEs, streams, transactions), `queryBuilder()`
 * and `raw()` (to capture the tenant at build time) and `runner()` (to capture
 * it at execution time). Transactions create their client from
 * `client.constructor.prototype`, which is why this is a real subclass and not
 * an instance patch. The base Knex is untouched.
 */
export function createScopedKnex(
  base: Knex,
  options: ScopedOptions,
  startupProbe = true,
): TenantKnex {
  const mode = options.mode;
  const tenantColumn = options.tenantColumn ?? 'tenant_id';
  if (!IDENTIFIER.test(tenantColumn)) {
    throw new TypeError(
      `Cannot use tenantColumn "${tenantColumn}" because it is not a plain identifier.`,
    );
  }
  const prefix = options.schemaPrefix ?? DEFAULT_SCHEMA_PREFIX;
  tenantSchemaName({ id: 'probe' }, prefix); // validates the prefix at start-up
  const logger = toTenancyLogger(options.logger);
  // Tracing and metrics: undefined when nothing would be recorded, so the hot path skips it.
  const telemetry = telemetryHooks(options.telemetry);
  // A refusal reported by the final check is not reported again by the runner around it.
  const reported = new WeakSet<object>();
  const catalog = new TableCatalog(options);
  const tenantOption = options.tenantTables;
  const discover =
    tenantOption !== undefined && !Array.isArray(tenantOption)
      ? (tenantOption as { discover?: boolean }).discover === true
      : false;
  if (discover && mode !== 'row') {
    throw new TypeError(
      'Cannot discover tenant tables in schema mode because they live in per-tenant schemas. List tenantTables.',
    );
  }
  const rlsEnabled =
    options.rls === true || (typeof options.rls === 'object' && options.rls.enabled !== false);
  if (rlsEnabled && mode !== 'row') {
    throw new TypeError(
      'Cannot use the RLS backstop outside row mode. Turn rls off or use mode "row".',
    );
  }
  const allowRaw = options.allowRaw ?? false;
  if (allowRaw && !rlsEnabled) {
    throw new TypeError(
      'Cannot use allowRaw without the RLS backstop because allowRaw sends raw SQL that tenantry cannot prove ' +
        'tenant-safe. Remove allowRaw (raw SQL whose final statement is proven safe runs without it), or turn ' +
        'rls on so PostgreSQL enforces the tenant.',
    );
  }
  const safeFunctions = new Set<string>();
  for (const name of options.safeFunctions ?? []) {
    if (
      typeof name !== 'string' ||
      !/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(name)
    ) {
      throw new TypeError(
        `Cannot declare safe function "${String(name)}" because it is not a function name. Use "name" or "schema.name".`,
      );
    }
    safeFunctions.add(name);
  }

  const schemaCache = new Map<string, string>();
  let ready = !discover && !rlsEnabled;
  let readyPromise: Promise<void> | undefined;
  let rls: RlsBackstop | undefined;

  const schemaFor = (scope: CapturedScope & { kind: 'tenant' }): string => {
    const stored = scope.record.isolation?.schema;
    const key = `${scope.id}\u0000${stored ?? ''}`;
    let name = schemaCache.get(key);
    if (name === undefined) {
      name = tenantSchemaName(scope.record, prefix);
      if (schemaCache.size > 10_000) schemaCache.clear();
      schemaCache.set(key, name);
    }
    return name;
  };
  const verifier = new FinalSqlVerifier({
    mode,
    tenantColumn,
    tables: catalog.verifierTables(),
    isSafeFunction: (name) => safeFunctions.has(name),
    cacheSize: options.proofCacheSize ?? DEFAULT_PROOF_CACHE_SIZE,
    schemaFor,
  });
  void loadSqlParser().catch((error: unknown) => {
    logger.error('tenantry could not load the SQL parser; every statement will be refused', {
      error: error instanceof Error ? error.message : String(error),
    });
  });

  /**
   * The final check before anything is sent: the statement's final SQL is
   * proven tenant-safe for the scope it runs as, or refused.
   */
  const verifyStatement = (client: KnexClient, queried: KnexPgStatement | string): void => {
    const statement: KnexPgStatement = typeof queried === 'string' ? { sql: queried } : queried;
    const stamp = statementStamp(statement);
    const scope = stamp?.scope ?? executionScope() ?? connectionScope();
    try {
      if (typeof statement.sql !== 'string') {
        throw new UnsafeQueryError(
          'Cannot send a statement without SQL text because it cannot be proven tenant-safe.',
        );
      }
      const bindings = Array.isArray(statement.bindings)
        ? (statement.bindings as unknown[])
        : undefined;
      verifier.verify(statement.sql, bindings, scope, stamp?.conflict, client);
    } catch (error) {
      if (stamp?.trustRaw === true && error instanceof UnsafeQueryError) {
        // allowRaw (only with the RLS backstop): raw SQL sent without proof, audited.
        emitTenancyAudit({
          type: 'raw_query_allowed',
          reason: 'allowRaw',
          ...(scope.kind === 'tenant' ? { tenantId: scope.id } : {}),
          detail: { sql: statement.sql },
        });
        if (telemetry !== undefined)
          telemetry.statement(scope, mode, statement.method, statement.sql);
        return;
      }
      if (error instanceof TenancyError) {
        logger.warn('tenantry refused a statement', { code: error.code, reason: error.message });
        if (telemetry !== undefined) {
          reported.add(error);
          telemetry.statementRefused(scope, mode, error.code);
        }
      }
      throw error;
    }
    // After the try: a failing tracer is never taken for a refusal of the statement.
    if (telemetry !== undefined) telemetry.statement(scope, mode, statement.method, statement.sql);
  };

  const engine = new ScopeEngine({
    mode,
    catalog,
    tenantColumn,
    allowRaw,
    logger,
    isReady: () => ready,
    schemaFor,
  });

  const init = async (): Promise<void> => {
    if (discover) {
      // tenantry's own central tables (tenantry_tenant_migrations, tenantry_tenant_moves) carry a
      // tenant_id column too, but are read by tenantry itself, never through the scoped Knex.
      const result = (await base.raw(
        `select distinct c.table_name as name from information_schema.columns c
           join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
          where c.table_schema = 'public' and c.column_name = ? and t.table_type = 'BASE TABLE'
            and c.table_name not like 'tenantry\\_%'`,
        [tenantColumn],
      )) as { rows: Array<{ name: string }> };
      catalog.addDiscovered(result.rows.map((r) => r.name));
      verifier.clear();
      logger.debug('tenantry discovered tenant tables', { tables: catalog.tenantTables() });
    }
    if (rlsEnabled) {
      rls = await createRlsBackstop(base, {
        tables: catalog.tenantTables(),
        setting: typeof options.rls === 'object' ? options.rls.setting : undefined,
        onUnsafeRole: typeof options.rls === 'object' ? options.rls.onUnsafeRole : undefined,
        // Named only where no raw SQL can PREPARE under its name: the verifier refuses
        // PREPARE/DEALLOCATE/DISCARD unless allowRaw sends unproven SQL.
        preparedSetting:
          (typeof options.rls === 'object' ? options.rls.preparedSetting : undefined) ?? !allowRaw,
        logger,
      });
    }
    ready = true;
  };
  const ensureReady = (): Promise<void> => {
    if (ready) return Promise.resolve();
    readyPromise ??= init().catch((error: unknown) => {
      readyPromise = undefined; // retry on the next statement
      throw error;
    });
    return readyPromise;
  };

  // The start-up probe: compile probe statements through this knex version's
  // real compile path and prove them with the verifier. A knex upgrade that
  // changes what the rewrite hooks shows here, as a refusal to start.
  let probed = !startupProbe;
  let probePromise: Promise<void> | undefined;
  const ensureProbed = (): Promise<void> => {
    if (probed) return Promise.resolve();
    probePromise ??= loadSqlParser()
      .then(() => {
        runStartupProbe(base, mode);
        probed = true;
      })
      .catch((error: unknown) => {
        probePromise = undefined;
        throw error;
      });
    return probePromise;
  };

  checkKnexInternals(base);
  // The shared pool's sockets must not remember the scope of the request that opened them.
  openConnectionsOutside(base, outsideTenantScopes);
  let ScopedCompiler: KnexCompilerClass | undefined;
  const BaseClient = dialectClientClass(base);

  class ScopedClient extends BaseClient {
    override queryBuilder(): KnexBuilder {
      const builder = super.queryBuilder() as KnexBuilder & { [BUILT_SCOPE]?: CapturedScope };
      builder[BUILT_SCOPE] = compileScope() ?? captureScope();
      return builder;
    }

    override queryCompiler(builder: KnexBuilder, bindings?: unknown): KnexCompiler {
      if (ScopedCompiler !== undefined) return new ScopedCompiler(this, builder, bindings);
      const compiler = super.queryCompiler(builder, bindings);
      // The dialect's compiler class, subclassed once: its toSQL scopes the
      // statement, with no per-statement wrapper closure or own property.
      ScopedCompiler = subclassCompiler(compiler, builder, (c, method, tz, original) =>
        engine.compile(c, c.builder, method, tz, original),
      );
      engine.instrument(compiler, builder);
      return compiler;
    }

    override raw(...args: unknown[]): RawLike {
      const raw = super.raw(...args) as RawLike;
      const built = compileScope() ?? captureScope();
      raw[BUILT_SCOPE] = built;
      const original = raw.toSQL;
      raw.toSQL = function scopedRawToSQL(this: RawLike, ...rest: unknown[]): unknown {
        const out = original.apply(this, rest);
        // Inside a statement's compile it is a fragment of that statement.
        if (compileScope() === undefined) {
          // Awaited with no scope it runs as its build scope; from another scope the two conflict.
          const executed = executionScope() ?? captureScope();
          const scope = built.kind === 'none' ? executed : built;
          const conflict =
            built.kind !== 'none' && executed.kind !== 'none' && !sameScope(built, executed)
              ? executed
              : undefined;
          stampStatement(out, { scope, conflict, trustRaw: allowRaw });
        }
        return out;
      };
      return raw;
    }

    override runner(builder: unknown): unknown {
      const executed = captureScope();
      const built =
        typeof builder === 'object' && builder !== null
          ? (builder as ScopedTarget)[BUILT_SCOPE]
          : undefined;
      const runner = super.runner(builder) as KnexRunner;
      // The execution's scope reaches the compile through the runner itself (one
      // runner per execution), never through a slot on the shared builder.
      aroundRunnerCompile(
        runner,
        telemetry === undefined
          ? (fn) => withExecutionScope(executed, fn)
          : (fn) => {
              try {
                return withExecutionScope(executed, fn);
              } catch (error) {
                // Refused by the rewrite while compiling (no tenant scope, an unknown table...).
                if (error instanceof TenancyError && !reported.has(error)) {
                  reported.add(error);
                  telemetry.statementRefused(
                    executed.kind === 'none' && built !== undefined ? built : executed,
                    mode,
                    error.code,
                  );
                }
                throw error;
              }
            },
      );
      if (rlsEnabled && executed.kind === 'none' && built !== undefined && built.kind !== 'none') {
        // A lazily awaited builder: its connection checkout must carry the
        // tenant it was built for, not the empty scope of the awaiting code.
        const scope = built;
        const run = runner.run;
        const stream = runner.stream;
        runner.run = (...args) => runAsStatementScope(scope, () => run.apply(runner, args));
        runner.stream = (...args) => runAsStatementScope(scope, () => stream.apply(runner, args));
      }
      return runner;
    }

    override schemaBuilder(): unknown {
      if (captureScope().kind !== 'system') {
        throw new UnsafeQueryError(
          'Cannot run schema (DDL) statements through the tenant-scoped Knex. Use the base Knex for migrations.',
        );
      }
      return super.schemaBuilder();
    }

    override acquireConnection(): Promise<unknown> {
      // The hot path (start-up checks done) adds no promise hop per statement.
      if (ready && probed && sqlParserLoaded()) return super.acquireConnection();
      return Promise.all([ensureReady(), ensureProbed()]).then(() => super.acquireConnection());
    }

    // Every statement passes here before knex positions its bindings, emits
    // 'query' and sends it (transactions call this through their own wrapper):
    // the final check happens before anything is sent or logged as sent.
    override query(connection: unknown, statement: KnexPgStatement | string): Promise<unknown> {
      verifyStatement(this, statement);
      return super.query(connection, statement);
    }

    override stream(
      connection: unknown,
      statement: KnexPgStatement | string,
      ...rest: unknown[]
    ): unknown {
      verifyStatement(this, statement);
      return super.stream(connection, statement, ...rest);
    }

    // With RLS, every statement carries its tenant in its own transaction (same round trip).
    override _query(connection: unknown, statement: KnexPgStatement): Promise<unknown> {
      if (rls === undefined) return super._query(connection, statement);
      return rls.query(this, connection, statement, (c) => super._query(c, statement));
    }

    override _stream(
      connection: unknown,
      statement: KnexPgStatement,
      ...rest: unknown[]
    ): Promise<unknown> {
      if (rls === undefined) return super._stream(connection, statement, ...rest);
      return rls.stream(this, connection, statement, (c) => super._stream(c, statement, ...rest));
    }

    // The TenantKnex owns no pool in row and schema mode: it borrows the base
    // Knex's. destroy() releases only what it created (nothing to close), so
    // the user's own base Knex stays open until they destroy it themselves.
    override destroy(callback?: unknown): Promise<void> {
      if (typeof callback === 'function') (callback as () => void)();
      return Promise.resolve();
    }
  }

  const scoped = knexAroundClient(ScopedClient, base) as TenantKnex;
  const client = scoped.client as KnexClient;
  const info: TenancyInfo = Object.freeze({
    mode,
    tenantColumn,
    get tenantTables() {
      return Object.freeze(catalog.tenantTables());
    },
    get sharedTables() {
      return Object.freeze(catalog.sharedTables());
    },
    rls: rlsEnabled,
    ready: () => Promise.all([ensureReady(), ensureProbed()]).then(() => undefined),
  });
  Object.defineProperty(scoped, 'tenancy', { value: info, enumerable: true });
  Object.defineProperty(scoped, PROBE_CHECK, {
    value: (compiled: KnexPgStatement) => verifyStatement(client, compiled),
  });
  // The same reason check and audit event as the routing engines (the tenant, if any, of the caller's scope).
  Object.defineProperty(scoped, 'unscoped', { enumerable: true, value: auditedUnscoped(base) });
  return scoped;
}

/** Internal: the probe instance's final check of one compiled statement. */
const PROBE_CHECK: unique symbol = Symbol('tenantry.probeCheck');
const PROBE_TABLE = 'tenantry_probe';

/**
 * Compiles, in a probe tenant's scope, one statement of each kind through a
 * probe instance of this knex and mode, and requires the verifier to accept
 * each and to refuse an unscoped one. Throws TENANCY_CONFIG_INVALID saying
 * which knex version broke which step.
 */
function runStartupProbe(base: Knex, mode: 'row' | 'schema'): void {
  const probe = createScopedKnex(
    base,
    { mode, tenantTables: [PROBE_TABLE], telemetry: false },
    false,
  );
  const check = (probe as unknown as Record<symbol, (c: unknown) => void>)[PROBE_CHECK] as (
    compiled: unknown,
  ) => void;
  const version = KNEX_VERSION;
  const fail = (what: string, cause?: unknown): never => {
    throw new TenancyConfigError(
      `Cannot start the ${mode}-mode isolation engine because its start-up probe failed on knex ${version}: ` +
        `${what}. Use a knex version in tenantry's peer range.`,
      cause === undefined ? undefined : { cause },
    );
  };
  const statements: Array<[string, () => unknown]> = [
    ['select', () => probe(PROBE_TABLE).where({ id: 1 }).toSQL()],
    [
      'join',
      () => probe(PROBE_TABLE).join(`${PROBE_TABLE} as p2`, 'p2.id', `${PROBE_TABLE}.id`).toSQL(),
    ],
    ['insert', () => probe(PROBE_TABLE).insert({ id: 1 }).toSQL()],
    ['update', () => probe(PROBE_TABLE).where({ id: 1 }).update({ id: 2 }).toSQL()],
    ['delete', () => probe(PROBE_TABLE).where({ id: 1 }).del().toSQL()],
  ];
  runWithTenant('probe', () => {
    for (const [name, compile] of statements) {
      try {
        check(compile());
      } catch (error) {
        fail(`the verifier refused the scoped ${name}`, error);
      }
    }
    let refused = false;
    try {
      check(probe.raw(`select * from ${PROBE_TABLE}`).toSQL());
    } catch {
      refused = true;
    }
    if (!refused) fail('the verifier accepted an unscoped statement');
  });
}
