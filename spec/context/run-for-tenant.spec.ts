import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import {
  CachedTenantStore,
  KnexTenantStore,
  TenantManager,
  currentTenant,
  migrateCentral,
  runForTenant,
  runTenantJob,
  runWithTenant,
  tenantJob,
  withTenancy,
  type TenantKnex,
  type TenantStore,
} from '../../src/index';
import { createTestKnex } from '../support/test-database';

const run = randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${run}`;

describe('runForTenant() and tenant jobs', function () {
  this.timeout(30_000);
  let knex: Knex;
  let db: TenantKnex;
  let store: KnexTenantStore;
  let manager: TenantManager;

  before(async () => {
    const schema = `run_for_tenant_${run}`;
    const plain = createTestKnex({ pool: { min: 0, max: 1 } });
    await plain.raw('create schema ??', [schema]);
    await plain.destroy();
    knex = createTestKnex({ searchPath: [schema] });
    await migrateCentral(knex);
    await knex.schema.createTable('notes', (t) => {
      t.text('tenant_id').notNullable();
      t.text('body');
    });
    // The queue: payloads go through PostgreSQL as jsonb, as through any real queue.
    await knex.schema.createTable('jobs', (t) => {
      t.increments('id');
      t.jsonb('payload').notNullable();
    });
    db = withTenancy(knex, { tenantTables: ['notes'], sharedTables: ['tenants', 'jobs'] });
    store = new KnexTenantStore(knex);
    manager = new TenantManager({ knex, store, db });
    for (const name of ['acme', 'paused', 'old', 'gone', 'later']) {
      await manager.create({ id: id(name) });
    }
    await manager.suspend(id('paused'), 'unpaid');
    await manager.archive(id('old'));
    await manager.delete(id('gone'));
  });

  it('runs fn in the tenant scope with the stored record, so scoped writes are stamped', async () => {
    const seen = await runForTenant(store, id('acme'), async (tenant) => {
      expect(currentTenant()).to.equal(tenant);
      await db('notes').insert({ body: 'from a job' });
      return tenant.tenant.status;
    });
    expect(seen).to.equal('active');
    expect(
      await knex('notes')
        .where({ tenant_id: id('acme') })
        .pluck('body'),
    ).to.deep.equal(['from a job']);
  });

  it('refuses unknown, deleted, suspended and archived tenants with the HTTP codes, and never runs fn', async () => {
    const cases: [string, string, number][] = [
      [id('ghost'), 'TENANT_NOT_FOUND', 404],
      [id('gone'), 'TENANT_NOT_FOUND', 404],
      [id('paused'), 'TENANT_SUSPENDED', 403],
      [id('old'), 'TENANT_SUSPENDED', 403],
      ["x'; drop table notes; --", 'TENANT_INVALID', 400],
    ];
    let ran = 0;
    for (const [tenantId, code, status] of cases) {
      const error = await runForTenant(store, tenantId, () => ran++).catch((e: unknown) => e);
      expect(error, tenantId).to.include({ code, status });
    }
    expect(ran).to.equal(0);
  });

  it('answers 503 TENANT_UNAVAILABLE when the store fails', async () => {
    const broken: TenantStore = {
      findById: () => Promise.reject(new Error('connection refused')),
      list: () => Promise.resolve([]),
      create: (t) => store.create(t),
      update: (i, p) => store.update(i, p),
      remove: (i) => store.remove(i),
    };
    const error = await runForTenant(broken, id('acme'), () => 1).catch((e: unknown) => e);
    expect(error).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
  });

  it('documents that runWithTenant() with a bare id checks nothing (it runs for a suspended tenant)', async () => {
    const status = await runWithTenant(id('paused'), () => currentTenant().tenant.status);
    expect(status).to.equal('active'); // the minimal record, not the stored one
  });

  it('captures the tenant at enqueue, and at run restores it or refuses it when its status changed', async () => {
    const enqueue = (body: string) =>
      runWithTenant(id('later'), () => knex('jobs').insert({ payload: tenantJob({ body }) }));
    await enqueue('first');
    await enqueue('second');
    const work = async () => {
      const rows = (await knex('jobs').orderBy('id').select('id', 'payload')) as {
        id: number;
        payload: unknown;
      }[];
      const outcomes: string[] = [];
      for (const row of rows) {
        await runTenantJob(store, row.payload, async ({ body }: { body: string }, tenant) => {
          await db('notes').insert({ body });
          outcomes.push(`${tenant.id}:${body}`);
        }).catch((e: { code: string }) => outcomes.push(e.code));
        await knex('jobs').where({ id: row.id }).delete();
      }
      return outcomes;
    };
    expect((await knex('jobs').first('payload')).payload).to.deep.equal({
      tenantId: id('later'),
      data: { body: 'first' },
    });
    expect(await work()).to.deep.equal([`${id('later')}:first`, `${id('later')}:second`]);
    // Enqueued while active, run after the suspension: refused.
    await enqueue('third');
    await manager.suspend(id('later'));
    expect(await work()).to.deep.equal(['TENANT_SUSPENDED']);
    expect(
      await knex('notes')
        .where({ tenant_id: id('later') })
        .pluck('body'),
    ).to.have.members(['first', 'second']);
  });

  it('refuses to build a job outside a tenant scope, and a payload without a valid tenantId', async () => {
    expect(() => tenantJob({}))
      .to.throw()
      .with.property('code', 'TENANT_SCOPE_REQUIRED');
    for (const payload of [null, 'acme', {}, { tenantId: 'Bad\nId', data: 1 }, { tenantId: 7 }]) {
      const error = await runTenantJob(store, payload, () => 1).catch((e: unknown) => e);
      expect(error, JSON.stringify(payload)).to.include({ code: 'TENANT_INVALID', status: 400 });
    }
  });

  it('sees a suspension through a CachedTenantStore once the manager invalidated it', async () => {
    const cached = new CachedTenantStore(store, { ttlMs: 600_000 });
    const cachedManager = new TenantManager({ knex, store: cached, caches: [cached], db });
    const tid = id('cached');
    await cachedManager.create({ id: tid });
    expect(await runForTenant(cached, tid, (t) => t.id)).to.equal(tid);
    await cachedManager.suspend(tid);
    const error = await runForTenant(cached, tid, () => 1).catch((e: unknown) => e);
    expect(error).to.include({ code: 'TENANT_SUSPENDED' });
  });
});
