import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import {
  FleetMigrator,
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  runTenancyDoctor,
  type DoctorFinding,
  type TenancyDoctorOptions,
  type TenantTier,
} from '../../../src/index';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  destroyTestKnex,
} from '../../support/test-database';

const m1 = {
  name: '001_notes',
  up: (k: Knex) => k.schema.createTable('notes', (t) => t.text('x')),
};
const m2 = { name: '002_tags', up: (k: Knex) => k.schema.createTable('tags', (t) => t.text('x')) };

interface MixedFleet {
  readonly knex: Knex;
  readonly store: KnexTenantStore;
  readonly schemaPrefix: string;
  readonly databasePrefix: string;
  readonly options: TenancyDoctorOptions;
  create(id: string, tier: TenantTier): Promise<void>;
}

const prefixes: string[] = [];
// Each spec's central database and Knex, dropped after it (not all at once by the root hook).
const databases: string[] = [];
const knexes: Knex[] = [];

/** One store, three tiers: row tenants in shared tables, schema tenants, database tenants; all migrated. */
async function mixedFleet(): Promise<MixedFleet> {
  const run = randomBytes(3).toString('hex');
  const schemaPrefix = `dsc${run}_`;
  const databasePrefix = `ddb${run}_`;
  prefixes.push(databasePrefix);
  const database = await createScratchDatabase('doctor_mix');
  databases.push(database);
  const knex = createTestKnex({ pool: { min: 0, max: 4 } }, database);
  knexes.push(knex);
  await migrateCentral(knex);
  await knex.raw(
    'create table documents (tenant_id text not null, id int not null, primary key (tenant_id, id))',
  );
  const store = new KnexTenantStore(knex);
  const managers = {
    schema: new TenantManager({ knex, store, mode: 'schema', schemaPrefix, migrations: [m1] }),
    database: new TenantManager({
      knex,
      store,
      mode: 'database',
      databasePrefix,
      migrations: [m1],
    }),
  };
  await new FleetMigrator(knex, { mode: 'row', store, migrations: [m1] }).migrateTenants();
  const create = async (id: string, tier: TenantTier) => {
    if (tier === 'row') {
      await store.create({ id, isolation: { tier } });
      await knex('documents').insert({ tenant_id: id, id: 1 });
    } else {
      await managers[tier].create({ id, isolation: { tier } });
    }
  };
  await create('r1', 'row');
  await create('s1', 'schema');
  await create('d1', 'database');
  return {
    knex,
    store,
    schemaPrefix,
    databasePrefix,
    create,
    options: {
      knex,
      store,
      mode: 'row',
      tenantTables: ['documents'],
      schemaPrefix,
      databasePrefix,
      migrations: [m1],
    },
  };
}

function checks(findings: readonly DoctorFinding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.check} ${f.tier} ${f.tenant ?? ''}`.trim());
}

describe('runTenancyDoctor() on a mixed fleet (row, schema and database tenants in one store)', function () {
  this.timeout(90_000);

  afterEach(async () => {
    for (const knex of knexes.splice(0)) await destroyTestKnex(knex);
    for (const name of databases.splice(0)) {
      await adminQuery(`drop database if exists "${name}" with (force)`);
    }
  });

  after(async () => {
    for (const prefix of prefixes) {
      const { rows } = await adminQuery(
        'select datname from pg_database where left(datname, length($1)) = $1',
        [prefix],
      );
      for (const r of rows as Array<{ datname: string }>) {
        await adminQuery(`drop database if exists "${r.datname}" with (force)`).catch(
          () => undefined,
        );
      }
    }
  });

  it('reports nothing when every tier is laid out, provisioned and migrated', async () => {
    const { options } = await mixedFleet();
    const report = await runTenancyDoctor(options);
    expect(report.findings).to.deep.equal([]);
    expect(report.tiers).to.deep.equal(['row', 'schema', 'database']);
    expect(report.tenants).to.equal(3);
  });

  it('reports each tier behind on migrations: against the source, and without one against the most migrated storage', async () => {
    const { knex, store, schemaPrefix, options } = await mixedFleet();
    const behind = await runTenancyDoctor({ ...options, migrations: [m1, m2] });
    expect(checks(behind.findings)).to.deep.equal([
      'error migrations-behind row',
      'error migrations-behind schema s1',
      'error migrations-behind database d1',
    ]);
    expect(behind.findings[1]?.fix).to.equal('tenantry migrate --tenant s1 --migrations <dir>');
    const s1 = await store.findById('s1');
    await new FleetMigrator(knex, {
      mode: 'schema',
      schemaPrefix,
      store,
      migrations: [m1, m2],
    }).migrateTenant(s1!);
    const noSource = await runTenancyDoctor({ ...options, migrations: undefined });
    expect(checks(noSource.findings)).to.deep.equal([
      'error migrations-behind row',
      'error migrations-behind database d1',
    ]);
    expect(noSource.findings[0]?.detail).to.include('002_tags').and.include('other tenants have');
  });

  it('reports records pointing at missing storage and storage no record claims, on every tier', async () => {
    const fleet = await mixedFleet();
    const { knex, store, schemaPrefix, databasePrefix, create, options } = fleet;
    await create('s2', 'schema');
    await create('s3', 'schema');
    await create('d2', 'database');
    await create('d4', 'database');
    await store.update('d4', { status: 'deleted' });
    await knex.raw(`drop schema "${schemaPrefix}s2" cascade`);
    await knex.raw(`create schema "${schemaPrefix}zombie"`);
    await store.update('s3', { status: 'deleted' });
    await adminQuery(`drop database "${databasePrefix}d2" with (force)`);
    await adminQuery(`create database "${databasePrefix}zombie"`);
    await store.create({
      id: 'd3',
      isolation: {
        tier: 'database',
        database: { database: `${databasePrefix}d3`, server: 'nowhere' },
      },
    });
    const report = await runTenancyDoctor(options);
    expect(checks(report.findings)).to.deep.equal([
      'error storage-missing schema s2',
      'error orphaned-storage schema',
      'error storage-missing database d2',
      'error storage-unreachable database d3',
      'error orphaned-storage database',
      'warning orphaned-storage schema s3',
      'warning orphaned-storage database d4',
    ]);
    const detail = report.findings.map((f) => f.detail).join('\n');
    expect(detail).to.include(`"${schemaPrefix}zombie"`).and.include(`"${databasePrefix}zombie"`);
    expect(report.findings[3]?.detail).to.include('server');
    expect(report.findings[5]?.detail).to.include('deleted but not purged');
  });

  it('reports a database tier server that does not answer', async () => {
    const { store, databasePrefix, options } = await mixedFleet();
    await store.create({
      id: 'd9',
      isolation: {
        tier: 'database',
        database: { database: `${databasePrefix}d9`, server: 'down' },
      },
    });
    const report = await runTenancyDoctor({
      ...options,
      servers: { down: { host: '127.0.0.1', port: 1 } },
    });
    expect(checks(report.findings)).to.deep.equal([
      'error storage-unreachable database d9',
      'warning storage-unreachable database',
    ]);
    expect(report.findings[0]?.detail).to.include('ECONNREFUSED');
  });

  it('examines one tenant with tenant: its tier, its storage and its rows only', async () => {
    const { knex, schemaPrefix, options } = await mixedFleet();
    await knex.raw(`create schema "${schemaPrefix}zombie"`);
    await knex('documents').insert({ tenant_id: 'd1', id: 7 });
    const report = await runTenancyDoctor({ ...options, tenant: 'd1', migrations: [m1, m2] });
    expect(report.tiers).to.deep.equal(['database']);
    expect(checks(report.findings)).to.deep.equal([
      'error migrations-behind database d1',
      'warning orphaned-rows row d1',
    ]);
  });
});
