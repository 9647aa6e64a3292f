import { expect } from 'chai';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../../../src/index';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';
import { code } from '../support/error-code';

// False refusals the corpus and the Objection suite found, each fixed without
// weakening a proof, and the unsafe neighbours that stay refused.

describe('corpus findings: row mode', () => {
  let base: Knex;
  let db: TenantKnex;

  before(async () => {
    base = createTestKnex({ pool: { min: 0, max: 1 } }, await createScratchDatabase('findings'));
    await base.raw(`
      create table documents (tenant_id text not null, id integer not null, title text not null,
        primary key (tenant_id, id));
      create table comments (tenant_id text not null, id integer not null, document_id integer not null,
        primary key (tenant_id, id));
      insert into documents values ('acme', 1, 'acme:a'), ('globex', 1, 'globex:a');
      insert into comments values ('acme', 1, 1), ('globex', 1, 1);
    `);
    db = withTenancy(base, { tenantTables: ['documents', 'comments'] });
  });

  it('scopes a table aliased the way Objection names withGraphJoined relations ("a:b")', async () => {
    const q = () =>
      db('documents')
        .select('documents.title', 'pets:comments.id as c')
        .leftJoin('comments as pets:comments', 'pets:comments.document_id', 'documents.id');
    const sql = runWithTenant('acme', () => q().toSQL().sql);
    expect(sql).to.contain(
      'left join "comments" as "pets:comments" on "pets:comments"."document_id" = "documents"."id" and "pets:comments"."tenant_id" = ?',
    );
    expect(await runWithTenant('acme', async () => await q())).to.deep.equal([
      { title: 'acme:a', c: 1 },
    ]);
  });

  it('still refuses colon aliases holding a dot, a quote or a space', async () => {
    for (const alias of ['a:b.c', 'a:"b', 'a: b']) {
      const refused = await runWithTenant('acme', async () =>
        code(db('documents').join(`comments as ${alias}`, 'documents.id', 'documents.id')),
      );
      expect(refused, alias).to.equal('UNSAFE_QUERY');
    }
  });

  it('accepts a raw conflict target naming the tenant column, and refuses one without it', async () => {
    const upsert = (target: string) =>
      runWithTenant('acme', async () =>
        code(
          db('documents')
            .insert({ id: 1, title: 'acme:merged' })
            .onConflict(db.raw(target))
            .merge(),
        ),
      );
    expect(await upsert('(tenant_id, id)')).to.equal(undefined);
    expect(await upsert('(id)')).to.equal('UNSAFE_QUERY');
    expect(await upsert('(" tenant_id", id)')).to.equal('UNSAFE_QUERY');
    const rows = await base('documents').orderBy('tenant_id').select('tenant_id', 'title');
    expect(rows).to.deep.equal([
      { tenant_id: 'acme', title: 'acme:merged' },
      { tenant_id: 'globex', title: 'globex:a' },
    ]);
  });

  it('refuses TRUNCATE of a row-mode table, raw or built', async () => {
    expect(await runWithTenant('acme', async () => code(db.raw('truncate documents')))).to.equal(
      'UNSAFE_QUERY',
    );
    expect(await runWithTenant('acme', async () => code(db('documents').truncate()))).to.equal(
      'UNSAFE_QUERY',
    );
    expect(await base('documents').count('* as n')).to.deep.equal([{ n: '2' }]);
  });
});

describe('corpus findings: schema mode', () => {
  let base: Knex;
  let db: TenantKnex;

  const reset = () =>
    base.raw(
      ['tenant_acme', 'tenant_globex', 'public']
        .map(
          (s) => `
        delete from ${s}.documents; delete from ${s}.comments;
        insert into ${s}.documents values (1, '${s}:a', 0), (2, '${s}:b', 0);
        insert into ${s}.comments values (1, 1), (2, 1);`,
        )
        .join('\n'),
    );

  before(async () => {
    base = createTestKnex({ pool: { min: 0, max: 1 } }, await createScratchDatabase('findings_s'));
    await base.raw(`
      create schema tenant_acme; create schema tenant_globex;
      create table countries (code text primary key, name text);
      insert into countries values ('fr', 'France');
    `);
    for (const s of ['tenant_acme', 'tenant_globex', 'public']) {
      await base.raw(`
        create table ${s}.documents (id integer primary key, title text not null, n integer not null);
        create table ${s}.comments (id integer primary key, document_id integer not null);
      `);
    }
    db = withTenancy(base, {
      mode: 'schema',
      tenantTables: ['documents', 'comments'],
      sharedTables: ['countries'],
    });
  });

  beforeEach(reset);

  const titles = async (schema: string) =>
    (await base.withSchema(schema).from('documents').orderBy('id').select('title', 'n')).map(
      (r: { title: string; n: number }) => `${r.title}=${r.n}`,
    );

  it("rewrites updateFrom() and using() tables to the tenant's schema (they were refused)", async () => {
    const sql = runWithTenant(
      'acme',
      () =>
        db('documents')
          .updateFrom('comments')
          .update({ n: 7 })
          .whereRaw('comments.document_id = documents.id')
          .toSQL().sql,
    );
    expect(sql).to.equal(
      'update "tenant_acme"."documents" set "n" = ? from "tenant_acme"."comments" where comments.document_id = documents.id',
    );
    await runWithTenant('acme', async () => {
      await db('documents')
        .updateFrom('comments')
        .update({ n: 7 })
        .whereRaw('comments.document_id = documents.id');
      await db('documents')
        .using(['comments', 'countries'])
        .whereRaw('comments.document_id = documents.id and documents.id = 2')
        .del();
    });
    expect(await titles('tenant_acme')).to.deep.equal(['tenant_acme:a=7', 'tenant_acme:b=0']);
    expect(await titles('tenant_globex')).to.deep.equal(['tenant_globex:a=0', 'tenant_globex:b=0']);
    expect(await titles('public')).to.deep.equal(['public:a=0', 'public:b=0']);
  });

  it("truncates the caller tenant's table only, and refuses other schemas, shared tables and CASCADE", async () => {
    await runWithTenant('acme', async () => db('comments').truncate());
    expect(await base.withSchema('tenant_acme').from('comments').count('* as n')).to.deep.equal([
      { n: '0' },
    ]);
    const refusals = await runWithTenant('acme', async () => ({
      other: await code(db.raw('truncate tenant_globex.documents')),
      unqualified: await code(db.raw('truncate documents')),
      shared: await code(db.raw('truncate public.countries')),
      cascade: await code(db.raw('truncate tenant_acme.documents cascade')),
      mixed: await code(db.raw('truncate tenant_acme.documents, tenant_globex.documents')),
    }));
    expect(refusals).to.deep.equal({
      other: 'UNSAFE_QUERY',
      unqualified: 'UNSAFE_QUERY',
      shared: 'UNSAFE_QUERY',
      cascade: 'UNSAFE_QUERY',
      mixed: 'UNSAFE_QUERY',
    });
    expect(await code(db.raw('truncate tenant_acme.documents'))).to.equal('TENANT_SCOPE_REQUIRED');
    expect(await titles('tenant_acme')).to.have.length(2);
    expect(await titles('tenant_globex')).to.have.length(2);
    expect(await base('countries').count('* as n')).to.deep.equal([{ n: '1' }]);
  });
});
