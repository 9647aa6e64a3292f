/**
 * tenantry's central tables from a normal knexfile migration, run by Knex's
 * own CLI (`knex migrate:latest` / `migrate:rollback`), as the README's
 * "Central tables with the Knex CLI" recipe shows (the migration file is
 * taken from the README). Regression of issue 15: a
 * knexfile migration with a foreign key to `tenants` failed on a fresh
 * database because nothing created `tenants` first.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { KnexTenantStore } from '../../src/index';
import {
  createScratchDatabase,
  createTestKnex,
  destroyTestKnex,
  testServer,
} from '../support/test-database';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const KNEX_CLI = path.join(ROOT, 'node_modules', 'knex', 'bin', 'cli.js');

/** The README's migration file, read from the README itself. */
function readmeTenantryMigration(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /```js\n(\/\/ migrations\/\d+_tenantry\.js\n[\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README: no migrations/<timestamp>_tenantry.js block');
  return block[1] as string;
}

const DOCUMENTS_MIGRATION = `exports.up = (knex) =>
  knex.schema.createTable('documents', (t) => {
    t.increments('id');
    t.text('tenant_id').notNullable().references('id').inTable('tenants');
    t.text('title').notNullable();
  });
exports.down = (knex) => knex.schema.dropTable('documents');
`;

/** A project with a knexfile, a migrations folder and `tenantry` resolvable. */
function createProject(root: string, migrations: Record<string, string>): string {
  const dir = mkdtempSync(path.join(root, 'app-'));
  mkdirSync(path.join(dir, 'migrations'));
  mkdirSync(path.join(dir, 'node_modules', 'tenantry'), { recursive: true });
  // tenantry as this checkout builds it; knex and pg from the repository.
  writeFileSync(
    path.join(dir, 'node_modules', 'tenantry', 'index.js'),
    `module.exports = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'index.js'))});\n`,
  );
  writeFileSync(
    path.join(dir, 'node_modules', 'tenantry', 'package.json'),
    '{ "name": "tenantry", "main": "index.js" }\n',
  );
  for (const pkg of ['knex', 'pg']) {
    symlinkSync(path.join(ROOT, 'node_modules', pkg), path.join(dir, 'node_modules', pkg));
  }
  writeFileSync(
    path.join(dir, 'knexfile.js'),
    `module.exports = { client: 'pg', connection: process.env.DATABASE_URL, migrations: { directory: './migrations' } };\n`,
  );
  for (const [name, code] of Object.entries(migrations)) {
    writeFileSync(path.join(dir, 'migrations', name), code);
  }
  return dir;
}

async function knexCli(
  dir: string,
  databaseUrl: string,
  ...args: string[]
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [KNEX_CLI, ...args, '--knexfile', 'knexfile.js'],
      { cwd: dir, env: { ...process.env, DATABASE_URL: databaseUrl } },
    );
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function tables(knex: Knex): Promise<string[]> {
  const rows = await knex('pg_tables').where({ schemaname: 'public' }).pluck('tablename');
  return (rows as string[]).sort();
}

describe('central tables from a knexfile migration (the Knex CLI)', function () {
  this.timeout(60_000);
  let work: string;

  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'tenantry-knexfile-'));
  });

  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('fails on a fresh database without the tenantry migration (relation "tenants" does not exist)', async () => {
    const database = await createScratchDatabase('knexcli');
    const dir = createProject(work, { '20250102000000_documents.js': DOCUMENTS_MIGRATION });
    const result = await knexCli(dir, testServer().urlFor(database), 'migrate:latest');
    expect(result.ok).to.equal(false);
    expect(result.output).to.contain('relation "tenants" does not exist');
  });

  it("creates tenantry's tables first, then yours (a foreign key to tenants), and rolls both back", async () => {
    const database = await createScratchDatabase('knexcli');
    const url = testServer().urlFor(database);
    const dir = createProject(work, {
      '20250101000000_tenantry.js': readmeTenantryMigration(),
      '20250102000000_documents.js': DOCUMENTS_MIGRATION,
    });
    const knex = createTestKnex({ pool: { min: 0, max: 2 } }, database);
    try {
      const latest = await knexCli(dir, url, 'migrate:latest');
      expect(latest.ok, latest.output).to.equal(true);
      expect(await tables(knex)).to.include.members([
        'documents',
        'knex_migrations',
        'tenantry_central_migrations',
        'tenants',
        'tenantry_tenant_migrations',
      ]);
      const store = new KnexTenantStore(knex);
      await store.create({ id: 'acme', name: 'Acme' });
      await knex('documents').insert({ tenant_id: 'acme', title: 'hello' });
      const orphan = await knex('documents')
        .insert({ tenant_id: 'nobody', title: 'x' })
        .then(
          () => 'inserted',
          (e: { code?: string }) => e.code,
        );
      expect(orphan).to.equal('23503'); // foreign_key_violation: the FK is real

      const again = await knexCli(dir, url, 'migrate:latest');
      expect(again.ok, again.output).to.equal(true);
      expect(again.output).to.contain('Already up to date');

      await knex('documents').delete();
      await knex('tenants').delete();
      const rollback = await knexCli(dir, url, 'migrate:rollback', '--all');
      expect(rollback.ok, rollback.output).to.equal(true);
      expect(await tables(knex)).to.not.include.members(['documents', 'tenants']);
      expect(await tables(knex)).to.not.include('tenantry_tenant_migrations');

      const redo = await knexCli(dir, url, 'migrate:latest');
      expect(redo.ok, redo.output).to.equal(true);
      expect(await tables(knex)).to.include.members(['documents', 'tenants']);
    } finally {
      await destroyTestKnex(knex);
    }
  });
});
