import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { withTenancy, type TenantKnex } from '../../src/index';
import { findCrossTenantRows } from '../../src/testing/index';
import { createTestKnex } from '../support/test-database';

const run = randomBytes(3).toString('hex');

describe('findCrossTenantRows() (tenantry/testing)', function () {
  this.timeout(30_000);
  let knex: Knex;
  let db: TenantKnex;

  before(async () => {
    const schema = `leak_test_${run}`;
    const plain = createTestKnex({ pool: { min: 0, max: 1 } });
    await plain.raw('create schema ??', [schema]);
    await plain.destroy();
    knex = createTestKnex({ searchPath: [schema] });
    await knex.schema.createTable('invoices', (t) => {
      t.increments('id');
      t.text('tenant_id').notNullable();
      t.text('title').notNullable();
      t.integer('total').notNullable();
    });
    await knex('invoices').insert([
      { tenant_id: 'acme', title: 'anvils', total: 10 },
      { tenant_id: 'acme', title: 'rockets', total: 20 },
      { tenant_id: 'globex', title: 'a secret', total: 99 },
    ]);
    db = withTenancy(knex, { tenantTables: ['invoices'] });
  });

  it('reports no cross-tenant rows for statements through withTenancy(), having checked rows of both tenants', async () => {
    const report = await findCrossTenantRows({
      tenants: ['acme', 'globex'],
      statements: {
        all: () => db('invoices'),
        'or widens nothing': () =>
          db('invoices').where('title', 'like', '%a%').orWhere('total', '>', 0),
        'self join': () =>
          db('invoices as a').join('invoices as b', 'a.total', '<=', 'b.total').select('b.*'),
        first: () => db('invoices').orderBy('id').first(),
        'update count': () => db('invoices').where({ total: -1 }).update({ total: -1 }),
      },
    });
    expect(report.crossTenantRows).to.deep.equal([]);
    expect(report.refused).to.deep.equal([]);
    expect(report.unownedRows).to.deep.equal([]);
    // acme: 2+2+3(self join pairs)+1, globex: 1+1+1+1
    expect(report.checkedRows).to.equal(12);
  });

  it('reports the other tenant rows a statement that bypasses withTenancy() returns', async () => {
    const report = await findCrossTenantRows({
      tenants: ['acme', 'globex'],
      statements: { 'base knex': () => knex('invoices').orderBy('id') },
    });
    expect(
      report.crossTenantRows.map((r) => [r.statement, r.runAs, r.owner, r.row.title]),
    ).to.deep.equal([
      ['base knex', 'acme', 'globex', 'a secret'],
      ['base knex', 'globex', 'acme', 'anvils'],
      ['base knex', 'globex', 'acme', 'rockets'],
    ]);
  });

  it('reads the owner through a function, and counts rows without an owner as unchecked', async () => {
    const report = await findCrossTenantRows({
      tenants: ['acme', 'globex'],
      owner: (row) => (typeof row.label === 'string' ? row.label.split(':')[0] : undefined),
      statements: {
        labelled: () => knex.raw("select tenant_id || ':' || title as label from invoices"),
        'no owner column': () => db('invoices').select('title'),
      },
    });
    expect(report.crossTenantRows.map((r) => [r.runAs, r.owner])).to.deep.equal([
      ['acme', 'globex'],
      ['globex', 'acme'],
      ['globex', 'acme'],
    ]);
    expect(report.unownedRows).to.deep.equal([
      { statement: 'no owner column', runAs: 'acme', count: 2 },
      { statement: 'no owner column', runAs: 'globex', count: 1 },
    ]);
  });

  it('lists statements tenantry refuses with their code, and rethrows other errors', async () => {
    const report = await findCrossTenantRows({
      tenants: ['acme', 'globex'],
      statements: { 'raw on a tenant table': () => db.raw('select * from invoices') },
    });
    expect(report.refused.map((r) => [r.runAs, r.code])).to.deep.equal([
      ['acme', 'UNSAFE_QUERY'],
      ['globex', 'UNSAFE_QUERY'],
    ]);
    const error = await findCrossTenantRows({
      tenants: ['acme', 'globex'],
      statements: { broken: () => knex('no_such_table') },
    }).catch((e: unknown) => e);
    expect(error)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/no_such_table/);
  });

  it('throws a TypeError for bad options', () => {
    const bad: unknown[] = [
      null,
      { tenants: ['acme'], statements: { a: () => 1 } },
      { tenants: ['acme', 'acme'], statements: { a: () => 1 } },
      { tenants: ['acme', 'Bad Id'], statements: { a: () => 1 } },
      { tenants: ['acme', 'globex'], statements: {} },
      { tenants: ['acme', 'globex'], statements: { a: 'select 1' } },
      { tenants: ['acme', 'globex'], statements: { a: () => 1 }, owner: 7 },
    ];
    for (const options of bad) {
      expect(() => findCrossTenantRows(options as never), JSON.stringify(options)).to.throw(
        TypeError,
      );
    }
  });
});
