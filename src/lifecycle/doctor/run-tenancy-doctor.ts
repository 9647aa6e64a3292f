import type { Knex } from 'knex';
import type { TenantRecord, TenantTier } from '../../context/tenant-record';
import { assertValidTenantId } from '../../context/tenant-id';
import { TenantNotFoundError } from '../../errors';
import type { CredentialsResolver } from '../../isolation/database/credentials-resolver';
import type { PasswordRefPolicy, TenantServer } from '../../isolation/database/tenant-connection';
import { DEFAULT_DATABASE_PREFIX } from '../../isolation/database/tenant-database-name';
import { DEFAULT_RLS_SETTING, assertRlsSetting } from '../../isolation/rls/row-level-security';
import { DEFAULT_SCHEMA_PREFIX } from '../../isolation/schema/tenant-schema-name';
import { toTenancyLogger, type TenancyLoggerInput } from '../../logger';
import { clause, quoteInput } from '../../message-text';
import { DEFAULT_LEDGER_TABLE } from '../../store/central-migrations';
import type { TenantStore } from '../../store/tenant-store';
import { toMigrationSource, type TenantMigrationsOption } from '../migration-sources';
import type { DoctorFinding, DoctorSeverity } from './doctor-finding';
import { doctorTierOf } from './doctor-tier';
import {
  discoverTenantTables,
  qualify,
  readRowTierTables,
  tableLabel,
  type QualifiedName,
} from './row-tier-catalog';
import { rowTierLayoutFindings } from './row-tier-layout';
import { rowTierOrphanFindings } from './row-tier-orphans';
import { rowTierRlsFindings } from './row-tier-rls';
import {
  databaseTierFindings,
  rowTierMigrations,
  schemaTierFindings,
  type AppliedMigrations,
  type TierStorageContext,
} from './tier-storage';

/** Options of {@link runTenancyDoctor}. The names and defaults are those of the tenancy config. */
export interface TenancyDoctorOptions {
  /** The central database (the tenant store's, and the row tier's shared tables). Required. */
  readonly knex: Knex;
  /** The tenant records. Required (e.g. `new KnexTenantStore(knex)`). */
  readonly store: TenantStore;
  /** The default tier, for records without `isolation.tier` (config `isolation.mode`). Default: `row`. */
  readonly mode?: TenantTier | undefined;
  /** The tenant column of the row tier. Default: `tenant_id`. */
  readonly tenantColumn?: string | undefined;
  /** The row tier's tenant tables (`name` or `schema.name`; unqualified in `public`). Default: `[]`. */
  readonly tenantTables?: readonly string[] | undefined;
  /** The row tier's shared tables (checked for foreign keys into tenant tables). Default: `[]`. */
  readonly sharedTables?: readonly string[] | undefined;
  /**
   * Also check every `public` table with the tenant column, as
   * `withTenancy({ tenantTables: { discover: true } })` scopes them.
   * Default: `false`.
   */
  readonly discover?: boolean | undefined;
  /**
   * Check the RLS backstop's set-up (config `isolation.rls`): `true`, or the
   * setting its policies read and the role the application connects as.
   * Default: `false` (not checked).
   */
  readonly rls?:
    | boolean
    | {
        /** The setting the policies read. Default: `app.tenant_id`. */
        readonly setting?: string | undefined;
        /** The application's role. Default: the doctor connection's `current_user`. */
        readonly role?: string | undefined;
      }
    | undefined;
  /** Prefix of tenant schema names. Default: `tenant_`. */
  readonly schemaPrefix?: string | undefined;
  /** Prefix of tenant database names. Default: `tenant_`. */
  readonly databasePrefix?: string | undefined;
  /** The database tier's servers (config `isolation.database.servers`). Default: none. */
  readonly servers?: Readonly<Record<string, TenantServer>> | undefined;
  /** Which `passwordRef` names may be resolved. Default: none. */
  readonly passwordRefs?: PasswordRefPolicy | undefined;
  /** Resolves `passwordRef`. Default: an environment variable (as provisioning). */
  readonly credentials?: CredentialsResolver | undefined;
  /**
   * The tenant migrations every storage should have applied. Default: none;
   * then each storage is compared with the migrations applied anywhere in
   * the fleet (a storage behind the most migrated one is behind).
   */
  readonly migrations?: TenantMigrationsOption | undefined;
  /** Examine only this tenant (its storage, migrations and rows). Default: the whole fleet. */
  readonly tenant?: string | undefined;
  /** Logger (Knex's warnings of the connections doctor opens). Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
}

/** What {@link runTenancyDoctor} found. */
export interface TenancyDoctorReport {
  /** Every finding, errors first. Empty when the fleet is clean. */
  readonly findings: readonly DoctorFinding[];
  /** Number of `error` findings. */
  readonly errors: number;
  /** Number of `warning` findings. */
  readonly warnings: number;
  /** The tiers examined (those the default tier and the records use). */
  readonly tiers: readonly TenantTier[];
  /** Tenant records examined. */
  readonly tenants: number;
  /** Row-tier tenant tables examined. */
  readonly tables: readonly string[];
}

const TIERS: readonly TenantTier[] = ['row', 'schema', 'database'];
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLE = /^(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

function tableList(value: readonly string[] | undefined, option: string): QualifiedName[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`Cannot run the doctor because ${option} is not a list of table names.`);
  }
  return value.map((t: unknown) => {
    if (typeof t !== 'string' || !TABLE.test(t)) {
      throw new TypeError(
        `Cannot run the doctor because ${option} holds ${quoteInput(String(t))}, which is not a table name. Use name or schema.name.`,
      );
    }
    return qualify(t);
  });
}

function unique(tables: readonly QualifiedName[]): QualifiedName[] {
  const seen = new Map(tables.map((t) => [tableLabel(t), t]));
  return [...seen.values()];
}

function sorted(findings: DoctorFinding[]): DoctorFinding[] {
  const rank = (s: DoctorSeverity) => (s === 'error' ? 0 : 1);
  return findings
    .map((f, i) => ({ f, i }))
    .sort(
      (a, b) =>
        rank(a.f.severity) - rank(b.f.severity) ||
        TIERS.indexOf(a.f.tier) - TIERS.indexOf(b.f.tier) ||
        a.i - b.i,
    )
    .map(({ f }) => f);
}

/**
 * Reads PostgreSQL's catalog of every tier the fleet uses (the central
 * database's shared tables for the row tier, each schema-tier tenant's
 * schema, each database-tier tenant's database) and reports what breaks
 * isolation, serving, distribution or space: tenant tables without the
 * tenant column, keys, foreign keys and indexes that leave it out, the
 * RLS backstop's set-up, storage behind on migrations, orphaned rows and
 * storage, records pointing at missing storage. It only reads; nothing is
 * changed. Bad options throw a `TypeError`; an unknown `tenant` is 404
 * `TENANT_NOT_FOUND`.
 *
 * @example
 * ```ts
 * const report = await runTenancyDoctor({
 *   knex,
 *   store,
 *   mode: 'row',
 *   tenantTables: ['documents'],
 *   rls: true,
 * });
 * for (const f of report.findings) console.log(f.severity, f.check, f.detail, f.fix);
 * ```
 */
export async function runTenancyDoctor(
  options: TenancyDoctorOptions,
): Promise<TenancyDoctorReport> {
  if (!options?.knex || !options.store) {
    throw new TypeError(
      'Cannot run the doctor because options.knex and options.store are required.',
    );
  }
  const defaultTier = options.mode ?? 'row';
  if (!TIERS.includes(defaultTier)) {
    throw new TypeError(
      `Cannot run the doctor with mode ${quoteInput(String(defaultTier))} because it is not a tier. Use "row", "schema" or "database".`,
    );
  }
  const tenantColumn = options.tenantColumn ?? 'tenant_id';
  if (!COLUMN.test(tenantColumn)) {
    throw new TypeError(
      `Cannot run the doctor because tenantColumn ${quoteInput(tenantColumn)} is not a plain identifier.`,
    );
  }
  const declared = tableList(options.tenantTables, 'tenantTables');
  const shared = tableList(options.sharedTables, 'sharedTables');
  const rls =
    options.rls === true || (typeof options.rls === 'object' && options.rls !== null)
      ? {
          setting: assertRlsSetting(
            (typeof options.rls === 'object' ? options.rls.setting : undefined) ??
              DEFAULT_RLS_SETTING,
          ),
          role: typeof options.rls === 'object' ? options.rls.role : undefined,
        }
      : undefined;
  const only =
    options.tenant !== undefined ? assertValidTenantId(options.tenant, 'tenant option') : undefined;
  const source =
    options.migrations !== undefined ? toMigrationSource(options.migrations) : undefined;
  const logger = toTenancyLogger(options.logger);
  const ctx: TierStorageContext = {
    central: options.knex,
    defaultTier,
    schemaPrefix: options.schemaPrefix ?? DEFAULT_SCHEMA_PREFIX,
    databasePrefix: options.databasePrefix ?? DEFAULT_DATABASE_PREFIX,
    policy: {
      ...(options.servers ? { servers: options.servers } : {}),
      ...(options.passwordRefs ? { passwordRefs: options.passwordRefs } : {}),
    },
    credentials: options.credentials,
    logger,
  };

  const all = await options.store.list();
  const byId = new Map(all.map((r) => [r.id, r]));
  let records: TenantRecord[] = all;
  if (only !== undefined) {
    const one = byId.get(only);
    if (!one) {
      throw new TenantNotFoundError(
        `Cannot examine tenant "${only}" because it has no record. Run the doctor without a tenant to find data left without a record.`,
      );
    }
    records = [one];
  }
  const tiers = TIERS.filter(
    (tier) =>
      (only === undefined && tier === defaultTier) ||
      records.some((r) => doctorTierOf(r, defaultTier) === tier),
  );
  const findings: DoctorFinding[] = [];
  const migrations: AppliedMigrations[] = [];
  let tables: string[] = [];

  // Row tier: the shared tables' layout and rows. For one tenant: the layout only if it lives
  // there, but its rows whatever its tier (rows a move or a purge left on the row tier).
  const rowTenant =
    only !== undefined && doctorTierOf(records[0] as TenantRecord, defaultTier) === 'row';
  if (only !== undefined || tiers.includes('row')) {
    const discovered = options.discover
      ? (await discoverTenantTables(options.knex, tenantColumn)).map(qualify)
      : [];
    const tenantTables = unique([...declared, ...discovered]);
    const sharedOnly = shared.filter(
      (s) => !tenantTables.some((t) => tableLabel(t) === tableLabel(s)),
    );
    const found = await readRowTierTables(options.knex, tenantTables, sharedOnly, tenantColumn);
    tables = found.filter((t) => t.kind === 'tenant').map(tableLabel);
    if (only === undefined || rowTenant) {
      findings.push(...(await rowTierLayoutFindings(options.knex, declared, found, tenantColumn)));
      if (rls) {
        findings.push(...(await rowTierRlsFindings(options.knex, found, { tenantColumn, ...rls })));
      }
      migrations.push(await rowTierMigrations(options.knex));
    }
    findings.push(
      ...(await rowTierOrphanFindings(options.knex, found, byId, {
        tenantColumn,
        defaultTier,
        only,
      })),
    );
  }
  // Tiers a record (deleted ones included) or the default uses: their leftovers are looked for too.
  if (tiers.includes('schema')) {
    const schema = await schemaTierFindings(ctx, records, only === undefined);
    findings.push(...schema.findings);
    migrations.push(...schema.migrations);
  }
  if (tiers.includes('database')) {
    const database = await databaseTierFindings(ctx, records, only === undefined);
    findings.push(...database.findings);
    migrations.push(...database.migrations);
  }

  // Migrations: every storage against the source, else against the union applied across the fleet.
  const expected = source
    ? (await source.getMigrations([])).map((m) => source.getMigrationName(m))
    : [...new Set(migrations.flatMap((m) => m.applied))].sort();
  let failures: Map<string, string> | undefined;
  for (const m of migrations) {
    const applied = new Set(m.applied);
    const pending = expected.filter((name) => !applied.has(name));
    if (pending.length === 0) continue;
    failures ??= await failedMigrationRuns(options.knex);
    // The central ledger's record of the last run, when it failed (the fleet migrator keeps the row tier under '*').
    const failure = failures.get(m.tier === 'row' ? '*' : (m.tenant ?? ''));
    const where =
      m.tier === 'row'
        ? 'The row tier (the shared tables)'
        : `The ${m.tier} of tenant "${m.tenant}"`;
    findings.push({
      check: 'migrations-behind',
      severity: 'error',
      tier: m.tier,
      ...(m.tenant !== undefined ? { tenant: m.tenant } : {}),
      detail: `${where} has not applied ${pending.length} tenant migration(s) ${source ? 'of the migration source' : 'that other tenants have'}: ${pending.join(', ')}.${failure !== undefined ? ` Its last migration run failed: ${failure}.` : ''}`,
      fix: `tenantry migrate${m.tenant !== undefined ? ` --tenant ${m.tenant}` : ''} --migrations <dir>`,
    });
  }
  const ordered = sorted(findings);
  return {
    findings: ordered,
    errors: ordered.filter((f) => f.severity === 'error').length,
    warnings: ordered.filter((f) => f.severity === 'warning').length,
    tiers,
    tenants: records.length,
    tables,
  };
}

/** The central ledger's failed runs (tenant id -> error), if the ledger exists. */
async function failedMigrationRuns(knex: Knex): Promise<Map<string, string>> {
  const { rows: present } = (await knex.raw('select to_regclass(?) is not null as present', [
    DEFAULT_LEDGER_TABLE,
  ])) as { rows: Array<{ present: boolean }> };
  if (!present[0]?.present) return new Map();
  let rows: Array<{ tenant_id: string; error: string | null }>;
  try {
    rows = (await knex(DEFAULT_LEDGER_TABLE)
      .select('tenant_id', 'error')
      .where({ status: 'failed' })) as typeof rows;
  } catch (error) {
    // 42501: a doctor role without access to the ledger still reports what is behind, without the cause.
    if ((error as { code?: string }).code === '42501') return new Map();
    throw error;
  }
  return new Map(rows.map((r) => [r.tenant_id, clause(r.error ?? 'no error recorded')]));
}
