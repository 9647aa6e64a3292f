import { TenancyConfigError, TenantScopeError, UnsafeQueryError } from '../errors';
import type { TenancyLogger } from '../logger';
import { applyRowScope, type ScopedRef } from './row/row-scope';
import { applySchemaScope } from './schema/schema-scope';
import {
  captureScope,
  describeScope,
  executionAllowed,
  executionScope,
  sameScope,
  type CapturedScope,
} from './scope-capture';
import type { KnexBuilder, KnexCompiler, KnexJoin, KnexStatement } from './knex-adapter';
import { stampStatement } from './statement-stamp';
import { parseTableString, type TableCatalog, type TableRef } from './table-catalog';

/** Symbol under which a builder keeps the scope it was created in. */
export const BUILT_SCOPE: unique symbol = Symbol('tenantry.builtScope');

interface ScopedBuilder {
  [BUILT_SCOPE]?: CapturedScope;
}

interface CompileRun {
  readonly engine: ScopeEngine;
  readonly scope: CapturedScope;
  mismatch: CapturedScope | undefined;
  sawTenant: boolean;
  readonly raws: string[];
  /** WITH names seen so far; the shared empty set until the first one. */
  ctes: ReadonlySet<string>;
}

const NO_CTES: ReadonlySet<string> = new Set();

// Compilation is synchronous, so one module-level slot is enough to tie every
// nested compile (subqueries, callbacks, unions, CTEs) to its root statement.
let activeRun: CompileRun | undefined;

// Test-only switch for the mutation check: it proves the suite fails when scoping is off.
let scopingDisabled = false;

/**
 * Turns the scoping off (or back on) process-wide. Internal: only the mutation
 * test uses it, to prove the property test fails without scoping. Not exported
 * from the package.
 */
export function setScopingDisabledForMutationTest(disabled: boolean): void {
  scopingDisabled = disabled;
}

/** The scope of the statement being compiled, if a compile is in progress. */
export function compileScope(): CapturedScope | undefined {
  return activeRun?.scope;
}

/** Settings of one {@link ScopeEngine}. */
export interface ScopeEngineSettings {
  readonly mode: 'row' | 'schema';
  readonly catalog: TableCatalog;
  readonly tenantColumn: string;
  readonly allowRaw: boolean;
  readonly schemaFor: (scope: CapturedScope & { kind: 'tenant' }) => string;
  readonly logger: TenancyLogger;
  readonly isReady: () => boolean;
}

function isObjectLike(value: unknown): value is Record<string | symbol, unknown> {
  return typeof value === 'object' && value !== null;
}

function isRawFragment(value: unknown): value is { sql?: unknown } {
  if (!isObjectLike(value) || value.isRawInstance !== true) return false;
  // knex.ref() is a Raw subclass that only ever renders an identifier.
  return !(typeof value.ref === 'string' && typeof value.withSchema === 'function');
}

/** Whether any own value of a statement record is an object (where raw SQL or a builder could be). */
function holdsObject(statement: KnexStatement): boolean {
  for (const key in statement) {
    const value = statement[key];
    if (typeof value === 'object' && value !== null) return true;
  }
  return false;
}

function isBuilder(value: unknown): value is KnexBuilder {
  return isObjectLike(value) && Array.isArray(value._statements) && isObjectLike(value._single);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (!isObjectLike(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

const PLAIN_ALIAS = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

// Objection.js names the tables of withGraphJoined "<relation>:<relation>" (`species as pets:species`).
// knex renders the text after " as " as one quoted identifier (no dot splitting), and the tenant
// predicate `pets:species.tenant_id` renders as "pets:species"."tenant_id": a colon cannot make the
// predicate name another relation. Dots, quotes, spaces and brackets stay refused.
const COLON_ALIAS = /^([A-Za-z_][A-Za-z0-9_$]*) as ([A-Za-z_][A-Za-z0-9_$:]{0,62})$/;

/** {@link parseTableString}, also reading a plain table with an Objection-style colon alias. */
function parseTableOrColonAlias(value: string, schema: string | undefined): TableRef | null {
  const ref = parseTableString(value, schema);
  if (ref !== null) return ref;
  const m = COLON_ALIAS.exec(value);
  if (m === null) return null;
  const target = parseTableString(m[1] as string, schema);
  return target === null || target.alias !== undefined ? null : { ...target, alias: m[2] };
}

function unsafe(message: string): UnsafeQueryError {
  return new UnsafeQueryError(message);
}

/**
 * The compile-time engine shared by row and schema mode: for every builder
 * the dialect compiles (outer statements and every nested one) it finds the
 * table references, classifies them, refuses what it cannot prove safe, and
 * hands tenant references to the mode's rewrite. It patches the compiler's
 * own copies (`single`, `grouped`), never the user's builder.
 */
export class ScopeEngine {
  readonly settings: ScopeEngineSettings;

  constructor(settings: ScopeEngineSettings) {
    this.settings = settings;
  }

  /** Wraps `compiler.toSQL` so the statement is scoped when it is compiled. */
  instrument(compiler: KnexCompiler, builder: KnexBuilder & ScopedBuilder): void {
    const original = compiler.toSQL;
    compiler.toSQL = (method?: string, tz?: unknown): unknown =>
      this.compile(compiler, builder, method, tz, original);
  }

  /**
   * Compiles `compiler` (made for `builder`) with the statement scoped:
   * `original` is the dialect's own toSQL. A nested compile (subquery,
   * callback, union, CTE) joins the statement being compiled.
   */
  compile(
    compiler: KnexCompiler,
    builder: KnexBuilder & ScopedBuilder,
    method: string | undefined,
    tz: unknown,
    original: (this: KnexCompiler, method?: string, tz?: unknown) => unknown,
  ): unknown {
    if (scopingDisabled) return original.call(compiler, method, tz);
    const outer = activeRun;
    if (outer !== undefined) {
      const built = builder[BUILT_SCOPE];
      if (built !== undefined && !sameScope(built, outer.scope)) outer.mismatch = built;
      // WITH names are visible in the level that declares them and below it, never
      // in sibling or enclosing levels: restore the enclosing level's set afterwards.
      const enclosing = outer.ctes;
      try {
        this.#rewrite(compiler, builder, outer, method ?? compiler.method);
        return original.call(compiler, method, tz);
      } finally {
        outer.ctes = enclosing;
      }
    }
    const run = this.#startRun(builder);
    activeRun = run;
    try {
      this.#rewrite(compiler, builder, run, method ?? compiler.method);
      const out = original.call(compiler, method, tz);
      this.#finishRun(run);
      // The send step proves the final SQL; it needs to know whose statement this is.
      stampStatement(out, {
        scope: run.scope,
        conflict: run.mismatch,
        trustRaw: this.settings.allowRaw && run.raws.length > 0,
      });
      return out;
    } finally {
      activeRun = undefined;
    }
  }

  #startRun(builder: ScopedBuilder): CompileRun {
    if (!this.settings.isReady()) {
      throw new TenancyConfigError(
        'Cannot compile a statement because tenant-table discovery or the RLS safety check has not finished. ' +
          'Await db.tenancy.ready() at start-up.',
      );
    }
    const built = builder[BUILT_SCOPE];
    // The runner records the scope of the code that awaited the builder, per
    // execution; a direct toSQL() reads it now. AsyncLocalStorage may be gone
    // in pool callbacks, which is why the runner captures it up front.
    const executed = executionScope() ?? captureScope();
    // A builder runs as the scope it was built in; executing it with no scope
    // is fine (lazy `await runWithTenant(t, () => db('x'))`), from another scope it is refused.
    const scope = built ?? executed;
    return {
      engine: this,
      scope,
      mismatch: executionAllowed(built, executed) ? undefined : executed,
      sawTenant: false,
      raws: [],
      ctes: NO_CTES,
    };
  }

  #finishRun(run: CompileRun): void {
    if (run.mismatch !== undefined && run.sawTenant) {
      throw new TenantScopeError(
        `Cannot run a statement on a tenant table built under ${describeScope(run.scope)} in ` +
          `${describeScope(run.mismatch)} because builders are lazy and would cross tenants. ` +
          'Build the query inside the scope that runs it.',
      );
    }
    // Raw SQL is no longer refused here: the final SQL, raw fragments included,
    // is proven tenant-safe (or refused) by the verifier before it is sent.
  }

  #collectRaw(value: unknown, run: CompileRun, depth = 0): void {
    if (!isObjectLike(value) || depth > 6) return;
    if (isRawFragment(value)) {
      run.raws.push(typeof value.sql === 'string' ? value.sql : String(value.sql));
      return;
    }
    if (isBuilder(value)) return; // compiled on its own, through this engine
    if (Array.isArray(value)) {
      for (const item of value) this.#collectRaw(item, run, depth + 1);
      return;
    }
    if (isPlainObject(value) || (depth === 0 && isObjectLike(value))) {
      for (const key of Object.keys(value)) this.#collectRaw(value[key], run, depth + 1);
    }
  }

  #rewrite(compiler: KnexCompiler, builder: KnexBuilder, run: CompileRun, method: string): void {
    const single = compiler.single;
    const grouped = compiler.grouped;
    const catalog = this.settings.catalog;
    const system = run.scope.kind === 'system';

    let ownCtes = false;
    for (const w of grouped.with ?? []) {
      if (typeof w.alias === 'string') {
        if (catalog.isTenantName(w.alias) && !system) {
          throw unsafe(
            `Cannot use CTE name "${w.alias}" because it shadows a tenant table. Rename the CTE.`,
          );
        }
        // Copy on write: the enclosing level keeps its own set.
        if (!ownCtes) {
          run.ctes = new Set(run.ctes);
          ownCtes = true;
        }
        (run.ctes as Set<string>).add(w.alias);
      }
    }
    // Raw fragments are collected only to let allowRaw trust a refused statement: the
    // verifier proves the final SQL, raw parts included, so without allowRaw there is nothing to do.
    const collect = this.settings.allowRaw;
    if (collect) {
      for (const key of Object.keys(grouped)) {
        if (key === 'join') continue;
        for (const statement of grouped[key] ?? []) {
          // Most statements hold only strings and numbers: nothing raw can hide in them.
          if (holdsObject(statement)) this.#collectRaw(statement, run);
        }
      }
      for (const key of ['insert', 'update', 'counter', 'onConflict', 'merge', 'returning']) {
        if (single[key] !== undefined) this.#collectRaw(single[key], run, 1);
      }
    }

    const refs: ScopedRef[] = [];
    const add = (
      value: unknown,
      place: ScopedRef['place'],
      schema: unknown,
      extra?: ScopedRef['extra'],
    ): void => {
      if (typeof value === 'string') {
        const ref = parseTableOrColonAlias(value, typeof schema === 'string' ? schema : undefined);
        if (ref === null) {
          if (system) return;
          throw unsafe(
            `Cannot scope table reference "${value}" because it is not a plain table name. Use "table" or "table as alias".`,
          );
        }
        refs.push({ ref, kind: catalog.classify(ref, run.ctes), place, extra });
      } else if (isRawFragment(value)) {
        run.raws.push(typeof value.sql === 'string' ? value.sql : String(value.sql));
      } else if (isPlainObject(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1 && isBuilder(value[keys[0] as string])) return; // aliased subquery
        if (keys.length !== 1 || typeof value[keys[0] as string] !== 'string') {
          if (system) return;
          throw unsafe('Cannot scope an aliased table object with other than one string entry.');
        }
        const alias = keys[0] as string;
        const ref = parseTableString(
          value[alias] as string,
          typeof schema === 'string' ? schema : undefined,
        );
        // knex renders an object key with a dot or a quote as something else than one alias.
        if (ref === null || ref.alias !== undefined || !PLAIN_ALIAS.test(alias)) {
          if (system) return;
          throw unsafe(`Cannot scope aliased table reference "${alias}".`);
        }
        const aliased: TableRef = { ...ref, alias };
        refs.push({ ref: aliased, kind: catalog.classify(aliased, run.ctes), place, extra });
      } else if (
        value !== undefined &&
        value !== null &&
        !isBuilder(value) &&
        typeof value !== 'function'
      ) {
        // Builders and callbacks are subqueries, compiled (and scoped) on their own.
        // Anything else (arrays, knex.ref(), objects of other prototypes) cannot be
        // classified: refused, never passed through.
        if (system) return;
        throw unsafe(
          'Cannot scope a table reference that is not a table name string, an { alias: "table" } object or a ' +
            'subquery (arrays and knex.ref() are not table references). Use "table" or "table as alias".',
        );
      }
    };

    add(single.table, 'main', single.schema);
    const joins = grouped.join as unknown as KnexJoin[] | undefined;
    if (joins) {
      joins.forEach((join, index) => {
        if (join.joinType === 'raw') {
          if (collect) this.#collectRaw(join.table, run, 1);
        } else {
          add(join.table, index, join.schema);
        }
        if (collect) for (const clause of join.clauses ?? []) this.#collectRaw(clause, run);
      });
    }
    for (const key of ['updateFrom', 'using'] as const) {
      const extra = single[key];
      if (extra === undefined) continue;
      if (Array.isArray(extra)) {
        (extra as unknown[]).forEach((e, index) => add(e, 'extra', undefined, { key, index }));
      } else {
        add(extra, 'extra', undefined, { key });
      }
    }

    let hasTenant = false;
    for (const r of refs) if (r.kind === 'tenant') hasTenant = true;
    if (hasTenant) run.sawTenant = true;
    if (system) return;
    for (const r of refs) {
      if (r.kind === 'unknown') {
        throw unsafe(
          `Cannot query table "${r.ref.schema ? `${r.ref.schema}.` : ''}${r.ref.name}" because it is neither a ` +
            'tenant table nor a shared table. Declare it in tenantTables or sharedTables.',
        );
      }
    }
    if (this.settings.mode === 'schema') {
      if (hasTenant && run.scope.kind !== 'tenant') throw noTenant(refs);
      applySchemaScope(compiler, refs, run.scope, this.settings);
      return;
    }
    if (!hasTenant) return;
    if (run.scope.kind !== 'tenant') throw noTenant(refs);
    applyRowScope(compiler, builder, refs, method, run.scope.id, this.settings.tenantColumn);
  }
}

function noTenant(refs: readonly ScopedRef[]): TenantScopeError {
  const table = refs.find((r) => r.kind === 'tenant')?.ref.name ?? 'a tenant table';
  return new TenantScopeError(
    `Cannot query "${table}" because no tenant is active. Run it inside runWithTenant() or a resolved ` +
      'request, or use runAsSystem(reason, fn) for cross-tenant work.',
  );
}

export { isBuilder, isPlainObject, isRawFragment, unsafe };
