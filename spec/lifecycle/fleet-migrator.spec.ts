import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import {
  FleetMigrator,
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  migrationProgressReporter,
  type TenantMigrationProgress,
} from '../../src/index';
import { createTestKnex } from '../support/test-database';

const run = randomBytes(3).toString('hex');

describe('FleetMigrator', function () {
  this.timeout(60_000);
  let knex: Knex;
  let store: KnexTenantStore;
  const broken = new Set<string>();
  let third = false;
  const migrations = () => {
    const list = [
      { name: '001_a', up: (k: Knex) => k.schema.createTable('a', (t) => t.text('x')) },
      {
        name: '002_b',
        up: async (k: Knex) => {
          const { rows } = (await k.raw('select current_schema() as s')) as {
            rows: { s: string }[];
          };
          if (broken.has(rows[0]!.s)) throw new Error(`broken schema ${rows[0]!.s}`);
          await k.schema.createTable('b', (t) => t.text('y'));
        },
      },
    ];
    return {
      getMigrations: () =>
        Promise.resolve(
          third
            ? [
                ...list,
                { name: '003_c', up: (k: Knex) => k.schema.createTable('c', (t) => t.text('z')) },
              ]
            : list,
        ),
      getMigrationName: (m: { name: string }) => m.name,
      getMigration: (m: { up(k: Knex): Promise<unknown> }) =>
        Promise.resolve({ up: m.up, down: () => Promise.resolve() }),
    } as Knex.MigrationSource<unknown>;
  };
  const ids = Array.from({ length: 6 }, (_, i) => `fm${i}-${run}`);
  const schemaOf = (tid: string) => `fm_${tid.replace(/-/g, '_')}`;

  before(async () => {
    await createTestKnex().raw('create schema if not exists fleet_spec');
    knex = createTestKnex({ searchPath: ['fleet_spec'] });
    await migrateCentral(knex);
    store = new KnexTenantStore(knex);
    const manager = new TenantManager({ knex, store, mode: 'schema', schemaPrefix: 'fm_' });
    for (const tid of ids) await manager.create({ id: tid });
  });

  it('migrates every tenant schema with a concurrency limit, skips and reports a failing tenant, and resumes', async () => {
    const fleet = new FleetMigrator(knex, {
      store,
      mode: 'schema',
      schemaPrefix: 'fm_',
      migrations: migrations(),
    });
    broken.add(schemaOf(ids[2]!));
    const progress: TenantMigrationProgress[] = [];
    const first = await fleet.migrateTenants({
      concurrency: 3,
      onProgress: (p) => progress.push(p),
    });
    expect(first.latest).to.equal('002_b');
    expect(first.failed.map((f) => f.tenantId)).to.deep.equal([ids[2]]);
    expect(first.failed[0]!.error).to.match(/broken schema/);
    expect(first.migrated).to.deep.equal(ids.filter((t) => t !== ids[2]).sort());
    expect(progress.map((p) => p.done)).to.deep.equal([1, 2, 3, 4, 5, 6]);

    const drift = await fleet.status();
    const byId = new Map(drift.tenants.map((t) => [t.tenantId, t]));
    expect(byId.get(ids[0]!)).to.include({
      version: '002_b',
      applied: 2,
      pending: 0,
      upToDate: true,
      status: 'ok',
    });
    // The failed tenant's transaction rolled back: it is still on nothing, with the error recorded.
    expect(byId.get(ids[2]!)).to.include({ status: 'failed', upToDate: false });
    expect(byId.get(ids[2]!)?.error).to.match(/broken schema/);

    broken.clear();
    const resumed = await fleet.migrateTenants({ concurrency: 3 });
    expect(resumed.failed).to.deep.equal([]);
    expect(resumed.migrated).to.deep.equal([ids[2]]);
    expect(resumed.current).to.have.length(5);
    expect((await fleet.status()).tenants.every((t) => t.upToDate)).to.equal(true);
  });

  it('targets one tenant with { tenant } and reports drift for the others', async () => {
    third = true;
    const fleet = new FleetMigrator(knex, {
      store,
      mode: 'schema',
      schemaPrefix: 'fm_',
      migrations: migrations(),
    });
    const one = await fleet.migrateTenants({ tenant: ids[0]! });
    expect(one.migrated).to.deep.equal([ids[0]]);
    const drift = await fleet.status();
    expect(drift.latest).to.equal('003_c');
    const behind = drift.tenants.filter((t) => !t.upToDate).map((t) => t.tenantId);
    expect(behind).to.deep.equal(ids.slice(1));
    expect(drift.tenants.find((t) => t.tenantId === ids[1])).to.include({
      version: '002_b',
      pending: 1,
    });
    const cols = await knex.withSchema(schemaOf(ids[0]!)).from('c').columnInfo();
    expect(cols).to.have.property('z');
    const err = await fleet.migrateTenants({ tenant: 'ghost' }).catch((e: unknown) => e);
    expect(err).to.include({ code: 'TENANT_NOT_FOUND' });
    third = false;
  });

  it('runs tenant migrations once in row mode', async () => {
    await createTestKnex().raw('create schema if not exists fleet_row_spec');
    const rowKnex = createTestKnex({ searchPath: ['fleet_row_spec'] });
    await migrateCentral(rowKnex);
    const rowStore = new KnexTenantStore(rowKnex);
    await rowStore.create({ id: 'one' });
    await rowStore.create({ id: 'two' });
    const fleet = new FleetMigrator(rowKnex, {
      store: rowStore,
      mode: 'row',
      migrations: migrations(),
    });
    const result = await fleet.migrateTenants();
    expect(result.migrated).to.deep.equal(['*']);
    expect(await rowKnex.schema.withSchema('fleet_row_spec').hasTable('b')).to.equal(true);
    expect((await fleet.migrateTenants()).migrated).to.deep.equal([]);
  });

  it('prints plain lines off a terminal and a redrawn bar on one', () => {
    const plain: string[] = [];
    const tty: string[] = [];
    const steps: TenantMigrationProgress[] = [
      { tenantId: 'a', outcome: 'migrated', applied: ['001'], done: 1, total: 2 },
      { tenantId: 'b', outcome: 'failed', applied: [], error: 'boom', done: 2, total: 2 },
    ];
    const p = migrationProgressReporter({ write: (t: string) => plain.push(t) });
    const b = migrationProgressReporter({
      write: (t: string) => tty.push(t),
      isTTY: true,
      columns: 60,
    });
    steps.forEach((s) => (p(s), b(s)));
    expect(plain).to.deep.equal(['[1/2] a migrated (001)\n', '[2/2] b failed: boom\n']);
    expect(tty.join('')).to.match(/^\r\[#+-*\] 1\/2 failed 0\r\[#+\] 2\/2 failed 1\n$/);
  });
});
