import type { Knex } from 'knex';
import {
  assertRlsSetting,
  rowLevelSecurityStatements,
} from '../../isolation/rls/row-level-security';
import { quoteIdent, quoteTable, type DoctorFinding } from './doctor-finding';
import { tableLabel, type RowTierTable } from './row-tier-catalog';

interface PolicyRow {
  rel: string;
  name: string;
  permissive: boolean;
  qual: string | null;
  check: string | null;
}

function applyFix(t: RowTierTable, tenantColumn: string, setting: string): string {
  // The statements applyRowLevelSecurity() runs, so doctor's fix and the library agree.
  if (t.schema === 'public') {
    return `${rowLevelSecurityStatements({ tables: [t.name], tenantColumn, setting }).join('; ')} (or applyRowLevelSecurity(knex, { tables: ['${t.name}'] }) as the table owner).`;
  }
  return `alter table ${quoteTable(t)} enable row level security; alter table ${quoteTable(t)} force row level security; and a policy comparing ${quoteIdent(tenantColumn)} with current_setting('${setting}', true).`;
}

/**
 * The RLS backstop's set-up on the row tier's tenant tables, as the
 * backstop's start-up check reads it (src/isolation/rls/rls-backstop.ts),
 * for the application's role (`role`, default: the doctor's own
 * `current_user`): RLS enabled and forced, a policy reading the setting,
 * no permissive policy that ignores it, and a role that does not bypass
 * RLS or own the tables.
 */
export async function rowTierRlsFindings(
  knex: Knex,
  tables: readonly RowTierTable[],
  options: { tenantColumn: string; setting: string; role: string | undefined },
): Promise<DoctorFinding[]> {
  const setting = assertRlsSetting(options.setting);
  const findings: DoctorFinding[] = [];
  const tenant = tables.filter((t) => t.kind === 'tenant' && t.tenantAttnum !== null);
  const { rows: roles } = (await knex.raw(
    `select rolname, rolsuper, rolbypassrls from pg_roles where rolname = coalesce(?::text, current_user)`,
    [options.role ?? null],
  )) as { rows: Array<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }> };
  const role = roles[0];
  const roleName = role?.rolname ?? options.role ?? '?';
  const roleFinding = (detail: string, fix: string): DoctorFinding => ({
    check: 'rls-role-bypasses',
    severity: 'error',
    tier: 'row',
    detail,
    fix,
  });
  if (!role) {
    findings.push(
      roleFinding(
        `The application role "${roleName}" does not exist, so the RLS backstop cannot be checked for it.`,
        'Pass the role the application connects as (--app-role / rlsRole).',
      ),
    );
  } else {
    if (role.rolsuper) {
      findings.push(
        roleFinding(
          `The application role "${roleName}" is a superuser: PostgreSQL applies no row-level security to it, so the backstop protects nothing.`,
          `Connect the application as a plain login role (create role app login; grant the table privileges), not as "${roleName}".`,
        ),
      );
    }
    if (role.rolbypassrls) {
      findings.push(
        roleFinding(
          `The application role "${roleName}" has BYPASSRLS: PostgreSQL applies no row-level security to it, so the backstop protects nothing.`,
          `alter role ${quoteIdent(roleName)} nobypassrls`,
        ),
      );
    }
    for (const t of tenant) {
      if (t.owner === roleName) {
        findings.push({
          ...roleFinding(
            `The application role "${roleName}" owns tenant table "${tableLabel(t)}": the owner can turn its row-level security off, and the backstop refuses to start.`,
            `alter table ${quoteTable(t)} owner to a migration role, and grant "${roleName}" only select, insert, update, delete.`,
          ),
          table: tableLabel(t),
        });
      }
    }
  }
  if (tenant.length === 0) return findings;
  const { rows: policies } = (await knex.raw(
    `select polrelid::int8 as rel, polname as name, polpermissive as permissive,
            pg_get_expr(polqual, polrelid) as qual, pg_get_expr(polwithcheck, polrelid) as check
       from pg_policy where polrelid = any(?::int8[]::oid[]) order by polname`,
    [tenant.map((t) => t.oid)],
  )) as { rows: PolicyRow[] };
  const reads = (expr: string | null) => expr !== null && expr.includes(`'${setting}'`);
  for (const t of tenant) {
    const own = policies.filter((p) => Number(p.rel) === t.oid);
    const base = { tier: 'row' as const, table: tableLabel(t) };
    if (!t.rowSecurity) {
      findings.push({
        ...base,
        check: 'rls-not-enabled',
        severity: 'error',
        detail: `Row-level security is not enabled on tenant table "${tableLabel(t)}", so the backstop does not hold there.`,
        fix: applyFix(t, options.tenantColumn, setting),
      });
    } else if (!t.forceRowSecurity) {
      findings.push({
        ...base,
        check: 'rls-not-forced',
        severity: 'error',
        detail: `Row-level security is enabled but not forced on tenant table "${tableLabel(t)}", so its owner (and any role acting as it) reads every tenant's rows.`,
        fix: `alter table ${quoteTable(t)} force row level security`,
      });
    }
    if (!own.some((p) => p.permissive && reads(p.qual))) {
      findings.push({
        ...base,
        check: 'rls-policy-missing',
        severity: 'error',
        detail: `Tenant table "${tableLabel(t)}" has no permissive policy reading current_setting('${setting}'), so with RLS on it returns no rows (or, without RLS, every row).`,
        fix: applyFix(t, options.tenantColumn, setting),
      });
    }
    for (const p of own) {
      if (p.permissive && !reads(p.qual) && !reads(p.check)) {
        findings.push({
          ...base,
          check: 'rls-policy-permissive',
          severity: 'error',
          detail: `Permissive policy "${p.name}" on "${tableLabel(t)}" does not read current_setting('${setting}'): permissive policies are ORed, so it widens the tenant policy to whatever it allows (using ${p.qual ?? 'true'}).`,
          fix: `drop policy ${quoteIdent(p.name)} on ${quoteTable(t)}, or make it restrictive (as restrictive).`,
        });
      }
    }
  }
  return findings;
}
