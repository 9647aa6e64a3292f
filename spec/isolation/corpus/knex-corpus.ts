import type { Knex } from 'knex';
import type { KnexInterface } from './knex-methods';

/**
 * One statement of the corpus: built with `k` (the tenant-scoped Knex in
 * tenant scope, or the oracle's plain Knex on a database holding only the
 * caller tenant's rows) and awaited.
 */
export interface CorpusCase {
  /** Unique label, printed in failures. */
  readonly id: string;
  /** Methods exercised: `name` (QueryBuilder), `JoinClause.name`, `OnConflictQueryBuilder.name`. */
  readonly methods: readonly string[];
  /** Whether it writes (the spec compares the rows of both tenants afterwards). */
  readonly write?: boolean;
  /** An attack of issue 11: refused, or scoped exactly like the oracle. */
  readonly attack?: string;
  /**
   * The statement must be refused (the oracle's answer would cross tenants);
   * `'row'`: in row mode only (in schema mode the tenant column is a plain column).
   */
  readonly refuse?: boolean | 'row';
  /** Run on the `unknownTables: 'shared'` instance. */
  readonly instance?: 'shared';
  readonly build: (k: Knex) => PromiseLike<unknown>;
}

/**
 * Methods that carry no table reference, column key or raw fragment: they
 * execute, configure, or inspect a builder. Each with the reason.
 */
export const NOT_CARRIERS: Readonly<Record<KnexInterface, Readonly<Record<string, string>>>> = {
  QueryBuilder: {
    then: 'executes the builder (every case awaits it)',
    catch: 'executes the builder',
    asCallback: 'executes the builder with a callback',
    stream: 'executes the builder (covered by the row-mode stream specs)',
    pipe: 'executes the builder as a stream',
    toSQL: 'compiles without sending (the rewrite runs, the verifier runs at send)',
    toQuery: 'compiles to text without sending',
    client: 'the client property',
    connection: 'pins a connection object',
    debug: 'turns on debug output',
    options: 'driver options',
    queryContext: 'user context passed to wrapIdentifier',
    timeout: 'a statement timeout',
    transacting: 'runs in a transaction (covered by the row-mode transaction specs)',
    generateDdlCommands: 'schema-builder method (DDL is refused by the tenant-scoped Knex)',
    on: "registers an event listener (EventEmitter's on)",
    upsert:
      'CockroachDB only: the PostgreSQL query builder has no upsert (declared for all dialects)',
  },
  JoinClause: {},
  OnConflictQueryBuilder: {},
};

const d = (k: Knex) => k('documents');
/** Argument forms knex accepts at run time that its declarations type more narrowly. */
const loose = (value: unknown): never => value as never;
const sub = (k: Knex) => k('comments').select('document_id');

// ---- reads ------------------------------------------------------------------

const selects: CorpusCase[] = [
  { id: 'select *', methods: ['select'], build: (k) => d(k).select('*') },
  { id: 'select columns', methods: ['select'], build: (k) => d(k).select('id', 'title') },
  {
    id: 'select array',
    methods: ['select'],
    build: (k) => d(k).select(['id', 'documents.title']),
  },
  {
    id: 'select aliased string',
    methods: ['select'],
    build: (k) => d(k).select('title as t', 'documents.id as i'),
  },
  {
    id: 'select alias object',
    methods: ['select'],
    build: (k) => d(k).select({ t: 'title', i: 'documents.id' }),
  },
  {
    id: 'select raw',
    methods: ['select'],
    build: (k) => d(k).select(k.raw('upper(title) as u'), 'id'),
  },
  {
    id: 'select raw ?? identifier binding',
    methods: ['select'],
    build: (k) => d(k).select(k.raw('?? as x', ['title'])),
  },
  {
    id: 'select ref',
    methods: ['select'],
    build: (k) => d(k).select(k.ref('title').as('t'), k.ref('documents.id')),
  },
  {
    id: 'select subquery',
    methods: ['select', 'as'],
    build: (k) =>
      d(k).select(
        'id',
        k('comments')
          .count('*')
          .whereRaw('?? = ??', ['comments.document_id', 'documents.id'])
          .as('n'),
      ),
  },
  {
    id: 'select subquery callback',
    methods: ['select'],
    build: (k) =>
      d(k).select('id', (qb: Knex.QueryBuilder) =>
        qb.from('comments').count('*').whereRaw('comments.document_id = documents.id').as('n'),
      ),
  },
  { id: 'column', methods: ['column'], build: (k) => d(k).column('title', { i: 'id' }) },
  { id: 'columns', methods: ['columns'], build: (k) => d(k).columns(['id', 'title']) },
  { id: 'distinct', methods: ['distinct'], build: (k) => d(k).distinct('country') },
  {
    id: 'distinct raw',
    methods: ['distinct'],
    build: (k) => d(k).distinct(k.raw('lower(country) as c')),
  },
  {
    id: 'distinctOn',
    methods: ['distinctOn', 'orderBy'],
    build: (k) => d(k).distinctOn('country').select('country', 'id').orderBy(['country', 'id']),
  },
  { id: 'from string', methods: ['from'], build: (k) => k.select('id').from('documents') },
  {
    id: 'from alias',
    methods: ['from'],
    build: (k) => k.select('d.id').from('documents as d'),
  },
  {
    id: 'from alias object',
    methods: ['from'],
    build: (k) => k.select('d.id').from({ d: 'documents' }),
  },
  {
    id: 'from schema-qualified',
    methods: ['from'],
    build: (k) => k.select('id').from('public.documents'),
  },
  {
    id: 'withSchema',
    methods: ['withSchema'],
    build: (k) => k.withSchema('public').select('id').from('documents'),
  },
  {
    id: 'from subquery',
    methods: ['from', 'as'],
    build: (k) => k.select('s.id').from(d(k).select('id').as('s')),
  },
  {
    id: 'from callback',
    methods: ['from'],
    build: (k) =>
      k
        .select('s.id')
        .from(loose((qb: Knex.QueryBuilder) => qb.select('id').from('documents').as('s'))),
  },
  {
    id: 'fromRaw table',
    methods: ['fromRaw'],
    build: (k) => k.select('id').fromRaw('documents'),
  },
  {
    id: 'fromRaw ?? binding',
    methods: ['fromRaw'],
    build: (k) => k.select('id').fromRaw(loose('?? as x'), loose(['documents'])),
  },
  { id: 'table', methods: ['table'], build: (k) => k.table('documents').select('id') },
  { id: 'first', methods: ['first'], build: (k) => d(k).first('id', 'title').orderBy('id') },
  { id: 'pluck', methods: ['pluck'], build: (k) => d(k).pluck('title') },
  {
    id: 'modify',
    methods: ['modify'],
    build: (k) => d(k).modify((qb: Knex.QueryBuilder, v: number) => qb.where('id', v), 2),
  },
  {
    id: 'clone',
    methods: ['clone'],
    build: (k) => d(k).where('id', 1).clone().orWhere('id', 2),
  },
  {
    id: 'clearSelect/clearWhere/clearOrder',
    methods: ['clearSelect', 'clearWhere', 'clearOrder'],
    build: (k) =>
      d(k).select('title').where('id', 1).orderBy('id').clearSelect().clearWhere().clearOrder(),
  },
  {
    id: 'clearGroup/clearHaving',
    methods: ['clearGroup', 'clearHaving'],
    build: (k) =>
      d(k).select('id').groupBy('id').having('id', '>', 1).clearGroup().clearHaving().groupBy('id'),
  },
  {
    id: 'clearCounters',
    methods: ['clearCounters', 'increment'],
    write: true,
    build: (k) => d(k).where('id', 1).increment('views', 1).clearCounters().update({ views: 7 }),
  },
  {
    id: 'clear',
    methods: ['clear'],
    build: (k) => d(k).select('title').where('id', 1).clear('select').clear('where'),
  },
  {
    id: 'comment',
    methods: ['comment'],
    build: (k) => d(k).comment('report').select('id'),
  },
  {
    id: 'hintComment',
    methods: ['hintComment'],
    build: (k) => d(k).hintComment('IndexScan(documents)').select('id'),
  },
];

const wheres: CorpusCase[] = [
  { id: 'where object', methods: ['where'], build: (k) => d(k).where({ id: 1, country: 'fr' }) },
  { id: 'where col val', methods: ['where'], build: (k) => d(k).where('id', 2) },
  { id: 'where col op val', methods: ['where'], build: (k) => d(k).where('views', '>=', 2) },
  {
    id: 'where qualified',
    methods: ['where'],
    build: (k) => d(k).where('documents.id', 2),
  },
  {
    id: 'where callback with or',
    methods: ['where', 'orWhere'],
    build: (k) => d(k).where((qb: Knex.QueryBuilder) => qb.where('id', 1).orWhere('id', 2)),
  },
  {
    id: 'where raw',
    methods: ['where'],
    build: (k) => d(k).where(k.raw('views > ?', [1])),
  },
  {
    id: 'where col raw value',
    methods: ['where'],
    build: (k) => d(k).where('views', '>', k.raw('1 + 1')),
  },
  {
    id: 'where col subquery',
    methods: ['where'],
    build: (k) => d(k).where('id', k('comments').max('document_id')),
  },
  {
    id: 'where ref value',
    methods: ['where'],
    build: (k) => d(k).where('views', k.ref('id')),
  },
  {
    id: 'where null value',
    methods: ['where'],
    build: (k) => d(k).where('country', null),
  },
  {
    id: 'andWhere',
    methods: ['andWhere'],
    build: (k) => d(k).where('id', '>', 1).andWhere('views', '<', 4),
  },
  { id: 'orWhere', methods: ['orWhere'], build: (k) => d(k).where('id', 1).orWhere('id', 3) },
  {
    id: 'orWhere object',
    methods: ['orWhere'],
    build: (k) => d(k).where('id', 1).orWhere({ id: 3, views: 3 }),
  },
  { id: 'whereNot', methods: ['whereNot'], build: (k) => d(k).whereNot('id', 1) },
  {
    id: 'andWhereNot',
    methods: ['andWhereNot'],
    build: (k) => d(k).where('id', '>', 1).andWhereNot('id', 2),
  },
  {
    id: 'orWhereNot',
    methods: ['orWhereNot'],
    build: (k) => d(k).where('id', 1).orWhereNot('views', '>', 1),
  },
  { id: 'not.where', methods: ['not'], build: (k) => d(k).not.where('id', 1) },
  { id: 'or.where', methods: ['or'], build: (k) => d(k).where('id', 1).or.where('id', 2) },
  { id: 'and.where', methods: ['and'], build: (k) => d(k).where('id', 1).and.where('views', 1) },
  { id: 'whereIn array', methods: ['whereIn'], build: (k) => d(k).whereIn('id', [1, 2]) },
  {
    id: 'whereIn subquery',
    methods: ['whereIn'],
    build: (k) => d(k).whereIn('id', sub(k)),
  },
  {
    id: 'whereIn callback',
    methods: ['whereIn'],
    build: (k) =>
      d(k).whereIn('id', (qb: Knex.QueryBuilder) => qb.select('document_id').from('comments')),
  },
  {
    id: 'whereIn multi-column',
    methods: ['whereIn'],
    build: (k) =>
      d(k).whereIn(
        ['id', 'views'],
        [
          [1, 1],
          [2, 2],
        ],
      ),
  },
  {
    id: 'whereIn raw',
    methods: ['whereIn'],
    build: (k) => d(k).whereIn('id', loose(k.raw('select 1'))),
  },
  {
    id: 'orWhereIn',
    methods: ['orWhereIn'],
    build: (k) => d(k).where('id', 4).orWhereIn('id', sub(k)),
  },
  { id: 'whereNotIn', methods: ['whereNotIn'], build: (k) => d(k).whereNotIn('id', sub(k)) },
  {
    id: 'orWhereNotIn',
    methods: ['orWhereNotIn'],
    build: (k) => d(k).where('id', 1).orWhereNotIn('id', [1, 2]),
  },
  { id: 'whereNull', methods: ['whereNull'], build: (k) => d(k).whereNull('country') },
  {
    id: 'orWhereNull',
    methods: ['orWhereNull'],
    build: (k) => d(k).where('id', 1).orWhereNull('country'),
  },
  {
    id: 'whereNotNull',
    methods: ['whereNotNull'],
    build: (k) => d(k).whereNotNull('documents.country'),
  },
  {
    id: 'orWhereNotNull',
    methods: ['orWhereNotNull'],
    build: (k) => d(k).where('id', 4).orWhereNotNull('country'),
  },
  {
    id: 'whereExists subquery',
    methods: ['whereExists'],
    build: (k) => d(k).whereExists(k('comments').whereRaw('comments.document_id = documents.id')),
  },
  {
    id: 'whereExists callback',
    methods: ['whereExists'],
    build: (k) =>
      d(k).whereExists((qb: Knex.QueryBuilder) =>
        qb.select('*').from('comments').whereRaw('comments.document_id = documents.id'),
      ),
  },
  {
    id: 'orWhereExists',
    methods: ['orWhereExists'],
    build: (k) => d(k).where('id', 4).orWhereExists(k('countries').where('code', 'zz')),
  },
  {
    id: 'whereNotExists',
    methods: ['whereNotExists'],
    build: (k) =>
      d(k).whereNotExists(k('comments').whereRaw('comments.document_id = documents.id')),
  },
  {
    id: 'orWhereNotExists',
    methods: ['orWhereNotExists'],
    build: (k) => d(k).where('id', 1).orWhereNotExists(k('comments').where('id', 99)),
  },
  {
    id: 'whereBetween',
    methods: ['whereBetween'],
    build: (k) => d(k).whereBetween('views', [2, 3]),
  },
  {
    id: 'andWhereBetween',
    methods: ['andWhereBetween'],
    build: (k) => d(k).where('id', '>', 0).andWhereBetween('views', [2, 3]),
  },
  {
    id: 'orWhereBetween',
    methods: ['orWhereBetween'],
    build: (k) => d(k).where('id', 1).orWhereBetween('views', [3, 4]),
  },
  {
    id: 'whereNotBetween',
    methods: ['whereNotBetween'],
    build: (k) => d(k).whereNotBetween('views', [2, 3]),
  },
  {
    id: 'andWhereNotBetween',
    methods: ['andWhereNotBetween'],
    build: (k) => d(k).where('id', '>', 0).andWhereNotBetween('views', [2, 3]),
  },
  {
    id: 'orWhereNotBetween',
    methods: ['orWhereNotBetween'],
    build: (k) => d(k).where('id', 1).orWhereNotBetween('views', [1, 3]),
  },
  { id: 'whereLike', methods: ['whereLike'], build: (k) => d(k).whereLike('title', '%:b') },
  {
    id: 'andWhereLike',
    methods: ['andWhereLike'],
    build: (k) => d(k).where('id', '>', 0).andWhereLike('title', '%:c'),
  },
  {
    id: 'orWhereLike',
    methods: ['orWhereLike'],
    build: (k) => d(k).where('id', 1).orWhereLike('title', '%:c'),
  },
  { id: 'whereILike', methods: ['whereILike'], build: (k) => d(k).whereILike('title', '%:B') },
  {
    id: 'andWhereILike',
    methods: ['andWhereILike'],
    build: (k) => d(k).where('id', '>', 0).andWhereILike('title', '%:C'),
  },
  {
    id: 'orWhereILike',
    methods: ['orWhereILike'],
    build: (k) => d(k).where('id', 1).orWhereILike('title', '%:C'),
  },
  { id: 'whereRaw', methods: ['whereRaw'], build: (k) => d(k).whereRaw('views > ?', [1]) },
  {
    id: 'whereRaw named bindings',
    methods: ['whereRaw'],
    build: (k) => d(k).whereRaw('views > :v', { v: 1 }),
  },
  {
    id: 'whereRaw ?? column',
    methods: ['whereRaw'],
    build: (k) => d(k).whereRaw('?? > ?', ['documents.views', 2]),
  },
  {
    id: 'whereRaw :name: column',
    methods: ['whereRaw'],
    build: (k) => d(k).whereRaw(':c: > :v', { c: 'views', v: 2 }),
  },
  {
    id: 'andWhereRaw',
    methods: ['andWhereRaw'],
    build: (k) => d(k).where('id', '>', 0).andWhereRaw('views < 3'),
  },
  {
    id: 'orWhereRaw',
    methods: ['orWhereRaw'],
    build: (k) => d(k).where('id', 1).orWhereRaw('views = ?', [3]),
  },
  {
    id: 'whereWrapped',
    methods: ['whereWrapped'],
    build: (k) => d(k).whereWrapped((qb: Knex.QueryBuilder) => qb.where('id', 1).orWhere('id', 2)),
  },
  {
    id: 'whereJsonObject',
    methods: ['whereJsonObject'],
    build: (k) => d(k).whereJsonObject('tags', { a: 1 }),
  },
  {
    id: 'andWhereJsonObject',
    methods: ['andWhereJsonObject'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonObject('tags', { a: 1 }),
  },
  {
    id: 'orWhereJsonObject',
    methods: ['orWhereJsonObject'],
    build: (k) => d(k).where('id', 4).orWhereJsonObject('tags', { a: 1 }),
  },
  {
    id: 'whereNotJsonObject',
    methods: ['whereNotJsonObject'],
    build: (k) => d(k).whereNotJsonObject('tags', { a: 1 }),
  },
  {
    id: 'andWhereNotJsonObject',
    methods: ['andWhereNotJsonObject'],
    build: (k) => d(k).where('id', '>', 0).andWhereNotJsonObject('tags', { a: 1 }),
  },
  {
    id: 'orWhereNotJsonObject',
    methods: ['orWhereNotJsonObject'],
    build: (k) => d(k).where('id', 1).orWhereNotJsonObject('tags', { a: 1 }),
  },
  {
    id: 'whereJsonPath',
    methods: ['whereJsonPath'],
    build: (k) => d(k).whereJsonPath('tags', '$.a', '=', 1),
  },
  {
    id: 'andWhereJsonPath',
    methods: ['andWhereJsonPath'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonPath('tags', '$.a', '>', 0),
  },
  {
    id: 'orWhereJsonPath',
    methods: ['orWhereJsonPath'],
    build: (k) => d(k).where('id', 4).orWhereJsonPath('tags', '$.a', '=', 2),
  },
  {
    id: 'whereJsonSupersetOf',
    methods: ['whereJsonSupersetOf'],
    build: (k) => d(k).whereJsonSupersetOf('tags', { a: 1 }),
  },
  {
    id: 'andWhereJsonSupersetOf',
    methods: ['andWhereJsonSupersetOf'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonSupersetOf('tags', { a: 1 }),
  },
  {
    id: 'orWhereJsonSupersetOf',
    methods: ['orWhereJsonSupersetOf'],
    build: (k) => d(k).where('id', 4).orWhereJsonSupersetOf('tags', { a: 2 }),
  },
  {
    id: 'whereJsonNotSupersetOf',
    methods: ['whereJsonNotSupersetOf'],
    build: (k) => d(k).whereJsonNotSupersetOf('tags', { a: 1 }),
  },
  {
    id: 'andWhereJsonNotSupersetOf',
    methods: ['andWhereJsonNotSupersetOf'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonNotSupersetOf('tags', { a: 1 }),
  },
  {
    id: 'orWhereJsonNotSupersetOf',
    methods: ['orWhereJsonNotSupersetOf'],
    build: (k) => d(k).where('id', 1).orWhereJsonNotSupersetOf('tags', { a: 1 }),
  },
  {
    id: 'whereJsonSubsetOf',
    methods: ['whereJsonSubsetOf'],
    build: (k) => d(k).whereJsonSubsetOf('tags', { a: 1, b: 2 }),
  },
  {
    id: 'andWhereJsonSubsetOf',
    methods: ['andWhereJsonSubsetOf'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonSubsetOf('tags', { a: 1, b: 2 }),
  },
  {
    id: 'orWhereJsonSubsetOf',
    methods: ['orWhereJsonSubsetOf'],
    build: (k) => d(k).where('id', 4).orWhereJsonSubsetOf('tags', { a: 2 }),
  },
  {
    id: 'whereJsonNotSubsetOf',
    methods: ['whereJsonNotSubsetOf'],
    build: (k) => d(k).whereJsonNotSubsetOf('tags', { a: 1 }),
  },
  {
    id: 'andWhereJsonNotSubsetOf',
    methods: ['andWhereJsonNotSubsetOf'],
    build: (k) => d(k).where('id', '>', 0).andWhereJsonNotSubsetOf('tags', { a: 1 }),
  },
  {
    id: 'orWhereJsonNotSubsetOf',
    methods: ['orWhereJsonNotSubsetOf'],
    build: (k) => d(k).where('id', 1).orWhereJsonNotSubsetOf('tags', { a: 1 }),
  },
];

const groups: CorpusCase[] = [
  {
    id: 'groupBy having',
    methods: ['groupBy', 'having'],
    build: (k) =>
      d(k).select('country').count('* as n').groupBy('country').having('country', '=', 'fr'),
  },
  {
    id: 'groupBy array',
    methods: ['groupBy'],
    build: (k) => d(k).select('country', 'views').groupBy(['country', 'views']),
  },
  {
    id: 'groupBy raw',
    methods: ['groupBy'],
    build: (k) => d(k).select(k.raw('lower(country) as c')).groupBy(k.raw('lower(country)')),
  },
  {
    id: 'groupByRaw',
    methods: ['groupByRaw'],
    build: (k) =>
      d(k)
        .select(k.raw('coalesce(country, ?) as c', ['none']))
        .groupByRaw('1'),
  },
  {
    id: 'having raw value',
    methods: ['having'],
    build: (k) => d(k).select('country').groupBy('country').having(k.raw('count(*)'), '>', 1),
  },
  {
    id: 'having callback',
    methods: ['having'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having((qb: Knex.QueryBuilder) =>
          qb.having('country', '=', 'fr').orHaving('country', '=', 'de'),
        ),
  },
  {
    id: 'andHaving',
    methods: ['andHaving'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '!=', 'de')
        .andHaving('country', '!=', 'x'),
  },
  {
    id: 'orHaving',
    methods: ['orHaving'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '=', 'fr')
        .orHaving('country', '=', 'de'),
  },
  {
    id: 'havingIn',
    methods: ['havingIn'],
    build: (k) => d(k).select('country').groupBy('country').havingIn('country', ['fr']),
  },
  {
    id: 'havingNotIn',
    methods: ['havingNotIn'],
    build: (k) => d(k).select('country').groupBy('country').havingNotIn('country', ['fr']),
  },
  {
    id: 'andHavingNotIn',
    methods: ['andHavingNotIn'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '!=', 'x')
        .andHavingNotIn('country', ['fr']),
  },
  {
    id: 'orHavingNotIn',
    methods: ['orHavingNotIn'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '=', 'fr')
        .orHavingNotIn('country', ['de']),
  },
  {
    id: 'havingNull',
    methods: ['havingNull'],
    build: (k) => d(k).select('country').groupBy('country').havingNull('country'),
  },
  {
    id: 'orHavingNull',
    methods: ['orHavingNull'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '=', 'fr')
        .orHavingNull('country'),
  },
  {
    id: 'havingNotNull',
    methods: ['havingNotNull'],
    build: (k) => d(k).select('country').groupBy('country').havingNotNull('country'),
  },
  {
    id: 'orHavingNotNull',
    methods: ['orHavingNotNull'],
    build: (k) =>
      d(k).select('country').groupBy('country').havingNull('country').orHavingNotNull('country'),
  },
  {
    id: 'havingBetween',
    methods: ['havingBetween'],
    build: (k) => d(k).select('views').groupBy('views').havingBetween('views', [2, 3]),
  },
  {
    id: 'orHavingBetween',
    methods: ['orHavingBetween'],
    build: (k) =>
      d(k)
        .select('views')
        .groupBy('views')
        .having('views', '=', 1)
        .orHavingBetween('views', [3, 4]),
  },
  {
    id: 'havingNotBetween',
    methods: ['havingNotBetween'],
    build: (k) => d(k).select('views').groupBy('views').havingNotBetween('views', [2, 3]),
  },
  {
    id: 'orHavingNotBetween',
    methods: ['orHavingNotBetween'],
    build: (k) =>
      d(k)
        .select('views')
        .groupBy('views')
        .having('views', '=', 2)
        .orHavingNotBetween('views', [1, 3]),
  },
  {
    id: 'havingRaw',
    methods: ['havingRaw'],
    build: (k) => d(k).select('country').groupBy('country').havingRaw('count(*) > ?', [1]),
  },
  {
    id: 'orHavingRaw',
    methods: ['orHavingRaw'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .having('country', '=', 'fr')
        .orHavingRaw('count(*) > 1'),
  },
  {
    id: 'havingWrapped',
    methods: ['havingWrapped'],
    build: (k) =>
      d(k)
        .select('country')
        .groupBy('country')
        .havingWrapped((qb: Knex.QueryBuilder) =>
          qb.having('country', '=', 'fr').orHaving('country', '=', 'de'),
        ),
  },
];

const orders: CorpusCase[] = [
  {
    id: 'orderBy column',
    methods: ['orderBy'],
    build: (k) => d(k).select('id').orderBy('id', 'desc'),
  },
  {
    id: 'orderBy nulls last',
    methods: ['orderBy'],
    build: (k) => d(k).select('id').orderBy('country', 'asc', 'last'),
  },
  {
    id: 'orderBy array of objects',
    methods: ['orderBy'],
    build: (k) =>
      d(k)
        .select('id')
        .orderBy([{ column: 'country', order: 'desc', nulls: 'first' }, 'id']),
  },
  {
    id: 'orderBy raw',
    methods: ['orderBy'],
    build: (k) => d(k).select('id').orderBy(k.raw('lower(title)')),
  },
  {
    id: 'orderByRaw nulls last',
    methods: ['orderByRaw'],
    build: (k) => d(k).select('id').orderByRaw('country desc nulls last, id'),
  },
  {
    id: 'orderByRaw ?? binding',
    methods: ['orderByRaw'],
    build: (k) => d(k).select('id').orderByRaw('?? desc', ['views']),
  },
  { id: 'limit', methods: ['limit'], build: (k) => d(k).select('id').orderBy('id').limit(2) },
  { id: 'offset', methods: ['offset'], build: (k) => d(k).select('id').orderBy('id').offset(1) },
  {
    id: 'offset raw',
    methods: ['offset'],
    build: (k) =>
      d(k)
        .select('id')
        .orderBy('id')
        .offset(loose(k.raw('1 + 1'))),
  },
  {
    id: 'limit/offset skipBinding',
    methods: ['limit', 'offset'],
    build: (k) =>
      d(k)
        .select('id')
        .orderBy('id')
        .limit(2, { skipBinding: true })
        .offset(1, { skipBinding: true }),
  },
];

const aggregates: CorpusCase[] = [
  { id: 'count *', methods: ['count'], build: (k) => d(k).count('*') },
  { id: 'count alias', methods: ['count'], build: (k) => d(k).count('id as n') },
  { id: 'count object', methods: ['count'], build: (k) => d(k).count({ n: 'id' }) },
  {
    id: 'count raw',
    methods: ['count'],
    build: (k) => d(k).count(k.raw('distinct ??', ['country'])),
  },
  { id: 'countDistinct', methods: ['countDistinct'], build: (k) => d(k).countDistinct('country') },
  {
    id: 'countDistinct multiple',
    methods: ['countDistinct'],
    build: (k) => d(k).countDistinct({ n: ['country', 'views'] }),
  },
  { id: 'min', methods: ['min'], build: (k) => d(k).min('views') },
  { id: 'max', methods: ['max'], build: (k) => d(k).max('views as m') },
  { id: 'sum', methods: ['sum'], build: (k) => d(k).sum('views') },
  { id: 'sum raw ??', methods: ['sum'], build: (k) => d(k).sum(k.raw('??', ['views'])) },
  { id: 'sumDistinct', methods: ['sumDistinct'], build: (k) => d(k).sumDistinct('views') },
  { id: 'avg', methods: ['avg'], build: (k) => d(k).avg({ a: 'views' }) },
  { id: 'avgDistinct', methods: ['avgDistinct'], build: (k) => d(k).avgDistinct('views') },
  {
    id: 'rowNumber',
    methods: ['rowNumber'],
    build: (k) => d(k).select('id').rowNumber('rn', 'id'),
  },
  {
    id: 'rowNumber partition',
    methods: ['rowNumber'],
    build: (k) => d(k).select('id').rowNumber('rn', ['views'], 'country'),
  },
  {
    id: 'rank callback partitionBy',
    methods: ['rank', 'partitionBy'],
    build: (k) =>
      d(k)
        .select('id')
        .rank(
          'r',
          loose((w: Knex.QueryBuilder) => w.orderBy('views').partitionBy('country')),
        ),
  },
  {
    id: 'denseRank',
    methods: ['denseRank'],
    build: (k) =>
      d(k)
        .select('id')
        .denseRank('r', k.raw('order by ??', ['views'])),
  },
  {
    id: 'jsonExtract',
    methods: ['jsonExtract'],
    build: (k) => d(k).jsonExtract('tags', '$.a', 'a'),
  },
  {
    id: 'jsonSet',
    methods: ['jsonSet'],
    build: (k) => d(k).jsonSet('tags', '$.a', 5, 't'),
  },
  {
    id: 'jsonInsert',
    methods: ['jsonInsert'],
    build: (k) => d(k).jsonInsert('tags', '$.z', 5, 't'),
  },
  {
    id: 'jsonRemove',
    methods: ['jsonRemove'],
    build: (k) => d(k).jsonRemove('tags', '$.a', 't'),
  },
];

const jc = (k: Knex, on: (j: Knex.JoinClause) => void) =>
  d(k).select('documents.id', 'c.body').join('comments as c', on);

const joins: CorpusCase[] = [
  {
    id: 'join columns',
    methods: ['join'],
    build: (k) =>
      d(k)
        .select('documents.id', 'comments.body')
        .join('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'join operator',
    methods: ['join'],
    build: (k) =>
      d(k).select('documents.id').join('comments', 'comments.document_id', '=', 'documents.id'),
  },
  {
    id: 'join alias object',
    methods: ['join'],
    build: (k) => d(k).select('c.body').join({ c: 'comments' }, 'c.document_id', 'documents.id'),
  },
  {
    id: 'join subquery',
    methods: ['join', 'as'],
    build: (k) =>
      d(k)
        .select('documents.id', 's.document_id')
        .join(sub(k).as('s'), 's.document_id', 'documents.id'),
  },
  {
    id: 'join shared',
    methods: ['join'],
    build: (k) =>
      d(k)
        .select('documents.id', 'countries.name')
        .join('countries', 'countries.code', 'documents.country'),
  },
  {
    id: 'join raw column',
    methods: ['join'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .join('comments', 'comments.document_id', k.raw('??', ['documents.id'])),
  },
  {
    id: 'innerJoin',
    methods: ['innerJoin'],
    build: (k) =>
      d(k).select('documents.id').innerJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'leftJoin',
    methods: ['leftJoin'],
    build: (k) =>
      d(k)
        .select('documents.id', 'comments.body')
        .leftJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'leftOuterJoin',
    methods: ['leftOuterJoin'],
    build: (k) =>
      d(k)
        .select('documents.id', 'c.body')
        .leftOuterJoin('comments as c', 'c.document_id', 'documents.id'),
  },
  {
    id: 'leftJoin shared',
    methods: ['leftJoin'],
    build: (k) =>
      d(k)
        .select('documents.id', 'countries.name')
        .leftJoin('countries', 'countries.code', 'documents.country'),
  },
  {
    id: 'rightJoin',
    methods: ['rightJoin'],
    build: (k) =>
      d(k).select('documents.id').rightJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'rightOuterJoin',
    methods: ['rightOuterJoin'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .rightOuterJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'outerJoin',
    methods: ['outerJoin'],
    build: (k) =>
      d(k).select('documents.id').outerJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'fullOuterJoin',
    methods: ['fullOuterJoin'],
    build: (k) =>
      d(k).select('documents.id').fullOuterJoin('comments', 'comments.document_id', 'documents.id'),
  },
  {
    id: 'crossJoin',
    methods: ['crossJoin'],
    build: (k) => d(k).select('documents.id', 'countries.code').crossJoin(loose('countries')),
  },
  {
    id: 'crossJoin tenant',
    methods: ['crossJoin'],
    build: (k) => d(k).select('documents.id', 'comments.id as c').crossJoin(loose('comments')),
  },
  {
    id: 'joinRaw',
    methods: ['joinRaw'],
    build: (k) =>
      d(k).select('documents.id').joinRaw('join countries on countries.code = documents.country'),
  },
  {
    id: 'joinRaw tenant table filtered',
    methods: ['joinRaw'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .joinRaw(
          'join comments on comments.document_id = documents.id and comments.tenant_id = ?',
          ['acme'],
        ),
  },
  {
    id: 'join callback on',
    methods: ['join', 'JoinClause.on'],
    build: (k) => jc(k, (j) => j.on('c.document_id', '=', 'documents.id')),
  },
  {
    id: 'JoinClause.andOn',
    methods: ['JoinClause.andOn'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').andOn('c.id', '>', 'documents.views')),
  },
  {
    id: 'JoinClause.orOn',
    methods: ['JoinClause.orOn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOn('c.id', 'documents.id')),
  },
  {
    id: 'JoinClause.on callback',
    methods: ['JoinClause.on'],
    build: (k) =>
      jc(k, (j) =>
        j.on((inner: Knex.JoinClause) =>
          inner.on('c.document_id', 'documents.id').orOn('c.id', 'documents.id'),
        ),
      ),
  },
  {
    id: 'JoinClause.on raw',
    methods: ['JoinClause.on'],
    build: (k) => jc(k, (j) => j.on(k.raw('c.document_id = documents.id'))),
  },
  {
    id: 'JoinClause.onVal',
    methods: ['JoinClause.onVal'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onVal('c.body', 'one')),
  },
  {
    id: 'JoinClause.andOnVal',
    methods: ['JoinClause.andOnVal'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').andOnVal('c.id', '>', 1)),
  },
  {
    id: 'JoinClause.orOnVal',
    methods: ['JoinClause.orOnVal'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOnVal('c.body', 'two')),
  },
  {
    id: 'JoinClause.onIn',
    methods: ['JoinClause.onIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onIn('c.id', [1, 2])),
  },
  {
    id: 'JoinClause.andOnIn',
    methods: ['JoinClause.andOnIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').andOnIn('c.id', [1, 3])),
  },
  {
    id: 'JoinClause.orOnIn',
    methods: ['JoinClause.orOnIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOnIn('c.id', [4])),
  },
  {
    id: 'JoinClause.onNotIn',
    methods: ['JoinClause.onNotIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onNotIn('c.id', [1])),
  },
  {
    id: 'JoinClause.andOnNotIn',
    methods: ['JoinClause.andOnNotIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').andOnNotIn('c.id', [2])),
  },
  {
    id: 'JoinClause.orOnNotIn',
    methods: ['JoinClause.orOnNotIn'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOnNotIn('c.id', [1, 2, 3])),
  },
  {
    id: 'JoinClause.onNull',
    methods: ['JoinClause.onNull'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onNull('documents.country')),
  },
  {
    id: 'JoinClause.andOnNull',
    methods: ['JoinClause.andOnNull'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').andOnNull('documents.country')),
  },
  {
    id: 'JoinClause.orOnNull',
    methods: ['JoinClause.orOnNull'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOnNull('documents.country')),
  },
  {
    id: 'JoinClause.onNotNull',
    methods: ['JoinClause.onNotNull'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').onNotNull('documents.country')),
  },
  {
    id: 'JoinClause.andOnNotNull',
    methods: ['JoinClause.andOnNotNull'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').andOnNotNull('c.body')),
  },
  {
    id: 'JoinClause.orOnNotNull',
    methods: ['JoinClause.orOnNotNull'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').orOnNotNull('documents.country')),
  },
  {
    id: 'JoinClause.onExists',
    methods: ['JoinClause.onExists'],
    build: (k) =>
      jc(k, (j) =>
        j
          .on('c.document_id', 'documents.id')
          .onExists(loose(k('countries').whereRaw('countries.code = documents.country'))),
      ),
  },
  {
    id: 'JoinClause.andOnExists',
    methods: ['JoinClause.andOnExists'],
    build: (k) =>
      jc(k, (j) =>
        j
          .on('c.document_id', 'documents.id')
          .andOnExists(loose(k('comments').where('comments.id', 1))),
      ),
  },
  {
    id: 'JoinClause.orOnExists',
    methods: ['JoinClause.orOnExists'],
    build: (k) =>
      jc(k, (j) =>
        j.on('c.document_id', 'documents.id').orOnExists(loose(k('countries').where('code', 'zz'))),
      ),
  },
  {
    id: 'JoinClause.onNotExists',
    methods: ['JoinClause.onNotExists'],
    build: (k) =>
      jc(k, (j) =>
        j
          .on('c.document_id', 'documents.id')
          .onNotExists(loose(k('countries').where('code', 'zz'))),
      ),
  },
  {
    id: 'JoinClause.andOnNotExists',
    methods: ['JoinClause.andOnNotExists'],
    build: (k) =>
      jc(k, (j) =>
        j
          .on('c.document_id', 'documents.id')
          .andOnNotExists(loose(k('comments').where('comments.id', 99))),
      ),
  },
  {
    id: 'JoinClause.orOnNotExists',
    methods: ['JoinClause.orOnNotExists'],
    build: (k) =>
      jc(k, (j) =>
        j
          .on('c.document_id', 'documents.id')
          .orOnNotExists(loose(k('comments').where('comments.id', 1))),
      ),
  },
  {
    id: 'JoinClause.onBetween',
    methods: ['JoinClause.onBetween'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onBetween('c.id', [1, 2])),
  },
  {
    id: 'JoinClause.andOnBetween',
    methods: ['JoinClause.andOnBetween'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').andOnBetween('c.id', [2, 3])),
  },
  {
    id: 'JoinClause.orOnBetween',
    methods: ['JoinClause.orOnBetween'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').orOnBetween('c.id', [3, 4])),
  },
  {
    id: 'JoinClause.onNotBetween',
    methods: ['JoinClause.onNotBetween'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').onNotBetween('c.id', [1, 2])),
  },
  {
    id: 'JoinClause.andOnNotBetween',
    methods: ['JoinClause.andOnNotBetween'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').andOnNotBetween('c.id', [2, 3])),
  },
  {
    id: 'JoinClause.orOnNotBetween',
    methods: ['JoinClause.orOnNotBetween'],
    build: (k) =>
      jc(k, (j) => j.on('c.document_id', 'documents.id').orOnNotBetween('c.id', [1, 3])),
  },
  {
    id: 'JoinClause.onJsonPathEquals',
    methods: ['JoinClause.onJsonPathEquals'],
    build: (k) =>
      d(k)
        .select('documents.id', 'o.id as o')
        .join('documents as o', (j: Knex.JoinClause) =>
          j.onJsonPathEquals('documents.tags', '$.a', 'o.tags', '$.a'),
        ),
  },
  {
    id: 'JoinClause.orOnJsonPathEquals',
    methods: ['JoinClause.orOnJsonPathEquals'],
    build: (k) =>
      d(k)
        .select('documents.id', 'o.id as o')
        .join('documents as o', (j: Knex.JoinClause) =>
          j.on('o.id', 'documents.id').orOnJsonPathEquals('documents.tags', '$.a', 'o.tags', '$.b'),
        ),
  },
  {
    id: 'JoinClause.using',
    methods: ['JoinClause.using'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .join('comments', (j: Knex.JoinClause) => j.using(['id'])),
  },
  {
    id: 'JoinClause.type',
    methods: ['JoinClause.type'],
    build: (k) => jc(k, (j) => j.on('c.document_id', 'documents.id').type('left')),
  },
  {
    id: 'left join ... using tenant table',
    methods: ['leftJoin', 'JoinClause.using'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .leftJoin('comments', (j: Knex.JoinClause) => j.using('id')),
  },
];

const setsAndCtes: CorpusCase[] = [
  {
    id: 'union builder',
    methods: ['union'],
    build: (k) => d(k).select('id').where('id', 1).union(d(k).select('id').where('id', 2)),
  },
  {
    id: 'union callback',
    methods: ['union'],
    build: (k) =>
      d(k)
        .select('id')
        .where('id', 1)
        .union((qb: Knex.QueryBuilder) => qb.select('document_id').from('comments')),
  },
  {
    id: 'union raw',
    methods: ['union'],
    build: (k) => d(k).select('id').where('id', 1).union(k.raw('select 99')),
  },
  {
    id: 'union wrapped',
    methods: ['union'],
    build: (k) =>
      d(k)
        .select('id')
        .where('id', 1)
        .union([sub(k)], true),
  },
  {
    id: 'unionAll',
    methods: ['unionAll'],
    build: (k) => d(k).select('id').unionAll(sub(k)),
  },
  {
    id: 'intersect',
    methods: ['intersect'],
    build: (k) => d(k).select('id').intersect(sub(k)),
  },
  { id: 'except', methods: ['except'], build: (k) => d(k).select('id').except(sub(k)) },
  {
    id: 'with builder',
    methods: ['with'],
    build: (k) => k.with('w', d(k).select('id', 'title')).select('*').from('w'),
  },
  {
    id: 'with callback',
    methods: ['with'],
    build: (k) =>
      k
        .with('w', (qb: Knex.QueryBuilder) => qb.select('id').from('comments'))
        .select('*')
        .from('w'),
  },
  {
    id: 'with raw',
    methods: ['with'],
    build: (k) => k.with('w', k.raw('select 1 as x')).select('*').from('w'),
  },
  {
    id: 'with column list',
    methods: ['with'],
    build: (k) => k.with('w', ['a', 'b'], d(k).select('id', 'title')).select('*').from('w'),
  },
  {
    id: 'withRecursive',
    methods: ['withRecursive'],
    build: (k) =>
      k
        .withRecursive('r', (qb: Knex.QueryBuilder) =>
          qb
            .select('id')
            .from('documents')
            .where('id', 1)
            .union((u: Knex.QueryBuilder) =>
              u
                .select('documents.id')
                .from('documents')
                .join('r', 'r.id', k.raw('documents.id - 1')),
            ),
        )
        .select('*')
        .from('r'),
  },
  {
    id: 'withMaterialized',
    methods: ['withMaterialized'],
    build: (k) => k.withMaterialized('w', d(k).select('id')).select('*').from('w'),
  },
  {
    id: 'withNotMaterialized',
    methods: ['withNotMaterialized'],
    build: (k) => k.withNotMaterialized('w', d(k).select('id')).select('*').from('w'),
  },
  {
    id: 'withRaw',
    methods: ['withRaw'],
    build: (k) => k.withRaw('w', 'select code from countries').select('*').from('w'),
  },
  {
    id: 'withRaw tenant table',
    methods: ['withRaw'],
    build: (k) => k.withRaw('w', k.raw('select id from documents')).select('*').from('w'),
  },
  {
    id: 'withWrapped',
    methods: ['withWrapped'],
    build: (k) => k.queryBuilder().withWrapped('w', d(k).select('id')).select('*').from('w'),
  },
  {
    id: 'cte joined with tenant table',
    methods: ['with', 'join'],
    build: (k) =>
      k
        .with('w', sub(k))
        .select('documents.id')
        .from('documents')
        .join('w', 'w.document_id', 'documents.id'),
  },
  {
    id: 'nested cte in subquery',
    methods: ['with', 'whereIn'],
    build: (k) => d(k).whereIn('id', k.with('w', sub(k)).select('document_id').from('w')),
  },
];

const locks: CorpusCase[] = [
  { id: 'forUpdate', methods: ['forUpdate'], build: (k) => d(k).select('id').forUpdate() },
  {
    id: 'forUpdate of table',
    methods: ['forUpdate'],
    build: (k) => d(k).select('id').forUpdate('documents'),
  },
  { id: 'forShare', methods: ['forShare'], build: (k) => d(k).select('id').forShare() },
  {
    id: 'forNoKeyUpdate',
    methods: ['forNoKeyUpdate'],
    build: (k) => d(k).select('id').forNoKeyUpdate(),
  },
  { id: 'forKeyShare', methods: ['forKeyShare'], build: (k) => d(k).select('id').forKeyShare() },
  {
    id: 'skipLocked',
    methods: ['skipLocked'],
    build: (k) => d(k).select('id').forUpdate().skipLocked(),
  },
  { id: 'noWait', methods: ['noWait'], build: (k) => d(k).select('id').forUpdate().noWait() },
];

// ---- writes -----------------------------------------------------------------

const row = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  title: `acme:n${id}`,
  views: id,
  ...extra,
});

const writes: CorpusCase[] = [
  { id: 'insert object', methods: ['insert'], write: true, build: (k) => d(k).insert(row(10)) },
  {
    id: 'insert array',
    methods: ['insert'],
    write: true,
    build: (k) => d(k).insert([row(10), row(11)]),
  },
  {
    id: 'insert returning',
    methods: ['insert', 'returning'],
    write: true,
    build: (k) => d(k).insert(row(10)).returning(['id', 'title']),
  },
  {
    id: 'insert returning *',
    methods: ['insert', 'returning'],
    write: true,
    build: (k) => d(k).insert(row(10), '*'),
  },
  {
    id: 'insert returning raw',
    methods: ['returning'],
    write: true,
    build: (k) => d(k).insert(row(10)).returning(k.raw('id * 2 as twice')),
  },
  {
    id: 'insert raw value',
    methods: ['insert'],
    write: true,
    build: (k) => d(k).insert(row(10, { title: k.raw('upper(?)', ['acme:x']) })),
  },
  {
    id: 'insert subquery value',
    methods: ['insert'],
    write: true,
    build: (k) => d(k).insert(row(10, { views: k('comments').max('id') })),
  },
  {
    id: 'insert into',
    methods: ['into'],
    write: true,
    build: (k) => k.insert(row(10)).into('documents'),
  },
  {
    id: 'insert own tenant_id',
    methods: ['insert'],
    write: true,
    build: (k) => d(k).insert(row(10, { tenant_id: 'acme' })),
  },
  {
    id: 'insert select',
    methods: ['insert'],
    write: true,
    build: (k) =>
      d(k).insert(d(k).select(k.raw('tenant_id, id + 10, title, views, tags, country'))),
  },
  {
    id: 'insert shared',
    methods: ['insert'],
    write: true,
    build: (k) => k('countries').insert({ code: 'it', name: 'Italy' }),
  },
  {
    id: 'onConflict merge',
    methods: ['onConflict', 'OnConflictQueryBuilder.merge'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(['tenant_id', 'id']).merge(),
  },
  {
    id: 'onConflict merge columns',
    methods: ['OnConflictQueryBuilder.merge'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(['tenant_id', 'id']).merge(['title']),
  },
  {
    id: 'onConflict merge object',
    methods: ['OnConflictQueryBuilder.merge'],
    write: true,
    build: (k) =>
      d(k).insert(row(1)).onConflict(['tenant_id', 'id']).merge({ title: 'acme:merged' }),
  },
  {
    id: 'onConflict merge raw',
    methods: ['OnConflictQueryBuilder.merge'],
    write: true,
    build: (k) =>
      d(k)
        .insert(row(1))
        .onConflict(['tenant_id', 'id'])
        .merge({ views: k.raw('documents.views + 1') }),
  },
  {
    id: 'onConflict merge where',
    methods: ['OnConflictQueryBuilder.merge', 'where'],
    write: true,
    build: (k) =>
      d(k)
        .insert(row(1))
        .onConflict(['tenant_id', 'id'])
        .merge(['title'])
        .where('documents.views', '>', 0),
  },
  {
    id: 'onConflict ignore',
    methods: ['OnConflictQueryBuilder.ignore'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(['tenant_id', 'id']).ignore(),
  },
  {
    id: 'onConflict without tenant column',
    methods: ['onConflict'],
    write: true,
    build: (k) => k('documents').insert(row(1)).onConflict('id').ignore(),
  },
  {
    id: 'onConflict raw target',
    methods: ['onConflict'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(k.raw('(tenant_id, id)')).ignore(),
  },
  {
    id: 'update object',
    methods: ['update'],
    write: true,
    build: (k) => d(k).where('id', 1).update({ title: 'acme:u' }),
  },
  {
    id: 'update col val',
    methods: ['update'],
    write: true,
    build: (k) => d(k).where('id', 1).update('views', 9),
  },
  {
    id: 'update raw value',
    methods: ['update'],
    write: true,
    build: (k) => d(k).update({ views: k.raw('?? * 2', ['views']) }),
  },
  {
    id: 'update subquery value',
    methods: ['update'],
    write: true,
    build: (k) =>
      d(k).update({
        views: k('comments').count('*').whereRaw('comments.document_id = documents.id'),
      }),
  },
  {
    id: 'update returning',
    methods: ['update', 'returning'],
    write: true,
    build: (k) => d(k).where('id', 2).update({ views: 0 }, ['id', 'views']),
  },
  {
    id: 'update whereIn subquery',
    methods: ['update', 'whereIn'],
    write: true,
    build: (k) => d(k).whereIn('id', sub(k)).update({ views: 0 }),
  },
  {
    id: 'updateFrom',
    methods: ['updateFrom'],
    write: true,
    build: (k) =>
      d(k)
        .updateFrom('countries')
        .update({ title: k.ref('countries.name') })
        .whereRaw('countries.code = documents.country'),
  },
  {
    id: 'updateFrom tenant',
    methods: ['updateFrom'],
    write: true,
    build: (k) =>
      d(k)
        .updateFrom('comments')
        .update({ views: 42 })
        .whereRaw('comments.document_id = documents.id'),
  },
  {
    id: 'update with join',
    methods: ['update', 'join'],
    write: true,
    build: (k) =>
      d(k).join('comments', 'comments.document_id', 'documents.id').update({ views: 5 }),
  },
  {
    id: 'increment',
    methods: ['increment'],
    write: true,
    build: (k) => d(k).where('id', 1).increment('views', 2),
  },
  {
    id: 'increment object',
    methods: ['increment'],
    write: true,
    build: (k) => d(k).increment({ views: 1 }),
  },
  { id: 'decrement', methods: ['decrement'], write: true, build: (k) => d(k).decrement('views') },
  { id: 'del', methods: ['del'], write: true, build: (k) => d(k).where('id', 1).del() },
  {
    id: 'delete returning',
    methods: ['delete'],
    write: true,
    build: (k) => d(k).where('id', '>', 2).delete(['id']),
  },
  {
    id: 'delete whereExists',
    methods: ['delete', 'whereExists'],
    write: true,
    build: (k) =>
      d(k).whereNotExists(k('comments').whereRaw('comments.document_id = documents.id')).delete(),
  },
  {
    id: 'using',
    methods: ['using'],
    write: true,
    build: (k) => d(k).using(['countries']).whereRaw('countries.code = documents.country').del(),
  },
  {
    id: 'using tenant',
    methods: ['using'],
    write: true,
    build: (k) =>
      d(k).using(loose('comments')).whereRaw('comments.document_id = documents.id').del(),
  },
  { id: 'truncate', methods: ['truncate'], write: true, build: (k) => d(k).truncate() },
  {
    id: 'columnInfo',
    methods: ['columnInfo'],
    build: (k) => d(k).columnInfo(),
  },
];

// ---- the attack classes of issue 11 ------------------------------------------

const attacks: CorpusCase[] = [
  // 1. table references that are not plain strings
  {
    id: 'from array',
    attack: '1 non-string table',
    methods: ['from'],
    build: (k) => k.select('*').from(['documents'] as unknown as string),
  },
  {
    id: 'from knex.ref',
    attack: '1 non-string table',
    methods: ['from'],
    build: (k) => k.select('*').from(k.ref('documents') as unknown as string),
  },
  {
    id: 'join knex.ref',
    attack: '1 non-string table',
    methods: ['join'],
    build: (k) =>
      d(k)
        .select('documents.id')
        .join(k.ref('comments') as unknown as string, 'comments.id', 'documents.id'),
  },
  {
    id: 'from odd prototype alias object',
    attack: '1 non-string table',
    methods: ['from'],
    build: (k) => {
      const alias = Object.create({ toString: () => 'x' }) as Record<string, string>;
      alias.d = 'documents';
      return k.select('*').from(alias as unknown as string);
    },
  },
  {
    id: 'update knex.ref target',
    attack: '1 non-string table',
    methods: ['update'],
    write: true,
    build: (k) => k(k.ref('documents') as unknown as string).update({ views: 0 }),
  },
  {
    id: 'delete array target',
    attack: '1 non-string table',
    methods: ['del'],
    write: true,
    build: (k) => k(['documents'] as unknown as string).del(),
  },
  {
    id: 'using knex.ref',
    attack: '1 non-string table',
    methods: ['using'],
    write: true,
    build: (k) =>
      d(k)
        .using(loose(k.ref('comments')))
        .where('documents.id', 1)
        .del(),
  },
  // 2. odd aliases
  {
    id: 'alias with quotes',
    attack: '2 odd alias',
    methods: ['from'],
    build: (k) => k.select('*').from('documents as "d"'),
  },
  {
    id: 'alias object key with dot',
    attack: '2 odd alias',
    methods: ['from'],
    build: (k) => k.select('*').from({ 'x.documents': 'documents' }),
  },
  {
    id: 'alias object key with quote',
    attack: '2 odd alias',
    methods: ['join'],
    build: (k) =>
      d(k).select('documents.id').join({ 'c"': 'comments' }, 'documents.id', 'documents.id'),
  },
  {
    id: 'string alias with dot',
    attack: '2 odd alias',
    methods: ['from'],
    build: (k) => k.select('*').from('documents as x.documents'),
  },
  {
    id: 'colon alias with dot',
    attack: '2 odd alias',
    methods: ['join'],
    build: (k) =>
      d(k).select('documents.id').join('comments as a:b.c', 'documents.id', 'documents.id'),
  },
  {
    id: 'subquery aliased as a tenant table',
    attack: '2 odd alias',
    methods: ['from', 'as'],
    build: (k) =>
      k.select('*').from(k('countries').select(k.raw("'x' as tenant_id")).as('documents')),
  },
  // 3. tenant column keys with whitespace / Unicode spaces / qualified
  ...[
    ' tenant_id',
    'tenant_id ',
    '\u00a0tenant_id',
    'tenant_id\u2003',
    '\ufefftenant_id',
    'documents.tenant_id',
    'tenant_id[1]',
  ].flatMap((key): CorpusCase[] => [
    {
      id: `update key ${JSON.stringify(key)}`,
      attack: '3 tenant key',
      refuse: 'row',
      methods: ['update'],
      write: true,
      build: (k) =>
        d(k)
          .where('id', 1)
          .update({ [key]: 'globex' }),
    },
    {
      id: `merge key ${JSON.stringify(key)}`,
      attack: '3 tenant key',
      refuse: 'row',
      methods: ['OnConflictQueryBuilder.merge'],
      write: true,
      build: (k) =>
        d(k)
          .insert(row(1))
          .onConflict(['tenant_id', 'id'])
          .merge({ [key]: 'globex' }),
    },
    {
      id: `insert key ${JSON.stringify(key)}`,
      attack: '3 tenant key',
      refuse: 'row',
      methods: ['insert'],
      write: true,
      build: (k) => d(k).insert(row(20, { [key]: 'globex' })),
    },
  ]),
  {
    id: 'update tenant_id',
    attack: '3 tenant key',
    refuse: 'row',
    methods: ['update'],
    write: true,
    build: (k) => d(k).update({ tenant_id: 'globex' }),
  },
  {
    id: 'update col val tenant_id',
    attack: '3 tenant key',
    refuse: 'row',
    methods: ['update'],
    write: true,
    build: (k) => d(k).update(' tenant_id', 'globex'),
  },
  {
    id: 'merge tenant_id excluded trick',
    attack: '3 tenant key',
    refuse: 'row',
    methods: ['OnConflictQueryBuilder.merge'],
    write: true,
    build: (k) =>
      d(k)
        .insert(row(1))
        .onConflict(['tenant_id', 'id'])
        .merge({ tenant_id: k.raw('?', ['globex']) }),
  },
  {
    id: 'raw conflict target without the tenant column',
    attack: '3 tenant key',
    refuse: 'row',
    methods: ['onConflict'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(k.raw('(id)')).merge(),
  },
  {
    id: 'raw conflict target with a tenant-column lookalike',
    attack: '3 tenant key',
    refuse: 'row',
    methods: ['onConflict'],
    write: true,
    build: (k) => d(k).insert(row(1)).onConflict(k.raw('(" tenant_id", id)')).merge(),
  },
  // 4. INSERT ... SELECT with reordered columns
  {
    id: 'raw insert select reordered (title into tenant_id)',
    attack: '4 insert select',
    refuse: true,
    methods: ['insert'],
    write: true,
    build: (k) =>
      k.raw(
        'insert into documents (id, tenant_id, title) select id + 50, title, tenant_id from documents where documents.tenant_id = ?',
        ['acme'],
      ),
  },
  {
    id: 'raw insert select reordered, tenant bound',
    attack: '4 insert select',
    methods: ['insert'],
    write: true,
    build: (k) =>
      k.raw(
        'insert into documents (title, tenant_id, id) select title, ?, id + 50 from documents where documents.tenant_id = ?',
        ['acme', 'acme'],
      ),
  },
  {
    id: 'raw insert select of the source tenant column',
    attack: '4 insert select',
    methods: ['insert'],
    write: true,
    build: (k) =>
      k.raw(
        'insert into documents (title, tenant_id, id) select d.title, d.tenant_id, d.id + 60 from documents d where d.tenant_id = ?',
        ['acme'],
      ),
  },
  {
    id: 'raw insert select other tenant bound',
    attack: '4 insert select',
    refuse: true,
    methods: ['insert'],
    write: true,
    build: (k) =>
      k.raw(
        'insert into documents (tenant_id, id, title) select ?, id + 70, title from documents where documents.tenant_id = ?',
        ['globex', 'acme'],
      ),
  },
  // 5. identifier bindings, escaped identifiers, dynamic SQL
  {
    id: 'raw ?? table',
    attack: '5 raw identifiers',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select * from ??', ['documents']),
  },
  {
    id: 'raw :name: table',
    attack: '5 raw identifiers',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select * from :t:', { t: 'documents' }),
  },
  {
    id: 'whereRaw ?? subquery table',
    attack: '5 raw identifiers',
    refuse: true,
    methods: ['whereRaw'],
    build: (k) => k('countries').whereRaw('exists (select 1 from ?? x)', ['documents']),
  },
  {
    id: 'U& escaped table',
    attack: '5 raw identifiers',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select * from U&"d\\006Fcuments"'),
  },
  {
    id: 'U& escaped table with tenant filter',
    attack: '5 raw identifiers',
    methods: ['fromRaw'],
    build: (k) =>
      k.raw('select id from U&"d\\006Fcuments" where U&"d\\006Fcuments".tenant_id = ?', ['acme']),
  },
  {
    id: 'quoted mixed-case tenant table',
    attack: '5 raw identifiers',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select * from "DOCUMENTS"'),
  },
  {
    id: 'DO block',
    attack: '5 dynamic SQL',
    refuse: true,
    methods: ['fromRaw'],
    write: true,
    build: (k) => k.raw("do $$ begin execute 'delete from documents'; end $$"),
  },
  {
    id: 'query_to_xml',
    attack: '5 dynamic SQL',
    refuse: true,
    methods: ['select'],
    build: (k) =>
      k('countries').select(k.raw("query_to_xml('select * from documents', true, true, '')")),
  },
  {
    id: 'user function executing SQL',
    attack: '5 dynamic SQL',
    refuse: true,
    methods: ['select'],
    build: (k) => k('countries').select(k.raw('run_sql(?)', ['select count(*) from documents'])),
  },
  {
    id: 'table_to_xml',
    attack: '5 dynamic SQL',
    refuse: true,
    methods: ['select'],
    build: (k) => k.select(k.raw("table_to_xml('documents', true, true, '')")),
  },
  {
    id: 'set_config',
    attack: '5 dynamic SQL',
    refuse: true,
    methods: ['select'],
    build: (k) => k.select(k.raw("set_config('app.tenant_id', 'globex', false)")),
  },
  // 6. unscanned raw positions and second statements
  {
    id: 'offset raw second statement',
    attack: '6 second statement',
    refuse: true,
    methods: ['offset'],
    write: true,
    build: (k) => k('countries').offset(loose(k.raw('0; delete from documents'))),
  },
  {
    id: 'orderByRaw second statement, no bindings',
    attack: '6 second statement',
    refuse: true,
    methods: ['orderByRaw'],
    write: true,
    build: (k) => k('countries').orderByRaw('1; delete from documents'),
  },
  {
    id: 'whereRaw second statement',
    attack: '6 second statement',
    refuse: true,
    methods: ['whereRaw'],
    write: true,
    build: (k) => d(k).whereRaw('true; delete from documents'),
  },
  {
    id: 'raw second statement',
    attack: '6 second statement',
    refuse: true,
    methods: ['fromRaw'],
    write: true,
    build: (k) => k.raw('select 1; delete from documents'),
  },
  {
    id: 'forUpdate of raw',
    attack: '6 unscanned raw',
    refuse: true,
    methods: ['forUpdate'],
    build: (k) =>
      k('countries').forUpdate(k.raw('countries; select * from documents') as unknown as string),
  },
  {
    id: 'nested on(function) raw',
    attack: '6 unscanned raw',
    methods: ['JoinClause.on'],
    build: (k) =>
      k('countries')
        .select('countries.code')
        .join('countries as c2', (j: Knex.JoinClause) =>
          j.on((inner: Knex.JoinClause) =>
            inner.on(k.raw('c2.code in (select country from documents)')),
          ),
        ),
    refuse: true,
  },
  {
    id: 'comment breaking out',
    attack: '6 unscanned raw',
    methods: ['comment'],
    build: (k) => k('countries').comment('x */ select * from documents /*'),
    refuse: true,
  },
  // 7. CTE names per query level
  {
    id: 'cte in one subquery, real table elsewhere',
    attack: '7 cte scope',
    refuse: true,
    methods: ['with', 'whereIn', 'orWhereIn'],
    build: (k) =>
      k('countries')
        .whereIn('code', k.with('secrets', k.raw("select 'fr' as v")).select('v').from('secrets'))
        .orWhereIn('code', k.select('v').from('secrets')),
  },
  {
    id: 'cte shadowing a tenant table',
    attack: '7 cte scope',
    refuse: true,
    methods: ['with'],
    build: (k) =>
      k.with('documents', k.raw("select 'globex' as tenant_id")).select('*').from('documents'),
  },
  {
    id: 'cte visible in nested subquery',
    attack: '7 cte scope',
    methods: ['with', 'whereIn'],
    build: (k) =>
      k
        .with('w', k('countries').select('code'))
        .select('*')
        .from('documents')
        .whereIn('country', k.select('code').from('w')),
  },
  // 8. unknownTables: 'shared'
  {
    id: 'shared: other schema table',
    attack: '8 unknownTables shared',
    instance: 'shared',
    refuse: true,
    methods: ['from'],
    build: (k) => k.select('*').from('tenant_globex.notes'),
  },
  {
    id: 'shared: withSchema other schema',
    attack: '8 unknownTables shared',
    instance: 'shared',
    refuse: true,
    methods: ['withSchema'],
    build: (k) => k.withSchema('tenant_globex').select('*').from('notes'),
  },
  {
    id: 'shared: raw other schema',
    attack: '8 unknownTables shared',
    instance: 'shared',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select * from tenant_globex.notes'),
  },
  {
    id: 'shared: padded schema name',
    attack: '8 unknownTables shared',
    instance: 'shared',
    refuse: true,
    methods: ['from'],
    build: (k) => k.select('*').from({ n: 'tenant_globex .notes' }),
  },
  {
    id: 'shared: pg_catalog',
    attack: '8 unknownTables shared',
    instance: 'shared',
    refuse: true,
    methods: ['from'],
    build: (k) => k.select('*').from('pg_catalog.pg_authid'),
  },
  {
    id: 'shared: undeclared public table',
    attack: '8 unknownTables shared',
    instance: 'shared',
    methods: ['from'],
    build: (k) => k.select('*').from('secrets'),
  },
  // 9. OR inside raw conditions
  {
    id: 'whereRaw or true',
    attack: '9 raw or',
    methods: ['whereRaw'],
    build: (k) => d(k).whereRaw('id = 1 or true'),
  },
  {
    id: 'where(raw) or true',
    attack: '9 raw or',
    methods: ['where'],
    build: (k) => d(k).where(k.raw('true or id = 1')),
  },
  {
    id: 'where col raw or',
    attack: '9 raw or',
    methods: ['where'],
    build: (k) => d(k).where('id', k.raw('1 or true')),
  },
  {
    id: 'orWhereRaw after where',
    attack: '9 raw or',
    methods: ['orWhereRaw'],
    build: (k) => d(k).where('id', 1).orWhereRaw('true'),
  },
  {
    id: 'havingRaw or true',
    attack: '9 raw or',
    methods: ['havingRaw'],
    build: (k) => d(k).select('country').groupBy('country').havingRaw('count(*) > 100 or true'),
  },
  {
    id: 'joinRaw or true',
    attack: '9 raw or',
    methods: ['joinRaw'],
    refuse: true,
    build: (k) =>
      d(k).select('documents.id', 'comments.body').joinRaw('join comments on true or true'),
  },
  {
    id: 'leftJoin on raw or',
    attack: '9 raw or',
    methods: ['leftJoin', 'JoinClause.on'],
    build: (k) =>
      d(k)
        .select('documents.id', 'c.body')
        .leftJoin('comments as c', (j: Knex.JoinClause) =>
          j.on(k.raw('c.document_id = documents.id or true')),
        ),
  },
  {
    id: 'update whereRaw or true',
    attack: '9 raw or',
    methods: ['update', 'whereRaw'],
    write: true,
    build: (k) => d(k).whereRaw('id = 1 or true').update({ views: 0 }),
  },
  {
    id: 'delete orWhere',
    attack: '9 raw or',
    methods: ['del', 'orWhere'],
    write: true,
    build: (k) => d(k).where('id', 1).orWhere('id', '>', 0).del(),
  },
  // hand-bound tenant conditions
  {
    id: 'raw filtered by the current tenant',
    attack: 'hand-bound tenant',
    methods: ['fromRaw'],
    build: (k) =>
      k.raw('select id, title from documents where tenant_id = ? order by id', ['acme']),
  },
  {
    id: 'raw filtered by another tenant',
    attack: 'hand-bound tenant',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw('select id, title from documents where tenant_id = ?', ['globex']),
  },
  {
    id: 'raw filtered by a literal tenant',
    attack: 'hand-bound tenant',
    refuse: true,
    methods: ['fromRaw'],
    build: (k) => k.raw("select id, title from documents where tenant_id = 'globex'"),
  },
  {
    id: 'where tenant_id other tenant',
    attack: 'hand-bound tenant',
    methods: ['where'],
    build: (k) => d(k).where('tenant_id', 'globex'),
  },
];

/** The whole corpus. */
export const CORPUS: readonly CorpusCase[] = [
  ...selects,
  ...wheres,
  ...groups,
  ...orders,
  ...aggregates,
  ...joins,
  ...setsAndCtes,
  ...locks,
  ...writes,
  ...attacks,
];
