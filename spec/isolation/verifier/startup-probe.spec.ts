import { expect } from 'chai';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy } from '../../../src/index';
import { setScopingDisabledForMutationTest } from '../../../src/isolation/statement-scoper';
import { createTestKnex } from '../../support/test-database';

describe('the start-up probe of row and schema mode', () => {
  let knex: Knex;
  before(() => {
    knex = createTestKnex({ pool: { min: 0, max: 1 } });
  });

  for (const mode of ['row', 'schema'] as const) {
    it(`passes on this knex version (${mode} mode): ready() resolves`, async () => {
      await withTenancy(knex, { mode, tenantTables: ['documents'] }).tenancy.ready();
    });

    it(`refuses to start when the rewrite no longer scopes statements (${mode} mode), as a knex upgrade that broke it would`, async () => {
      // The rewrite hooks knex internals; switching it off stands for a knex that no longer calls them.
      setScopingDisabledForMutationTest(true);
      let error: { code?: string; message?: string } | undefined;
      try {
        const db = withTenancy(knex, { mode, tenantTables: ['documents'] });
        await db.tenancy.ready().catch((e: unknown) => {
          error = e as typeof error;
        });
        // A statement is refused the same way, before any SQL is sent.
        const statement = await runWithTenant('acme', () => db.raw('select 1'))
          .then(() => undefined)
          .catch((e: unknown) => e as { code?: string });
        expect(statement?.code).to.equal('TENANCY_CONFIG_INVALID');
      } finally {
        setScopingDisabledForMutationTest(false);
      }
      expect(error?.code).to.equal('TENANCY_CONFIG_INVALID');
      expect(error?.message).to.match(
        /start-up probe failed on knex 3\.\d+\.\d+: the verifier refused the scoped select/,
      );
    });
  }
});
