import type { Knex } from 'knex';
import { quoteInput } from '../message-text';

/** Options of {@link centralMigrationSource}. */
export interface CentralMigrationOptions {
  /** Name of the central tenants table. Default: `tenants`. */
  readonly tenantsTable?: string | undefined;
  /** Name of the central per-tenant migration ledger. Default: `tenantry_tenant_migrations`. */
  readonly ledgerTable?: string | undefined;
}

/** Default name of the central tenants table. */
export const DEFAULT_TENANTS_TABLE = 'tenants';
/** Default name of the central per-tenant migration ledger. */
export const DEFAULT_LEDGER_TABLE = 'tenantry_tenant_migrations';
/** Name of the central table that records every online move of a tenant, step by step. */
export const TENANT_MOVES_TABLE = 'tenantry_tenant_moves';
/** Default name of Knex's own ledger of the central migrations. */
export const CENTRAL_MIGRATIONS_TABLE = 'tenantry_central_migrations';

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Throws a TypeError unless `name` is a plain lower-case SQL identifier. */
export function assertTableName(name: string, option: string): string {
  if (!TABLE_NAME.test(name)) {
    throw new TypeError(
      `Cannot use ${option} ${quoteInput(name)} because it is not a plain identifier. Use [a-z_][a-z0-9_]*.`,
    );
  }
  return name;
}

interface CentralMigration {
  readonly name: string;
  up(knex: Knex, tenants: string, ledger: string): Promise<void>;
  down(knex: Knex, tenants: string, ledger: string): Promise<void>;
}

// Patterns are duplicated in SQL on purpose: a row written by any other tool
// (psql, another service) is still held to the same id and status rules.
const MIGRATIONS: readonly CentralMigration[] = [
  {
    name: '0001_tenants',
    async up(knex, tenants, ledger) {
      await knex.schema.createTable(tenants, (t) => {
        t.text('id').primary();
        t.text('name').notNullable();
        t.text('status').notNullable().defaultTo('active');
        t.text('status_reason');
        t.jsonb('isolation').notNullable().defaultTo('{}');
        t.jsonb('config').notNullable().defaultTo('{}');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.check(`id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9]){0,1}$'`, [], `${tenants}_id_pattern`);
        t.check(
          `status in ('active','suspended','archived','provisioning','provisioning_failed','deleted')`,
          [],
          `${tenants}_status_known`,
        );
        t.index(['status'], `${tenants}_status_idx`);
      });
      await knex.schema.createTable(ledger, (t) => {
        t.text('tenant_id').primary();
        t.text('version');
        t.integer('applied').notNullable().defaultTo(0);
        t.text('status').notNullable();
        t.text('error');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.check(`status in ('ok','failed')`, [], `${ledger}_status_known`);
      });
    },
    async down(knex, tenants, ledger) {
      await knex.schema.dropTableIfExists(ledger);
      await knex.schema.dropTableIfExists(tenants);
    },
  },
  {
    // Custom domains (issue 13): a jsonb list of { domain, verified, token?, verifiedAt? }.
    name: '0002_tenant_domains',
    async up(knex, tenants) {
      await knex.schema.alterTable(tenants, (t) => {
        t.jsonb('domains').notNullable().defaultTo('[]');
        t.check(`jsonb_typeof(domains) = 'array'`, [], `${tenants}_domains_array`);
        t.index(['domains'], `${tenants}_domains_idx`, 'gin');
      });
    },
    async down(knex, tenants) {
      await knex.schema.alterTable(tenants, (t) => {
        t.dropIndex(['domains'], `${tenants}_domains_idx`);
        t.dropChecks([`${tenants}_domains_array`]);
        t.dropColumn('domains');
      });
    },
  },
  {
    // Online moves between tiers (issue 17): the `moving` status (the write
    // freeze) and the durable step record a killed move resumes or rolls back from.
    name: '0003_tenant_moves',
    async up(knex, tenants) {
      await knex.schema.alterTable(tenants, (t) => {
        t.dropChecks([`${tenants}_status_known`]);
        t.check(
          `status in ('active','moving','suspended','archived','provisioning','provisioning_failed','deleted')`,
          [],
          `${tenants}_status_known`,
        );
      });
      await knex.schema.createTable(TENANT_MOVES_TABLE, (t) => {
        t.bigIncrements('id').primary();
        t.text('tenant_id').notNullable();
        t.jsonb('source').notNullable();
        t.jsonb('target').notNullable();
        t.boolean('keep_source').notNullable().defaultTo(false);
        t.text('step').notNullable();
        t.text('status').notNullable();
        t.jsonb('checkpoint').notNullable().defaultTo('{}');
        t.text('error');
        t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('finished_at', { useTz: true });
        t.check(
          `status in ('running','failed','kept','succeeded','rolled_back')`,
          [],
          `${TENANT_MOVES_TABLE}_status_known`,
        );
        t.index(['tenant_id'], `${TENANT_MOVES_TABLE}_tenant_idx`);
      });
      // At most one open move per tenant: a second one waits for --resume, --rollback or --cleanup.
      await knex.raw(
        `create unique index ?? on ?? (tenant_id) where status in ('running','failed','kept')`,
        [`${TENANT_MOVES_TABLE}_open_idx`, TENANT_MOVES_TABLE],
      );
    },
    async down(knex, tenants) {
      await knex.schema.dropTableIfExists(TENANT_MOVES_TABLE);
      await knex.schema.alterTable(tenants, (t) => {
        t.dropChecks([`${tenants}_status_known`]);
        t.check(
          `status in ('active','suspended','archived','provisioning','provisioning_failed','deleted')`,
          [],
          `${tenants}_status_known`,
        );
      });
    },
  },
];

/**
 * The central migrations of tenantry (the `tenants` table and the per-tenant
 * migration ledger) as a Knex migration source shipped in code, so no
 * migration files need to exist on disk. Use it with Knex's migrator and
 * {@link CENTRAL_MIGRATIONS_TABLE}, or call {@link migrateCentral}.
 *
 * @example
 * ```ts
 * await knex.migrate.latest({
 *   migrationSource: centralMigrationSource(),
 *   tableName: CENTRAL_MIGRATIONS_TABLE,
 * });
 * ```
 */
export function centralMigrationSource(
  options: CentralMigrationOptions = {},
): Knex.MigrationSource<CentralMigration> {
  const tenants = assertTableName(options.tenantsTable ?? DEFAULT_TENANTS_TABLE, 'tenantsTable');
  const ledger = assertTableName(options.ledgerTable ?? DEFAULT_LEDGER_TABLE, 'ledgerTable');
  return {
    getMigrations: () => Promise.resolve([...MIGRATIONS]),
    getMigrationName: (m) => m.name,
    getMigration: (m) =>
      Promise.resolve({
        up: (knex: Knex) => m.up(knex, tenants, ledger),
        down: (knex: Knex) => m.down(knex, tenants, ledger),
      }),
  };
}

/**
 * Applies every pending central migration (idempotent; safe to call at every
 * start-up: Knex's migration lock serialises concurrent callers).
 *
 * @example
 * ```ts
 * await migrateCentral(knex);
 * ```
 */
export async function migrateCentral(
  knex: Knex,
  options: CentralMigrationOptions = {},
): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({
    migrationSource: centralMigrationSource(options),
    tableName: CENTRAL_MIGRATIONS_TABLE,
  })) as [number, string[]];
  return applied;
}
