import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { container } from 'tsyringe';
import {
  CachedTenantStore,
  KnexTenantStore,
  TENANT_MANAGER_OPTIONS,
  TenantChangeNotifier,
  TenantConfigService,
  TenantManager,
  currentTenant,
  migrateCentral,
  runWithTenant,
  type TenantEventName,
  type TenantMigration,
} from '../../src/index';
import { adminQuery, createTestKnex } from '../support/test-database';

const run = randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${run}`;

function migrations(
  failOn?: () => string | undefined,
): { name: string; up(k: Knex): Promise<void>; down(k: Knex): Promise<void> }[] {
  return [
    {
      name: '001_documents',
      up: async (k) => {
        await k.schema.createTable('documents', (t) => {
          t.increments('id');
          t.text('title');
        });
      },
      down: (k) => k.schema.dropTable('documents'),
    },
    {
      name: '002_tags',
      up: async (k) => {
        const schema = (await k.raw('select current_schema() as s')) as { rows: { s: string }[] };
        if (failOn && failOn() === schema.rows[0]?.s) throw new Error('boom in 002');
        await k.schema.createTable('tags', (t) => t.text('name'));
      },
      down: (k) => k.schema.dropTable('tags'),
    },
  ];
}

async function schemaExists(name: string): Promise<boolean> {
  const knex = createTestKnex({ pool: { min: 0, max: 1 } });
  const { rows } = (await knex.raw('select 1 from pg_namespace where nspname = ?', [name])) as {
    rows: unknown[];
  };
  await knex.destroy();
  return rows.length > 0;
}

describe('TenantManager', function () {
  this.timeout(60_000);
  let knex: Knex;
  let store: KnexTenantStore;

  before(async () => {
    const plain = createTestKnex();
    await plain.raw('create schema if not exists lifecycle_spec');
    knex = createTestKnex({ searchPath: ['lifecycle_spec'] });
    await migrateCentral(knex);
    store = new KnexTenantStore(knex);
  });

  describe('in schema mode', () => {
    let failIn: string | undefined;
    let manager: TenantManager;
    before(() => {
      manager = new TenantManager({
        knex,
        store,
        mode: 'schema',
        schemaPrefix: 'lc_',
        migrations: migrations(() => failIn),
        seed: async (trx, tenant) => {
          // In the tenant's scope too: currentTenant() is the tenant being seeded.
          expect(currentTenant().id).to.equal(tenant.id);
          await trx('documents').insert({ title: `welcome ${currentTenant().id}` });
        },
      });
    });

    it('creates and provisions a tenant: schema, migrations, seed, then active, emitting typed events in order', async () => {
      const seen: [TenantEventName, string][] = [];
      const names: TenantEventName[] = ['tenant.created', 'tenant.provisioned', 'tenant.activated'];
      const stops = names.map((n) =>
        manager.events.subscribe(n, (e) => void seen.push([n, e.tenant.status])),
      );
      const tenant = await manager.create({ id: id('acme'), name: 'Acme' });
      stops.forEach((s) => s());
      expect(tenant.status).to.equal('active');
      const schema = `lc_acme_${run}`;
      expect(tenant.isolation.schema).to.equal(schema);
      expect(seen).to.deep.equal([
        ['tenant.created', 'provisioning'],
        ['tenant.provisioned', 'active'],
        ['tenant.activated', 'active'],
      ]);
      const docs = (await knex.withSchema(schema).from('documents').pluck('title')) as string[];
      expect(docs).to.deep.equal([`welcome ${id('acme')}`]);
      const ledger = await knex.withSchema(schema).from('tenantry_migrations').pluck('name');
      expect(ledger).to.deep.equal(['001_documents', '002_tags']);
    });

    it('is idempotent: provisioning again applies nothing and seeds nothing twice', async () => {
      const again = await manager.provision(id('acme'));
      expect(again.status).to.equal('active');
      const docs = await knex
        .withSchema(`lc_acme_${run}`)
        .from('documents')
        .count({ n: '*' })
        .first();
      expect(Number(docs?.n)).to.equal(1);
    });

    it('rolls back a failed provisioning (drops the schema), marks provisioning_failed with the reason, and retries', async () => {
      const tid = id('flaky');
      failIn = `lc_flaky_${run}`;
      const error = await manager.create({ id: tid }).catch((e: unknown) => e);
      expect(error).to.include({ code: 'TENANT_PROVISIONING_FAILED', status: 500 });
      const failed = await manager.get(tid);
      expect(failed.status).to.equal('provisioning_failed');
      expect(failed.statusReason).to.match(/boom in 002/);
      expect(await schemaExists(`lc_flaky_${run}`)).to.equal(false);
      failIn = undefined;
      const retried = await manager.provision(tid);
      expect(retried).to.include({ status: 'active', statusReason: null });
      expect(await schemaExists(`lc_flaky_${run}`)).to.equal(true);
    });

    it('enforces allowed transitions with 409 TENANT_STATE_INVALID', async () => {
      const tid = id('moves');
      await manager.create({ id: tid });
      const activating = await manager.activate(tid).catch((e: unknown) => e);
      expect(activating).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
      expect((await manager.suspend(tid, 'unpaid')).status).to.equal('suspended');
      expect((await manager.get(tid)).statusReason).to.equal('unpaid');
      expect(await manager.suspend(tid).catch((e: unknown) => e)).to.include({ status: 409 });
      expect((await manager.archive(tid)).status).to.equal('archived');
      expect((await manager.activate(tid)).status).to.equal('active');
      const deleted = await manager.delete(tid);
      expect(deleted.status).to.equal('deleted');
      for (const action of [
        () => manager.activate(tid),
        () => manager.delete(tid),
        () => manager.provision(tid),
      ]) {
        expect(await action().catch((e: unknown) => e)).to.include({
          code: 'TENANT_STATE_INVALID',
        });
      }
      const dup = await manager.create({ id: id('acme') }).catch((e: unknown) => e);
      expect(dup).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
      expect(await manager.get('no-such').catch((e: unknown) => e)).to.include({
        code: 'TENANT_NOT_FOUND',
        status: 404,
      });
      expect(await manager.create({ id: 'Bad Id' }).catch((e: unknown) => e)).to.include({
        code: 'TENANT_INVALID',
      });
    });

    it('purges a deleted tenant: schema, ledger and record are gone', async () => {
      const tid = id('gone');
      await manager.create({ id: tid });
      const events: boolean[] = [];
      const stop = manager.events.subscribe('tenant.deleted', (e) => void events.push(e.purged));
      await manager.delete(tid, { purge: true });
      stop();
      expect(events).to.deep.equal([true]);
      expect(await store.findById(tid)).to.equal(undefined);
      expect(await schemaExists(`lc_gone_${run}`)).to.equal(false);
    });

    it('keeps going when a listener throws: the change stays committed', async () => {
      const tid = id('loud');
      await manager.create({ id: tid });
      const stop = manager.events.subscribe('tenant.suspended', () => {
        throw new Error('listener bug');
      });
      expect((await manager.suspend(tid)).status).to.equal('suspended');
      stop();
      expect((await store.findById(tid))?.status).to.equal('suspended');
    });

    it('is injectable with tsyringe through TENANT_MANAGER_OPTIONS', () => {
      const child = container.createChildContainer();
      child.register(TENANT_MANAGER_OPTIONS, { useValue: { knex, store, mode: 'schema' } });
      expect(child.resolve(TenantManager).mode).to.equal('schema');
    });
  });

  describe('per-tenant configuration', () => {
    it('answers the tenant override, else the default; cached, and invalidated on change', async () => {
      const cached = new CachedTenantStore(store, { ttlMs: 60_000 });
      const tenantConfig = new TenantConfigService({
        store: cached,
        defaults: { theme: 'light', maxSeats: 10 },
      });
      const manager = new TenantManager({ knex, store, caches: [cached, tenantConfig] });
      const tid = id('cfg');
      await manager.create({ id: tid, config: { maxSeats: 50 } });
      const changed: string[][] = [];
      const stop = manager.events.subscribe(
        'tenant.config_changed',
        (e) => void changed.push([...e.keys]),
      );
      await runWithTenant(tid, async () => {
        expect(await tenantConfig.get('maxSeats')).to.equal(50);
        expect(await tenantConfig.get('theme')).to.equal('light');
      });
      // Written behind the service's back: the cache still answers the old value...
      await store.update(tid, { config: { maxSeats: 7 } });
      expect(await tenantConfig.get('maxSeats', tid)).to.equal(50);
      // ...and a change through the manager invalidates it.
      await manager.setConfig(tid, { theme: 'dark', maxSeats: null });
      expect(await tenantConfig.all(tid)).to.deep.equal({ theme: 'dark', maxSeats: 10 });
      expect(changed).to.deep.equal([['theme', 'maxSeats']]);
      stop();
    });
  });

  describe('in database mode', () => {
    it('creates the tenant database, migrates it, and drops it when provisioning fails', async () => {
      let fail = true;
      const manager = new TenantManager({
        knex,
        store,
        mode: 'database',
        databasePrefix: `lcdb${run}_`,
        migrations: [
          { name: '001', up: (k: Knex) => k.schema.createTable('notes', (t) => t.text('x')) },
          {
            name: '002',
            up: async () => {
              if (fail) throw new Error('db migration failed');
            },
          },
        ] satisfies (TenantMigration & { name: string })[],
      });
      const tid = id('dbt');
      const dbName = `lcdb${run}_dbt_${run}`;
      const error = await manager.create({ id: tid }).catch((e: unknown) => e);
      expect(error).to.include({ code: 'TENANT_PROVISIONING_FAILED' });
      const exists = async () =>
        (await adminQuery('select 1 from pg_database where datname = $1', [dbName])).rowCount === 1;
      expect(await exists()).to.equal(false);
      fail = false;
      const tenant = await manager.provision(tid);
      expect(tenant.isolation.database?.database).to.equal(dbName);
      expect(await exists()).to.equal(true);
      await manager.delete(tid, { purge: true });
      expect(await exists()).to.equal(false);
    });
  });

  describe('cross-process invalidation (LISTEN/NOTIFY)', () => {
    it('makes a suspension visible to another process cache within a bounded time, and survives a dropped listener', async () => {
      // Two "processes": separate Knex instances, stores, caches and notifiers.
      const knexA = createTestKnex({ searchPath: ['lifecycle_spec'] });
      const knexB = createTestKnex({ searchPath: ['lifecycle_spec'] });
      const cacheA = new CachedTenantStore(new KnexTenantStore(knexA), { ttlMs: 600_000 });
      const cacheB = new CachedTenantStore(new KnexTenantStore(knexB), { ttlMs: 600_000 });
      const channel = `tenantry_spec_${run}`;
      const notifierA = new TenantChangeNotifier(knexA, { channel });
      const notifierB = new TenantChangeNotifier(knexB, { channel, reconnectDelayMillis: 50 });
      await notifierB.listen(cacheB);
      const managerA = new TenantManager({
        knex: knexA,
        store: cacheA,
        caches: [cacheA],
        notifier: notifierA,
      });
      const tid = id('xproc');
      await managerA.create({ id: tid });
      const untilStatus = async (status: string) => {
        const started = Date.now();
        while (Date.now() - started < 2_000) {
          if ((await cacheB.findById(tid))?.status === status) return Date.now() - started;
          await sleep(10);
        }
        throw new Error(`process B never saw ${status}`);
      };
      await untilStatus('active');
      await managerA.suspend(tid);
      expect(await untilStatus('suspended')).to.be.below(2_000);

      // Drop B's listener connection: it reconnects and forgets everything.
      await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where query = $1`, [
        `LISTEN ${channel}`,
      ]);
      const started = Date.now();
      while (notifierB.reconnects === 0 && Date.now() - started < 5_000) await sleep(20);
      expect(notifierB.reconnects).to.equal(1);
      await managerA.activate(tid);
      await untilStatus('active');
      await notifierA.close();
      await notifierB.close();
    });
  });
});
