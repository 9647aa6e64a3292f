import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import {
  FleetMigrator,
  KnexTenantStore,
  applyRowLevelSecurity,
  migrateCentral,
  runTenancyDoctor,
  type DoctorFinding,
  type TenancyDoctorOptions,
} from '../../../src/index';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  destroyTestKnex,
} from '../../support/test-database';

const LAYOUT = [
  'create table countries (code text primary key, name text not null)',
  `create table documents (tenant_id text not null, id int not null, title text,
     country text references countries (code), primary key (tenant_id, id))`,
  `create table comments (tenant_id text not null, id int not null, document_id int not null, body text,
     primary key (tenant_id, id), foreign key (tenant_id, document_id) references documents (tenant_id, id))`,
  'create index comments_by_document on comments (tenant_id, document_id)',
  "insert into countries values ('fr', 'France')",
];

interface Fleet {
  readonly knex: Knex;
  readonly store: KnexTenantStore;
  readonly role: string;
  readonly options: TenancyDoctorOptions;
}

const roles: string[] = [];
// Each spec's database and Knex instances, dropped after it (not all at once by the root hook).
const databases: string[] = [];
const knexes: Knex[] = [];

interface PgConnection {
  query(sql: string, callback: (error: unknown) => void): void;
}

/** A clean row tier: two tenants, composite keys, RLS applied and forced, a plain app role. */
async function cleanFleet(): Promise<Fleet> {
  const database = await createScratchDatabase('doctor');
  databases.push(database);
  const knex = createTestKnex({ pool: { min: 0, max: 3 } }, database);
  knexes.push(knex);
  await migrateCentral(knex);
  for (const sql of LAYOUT) await knex.raw(sql);
  await applyRowLevelSecurity(knex, { tables: ['documents', 'comments'] });
  const role = `doctor_app_${randomBytes(4).toString('hex')}`;
  roles.push(role);
  await knex.raw(`create role ${role} login`);
  await knex.raw(
    `grant select, insert, update, delete on documents, comments, countries to ${role}`,
  );
  const store = new KnexTenantStore(knex);
  for (const id of ['acme', 'beta']) {
    await store.create({ id });
    await knex('documents').insert({ tenant_id: id, id: 1, title: `${id} doc`, country: 'fr' });
    await knex('comments').insert({ tenant_id: id, id: 1, document_id: 1, body: 'hi' });
  }
  return {
    knex,
    store,
    role,
    options: {
      knex,
      store,
      mode: 'row',
      tenantTables: ['documents', 'comments'],
      sharedTables: ['countries'],
      rls: { role },
    },
  };
}

function tracked(overrides: Partial<Knex.Config>, database: string): Knex {
  const knex = createTestKnex(overrides, database);
  knexes.push(knex);
  return knex;
}

function checks(findings: readonly DoctorFinding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.check} ${f.table ?? f.tenant ?? ''}`.trim());
}

describe('runTenancyDoctor() on the row tier', function () {
  this.timeout(60_000);

  afterEach(async () => {
    for (const knex of knexes.splice(0)) await destroyTestKnex(knex);
    for (const name of databases.splice(0)) {
      await adminQuery(`drop database if exists "${name}" with (force)`);
    }
  });

  after(async () => {
    for (const role of roles)
      await adminQuery(`drop role if exists ${role}`).catch(() => undefined);
  });

  it('reports nothing on a clean layout (composite keys, co-located foreign keys, RLS forced, plain role)', async () => {
    const { options } = await cleanFleet();
    const report = await runTenancyDoctor(options);
    expect(report.findings).to.deep.equal([]);
    expect(report).to.include({ errors: 0, warnings: 0, tenants: 2 });
    expect(report.tiers).to.deep.equal(['row']);
    expect(report.tables).to.deep.equal(['public.comments', 'public.documents']);
  });

  it('reports a declared tenant table that does not exist, and one without the tenant column', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw('create table notes (id int primary key, body text)');
    const report = await runTenancyDoctor({
      ...options,
      tenantTables: ['documents', 'comments', 'notes', 'ghosts'],
      rls: false,
    });
    expect(checks(report.findings)).to.deep.equal([
      'error tenant-table-missing public.ghosts',
      'error tenant-column-missing public.notes',
    ]);
    expect(report.findings[1]?.fix).to.include('add column "tenant_id"');
  });

  it('reports primary keys, unique constraints and unique indexes without the tenant column (upserts leak existence), and indexes not led by it', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw(`create table invoices (id serial primary key, tenant_id text not null,
      number text not null unique, ref text, at date)`);
    await knex.raw('create unique index invoices_ref on invoices (ref)');
    await knex.raw('create index invoices_at on invoices (at, tenant_id)');
    await knex.raw('create index documents_by_title on documents (title)');
    const report = await runTenancyDoctor({
      ...options,
      tenantTables: ['documents', 'comments', 'invoices'],
      rls: false,
    });
    expect(checks(report.findings)).to.deep.equal([
      'error key-without-tenant-column public.invoices',
      'error key-without-tenant-column public.invoices',
      'error key-without-tenant-column public.invoices',
      'warning index-not-leading-tenant-column public.documents',
      'warning index-not-leading-tenant-column public.invoices',
    ]);
    const details = report.findings.map((f) => f.detail).join('\n');
    expect(details).to.include('invoices_pkey').and.include('invoices_number_key');
    expect(details).to.include('invoices_ref').and.include('Citus cannot distribute');
    const pkey = report.findings.find((f) => f.detail.includes('"invoices_pkey"'));
    expect(pkey?.fix).to.include('primary key ("tenant_id", "id")');
    expect(report).to.include({ errors: 3, warnings: 2 });
  });

  it('reports foreign keys between tenant tables that leave the tenant column out, and shared tables referencing tenant tables', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw(`create table folders (tenant_id text not null, id int not null,
      primary key (tenant_id, id), constraint folders_id unique (id))`);
    await knex.raw(`create table files (tenant_id text not null, id int not null, folder_id int references folders (id),
      primary key (tenant_id, id))`);
    await knex.raw('create index files_by_folder on files (tenant_id, folder_id)');
    await knex.raw('alter table countries add column showcase int references folders (id)');
    const report = await runTenancyDoctor({
      ...options,
      tenantTables: ['documents', 'comments', 'folders', 'files'],
      rls: false,
    });
    expect(checks(report.findings)).to.deep.equal([
      'error foreign-key-without-tenant-column public.countries',
      'error foreign-key-without-tenant-column public.files',
      'error key-without-tenant-column public.folders',
    ]);
    expect(report.findings[1]?.detail).to.include('files_folder_id_fkey');
  });

  it('reports RLS not enabled, not forced, without a policy, widened by a permissive policy', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw('alter table documents no force row level security');
    await knex.raw('alter table comments disable row level security');
    await knex.raw(
      `create table tags (tenant_id text not null, name text not null, primary key (tenant_id, name))`,
    );
    await knex.raw('alter table tags enable row level security, force row level security');
    await knex.raw('create policy everyone on tags using (true)');
    const report = await runTenancyDoctor({
      ...options,
      tenantTables: ['documents', 'comments', 'tags'],
    });
    expect(checks(report.findings)).to.deep.equal([
      'error rls-not-enabled public.comments',
      'error rls-not-forced public.documents',
      'error rls-policy-missing public.tags',
      'error rls-policy-permissive public.tags',
    ]);
    expect(report.findings[0]?.fix).to.include('alter table "comments" enable row level security');
  });

  it('reports an application role that bypasses RLS (superuser, BYPASSRLS) or owns a tenant table', async () => {
    const { knex, role, options } = await cleanFleet();
    // No role given: the doctor's own role, the suite's superuser.
    const asSuperuser = await runTenancyDoctor({ ...options, rls: true });
    // The bootstrap superuser also has BYPASSRLS: two findings.
    expect(checks(asSuperuser.findings)).to.deep.equal([
      'error rls-role-bypasses',
      'error rls-role-bypasses',
      'error rls-role-bypasses public.comments',
      'error rls-role-bypasses public.documents',
    ]);
    expect(asSuperuser.findings[0]?.detail).to.include('is a superuser');
    await knex.raw(`alter role ${role} bypassrls`);
    await knex.raw(`alter table comments owner to ${role}`);
    const report = await runTenancyDoctor(options);
    expect(checks(report.findings)).to.deep.equal([
      'error rls-role-bypasses',
      'error rls-role-bypasses public.comments',
    ]);
    expect(report.findings[0]?.detail).to.include('BYPASSRLS');
    expect(report.findings[1]?.detail).to.include('owns tenant table');
    const missing = await runTenancyDoctor({ ...options, rls: { role: 'no_such_role_doctor' } });
    expect(checks(missing.findings)).to.deep.equal(['error rls-role-bypasses']);
  });

  it('checks discovered tenant tables (every public table with the tenant column) when discovery is on', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw('create table audits (tenant_id text not null, id int primary key)');
    const declared = await runTenancyDoctor({ ...options, rls: false });
    expect(declared.findings).to.deep.equal([]);
    const discovered = await runTenancyDoctor({ ...options, rls: false, discover: true });
    expect(checks(discovered.findings)).to.deep.equal([
      'error key-without-tenant-column public.audits',
    ]);
    expect(discovered.tables).to.include('public.audits');
  });

  it('reports orphaned rows: no record (error), deleted but not purged (warning), living on another tier (warning)', async () => {
    const { knex, store, options } = await cleanFleet();
    await knex('documents').insert({ tenant_id: 'ghost', id: 9 });
    await store.update('beta', { status: 'deleted' });
    await store.create({ id: 'moved', isolation: { tier: 'schema', schema: 'tenant_moved' } });
    await knex.raw('create schema tenant_moved');
    await knex('comments').insert({ tenant_id: 'acme', id: 2, document_id: 1 });
    await knex('documents').insert({ tenant_id: 'moved', id: 1 });
    const report = await runTenancyDoctor({ ...options, rls: false });
    expect(checks(report.findings)).to.deep.equal([
      'error orphaned-rows public.documents',
      'warning orphaned-rows public.comments',
      'warning orphaned-rows public.documents',
      'warning orphaned-rows public.documents',
    ]);
    expect(report.findings.map((f) => f.tenant)).to.deep.equal(['ghost', 'beta', 'beta', 'moved']);
    expect(report.findings[0]?.detail).to.include('1 row(s)');
    // One tenant: only its own rows are counted.
    const one = await runTenancyDoctor({ ...options, rls: false, tenant: 'moved' });
    expect(checks(one.findings)).to.deep.equal(['warning orphaned-rows public.documents']);
  });

  it('reports rows with no tenant at all (a NULL tenant column) as orphaned', async () => {
    const { knex, options } = await cleanFleet();
    await knex.raw('create table drafts (tenant_id text, body text)');
    await knex('drafts').insert([
      { tenant_id: null, body: 'x' },
      { tenant_id: 'acme', body: 'y' },
    ]);
    const report = await runTenancyDoctor({
      ...options,
      tenantTables: ['documents', 'comments', 'drafts'],
      rls: false,
    });
    expect(checks(report.findings)).to.deep.equal(['error orphaned-rows public.drafts']);
    expect(report.findings[0]?.detail).to.include('have no tenant_id');
    expect(report.findings[0]?.tenant).to.equal(undefined);
  });

  it('says it cannot count orphaned rows when RLS hides them from its role, instead of reporting clean', async () => {
    const { knex, role, options } = await cleanFleet();
    await knex('documents').insert({ tenant_id: 'ghost', id: 9 });
    const database = (await knex.raw('select current_database() as d')).rows[0].d as string;
    const report = await runTenancyDoctor({
      ...options,
      // The doctor connected as the application's plain role.
      knex: tracked(
        {
          pool: {
            min: 0,
            max: 1,
            afterCreate: (c: PgConnection, done: (e: unknown) => void) =>
              c.query(`set role ${role}`, done),
          },
        },
        database,
      ),
      rls: false,
    });
    expect(checks(report.findings)).to.deep.equal([
      'warning orphaned-rows public.comments',
      'warning orphaned-rows public.documents',
    ]);
    expect(report.findings[0]?.detail).to.include('row-level security hides');
  });

  it('reports the row tier behind on migrations, against the migration source', async () => {
    const { knex, store, options } = await cleanFleet();
    const m1 = { name: '001_a', up: (k: Knex) => k.schema.createTable('a', (t) => t.text('x')) };
    const m2 = { name: '002_b', up: (k: Knex) => k.schema.createTable('b', (t) => t.text('x')) };
    await new FleetMigrator(knex, { mode: 'row', store, migrations: [m1] }).migrateTenants();
    expect(
      (await runTenancyDoctor({ ...options, rls: false, migrations: [m1] })).findings,
    ).to.deep.equal([]);
    const report = await runTenancyDoctor({ ...options, rls: false, migrations: [m1, m2] });
    expect(checks(report.findings)).to.deep.equal(['error migrations-behind']);
    expect(report.findings[0]).to.include({ tier: 'row' });
    expect(report.findings[0]?.detail).to.include('002_b');
    const m3 = {
      name: '003_broken',
      up: () => Promise.reject(new Error('boom in 003')),
    };
    const run = await new FleetMigrator(knex, {
      mode: 'row',
      store,
      migrations: [m1, m3],
    }).migrateTenants();
    expect(run.failed).to.have.length(1);
    const failed = await runTenancyDoctor({ ...options, rls: false, migrations: [m1, m3] });
    expect(checks(failed.findings)).to.deep.equal(['error migrations-behind']);
    expect(failed.findings[0]?.detail)
      .to.include('003_broken')
      .and.include('last migration run failed')
      .and.include('boom in 003');
  });

  it('refuses bad options with a TypeError and an unknown tenant with TENANT_NOT_FOUND', async () => {
    const { options } = await cleanFleet();
    for (const bad of [
      { mode: 'cluster' },
      { tenantColumn: 'tenant id' },
      { tenantTables: ['documents; drop table x'] },
      { tenantTables: 'documents' },
      { rls: { setting: 'Bad Setting' } },
    ]) {
      const error = await runTenancyDoctor({ ...options, ...bad } as TenancyDoctorOptions).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, JSON.stringify(bad)).to.be.instanceOf(TypeError);
    }
    const unknown = await runTenancyDoctor({ ...options, tenant: 'nobody' }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; status?: number },
    );
    expect(unknown).to.include({ code: 'TENANT_NOT_FOUND', status: 404 });
    const invalid = await runTenancyDoctor({ ...options, tenant: 'Not An Id' }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; status?: number },
    );
    expect(invalid).to.include({ code: 'TENANT_INVALID', status: 400 });
  });
});
