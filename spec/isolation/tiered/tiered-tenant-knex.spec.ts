import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { container, inject, injectable } from 'tsyringe';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  TENANT_KNEX,
  registerTenantKnex,
  resolveTenant,
  runAsSystem,
  runWithTenant,
  tenantTierOf,
  withTenancy,
  type TenantKnex,
  type TenantRecord,
  type TieredTenantKnex,
} from '../../../src/index';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';

/** The `code` of a thrown error (or its text). */
function errorCode(error: unknown): string | undefined {
  return error === undefined ? undefined : ((error as { code?: string }).code ?? String(error));
}

const run = randomBytes(3).toString('hex');
const id = (name: string) => `t${run}-${name}`;

interface Doc {
  id: number;
  owner: string;
  title: string;
}

function record(name: string, isolation: TenantRecord['isolation']): TenantRecord {
  return { id: id(name), name, status: 'active', isolation, config: {} };
}

async function createDocuments(knex: Knex, schema?: string): Promise<void> {
  const builder = schema ? knex.schema.withSchema(schema) : knex.schema;
  await builder.createTable('documents', (t) => {
    t.increments('id');
    if (!schema) t.text('tenant_id').notNullable();
    t.text('owner').notNullable();
    t.text('title').notNullable();
  });
}

@injectable()
class DocumentService {
  constructor(@inject(TENANT_KNEX) private readonly db: TenantKnex) {}

  list(): Promise<Doc[]> {
    return this.db('documents').select('id', 'owner', 'title').orderBy('id');
  }

  async add(owner: string, title: string): Promise<void> {
    await this.db('documents').insert({ owner, title });
  }
}

describe('withTenancy(knex, { tiers: true }) (tiered tenancy)', function () {
  this.timeout(120_000);
  let base: Knex;
  const tenantDbs: Knex[] = [];
  let r1: TenantRecord;
  let r2: TenantRecord;
  let s1: TenantRecord;
  let s2: TenantRecord;
  let d1: TenantRecord;
  let d2: TenantRecord;
  let all: TenantRecord[];
  let db: TieredTenantKnex;

  const options = {
    mode: 'row' as const,
    tiers: true,
    tenantTables: ['documents'],
    sharedTables: ['countries'],
  };

  before(async () => {
    const central = await createScratchDatabase('tiered');
    base = createTestKnex({}, central);
    await createDocuments(base);
    await base.schema.createTable('countries', (t) => t.text('code'));
    await base('countries').insert({ code: 'FR' });
    r1 = record('r1', { tier: 'row' });
    r2 = record('r2', {}); // the default tier
    s1 = record('s1', { tier: 'schema', schema: `t_${run}_s1` });
    s2 = record('s2', { tier: 'schema', schema: `t_${run}_s2` });
    for (const s of [s1, s2]) {
      await base.raw('create schema ??', [s.isolation.schema!]);
      await createDocuments(base, s.isolation.schema);
    }
    const dbNames = [
      await createScratchDatabase('tiered_d1'),
      await createScratchDatabase('tiered_d2'),
    ];
    d1 = record('d1', { tier: 'database', database: { database: dbNames[0]! } });
    d2 = record('d2', { tier: 'database', database: { database: dbNames[1]! } });
    for (const name of dbNames) {
      const k = createTestKnex({}, name);
      tenantDbs.push(k);
      await createDocuments(k, 'public');
    }
    all = [r1, r2, s1, s2, d1, d2];
    db = withTenancy(base, options) as TieredTenantKnex;
    for (const t of all) {
      await runWithTenant(t, () =>
        db('documents').insert({ owner: t.id, title: `first of ${t.id}` }),
      );
    }
  });

  after(async () => {
    await db?.destroy();
    await Promise.all(tenantDbs.map((k) => k.destroy()));
    await base?.destroy();
  });

  it('stores each tier where it belongs: shared tables, the tenant schema, the tenant database', async () => {
    const shared = await base('documents').select('tenant_id', 'owner').orderBy('id');
    expect(shared).to.deep.equal([
      { tenant_id: r1.id, owner: r1.id },
      { tenant_id: r2.id, owner: r2.id },
    ]);
    for (const s of [s1, s2]) {
      expect(
        await base.withSchema(s.isolation.schema!).from('documents').pluck('owner'),
      ).to.deep.equal([s.id]);
    }
    expect(await tenantDbs[0]!('documents').pluck('owner')).to.deep.equal([d1.id]);
    expect(await tenantDbs[1]!('documents').pluck('owner')).to.deep.equal([d2.id]);
  });

  it('compiles row-tier statements with the tenant predicate and schema-tier ones into the tenant schema', () => {
    const row = runWithTenant(r1, () => db('documents').select('title').toSQL());
    expect(row.sql).to.match(/"tenant_id" = \?/);
    expect(row.bindings).to.include(r1.id);
    const schema = runWithTenant(s1, () => db('documents').select('title').toSQL());
    expect(schema.sql).to.include(`"t_${run}_s1"."documents"`);
    expect(schema.sql).not.to.include('tenant_id');
  });

  it("hands db.on('query') every tier's statements once, engines and tenant pools opened before or after it, until db.off()", async () => {
    const later = withTenancy(base, options) as TieredTenantKnex; // only the default tier built yet
    try {
      for (const knex of [db, later]) {
        const seen: string[] = [];
        const listener = (q: { sql: string; bindings?: readonly unknown[] }) => {
          if (/select "title" from/.test(q.sql)) seen.push(q.sql);
        };
        expect(knex.on('query', listener)).to.equal(knex);
        for (const t of all) await runWithTenant(t, () => knex('documents').select('title'));
        expect(seen, 'one event per statement, whatever its tier').to.have.length(all.length);
        expect(seen.filter((q) => q.includes('tenant_id'))).to.have.length(2); // the row tier's
        expect(seen.filter((q) => q.includes(`"t_${run}_s`))).to.have.length(2); // the schema tier's
        knex.off('query', listener);
        for (const t of all) await runWithTenant(t, () => knex('documents').select('title'));
        expect(seen, 'none after off()').to.have.length(all.length);
      }
    } finally {
      await later.destroy();
    }
  });

  // Raw SQL as each tier's engine proves it safe.
  const rawOwners = (t: TenantRecord) => {
    const tier = tenantTierOf(t, 'row');
    if (tier === 'row') {
      return db.raw('select owner from documents where documents.tenant_id = ?', [t.id]);
    }
    if (tier === 'schema') return db.raw('select owner from ??.documents', [t.isolation.schema!]);
    return db.raw('select owner from documents');
  };

  it('gives 0 cross-tenant rows across the three tiers under interleaved runWithTenant() work', async () => {
    const crossed: string[] = [];
    // Interleaved: the tenants of every tier alternate (round robin) in one Promise.all.
    const work = Array.from({ length: 8 }, (_, i) => i).flatMap((i) =>
      all.map(
        (t) => async () =>
          runWithTenant(t, async () => {
            await db('documents').insert({ owner: t.id, title: `concurrent ${i}` });
            const rows = (await db('documents').select('owner')) as Doc[];
            const raw = (await rawOwners(t)) as { rows: Doc[] };
            const inTrx = await db.transaction(async (trx) => {
              await trx('documents')
                .where({ title: `concurrent ${i}` })
                .update({ title: `updated ${i}` });
              return (await trx('documents').select('owner')) as Doc[];
            });
            for (const row of [...rows, ...raw.rows, ...inTrx]) {
              if (row.owner !== t.id) crossed.push(`${t.id} saw ${row.owner}`);
            }
          }),
      ),
    );
    await Promise.all(work.map((fn) => fn()));
    expect(crossed).to.deep.equal([]);
    for (const t of all) {
      const titles = await runWithTenant(t, () => db('documents').pluck('title'));
      expect(titles).to.have.length(9);
      expect(titles.filter((x: string) => x.startsWith('updated'))).to.have.length(8);
    }
  });

  it('serves every tier through real HTTP with an unchanged service (interleaved requests, 0 cross-tenant rows)', async () => {
    const store = new InMemoryTenantStore(all);
    const child = container.createChildContainer();
    registerTenantKnex(db, child);
    const app = express();
    app.use(resolveTenant({ strategies: ['header'], store }));
    app.get('/docs', (_req, res, next) => {
      child
        .resolve(DocumentService)
        .list()
        .then((docs) => res.json(docs), next);
    });
    app.post('/docs', (req, res, next) => {
      child
        .resolve(DocumentService)
        .add(req.tenant!.id, 'via http')
        .then(() => res.status(201).end(), next);
    });
    const server = app.listen(0);
    try {
      const calls = Array.from({ length: 48 }, (_, i) => all[i % all.length]!).map(async (t, i) => {
        if (i % 3 === 0) await request(server).post('/docs').set('X-Tenant-ID', t.id).expect(201);
        const res = await request(server).get('/docs').set('X-Tenant-ID', t.id).expect(200);
        return (res.body as Doc[])
          .filter((d) => d.owner !== t.id)
          .map((d) => `${t.id} saw ${d.owner}`);
      });
      const crossed = (await Promise.all(calls)).flat();
      expect(crossed).to.deep.equal([]);
    } finally {
      server.close();
    }
  });

  it('never shows a schema-tier tenant the row tier, nor a row-tier tenant a schema (no fallback either way)', async () => {
    const seenByRow = await runWithTenant(r1, () => db('documents').pluck('owner'));
    expect(seenByRow).to.not.include.members([s1.id, s2.id, d1.id, d2.id]);
    expect(new Set(seenByRow)).to.deep.equal(new Set([r1.id]));
    const seenBySchema = await runWithTenant(s1, () => db('documents').pluck('owner'));
    expect(new Set(seenBySchema)).to.deep.equal(new Set([s1.id]));
    // Not even by a qualified name: the row tier refuses another tenant's schema.
    const err = await runWithTenant(r1, () =>
      db.withSchema(s1.isolation.schema!).from('documents').select('*'),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorCode(err)).to.equal('UNSAFE_QUERY');
  });

  it('refuses a schema-tier record with no schema (503 TENANT_UNAVAILABLE) instead of falling back to the row tier', async () => {
    const noSchema = record('s3', { tier: 'schema' });
    let thrown: unknown;
    try {
      await runWithTenant(noSchema, () => db('documents').select('*'));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
    expect((thrown as Error).message).to.match(/names no schema/);
    const noDatabase = record('d3', { tier: 'database' });
    expect(() => runWithTenant(noDatabase, () => db('documents')))
      .to.throw(/names no database/)
      .with.property('code', 'TENANT_UNAVAILABLE');
    const unknownTier = record('x1', { tier: 'cluster' as unknown as 'row' });
    expect(() => runWithTenant(unknownTier, () => db.raw('select 1')))
      .to.throw(/tier "cluster"/)
      .with.property('code', 'TENANT_UNAVAILABLE');
  });

  it('refuses a schema-tier tenant whose schema lacks the table (never falls through to public)', async () => {
    const empty = record('s4', { tier: 'schema', schema: `t_${run}_s4` });
    await base.raw('create schema ??', [empty.isolation.schema!]);
    const err = await runWithTenant(empty, () => db('documents').select('*')).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).to.equal('42P01'); // relation does not exist: public.documents was not read
  });

  it('picks up a tier change of the record on the next statement once the cache is invalidated', async () => {
    const movable = record('m1', { tier: 'row' });
    const inner = new InMemoryTenantStore([movable]);
    const store = new CachedTenantStore(inner, { ttlMs: 60_000 });
    const app = express();
    app.use(resolveTenant({ strategies: ['header'], store }));
    app.get('/docs', (_req, res, next) => {
      db('documents')
        .pluck('title')
        .then((titles) => res.json(titles), next);
    });
    await runWithTenant(movable, () =>
      db('documents').insert({ owner: movable.id, title: 'on the row tier' }),
    );
    const schema = `t_${run}_m1`;
    await base.raw('create schema ??', [schema]);
    await createDocuments(base, schema);
    await base
      .withSchema(schema)
      .table('documents')
      .insert({ owner: movable.id, title: 'in its schema' });

    const before = await request(app).get('/docs').set('X-Tenant-ID', movable.id).expect(200);
    expect(before.body).to.deep.equal(['on the row tier']);
    await inner.update(movable.id, { isolation: { tier: 'schema', schema } });
    // Still cached: the old tier until invalidated.
    const cached = await request(app).get('/docs').set('X-Tenant-ID', movable.id).expect(200);
    expect(cached.body).to.deep.equal(['on the row tier']);
    store.invalidate(movable.id);
    const after = await request(app).get('/docs').set('X-Tenant-ID', movable.id).expect(200);
    expect(after.body).to.deep.equal(['in its schema']);
  });

  it('keeps the tenant and tier a builder was created under, whoever awaits it', async () => {
    for (const a of [r1, s1, d1]) {
      const builder = runWithTenant(a, () => db('documents').distinct('owner'));
      // Awaited outside any scope: it runs as A, on A's tier.
      const outside = (await builder) as Doc[];
      expect(outside.map((d) => d.owner)).to.deep.equal([a.id]);
      for (const b of [r2, s2, d2]) {
        const again = runWithTenant(a, () => db('documents').distinct('owner'));
        // Awaited in B's scope: A's rows (database tier) or refused (row, schema): never B's.
        const result = await runWithTenant(b, () => again).then(
          (rows) => (rows as Doc[]).map((d) => d.owner),
          (e: unknown) => errorCode(e),
        );
        if (Array.isArray(result)) expect(result, `${a.id} under ${b.id}`).to.deep.equal([a.id]);
        else expect(result, `${a.id} under ${b.id}`).to.equal('UNSAFE_QUERY');
      }
    }
  });

  it('fails closed with no tenant (TENANT_SCOPE_REQUIRED), serves shared tables, and keeps runAsSystem/unscoped as the default tier does', async () => {
    let thrown: unknown;
    try {
      await db('documents').select('*');
    } catch (error) {
      thrown = error;
    }
    expect(errorCode(thrown)).to.equal('TENANT_SCOPE_REQUIRED');
    expect(await db('countries').pluck('code')).to.deep.equal(['FR']);
    const system = await runAsSystem('spec', () => db('documents').count({ n: '*' }).first());
    expect(Number(system?.n)).to.be.greaterThan(1);
    const unscoped = await db.unscoped({ reason: 'spec' })('documents').pluck('tenant_id');
    expect(unscoped).to.include(r1.id);
  });

  it('reports the default tier as mode and how tiers are picked in tenancy.tiers', () => {
    expect(db.tenancy.mode).to.equal('row');
    expect(db.tenancy.tiers?.defaultTier).to.equal('row');
    expect(db.tenancy.tiers?.tierOf(s1)).to.equal('schema');
    expect(db.tenancy.tiers?.tierOf(r2)).to.equal('row');
    expect(tenantTierOf(r2, 'database')).to.equal('database');
    expect(db.tenancy.tenantTables).to.deep.equal(['documents']);
    expect(db.tenantPools.stats().pools).to.be.greaterThan(0);
    expect(withTenancy(base, { tenantTables: ['documents'] }).tenancy.tiers).to.equal(undefined);
  });

  it('keeps RLS and allowRaw to the row tier: a schema-tier tenant still gets only proven raw SQL', async () => {
    const withRls = withTenancy(base, {
      ...options,
      rls: { onUnsafeRole: 'warn' },
      allowRaw: true,
    }) as TieredTenantKnex;
    try {
      expect(withRls.tenancy.rls).to.equal(true);
      // Schema tier: no RLS backstop, no allowRaw: proven statements run, an unproven raw one is refused.
      expect(await runWithTenant(s1, () => withRls('documents').distinct('owner'))).to.deep.equal([
        { owner: s1.id },
      ]);
      const refused = await runWithTenant(s1, () =>
        withRls.raw('select owner from public.documents'),
      ).then(
        () => undefined,
        (e: unknown) => errorCode(e),
      );
      expect(refused).to.equal('UNSAFE_QUERY');
    } finally {
      await withRls.destroy();
    }
  });

  it('refuses bad tier options at start-up with a TypeError', () => {
    expect(() => withTenancy(base, { tiers: 'yes' as unknown as boolean })).to.throw(
      TypeError,
      /tiers/,
    );
    expect(() =>
      withTenancy(base, { tiers: true, tenantTables: { tables: ['documents'], discover: true } }),
    ).to.throw(TypeError, /discover/);
    expect(() => withTenancy(base, { tiers: true, mode: 'cluster' as unknown as 'row' })).to.throw(
      TypeError,
      /default tier/,
    );
    expect(() => withTenancy(base, { tiers: true, tenantColumn: 'bad column' })).to.throw(
      TypeError,
    );
    expect(() => withTenancy(base, { tiers: true, database: { connectionBudget: 0 } })).to.throw(
      TypeError,
      /connectionBudget/,
    );
  });
});
