/**
 * The demo's tenants, their placement per isolation mode, the `documents`
 * table, and the idempotent start-up seeding.
 */
import type { Knex } from 'knex';
import knexFactory from 'knex';
import {
  migrateCentral,
  runWithTenant,
  tenantSchemaName,
  type IsolationMode,
  type NewTenant,
  type TenantIsolationSettings,
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

/** The isolation settings a tenant record carries in `mode`. */
export function demoPlacement(id: string, options: DemoPlacementOptions): TenantIsolationSettings {
  switch (options.mode) {
    case 'schema':
      return { schema: tenantSchemaName({ id }, options.schemaPrefix) };
    case 'database':
      return { database: { database: `${options.databasePrefix}${id.replace(/-/g, '_')}` } };
    default:
      return {};
  }
}

/** Creates the `documents` table (with the tenant column in row mode). */
function documentsTable(knex: Knex, withTenantColumn: boolean) {
  return (t: Knex.CreateTableBuilder): void => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    if (withTenantColumn) {
      t.text('tenant_id').notNullable().references('id').inTable('tenants').onDelete('CASCADE');
    }
    t.text('title').notNullable();
    t.text('body').notNullable().defaultTo('');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    if (withTenantColumn) t.index(['tenant_id', 'created_at']);
  };
}

function isDuplicate(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  // 42P04 duplicate_database, 42P06 duplicate_schema, 42P07 duplicate_table, 23505 unique (catalog race).
  return code === '42P04' || code === '42P06' || code === '42P07' || code === '23505';
}

function connectionFor(central: Knex, database: string): Knex.StaticConnectionConfig | string {
  const connection = (central.client as { config?: { connection?: unknown } }).config?.connection;
  if (typeof connection === 'string') {
    const url = new URL(connection);
    url.pathname = `/${encodeURIComponent(database)}`;
    return url.toString();
  }
  if (connection !== null && typeof connection === 'object') {
    return { ...(connection as Knex.PgConnectionConfig), database };
  }
  throw new TypeError(
    'Cannot create tenant databases because the central Knex has no static connection. Pass a URL or a connection object.',
  );
}

/** Makes sure the storage of one tenant exists (schema or database + the documents table). */
async function prepareTenantStorage(
  central: Knex,
  tenant: TenantRecord,
  mode: IsolationMode,
): Promise<void> {
  if (mode === 'schema') {
    const schema = tenant.isolation.schema as string;
    await central.raw('create schema if not exists ??', [schema]).catch((error: unknown) => {
      if (!isDuplicate(error)) throw error;
    });
    if (!(await central.schema.withSchema(schema).hasTable('documents'))) {
      await central.schema
        .withSchema(schema)
        .createTable('documents', documentsTable(central, false))
        .catch((error: unknown) => {
          if (!isDuplicate(error)) throw error;
        });
    }
  } else if (mode === 'database') {
    const database = tenant.isolation.database?.database as string;
    const found = await central.raw('select 1 from pg_database where datname = ?', [database]);
    if ((found as { rows: unknown[] }).rows.length === 0) {
      await central.raw('create database ??', [database]).catch((error: unknown) => {
        if (!isDuplicate(error)) throw error;
      });
    }
    const own = knexFactory({
      client: 'pg',
      connection: connectionFor(central, database),
      pool: { min: 0, max: 1 },
    });
    try {
      if (!(await own.schema.hasTable('documents'))) {
        await own.schema.createTable('documents', documentsTable(own, false));
      }
    } finally {
      await own.destroy();
    }
  }
}

/**
 * Idempotent start-up set-up: the central tables, the demo tenants (created
 * when missing; their placement updated to the current mode), each tenant's
 * storage, and the seed documents of every tenant that has none.
 * `seedDocuments` runs inside each tenant's scope.
 */
export async function prepareDemoData(
  central: Knex,
  store: TenantStore,
  placement: DemoPlacementOptions,
  seedDocuments: (tenant: TenantRecord) => Promise<void>,
): Promise<TenantRecord[]> {
  await migrateCentral(central);
  if (placement.mode === 'row' && !(await central.schema.hasTable('documents'))) {
    await central.schema.createTable('documents', documentsTable(central, true));
  }
  const records: TenantRecord[] = [];
  for (const seed of DEMO_TENANTS) {
    const isolation = demoPlacement(seed.id, placement);
    let record = await store.findById(seed.id);
    if (record === undefined) {
      record = await store.create({ ...seed, isolation });
    } else if (JSON.stringify(record.isolation) !== JSON.stringify(isolation)) {
      // The same data folder may be reused with another mode: move the placement, keep status.
      record = await store.update(seed.id, { isolation });
    }
    await prepareTenantStorage(central, record, placement.mode);
    const current = record;
    await runWithTenant(current, () => seedDocuments(current));
    records.push(record);
  }
  return records;
}
