import type { Knex } from 'knex';
import type { TenantRecord, TenantTier } from '../../context/tenant-record';
import { quoteIdent, quoteTable, type DoctorFinding } from './doctor-finding';
import { doctorTierOf } from './doctor-tier';
import { tableLabel, type RowTierTable } from './row-tier-catalog';

/**
 * Rows of the row tier's tenant tables that no live row-tier record owns:
 * rows of a tenant without a record (purged, or written by another tool)
 * or with a NULL tenant are errors; rows of a deleted-but-not-purged
 * tenant, or of a tenant that now lives on another tier (a move that kept
 * its source), are warnings. `only` narrows the count to one tenant.
 */
export async function rowTierOrphanFindings(
  knex: Knex,
  tables: readonly RowTierTable[],
  records: ReadonlyMap<string, TenantRecord>,
  options: { tenantColumn: string; defaultTier: TenantTier; only: string | undefined },
): Promise<DoctorFinding[]> {
  const findings: DoctorFinding[] = [];
  const { rows: me } = (await knex.raw(
    'select rolsuper or rolbypassrls as bypasses from pg_roles where rolname = current_user',
  )) as { rows: Array<{ bypasses: boolean }> };
  const bypasses = me[0]?.bypasses === true;
  const column = quoteIdent(options.tenantColumn);
  for (const t of tables) {
    if (t.kind !== 'tenant' || t.tenantAttnum === null) continue;
    const base = { check: 'orphaned-rows' as const, tier: 'row' as const, table: tableLabel(t) };
    if (t.rowSecurity && !bypasses) {
      // Under RLS the doctor's own role would count nothing and call the table clean.
      findings.push({
        ...base,
        severity: 'warning',
        detail: `Cannot count the tenants of "${tableLabel(t)}" because row-level security hides its rows from the doctor's role.`,
        fix: 'Run the doctor as a role with BYPASSRLS (or the superuser) to check for orphaned rows.',
      });
      continue;
    }
    // Names come from the catalog and are quoted; the one value is a binding.
    const { rows } = (await knex.raw(
      `select ${column}::text as tenant, count(*)::int8 as n from ${quoteTable(t)}
        ${options.only !== undefined ? `where ${column}::text = ?` : ''} group by 1 order by 1`,
      options.only !== undefined ? [options.only] : [],
    )) as { rows: Array<{ tenant: string | null; n: string }> };
    for (const r of rows) {
      const n = Number(r.n);
      if (r.tenant === null) {
        findings.push({
          ...base,
          severity: 'error',
          detail: `${n} row(s) of "${tableLabel(t)}" have no ${options.tenantColumn}: no tenant can read them, and an unscoped tool reads them as everyone's.`,
          fix: `Assign them a tenant or delete them (delete from ${quoteTable(t)} where ${column} is null), then add "not null" to ${column}.`,
        });
        continue;
      }
      const record = records.get(r.tenant);
      if (record === undefined) {
        findings.push({
          ...base,
          severity: 'error',
          tenant: r.tenant,
          detail: `${n} row(s) of "${tableLabel(t)}" belong to tenant "${r.tenant}", which has no record: a purge left them behind, or another tool wrote them, and a tenant created again with that id would read them.`,
          fix: `tenantry tenants purge ${r.tenant} --yes (purges data left without a record).`,
        });
      } else if (record.status === 'deleted') {
        findings.push({
          ...base,
          severity: 'warning',
          tenant: r.tenant,
          detail: `${n} row(s) of "${tableLabel(t)}" belong to tenant "${r.tenant}", which is deleted but not purged.`,
          fix: `tenantry tenants purge ${r.tenant} --yes, once the data is no longer needed.`,
        });
      } else if (doctorTierOf(record, options.defaultTier) !== 'row') {
        findings.push({
          ...base,
          severity: 'warning',
          tenant: r.tenant,
          detail: `${n} row(s) of "${tableLabel(t)}" belong to tenant "${r.tenant}", which lives on the ${doctorTierOf(record, options.defaultTier)} tier: rows left on the row tier (e.g. a move that kept its source).`,
          fix: `Remove them once the move is verified (tenantry tenants move ... --cleanup, or delete from ${quoteTable(t)} where ${column} = '${r.tenant}').`,
        });
      }
    }
  }
  return findings;
}
