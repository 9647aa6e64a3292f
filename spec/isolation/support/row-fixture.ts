import type { Knex } from 'knex';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';

/** The two tenants every isolation spec uses; their rows are identical except for tenant_id. */
export const TENANTS = ['acme', 'globex'] as const;

/**
 * Creates a fresh database with tenant tables `documents` and `comments`
 * (same primary keys and values in both tenants) and the shared `countries`.
 */
export async function createRowFixture(
  overrides: Partial<Knex.Config> = {},
): Promise<{ knex: Knex; database: string }> {
  const database = await createScratchDatabase('row');
  const knex = createTestKnex(overrides, database);
  await knex.raw(`
    create table countries (code text primary key, name text not null);
    create table documents (
      tenant_id text not null,
      id integer not null,
      title text not null,
      slug text not null,
      views integer not null default 0,
      country text references countries(code),
      primary key (tenant_id, id),
      unique (tenant_id, slug)
    );
    create table comments (
      tenant_id text not null,
      id integer not null,
      document_id integer not null,
      body text not null,
      primary key (tenant_id, id)
    );
    create table documents_global_slug (
      tenant_id text not null,
      id integer primary key,
      slug text not null unique
    );
    insert into countries values ('fr', 'France'), ('de', 'Germany');
  `);
  await seedRows(knex);
  return { knex, database };
}

/** (Re)writes the identical rows of both tenants. */
export async function seedRows(knex: Knex): Promise<void> {
  await knex.raw('delete from comments; delete from documents; delete from documents_global_slug');
  for (const tenant of TENANTS) {
    await knex('documents').insert([
      { tenant_id: tenant, id: 1, title: 'alpha', slug: 'a', views: 1, country: 'fr' },
      { tenant_id: tenant, id: 2, title: 'beta', slug: 'b', views: 2, country: 'de' },
      { tenant_id: tenant, id: 3, title: 'gamma', slug: 'c', views: 3, country: null },
    ]);
    await knex('comments').insert([
      { tenant_id: tenant, id: 1, document_id: 1, body: 'one' },
      { tenant_id: tenant, id: 2, document_id: 1, body: 'two' },
      { tenant_id: tenant, id: 3, document_id: 2, body: 'three' },
    ]);
  }
}

/** Every row of every tenant table, ordered, for before/after comparisons. */
export async function snapshot(knex: Knex, tenant: string): Promise<string> {
  const docs = await knex('documents').where('tenant_id', tenant).orderBy('id');
  const comments = await knex('comments').where('tenant_id', tenant).orderBy('id');
  return JSON.stringify({ docs, comments });
}
