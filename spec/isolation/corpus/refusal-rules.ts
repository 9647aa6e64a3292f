/**
 * The documented rules a tenant-scoped statement can be refused by, each
 * recognised by the refusal's message. The corpus spec maps every refusal
 * to one of them and fails on a refusal no rule explains.
 */
export interface RefusalRule {
  readonly id: string;
  /** The rule, as the README states it. */
  readonly rule: string;
  readonly match: RegExp;
}

export const REFUSAL_RULES: readonly RefusalRule[] = [
  {
    id: 'lazy-builder-scope',
    rule: 'A builder runs only in the scope it was built in (or, built outside any scope, in the one that awaits it).',
    match: /builders are lazy and would cross tenants/,
  },
  {
    id: 'tenant-binding',
    rule: 'A tenant condition must be bound to the current tenant; tenant ids are never bound by hand to another tenant.',
    match: /tenant condition is not bound to the current tenant/,
  },
  {
    id: 'multiple-statements',
    rule: 'Exactly one statement per query: no `;` second statement.',
    match: /statements where exactly one is allowed/,
  },
  {
    id: 'unfiltered-tenant-reference',
    rule: 'Every tenant-table reference at every level needs a top-level AND `<alias>.tenant_id = <tenant>` (in ON for outer joins); raw SQL naming a tenant table must carry it.',
    match: /no top-level AND condition .* filters its rows/,
  },
  {
    id: 'catalog-read',
    rule: 'Catalog reads (columnInfo, information_schema, pg_catalog) are not tenant or shared tables and are refused; load metadata with the base Knex.',
    match: /relation "information_schema\.|relation "pg_catalog\./,
  },
  {
    id: 'undeclared-relation',
    rule: 'Every relation is a declared tenant table, a declared shared table or a WITH query visible at its level (unknownTables "shared": public only).',
    match:
      /neither a declared tenant table, a shared table nor a WITH query|neither a tenant table nor a shared table|must be schema-qualified|must be qualified with the tenant schema/,
  },
  {
    id: 'unclassifiable-table-reference',
    rule: 'Table references are "table", "table as alias", { alias: "table" } or subqueries; arrays, knex.ref(), other objects and aliases with quotes or dots are refused.',
    match:
      /not a plain table name|that is not a table name string|aliased table object|aliased table reference/,
  },
  {
    id: 'function-allow-list',
    rule: 'Only allow-listed built-in functions (and declared safeFunctions) may be called: none that runs SQL text, reads a table by name or changes settings.',
    match: /is not on the allow-list/,
  },
  {
    id: 'statement-kind',
    rule: 'Only SELECT, INSERT, UPDATE, DELETE and transaction control are sent: no DO, DDL, utility statements.',
    match: /is not a query the tenant-scoped Knex may send|transaction command/,
  },
  {
    id: 'tenant-column-write',
    rule: 'The tenant column is never written except to the current tenant (keys read as knex renders them: trimmed, dotted, array accessors).',
    match:
      /the tenant column|may only be set to the current tenant|names the tenant column|whose "tenant_id" is not the current tenant|Cannot merge "tenant_id"|partial write of the tenant column/,
  },
  {
    id: 'insert-mapping',
    rule: 'INSERT into a tenant table lists the tenant column and binds it to the tenant by position (VALUES and SELECT alike); knex insert(subquery) writes no column list and is refused.',
    match:
      /must list "tenant_id"|must be bound to the current tenant in every row|not provably the current tenant|insert from a subquery into a tenant table|INSERT \.\.\. SELECT/,
  },
  {
    id: 'conflict-target',
    rule: 'An upsert into a tenant table names a conflict target including the tenant column.',
    match: /conflict target (must )?include|unless the conflict target includes/,
  },
  {
    id: 'outer-join',
    rule: 'RIGHT and FULL OUTER joins on tenant tables are refused (unmatched rows of other tenants would survive); LEFT JOIN ... USING and left joins in writes too.',
    match:
      /RIGHT or FULL OUTER JOIN|LEFT JOIN \.\.\. USING|LEFT JOIN in a write statement|join on a tenant table/,
  },
  {
    id: 'update-join',
    rule: 'An update with joins is refused: knex drops joins from PostgreSQL updates.',
    match: /update with joins/,
  },
  {
    id: 'truncate',
    rule: "TRUNCATE of a tenant table is refused (it would delete every tenant's rows).",
    match: /Cannot truncate a tenant table/,
  },
  {
    id: 'cte-shadowing',
    rule: 'A WITH name may not shadow a tenant table.',
    match: /shadow(s)? a tenant table/,
  },
  {
    id: 'unparsable',
    rule: "A statement PostgreSQL's parser does not accept cannot be proven and is refused before it is sent.",
    match: /parser does not accept it/,
  },
  {
    id: 'unknown-construct',
    rule: 'Any parse-tree construct the verifier does not know (new syntax, column aliases on tenant tables, aliased joins, locking of other levels, ...) is refused.',
    match:
      /is not allowed|an unknown|column aliases on a tenant table|aliased JOIN|FOR UPDATE OF must name|a bad alias|two FROM items have the same name/,
  },
];

/** The rule a refusal message belongs to, or `undefined`. */
export function refusalRule(message: string): RefusalRule | undefined {
  return REFUSAL_RULES.find((r) => r.match.test(message));
}
