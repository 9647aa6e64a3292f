import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli } from '../support/spawn-cli';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

interface Report {
  findings: Array<{ check: string; severity: string; tier: string; table?: string }>;
  errors: number;
  warnings: number;
}

describe('tenantry doctor', function () {
  this.timeout(60_000);
  let url: string;
  let central: string;
  let empty: string | undefined;
  let knex: Knex;
  let dir: string;
  let args: string[];

  before(async () => {
    central = await createScratchDatabase('cli_doctor');
    url = testServer().urlFor(central);
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    dir = mkdtempSync(path.join(tmpdir(), 'tenantry-doctor-'));
    writeFileSync(
      path.join(dir, 'tenancy.yaml'),
      'tenancy:\n  isolation:\n    mode: row\n    tenantTables: [documents]\n',
    );
    args = ['--config', path.join(dir, 'tenancy.yaml'), '--database-url', url];
    // Any command creates the central tables; doctor itself only reads.
    expect((await spawnCli([...args, 'tenants', 'create', 'acme'])).code).to.equal(0);
    await knex.raw(
      'create table documents (tenant_id text not null, id int not null, title text, primary key (tenant_id, id))',
    );
  });

  // Dropped here rather than all at once by the root hook.
  after(async () => {
    await knex.destroy();
    for (const name of [central, empty]) {
      if (name !== undefined) await adminQuery(`drop database if exists "${name}" with (force)`);
    }
  });

  it('exits 0 and says so on a clean fleet; --json prints only the report', async () => {
    const human = await spawnCli([...args, 'doctor']);
    expect(human).to.include({ code: 0, stderr: '' });
    expect(human.stdout).to.equal(
      'doctor: no problems found (tiers row; 1 tenants, 1 tenant tables)\n',
    );
    const json = await spawnCli([...args, '--json', 'doctor']);
    expect(json.code).to.equal(0);
    const report = JSON.parse(json.stdout) as Report;
    expect(report).to.deep.include({ findings: [], errors: 0, warnings: 0, tiers: ['row'] });
  });

  it('exits 4 when it finds warnings only', async () => {
    await knex.raw('create index documents_by_title on documents (title)');
    try {
      const run = await spawnCli([...args, '--json', 'doctor']);
      expect(run.code).to.equal(4);
      const report = JSON.parse(run.stdout) as Report;
      expect(report.findings.map((f) => `${f.severity} ${f.check} ${f.table}`)).to.deep.equal([
        'warning index-not-leading-tenant-column public.documents',
      ]);
    } finally {
      await knex.raw('drop index documents_by_title');
    }
  });

  it('exits 3 when it finds errors, and prints each finding with its fix', async () => {
    await knex.raw('alter table documents add constraint documents_title unique (title)');
    try {
      const run = await spawnCli([...args, 'doctor']);
      expect(run.code).to.equal(3);
      const lines = run.stdout.trimEnd().split('\n');
      expect(lines[0]).to.match(
        /^ERROR\tkey-without-tenant-column\trow public\.documents\tUnique constraint "documents_title"/,
      );
      expect(lines[1]).to.match(
        /^\tfix: Recreate "documents_title" as unique \("tenant_id", "title"\)/,
      );
      expect(lines.at(-1)).to.equal(
        'doctor: 1 errors, 0 warnings (tiers row; 1 tenants, 1 tenant tables)',
      );
      const json = await spawnCli([...args, '--json', 'doctor', '--tenant', 'acme']);
      expect(json.code).to.equal(3);
      expect((JSON.parse(json.stdout) as Report).errors).to.equal(1);
    } finally {
      await knex.raw('alter table documents drop constraint documents_title');
    }
  });

  it('checks the RLS backstop when the config turns it on, for the --app-role given', async () => {
    const config = path.join(dir, 'rls.yaml');
    writeFileSync(
      config,
      'tenancy:\n  isolation:\n    mode: row\n    rls: true\n    tenantTables: [documents]\n',
    );
    const run = await spawnCli([
      '--config',
      config,
      '--database-url',
      url,
      '--json',
      'doctor',
      '--app-role',
      'pg_monitor',
    ]);
    expect(run.code).to.equal(3);
    expect((JSON.parse(run.stdout) as Report).findings.map((f) => f.check)).to.deep.equal([
      'rls-not-enabled',
      'rls-policy-missing',
    ]);
  });

  it('refuses bad usage with exit 2 (and a JSON error with --json)', async () => {
    for (const bad of [
      ['doctor', 'extra'],
      ['doctor', '--tenant', 'Not_An_Id'],
      ['doctor', '--app-role', 'x;drop'],
      ['doctor', '--concurrency', '2'],
      ['doctor', '--tenant', 'nobody'],
      ['doctor', '--app-role', 'app'],
    ]) {
      const run = await spawnCli([...args, '--json', ...bad]);
      expect(run.code, bad.join(' ')).to.equal(2);
      const { error } = JSON.parse(run.stdout) as { error: { code: string; exitCode: number } };
      expect(error.exitCode).to.equal(2);
      if (bad.includes('nobody')) expect(error.code).to.equal('TENANT_NOT_FOUND');
      else expect(error.code).to.equal('USAGE');
    }
  });

  it('exits 1 without creating anything when the database has no tenants table (doctor only reads)', async () => {
    empty = await createScratchDatabase('cli_doctor_empty');
    const emptyUrl = testServer().urlFor(empty);
    const run = await spawnCli(['--database-url', emptyUrl, '--json', 'doctor']);
    expect(run.code).to.equal(1);
    expect((JSON.parse(run.stdout) as { error: { code: string } }).error.code).to.equal(
      'TENANCY_CONFIG_INVALID',
    );
    const probe = knexFactory({ client: 'pg', connection: emptyUrl, pool: { min: 0, max: 1 } });
    try {
      const { rows } = (await probe.raw("select to_regclass('tenants') as t")) as {
        rows: Array<{ t: string | null }>;
      };
      expect(rows[0]?.t).to.equal(null);
    } finally {
      await probe.destroy();
    }
  });
});
