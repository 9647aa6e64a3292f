import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { emitTenancyAudit } from '../context/audit';
import { UnsafeQueryError } from '../errors';
import { silentLogger } from '../logger';
import type { KnexPgStatement } from './rls/pipelined-setting';
import { createRlsBackstop, type RlsBackstop } from './rls/rls-backstop';
import { DEFAULT_SCHEMA_PREFIX, tenantSchemaName } from './schema/tenant-schema-name';
import { captureScope, runAsStatementScope, type CapturedScope } from './scope-capture';
import {
  BUILT_SCOPE,
  EXECUTED_SCOPE,
  ScopeEngine,
  compileScope,
  scopedRawToSQL,
  type KnexBuilder,
  type KnexCompiler,
} from './statement-scoper';
import { TableCatalog } from './table-catalog';
import type { TenancyInfo, TenantKnex, UnscopedOptions } from './tenant-knex';
import type { WithTenancyOptions } from './with-tenancy-options';

// knex has no public factory for "a Knex around this client"; make-knex is
// what knex itself uses for transactions (knex 3.x, checked against 3.3).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const makeKnex = require('knex/lib/knex-builder/make-knex') as (client: unknown) => Knex;

/** The parts of a Knex client the scoped subclass overrides or calls. */
interface KnexClientLike extends EventEmitter {
  config: Record<string, unknown>;
  queryBuilder(): KnexBuilder;
  queryCompiler(builder: KnexBuilder, bindings?: unknown): KnexCompiler;
  raw(...args: unknown[]): RawLike;
  runner(builder: unknown): unknown;
  schemaBuilder(): unknown;
  acquireConnection(): Promise<unknown>;
  _query(connection: unknown, statement: KnexPgStatement): Promise<unknown>;
  _stream(connection: unknown, statement: KnexPgStatement, ...rest: unknown[]): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  destroy(callback?: unknown): Promise<void>;
}

interface RawLike {
  sql?: unknown;
  toSQL(...args: unknown[]): unknown;
  [BUILT_SCOPE]?: CapturedScope;
  [EXECUTED_SCOPE]?: CapturedScope | undefined;
}

interface ScopedTarget {
  [BUILT_SCOPE]?: CapturedScope;
  [EXECUTED_SCOPE]?: CapturedScope | undefined;
}

/** The knex Runner methods that start a statement. */
interface RunnerLike {
  run(...args: unknown[]): unknown;
  stream(...args: unknown[]): unknown;
}

type ClientConstructor = new (...args: never[]) => KnexClientLike;

/** A dialect's query compiler class: `new Compiler(client, builder, bindings)`. */
type CompilerConstructor = new (...args: unknown[]) => KnexCompiler;

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
export function createScopedKnex(base: Knex, options: ScopedOptions): TenantKnex {
  const mode = options.mode;
  const tenantColumn = options.tenantColumn ?? 'tenant_id';
  if (!IDENTIFIER.test(tenantColumn)) {
    throw new TypeError(
      `Cannot use tenantColumn "${tenantColumn}" because it is not a plain identifier.`,
    );
  }
  const prefix = options.schemaPrefix ?? DEFAULT_SCHEMA_PREFIX;
  tenantSchemaName({ id: 'probe' }, prefix); // validates the prefix at start-up
  const logger = options.logger ?? silentLogger;
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

  const schemaCache = new Map<string, string>();
  let ready = !discover && !rlsEnabled;
  let readyPromise: Promise<void> | undefined;
  let rls: RlsBackstop | undefined;

  const engine = new ScopeEngine({
    mode,
    catalog,
    tenantColumn,
    allowRaw,
    logger,
    isReady: () => ready,
    schemaFor: (scope) => {
      const stored = scope.record.isolation?.schema;
      const key = `${scope.id}\u0000${stored ?? ''}`;
      let name = schemaCache.get(key);
      if (name === undefined) {
        name = tenantSchemaName(scope.record, prefix);
        if (schemaCache.size > 10_000) schemaCache.clear();
        schemaCache.set(key, name);
      }
      return name;
    },
  });

  const init = async (): Promise<void> => {
    if (discover) {
      const result = (await base.raw(
        `select distinct c.table_name as name from information_schema.columns c
           join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
          where c.table_schema = 'public' and c.column_name = ? and t.table_type = 'BASE TABLE'`,
        [tenantColumn],
      )) as { rows: Array<{ name: string }> };
      catalog.addDiscovered(result.rows.map((r) => r.name));
      logger.debug('tenantry discovered tenant tables', { tables: catalog.tenantTables() });
    }
    if (rlsEnabled) {
      rls = await createRlsBackstop(base, {
        tables: catalog.tenantTables(),
        setting: typeof options.rls === 'object' ? options.rls.setting : undefined,
        onUnsafeRole: typeof options.rls === 'object' ? options.rls.onUnsafeRole : undefined,
        preparedSetting: typeof options.rls === 'object' ? options.rls.preparedSetting : undefined,
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

  let ScopedCompiler: CompilerConstructor | undefined;
  const BaseClient = base.client.constructor as ClientConstructor;
  const baseClient = base.client as KnexClientLike;

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
      const Base = compiler.constructor as CompilerConstructor;
      if (compiler.builder === builder && typeof Base.prototype.toSQL === 'function') {
        const original = Base.prototype.toSQL;
        ScopedCompiler = class ScopedQueryCompiler extends Base {
          override toSQL(method?: string, tz?: unknown): unknown {
            return engine.compile(this, this.builder, method, tz, original);
          }
        };
      }
      engine.instrument(compiler, builder);
      return compiler;
    }

    override raw(...args: unknown[]): RawLike {
      const raw = super.raw(...args);
      const built = compileScope() ?? captureScope();
      raw[BUILT_SCOPE] = built;
      const original = raw.toSQL;
      raw.toSQL = function scopedRawToSQL(this: RawLike, ...rest: unknown[]): unknown {
        // Inside a statement's compile it is a fragment: the statement's raw rule applies.
        if (compileScope() === undefined) {
          const scope = raw[EXECUTED_SCOPE] ?? captureScope();
          raw[EXECUTED_SCOPE] = undefined;
          engine.checkTopLevelRaw(typeof raw.sql === 'string' ? raw.sql : String(raw.sql), built);
          // Awaited with no scope it runs as its build scope; from another scope both must pass.
          if (scope.kind !== 'none' && built.kind !== scope.kind) {
            engine.checkTopLevelRaw(String(raw.sql), scope);
          }
        }
        return original.apply(this, rest);
      };
      scopedRawToSQL.add(raw.toSQL);
      return raw;
    }

    override runner(builder: unknown): unknown {
      const executed = captureScope();
      let built: CapturedScope | undefined;
      if (typeof builder === 'object' && builder !== null) {
        const target = builder as ScopedTarget;
        target[EXECUTED_SCOPE] = executed;
        built = target[BUILT_SCOPE];
      }
      const runner = super.runner(builder) as RunnerLike;
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
      if (ready) return super.acquireConnection();
      return ensureReady().then(() => super.acquireConnection());
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

  const client = Object.create(ScopedClient.prototype) as KnexClientLike & Record<string, unknown>;
  Object.assign(client, baseClient);
  // Own event listeners: sharing the base's listener table would duplicate every
  // event. Reset by assignment, never `delete`: deleting a property puts the
  // client in V8's slow (dictionary) mode, and knex reads client properties
  // on every statement.
  client._events = undefined;
  client._eventsCount = 0;
  EventEmitter.call(client);
  for (const event of ['start', 'query', 'query-error', 'query-response']) {
    client.on(event, (...args: unknown[]) => baseClient.emit(event, ...args));
  }

  const scoped = makeKnex(client) as unknown as TenantKnex;
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
    ready: ensureReady,
  });
  Object.defineProperty(scoped, 'tenancy', { value: info, enumerable: true });
  Object.defineProperty(scoped, 'unscoped', {
    enumerable: true,
    value: function unscoped(opts: UnscopedOptions): Knex {
      if (typeof opts?.reason !== 'string' || opts.reason.trim() === '') {
        throw new TypeError('db.unscoped({ reason }) needs a non-empty reason for the audit log.');
      }
      const scope = captureScope();
      emitTenancyAudit({
        type: 'unscoped_query',
        reason: opts.reason,
        ...(scope.kind === 'tenant' ? { tenantId: scope.id } : {}),
      });
      return base;
    },
  });
  return scoped;
}
