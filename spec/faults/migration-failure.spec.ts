import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  FleetMigrator,
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  type TenantMigrationsOption,
} from '../../src/index';
import { createScratchDatabase, createTestKnex } from '../support/test-database';

const TENANTS = ['fm-a', 'fm-b', 'fm-bad', 'fm-c', 'fm-d'];

function migrations(only?: number): TenantMigrationsOption {
  const all = [
    {
      name: '0001_documents',
      async up(knex: Knex) {
        await knex.schema.createTable('documents', (t) => {
          t.increments('id');
          t.text('title');
        });
      },
    },
    {
      name: '0002_tags',
      async up(knex: Knex) {
        // Fails where a stray "tags" table is in the way (set up for fm-bad below).
        await knex.schema.createTable('tags', (t) => {
          t.increments('id');
          t.text('label');
        });
      },
    },
  ];
  return only === undefined ? all : all.slice(0, only);
}

describe('fleet migration with one failing tenant (schema mode)', function () {
  this.timeout(60_000);
  let central: Knex;
  let migrator: FleetMigrator;

  before(async () => {
    central = createTestKnex({ pool: { min: 0, max: 6 } }, await createScratchDatabase('fmfail'));
    await migrateCentral(central);
    const store = new KnexTenantStore(central);
    const manager = new TenantManager({
      knex: central,
      store,
      mode: 'schema',
      schemaPrefix: 'fm_',
      migrations: migrations(1),
    });
    for (const id of TENANTS) await manager.create({ id, name: id });
    const bad = await store.findById('fm-bad');
    await central.schema.withSchema(bad?.isolation.schema as string).createTable('tags', (t) => {
      t.text('in_the_way');
    });
    migrator = new FleetMigrator(central, {
      store,
      mode: 'schema',
      schemaPrefix: 'fm_',
      migrations: migrations(),
    });
  });

  it('migrates every other tenant, reports the failing one, and a re-run resumes it', async () => {
    const first = await migrator.migrateTenants({ concurrency: 2 });
    expect(first.failed.map((f) => f.tenantId)).to.deep.equal(['fm-bad']);
    expect([...first.migrated].sort()).to.deep.equal(TENANTS.filter((t) => t !== 'fm-bad').sort());

    const status = await migrator.status();
    const byId = new Map(status.tenants.map((t) => [t.tenantId, t]));
    expect(byId.get('fm-bad')?.status).to.equal('failed');
    expect(byId.get('fm-bad')?.version).to.equal('0001_documents');
    for (const id of TENANTS.filter((t) => t !== 'fm-bad')) {
      expect(byId.get(id)?.version, id).to.equal('0002_tags');
      expect(byId.get(id)?.upToDate, id).to.equal(true);
    }

    // Fix the cause, run again: only the failed tenant has work left.
    const record = (await central('tenants').where({ id: 'fm-bad' }).first()) as {
      isolation: { schema: string };
    };
    await central.schema.withSchema(record.isolation.schema).dropTable('tags');
    const second = await migrator.migrateTenants({ concurrency: 2 });
    expect(second.failed).to.deep.equal([]);
    expect(second.migrated).to.deep.equal(['fm-bad']);
    expect([...second.current].sort()).to.deep.equal(TENANTS.filter((t) => t !== 'fm-bad').sort());
    const after = await migrator.status();
    expect(after.tenants.every((t) => t.upToDate && t.status === 'ok')).to.equal(true);
  });
});
