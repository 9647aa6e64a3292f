/**
 * The demo's tenants, their placement per isolation mode, the `documents`
 * table, and the idempotent start-up seeding.
 */
import type { Knex } from 'knex';
import {
  TenantManager,
  migrateCentral,
  runWithTenant,
  type IsolationMode,
  type NewTenant,
  type TenancyLogger,
  type TenantMigrationsOption,
  type TenantRecord,
  type TenantStore,
} from '../src/index';

/** acme and globex are active, initech is suspended (the tour shows it refused). */
export const DEMO_TENANTS: readonly NewTenant[] = Object.freeze([
  {
    id: 'acme',
    name: 'Acme Corporation',
    status: 'active',
    config: { theme: 'orange', locale: 'en-US', features: { comments: true } },
  },
  {
    id: 'globex',
    name: 'Globex Corporation',
    status: 'active',
    config: { theme: 'green', locale: 'de-DE', maxDocuments: 50 },
  },
  {
    id: 'initech',
    name: 'Initech',
    status: 'suspended',
    config: { theme: 'grey', locale: 'en-US' },
  },
]);

/** The documents each tenant starts with (only when it has none). */
export const DEMO_DOCUMENTS: Readonly<Record<string, readonly { title: string; body: string }[]>> =
  Object.freeze({
    acme: [
      { title: 'Rocket skates: field report', body: 'Traction fine, braking nonexistent.' },
      { title: 'Q3 anvil orders', body: 'Mostly to one customer in the desert.' },
      { title: 'Giant magnet warranty terms', body: 'Void if used near anvils.' },
    ],
    globex: [
      { title: 'Hammock District plans', body: 'Every employee gets a hammock.' },
      { title: 'Project Arcturus', body: 'Confidential. Do not forward.' },
    ],
    initech: [{ title: 'TPS report cover sheet', body: 'Did you get the memo?' }],
  });

/** Defaults of the per-tenant settings; a tenant's `config` overrides them. */
export const DEFAULT_TENANT_SETTINGS: Readonly<Record<string, unknown>> = Object.freeze({
  theme: 'blue',
  locale: 'en-US',
  maxDocuments: 1000,
  features: { comments: false },
});

/** Where the demo puts tenant data. */
export interface DemoPlacementOptions {
  /** Isolation mode. */
  readonly mode: IsolationMode;
  /** Schema prefix (schema mode). */
  readonly schemaPrefix: string;
  /** Database name prefix (database mode): tenant `acme` lives in `<prefix>acme`. */
  readonly databasePrefix: string;
}

/**
 * The tenant migrations of the demo: the `documents` table, with the tenant
 * column in row mode (where it runs once, in the shared schema) and without
 * it in schema and database mode (where it runs in every tenant's schema or
 * database). Ids are UUIDs, so an id never names a document in two tenants.
 */
export function demoTenantMigrations(mode: IsolationMode): TenantMigrationsOption {
  const withTenantColumn = mode === 'row';
  return [
    {
      name: '0001_documents',
      async up(knex: Knex) {
        await knex.schema.createTable('documents', (t) => {
          t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
          if (withTenantColumn) {
            t.text('tenant_id')
              .notNullable()
              .references('id')
              .inTable('tenants')
              .onDelete('CASCADE');
          }
          t.text('title').notNullable();
          t.text('body').notNullable().defaultTo('');
          t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
          t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
          if (withTenantColumn) t.index(['tenant_id', 'created_at']);
        });
      },
      async down(knex: Knex) {
        await knex.schema.dropTable('documents');
      },
    },
  ];
}

/**
 * Idempotent start-up set-up, all through tenantry's lifecycle API: the
 * central tables, the demo tenants (created and provisioned by
 * `TenantManager` when missing; re-provisioned otherwise, which only applies
 * pending migrations), initech suspended once when created, and the seed
 * documents of every tenant that has none. `seedDocuments` runs inside each
 * tenant's scope.
 */
export async function prepareDemoData(
  central: Knex,
  store: TenantStore,
  placement: DemoPlacementOptions,
  seedDocuments: (tenant: TenantRecord) => Promise<void>,
  logger?: TenancyLogger,
): Promise<TenantRecord[]> {
  await migrateCentral(central);
  const manager = new TenantManager({
    knex: central,
    store,
    mode: placement.mode,
    schemaPrefix: placement.schemaPrefix,
    databasePrefix: placement.databasePrefix,
    migrations: demoTenantMigrations(placement.mode),
    ...(logger ? { logger } : {}),
  });
  // Row mode: the shared documents table is migrated once, before any tenant uses it.
  if (placement.mode === 'row') {
    const result = await manager.migrateTenants();
    if (result.failed.length > 0)
      throw new Error(
        `Cannot migrate the documents table: ${result.failed.map((f) => f.error).join('; ')}`,
      );
  }
  const records: TenantRecord[] = [];
  for (const seed of DEMO_TENANTS) {
    const existing = await store.findById(seed.id);
    let record: TenantRecord;
    if (existing === undefined) {
      record = await manager.create({
        id: seed.id,
        name: seed.name ?? seed.id,
        config: seed.config ?? {},
      });
      if (seed.status === 'suspended')
        record = await manager.suspend(seed.id, 'demo: a suspended tenant');
    } else {
      // Creates missing storage (e.g. the same data folder, another mode) and applies pending migrations.
      record = await manager.provision(seed.id);
    }
    const current = record;
    await runWithTenant(current, () => seedDocuments(current));
    records.push(record);
  }
  return records;
}
