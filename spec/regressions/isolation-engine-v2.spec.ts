/**
 * Regression specs for the confirmed cross-tenant reads and writes of the
 * isolation-engine issue (classes 1 to 10), each through the public API on
 * a real PostgreSQL with two tenants whose rows are identical but for
 * tenant_id. Every attack must either be refused with a coded error before
 * anything is sent, or return and change only the caller's rows.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../../src/index';
import { createRowFixture, seedRows, snapshot } from '../isolation/support/row-fixture';
import { createScratchDatabase, createTestKnex } from '../support/test-database';
import { setVerifierDisabledForMutationTest } from '../../src/isolation/verifier/final-sql-verifier';

type Outcome = { refused: string } | { rows: unknown };

async function attempt(run: () => unknown): Promise<Outcome> {
  try {
    return { rows: await (run() as Promise<unknown>) };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'UNSAFE_QUERY' || code === 'TENANT_SCOPE_REQUIRED') return { refused: code };
    throw error;
  }
}

/** Every tenant id that appears anywhere in a result. */
function tenantsIn(result: unknown): string[] {
  const text = JSON.stringify(result ?? null);
  return ['acme', 'globex'].filter((t) => text.includes(`"${t}"`));
}

describe('regression: isolation engine v2 (final-SQL verification)', () => {
  let knex: Knex;
  let db: TenantKnex;
  const sent: string[] = [];
  const scopedSent: string[] = [];

  before(async () => {
    ({ knex } = await createRowFixture());
    await knex.raw(`
      create table audit_log (id integer primary key, secret text not null);
      insert into audit_log values (1, 'globex-secret');
    `);
    db = withTenancy(knex, {
      tenantTables: ['documents', 'comments', 'documents_global_slug'],
      sharedTables: ['countries'],
    });
    knex.on('query', (q: { sql: string }) => sent.push(q.sql));
    db.on('query', (q: { sql: string }) => scopedSent.push(q.sql));
  });
  beforeEach(async () => {
    await seedRows(knex);
    sent.length = 0;
    scopedSent.length = 0;
  });

  /** Runs `attack` as acme; it must be refused, or see and touch acme's rows only. */
  async function holds(attack: () => unknown, expectRefused = false): Promise<Outcome> {
    const before = await snapshot(knex, 'globex');
    const outcome = await runWithTenant('acme', () => attempt(attack));
    if ('rows' in outcome) {
      expect(expectRefused, `ran: ${JSON.stringify(outcome.rows)}`).to.equal(false);
      expect(tenantsIn(outcome.rows)).to.not.include('globex');
      expect(JSON.stringify(outcome.rows)).to.not.include('globex-secret');
    }
    expect(await snapshot(knex, 'globex')).to.equal(before);
    return outcome;
  }

  describe('class 1: table references that are not plain strings', () => {
    const refs: Array<[string, () => unknown]> = [
      ['knex.ref() in from()', () => db.from(db.ref('documents') as never)],
      ['an array in from()', () => db.from(['documents'] as never)],
      [
        'an alias object of another prototype',
        () =>
          db.from(
            Object.assign(Object.create({ inherited: 1 }) as object, { d: 'documents' }) as never,
          ),
      ],
      [
        'knex.ref() in join()',
        () => db('countries').join(db.ref('documents') as never, () => undefined),
      ],
      [
        'knex.ref() as update target',
        () => db(db.ref('documents') as unknown as string).update({ title: 'x' }),
      ],
      ['knex.ref() as delete target', () => db(db.ref('comments') as unknown as string).del()],
      [
        'knex.ref() as insert target',
        () =>
          db(db.ref('comments') as unknown as string).insert({
            tenant_id: 'globex',
            id: 90,
            document_id: 1,
            body: 'x',
          }),
      ],
    ];
    for (const [name, attack] of refs) {
      it(`refuses ${name} (UNSAFE_QUERY) before anything is sent`, async () => {
        const outcome = await holds(attack, true);
        expect(outcome).to.deep.equal({ refused: 'UNSAFE_QUERY' });
        expect(scopedSent).to.deep.equal([]);
      });
    }
  });

  describe('class 2: aliases knex and the engine read differently', () => {
    const aliases: Array<[string, () => unknown]> = [
      ['a quote inside an alias key', () => db({ 'd"x': 'documents' } as never)],
      ['a dot inside an alias key', () => db({ 'a.b': 'documents' } as never)],
      ['a quoted alias in a table string', () => db('documents as "d"')],
      ['a quoted table in a table string', () => db('"documents" as d')],
      [
        'a subquery whose predicate would bind to the outer relation',
        () =>
          db({ documents: 'comments' } as never).whereIn(
            'documents.id',
            db({ 'documents"': 'documents' } as never).select('id'),
          ),
      ],
    ];
    for (const [name, attack] of aliases) {
      it(`holds for ${name}`, async () => {
        await holds(attack);
      });
    }
  });

  describe('class 3: write keys knex normalises to the tenant column', () => {
    const keys = [
      ' tenant_id ',
      'tenant_id\u00a0',
      '\u2003tenant_id',
      'documents. tenant_id',
      'tenant_id[1]',
    ];
    for (const key of keys) {
      it(`never moves a row with update({ ${JSON.stringify(key)}: 'globex' })`, async () => {
        const outcome = await holds(
          () =>
            db('documents')
              .where({ id: 1 })
              .update({ [key]: 'globex' }),
          true,
        );
        expect(outcome).to.deep.equal({ refused: 'UNSAFE_QUERY' });
        expect(
          await knex('documents').where({ tenant_id: 'acme' }).count({ n: '*' }),
        ).to.deep.equal([{ n: '3' }]);
      });
      it(`never moves a row through merge({ ${JSON.stringify(key)}: 'globex' })`, async () => {
        const outcome = await holds(
          () =>
            db('documents')
              .insert({ id: 1, title: 'x', slug: 'a' })
              .onConflict(['tenant_id', 'id'])
              .merge({ [key]: 'globex' }),
          true,
        );
        expect(outcome).to.deep.equal({ refused: 'UNSAFE_QUERY' });
      });
    }
  });

  describe('class 4: INSERT ... SELECT maps by position', () => {
    it("refuses knex's column-less INSERT ... SELECT and a raw one whose tenant column gets another value", async () => {
      await holds(() => db('comments').insert(db('comments').select('*')), true);
      await holds(
        () =>
          db.raw(
            'insert into comments (id, tenant_id, document_id, body) select c.id + 50, c.body, c.document_id, c.tenant_id from comments c where c.tenant_id = ?',
            ['acme'],
          ),
        true,
      );
    });

    it('runs a raw INSERT ... SELECT whose final SQL puts the tenant in its column', async () => {
      const outcome = await holds(() =>
        db.raw(
          'insert into comments (tenant_id, id, document_id, body) select c.tenant_id, c.id + 50, c.document_id, c.body from comments c where c.tenant_id = ?',
          ['acme'],
        ),
      );
      expect(outcome).to.have.property('rows');
      expect(
        await knex('comments').where('id', '>', 50).distinct().pluck('tenant_id'),
      ).to.deep.equal(['acme']);
    });
  });

  describe('class 5: raw SQL that names tenant tables without the word', () => {
    const raws: Array<[string, () => unknown]> = [
      ['an identifier binding ??', () => db.raw('select * from ??', ['documents'])],
      ['a named identifier binding :t:', () => db.raw('select * from :t:', { t: 'documents' })],
      ['a U& escaped identifier', () => db.raw('select * from U&"d\\006Fcuments"')],
      ['a quoted identifier', () => db.raw('select * from "documents"')],
      [
        'query_to_xml()',
        () => db.raw("select query_to_xml('select * from documents', true, true, '')"),
      ],
      ['a DO block', () => db.raw('do $$ begin delete from comments; end $$')],
      [
        'table_to_xml()',
        () => db.raw("select table_to_xml('documents'::regclass, true, true, '')"),
      ],
      ['set_config()', () => db.raw("select set_config('app.tenant_id', 'globex', false)")],
      [
        'a raw column subquery',
        () =>
          db('countries').select(
            db.raw("(select string_agg(title || tenant_id, ',') from documents)"),
          ),
      ],
      [
        'an identifier binding in a fragment',
        () => db('countries').whereExists(db.raw('select 1 from ??', ['comments']) as never),
      ],
    ];
    for (const [name, attack] of raws) {
      it(`refuses ${name} (UNSAFE_QUERY)`, async () => {
        expect(await holds(attack, true)).to.deep.equal({ refused: 'UNSAFE_QUERY' });
      });
    }
  });

  describe('class 6: raw positions and second statements', () => {
    const raws: Array<[string, () => unknown]> = [
      ['a second statement after ;', () => db.raw('select 1; delete from comments')],
      [
        'a second statement in whereRaw',
        () => db('documents').whereRaw('true; delete from comments'),
      ],
      ['raw in offset()', () => db('documents').offset(db.raw('0; delete from comments') as never)],
      [
        'raw in a nested on(function)',
        () =>
          db('documents').join('comments', function () {
            this.on(function () {
              this.on(db.raw('true; delete from comments'));
            });
          }),
      ],
      [
        'raw in forUpdate ... of',
        () => db('documents').forUpdate(db.raw('documents; delete from comments') as never),
      ],
    ];
    for (const [name, attack] of raws) {
      it(`refuses ${name}`, async () => {
        expect(await holds(attack, true)).to.deep.equal({ refused: 'UNSAFE_QUERY' });
        expect(scopedSent).to.deep.equal([]);
      });
    }
  });

  describe('class 7: WITH names are scoped per query level', () => {
    it('refuses an undeclared table that shares a name with a WITH query of another level', async () => {
      const outcome = await holds(
        () =>
          db
            .select('*')
            .from('audit_log')
            .whereExists(
              db.with('audit_log', db.raw('select 1 as id')).select('*').from('audit_log'),
            ),
        true,
      );
      expect(outcome).to.deep.equal({ refused: 'UNSAFE_QUERY' });
    });

    it('is refused by the rewrite too (verifier switched off): WITH names do not leak to other levels', async () => {
      setVerifierDisabledForMutationTest(true);
      try {
        const message = await runWithTenant('acme', () =>
          db
            .select('*')
            .from('audit_log')
            .whereExists(
              db.with('audit_log', db.raw('select 1 as id')).select('*').from('audit_log'),
            )
            .then(() => 'ran')
            .catch((e: Error) => e.message),
        );
        expect(message).to.match(/Cannot query table "audit_log"/);
      } finally {
        setVerifierDisabledForMutationTest(false);
      }
    });
  });

  describe('class 9: an OR inside raw conditions never widens the tenant filter', () => {
    const widened: Array<[string, () => unknown]> = [
      ['whereRaw', () => db('documents').whereRaw('id = 1 or true')],
      ['a raw value', () => db('documents').where('id', db.raw('1 or true'))],
      ['where(raw)', () => db('documents').where(db.raw('true or true'))],
      [
        'a raw join condition',
        () => db('documents').join('comments', (j) => j.on(db.raw('true or true'))),
      ],
    ];
    for (const [name, attack] of widened) {
      it(`holds for ${name}`, async () => {
        await holds(attack);
      });
    }
  });

  describe('class 10: lazy builders and concurrent awaits', () => {
    it('refuses the await from another tenant while a concurrent await without a scope runs as the builder', async () => {
      const built = runWithTenant('acme', () => db('documents').select('tenant_id', 'id'));
      const [fromGlobex, unscoped] = await Promise.all([
        runWithTenant('globex', () => attempt(() => built.then((rows) => rows))),
        attempt(() => built.then((rows) => rows)),
      ]);
      expect(fromGlobex).to.deep.equal({ refused: 'TENANT_SCOPE_REQUIRED' });
      expect(tenantsIn((unscoped as { rows: unknown }).rows)).to.deep.equal(['acme']);
    });

    it('refuses a builder of one tenant bound into a raw run by another', async () => {
      const sub = runWithTenant('acme', () => db('documents').select('title', 'tenant_id'));
      const outcome = await runWithTenant('globex', () =>
        attempt(() => db.raw('select * from (?) as s', [sub])),
      );
      expect(outcome).to.have.property('refused');
    });

    it('keeps 200 interleaved awaits of shared builders on their own tenants', async () => {
      const acmeQuery = runWithTenant('acme', () => db('documents').select('tenant_id'));
      const globexQuery = runWithTenant('globex', () => db('documents').select('tenant_id'));
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          i % 2 === 0
            ? runWithTenant('acme', () => acmeQuery.then((r) => ['acme', tenantsIn(r)] as const))
            : runWithTenant('globex', () =>
                globexQuery.then((r) => ['globex', tenantsIn(r)] as const),
              ),
        ),
      );
      for (const [tenant, seen] of results) expect(seen).to.deep.equal([tenant]);
    });
  });
});

describe('regression: isolation engine v2, schema mode (classes 1 and 8)', () => {
  let knex: Knex;

  before(async () => {
    const database = await createScratchDatabase('schema-v2');
    knex = createTestKnex({ pool: { min: 0, max: 2 } }, database);
    await knex.raw(`
      create table documents (id integer primary key, home text not null default 'public');
      insert into documents (id) values (1);
    `);
    for (const schema of ['tenant_acme', 'tenant_globex']) {
      await knex.raw(`
        create schema ${schema};
        create table ${schema}.documents (id integer primary key, home text not null default '${schema}');
        create table ${schema}.secret (id integer primary key, home text not null default '${schema}');
        insert into ${schema}.documents (id) values (1), (2);
        insert into ${schema}.secret (id) values (1);
      `);
    }
  });

  const homes = (result: unknown): string[] =>
    ['public', 'tenant_acme', 'tenant_globex'].filter((h) =>
      JSON.stringify(result ?? null).includes(`"${h}"`),
    );

  for (const unknownTables of ['refuse', 'shared'] as const) {
    describe(`unknownTables: '${unknownTables}'`, () => {
      let db: TenantKnex;
      before(() => {
        db = withTenancy(knex, { mode: 'schema', tenantTables: ['documents'], unknownTables });
      });
      const attacks: Array<[string, () => unknown]> = [
        [
          "another tenant's schema via withSchema()",
          () => db('secret').withSchema('tenant_globex'),
        ],
        ["another tenant's table by qualified name", () => db('tenant_globex.secret')],
        ['a tenant table qualified with another schema', () => db('tenant_globex.documents')],
        ['a padded schema name', () => db(' tenant_globex.secret' as never)],
        ['knex.ref() as a table', () => db.from(db.ref('documents') as never)],
        ['an array as a table', () => db.from(['documents'] as never)],
        ['raw SQL on another schema', () => db.raw('select * from tenant_globex.documents')],
        ['raw SQL relying on search_path', () => db.raw('select * from documents')],
      ];
      for (const [name, attack] of attacks) {
        it(`never reads ${name}`, async () => {
          const outcome = await runWithTenant('acme', () => attempt(attack));
          if ('rows' in outcome) expect(homes(outcome.rows)).to.deep.equal(['tenant_acme']);
        });
      }
      it("still reads the tenant's own tables", async () => {
        const rows = await runWithTenant('acme', () => db('documents').select('home'));
        expect(homes(rows)).to.deep.equal(['tenant_acme']);
      });
    });
  }
});
