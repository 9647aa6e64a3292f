import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import {
  KnexTenantStore,
  TenantManager,
  TenantRegionMismatchError,
  assertServerAllowedForTenant,
  migrateCentral,
  runWithTenant,
  withTenancy,
  type TenantManagerOptions,
  type TenantRecord,
} from '../../src/index';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  testServer,
} from '../support/test-database';

const run = randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${run}`;

type Migration = { name: string; up(k: Knex): Promise<void>; down(k: Knex): Promise<void> };
const migrations: Migration[] = [
  {
    name: '001_documents',
    up: (k) =>
      k.schema.createTable('documents', (t) => {
        t.increments('id');
        t.text('tenant_id');
        t.text('title');
      }),
    down: (k) => k.schema.dropTable('documents'),
  },
];

async function databaseExists(name: string): Promise<boolean> {
  const { rows } = await adminQuery('select 1 from pg_database where datname = $1', [name]);
  return rows.length > 0;
}

async function error(
  promise: Promise<unknown>,
): Promise<{ code?: string; status?: number; message: string }> {
  try {
    await promise;
  } catch (e) {
    return e as { code?: string; status?: number; message: string };
  }
  throw new Error('expected a rejection');
}

describe('Mixed fleets: TenantManager and FleetMigrator with tiers', function () {
  this.timeout(120_000);
  let knex: Knex;
  let store: KnexTenantStore;
  let manager: TenantManager;
  let options: TenantManagerOptions;
  const host = () => new URL(testServer().databaseUrl).hostname;
  const port = () => Number(new URL(testServer().databaseUrl).port || 5432);

  before(async () => {
    knex = createTestKnex({}, await createScratchDatabase('tiered_fleet'));
    await migrateCentral(knex);
    store = new KnexTenantStore(knex);
    const servers = {
      'eu-1': { host: host(), port: port(), region: 'eu' },
      'us-1': { host: host(), port: port(), region: 'us' },
      plain: { host: host(), port: port() },
    };
    const db = withTenancy(knex, {
      mode: 'row',
      tiers: true,
      tenantTables: ['documents'],
      sharedTables: ['tenants'],
      database: { servers },
    });
    options = {
      knex,
      store,
      mode: 'row',
      tiers: true,
      schemaPrefix: `tf${run}_`,
      databasePrefix: `tf${run}_`,
      migrations: [...migrations],
      db,
      servers,
      centralRegion: 'eu',
    };
    manager = new TenantManager(options);
    // The row tier's shared tables, as a row-mode app migrates them (once, not per tenant).
    await manager.migrateTenants();
  });

  after(async () => {
    for (const t of await store.list()) {
      if (t.status !== 'deleted')
        await manager.delete(t.id, { purge: true }).catch(() => undefined);
    }
    await knex.destroy();
  });

  it('provisions each new tenant on the default tier or the one asked for, and stores the tier on the record', async () => {
    const row = await manager.create({ id: id('free') });
    const schema = await manager.create({ id: id('paid'), tier: 'schema' });
    const database = await manager.create({
      id: id('ent'),
      tier: 'database',
      server: 'eu-1',
      region: 'eu',
    });
    expect(row.isolation).to.deep.equal({ tier: 'row' });
    expect(schema.isolation).to.deep.equal({ tier: 'schema', schema: `tf${run}_paid_${run}` });
    expect(database.isolation).to.deep.equal({
      tier: 'database',
      region: 'eu',
      database: { server: 'eu-1', database: `tf${run}_ent_${run}` },
    });
    expect([row.status, schema.status, database.status]).to.deep.equal([
      'active',
      'active',
      'active',
    ]);
    // Migrations: the shared tables (before), the schema and the database at provisioning.
    expect(await knex.schema.hasTable('documents')).to.equal(true);
    expect(await knex.schema.withSchema(schema.isolation.schema!).hasTable('documents')).to.equal(
      true,
    );
    expect(await databaseExists(database.isolation.database!.database)).to.equal(true);

    const db = options.db!;
    for (const t of [row, schema, database]) {
      await runWithTenant(t, () => db('documents').insert({ title: `doc of ${t.id}` }));
    }
    for (const t of [row, schema, database]) {
      expect(await runWithTenant(t, () => db('documents').pluck('title'))).to.deep.equal([
        `doc of ${t.id}`,
      ]);
    }
    expect(await knex('documents').pluck('tenant_id')).to.deep.equal([row.id]);
  });

  it('migrates a mixed fleet per tier: the shared tables once, each schema, each database', async () => {
    migrations.push({
      name: '002_tags',
      up: (k) => k.schema.createTable('tags', (t) => t.text('name')),
      down: (k) => k.schema.dropTable('tags'),
    });
    const fleet = new TenantManager({ ...options, migrations: [...migrations] });
    const result = await fleet.migrateTenants();
    expect(result.failed).to.deep.equal([]);
    expect(result.migrated).to.deep.equal(['*', id('ent'), id('paid')].sort());
    expect(await knex.schema.hasTable('tags')).to.equal(true);
    expect(await knex.schema.withSchema(`tf${run}_paid_${run}`).hasTable('tags')).to.equal(true);
    const entDb = createTestKnex({}, `tf${run}_ent_${run}`);
    try {
      expect(await entDb.schema.hasTable('tags')).to.equal(true);
    } finally {
      await entDb.destroy();
    }
    const status = await fleet.migrationStatus();
    expect(status.tenants.map((t) => [t.tenantId, t.upToDate])).to.have.deep.members([
      ['*', true],
      [id('ent'), true],
      [id('paid'), true],
    ]);
  });

  it('purges each tenant by its tier: rows, schema, database', async () => {
    const row = await manager.get(id('free'));
    const schema = await manager.get(id('paid'));
    const database = await manager.get(id('ent'));
    for (const t of [row, schema, database]) await manager.delete(t.id, { purge: true });
    expect(
      await knex('documents').where({ tenant_id: row.id }).count({ n: '*' }).first(),
    ).to.deep.equal({ n: '0' });
    const { rows } = (await knex.raw('select 1 from pg_namespace where nspname = ?', [
      schema.isolation.schema!,
    ])) as {
      rows: unknown[];
    };
    expect(rows).to.deep.equal([]);
    expect(await databaseExists(database.isolation.database!.database)).to.equal(false);
  });

  describe('data residency', () => {
    it('refuses a database server outside the pinned region with 409 TENANT_REGION_MISMATCH, storing nothing', async () => {
      const err = await error(
        manager.create({ id: id('eu-on-us'), tier: 'database', server: 'us-1', region: 'eu' }),
      );
      expect(err).to.be.instanceOf(TenantRegionMismatchError);
      expect(err).to.include({ code: 'TENANT_REGION_MISMATCH', status: 409 });
      expect(err.message).to.match(/pinned to region "eu".*server "us-1" is in region "us"/);
      expect(await store.findById(id('eu-on-us'))).to.equal(undefined);
      expect(await databaseExists(`tf${run}_eu_on_us_${run}`)).to.equal(false);
    });

    it('refuses a server with no region label for a pinned tenant (fail closed)', async () => {
      const err = await error(
        manager.create({ id: id('eu-plain'), tier: 'database', server: 'plain', region: 'eu' }),
      );
      expect(err.code).to.equal('TENANT_REGION_MISMATCH');
      expect(err.message).to.match(/has no region label/);
    });

    it('keeps row- and schema-tier tenants pinned elsewhere off the central server', async () => {
      for (const tier of ['row', 'schema'] as const) {
        const err = await error(manager.create({ id: id(`us-${tier}`), tier, region: 'us' }));
        expect(err.code, tier).to.equal('TENANT_REGION_MISMATCH');
        expect(err.message).to.match(/the central server is in region "eu"/);
        expect(await store.findById(id(`us-${tier}`))).to.equal(undefined);
      }
      const ok = await manager.create({ id: id('eu-row'), region: 'eu' });
      expect(ok.isolation).to.deep.equal({ tier: 'row', region: 'eu' });
      const us = await manager.create({
        id: id('us-db'),
        tier: 'database',
        server: 'us-1',
        region: 'us',
      });
      expect(us.status).to.equal('active');
    });

    it('refuses provisioning a record edited out of its region', async () => {
      await manager.create({
        id: id('edited'),
        tier: 'database',
        server: 'eu-1',
        region: 'eu',
        provision: false,
      });
      const record = await manager.get(id('edited'));
      await store.update(record.id, {
        isolation: {
          ...record.isolation,
          database: { ...record.isolation.database!, server: 'us-1' },
        },
      });
      const err = await error(manager.provision(record.id));
      expect(err.code).to.equal('TENANT_PROVISIONING_FAILED');
      expect((err as { cause?: { code?: string } }).cause?.code).to.equal('TENANT_REGION_MISMATCH');
      expect(await databaseExists(`tf${run}_edited_${run}`)).to.equal(false);
    });

    it('assertServerAllowedForTenant() is the policy a mover calls', () => {
      const policy = { servers: options.servers, centralRegion: 'eu' };
      const pinned: Pick<TenantRecord, 'id' | 'isolation'> = {
        id: 'acme',
        isolation: { region: 'eu' },
      };
      expect(() => assertServerAllowedForTenant(pinned, 'eu-1', policy)).not.to.throw();
      expect(() => assertServerAllowedForTenant(pinned, undefined, policy)).not.to.throw();
      expect(() => assertServerAllowedForTenant(pinned, 'us-1', policy)).to.throw(
        TenantRegionMismatchError,
      );
      expect(() => assertServerAllowedForTenant(pinned, 'nowhere', policy)).to.throw(
        /no region label/,
      );
      expect(() => assertServerAllowedForTenant(pinned, undefined, { servers: {} })).to.throw(
        /central server has no region label/,
      );
      expect(() =>
        assertServerAllowedForTenant({ id: 'free', isolation: {} }, 'us-1', policy),
      ).not.to.throw();
    });
  });

  it('refuses bad tier, server and region input with a TypeError before anything is stored', async () => {
    const single = new TenantManager({ knex, store, mode: 'schema' });
    expect((await error(single.create({ id: id('bad1'), tier: 'database' }))).message).to.match(
      /Turn tiers on/,
    );
    expect(
      (await error(manager.create({ id: id('bad2'), tier: 'cluster' as 'row' }))).message,
    ).to.match(/tier "cluster"/);
    expect((await error(manager.create({ id: id('bad3'), server: 'eu-1' }))).message).to.match(
      /row tier, which lives on the central server/,
    );
    expect((await error(manager.create({ id: id('bad4'), region: 'eu west' }))).message).to.match(
      /region label/,
    );
    for (const name of ['bad1', 'bad2', 'bad3', 'bad4'])
      expect(await store.findById(id(name))).to.equal(undefined);
    expect(
      () => new TenantManager({ ...options, servers: { x: { host: 'h', region: 'a b' } } }),
    ).to.throw(TypeError, /region label/);
    expect(() => new TenantManager({ ...options, centralRegion: '' })).to.throw(
      TypeError,
      /region label/,
    );
  });
});
