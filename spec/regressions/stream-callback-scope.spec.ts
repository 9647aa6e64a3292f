/**
 * Regression: callbacks fired by a pooled connection's socket (the rows of a
 * knex `.stream()`) ran in the async context of the request that had OPENED
 * that connection. A statement built in such a callback then ran as that
 * other tenant: a globex stream's row handler read acme's comments. Pool
 * connections are now opened outside any tenant scope, so such a callback
 * has no tenant and its statements fail closed (TENANT_SCOPE_REQUIRED),
 * unless the stream is bound to its tenant (keepTenant / tenantPipeline).
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../../src/index';
import { createRowFixture } from '../isolation/support/row-fixture';

describe('regression: a stream callback never runs as the tenant that opened the pooled connection', () => {
  let knex: Knex;
  let db: TenantKnex;

  before(async () => {
    // One pooled connection, opened while acme's scope is active.
    ({ knex } = await createRowFixture({ pool: { min: 0, max: 1 } }));
    await knex.destroy();
    knex.initialize();
    db = withTenancy(knex, { tenantTables: ['documents', 'comments'] });
    await runWithTenant('acme', async () => {
      await db('documents').first();
    });
  });

  it("a globex stream's row handler cannot read acme's rows", async () => {
    const seen: string[] = [];
    const refused: string[] = [];
    await runWithTenant('globex', async () => {
      const rows = db('documents').select('id').orderBy('id').stream();
      const pending: Promise<void>[] = [];
      await new Promise<void>((resolve, reject) => {
        rows.on('data', (row: { id: number }) => {
          // Built inside the socket's callback: whatever scope that callback has.
          pending.push(
            Promise.resolve(
              db('comments')
                .where({ document_id: row.id })
                .select('tenant_id')
                .then((found: Array<{ tenant_id: string }>) => {
                  for (const r of found) seen.push(r.tenant_id);
                }),
            ).catch((error: { code?: string }) => {
              refused.push(String(error.code));
            }),
          );
        });
        rows.on('end', () => resolve());
        rows.on('error', reject);
      });
      await Promise.all(pending);
    });
    expect(seen, 'rows read in the stream callbacks').to.not.include('acme');
    expect(seen.length + refused.length).to.equal(3);
    for (const code of refused) expect(code).to.equal('TENANT_SCOPE_REQUIRED');
  });
});
