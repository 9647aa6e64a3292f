import { setFlagsFromString } from 'node:v8';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { container, inject, injectable } from 'tsyringe';
import {
  TENANT_KNEX,
  onTenancyAudit,
  registerTenantKnex,
  runAsSystem,
  runWithTenant,
  withTenancy,
  type TenancyAuditEvent,
  type TenantKnex,
} from '../../src/index';
import { migrateCentral } from '../../src/store/central-migrations';
import { createScratchDatabase, createTestKnex, destroyTestKnex } from '../support/test-database';
import { createRowFixture, seedRows, snapshot } from './support/row-fixture';
import { readStream, streamError } from './support/streams';

async function expectCode(promise: unknown, code: string): Promise<void> {
  try {
    await (promise as Promise<unknown>);
  } catch (error) {
    expect((error as { code?: string }).code, String(error)).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('withTenancy() row mode', () => {
  let knex: Knex;
  let db: TenantKnex;
  const sent: string[] = [];

  before(async () => {
    ({ knex } = await createRowFixture());
    db = withTenancy(knex, {
      tenantTables: ['documents', 'comments', 'documents_global_slug'],
      sharedTables: ['countries'],
    });
    knex.on('query', (q: { sql: string }) => sent.push(q.sql));
  });
  beforeEach(async () => {
    await seedRows(knex);
    sent.length = 0;
  });

  // acme() awaits inside the scope; lazy builders awaited outside it have their own tests.
  const acme = <T>(fn: () => T | PromiseLike<T>): Promise<T> =>
    runWithTenant('acme', async () => await fn());
  const inAcme = <T>(fn: () => T): T => runWithTenant('acme', fn);

  describe('reads', () => {
    it('returns only the current tenant rows for select, first, count and pluck', async () => {
      await acme(async () => {
        const rows = await db('documents').select('*').orderBy('id');
        expect(rows.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const first = await db('documents').where({ id: 2 }).first();
        expect(first).to.include({ tenant_id: 'acme', id: 2 });
        const [{ n }] = (await db('documents').count({ n: '*' })) as [{ n: string }];
        expect(Number(n)).to.equal(3);
        expect(await db('documents').orderBy('id').pluck('tenant_id')).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
      });
      const globex = await runWithTenant(
        'globex',
        async () => await db('comments').select('tenant_id'),
      );
      expect(globex.every((r: { tenant_id: string }) => r.tenant_id === 'globex')).to.equal(true);
    });

    it('keeps where(a).orWhere(b) inside the tenant filter', async () => {
      const sql = inAcme(() => db('documents').where('id', 1).orWhere('id', 2).toSQL().sql);
      expect(sql).to.equal(
        'select * from "documents" where ("id" = ? or "id" = ?) and "documents"."tenant_id" = ?',
      );
      const rows = await acme(() => db('documents').where('id', 1).orWhere('title', 'beta'));
      expect(rows).to.have.length(2);
      expect(rows.every((r: { tenant_id: string }) => r.tenant_id === 'acme')).to.equal(true);
    });

    it('scopes every tenant table of an inner join and leaves shared tables alone', async () => {
      const rows = await acme(() =>
        db('documents as d')
          .join('comments as c', 'c.document_id', 'd.id')
          .join('countries', 'countries.code', 'd.country')
          .select('d.tenant_id as dt', 'c.tenant_id as ct', 'countries.name'),
      );
      expect(rows).to.have.length(3);
      for (const r of rows) expect([r.dt, r.ct]).to.deep.equal(['acme', 'acme']);
    });

    it('scopes the { alias: table } object form for from and joins', async () => {
      const q = () =>
        db({ d: 'documents' })
          .join({ c: 'comments' }, 'c.document_id', 'd.id')
          .leftJoin({ k: 'comments' }, 'k.id', 'd.id')
          .select('d.tenant_id as dt', 'c.tenant_id as ct', 'k.tenant_id as kt');
      expect(inAcme(() => q().toSQL().sql)).to.equal(
        'select "d"."tenant_id" as "dt", "c"."tenant_id" as "ct", "k"."tenant_id" as "kt" from "documents" as "d" ' +
          'inner join "comments" as "c" on "c"."document_id" = "d"."id" ' +
          'left join "comments" as "k" on "k"."id" = "d"."id" and "k"."tenant_id" = ? ' +
          'where "d"."tenant_id" = ? and "c"."tenant_id" = ?',
      );
      const rows = await acme(q);
      expect(rows).to.have.length(3);
      for (const r of rows) expect([r.dt, r.ct, r.kt]).to.deep.equal(['acme', 'acme', 'acme']);
      const updated = await acme(() =>
        db({ d: 'documents' }).where('d.id', 1).update({ views: 9 }),
      );
      expect(updated).to.equal(1);
      expect(await knex('documents').where({ views: 9 }).pluck('tenant_id')).to.deep.equal([
        'acme',
      ]);
      await expectCode(db({ d: 'documents' }).select('*'), 'TENANT_SCOPE_REQUIRED');
      await acme(() => expectCode(db({ d: 'documents', e: 'comments' }), 'UNSAFE_QUERY'));
      await acme(() => expectCode(db({ d: 'secrets' }), 'UNSAFE_QUERY'));
    });

    it('puts the predicate in ON for a left join, keeping unmatched rows', async () => {
      const q = () =>
        db('documents')
          .leftJoin('comments', 'comments.document_id', 'documents.id')
          .select('documents.id', 'comments.tenant_id as ct');
      expect(inAcme(() => q().toSQL().sql)).to.match(
        /left join "comments" on "comments"."document_id" = "documents"."id" and "comments"."tenant_id" = \?/,
      );
      const rows = await acme(q);
      // doc 1 has two comments, doc 2 one, doc 3 none: 4 rows, none of globex.
      expect(rows).to.have.length(4);
      expect(
        rows.filter((r: { ct: string | null }) => r.ct !== null && r.ct !== 'acme'),
      ).to.have.length(0);
    });

    it('wraps an OR inside a left join ON clause', async () => {
      const sql = inAcme(
        () =>
          db('documents')
            .leftJoin('comments', function () {
              this.on('comments.document_id', 'documents.id').orOn('comments.id', 'documents.id');
            })
            .toSQL().sql,
      );
      expect(sql).to.contain(
        'left join "comments" on ("comments"."document_id" = "documents"."id" or "comments"."id" = "documents"."id") and "comments"."tenant_id" = ?',
      );
    });

    it('refuses right and full outer joins on tenant tables (UNSAFE_QUERY)', async () => {
      await acme(() =>
        expectCode(
          db('documents').rightJoin('comments', 'comments.id', 'documents.id'),
          'UNSAFE_QUERY',
        ),
      );
      await acme(() =>
        expectCode(
          db('documents').fullOuterJoin('comments', 'comments.id', 'documents.id'),
          'UNSAFE_QUERY',
        ),
      );
    });
  });

  describe('fail closed', () => {
    it('throws TENANT_SCOPE_REQUIRED with no tenant, before any SQL is sent', async () => {
      await expectCode(db('documents').select('*'), 'TENANT_SCOPE_REQUIRED');
      await expectCode(
        db('countries').whereIn('code', db('documents').select('country')),
        'TENANT_SCOPE_REQUIRED',
      );
      expect(sent).to.deep.equal([]);
      // Shared tables need no tenant.
      expect(await db('countries').count({ n: '*' })).to.deep.equal([{ n: '2' }]);
    });

    it('refuses a table that is neither tenant nor shared (UNSAFE_QUERY)', async () => {
      await acme(() => expectCode(db('pg_class').select('*'), 'UNSAFE_QUERY'));
      await acme(() => expectCode(db.withSchema('other').from('documents'), 'UNSAFE_QUERY'));
      expect(sent).to.deep.equal([]);
    });

    describe('lazy builders', () => {
      it('runs a builder built in a tenant and awaited outside any scope as that tenant', async () => {
        const rows = await runWithTenant('acme', () => db('documents').select('tenant_id'));
        expect(rows.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const built = runWithTenant('globex', () =>
          db('documents').whereIn('id', db('comments').select('document_id')),
        );
        const later = await built;
        expect(later.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'globex',
          'globex',
        ]);
        // Compiling it outside any scope scopes it to the tenant it was built for, too.
        expect(built.toSQL().bindings).to.deep.equal(['globex', 'globex']);
        const updated = await runWithTenant('acme', () =>
          db('documents').where({ id: 1 }).update({ title: 'lazy' }),
        );
        expect(updated).to.equal(1);
        expect(await knex('documents').where({ title: 'lazy' }).select('tenant_id')).to.deep.equal([
          { tenant_id: 'acme' },
        ]);
        const inserted = await runWithTenant('acme', () =>
          db('comments').insert({ id: 70, document_id: 1, body: 'late' }).returning('tenant_id'),
        );
        expect(inserted).to.deep.equal([{ tenant_id: 'acme' }]);
      });

      it('refuses a builder built in one tenant and run in another (TENANT_SCOPE_REQUIRED)', async () => {
        const built = inAcme(() => db('documents').select('*'));
        await runWithTenant('globex', async () => expectCode(built, 'TENANT_SCOPE_REQUIRED'));
        await runWithTenant('globex', async () =>
          expectCode(
            Promise.resolve().then(() => built.toSQL()),
            'TENANT_SCOPE_REQUIRED',
          ),
        );
        const subquery = inAcme(() => db('comments').select('document_id'));
        await runWithTenant('globex', async () =>
          expectCode(db('documents').whereIn('id', subquery), 'TENANT_SCOPE_REQUIRED'),
        );
        // A subquery built in another tenant cannot ride along in a lazily run statement either.
        const outer = runWithTenant('globex', () => db('documents').whereIn('id', subquery));
        await expectCode(outer, 'TENANT_SCOPE_REQUIRED');
        expect(sent).to.deep.equal([]);
        // The same builder awaited back inside its own tenant still runs.
        expect(await runWithTenant('acme', async () => await built)).to.have.length(3);
      });

      it('refuses a tenant builder run in a system scope, and a system builder run in a tenant', async () => {
        const built = inAcme(() => db('documents').select('*'));
        await runAsSystem('report', async () => expectCode(built, 'TENANT_SCOPE_REQUIRED'));
        const system = runAsSystem('report', () => db('documents').select('*'));
        await acme(() => expectCode(system, 'TENANT_SCOPE_REQUIRED'));
        expect(sent).to.deep.equal([]);
        // Awaited with no scope, the system builder runs as the system scope it was built in.
        expect(await system).to.have.length(6);
      });

      it('refuses a builder built with no tenant wherever it runs without a tenant', async () => {
        const unscopedBuilder = db('documents').select('*');
        await expectCode(unscopedBuilder, 'TENANT_SCOPE_REQUIRED');
        const again = db('documents').select('*');
        await runAsSystem('report', async () => expectCode(again, 'TENANT_SCOPE_REQUIRED'));
        const third = db('documents').select('*');
        await acme(() => expectCode(third, 'TENANT_SCOPE_REQUIRED'));
        expect(sent).to.deep.equal([]);
      });
    });

    it('lets runAsSystem() and unscoped() through, with an audit event', async () => {
      const events: TenancyAuditEvent[] = [];
      const stop = onTenancyAudit((e) => events.push(e));
      try {
        const all = await runAsSystem('report', async () => await db('documents').select('*'));
        expect(all).to.have.length(6);
        const raw = await acme(() =>
          db.unscoped({ reason: 'export' })('documents').count({ n: '*' }),
        );
        expect(raw).to.deep.equal([{ n: '6' }]);
        runAsSystem('nightly', () => db.unscoped({ reason: 'sweep' }));
        db.unscoped({ reason: 'boot' });
      } finally {
        stop();
      }
      expect(events.map((e) => [e.type, e.reason, e.tenantId])).to.deep.equal([
        ['system_scope', 'report', undefined],
        ['unscoped_query', 'export', 'acme'],
        ['system_scope', 'nightly', undefined],
        ['unscoped_query', 'sweep', undefined],
        ['unscoped_query', 'boot', undefined],
      ]);
      expect(() => db.unscoped({ reason: ' ' })).to.throw(TypeError);
    });

    it('leaves the base Knex unscoped', async () => {
      expect(await knex('documents').count({ n: '*' })).to.deep.equal([{ n: '6' }]);
    });
  });

  describe('writes', () => {
    it('stamps tenant_id on single and multi-row inserts, with returning', async () => {
      const before = await snapshot(knex, 'globex');
      const one = await acme(() =>
        db('documents').insert({ id: 10, title: 't', slug: 's10' }).returning(['tenant_id', 'id']),
      );
      expect(one).to.deep.equal([{ tenant_id: 'acme', id: 10 }]);
      const many = await acme(() =>
        db('documents')
          .insert([
            { id: 11, title: 't', slug: 's11' },
            { id: 12, title: 't', slug: 's12', tenant_id: 'acme' },
          ])
          .returning('tenant_id'),
      );
      expect(many).to.deep.equal([{ tenant_id: 'acme' }, { tenant_id: 'acme' }]);
      expect(await snapshot(knex, 'globex')).to.equal(before);
    });

    it('stamps every chunk of batchInsert and refuses foreign ids and a missing tenant', async () => {
      const before = await snapshot(knex, 'globex');
      const rows = Array.from({ length: 5 }, (_, i) => ({
        id: 80 + i,
        document_id: 1,
        body: `b${i}`,
      }));
      await acme(() => db.batchInsert('comments', rows, 2));
      expect(
        await knex('comments').where('id', '>=', 80).orderBy('id').pluck('tenant_id'),
      ).to.deep.equal(['acme', 'acme', 'acme', 'acme', 'acme']);
      const foreign = [
        { id: 90, document_id: 1, body: 'ok' },
        { id: 91, document_id: 1, body: 'x', tenant_id: 'globex' },
      ];
      await acme(() => expectCode(db.batchInsert('comments', foreign, 1), 'UNSAFE_QUERY'));
      // batchInsert runs in one transaction: the first chunk was rolled back with the refused one.
      expect(await knex('comments').where('id', 90).count({ n: '*' })).to.deep.equal([{ n: '0' }]);
      await expectCode(db.batchInsert('comments', rows, 2), 'TENANT_SCOPE_REQUIRED');
      // Started inside the scope and awaited after it: still acme's.
      await runWithTenant('acme', () =>
        db.batchInsert('comments', [{ id: 95, document_id: 1, body: 'lazy' }], 1),
      );
      expect(await knex('comments').where('id', 95).pluck('tenant_id')).to.deep.equal(['acme']);
      expect(await snapshot(knex, 'globex')).to.equal(before);
    });

    it("refuses an insert carrying another tenant's id (UNSAFE_QUERY), sending nothing", async () => {
      await acme(() =>
        expectCode(
          db('documents').insert({ id: 20, title: 't', slug: 'x', tenant_id: 'globex' }),
          'UNSAFE_QUERY',
        ),
      );
      await acme(() =>
        expectCode(
          db('documents').insert([
            { id: 21, title: 't', slug: 'y' },
            { id: 22, title: 't', slug: 'z', tenant_id: 'globex' },
          ]),
          'UNSAFE_QUERY',
        ),
      );
      expect(sent).to.deep.equal([]);
    });

    it('scopes insert ... select to the current tenant', async () => {
      await acme(() =>
        db('comments')
          .insert(db('comments').select(db.ref('id').as('x')).where('id', 0))
          .catch(() => undefined),
      );
      sent.length = 0;
      const before = await snapshot(knex, 'globex');
      // knex writes no column list: PostgreSQL maps by position, so it is refused.
      await acme(() =>
        expectCode(
          db('comments').insert(
            db('comments')
              .select('tenant_id', knex.ref('id'), 'document_id', 'body')
              .where('id', 1),
          ),
          'UNSAFE_QUERY',
        ),
      );
      expect(sent.filter((q) => q.startsWith('insert'))).to.deep.equal([]);
      // With the column list written out, the final SQL shows the tenant lands in tenant_id.
      const into = (columns: string[]) =>
        db.into(db.raw(`?? (${columns.map(() => '??').join(', ')})`, ['comments', ...columns]));
      await acme(() =>
        into(['tenant_id', 'id', 'document_id', 'body']).insert(
          db('comments')
            .select('tenant_id', db.raw('id + 100'), 'document_id', 'body')
            .where('id', 1),
        ),
      );
      expect(await knex('comments').where({ id: 101 }).pluck('tenant_id')).to.deep.equal(['acme']);
      // Reordered (class 4): the source's tenant column would land in "body", the tenant column gets a body.
      await acme(() =>
        expectCode(
          into(['body', 'id', 'document_id', 'tenant_id']).insert(
            db('comments')
              .select('tenant_id', db.raw('id + 200'), 'document_id', 'body')
              .where('id', 1),
          ),
          'UNSAFE_QUERY',
        ),
      );
      await knex('comments').where({ id: 101 }).del();
      expect(await snapshot(knex, 'globex')).to.equal(before);
    });

    it("never lets an upsert overwrite or reveal another tenant's row", async () => {
      const before = await snapshot(knex, 'globex');
      const rows = await acme(() =>
        db('documents')
          .insert({ id: 1, title: 'merged', slug: 'a' })
          .onConflict(['tenant_id', 'id'])
          .merge(['title'])
          .returning(['tenant_id', 'title']),
      );
      expect(rows).to.deep.equal([{ tenant_id: 'acme', title: 'merged' }]);
      const ignored = await acme(() =>
        db('documents')
          .insert({ id: 2, title: 'x', slug: 'b' })
          .onConflict(['tenant_id', 'id'])
          .ignore()
          .returning('id'),
      );
      expect(ignored).to.deep.equal([]);
      expect(await snapshot(knex, 'globex')).to.equal(before);
      const sql = inAcme(
        () =>
          db('documents')
            .insert({ id: 1, title: 'm', slug: 'a' })
            .onConflict(['tenant_id', 'id'])
            .merge()
            .toSQL().sql,
      );
      expect(sql).to.match(/do update set .* where "documents"."tenant_id" = \?$/);
    });

    it('refuses an upsert whose conflict target leaves out tenant_id (UNSAFE_QUERY)', async () => {
      await knex('documents_global_slug').insert({ tenant_id: 'globex', id: 1, slug: 'taken' });
      await acme(() =>
        expectCode(
          db('documents_global_slug').insert({ id: 1, slug: 'taken' }).onConflict('slug').merge(),
          'UNSAFE_QUERY',
        ),
      );
      await acme(() =>
        expectCode(
          db('documents_global_slug').insert({ id: 1, slug: 'taken' }).onConflict().ignore(),
          'UNSAFE_QUERY',
        ),
      );
      await acme(() =>
        expectCode(
          db('documents')
            .insert({ id: 1, title: 'x', slug: 'a' })
            .onConflict(['tenant_id', 'id'])
            .merge({ tenant_id: 'globex' }),
          'UNSAFE_QUERY',
        ),
      );
      expect(await knex('documents_global_slug').select('tenant_id', 'slug')).to.deep.equal([
        { tenant_id: 'globex', slug: 'taken' },
      ]);
    });

    it('scopes update, increment, decrement and delete', async () => {
      const before = await snapshot(knex, 'globex');
      await acme(async () => {
        expect(await db('documents').update({ title: 'u' })).to.equal(3);
        expect(
          await db('documents').where('id', 1).orWhere('id', 2).increment('views', 10),
        ).to.equal(2);
        expect(await db('documents').where({ id: 3 }).decrement({ views: 1 })).to.equal(1);
        expect(await db('comments').where('id', 1).orWhere('id', 2).del()).to.equal(2);
        expect(
          await db('comments')
            .whereIn('document_id', db('documents').select('id').where('id', 2))
            .del(),
        ).to.equal(1);
      });
      expect(await snapshot(knex, 'globex')).to.equal(before);
      expect(
        await knex('documents').where({ tenant_id: 'acme' }).sum({ v: 'views' }),
      ).to.deep.equal([{ v: '25' }]);
    });

    it('refuses an update or increment of the tenant column (UNSAFE_QUERY)', async () => {
      await acme(() => expectCode(db('documents').update({ tenant_id: 'globex' }), 'UNSAFE_QUERY'));
      await acme(() =>
        expectCode(db('documents').update({ 'documents.tenant_id': 'acme' }), 'UNSAFE_QUERY'),
      );
      expect(sent).to.deep.equal([]);
    });

    it('refuses truncate on tenant tables (UNSAFE_QUERY)', async () => {
      await acme(() => expectCode(db('documents').truncate(), 'UNSAFE_QUERY'));
      expect(await knex('documents').count({ n: '*' })).to.deep.equal([{ n: '6' }]);
    });
  });

  describe('raw SQL', () => {
    it('runs raw fragments when the final statement is proven tenant-safe', async () => {
      const before = await snapshot(knex, 'globex');
      await acme(async () => {
        const all = await db('documents').whereRaw('1 = 1').orderByRaw('id desc');
        expect(all.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const [count] = await db('documents').select(db.raw('count(*)::int as n'));
        expect(count).to.deep.equal({ n: 3 });
        // An OR inside raw text cannot widen the tenant filter: the user's conditions are parenthesised.
        const widened = await db('documents').whereRaw('id = 1 or true');
        expect(widened).to.have.length(3);
        expect(
          await db('documents')
            .where({ id: 1 })
            .update({ views: knex.raw('views + 1') }),
        ).to.equal(1);
      });
      expect(await snapshot(knex, 'globex')).to.equal(before);
    });

    it('refuses raw SQL that reaches a tenant table unscoped (UNSAFE_QUERY), before anything is sent', async () => {
      await acme(async () => {
        await expectCode(db('countries').joinRaw('join documents on true'), 'UNSAFE_QUERY');
        await expectCode(
          db('countries').whereRaw('exists (select 1 from documents)'),
          'UNSAFE_QUERY',
        );
        await expectCode(
          db('countries').select(db.raw('(select count(*) from documents)')),
          'UNSAFE_QUERY',
        );
      });
      expect(sent).to.deep.equal([]);
    });

    it("allows knex's fixed function helpers db.fn.now(), db.fn.now(precision) and db.fn.uuid()", async () => {
      const before = await snapshot(knex, 'globex');
      await acme(async () => {
        expect(await db('documents').where({ id: 1 }).update({ title: db.fn.now() })).to.equal(1);
        expect(
          await db('documents')
            .where({ id: 2 })
            .update({ title: db.fn.now(3) }),
        ).to.equal(1);
        const [row] = (await db('comments')
          .insert({ id: 60, document_id: 1, body: db.fn.uuid() })
          .returning(['tenant_id', 'body'])) as Array<{ tenant_id: string; body: string }>;
        expect(row?.tenant_id).to.equal('acme');
        expect(row?.body).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/);
        // Base-knex helpers render the same fixed text.
        const n = await db('documents').where({ id: 3 }).update({ title: knex.fn.now() });
        expect(n).to.equal(1);
        const sql = db('documents')
          .where({ id: 1 })
          .update({ title: db.fn.now(6) })
          .toSQL();
        expect(sql.sql).to.equal(
          'update "documents" set "title" = CURRENT_TIMESTAMP(6) where "id" = ? and "documents"."tenant_id" = ?',
        );
      });
      expect(await snapshot(knex, 'globex')).to.equal(before);
      const titles = await knex('documents')
        .where({ tenant_id: 'acme' })
        .orderBy('id')
        .pluck('title');
      for (const title of titles as string[]) expect(title).to.match(/^\d{4}-\d\d-\d\d /);
    });

    it('still refuses raw text that only resembles a function helper (UNSAFE_QUERY)', async () => {
      const wrapped = () =>
        db.raw('CURRENT_TIMESTAMP').wrap('(select max(title) from documents) || ', '');
      const bound = () => db.raw('CURRENT_TIMESTAMP(?)', [3]);
      const forged = () => {
        const raw = db.fn.now();
        raw.toSQL = () => ({ sql: 'select 1', bindings: [], method: 'raw', options: {} }) as never;
        return raw;
      };
      const edited = () => {
        const raw = db.fn.now();
        (raw as unknown as { sql: string }).sql = '(select max(title) from documents)';
        return raw;
      };
      for (const value of [wrapped, bound, forged, edited]) {
        await acme(() =>
          expectCode(db('documents').where({ id: 1 }).update({ title: value() }), 'UNSAFE_QUERY'),
        );
      }
      expect(sent).to.deep.equal([]);
    });

    it('refuses a top-level raw statement naming a tenant table, allows others', async () => {
      await acme(() => expectCode(db.raw('select * from documents'), 'UNSAFE_QUERY'));
      await acme(() => expectCode(db.raw('select * from "Documents"'), 'UNSAFE_QUERY'));
      const ok = (await acme(() => db.raw('select name from countries order by code'))) as {
        rows: unknown[];
      };
      expect(ok.rows).to.have.length(2);
      expect(sent).to.have.length(1);
      await acme(() => expectCode(db.raw('select 1 from comments').then(), 'UNSAFE_QUERY'));
    });

    it('refuses allowRaw without the RLS backstop at start-up (it would send unproven SQL)', () => {
      expect(() => withTenancy(knex, { tenantTables: ['documents'], allowRaw: true })).to.throw(
        TypeError,
        /allowRaw without the RLS backstop/,
      );
    });

    it('needs no allowRaw for raw SQL that verifies, and audits nothing', async () => {
      const events: TenancyAuditEvent[] = [];
      const stop = onTenancyAudit((e) => events.push(e));
      try {
        const rows = await acme(() =>
          db('documents').whereRaw('views > ?', [1]).orderByRaw('id desc'),
        );
        expect(
          rows.map((r: { tenant_id: string; id: number }) => [r.tenant_id, r.id]),
        ).to.deep.equal([
          ['acme', 3],
          ['acme', 2],
        ]);
      } finally {
        stop();
      }
      expect(events).to.deep.equal([]);
    });
  });

  describe('nested statements', () => {
    it('scopes whereIn(subquery), whereExists, from(subquery), column and join subqueries', async () => {
      await acme(async () => {
        const inSub = await db('documents').whereIn('id', db('comments').select('document_id'));
        expect(inSub.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
        ]);
        // A raw condition ORed with another: parenthesised, so the tenant condition still holds.
        const exists = await db('documents').whereExists(function () {
          this.select('*').from('comments').whereRaw('false').orWhere('comments.id', '>', 0);
        });
        expect(exists.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const exists2 = await db('documents').whereExists(
          db('comments').where('comments.document_id', db.ref('documents.id')),
        );
        expect(exists2).to.have.length(2);
        const fromSub = await db
          .from(db('documents').select('tenant_id', 'id').as('s'))
          .select('*');
        expect(fromSub.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const columnSub = await db('documents')
          .select(
            'id',
            db('comments').count('*').where('comments.document_id', db.ref('documents.id')).as('n'),
          )
          .orderBy('id');
        expect(columnSub.map((r: { n: string }) => Number(r.n))).to.deep.equal([2, 1, 0]);
        const joinSub = await db('documents').join(
          db('comments').select('document_id', 'tenant_id as ct').as('c'),
          'c.document_id',
          'documents.id',
        );
        expect(joinSub).to.have.length(3);
        expect(joinSub.every((r: { ct: string }) => r.ct === 'acme')).to.equal(true);
      });
      const sql = inAcme(
        () => db('documents').whereIn('id', db('comments').select('document_id')).toSQL().sql,
      );
      expect(sql).to.equal(
        'select * from "documents" where "id" in (select "document_id" from "comments" where "comments"."tenant_id" = ?) and "documents"."tenant_id" = ?',
      );
    });

    it('scopes CTEs and unions', async () => {
      await acme(async () => {
        const cte = await db
          .with('d', db('documents').select('id', 'tenant_id'))
          .select('*')
          .from('d');
        expect(cte.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
          'acme',
          'acme',
          'acme',
        ]);
        const union = await db('documents')
          .select('tenant_id')
          .union(db('comments').select('tenant_id'))
          .unionAll(function () {
            this.select('tenant_id').from('comments');
          });
        expect(new Set(union.map((r: { tenant_id: string }) => r.tenant_id))).to.deep.equal(
          new Set(['acme']),
        );
        await expectCode(
          db.with('documents', db('comments').select('*')).select('*').from('documents'),
          'UNSAFE_QUERY',
        );
      });
    });

    it(".stream() reads only the caller's tenant rows and is refused without a tenant", async () => {
      const rows = await acme(() =>
        readStream(
          db('documents')
            .whereIn('id', db('comments').select('document_id'))
            .orWhere('title', 'gamma')
            .stream(),
        ),
      );
      expect(rows.map((r) => [r.tenant_id, r.id]).sort()).to.deep.equal([
        ['acme', 1],
        ['acme', 2],
        ['acme', 3],
      ]);
      const globex = await runWithTenant('globex', () =>
        readStream(db('comments').select('tenant_id').stream()),
      );
      expect(globex.map((r) => r.tenant_id)).to.deep.equal(['globex', 'globex', 'globex']);
      // Built in acme and streamed with no scope: runs as acme.
      const lazy = runWithTenant('acme', () => db('documents').select('tenant_id'));
      expect((await readStream(lazy.stream())).map((r) => r.tenant_id)).to.deep.equal([
        'acme',
        'acme',
        'acme',
      ]);
      expect(await streamError(() => db('documents').select('*').stream())).to.equal(
        'TENANT_SCOPE_REQUIRED',
      );
      const crossed = inAcme(() => db('documents').select('*'));
      expect(await runWithTenant('globex', () => streamError(() => crossed.stream()))).to.equal(
        'TENANT_SCOPE_REQUIRED',
      );
      expect(sent.filter((q) => !/"tenant_id" = \$\d+\)?$/.test(q))).to.deep.equal([]);
      expect(sent).to.have.length(3);
    });

    it('scopes transactions and rolls them back on error', async () => {
      const before = await snapshot(knex, 'globex');
      await acme(() =>
        db.transaction(async (trx) => {
          expect(await trx('documents').select('*')).to.have.length(3);
          await trx('documents').update({ title: 'in trx' });
          await trx('comments').insert({ id: 50, document_id: 1, body: 'x' });
        }),
      );
      const failed = await acme(() =>
        db
          .transaction(async (trx) => {
            await trx('documents').update({ title: 'rolled back' });
            await trx('documents').update({ tenant_id: 'globex' });
          })
          .catch((e: { code?: string }) => e.code),
      );
      expect(failed).to.equal('UNSAFE_QUERY');
      expect(
        await knex('documents').where({ tenant_id: 'acme', title: 'in trx' }).count({ n: '*' }),
      ).to.deep.equal([{ n: '3' }]);
      expect(await snapshot(knex, 'globex')).to.equal(before);
      await acme(async () => {
        const trx = await db.transaction();
        expect(await trx('documents').where('id', 1).del()).to.equal(1);
        await trx.rollback();
      });
      expect(await knex('documents').count({ n: '*' })).to.deep.equal([{ n: '6' }]);
      await expectCode(
        db.transaction(async (t) => t('documents').select('*')),
        'TENANT_SCOPE_REQUIRED',
      );
    });
  });

  describe('dependency injection', () => {
    it('injects the scoped instance into a service resolved from the container', async () => {
      @injectable()
      class DocumentService {
        constructor(@inject(TENANT_KNEX) readonly db: TenantKnex) {}
        list(): Promise<Array<{ tenant_id: string }>> {
          return this.db('documents').select('tenant_id');
        }
      }
      const child = container.createChildContainer();
      registerTenantKnex(db, child);
      const rows = await runWithTenant(
        'globex',
        async () => await child.resolve(DocumentService).list(),
      );
      expect(rows.map((r) => r.tenant_id)).to.deep.equal(['globex', 'globex', 'globex']);
      expect(db.tenancy.mode).to.equal('row');
      expect(db.tenancy.tenantTables).to.include('documents');
    });
  });

  describe('options', () => {
    it('discovers tenant tables from the catalog', async () => {
      const discovered = withTenancy(knex, {
        tenantTables: { discover: true },
        sharedTables: ['countries'],
      });
      await discovered.tenancy.ready();
      expect([...discovered.tenancy.tenantTables].sort()).to.deep.equal([
        'comments',
        'documents',
        'documents_global_slug',
      ]);
      const rows = await acme(() => discovered('comments').select('tenant_id'));
      expect(rows.every((r: { tenant_id: string }) => r.tenant_id === 'acme')).to.equal(true);
    });

    it("does not discover tenantry's own central tables (the migration ledger, the move ledger) as tenant tables", async () => {
      const name = await createScratchDatabase('discover');
      const central = createTestKnex({}, name);
      try {
        await migrateCentral(central);
        await central.schema.createTable('notes', (t) => {
          t.increments('id');
          t.text('tenant_id').notNullable();
        });
        const discovered = withTenancy(central, { tenantTables: { discover: true } });
        await discovered.tenancy.ready();
        // tenantry_tenant_migrations and tenantry_tenant_moves have a tenant_id column too.
        expect([...discovered.tenancy.tenantTables]).to.deep.equal(['notes']);
        await discovered.destroy();
      } finally {
        await destroyTestKnex(central);
      }
    });

    it('destroy() releases only what the TenantKnex created and leaves the base Knex open', async () => {
      const own = withTenancy(knex, { tenantTables: ['documents'] });
      expect(await acme(() => own('documents'))).to.have.length(3);
      let called = false;
      await own.destroy(() => {
        called = true;
      });
      expect(called).to.equal(true);
      expect(await knex('documents').count({ n: '*' })).to.deep.equal([{ n: '6' }]);
      expect(await acme(() => db('documents'))).to.have.length(3);
    });

    it("keeps the scoped client in V8's fast-property mode, as the base client is", () => {
      // knex reads client properties on every statement; a `delete` on the
      // client (as an earlier version did) turns them into dictionary lookups.
      setFlagsFromString('--allow-natives-syntax');
      const fast = new Function('o', 'return %HasFastProperties(o)') as (o: unknown) => boolean;
      setFlagsFromString('--no-allow-natives-syntax');
      expect(fast(knex.client), 'control: the base client').to.equal(true);
      expect(fast(db.client)).to.equal(true);
    });

    it('rejects bad options at start-up', () => {
      expect(() => withTenancy(knex, { tenantColumn: 'x;drop' })).to.throw(TypeError);
      expect(() => withTenancy(knex, { tenantTables: ['a b'] })).to.throw(TypeError);
      expect(() => withTenancy(knex, { tenantTables: ['a'], sharedTables: ['a'] }))
        .to.throw()
        .with.property('code', 'TENANCY_CONFIG_INVALID');
      expect(() => withTenancy(knex, { mode: 'nope' as 'row' })).to.throw(TypeError);
    });
  });
});
