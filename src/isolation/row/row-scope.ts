import type { KnexBuilder, KnexCompiler, KnexJoin, KnexStatement } from '../knex-adapter';
import { isBuilder, isPlainObject, isRawFragment, unsafe } from '../statement-scoper';
import type { TableKind, TableRef } from '../table-catalog';

/** A table reference of one builder level, with where it sits. */
export interface ScopedRef {
  readonly ref: TableRef;
  readonly kind: TableKind;
  /** `main` (from/into/update/delete target), a join index, or `extra` (updateFrom / using). */
  readonly place: 'main' | 'extra' | number;
  /** For `extra`: which single entry holds it (and its index when that is an array). */
  readonly extra?: { readonly key: 'updateFrom' | 'using'; readonly index?: number };
}

function qualifier(ref: TableRef): string {
  return ref.alias ?? (ref.schema ? `${ref.schema}.${ref.name}` : ref.name);
}

function predicate(column: string, tenantId: string): KnexStatement {
  return {
    grouping: 'where',
    type: 'whereBasic',
    column,
    operator: '=',
    value: tenantId,
    not: false,
    bool: 'and',
    asColumn: false,
  };
}

/**
 * The column a write key names, read as knex renders it: the last dotted
 * segment, trimmed (knex trims every identifier segment with
 * `String.prototype.trim`, Unicode spaces included), without an array
 * accessor (`col[1]` renders as `"col"[1]`).
 */
function baseColumn(key: string): string {
  const segment = key.slice(key.lastIndexOf('.') + 1).trim();
  const accessor = /^(.*?)\[[0-9]+\]/.exec(segment);
  return accessor ? (accessor[1] as string) : segment;
}

function holdsRaw(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null || depth > 3) return false;
  if ((value as { isRawInstance?: unknown }).isRawInstance === true) return true;
  if (Array.isArray(value)) return value.some((item) => holdsRaw(item, depth + 1));
  return false;
}

/**
 * Whether a condition could hold an OR of its own: an OR link, or raw SQL
 * (whose text may say `a or b`) in it. Builders and callbacks are rendered
 * in parentheses by knex itself.
 */
function mayWiden(statement: KnexStatement): boolean {
  if (statement.bool === 'or' || statement.type === 'whereRaw' || statement.type === 'onRaw')
    return true;
  for (const key in statement) {
    if (holdsRaw(statement[key], 0)) return true;
  }
  return false;
}

/**
 * Adds the tenant predicates: `where (<user conditions>) and t.tenant_id = ?`
 * for the main table and inner/cross joins, in `ON` for left joins. The
 * user's conditions are wrapped in parentheses whenever they contain an OR,
 * so `where(a).orWhere(b)` can never widen the tenant filter.
 */
function applyWhere(compiler: KnexCompiler, predicates: KnexStatement[]): void {
  if (predicates.length === 0) return;
  const existing = compiler.grouped.where ?? [];
  let next: KnexStatement[];
  if (existing.some(mayWiden)) {
    next = [
      {
        grouping: 'where',
        type: 'whereWrapped',
        value: function wrapUserConditions(this: KnexBuilder) {
          this._statements.push(...existing);
        },
        not: false,
        bool: 'and',
      },
    ];
  } else {
    next = existing.slice();
  }
  next.push(...predicates);
  compiler.grouped.where = next;
}

function withOnPredicate(join: KnexJoin, column: string, tenantId: string): KnexJoin {
  const copy = Object.assign(
    Object.create(Object.getPrototypeOf(join) as object) as KnexJoin,
    join,
  );
  const original = join.clauses ?? [];
  if (original.some((c) => c.type === 'onUsing')) {
    throw unsafe(
      'Cannot scope a LEFT JOIN ... USING on a tenant table because the tenant condition must go in ON. Use on().',
    );
  }
  const clauses: KnexStatement[] = original.some(mayWiden)
    ? [
        {
          type: 'onWrapped',
          value: function wrapJoinConditions(this: KnexJoin) {
            this.clauses.push(...original);
          },
          bool: 'and',
        },
      ]
    : original.slice();
  clauses.push({ type: 'onVal', column, operator: '=', value: tenantId, bool: 'and' });
  copy.clauses = clauses;
  return copy;
}

function stampRow(row: unknown, column: string, tenantId: string): Record<string, unknown> {
  if (!isPlainObject(row)) {
    throw unsafe('Cannot insert a row that is not a plain object into a tenant table.');
  }
  for (const key of Object.keys(row)) {
    if (key !== column && baseColumn(key) === column) {
      throw unsafe(
        `Cannot insert with a key "${key}" that names the tenant column. Leave it out; it is stamped.`,
      );
    }
  }
  const own = row[column];
  if (own !== undefined && own !== tenantId) {
    throw unsafe(
      `Cannot insert a row whose "${column}" is not the current tenant because writes may never create ` +
        `another tenant's rows. Leave "${column}" out; it is stamped.`,
    );
  }
  return { ...row, [column]: tenantId };
}

function refuseTenantColumnWrite(values: unknown, column: string, what: string): void {
  if (!isPlainObject(values)) return;
  for (const key of Object.keys(values)) {
    if (baseColumn(key) === column) {
      throw unsafe(
        `Cannot ${what} the tenant column "${column}" because rows may never move between tenants.`,
      );
    }
  }
}

/**
 * Row-mode rewrite of one builder level that references tenant tables.
 * Everything it does not recognise is refused (fail closed).
 */
export function applyRowScope(
  compiler: KnexCompiler,
  _builder: KnexBuilder,
  refs: readonly ScopedRef[],
  method: string,
  tenantId: string,
  column: string,
): void {
  const joins = compiler.grouped.join as unknown as KnexJoin[] | undefined;
  const wherePredicates: KnexStatement[] = [];
  let patchedJoins: KnexJoin[] | undefined;

  if (joins?.some((j) => /^(right|right outer|outer|full outer|full)$/i.test(j.joinType))) {
    throw unsafe(
      'Cannot scope a RIGHT or FULL OUTER JOIN in a statement on a tenant table because unmatched rows of ' +
        'other tenants would survive. Rewrite it as a LEFT JOIN.',
    );
  }
  for (const r of refs) {
    if (r.kind !== 'tenant') continue;
    const col = `${qualifier(r.ref)}.${column}`;
    if (typeof r.place === 'number') {
      const join = joins?.[r.place] as KnexJoin;
      const type = join.joinType.toLowerCase();
      if (type === 'inner' || type === 'cross') {
        wherePredicates.push(predicate(col, tenantId));
      } else if (type === 'left' || type === 'left outer') {
        if (method !== 'select' && method !== 'first' && method !== 'pluck') {
          throw unsafe(
            'Cannot scope a LEFT JOIN in a write statement. Use an inner join or a subquery.',
          );
        }
        patchedJoins ??= joins?.slice();
        (patchedJoins as KnexJoin[])[r.place] = withOnPredicate(join, col, tenantId);
      } else {
        throw unsafe(`Cannot scope a "${join.joinType}" join on a tenant table.`);
      }
    } else {
      wherePredicates.push(predicate(col, tenantId));
    }
  }
  if (patchedJoins) compiler.grouped.join = patchedJoins as unknown as KnexStatement[];

  const single = compiler.single;
  switch (method) {
    case 'select':
    case 'first':
    case 'pluck':
    case 'del':
      applyWhere(compiler, wherePredicates);
      return;
    case 'columnInfo':
      return;
    case 'update':
      if (joins?.length) {
        // knex's PostgreSQL UPDATE drops joins silently; predicates on joined tables would dangle.
        throw unsafe(
          'Cannot scope an update with joins because knex ignores them in PostgreSQL. Use whereIn(subquery).',
        );
      }
      refuseTenantColumnWrite(single.update, column, 'update');
      refuseTenantColumnWrite(single.counter, column, 'increment or decrement');
      applyWhere(compiler, wherePredicates);
      return;
    case 'insert':
      applyInsert(compiler, refs, tenantId, column, wherePredicates);
      return;
    case 'truncate':
      throw unsafe(
        "Cannot truncate a tenant table because it would delete every tenant's rows. Use delete(), or the base " +
          'Knex inside runAsSystem().',
      );
    default:
      throw unsafe(
        `Cannot scope a "${method}" statement on a tenant table. Use select/insert/update/delete.`,
      );
  }
}

function applyInsert(
  compiler: KnexCompiler,
  refs: readonly ScopedRef[],
  tenantId: string,
  column: string,
  wherePredicates: KnexStatement[],
): void {
  const main = refs.find((r) => r.place === 'main');
  if (main?.kind !== 'tenant') return;
  const single = { ...compiler.single };
  const values = single.insert;
  if (Array.isArray(values)) {
    single.insert = values.map((row) => stampRow(row, column, tenantId));
  } else if (values === undefined || isPlainObject(values)) {
    single.insert = stampRow(values ?? {}, column, tenantId);
  } else if (isBuilder(values) || typeof values === 'function') {
    // knex writes INSERT ... SELECT without a column list, and PostgreSQL maps
    // the selected columns by position: a filter on the source's tenant column
    // cannot tell which value lands in the target's.
    throw unsafe(
      'Cannot insert from a subquery into a tenant table because knex writes no column list and PostgreSQL ' +
        'maps the selected columns by position. Select the rows and insert them as values, or use ' +
        `db.raw('insert into t ("${column}", ...) select ?, ... from ...', [tenantId, ...]).`,
    );
  }
  // Raw insert values were recorded as raw fragments and are refused by the raw rule.

  if (single.onConflict !== undefined) {
    const target = single.onConflict;
    // A raw conflict target (`onConflict(raw('(tenant_id, id)'))`) is left to the final-SQL
    // verifier, which reads the inferred columns from the parse tree and refuses a target
    // without the tenant column; the DO UPDATE below still gets its tenant condition.
    if (
      !isRawFragment(target) &&
      (!Array.isArray(target) ||
        !target.some((c) => typeof c === 'string' && baseColumn(c) === column))
    ) {
      throw unsafe(
        `Cannot upsert into a tenant table unless the conflict target includes "${column}" because a unique key ` +
          `shared across tenants would let one tenant overwrite or detect another's row. Use ` +
          `onConflict(['${column}', ...]) and unique keys that include "${column}".`,
      );
    }
    const merge = single.merge as { updates?: unknown } | undefined;
    if (merge !== undefined) {
      if (isPlainObject(merge.updates)) {
        for (const key of Object.keys(merge.updates)) {
          if (baseColumn(key) !== column) continue;
          if (key !== column || merge.updates[key] !== tenantId) {
            throw unsafe(
              `Cannot merge "${column}" to another value because rows may never move between tenants.`,
            );
          }
        }
      }
      // The DO UPDATE gets its own WHERE: a row of another tenant is never updated nor returned.
      applyWhere(compiler, wherePredicates);
    }
  }
  compiler.single = single;
}
