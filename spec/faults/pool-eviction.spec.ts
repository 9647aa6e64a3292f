import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  runWithTenant,
  withTenancy,
  type DatabaseTenantKnex,
  type TenantRecord,
} from '../../src/index';
import { uniquePrefix } from '../../bench/load/run-load';
import { adminQuery, createScratchDatabase, createTestKnex } from '../support/test-database';

function describeFailure(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { message?: string } };
  return `${e.code ?? 'no code'}: ${e.message ?? String(error)} (cause: ${e.cause?.message ?? 'none'})`;
}

/**
 * Regression, found by the database-mode load test (bench/load): with more
 * busy tenants than `maxPools`, evicting a least-recently-used pool aborted
 * the requests still waiting for one of its connections, so HEALTHY tenants
 * got 503 TENANT_UNAVAILABLE ("connection failed", cause: tarn "aborted").
 * Pools over the cap are now retired and close only once drained.
 */
describe('database mode with more busy tenants than maxPools', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix('ev');
  let base: Knex;
  let tenants: TenantRecord[];

  before(async () => {
    base = createTestKnex({ pool: { min: 0, max: 4 } }, await createScratchDatabase('evict'));
    await migrateCentral(base);
    const manager = new TenantManager({
      knex: base,
      store: new KnexTenantStore(base),
      mode: 'database',
      databasePrefix: prefix,
      migrations: [
        {
          name: '0001_items',
          async up(knex: Knex) {
            await knex.schema.createTable('items', (t) => t.increments('id'));
          },
        },
      ],
    });
    tenants = [];
    for (let i = 0; i < 12; i += 1)
      tenants.push(await manager.create({ id: `ev-${i}`, name: `ev ${i}` }));
  });

  after(async () => {
    const dbs = await adminQuery('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
      prefix,
    ]);
    for (const row of dbs.rows as { datname: string }[]) {
      await adminQuery(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    }
  });

  it('never fails a healthy tenant while its pool is evicted, and never exceeds the connection budget', async () => {
    const db = withTenancy(base, {
      mode: 'database',
      tenantTables: ['items'],
      database: { maxPools: 3, connectionBudget: 10, databasePrefix: prefix },
    }) as DatabaseTenantKnex;
    try {
      // Workers each run queries back to back for random tenants, as HTTP clients do.
      const outcomes: string[] = [];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = 0; i < 40; i += 1) {
            const tenant = tenants[Math.floor(Math.random() * tenants.length)] as TenantRecord;
            outcomes.push(
              await runWithTenant(tenant, async () => {
                await db('items').count({ n: '*' });
                return 'ok';
              }).catch((error: unknown) => describeFailure(error)),
            );
          }
        }),
      );
      const failures = outcomes.filter((o) => o !== 'ok');
      expect(failures, failures.slice(0, 3).join(', ')).to.deep.equal([]);
      expect(outcomes).to.have.length(16 * 40);
      const stats = db.tenantPools.stats();
      expect(stats.peakConnections).to.be.at.most(10);
      // Retired pools close as soon as their last borrower is done.
      expect(stats.pools).to.be.at.most(3);
    } finally {
      await db.destroy();
    }
  });
});
