import fc from 'fast-check';
import type { Knex } from 'knex';

/** One condition of a generated WHERE clause. */
export interface Condition {
  readonly column: 'id' | 'views' | 'title';
  readonly op: '=' | '>' | '<=' | 'in';
  readonly value: number;
  readonly bool: 'and' | 'or';
  readonly not: boolean;
}

/** A generated statement: verb x nesting x filter. */
export interface QueryShape {
  readonly verb:
    | 'select'
    | 'first'
    | 'count'
    | 'pluck'
    | 'update'
    | 'increment'
    | 'delete'
    | 'insert'
    | 'upsert'
    | 'insertSelect'
    | 'insertSelectReordered'
    | 'insertSelectPlain';
  readonly nesting:
    | 'none'
    | 'whereIn'
    | 'whereExists'
    | 'fromSub'
    | 'cte'
    | 'union'
    | 'join'
    | 'leftJoin'
    | 'columnSub'
    | 'nestedCte'
    | 'rawIdentifierSubquery'
    | 'rawIdentifierColumn'
    | 'refTable'
    | 'arrayTable'
    | 'quotedAlias';
  readonly filter: readonly Condition[];
  readonly grouped: boolean;
  readonly newId: number;
}

const condition: fc.Arbitrary<Condition> = fc.record({
  column: fc.constantFrom('id', 'views', 'title'),
  op: fc.constantFrom('=', '>', '<=', 'in'),
  value: fc.integer({ min: 0, max: 4 }),
  bool: fc.constantFrom('and', 'or'),
  not: fc.boolean(),
});

/** Verbs whose statement can never be proven tenant-safe: they must be refused, every time. */
export const ALWAYS_REFUSED_VERBS: ReadonlySet<QueryShape['verb']> = new Set([
  'insertSelectReordered',
  'insertSelectPlain',
]);

/** The FROM of the documents statements: odd table references for the nestings that need them. */
function documentsTable(k: Knex, shape: QueryShape): Knex.QueryBuilder {
  switch (shape.nesting) {
    case 'refTable':
      return k.from(k.ref('documents') as never);
    case 'arrayTable':
      return k.from(['documents'] as never);
    case 'quotedAlias':
      return k({ 'documents"': 'documents' } as unknown as string);
    default:
      return k('documents');
  }
}

/** Nestings whose statements cannot be proven tenant-safe: refused, every time. */
const ALWAYS_REFUSED_NESTINGS: ReadonlySet<QueryShape['nesting']> = new Set([
  'refTable',
  'arrayTable',
  'quotedAlias',
  'rawIdentifierSubquery',
]);

/** Whether the statement of `shape` must be refused (it reads or writes documents through `docs()`). */
export function mustBeRefused(shape: QueryShape): boolean {
  if (ALWAYS_REFUSED_VERBS.has(shape.verb)) return true;
  const usesDocuments = shape.verb !== 'insert' && shape.verb !== 'upsert';
  return usesDocuments && ALWAYS_REFUSED_NESTINGS.has(shape.nesting);
}

/** The arbitrary of query shapes. */
export const queryShape: fc.Arbitrary<QueryShape> = fc.record({
  verb: fc.constantFrom(
    'select',
    'first',
    'count',
    'pluck',
    'update',
    'increment',
    'delete',
    'insert',
    'upsert',
    'insertSelect',
    'insertSelectReordered',
    'insertSelectPlain',
  ),
  nesting: fc.constantFrom(
    'none',
    'whereIn',
    'whereExists',
    'fromSub',
    'cte',
    'union',
    'join',
    'leftJoin',
    'columnSub',
    'nestedCte',
    'rawIdentifierSubquery',
    'rawIdentifierColumn',
    'refTable',
    'arrayTable',
    'quotedAlias',
  ),
  filter: fc.array(condition, { maxLength: 3 }),
  grouped: fc.boolean(),
  newId: fc.integer({ min: 1, max: 5 }),
});

function applyFilter(q: Knex.QueryBuilder, shape: QueryShape, table: string): void {
  const add = (b: Knex.QueryBuilder, c: Condition): void => {
    const column = `${table}.${c.column}`;
    const value = c.column === 'title' ? ['alpha', 'beta', 'gamma', 'x', 'y'][c.value] : c.value;
    const method =
      c.op === 'in'
        ? c.bool === 'or'
          ? c.not
            ? 'orWhereNotIn'
            : 'orWhereIn'
          : c.not
            ? 'whereNotIn'
            : 'whereIn'
        : c.bool === 'or'
          ? c.not
            ? 'orWhereNot'
            : 'orWhere'
          : c.not
            ? 'whereNot'
            : 'where';
    if (c.op === 'in')
      (b[method as 'whereIn'] as (c: string, v: unknown[]) => void)(column, [value]);
    else (b[method as 'where'] as (c: string, o: string, v: unknown) => void)(column, c.op, value);
  };
  if (shape.grouped && shape.filter.length > 1) {
    const [first, ...rest] = shape.filter as [Condition, ...Condition[]];
    add(q, first);
    q.orWhere((inner) => {
      for (const c of rest) add(inner, c);
    });
  } else {
    for (const c of shape.filter) add(q, c);
  }
}

/**
 * Builds the statement of `shape` on `k` (scoped or plain). `tenant` is only
 * used for explicit tenant ids in written rows (the same id is allowed), so
 * the plain oracle run can insert too.
 */
export function buildShape(k: Knex, shape: QueryShape, tenant: string): Knex.QueryBuilder {
  const docs = (): Knex.QueryBuilder => {
    const q = documentsTable(k, shape);
    switch (shape.nesting) {
      case 'nestedCte':
        // A WITH inside a subquery; its name is visible only there.
        q.whereIn(
          'documents.id',
          k.with('c', k('comments').select('document_id')).select('document_id').from('c'),
        );
        break;
      case 'rawIdentifierSubquery':
        // Objection's style: identifiers through ?? bindings; comments is not filtered here.
        q.whereExists(
          k.raw('select 1 from ?? where ?? = ??', [
            'comments',
            'comments.document_id',
            'documents.id',
          ]) as never,
        );
        break;
      case 'rawIdentifierColumn':
        // Harmless raw identifier bindings (verified, not refused).
        q.whereNotNull(k.raw('??', ['documents.title']) as never);
        break;
      case 'whereIn':
        q.whereIn('documents.id', k('comments').select('document_id'));
        break;
      case 'whereExists':
        q.whereExists(function () {
          this.select('*').from('comments').where('comments.document_id', k.ref('documents.id'));
        });
        break;
      case 'join':
        // knex's own DELETE ... USING appends join conditions after an unparenthesised OR
        // (a knex precedence bug), so the plain-Knex oracle would be wrong: use a subquery there.
        if (shape.verb === 'delete') {
          q.whereIn('documents.id', k('comments').select('document_id'));
        } else if (shape.verb !== 'insert' && shape.verb !== 'upsert') {
          q.join('comments', 'comments.document_id', 'documents.id');
        }
        break;
      default:
        break;
    }
    applyFilter(q, shape, 'documents');
    return q;
  };
  const row = {
    tenant_id: tenant,
    id: 100 + shape.newId,
    title: 'new',
    slug: `n${shape.newId}`,
    views: shape.newId,
  };
  switch (shape.verb) {
    case 'update':
      return docs().update({ title: 'changed', views: shape.newId });
    case 'increment':
      return docs().increment('views', shape.newId);
    case 'delete':
      return docs().del();
    case 'insert':
      return k('documents')
        .insert([row, { ...row, id: shape.newId, slug: `m${shape.newId}` }])
        .returning(['tenant_id', 'id']);
    case 'upsert':
      return k('documents')
        .insert({ ...row, id: shape.newId % 4, slug: ['a', 'b', 'c', 'd', 'e'][shape.newId % 4] })
        .onConflict(['tenant_id', 'id'])
        .merge(['title', 'views'])
        .returning(['tenant_id', 'id', 'title']);
    case 'insertSelect':
      // knex writes INSERT ... SELECT without a column list (PostgreSQL then maps by
      // position): refused on tenant tables. With the column list written out the
      // final SQL shows which value lands in the tenant column, and it verifies.
      return k
        .into(k.raw('?? (??, ??, ??, ??)', ['comments', 'tenant_id', 'id', 'document_id', 'body']))
        .insert(
          // The property fixture keeps comment ids >= 11.
          docs().select(
            'documents.tenant_id',
            'documents.views',
            'documents.id',
            'documents.title',
          ),
        );
    case 'insertSelectReordered':
      // Class 4 of the isolation issue: the source's tenant column lands in another column.
      return k
        .into(k.raw('?? (??, ??, ??, ??)', ['comments', 'id', 'tenant_id', 'document_id', 'body']))
        .insert(
          docs().select(
            'documents.tenant_id',
            'documents.title',
            'documents.id',
            'documents.title',
          ),
        );
    case 'insertSelectPlain':
      return k('comments').insert(
        docs().select('documents.tenant_id', 'documents.views', 'documents.id', 'documents.title'),
      );
    default:
      break;
  }
  // Reads.
  let q: Knex.QueryBuilder;
  switch (shape.nesting) {
    case 'fromSub':
      q = k
        .from(docs().select('documents.tenant_id', 'documents.id', 'documents.views').as('s'))
        .select('s.*');
      break;
    case 'cte':
      q = k
        .with('s', docs().select('documents.tenant_id', 'documents.id', 'documents.views'))
        .select('s.*')
        .from('s');
      break;
    case 'union':
      q = docs()
        .select('documents.tenant_id', 'documents.id')
        .union(
          k('comments')
            .select('comments.tenant_id', 'comments.id')
            .where('comments.id', '<=', shape.newId),
        );
      break;
    case 'leftJoin':
      q = docs()
        .leftJoin('comments', 'comments.document_id', 'documents.id')
        .select(
          'documents.tenant_id',
          'documents.id',
          'comments.tenant_id as ct',
          'comments.id as cid',
        );
      break;
    case 'columnSub':
      q = docs().select(
        'documents.tenant_id',
        'documents.id',
        k('comments').count('*').where('comments.document_id', k.ref('documents.id')).as('n'),
      );
      break;
    case 'join':
      q = docs().select(
        'documents.tenant_id',
        'documents.id',
        'comments.tenant_id as ct',
        'comments.id as cid',
      );
      break;
    default:
      q = docs().select('documents.tenant_id', 'documents.id', 'documents.views');
  }
  switch (shape.verb) {
    case 'first':
      return q.orderBy('tenant_id').orderBy('id').first();
    case 'count':
      return k.from(q.as('c')).count({ n: '*' });
    case 'pluck':
      return q.orderBy('tenant_id').orderBy('id').pluck('id');
    default:
      return q;
  }
}
