import type { Knex } from 'knex';

/** A table of the row tier as PostgreSQL's catalog describes it. */
export interface RowTierTable {
  readonly schema: string;
  readonly name: string;
  readonly oid: number;
  readonly kind: 'tenant' | 'shared';
  readonly rowSecurity: boolean;
  readonly forceRowSecurity: boolean;
  readonly owner: string;
  /** attnum of the tenant column, or null when the table has none. */
  readonly tenantAttnum: number | null;
}

/** A table name split as the catalog stores it (unqualified names live in `public`). */
export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

/** Splits `schema.name` / `name` (unqualified names are in `public`, as row mode resolves them). */
export function qualify(table: string): QualifiedName {
  const dot = table.indexOf('.');
  return dot === -1
    ? { schema: 'public', name: table }
    : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

/** `schema.name`, as findings name tables. */
export function tableLabel(t: QualifiedName): string {
  return `${t.schema}.${t.name}`;
}

/**
 * Reads the row tier's tenant and shared tables from pg_catalog: only
 * those that exist (a declared table missing is reported by the caller).
 */
export async function readRowTierTables(
  knex: Knex,
  tenantTables: readonly QualifiedName[],
  sharedTables: readonly QualifiedName[],
  tenantColumn: string,
): Promise<RowTierTable[]> {
  const wanted = [...tenantTables, ...sharedTables].map(tableLabel);
  if (wanted.length === 0) return [];
  const tenantSet = new Set(tenantTables.map(tableLabel));
  const { rows } = (await knex.raw(
    `select n.nspname as schema, c.relname as name, c.oid::int8 as oid,
            c.relrowsecurity as row_security, c.relforcerowsecurity as force_row_security,
            pg_get_userbyid(c.relowner) as owner,
            (select a.attnum from pg_attribute a
              where a.attrelid = c.oid and a.attname = ? and a.attnum > 0 and not a.attisdropped) as tenant_attnum
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname || '.' || c.relname = any(?::text[])
      order by 1, 2`,
    [tenantColumn, wanted],
  )) as {
    rows: Array<{
      schema: string;
      name: string;
      oid: string;
      row_security: boolean;
      force_row_security: boolean;
      owner: string;
      tenant_attnum: number | null;
    }>;
  };
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    oid: Number(r.oid),
    kind: tenantSet.has(`${r.schema}.${r.name}`) ? 'tenant' : 'shared',
    rowSecurity: r.row_security,
    forceRowSecurity: r.force_row_security,
    owner: r.owner,
    tenantAttnum: r.tenant_attnum,
  }));
}

/** Tables of `public` that have the tenant column: what `withTenancy({ tenantTables: { discover: true } })` finds. */
export async function discoverTenantTables(knex: Knex, tenantColumn: string): Promise<string[]> {
  // The same query as the engine's discovery (src/isolation/scoped-knex.ts), so doctor checks what it scopes.
  const { rows } = (await knex.raw(
    `select distinct c.table_name as name from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = 'public' and c.column_name = ? and t.table_type = 'BASE TABLE'
            and c.table_name not like 'tenantry\\_%'
      order by 1`,
    [tenantColumn],
  )) as { rows: Array<{ name: string }> };
  return rows.map((r) => r.name);
}
