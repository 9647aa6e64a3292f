import { expect } from 'chai';
import type { Knex } from 'knex';
import knexFactory from 'knex';
import { randomBytes } from 'node:crypto';
import {
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  runWithTenant,
  withTenancy,
  type TenantKnex,
  type TenantMigration,
} from '../../src/index';
import { adminQuery, createTestKnex, testServer } from '../support/test-database';

const run = randomBytes(3).toString('hex');

async function central(schema: string): Promise<Knex> {
  const plain = createTestKnex({ pool: { min: 0, max: 1 } });
  await plain.raw('create schema if not exists ??', [schema]);
  await plain.destroy();
  const knex = createTestKnex({ searchPath: [schema] });
  await migrateCentral(knex);
  return knex;
}

async function rowsOf(knex: Knex, table: string, tenantId: string): Promise<number> {
  const row = (await knex(table).where({ tenant_id: tenantId }).count({ n: '*' }).first()) as {
    n: string;
  };
  return Number(row.n);
}

/** Tables of a row-mode app; `fk` adds foreign keys from them to tenants. */
async function rowTables(knex: Knex, fk: boolean): Promise<void> {
  const tenantColumn = (t: Knex.CreateTableBuilder) => {
    const c = t.text('tenant_id').notNullable();
    if (fk) c.references('id').inTable('tenants');
  };
  await knex.schema.createTable('documents', (t) => {
    t.increments('id');
    tenantColumn(t);
    t.text('title');
  });
  await knex.schema.createTable('comments', (t) => {
    t.increments('id');
    tenantColumn(t);
    t.integer('document_id').notNullable().references('id').inTable('documents');
    t.text('body');
  });
  // A parent whose name sorts before its child's: catalog order alone would delete it first.
  await knex.schema.createTable('albums', (t) => {
    t.increments('id');
    tenantColumn(t);
  });
  await knex.schema.createTable('tracks', (t) => {
    tenantColumn(t);
    t.integer('album_id').notNullable().references('id').inTable('albums');
  });
  // Declared nowhere: found by its tenant column.
  await knex.schema.createTable('attachments', (t) => {
    tenantColumn(t);
    t.integer('comment_id').references('id').inTable('comments');
  });
}

for (const fk of [false, true]) {
  describe(`TenantManager purge in row mode (${fk ? 'with' : 'without'} foreign keys to tenants)`, function () {
    this.timeout(60_000);
    let knex: Knex;
    let db: TenantKnex;
    let manager: TenantManager;
    const acme = `acme-${run}`;

    before(async () => {
      knex = await central(`purge_row_${fk ? 'fk' : 'nofk'}_${run}`);
      await rowTables(knex, fk);
      db = withTenancy(knex, {
        tenantTables: ['documents', 'comments', 'albums', 'tracks'],
        sharedTables: ['tenants'],
      });
      manager = new TenantManager({
        knex,
        store: new KnexTenantStore(knex),
        db,
        seed: async (trx) => {
          await trx('documents').insert({ title: 'welcome' });
        },
      });
    });

    async function fill(id: string): Promise<void> {
      await runWithTenant(id, async () => {
        const [doc] = (await db('documents').insert({ title: 'secret' }).returning('id')) as {
          id: number;
        }[];
        const [comment] = (await db('comments')
          .insert({ document_id: doc?.id, body: 'private' })
          .returning('id')) as { id: number }[];
        await knex('attachments').insert({ tenant_id: id, comment_id: comment?.id });
        const [album] = (await db('albums').insert({}).returning('id')) as { id: number }[];
        await db('tracks').insert({ album_id: album?.id });
      });
    }

    it('regression: a tenant created again after delete --purge does not read the old tenant documents', async () => {
      const created = await manager.create({ id: acme });
      expect(created.status).to.equal('active');
      await fill(acme);
      await manager.delete(acme, { purge: true });
      for (const table of ['documents', 'comments', 'attachments', 'albums', 'tracks']) {
        expect(await rowsOf(knex, table, acme), table).to.equal(0);
      }
      expect(await knex('tenants').where({ id: acme }).first()).to.equal(undefined);
      await manager.create({ id: acme });
      const titles = await runWithTenant(acme, () => db('documents').pluck('title'));
      expect(titles).to.deep.equal(['welcome']);
    });

    it('leaves other tenants rows alone', async () => {
      const keep = `keep-${run}`;
      const drop = `drop-${run}`;
      await manager.create({ id: keep });
      await manager.create({ id: drop });
      await fill(keep);
      await fill(drop);
      await manager.delete(drop, { purge: true });
      expect(await rowsOf(knex, 'documents', keep)).to.equal(2);
      expect(await rowsOf(knex, 'comments', keep)).to.equal(1);
      expect(await rowsOf(knex, 'attachments', keep)).to.equal(1);
      expect((await manager.get(keep)).status).to.equal('active');
    });

    it('keeps a deleted, unpurged tenant as a tombstone: not reusable until purged', async () => {
      const tid = `tomb-${run}`;
      await manager.create({ id: tid });
      await fill(tid);
      await manager.delete(tid);
      const again = await manager.create({ id: tid }).catch((e: unknown) => e);
      expect(again).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
      expect((again as Error).message).to.match(/not purged yet/);
      await manager.delete(tid, { purge: true });
      expect(await rowsOf(knex, 'documents', tid)).to.equal(0);
      expect((await manager.create({ id: tid })).status).to.equal('active');
    });

    it('fails a purge it cannot finish with 500 TENANT_PURGE_FAILED, keeps the tombstone, and can be retried', async () => {
      const tid = `stuck-${run}`;
      await manager.create({ id: tid });
      await fill(tid);
      // A table that holds no tenant column but points at the tenant's document.
      await knex.schema.createTable(`pins_${fk ? 'a' : 'b'}`, (t) => {
        t.integer('document_id').references('id').inTable('documents');
      });
      const [doc] = (await knex('documents').where({ tenant_id: tid }).pluck('id')) as number[];
      await knex(`pins_${fk ? 'a' : 'b'}`).insert({ document_id: doc });
      const failed = await manager.delete(tid, { purge: true }).catch((e: unknown) => e);
      expect(failed).to.include({ code: 'TENANT_PURGE_FAILED', status: 500 });
      expect((failed as Error).message).to.match(
        /^Cannot purge tenant "stuck-\w+" because .*[^.]\. /,
      );
      const tomb = await manager.get(tid);
      expect(tomb.status).to.equal('deleted');
      expect(tomb.statusReason).to.match(/^purge failed: /);
      expect(await rowsOf(knex, 'documents', tid)).to.equal(2); // one transaction: nothing half-done
      expect(await manager.create({ id: tid }).catch((e: unknown) => e)).to.include({
        code: 'TENANT_STATE_INVALID',
      });
      await knex(`pins_${fk ? 'a' : 'b'}`).delete();
      const events: [string | undefined, boolean][] = [];
      const stop = manager.events.subscribe(
        'tenant.deleted',
        (e) => void events.push([e.previousStatus, e.purged]),
      );
      await manager.delete(tid, { purge: true });
      stop();
      expect(events).to.deep.equal([['deleted', true]]);
      expect(await rowsOf(knex, 'documents', tid)).to.equal(0);
      expect(await knex('tenants').where({ id: tid }).first()).to.equal(undefined);
    });

    it('refuses to create an id onto rows an earlier tenant left, and purge() removes them', async () => {
      const tid = `orphan-${run}`;
      // What the old purge left behind: rows without a tenants record.
      await knex('documents')
        .insert({ tenant_id: tid, title: 'left over' })
        .catch(async () => {
          // With a foreign key such rows cannot exist without the record; make one and drop it.
          await knex('tenants').insert({ id: tid, name: tid });
          await knex('documents').insert({ tenant_id: tid, title: 'left over' });
        });
      if (fk) {
        await knex.raw('alter table documents drop constraint documents_tenant_id_foreign');
        await knex('tenants').where({ id: tid }).delete();
      }
      const refused = await manager.create({ id: tid }).catch((e: unknown) => e);
      expect(refused).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
      expect((refused as Error).message).to.match(/documents \(1 row\)/);
      await manager.purge(tid);
      expect(await rowsOf(knex, 'documents', tid)).to.equal(0);
      expect((await manager.create({ id: tid })).status).to.equal('active');
      const ghost = await manager.purge(`ghost-${run}`).catch((e: unknown) => e);
      expect(ghost).to.include({ code: 'TENANT_NOT_FOUND', status: 404 });
      const live = await manager.purge(tid).catch((e: unknown) => e);
      expect(live).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
    });

    it('seeds a row-mode tenant inside its scope with the scoped Knex (regression: null tenant_id)', async () => {
      const tid = `seeded-${run}`;
      const tenant = await manager.create({ id: tid });
      expect(tenant.status).to.equal('active');
      expect(await knex('documents').where({ tenant_id: tid }).pluck('title')).to.deep.equal([
        'welcome',
      ]);
    });
  });
}

describe('TenantManager purge with the RLS backstop on the tables', function () {
  this.timeout(60_000);
  it('sees and deletes the rows that row-level security hides from an unscoped application role', async () => {
    const schema = `purge_rls_${run}`;
    const owner = await central(schema);
    await rowTables(owner, false);
    const role = `purge_rls_${run}`;
    await adminQuery(`create role ${role} login password 'app'`);
    await owner.raw(`grant usage on schema ${schema} to ${role}`);
    await owner.raw(`grant all on all tables in schema ${schema} to ${role}`);
    await owner.raw(`grant all on all sequences in schema ${schema} to ${role}`);
    for (const table of ['documents', 'comments', 'attachments']) {
      await owner.raw('alter table ?? enable row level security', [table]);
      await owner.raw(
        `create policy p on ?? using (tenant_id = nullif(current_setting('app.tenant_id', true), ''))`,
        [table],
      );
    }
    const url = new URL(testServer().databaseUrl);
    url.username = role;
    url.password = 'app';
    const app = knexFactory({ client: 'pg', connection: url.toString(), searchPath: [schema] });
    try {
      const manager = new TenantManager({ knex: app, store: new KnexTenantStore(app) });
      const tid = `rls-${run}`;
      await manager.create({ id: tid });
      await owner('documents').insert({ tenant_id: tid, title: 'hidden' });
      expect(await rowsOf(app, 'documents', tid)).to.equal(0); // RLS hides it from the role
      await manager.delete(tid, { purge: true });
      expect(await rowsOf(owner, 'documents', tid)).to.equal(0);
      expect(await owner('tenants').where({ id: tid }).first()).to.equal(undefined);
    } finally {
      await app.destroy();
      await owner.raw(`drop owned by ${role} cascade`);
      await adminQuery(`drop role if exists ${role}`);
    }
  });
});

const docsMigration: TenantMigration & { name: string } = {
  name: '001_documents',
  up: (k: Knex) =>
    k.schema.createTable('documents', (t) => {
      t.increments('id');
      t.text('title');
    }),
};

for (const fk of [false, true]) {
  describe(`TenantManager purge in schema mode (${fk ? 'with' : 'without'} a central table with a foreign key to tenants)`, function () {
    this.timeout(60_000);
    it('drops the schema and the central rows, verifies both, removes the record; the id is then new', async () => {
      const knex = await central(`purge_schema_${fk ? 'fk' : 'nofk'}_${run}`);
      await knex.schema.createTable('billing', (t) => {
        const c = t.text('account').notNullable();
        if (fk) c.references('id').inTable('tenants');
        else t.text('tenant_id');
      });
      const prefix = `ps${fk ? 'f' : 'n'}${run}_`;
      const manager = new TenantManager({
        knex,
        store: new KnexTenantStore(knex),
        mode: 'schema',
        schemaPrefix: prefix,
        migrations: [docsMigration],
      });
      const tid = `acme-${run}`;
      const schema = `${prefix}acme_${run}`;
      await manager.create({ id: tid });
      await knex.withSchema(schema).table('documents').insert({ title: 'secret' });
      await knex('billing').insert(fk ? { account: tid } : { account: 'x', tenant_id: tid });
      await manager.delete(tid, { purge: true });
      const schemas = await adminQuery('select 1 from pg_namespace where nspname = $1', [schema]);
      expect(schemas.rowCount).to.equal(0);
      expect(await knex('billing').count({ n: '*' }).first()).to.deep.equal({ n: '0' });
      expect(await knex('tenants').where({ id: tid }).first()).to.equal(undefined);
      await manager.create({ id: tid });
      expect(
        await knex.withSchema(schema).from('documents').count({ n: '*' }).first(),
      ).to.deep.equal({ n: '0' });
      // A schema left behind (as the old code could) blocks a new tenant with that id.
      const other = `left-${run}`;
      await knex.raw('create schema ??', [`${prefix}left_${run}`]);
      const refused = await manager.create({ id: other }).catch((e: unknown) => e);
      expect(refused).to.include({ code: 'TENANT_STATE_INVALID' });
      expect((refused as Error).message).to.include(`schema "${prefix}left_${run}"`);
      await manager.purge(other);
      expect((await manager.create({ id: other })).status).to.equal('active');
    });
  });
}

for (const fk of [false, true]) {
  describe(`TenantManager purge in database mode (${fk ? 'with' : 'without'} a central table with a foreign key to tenants)`, function () {
    this.timeout(60_000);
    it('drops the database and the central rows, verifies both, removes the record', async () => {
      const knex = await central(`purge_db_${fk ? 'fk' : 'nofk'}_${run}`);
      await knex.schema.createTable('billing', (t) => {
        const c = t.text('tenant_id').notNullable();
        if (fk) c.references('id').inTable('tenants');
      });
      const prefix = `pd${fk ? 'f' : 'n'}${run}_`;
      const manager = new TenantManager({
        knex,
        store: new KnexTenantStore(knex),
        mode: 'database',
        databasePrefix: prefix,
        migrations: [docsMigration],
      });
      const tid = `acme-${run}`;
      const database = `${prefix}acme_${run}`;
      await manager.create({ id: tid });
      await knex('billing').insert({ tenant_id: tid });
      const exists = async () =>
        (await adminQuery('select 1 from pg_database where datname = $1', [database])).rowCount;
      expect(await exists()).to.equal(1);
      await manager.delete(tid, { purge: true });
      expect(await exists()).to.equal(0);
      expect(await rowsOf(knex, 'billing', tid)).to.equal(0);
      expect(await knex('tenants').where({ id: tid }).first()).to.equal(undefined);
      expect((await manager.create({ id: tid })).status).to.equal('active');
      await manager.delete(tid, { purge: true });
    });
  });
}
