import { expect } from 'chai';
import type { Knex } from 'knex';
import { Model, fn, initialize, raw, ref } from 'objection';
import { runWithTenant, withTenancy, type TenantKnex } from '../../../src/index';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';
import { code } from '../support/error-code';
import { defineModels, type Models } from './objection-models';

type Mode = 'row' | 'schema';
const TENANTS = ['acme', 'globex'] as const;
const TABLES = ['people', 'pets', 'movies', 'people_movies'] as const;

// Both tenants hold the same ids (1-3), so a statement that lost its tenant
// filter (or its schema) matches the other tenant's rows and the spec sees it.
function seedSql(tenant: string, table: (name: string) => string, stamp: string): string {
  const extra = tenant === 'globex' ? `, (${stamp}4, 'globex:dave', null)` : '';
  return `
    insert into ${table('people')} (${stamp ? 'tenant_id, ' : ''}id, name, parent_id) values
      (${stamp}1, '${tenant}:alice', null), (${stamp}2, '${tenant}:bob', 1), (${stamp}3, '${tenant}:carol', 1)${extra};
    insert into ${table('pets')} (${stamp ? 'tenant_id, ' : ''}id, owner_id, name, species_id) values
      (${stamp}1, 1, '${tenant}:rex', 1), (${stamp}2, 2, '${tenant}:tom', 2), (${stamp}3, 2, '${tenant}:kit', 2);
    insert into ${table('movies')} (${stamp ? 'tenant_id, ' : ''}id, title) values
      (${stamp}1, '${tenant}:heat'), (${stamp}2, '${tenant}:up'), (${stamp}3, '${tenant}:jaws');
    insert into ${table('people_movies')} (${stamp ? 'tenant_id, ' : ''}person_id, movie_id) values
      (${stamp}1, 1), (${stamp}1, 2), (${stamp}2, 2);
  `;
}

async function createRowFixture(knex: Knex): Promise<void> {
  await knex.raw(`
    create table species (id integer primary key, name text not null);
    insert into species values (1, 'dog'), (2, 'cat');
    create table people (tenant_id text not null, id serial, name text not null, parent_id integer, primary key (tenant_id, id));
    create table pets (tenant_id text not null, id serial, owner_id integer, name text not null, species_id integer, primary key (tenant_id, id));
    create table movies (tenant_id text not null, id serial, title text not null, primary key (tenant_id, id));
    create table people_movies (tenant_id text not null, person_id integer not null, movie_id integer not null,
      primary key (tenant_id, person_id, movie_id));
  `);
  for (const tenant of TENANTS) {
    await knex.raw(seedSql(tenant, (t) => t, `'${tenant}', `));
  }
  for (const t of ['people', 'pets', 'movies']) await knex.raw(`select setval('${t}_id_seq', 100)`);
}

async function createSchemaFixture(knex: Knex): Promise<void> {
  // Decoys in public: a statement that fell through to public returns home = 'public'.
  const tables = (schema: string) => `
    create table ${schema}.people (id serial primary key, name text not null, parent_id integer, home text not null default '${schema}');
    create table ${schema}.pets (id serial primary key, owner_id integer, name text not null, species_id integer, home text not null default '${schema}');
    create table ${schema}.movies (id serial primary key, title text not null, home text not null default '${schema}');
    create table ${schema}.people_movies (person_id integer not null, movie_id integer not null, home text not null default '${schema}',
      primary key (person_id, movie_id));
    select setval('${schema}.people_id_seq', 100), setval('${schema}.pets_id_seq', 100), setval('${schema}.movies_id_seq', 100);
  `;
  await knex.raw(`
    create table species (id integer primary key, name text not null);
    insert into species values (1, 'dog'), (2, 'cat');
    ${tables('public')}
    insert into public.people (id, name) values (1, 'public:decoy');
    insert into public.movies (id, title) values (1, 'public:decoy');
  `);
  for (const tenant of TENANTS) {
    const schema = `tenant_${tenant}`;
    await knex.raw(`create schema ${schema}; ${tables(schema)}`);
    await knex.raw(seedSql(tenant, (t) => `${schema}.${t}`, ''));
  }
}

for (const mode of ['row', 'schema'] as const) {
  describeObjection(mode);
}

function describeObjection(mode: Mode): void {
  describe(`Objection.js models on withTenancy() (${mode} mode)`, () => {
    let base: Knex;
    let db: TenantKnex;
    let m: Models;
    let database: string;

    const marker = (tenant: string) => (mode === 'row' ? tenant : `tenant_${tenant}`);
    const markerOf = (row: { tenant_id?: string; home?: string }) =>
      mode === 'row' ? row.tenant_id : row.home;

    /** Every tenant-table row of a result graph (species is shared and skipped). */
    function tenantRows(value: unknown, out: Array<Record<string, unknown>> = []) {
      if (Array.isArray(value)) {
        for (const item of value) tenantRows(item, out);
      } else if (value instanceof Model) {
        if (!(value instanceof m.Species)) out.push(value as unknown as Record<string, unknown>);
        for (const key of Object.keys(value)) {
          const child = (value as unknown as Record<string, unknown>)[key];
          if (typeof child === 'object' && child !== null) tenantRows(child, out);
        }
      }
      return out;
    }

    /** Asserts a non-empty graph of rows all from `tenant`, seeded ones named after it. */
    function expectOnly(tenant: string, value: unknown): void {
      const rows = tenantRows(value);
      expect(rows.length, 'the result holds tenant rows').to.be.greaterThan(0);
      for (const row of rows) {
        expect(markerOf(row), JSON.stringify(row)).to.equal(marker(tenant));
        const label = typeof row.name === 'string' ? row.name : row.title;
        if (typeof label === 'string' && label.includes(':')) {
          expect(label.startsWith(`${tenant}:`), label).to.equal(true);
        }
      }
    }

    /** A tenant's rows of every tenant table, read with the base Knex. */
    async function snapshot(tenant: string): Promise<string> {
      const out: Record<string, unknown> = {};
      for (const table of TABLES) {
        const q: Knex.QueryBuilder =
          mode === 'row'
            ? base(table).where('tenant_id', tenant)
            : base.withSchema(`tenant_${tenant}`).from(table);
        out[table] = await q.orderByRaw('1, 2, 3');
      }
      return JSON.stringify(out);
    }

    async function reseed(): Promise<void> {
      if (mode === 'row') {
        await base.raw(`delete from ${TABLES.join('; delete from ')}`);
        for (const tenant of TENANTS) await base.raw(seedSql(tenant, (t) => t, `'${tenant}', `));
      } else {
        for (const tenant of TENANTS) {
          const schema = `tenant_${tenant}`;
          await base.raw(TABLES.map((t) => `delete from ${schema}.${t}`).join('; '));
          await base.raw(seedSql(tenant, (t) => `${schema}.${t}`, ''));
        }
      }
    }

    before(async () => {
      database = await createScratchDatabase(`objection_${mode}`);
      base = createTestKnex({ pool: { min: 0, max: 2 } }, database);
      await (mode === 'row' ? createRowFixture(base) : createSchemaFixture(base));
      db = withTenancy(base, {
        mode,
        tenantTables: [...TABLES],
        sharedTables: ['species'],
      });
      m = defineModels();
      m.BaseModel.knex(db);
    });

    beforeEach(reseed);

    describe('eager loading', () => {
      it("withGraphFetched loads each tenant's own graph, both ways along every relation", async () => {
        for (const tenant of TENANTS) {
          const people = await runWithTenant(tenant, async () =>
            m.Person.query()
              .withGraphFetched('[pets.[species, owner], children, parent, movies]')
              .orderBy('id'),
          );
          expectOnly(tenant, people);
          expect(people.map((p) => p.name).filter((n) => n.endsWith('dave'))).to.have.length(
            tenant === 'globex' ? 1 : 0,
          );
          const alice = people[0] as (typeof people)[number];
          expect(alice.pets?.map((p) => p.name)).to.deep.equal([`${tenant}:rex`]);
          expect(alice.pets?.[0]?.owner?.name).to.equal(`${tenant}:alice`);
          expect(alice.pets?.[0]?.species?.name).to.equal('dog');
          expect(alice.children?.map((c) => c.name).sort()).to.deep.equal([
            `${tenant}:bob`,
            `${tenant}:carol`,
          ]);
          expect(people[1]?.parent?.name).to.equal(`${tenant}:alice`);
          expect(alice.movies?.map((mv) => mv.title).sort()).to.deep.equal([
            `${tenant}:heat`,
            `${tenant}:up`,
          ]);
        }
      });

      it('withGraphJoined joins only the caller tenant (table metadata loaded with Objection initialize())', async () => {
        // Objection reads column names from information_schema once per model; that catalog
        // read is not a tenant or shared table, so it is loaded up front (README, Objection.js).
        const metadataKnex =
          mode === 'row'
            ? base
            : createTestKnex({ pool: { min: 0, max: 1 }, searchPath: ['tenant_acme'] }, database);
        await initialize(metadataKnex, m.all);
        for (const tenant of TENANTS) {
          const people = await runWithTenant(tenant, async () =>
            m.Person.query()
              .withGraphJoined('[pets.species, children, movies]')
              .orderBy('people.id'),
          );
          expectOnly(tenant, people);
          const alice = people.find((p) => p.id === 1);
          expect(alice?.movies?.map((mv) => mv.title).sort()).to.deep.equal([
            `${tenant}:heat`,
            `${tenant}:up`,
          ]);
          expect(alice?.children).to.have.length(2);
          expect(
            people
              .find((p) => p.id === 2)
              ?.pets?.map((p) => p.name)
              .sort(),
          ).to.deep.equal([`${tenant}:kit`, `${tenant}:tom`]);
        }
      });

      it('withGraphJoined without loaded metadata is refused with UNSAFE_QUERY, not sent', async () => {
        const cold = defineModels();
        cold.BaseModel.knex(db);
        const refused = await runWithTenant('acme', async () =>
          code(cold.Person.query().withGraphJoined('pets')),
        );
        expect(refused).to.equal('UNSAFE_QUERY');
      });
    });

    describe('relation queries', () => {
      it('$relatedQuery and relatedQuery().for() read the caller tenant only, many-to-many included', async () => {
        for (const tenant of TENANTS) {
          const out = await runWithTenant(tenant, async () => {
            const alice = await m.Person.query().findById(1).throwIfNotFound();
            return {
              pets: await alice.$relatedQuery('pets'),
              movies: await alice.$relatedQuery('movies').orderBy('movies.id'),
              staticPets: await m.Person.relatedQuery('pets').for([1, 2]).orderBy('pets.id'),
              staticMovies: await m.Person.relatedQuery('movies').for(
                m.Person.query().select('id').where('name', 'like', '%bob'),
              ),
            };
          });
          expectOnly(tenant, out.pets);
          expectOnly(tenant, out.movies);
          expectOnly(tenant, out.staticPets);
          expectOnly(tenant, out.staticMovies);
          expect(out.movies.map((mv) => mv.title)).to.deep.equal([
            `${tenant}:heat`,
            `${tenant}:up`,
          ]);
          expect(out.staticPets).to.have.length(3);
          expect(out.staticMovies.map((mv) => mv.title)).to.deep.equal([`${tenant}:up`]);
        }
      });

      it("relatedQuery().for() with another tenant's id answers like a missing one", async () => {
        const rows = await runWithTenant('acme', async () => m.Person.relatedQuery('pets').for(4));
        expect(rows).to.deep.equal([]);
        expect(await runWithTenant('acme', async () => m.Person.query().findById(4))).to.equal(
          undefined,
        );
      });

      it('joinRelated joins only the caller tenant, through the join table', async () => {
        for (const tenant of TENANTS) {
          const col = mode === 'row' ? 'tenant_id' : 'home';
          const rows = await runWithTenant(tenant, async () =>
            m.Person.query()
              .joinRelated('[pets, movies]')
              .select(
                'people.name',
                `people.${col} as p`,
                `pets.${col} as q`,
                `movies.${col} as r`,
                'movies.title',
              )
              .orderBy(['people.id', 'movies.id', 'pets.id']),
          );
          expect(rows).to.have.length(4); // alice: rex x (heat, up); bob: (tom, kit) x up
          for (const row of rows as unknown as Array<Record<string, string>>) {
            expect([row.p, row.q, row.r]).to.deep.equal([
              marker(tenant),
              marker(tenant),
              marker(tenant),
            ]);
            expect(row.title?.startsWith(`${tenant}:`)).to.equal(true);
          }
        }
      });
    });

    describe('writes', () => {
      it('insertGraph writes the whole graph (join-table rows included) into the caller tenant only', async () => {
        const globex = await snapshot('globex');
        const inserted = await runWithTenant('acme', async () =>
          m.Person.query().insertGraph(
            {
              name: 'acme:erin',
              pets: [{ name: 'acme:fido', species_id: 1 }],
              movies: [{ title: 'acme:alien' }, { id: 3 }],
            },
            { relate: true },
          ),
        );
        expect(await snapshot('globex')).to.equal(globex);
        const person = inserted as unknown as { id: number };
        const graph = await runWithTenant('acme', async () =>
          m.Person.query().findById(person.id).withGraphFetched('[pets, movies]'),
        );
        expectOnly('acme', graph);
        expect(graph?.movies?.map((mv) => mv.title).sort()).to.deep.equal([
          'acme:alien',
          'acme:jaws',
        ]);
        // The base Knex sees the join rows in the caller's tenant only.
        const joins =
          mode === 'row'
            ? await base('people_movies').where({ person_id: person.id })
            : await base.withSchema('tenant_acme').from('people_movies').where({
                person_id: person.id,
              });
        expect(joins.map((j: { movie_id: number }) => j.movie_id).sort()).to.have.length(2);
        if (mode === 'row') {
          expect(
            joins.map((j: { tenant_id: string }) => j.tenant_id),
            'stamped',
          ).to.deep.equal(['acme', 'acme']);
          // Every row of the graph landed in acme, read with the base Knex.
          const landed = await Promise.all([
            base('people').where({ name: 'acme:erin' }).pluck('tenant_id'),
            base('pets').where({ name: 'acme:fido' }).pluck('tenant_id'),
            base('movies').where({ title: 'acme:alien' }).pluck('tenant_id'),
          ]);
          expect(landed).to.deep.equal([['acme'], ['acme'], ['acme']]);
        } else {
          const landed = await Promise.all(
            ['tenant_acme', 'tenant_globex', 'public'].map((schema) =>
              base.withSchema(schema).from('people').where({ name: 'acme:erin' }).pluck('home'),
            ),
          );
          expect(landed).to.deep.equal([['tenant_acme'], [], []]);
        }
      });

      it('upsertGraph updates, inserts, deletes, relates and unrelates in the caller tenant only', async () => {
        const globex = await snapshot('globex');
        await runWithTenant('acme', async () =>
          m.Person.query().upsertGraph(
            {
              id: 2,
              name: 'acme:bobby',
              pets: [{ id: 2, name: 'acme:tommy' }, { name: 'acme:new' }], // kit (3) is deleted
              movies: [{ id: 3 }], // up (2) is unrelated, jaws (3) related
            },
            { relate: true, unrelate: true },
          ),
        );
        expect(await snapshot('globex')).to.equal(globex);
        const bob = await runWithTenant('acme', async () =>
          m.Person.query()
            .findById(2)
            .withGraphFetched('[pets(byId), movies]')
            .modifiers({
              byId: (q) => q.orderBy('id'),
            }),
        );
        expectOnly('acme', bob);
        expect(bob?.name).to.equal('acme:bobby');
        expect(bob?.pets?.map((p) => p.name)).to.deep.equal(['acme:tommy', 'acme:new']);
        expect(bob?.movies?.map((mv) => mv.title)).to.deep.equal(['acme:jaws']);
      });

      it("upsertGraph of another tenant's root id fails like a missing row and changes nothing", async () => {
        const before = [await snapshot('acme'), await snapshot('globex')];
        const error = await runWithTenant('acme', async () =>
          m.Person.query()
            .upsertGraph({ id: 4, name: 'acme:stolen' })
            .then(
              () => undefined,
              (e: unknown) => e,
            ),
        );
        expect((error as { name?: string } | undefined)?.name).to.equal('NotFoundError');
        expect([await snapshot('acme'), await snapshot('globex')]).to.deep.equal(before);
      });

      it("upsertGraph with insertMissing of another tenant's id inserts into the caller tenant, never updates the other", async () => {
        const globex = await snapshot('globex');
        await runWithTenant('acme', async () =>
          m.Person.query().upsertGraph(
            { id: 4, name: 'acme:dave', pets: [{ name: 'acme:spot' }] },
            { insertMissing: true },
          ),
        );
        expect(await snapshot('globex')).to.equal(globex);
        const dave = await runWithTenant('acme', async () =>
          m.Person.query().findById(4).withGraphFetched('pets'),
        );
        expectOnly('acme', dave);
        expect(dave?.pets?.map((p) => p.name)).to.deep.equal(['acme:spot']);
      });

      it('patch changes the caller tenant rows only; patching the tenant column is refused', async () => {
        const globex = await snapshot('globex');
        const count = await runWithTenant('acme', async () =>
          m.Person.query().patch({ name: 'acme:renamed' }).where('parent_id', 1),
        );
        expect(count).to.equal(2);
        const byId = await runWithTenant('acme', async () =>
          m.Person.query().patchAndFetchById(4, { name: 'acme:stolen' }),
        );
        expect(byId).to.equal(undefined);
        expect(await snapshot('globex')).to.equal(globex);
        const names = await runWithTenant('acme', async () =>
          m.Person.query().orderBy('id').select('name'),
        );
        expect(names.map((p) => p.name)).to.deep.equal([
          'acme:alice',
          'acme:renamed',
          'acme:renamed',
        ]);
        if (mode === 'row') {
          const moved = await runWithTenant('acme', async () =>
            code(m.Person.query().patch({ tenant_id: 'globex' } as never)),
          );
          expect(moved).to.equal('UNSAFE_QUERY');
          expect(await snapshot('globex')).to.equal(globex);
        }
      });

      it('$relatedQuery relate/unrelate/delete touch the caller tenant only', async () => {
        const globex = await snapshot('globex');
        await runWithTenant('acme', async () => {
          const carol = await m.Person.query().findById(3).throwIfNotFound();
          await carol.$relatedQuery('movies').relate(1);
          const alice = await m.Person.query().findById(1).throwIfNotFound();
          await alice.$relatedQuery('movies').unrelate().where('movies.id', 2);
          await alice.$relatedQuery('pets').delete();
        });
        expect(await snapshot('globex')).to.equal(globex);
        const graph = await runWithTenant('acme', async () =>
          m.Person.query().findByIds([1, 3]).withGraphFetched('[pets, movies]').orderBy('id'),
        );
        expect(graph.map((p) => [p.pets?.length, p.movies?.map((mv) => mv.title)])).to.deep.equal([
          [0, ['acme:heat']],
          [0, ['acme:heat']],
        ]);
      });
    });

    describe('transactions and expression helpers', () => {
      it('Model.transaction() on the tenant-scoped Knex writes and reads the caller tenant only', async () => {
        const globex = await snapshot('globex');
        const names = await runWithTenant('acme', async () =>
          m.Person.transaction(db, async (trx) => {
            await m.Person.query(trx).insert({ name: 'acme:trx' });
            await m.Person.query(trx).patch({ name: 'acme:trx-bob' }).where('id', 2);
            return (await m.Person.query(trx).orderBy('id').select('name')).map((p) => p.name);
          }),
        );
        expect(names).to.deep.equal(['acme:alice', 'acme:trx-bob', 'acme:carol', 'acme:trx']);
        expect(await snapshot('globex')).to.equal(globex);
        const rolledBack = await runWithTenant('acme', async () =>
          m.Person.transaction(db, async (trx) => {
            await m.Person.query(trx).delete();
            throw new Error('roll back');
          }).then(
            () => 'committed',
            (e: Error) => e.message,
          ),
        );
        expect(rolledBack).to.equal('roll back');
        expect(await runWithTenant('acme', async () => m.Person.query().resultSize())).to.equal(4);
      });

      it('ref(), raw() and fn() (rendered as raw SQL with identifier bindings) are proven and scoped', async () => {
        for (const tenant of TENANTS) {
          const rows = await runWithTenant(tenant, async () =>
            m.Person.query()
              .select('id', ref('name').as('label'), fn.upper(ref('people.name')).as('upper'))
              .select(raw('count(*) over () as total'))
              .where(ref('people.parent_id'), 1)
              .whereExists(m.Person.relatedQuery('pets'))
              .orderBy(ref('id')),
          );
          const out = rows as unknown as Array<Record<string, unknown>>;
          expect(out.map((r) => r.label)).to.deep.equal([`${tenant}:bob`]);
          expect(out.map((r) => r.upper)).to.deep.equal([`${tenant}:bob`.toUpperCase()]);
          expect(out.map((r) => r.total)).to.deep.equal(['1']);
        }
      });
    });

    describe('pagination', () => {
      it("page() and range() count and return the caller tenant's rows only", async () => {
        for (const tenant of TENANTS) {
          const own = tenant === 'globex' ? 4 : 3;
          const out = await runWithTenant(tenant, async () => ({
            page: await m.Person.query().orderBy('id').page(0, 2),
            range: await m.Person.query().orderBy('id').range(1, 5),
          }));
          expect(out.page.total).to.equal(own);
          expect(out.range.total).to.equal(own);
          expectOnly(tenant, out.page.results);
          expectOnly(tenant, out.range.results);
          expect(out.page.results.map((p) => p.id)).to.deep.equal([1, 2]);
          expect(out.range.results.map((p) => p.id)).to.deep.equal(own === 4 ? [2, 3, 4] : [2, 3]);
        }
      });
    });
  });
}
