import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  KnexTenantStore,
  TenantNotFoundError,
  TenantStateError,
  migrateCentral,
} from '../../src/index';
import { createTestKnex } from '../support/test-database';

describe('KnexTenantStore', () => {
  let knex: Knex;
  let store: KnexTenantStore;

  before(async () => {
    knex = createTestKnex();
    await knex.raw('create schema if not exists store_spec');
    knex = createTestKnex({ searchPath: ['store_spec'] });
    await migrateCentral(knex);
    store = new KnexTenantStore(knex);
  });

  beforeEach(async () => {
    await knex('tenants').delete();
  });

  it('applies the central migration once: a second run applies nothing', async () => {
    expect(await migrateCentral(knex)).to.deep.equal([]);
    const { rows } = await knex.raw<{ rows: { table_name: string }[] }>(
      `select table_name from information_schema.tables where table_schema = 'store_spec' order by 1`,
    );
    expect(rows.map((r) => r.table_name)).to.include.members([
      'tenants',
      'tenantry_tenant_migrations',
      'tenantry_central_migrations',
    ]);
  });

  it('creates, finds, lists (ordered by id, filtered by status), updates and removes tenants', async () => {
    const created = await store.create({
      id: 'acme',
      name: 'Acme',
      isolation: { schema: 'tenant_acme' },
      config: { theme: 'dark', seats: 5 },
    });
    expect(created).to.include({ id: 'acme', name: 'Acme', status: 'active' });
    expect(created.config).to.deep.equal({ theme: 'dark', seats: 5 });
    expect(created.createdAt).to.be.instanceOf(Date);
    await store.create({ id: 'beta', status: 'suspended' });

    expect((await store.findById('acme'))?.isolation).to.deep.equal({ schema: 'tenant_acme' });
    expect(await store.findById('nobody')).to.equal(undefined);
    expect((await store.list()).map((t) => t.id)).to.deep.equal(['acme', 'beta']);
    expect((await store.list({ status: ['suspended'] })).map((t) => t.id)).to.deep.equal(['beta']);

    const updated = await store.update('beta', {
      status: 'active',
      statusReason: 'paid',
      config: { x: 1 },
    });
    expect(updated).to.include({ status: 'active', statusReason: 'paid', name: 'beta' });
    expect(updated.updatedAt!.getTime()).to.be.at.least(updated.createdAt!.getTime());

    expect(await store.remove('beta')).to.equal(true);
    expect(await store.remove('beta')).to.equal(false);
  });

  it('refuses a duplicate id with 409 TENANT_STATE_INVALID', async () => {
    await store.create({ id: 'dup' });
    const error = await store.create({ id: 'dup' }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TenantStateError);
    expect(error).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
  });

  it('answers 404 TENANT_NOT_FOUND when updating a missing tenant', async () => {
    const error = await store.update('ghost', { name: 'x' }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TenantNotFoundError);
    expect(error).to.include({ code: 'TENANT_NOT_FOUND', status: 404 });
  });

  it('refuses malformed and SQL-looking ids with 400 TENANT_INVALID before any statement', async () => {
    const sent: string[] = [];
    const onQuery = (q: { sql: string }) => sent.push(q.sql);
    knex.on('query', onQuery);
    try {
      for (const bad of ["x'; drop table tenants;--", 'UPPER', '', '-a', 'a'.repeat(64)]) {
        for (const call of [
          () => store.findById(bad),
          () => store.create({ id: bad }),
          () => store.update(bad, {}),
          () => store.remove(bad),
        ]) {
          const error = await call().catch((e: unknown) => e);
          expect(error).to.have.property('code', 'TENANT_INVALID');
          expect(error).to.have.property('status', 400);
        }
      }
    } finally {
      knex.off('query', onQuery);
    }
    expect(sent).to.deep.equal([]);
  });

  it('is held to the id pattern and known statuses by CHECK constraints in the table itself', async () => {
    const badId = await knex('tenants')
      .insert({ id: 'Bad Id', name: 'x' })
      .catch((e: { code?: string }) => e);
    expect(badId).to.have.property('code', '23514');
    const badStatus = await knex('tenants')
      .insert({ id: 'ok', name: 'x', status: 'zombie' })
      .catch((e: { code?: string }) => e);
    expect(badStatus).to.have.property('code', '23514');
  });

  it('stores hostile names and config verbatim through bound parameters', async () => {
    const name = `Robert'); drop table tenants;--`;
    await store.create({ id: 'bobby', name, config: { q: "' or 1=1 --" } });
    const found = await store.findById('bobby');
    expect(found?.name).to.equal(name);
    expect(found?.config).to.deep.equal({ q: "' or 1=1 --" });
  });

  it('updateIfStatus() changes a tenant only from the given statuses', async () => {
    await store.create({ id: 'cas', status: 'suspended' });
    expect(await store.updateIfStatus('cas', ['active'], { status: 'archived' })).to.equal(
      undefined,
    );
    const moved = await store.updateIfStatus('cas', ['suspended'], { status: 'active' });
    expect(moved?.status).to.equal('active');
  });

  it('rejects an unknown status filter and a non-identifier table name with TypeError', async () => {
    expect(() => new KnexTenantStore(knex, { tableName: 'tenants; drop' })).to.throw(TypeError);
    const error = await store.list({ status: ['zombie' as never] }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TypeError);
  });
});
