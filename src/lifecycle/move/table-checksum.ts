import type pg from 'pg';
import { ident, type MoveTable } from './storage-session';
import { tenantFilter, type TablePair } from './table-copy';

/** Row count and checksum of one table's rows of a tenant. */
export interface TableChecksum {
  readonly rows: number;
  readonly md5: string;
}

/**
 * The count and a checksum of the tenant's rows: two 64-bit hashes
 * (`hashtextextended`, seeds 0 and 1) of each row as text (over the
 * compared columns; the tenant column is left out, the schema and database
 * tiers may not have it), each summed over the table. A corruption check,
 * not a cryptographic one: it runs inside the write freeze, where md5 cost
 * several times more. The sum does not depend on row order, so nothing is
 * sorted (this runs inside the write freeze) and two servers that sort text
 * differently still agree.
 */
export async function tableChecksum(
  client: pg.Client,
  table: MoveTable,
  columns: readonly string[],
  tenantId: string,
): Promise<TableChecksum> {
  const row = `row(${columns.map((c) => `t.${ident(c)}`).join(', ')})::text`;
  const { rows } = await client.query<{ n: string; h: string }>(
    `select count(*)::text as n,
            coalesce(sum(hashtextextended(r, 0)), 0)::text || ':' ||
            coalesce(sum(hashtextextended(r, 1)), 0)::text as h
       from (select ${row} as r from ${table.qualified} t where ${tenantFilter(table, tenantId, 't.')}) x`,
  );
  return { rows: Number(rows[0]?.n ?? 0), md5: rows[0]?.h ?? '' };
}

/** Compares every pair; returns the row counts, or throws naming the first table that differs. */
export async function verifyTables(
  source: pg.Client,
  target: pg.Client,
  tenantId: string,
  pairs: readonly TablePair[],
): Promise<Record<string, number>> {
  const verified: Record<string, number> = {};
  for (const p of pairs) {
    const [a, b] = await Promise.all([
      tableChecksum(source, p.source, p.compared, tenantId),
      tableChecksum(target, p.target, p.compared, tenantId),
    ]);
    if (a.rows !== b.rows || a.md5 !== b.md5) {
      throw new Error(
        `the verification found table ${p.target.name} different on the target (${a.rows} rows, checksum ${a.md5} on the source; ${b.rows} rows, checksum ${b.md5} on the target)`,
      );
    }
    verified[`${p.target.schema}.${p.target.name}`] = a.rows;
  }
  return verified;
}
