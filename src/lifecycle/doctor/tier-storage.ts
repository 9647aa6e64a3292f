import knexFactory, { type Knex } from 'knex';
import type { TenantRecord, TenantStatus, TenantTier } from '../../context/tenant-record';
import { TenantUnavailableError } from '../../errors';
import {
  TenantPlacementRules,
  connectionObject,
  tenantConnectionConfig,
} from '../../isolation/database/tenant-connection';
import { tenantSchemaName } from '../../isolation/schema/tenant-schema-name';
import { messageWithCode } from '../../message-text';
import { TENANT_MIGRATIONS_TABLE, TenantPlacement, knexLogTo } from '../tenant-placement';
import { quoteIdent, type DoctorFinding } from './doctor-finding';
import { doctorTierOf } from './doctor-tier';
import type { TenancyLogger } from '../../logger';
import type { TenantPlacementPolicy } from '../../isolation/database/tenant-connection';
import type { CredentialsResolver } from '../../isolation/database/credentials-resolver';

/** Statuses whose storage must exist and be migrated (as the fleet migrator covers them). */
export const SERVED_STATUSES: readonly TenantStatus[] = [
  'active',
  'suspended',
  'archived',
  'moving',
];

/** What the storage checks need to reach every tier. */
export interface TierStorageContext {
  readonly central: Knex;
  readonly defaultTier: TenantTier;
  readonly schemaPrefix: string;
  readonly databasePrefix: string;
  readonly policy: TenantPlacementPolicy;
  readonly credentials: CredentialsResolver | undefined;
  readonly logger: TenancyLogger;
}

/** One tier storage's applied tenant migrations (null: the storage could not be read). */
export interface AppliedMigrations {
  readonly tier: TenantTier;
  readonly tenant?: string | undefined;
  readonly applied: readonly string[];
}

function placementOf(ctx: TierStorageContext, mode: 'schema' | 'database'): TenantPlacement {
  return new TenantPlacement(ctx.central, {
    mode,
    schemaPrefix: ctx.schemaPrefix,
    databasePrefix: ctx.databasePrefix,
    servers: ctx.policy.servers,
    passwordRefs: ctx.policy.passwordRefs,
    ...(ctx.credentials ? { credentials: ctx.credentials } : {}),
    logger: ctx.logger,
  });
}

async function namesIn(knex: Knex, table: string): Promise<string[]> {
  const { rows } = (await knex.raw('select to_regclass(?) is not null as present', [table])) as {
    rows: Array<{ present: boolean }>;
  };
  if (!rows[0]?.present) return [];
  const applied = (await knex.raw(`select name from ${table} order by id`)) as {
    rows: Array<{ name: string }>;
  };
  return applied.rows.map((r) => r.name);
}

/** The row tier's applied migrations: Knex's ledger in the central database, as the fleet migrator keeps it. */
export async function rowTierMigrations(central: Knex): Promise<AppliedMigrations> {
  return { tier: 'row', applied: await namesIn(central, quoteIdent(TENANT_MIGRATIONS_TABLE)) };
}

/**
 * Schema tier: every served record's schema exists; every schema with the
 * prefix is claimed by a record (unless `scanOrphans` is off). Returns the
 * findings and each existing schema's applied migrations.
 */
export async function schemaTierFindings(
  ctx: TierStorageContext,
  records: readonly TenantRecord[],
  scanOrphans: boolean,
): Promise<{ findings: DoctorFinding[]; migrations: AppliedMigrations[] }> {
  const findings: DoctorFinding[] = [];
  const migrations: AppliedMigrations[] = [];
  const { rows } = (await ctx.central.raw('select nspname as name from pg_namespace')) as {
    rows: Array<{ name: string }>;
  };
  const schemas = new Set(rows.map((r) => r.name));
  const nameOf = (r: TenantRecord): string | Error => {
    try {
      return tenantSchemaName(r, ctx.schemaPrefix);
    } catch (error) {
      return error as Error;
    }
  };
  const onTier = records.filter((r) => doctorTierOf(r, ctx.defaultTier) === 'schema');
  for (const r of onTier.filter((t) => SERVED_STATUSES.includes(t.status))) {
    const name = nameOf(r);
    if (name instanceof Error || !schemas.has(name)) {
      findings.push({
        check: 'storage-missing',
        severity: 'error',
        tier: 'schema',
        tenant: r.id,
        detail:
          name instanceof Error
            ? `The record of tenant "${r.id}" names no usable schema: ${name.message}`
            : `Tenant "${r.id}" is ${r.status} on the schema tier but its schema "${name}" does not exist, so every statement of it fails.`,
        fix: `tenantry tenants provision ${r.id} (creates the schema and applies the migrations), or restore the schema from a backup.`,
      });
      continue;
    }
    migrations.push({
      tier: 'schema',
      tenant: r.id,
      applied: await namesIn(
        ctx.central,
        `${quoteIdent(name)}.${quoteIdent(TENANT_MIGRATIONS_TABLE)}`,
      ),
    });
  }
  if (scanOrphans) {
    const claimed = new Set(
      onTier
        .filter((r) => r.status !== 'deleted')
        .map(nameOf)
        .filter((n): n is string => typeof n === 'string'),
    );
    for (const schema of [...schemas].sort()) {
      if (!schema.startsWith(ctx.schemaPrefix) || claimed.has(schema)) continue;
      const owner = records.find((r) => nameOf(r) === schema);
      const base = { check: 'orphaned-storage' as const, tier: 'schema' as const };
      if (owner === undefined) {
        findings.push({
          ...base,
          severity: 'error',
          detail: `Schema "${schema}" has the tenant prefix "${ctx.schemaPrefix}" but no tenant record: a purge left it behind, and a tenant created with that id would be refused or read it.`,
          fix: `Check it holds nothing you need, then drop schema ${quoteIdent(schema)} cascade (or tenantry tenants purge <id> --yes).`,
        });
      } else {
        const why =
          owner.status === 'deleted'
            ? 'is deleted but not purged'
            : `now lives on the ${doctorTierOf(owner, ctx.defaultTier)} tier (a move that kept its source)`;
        findings.push({
          ...base,
          severity: 'warning',
          tenant: owner.id,
          detail: `Schema "${schema}" belongs to tenant "${owner.id}", which ${why}.`,
          fix:
            owner.status === 'deleted'
              ? `tenantry tenants purge ${owner.id} --yes, once the data is no longer needed.`
              : `Drop it once the move is verified: drop schema ${quoteIdent(schema)} cascade.`,
        });
      }
    }
  }
  return { findings, migrations };
}

/**
 * Database tier: every served record's server is configured and answers
 * and its database exists; every database with the prefix on every server
 * is claimed by a record (unless `scanOrphans` is off).
 */
export async function databaseTierFindings(
  ctx: TierStorageContext,
  records: readonly TenantRecord[],
  scanOrphans: boolean,
): Promise<{ findings: DoctorFinding[]; migrations: AppliedMigrations[] }> {
  const findings: DoctorFinding[] = [];
  const migrations: AppliedMigrations[] = [];
  const placement = placementOf(ctx, 'database');
  const base = connectionObject(
    (ctx.central.client as { config?: { connection?: unknown } }).config?.connection,
  );
  // As TenantPlacement builds its rules: the base connection gives the default server and user.
  const defaults = {
    host: typeof base.host === 'string' ? base.host : '127.0.0.1',
    port: base.port !== undefined ? Number(base.port) : 5432,
    user: typeof base.user === 'string' ? base.user : 'postgres',
  };
  const rules = new TenantPlacementRules(ctx.policy, defaults, ctx.databasePrefix);
  const onTier = records.filter((r) => doctorTierOf(r, ctx.defaultTier) === 'database');
  for (const r of onTier.filter((t) => SERVED_STATUSES.includes(t.status))) {
    const where = `database ${JSON.stringify(r.isolation.database?.database ?? '?')}`;
    if (!placement.reachable(r)) {
      let why = 'its record points outside the configured servers';
      try {
        rules.targetOf(r);
      } catch (error) {
        if (error instanceof TenantUnavailableError) why = error.message;
      }
      findings.push({
        check: 'storage-unreachable',
        severity: 'error',
        tier: 'database',
        tenant: r.id,
        detail: `Tenant "${r.id}" cannot be served: ${why}`,
        fix: 'Point the record at a configured server (isolation.database.server), or add the server to tenancy.isolation.database.servers.',
      });
      continue;
    }
    let exists: boolean;
    try {
      exists = await placement.storageExists(r);
    } catch (error) {
      findings.push({
        check: 'storage-unreachable',
        severity: 'error',
        tier: 'database',
        tenant: r.id,
        detail: `The server of tenant "${r.id}" (${where}) does not answer: ${messageWithCode(error)}.`,
        fix: 'Start the server or fix its address in tenancy.isolation.database.servers; check the role can connect.',
      });
      continue;
    }
    if (!exists) {
      findings.push({
        check: 'storage-missing',
        severity: 'error',
        tier: 'database',
        tenant: r.id,
        detail: `Tenant "${r.id}" is ${r.status} on the database tier but its ${where} does not exist on its server, so every statement of it fails.`,
        fix: `tenantry tenants provision ${r.id} (creates the database and applies the migrations), or restore it from a backup.`,
      });
      continue;
    }
    try {
      const applied = await placement.withTenantStorage(r, ctx.central, (knex) =>
        namesIn(knex, quoteIdent(TENANT_MIGRATIONS_TABLE)),
      );
      migrations.push({ tier: 'database', tenant: r.id, applied });
    } catch (error) {
      findings.push({
        check: 'storage-unreachable',
        severity: 'error',
        tier: 'database',
        tenant: r.id,
        detail: `Cannot read the ${where} of tenant "${r.id}": ${messageWithCode(error)}.`,
        fix: 'Check the role can connect to the tenant database (credentials, pg_hba.conf).',
      });
    }
  }
  if (!scanOrphans) return { findings, migrations };
  const servers = new Map<string, { host: string; port: number; name: string }>();
  servers.set(`${defaults.host}:${defaults.port}`, { ...defaults, name: '(default)' });
  for (const [name, s] of Object.entries(ctx.policy.servers ?? {})) {
    const port = s.port ?? 5432;
    if (!servers.has(`${s.host}:${port}`))
      servers.set(`${s.host}:${port}`, { host: s.host, port, name });
  }
  const claimed = new Set<string>();
  const owners = new Map<string, TenantRecord>();
  for (const r of records) {
    try {
      const t = rules.targetOf(r);
      const key = `${t.host}:${t.port}/${t.database}`;
      if (doctorTierOf(r, ctx.defaultTier) === 'database' && r.status !== 'deleted')
        claimed.add(key);
      if (!owners.has(key) || r.status !== 'deleted') owners.set(key, r);
    } catch {
      // A record outside the policy claims nothing; reported above when served.
    }
  }
  const central = typeof base.database === 'string' ? base.database : undefined;
  for (const [key, server] of servers) {
    const admin = knexFactory({
      client: 'pg',
      connection: tenantConnectionConfig(
        base,
        { host: server.host, port: server.port, database: 'postgres', user: defaults.user },
        typeof base.password === 'string' ? base.password : undefined,
      ),
      pool: { min: 0, max: 1 },
      log: knexLogTo(ctx.logger),
    });
    let names: string[];
    try {
      const { rows } = (await admin.raw(
        'select datname from pg_database where not datistemplate and left(datname, length(?)) = ? order by 1',
        [ctx.databasePrefix, ctx.databasePrefix],
      )) as { rows: Array<{ datname: string }> };
      names = rows.map((r) => r.datname);
    } catch (error) {
      findings.push({
        check: 'storage-unreachable',
        severity: 'warning',
        tier: 'database',
        detail: `Cannot list the databases of server ${server.name} (${key}) to look for orphaned tenant databases: ${messageWithCode(error)}.`,
        fix: 'Run the doctor as a role that can connect to the "postgres" database of every server.',
      });
      continue;
    } finally {
      await admin.destroy();
    }
    for (const db of names) {
      const at = `${key}/${db}`;
      if (claimed.has(at) || (server.name === '(default)' && db === central)) continue;
      const owner = owners.get(at);
      const label = `Database "${db}" on server ${server.name} (${key})`;
      if (owner === undefined) {
        findings.push({
          check: 'orphaned-storage',
          severity: 'error',
          tier: 'database',
          detail: `${label} has the tenant prefix "${ctx.databasePrefix}" but no tenant record: a purge left it behind, and a tenant created with that id would be refused or read it.`,
          fix: `Check it holds nothing you need, then drop database ${quoteIdent(db)} with (force) on that server (or tenantry tenants purge <id> --yes).`,
        });
      } else {
        const why =
          owner.status === 'deleted'
            ? 'is deleted but not purged'
            : `now lives on the ${doctorTierOf(owner, ctx.defaultTier)} tier (a move that kept its source)`;
        findings.push({
          check: 'orphaned-storage',
          severity: 'warning',
          tier: 'database',
          tenant: owner.id,
          detail: `${label} belongs to tenant "${owner.id}", which ${why}.`,
          fix:
            owner.status === 'deleted'
              ? `tenantry tenants purge ${owner.id} --yes, once the data is no longer needed.`
              : `Drop it once the move is verified: drop database ${quoteIdent(db)} with (force).`,
        });
      }
    }
  }
  return { findings, migrations };
}
