import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  runWithTenant,
  withTenancy,
  type TenantRecord,
} from '../../src/index';
import { createScratchDatabase, createTestKnex } from '../support/test-database';

interface SessionState {
  search_path: string;
  tenant_setting: string | null;
}

async function sessionState(knex: Knex): Promise<SessionState> {
  const result = (await knex.raw(
    "select current_setting('search_path') as search_path, current_setting('app.tenant_id', true) as tenant_setting",
  )) as { rows: SessionState[] };
  return result.rows[0] as SessionState;
}

/**
 * With a pool of one connection, the connection that ran a failed
 * transaction for one tenant is the very next one handed out: it must carry
 * no search_path or tenant setting from it.
 */
describe('a pooled connection after an error mid-transaction (pool max 1)', function () {
  this.timeout(60_000);

  for (const mode of ['schema', 'row'] as const) {
    describe(`in ${mode} mode`, () => {
      let base: Knex;
      let acme: TenantRecord;
      let globex: TenantRecord;
      let baseline: SessionState;

      before(async () => {
        const database = await createScratchDatabase(`pool_${mode}`);
        const setup = createTestKnex({ pool: { min: 0, max: 2 } }, database);
        await migrateCentral(setup);
        const store = new KnexTenantStore(setup);
        const manager = new TenantManager({
          knex: setup,
          store,
          mode,
          schemaPrefix: 'pc_',
          migrations: [
            {
              name: '0001_documents',
              async up(knex: Knex) {
                await knex.schema.createTable('documents', (t) => {
                  t.increments('id');
                  if (mode === 'row') t.text('tenant_id').notNullable();
                  t.text('title').notNullable();
                });
              },
            },
          ],
        });
        if (mode === 'row') await manager.migrateTenants();
        acme = await manager.create({ id: 'acme', name: 'Acme' });
        globex = await manager.create({ id: 'globex', name: 'Globex' });
        base = createTestKnex({ pool: { min: 0, max: 1 } }, database);
        baseline = await sessionState(base);
      });

      it('leaves no tenant state behind after a failed transaction, and the next tenant sees only its rows', async () => {
        const db = withTenancy(base, { mode, tenantTables: ['documents'], schemaPrefix: 'pc_' });
        await runWithTenant(globex, async () => {
          await db('documents').insert({ title: 'globex secret' });
        });
        const failure = await runWithTenant(acme, () =>
          db.transaction(async (trx) => {
            await trx('documents').insert({ title: 'acme draft' });
            await trx('documents').select('*');
            await trx.raw('select 1/0');
          }),
        ).then(
          () => undefined,
          (error: unknown) => error as { code?: string },
        );
        expect(failure?.code).to.equal('22012'); // division_by_zero: the transaction really failed

        // The same (only) connection, outside any tenant: nothing of acme's left on it.
        const state = await sessionState(base);
        expect(state.search_path).to.equal(baseline.search_path);
        expect(state.search_path).to.not.include('acme');
        expect(state.tenant_setting ?? '').to.equal(baseline.tenant_setting ?? '');

        // The rolled-back insert is gone, and globex, on that connection, sees only globex.
        const seen = (await runWithTenant(
          globex,
          async () => await db('documents').select('title'),
        )) as {
          title: string;
        }[];
        expect(seen.map((r) => r.title)).to.deep.equal(['globex secret']);
        const acmeRows = (await runWithTenant(
          acme,
          async () => await db('documents').select('title'),
        )) as unknown[];
        expect(acmeRows).to.deep.equal([]);
      });
    });
  }
});
