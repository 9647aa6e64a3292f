import pg from 'pg';
import type { TenantIsolationSettings, TenantTier } from '../../context/tenant-record';

/** One table of a tenant's storage, as the catalog describes it. */
export interface MoveTable {
  /** Its schema. */
  readonly schema: string;
  /** Its name (tables are paired across tiers by name). */
  readonly name: string;
  /** Its columns in order, generated ones left out (they cannot be written). */
  readonly columns: readonly string[];
  /** Its primary key columns (the change capture records them). */
  readonly primaryKey: readonly string[];
  /** The column naming the tenant (row tier only: the tables are shared). */
  readonly tenantColumn: string | undefined;
  /** `"schema"."name"`, quoted. */
  readonly qualified: string;
}

/**
 * Where a tenant's data is on one tier (internal): the connection to its
 * storage, the schema of its tables (schema and database tiers) or the
 * tenant column filtering its rows out of the shared tables (row tier).
 */
export interface TierStorage {
  readonly tier: TenantTier;
  readonly tenantId: string;
  /** For messages: `the shared tables`, `schema "tenant_acme"`, `database "tenant_acme" on eu-1`. */
  readonly label: string;
  readonly connection: Readonly<Record<string, unknown>>;
  /** The isolation settings naming the storage (the record's, or the move's target). */
  readonly isolation?: TenantIsolationSettings | undefined;
  /** The schema of the tenant's tables (schema tier; database tier: `public`). Undefined on the row tier. */
  readonly schema: string | undefined;
  /** Row tier: the tables holding tenants' rows (schema, name, tenant column). */
  readonly rowTables?:
    (() => Promise<{ schema: string; name: string; column: string }[]>) | undefined;
  /** Row tier: the setting the RLS policies read, set on the mover's sessions so FORCE'd RLS shows the rows. */
  readonly rlsSetting?: string | undefined;
}

/** Tables of tenantry itself in a tenant schema or database: never moved. */
const OWN_TABLES = new Set(['tenantry_migrations', 'tenantry_migrations_lock']);

/** Quotes an identifier (names come from the catalog or the validated-id mapping). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a literal (tenant ids are validated; quoted all the same). */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Opens a plain client on the storage (the COPY streams need one). */
export async function openSession(storage: TierStorage): Promise<pg.Client> {
  const client = new pg.Client({ ...storage.connection } as pg.ClientConfig);
  // A dead server must fail the step, never crash the process.
  client.on('error', () => undefined);
  await client.connect();
  if (storage.tier === 'row' && storage.rlsSetting !== undefined) {
    await client.query('select set_config($1, $2, false)', [storage.rlsSetting, storage.tenantId]);
  }
  return client;
}

/** Ends a session, ignoring a connection that is already gone. */
export async function closeSession(client: pg.Client | undefined): Promise<void> {
  if (client === undefined) return;
  await client.end().catch(() => undefined);
}

interface TableRow {
  oid: number;
  schema: string;
  name: string;
  columns: string[];
  pk: string[] | null;
}

/**
 * The tenant's tables on a storage with their columns and primary keys,
 * parents before children (foreign-key order: what COPY must load first).
 */
export async function describeTables(
  client: pg.Client,
  storage: TierStorage,
): Promise<MoveTable[]> {
  let filter: string;
  let params: unknown[];
  const columnOf = new Map<string, string>();
  if (storage.tier === 'row') {
    const rows = await (storage.rowTables as NonNullable<TierStorage['rowTables']>)();
    for (const r of rows) columnOf.set(`${r.schema}.${r.name}`, r.column);
    filter = `c.oid = any ($1::regclass[])`;
    params = [rows.map((r) => `${ident(r.schema)}.${ident(r.name)}`)];
  } else {
    filter = `n.nspname = coalesce($1, current_schema()) and not (c.relname = any ($2::text[]))`;
    params = [storage.schema ?? null, [...OWN_TABLES]];
  }
  const { rows } = await client.query<TableRow>(
    `select c.oid::int as oid, n.nspname::text as schema, c.relname::text as name,
            array(select a.attname::text from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                   order by a.attnum) as columns,
            (select array(select a.attname::text from unnest(con.conkey) with ordinality k(num, i)
                            join pg_attribute a on a.attrelid = c.oid and a.attnum = k.num order by k.i)
               from pg_constraint con where con.conrelid = c.oid and con.contype = 'p') as pk
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and not c.relispartition and ${filter}
      order by n.nspname, c.relname`,
    params,
  );
  const edges = await client.query<{ child: number; parent: number }>(
    `select conrelid::int as child, confrelid::int as parent from pg_constraint
      where contype = 'f' and conrelid = any ($1::int[]) and confrelid = any ($1::int[]) and conrelid <> confrelid`,
    [rows.map((r) => r.oid)],
  );
  const byOid = new Map(rows.map((r) => [r.oid, r]));
  return parentsFirst(
    rows.map((r) => r.oid),
    edges.rows,
  ).map((oid) => {
    const r = byOid.get(oid) as TableRow;
    return {
      schema: r.schema,
      name: r.name,
      columns: r.columns,
      primaryKey: r.pk ?? [],
      tenantColumn: storage.tier === 'row' ? columnOf.get(`${r.schema}.${r.name}`) : undefined,
      qualified: `${ident(r.schema)}.${ident(r.name)}`,
    };
  });
}

// Kahn's algorithm: a table once every table it references is out. A cycle
// comes last, in catalog order (its constraints must be deferrable to load).
function parentsFirst(
  oids: readonly number[],
  edges: readonly { child: number; parent: number }[],
): number[] {
  const parents = new Map<number, Set<number>>(oids.map((o) => [o, new Set<number>()]));
  for (const e of edges) parents.get(e.child)?.add(e.parent);
  const out: number[] = [];
  const left = new Set(oids);
  while (left.size > 0) {
    const ready = [...left].filter((o) => [...(parents.get(o) ?? [])].every((p) => !left.has(p)));
    const next = ready.length > 0 ? ready : [[...left][0] as number];
    for (const o of next) {
      out.push(o);
      left.delete(o);
    }
  }
  return out;
}
