import type { TenantTier } from '../../context/tenant-record';

/**
 * What a doctor finding is about. Stable: scripts may switch on it.
 *
 * - `tenant-table-missing`: a declared tenant table does not exist in the row tier.
 * - `tenant-column-missing`: a row-tier tenant table has no tenant column.
 * - `key-without-tenant-column`: a primary key, unique constraint or unique index leaves the tenant column out.
 * - `foreign-key-without-tenant-column`: a foreign key between tenant tables leaves the tenant column out
 *   (or a shared table references a tenant table).
 * - `index-not-leading-tenant-column`: an index whose first column is not the tenant column (warning).
 * - `rls-not-enabled`, `rls-not-forced`, `rls-policy-missing`, `rls-policy-permissive`: the RLS backstop's
 *   table set-up (only when RLS is on).
 * - `rls-role-bypasses`: the application role is a superuser, has BYPASSRLS, is missing, or owns a tenant table.
 * - `migrations-behind`: a tier's storage has not applied every tenant migration.
 * - `orphaned-rows`: row-tier rows of a tenant with no live record on the row tier.
 * - `orphaned-storage`: a tenant schema or database that no live record claims.
 * - `storage-missing`: a live record's schema or database does not exist.
 * - `storage-unreachable`: a record's server is not configured or does not answer.
 */
export type DoctorCheck =
  | 'tenant-table-missing'
  | 'tenant-column-missing'
  | 'key-without-tenant-column'
  | 'foreign-key-without-tenant-column'
  | 'index-not-leading-tenant-column'
  | 'rls-not-enabled'
  | 'rls-not-forced'
  | 'rls-policy-missing'
  | 'rls-policy-permissive'
  | 'rls-role-bypasses'
  | 'migrations-behind'
  | 'orphaned-rows'
  | 'orphaned-storage'
  | 'storage-missing'
  | 'storage-unreachable';

/** How bad a finding is: `error` breaks isolation or serving; `warning` costs speed, distribution or space. */
export type DoctorSeverity = 'error' | 'warning';

/**
 * One problem `runTenancyDoctor()` found.
 *
 * @example
 * ```ts
 * const finding: DoctorFinding = {
 *   check: 'tenant-column-missing',
 *   severity: 'error',
 *   tier: 'row',
 *   table: 'public.documents',
 *   detail: 'Table "public.documents" has no "tenant_id" column.',
 *   fix: 'alter table "public"."documents" add column "tenant_id" text not null',
 * };
 * ```
 */
export interface DoctorFinding {
  /** Which check found it. */
  readonly check: DoctorCheck;
  /** `error` or `warning`. */
  readonly severity: DoctorSeverity;
  /** The tier the problem lives on. */
  readonly tier: TenantTier;
  /** The tenant it concerns, when one. */
  readonly tenant?: string | undefined;
  /** The table (`schema.name`) it concerns, when one. */
  readonly table?: string | undefined;
  /** What is wrong, and why it matters. */
  readonly detail: string;
  /** What to do about it (SQL or a tenantry command where one fits). */
  readonly fix: string;
}

/** Quotes an identifier for the SQL of a `fix` (names come from the catalog, never from input). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"` for the SQL of a `fix`. */
export function quoteTable(table: { schema: string; name: string }): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}
