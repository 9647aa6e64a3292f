import type { Knex } from 'knex';
import { quoteIdent, quoteTable, type DoctorFinding } from './doctor-finding';
import { tableLabel, type QualifiedName, type RowTierTable } from './row-tier-catalog';

interface ConstraintRow {
  name: string;
  type: 'p' | 'u' | 'f';
  rel: string;
  frel: string;
  keys: number[];
  fkeys: number[] | null;
  def: string;
}

interface IndexRow {
  name: string;
  rel: string;
  unique: boolean;
  keys: number[];
  constraint: boolean;
  def: string;
}

const EXISTENCE_LEAK =
  "An upsert on it (insert ... on conflict) conflicts with another tenant's row, which tells the caller that row exists, and Citus cannot distribute a table whose unique keys leave out the distribution column.";

/**
 * The row tier's layout checks: every declared tenant table exists and
 * has the tenant column; its primary key, unique constraints and unique
 * indexes include the column; foreign keys between tenant tables carry it
 * on both sides; indexes lead with it.
 */
export async function rowTierLayoutFindings(
  knex: Knex,
  declared: readonly QualifiedName[],
  tables: readonly RowTierTable[],
  tenantColumn: string,
): Promise<DoctorFinding[]> {
  const findings: DoctorFinding[] = [];
  const found = new Map(tables.map((t) => [tableLabel(t), t]));
  for (const d of declared) {
    if (!found.has(tableLabel(d))) {
      findings.push({
        check: 'tenant-table-missing',
        severity: 'error',
        tier: 'row',
        table: tableLabel(d),
        detail: `Tenant table "${tableLabel(d)}" is declared in isolation.tenantTables but does not exist in the central database, so statements on it fail.`,
        fix: 'Run the tenant migrations (tenantry migrate), or remove the table from isolation.tenantTables.',
      });
    }
  }
  const tenant = tables.filter((t) => t.kind === 'tenant');
  for (const t of tenant) {
    if (t.tenantAttnum === null) {
      findings.push({
        check: 'tenant-column-missing',
        severity: 'error',
        tier: 'row',
        table: tableLabel(t),
        detail: `Tenant table "${tableLabel(t)}" has no "${tenantColumn}" column, so row mode cannot scope or stamp its rows.`,
        fix: `alter table ${quoteTable(t)} add column ${quoteIdent(tenantColumn)} text not null (backfill existing rows first), or declare the table shared.`,
      });
    }
  }
  const withColumn = tenant.filter((t) => t.tenantAttnum !== null);
  if (withColumn.length === 0 && tables.every((t) => t.kind === 'tenant')) return findings;
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const oids = tables.map((t) => t.oid);
  const names = await attributeNames(knex, oids);
  const columnsOf = (oid: number, keys: readonly number[]) =>
    keys.map((k) => names.get(`${oid}:${k}`) ?? (k === 0 ? '(expression)' : `#${k}`));

  const { rows: constraints } = (await knex.raw(
    `select con.conname as name, con.contype as type, con.conrelid::int8 as rel,
            con.confrelid::int8 as frel, con.conkey::int2[] as keys, con.confkey::int2[] as fkeys,
            pg_get_constraintdef(con.oid) as def
       from pg_constraint con
      where con.contype in ('p', 'u', 'f')
        and (con.conrelid = any(?::int8[]::oid[]) or con.confrelid = any(?::int8[]::oid[]))
      order by con.conname`,
    [oids, oids],
  )) as { rows: ConstraintRow[] };
  const keyFlagged = new Set<string>();
  for (const c of constraints) {
    const rel = byOid.get(Number(c.rel));
    if (c.type === 'f') {
      const target = byOid.get(Number(c.frel));
      if (rel === undefined || target?.kind !== 'tenant') continue;
      if (rel.kind === 'shared') {
        findings.push({
          check: 'foreign-key-without-tenant-column',
          severity: 'error',
          tier: 'row',
          table: tableLabel(rel),
          detail: `Foreign key "${c.name}" of shared table "${tableLabel(rel)}" references tenant table "${tableLabel(target)}" (${c.def}): a row every tenant reads points at one tenant's row, and Citus cannot reference a distributed table from a reference table.`,
          fix: `alter table ${quoteTable(rel)} drop constraint ${quoteIdent(c.name)}, or make "${tableLabel(rel)}" a tenant table.`,
        });
        continue;
      }
      if (rel.tenantAttnum === null || target.tenantAttnum === null) continue;
      const paired = c.keys.some(
        (k, i) => k === rel.tenantAttnum && c.fkeys?.[i] === target.tenantAttnum,
      );
      if (!paired) {
        findings.push({
          check: 'foreign-key-without-tenant-column',
          severity: 'error',
          tier: 'row',
          table: tableLabel(rel),
          detail: `Foreign key "${c.name}" of "${tableLabel(rel)}" (${c.def}) does not pair "${tenantColumn}" with "${tenantColumn}" of "${tableLabel(target)}": a row can reference another tenant's row, and Citus cannot co-locate the two tables.`,
          fix: `Reference (${quoteIdent(tenantColumn)}, ...) on both sides: add a unique key (${quoteIdent(tenantColumn)}, ${columnsOf(
            target.oid,
            c.fkeys ?? [],
          )
            .map(quoteIdent)
            .join(
              ', ',
            )}) to ${quoteTable(target)} and recreate "${c.name}" as foreign key (${quoteIdent(tenantColumn)}, ${columnsOf(rel.oid, c.keys).map(quoteIdent).join(', ')}) references it.`,
        });
      }
      continue;
    }
    if (rel?.kind !== 'tenant' || rel.tenantAttnum === null) continue;
    keyFlagged.add(c.name);
    if (!c.keys.includes(rel.tenantAttnum)) {
      const kind = c.type === 'p' ? 'Primary key' : 'Unique constraint';
      findings.push({
        check: 'key-without-tenant-column',
        severity: 'error',
        tier: 'row',
        table: tableLabel(rel),
        detail: `${kind} "${c.name}" of "${tableLabel(rel)}" (${c.def}) does not include "${tenantColumn}", so it is unique across every tenant. ${EXISTENCE_LEAK}`,
        fix: `Recreate "${c.name}" as ${c.type === 'p' ? 'primary key' : 'unique'} (${[tenantColumn, ...columnsOf(rel.oid, c.keys)].map(quoteIdent).join(', ')}).`,
      });
    }
  }

  const { rows: indexes } = (await knex.raw(
    `select ic.relname as name, i.indrelid::int8 as rel, i.indisunique as unique,
            (i.indkey::int2[])[0:i.indnkeyatts - 1] as keys,
            exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x')) as constraint,
            pg_get_indexdef(i.indexrelid) as def
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = any(?::int8[]::oid[])
      order by ic.relname`,
    [withColumn.map((t) => t.oid)],
  )) as { rows: IndexRow[] };
  for (const ix of indexes) {
    const rel = byOid.get(Number(ix.rel));
    if (rel?.tenantAttnum === undefined || rel.tenantAttnum === null) continue;
    const hasTenant = ix.keys.includes(rel.tenantAttnum);
    if (ix.unique && !ix.constraint && !hasTenant) {
      findings.push({
        check: 'key-without-tenant-column',
        severity: 'error',
        tier: 'row',
        table: tableLabel(rel),
        detail: `Unique index "${ix.name}" of "${tableLabel(rel)}" (${ix.def}) does not include "${tenantColumn}", so it is unique across every tenant. ${EXISTENCE_LEAK}`,
        fix: `drop index ${quoteIdent(rel.schema)}.${quoteIdent(ix.name)}; create unique index on ${quoteTable(rel)} (${[tenantColumn, ...columnsOf(rel.oid, ix.keys)].map(quoteIdent).join(', ')}).`,
      });
      continue;
    }
    // A key already reported for leaving the column out is not reported twice.
    if (ix.constraint && !hasTenant && keyFlagged.has(ix.name)) continue;
    if (ix.keys[0] !== rel.tenantAttnum) {
      findings.push({
        check: 'index-not-leading-tenant-column',
        severity: 'warning',
        tier: 'row',
        table: tableLabel(rel),
        detail: `Index "${ix.name}" of "${tableLabel(rel)}" (${ix.def}) does not lead with "${tenantColumn}": every scoped statement filters on "${tenantColumn}", so it scans other tenants' entries.`,
        fix: `Recreate it on (${[tenantColumn, ...columnsOf(rel.oid, ix.keys).filter((c) => c !== tenantColumn)].map(quoteIdent).join(', ')}).`,
      });
    }
  }
  return findings;
}

async function attributeNames(knex: Knex, oids: readonly number[]): Promise<Map<string, string>> {
  const { rows } = (await knex.raw(
    `select attrelid::int8 as rel, attnum, attname from pg_attribute
      where attrelid = any(?::int8[]::oid[]) and attnum > 0 and not attisdropped`,
    [[...oids]],
  )) as { rows: Array<{ rel: string; attnum: number; attname: string }> };
  return new Map(rows.map((r) => [`${Number(r.rel)}:${r.attnum}`, r.attname]));
}
