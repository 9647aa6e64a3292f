import type { Knex } from 'knex';
import { DEFAULT_RLS_SETTING } from '../isolation/rls/row-level-security';

/** One table that holds rows of tenants, and the column(s) naming the tenant. */
export interface TenantRowTable {
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly string[];
}

/** How many rows of a tenant a table still holds. */
export interface TenantRowsLeft {
  readonly table: string;
  readonly rows: number;
}

/** Options of {@link TenantRows}. */
export interface TenantRowsOptions {
  /** The tenant column. */
  readonly tenantColumn: string;
  /** Tables declared tenant-scoped (e.g. `db.tenancy.tenantTables`), read on every call. */
  readonly declaredTables: () => readonly string[];
  /** Tables declared shared: never purged even with a tenant column. */
  readonly sharedTables: () => readonly string[];
  /** The central tenants table (foreign keys to it mark a tenant column too). */
  readonly tenantsTable: string;
  /** The setting the RLS policies read (set for the purge so FORCE'd RLS shows the rows). */
  readonly rlsSetting?: string | undefined;
}

interface CandidateRow {
  oid: number;
  schema: string;
  name: string;
  col: string;
}

/**
 * The rows of one tenant in the tables of the central database that hold
 * tenants' rows (internal): the declared tenant tables, every table on the
 * search path that has the tenant column (so a table nobody declared is
 * still found), and every table with a single-column foreign key to the
 * tenants table. Purge deletes them children first, in one transaction, and
 * counts them again in that transaction before it commits.
 */
export class TenantRows {
  readonly #knex: Knex;
  readonly #options: TenantRowsOptions;

  constructor(knex: Knex, options: TenantRowsOptions) {
    this.#knex = knex;
    this.#options = options;
  }

  /** The tables holding tenants' rows, children (referencing tables) before parents. */
  async tables(db: Knex | Knex.Transaction = this.#knex): Promise<TenantRowTable[]> {
    const { tenantColumn, tenantsTable } = this.#options;
    const declared = [...this.#options.declaredTables()];
    const shared = [...this.#options.sharedTables()];
    const { rows } = (await db.raw(
      `with tenants_table as (select to_regclass(?) as oid),
       shared as (select to_regclass(s) as oid from unnest(?::text[]) as s),
       cand as (
         select c.oid, a.attname::text as col
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          where c.relkind in ('r', 'p') and not c.relispartition
            and n.nspname = any (current_schemas(false)) and a.attname = ?
            and a.atttypid in ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
         union
         select c.oid, a.attname::text
           from unnest(?::text[]) as d(name)
           join pg_class c on c.oid = to_regclass(d.name)
           join pg_attribute a on a.attrelid = c.oid and a.attname = ? and not a.attisdropped
         union
         select con.conrelid, a.attname::text
           from pg_constraint con
           join pg_attribute a on a.attrelid = con.conrelid and a.attnum = con.conkey[1]
          where con.contype = 'f' and cardinality(con.conkey) = 1
            and con.confrelid = (select oid from tenants_table)
       )
       select cand.oid::int as oid, n.nspname as schema, c.relname as name, cand.col
         from cand
         join pg_class c on c.oid = cand.oid
         join pg_namespace n on n.oid = c.relnamespace
        where cand.oid is distinct from (select oid from tenants_table)
          and cand.oid not in (select oid from shared where oid is not null)
        order by n.nspname, c.relname, cand.col`,
      [tenantsTable, shared, tenantColumn, declared, tenantColumn],
    )) as { rows: CandidateRow[] };
    const byOid = new Map<number, { schema: string; name: string; columns: string[] }>();
    for (const r of rows) {
      const entry = byOid.get(r.oid) ?? { schema: r.schema, name: r.name, columns: [] };
      entry.columns.push(r.col);
      byOid.set(r.oid, entry);
    }
    if (byOid.size === 0) return [];
    const oids = [...byOid.keys()];
    const edges = (await db.raw(
      `select conrelid::int as child, confrelid::int as parent from pg_constraint
        where contype = 'f' and conrelid = any (?::int[]) and confrelid = any (?::int[])
          and conrelid <> confrelid`,
      [oids, oids],
    )) as { rows: { child: number; parent: number }[] };
    return childrenFirst(oids, edges.rows).map((oid) => byOid.get(oid) as TenantRowTable);
  }

  /** The tables that still hold rows of `tenantId` (empty: none left). */
  async remaining(tenantId: string): Promise<TenantRowsLeft[]> {
    return this.#knex.transaction(async (trx) => {
      await this.#asTenant(trx, tenantId);
      return this.#count(trx, await this.tables(trx), tenantId);
    });
  }

  /**
   * Deletes every row of `tenantId`, children before parents (with deferrable
   * constraints deferred), then counts again inside the same transaction:
   * when anything is left the transaction is rolled back and this throws.
   */
  async purge(tenantId: string): Promise<number> {
    return this.#knex.transaction(async (trx) => {
      await trx.raw('set constraints all deferred');
      await this.#asTenant(trx, tenantId);
      const tables = await this.tables(trx);
      let deleted = 0;
      for (const t of tables) {
        const query = trx.withSchema(t.schema).from(t.name);
        for (const col of t.columns) query.orWhere(col, tenantId);
        deleted += Number(await query.delete());
      }
      const left = await this.#count(trx, tables, tenantId);
      if (left.length > 0) {
        throw new Error(`${describeRowsLeft(left)} still hold rows of the tenant after deleting`);
      }
      return deleted;
    });
  }

  // With FORCE'd row-level security (the backstop) the rows are visible only
  // while the setting names the tenant: without it, deletes and counts would
  // see nothing and a purge would "verify" a table that is full.
  async #asTenant(trx: Knex.Transaction, tenantId: string): Promise<void> {
    await trx.raw('select set_config(?, ?, true)', [
      this.#options.rlsSetting ?? DEFAULT_RLS_SETTING,
      tenantId,
    ]);
  }

  async #count(
    trx: Knex.Transaction,
    tables: readonly TenantRowTable[],
    tenantId: string,
  ): Promise<TenantRowsLeft[]> {
    const left: TenantRowsLeft[] = [];
    for (const t of tables) {
      const query = trx.withSchema(t.schema).from(t.name);
      for (const col of t.columns) query.orWhere(col, tenantId);
      const row = (await query.count({ n: '*' }).first()) as { n: string | number } | undefined;
      const n = Number(row?.n ?? 0);
      if (n > 0) left.push({ table: `${t.schema}.${t.name}`, rows: n });
    }
    return left;
  }
}

/** "public.documents (3 rows), public.comments (1 row)". */
export function describeRowsLeft(left: readonly TenantRowsLeft[]): string {
  return left.map((l) => `${l.table} (${l.rows} ${l.rows === 1 ? 'row' : 'rows'})`).join(', ');
}

// Kahn's algorithm, emitting a table only once no remaining table references
// it. Tables in a cycle come last in catalog order: deferred constraints (or
// the cycle's own ON DELETE rules) have to cope with those.
function childrenFirst(
  oids: readonly number[],
  edges: readonly { child: number; parent: number }[],
): number[] {
  const children = new Map<number, Set<number>>(oids.map((o) => [o, new Set<number>()]));
  for (const e of edges) children.get(e.parent)?.add(e.child);
  const out: number[] = [];
  const left = new Set(oids);
  while (left.size > 0) {
    const ready = [...left].filter((o) => [...(children.get(o) ?? [])].every((c) => !left.has(c)));
    const next = ready.length > 0 ? ready : [[...left][0] as number];
    for (const o of next) {
      out.push(o);
      left.delete(o);
    }
  }
  return out;
}
