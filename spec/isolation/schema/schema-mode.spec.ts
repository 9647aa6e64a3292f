import { expect } from 'chai';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../../../src/index';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';
import { readStream, streamError } from '../support/streams';
import { code } from '../support/error-code';

// Every row carries the schema it lives in, so a result proves where it came from.
async function createTenantSchema(knex: Knex, schema: string, withComments = true): Promise<void> {
  await knex.raw(`
    create schema "${schema}";
    create table "${schema}".documents (id integer primary key, title text not null, home text not null default '${schema}');
    insert into "${schema}".documents (id, title) values (1, 'alpha'), (2, 'beta'), (3, 'gamma');
  `);
  if (withComments) {
    await knex.raw(`
      create table "${schema}".comments (id integer primary key, document_id integer not null, home text not null default '${schema}');
      insert into "${schema}".comments (id, document_id) values (1, 1), (2, 1), (3, 2);
    `);
  }
}

describe('withTenancy() schema mode', () => {
  let knex: Knex;
  let db: TenantKnex;

  before(async () => {
    const database = await createScratchDatabase('schema');
    knex = createTestKnex({ pool: { min: 0, max: 1 } }, database);
    // Decoys in public: a fall-through would return home = 'public'.
    await knex.raw(`
      create table countries (code text primary key, name text);
      insert into countries values ('fr', 'France');
      create table documents (id integer primary key, title text, home text default 'public');
      insert into documents (id, title) values (1, 'public!');
      create table comments (id integer primary key, document_id integer, home text default 'public');
    `);
    await createTenantSchema(knex, 'tenant_acme');
    await createTenantSchema(knex, 'tenant_globex');
    await createTenantSchema(knex, 'custom_initech', false);
    db = withTenancy(knex, {
      mode: 'schema',
      tenantTables: ['documents', 'comments'],
      sharedTables: ['countries'],
    });
  });

  const homes = (rows: Array<{ home: string }>) => [...new Set(rows.map((r) => r.home))];

  it("rewrites every table reference to the tenant's quoted schema", () => {
    const sql = runWithTenant(
      'acme',
      () =>
        db
          .with('c', db('comments').select('document_id'))
          .select('documents.*', 'countries.name')
          .from('documents')
          .join('comments as k', 'k.document_id', 'documents.id')
          .leftJoin('countries', 'countries.code', 'documents.title')
          .whereIn('documents.id', db('comments').select('document_id'))
          .union(db('documents').select('*'))
          .toSQL().sql,
    );
    expect(sql).to.equal(
      'with "c" as (select "document_id" from "tenant_acme"."comments") select "documents".*, "countries"."name" ' +
        'from "tenant_acme"."documents" inner join "tenant_acme"."comments" as "k" on "k"."document_id" = "documents"."id" ' +
        'left join "public"."countries" on "countries"."code" = "documents"."title" ' +
        'where "documents"."id" in (select "document_id" from "tenant_acme"."comments") union select * from "tenant_acme"."documents"',
    );
  });

  it('rewrites the { alias: table } object form to the tenant schema', async () => {
    const q = () =>
      db({ d: 'documents' })
        .join({ c: 'comments' }, 'c.document_id', 'd.id')
        .select('d.home', 'c.home as ch');
    expect(runWithTenant('globex', () => q().toSQL().sql)).to.equal(
      'select "d"."home", "c"."home" as "ch" from "tenant_globex"."documents" as "d" ' +
        'inner join "tenant_globex"."comments" as "c" on "c"."document_id" = "d"."id"',
    );
    const rows = await runWithTenant('globex', async () => await q());
    expect(rows).to.have.length(3);
    expect(rows.flatMap((r: { home: string; ch: string }) => [r.home, r.ch])).to.deep.equal(
      Array(6).fill('tenant_globex'),
    );
  });

  it('reads only the tenant schema through joins, subqueries, CTEs and unions, on one pooled connection', async () => {
    for (const [tenant, schema] of [
      ['acme', 'tenant_acme'],
      ['globex', 'tenant_globex'],
      ['acme', 'tenant_acme'],
    ] as const) {
      await runWithTenant(tenant, async () => {
        expect(homes(await db('documents'))).to.deep.equal([schema]);
        const joined = await db('documents')
          .join('comments', 'comments.document_id', 'documents.id')
          .select('documents.home as dh', 'comments.home');
        expect(joined).to.have.length(3);
        expect(homes(joined)).to.deep.equal([schema]);
        expect(joined.every((r: { dh: string }) => r.dh === schema)).to.equal(true);
        const sub = await db('documents').whereIn('id', db('comments').select('document_id'));
        expect(sub.map((r: { id: number }) => r.id).sort()).to.deep.equal([1, 2]);
        const cte = await db.with('d', db('documents').select('home')).select('*').from('d');
        expect(homes(cte)).to.deep.equal([schema]);
        const union = await db('documents').select('home').union(db('comments').select('home'));
        expect(homes(union)).to.deep.equal([schema]);
        const country = await db('countries').first();
        expect(country).to.deep.equal({ code: 'fr', name: 'France' });
      });
    }
    const path = (await knex.raw('show search_path')) as { rows: Array<{ search_path: string }> };
    expect(path.rows[0]?.search_path).to.equal('"$user", public');
  });

  it(".stream() reads only the tenant schema's rows and is refused without a tenant", async () => {
    for (const [tenant, schema] of [
      ['acme', 'tenant_acme'],
      ['globex', 'tenant_globex'],
    ] as const) {
      const rows = await runWithTenant(tenant, () =>
        readStream(
          db('documents')
            .join('comments', 'comments.document_id', 'documents.id')
            .select('documents.home', 'comments.home as ch')
            .stream(),
        ),
      );
      expect(rows).to.have.length(3);
      expect(rows.flatMap((r) => [r.home, r.ch])).to.deep.equal(Array(6).fill(schema));
    }
    const lazy = runWithTenant('globex', () => db('documents').select('home'));
    expect(homes((await readStream(lazy.stream())) as never)).to.deep.equal(['tenant_globex']);
    expect(await streamError(() => db('documents').stream())).to.equal('TENANT_SCOPE_REQUIRED');
    const crossed = runWithTenant('acme', () => db('documents'));
    expect(await runWithTenant('globex', () => streamError(() => crossed.stream()))).to.equal(
      'TENANT_SCOPE_REQUIRED',
    );
  });

  it('writes only into the tenant schema', async () => {
    await runWithTenant('acme', async () => {
      await db.transaction(async (trx) => {
        await trx('documents').insert({ id: 10, title: 'new' });
        expect(await trx('documents').where({ id: 1 }).update({ title: 'changed' })).to.equal(1);
        expect(
          await trx('comments').whereIn('document_id', trx('documents').select('id')).del(),
        ).to.equal(3);
      });
    });
    const acme = await knex('tenant_acme.documents').orderBy('id');
    expect(acme.map((r: { title: string }) => r.title)).to.deep.equal([
      'changed',
      'beta',
      'gamma',
      'new',
    ]);
    const globex = await knex('tenant_globex.documents').orderBy('id');
    expect(globex.map((r: { title: string }) => r.title)).to.deep.equal(['alpha', 'beta', 'gamma']);
    expect(await knex('tenant_globex.comments').count({ n: '*' })).to.deep.equal([{ n: '3' }]);
    expect(await knex('public.documents').count({ n: '*' })).to.deep.equal([{ n: '1' }]);
  });

  it('errors on a tenant table missing from the tenant schema instead of falling through to public', async () => {
    const initech = {
      id: 'initech',
      name: 'Initech',
      status: 'active' as const,
      isolation: { schema: 'custom_initech' },
      config: {},
    };
    await runWithTenant(initech, async () => {
      expect(homes(await db('documents'))).to.deep.equal(['custom_initech']);
      expect(await code(db('comments'))).to.equal('42P01');
      expect(
        await code(db('documents').whereIn('id', db('comments').select('document_id'))),
      ).to.equal('42P01');
    });
    expect(await runWithTenant('umbrella', () => code(db('documents').then()))).to.equal('42P01');
  });

  it('refuses tenant tables with no tenant, unknown tables and raw SQL on tenant tables', async () => {
    expect(await code(db('documents').then())).to.equal('TENANT_SCOPE_REQUIRED');
    await runWithTenant('acme', async () => {
      expect(await code(db('secrets'))).to.equal('UNSAFE_QUERY');
      expect(await code(db.raw('select * from documents'))).to.equal('UNSAFE_QUERY');
      expect(
        await code(db.raw('select * from tenant_acme.documents, tenant_globex.documents')),
      ).to.equal('UNSAFE_QUERY');
      // A raw fragment is fine when the final statement only names the tenant's schema.
      const rows = (await db('documents').whereRaw('true')) as Array<{ id: number }>;
      expect(rows.length).to.be.above(0);
    });
  });
});
