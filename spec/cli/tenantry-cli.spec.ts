import { expect } from 'chai';
import knexFactory from 'knex';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli } from '../support/spawn-cli';
import { createScratchDatabase, testServer } from '../support/test-database';

const cli = spawnCli;

describe('tenantry CLI', function () {
  this.timeout(60_000);
  let url: string;
  let dir: string;
  let base: string[];

  before(async () => {
    url = testServer().urlFor(await createScratchDatabase('cli'));
    dir = mkdtempSync(path.join(tmpdir(), 'tenantry-cli-'));
    writeFileSync(
      path.join(dir, '001_notes.js'),
      "exports.up = (k) => k.schema.createTable('notes', (t) => t.text('body'));\n",
    );
    writeFileSync(
      path.join(dir, 'tenancy.yaml'),
      'tenancy:\n  isolation:\n    mode: schema\n    schemaPrefix: cli_\n',
    );
    base = ['--config', path.join(dir, 'tenancy.yaml'), '--migrations', dir];
  });

  it('creates, lists, shows, suspends, activates, archives and deletes tenants (schema mode from the config file)', async () => {
    const created = await cli([...base, 'tenants', 'create', 'acme', '--name', 'Acme Inc'], {
      DATABASE_URL: url,
    });
    expect(created).to.include({ code: 0 });
    expect(created.stdout).to.equal('acme\tactive\tAcme Inc\n');
    expect(
      (await cli([...base, '--database-url', url, 'tenants', 'create', 'beta'])).code,
    ).to.equal(0);
    expect((await cli(['tenants', 'list'], { DATABASE_URL: url })).stdout).to.equal(
      'acme\tactive\tAcme Inc\nbeta\tactive\tbeta\n',
    );
    const shown = JSON.parse(
      (await cli(['tenants', 'show', 'acme'], { DATABASE_URL: url })).stdout,
    ) as { isolation: unknown };
    expect(shown.isolation).to.deep.equal({ schema: 'cli_acme' });
    expect(
      (await cli(['tenants', 'suspend', 'beta', '--reason', 'unpaid'], { DATABASE_URL: url }))
        .stdout,
    ).to.equal('beta\tsuspended\tbeta\t(unpaid)\n');
    expect((await cli(['tenants', 'activate', 'beta'], { DATABASE_URL: url })).code).to.equal(0);
    expect((await cli(['tenants', 'archive', 'beta'], { DATABASE_URL: url })).code).to.equal(0);
    expect(
      (await cli([...base, 'tenants', 'delete', 'beta', '--purge', '--yes'], { DATABASE_URL: url }))
        .stdout,
    ).to.match(/^beta\tdeleted/);
  });

  it('migrates (plain progress lines off a terminal) and reports drift with migrate status', async () => {
    writeFileSync(
      path.join(dir, '002_tags.js'),
      "exports.up = (k) => k.schema.createTable('tags', (t) => t.text('n'));\n",
    );
    const behind = await cli([...base, 'migrate', 'status'], { DATABASE_URL: url });
    expect(behind.code).to.equal(3);
    expect(behind.stdout).to.include('acme\t001_notes.js\t1 pending\tok');
    const migrated = await cli([...base, 'migrate', '--concurrency', '2'], { DATABASE_URL: url });
    expect(migrated.code).to.equal(0);
    expect(migrated.stderr).to.equal('[1/1] acme migrated (002_tags.js)\n');
    expect(migrated.stdout).to.equal('migrated 1, current 0, failed 0\n');
    const status = await cli([...base, 'migrate', 'status', '--tenant', 'acme'], {
      DATABASE_URL: url,
    });
    expect(status).to.include({ code: 0 });
    expect(status.stdout).to.include('acme\t002_tags.js\tcurrent\tok');
  });

  it('regression: row-mode delete --purge removes the tenant rows, so a tenant created again with that id reads none', async () => {
    const rowUrl = testServer().urlFor(await createScratchDatabase('cli_row'));
    const knex = knexFactory({ client: 'pg', connection: rowUrl, pool: { min: 0, max: 1 } });
    try {
      expect((await cli(['tenants', 'create', 'initech'], { DATABASE_URL: rowUrl })).code).to.equal(
        0,
      );
      await knex.schema.createTable('documents', (t) => {
        t.text('tenant_id').notNullable().references('id').inTable('tenants');
        t.text('title');
      });
      await knex('documents').insert({ tenant_id: 'initech', title: 'secret plans' });
      const purged = await cli(['tenants', 'delete', 'initech', '--purge', '--yes'], {
        DATABASE_URL: rowUrl,
      });
      expect(purged, purged.stderr).to.include({ code: 0 });
      expect(
        await knex('documents').where({ tenant_id: 'initech' }).count({ n: '*' }).first(),
      ).to.deep.equal({ n: '0' });
      expect((await cli(['tenants', 'create', 'initech'], { DATABASE_URL: rowUrl })).code).to.equal(
        0,
      );
      expect(await knex('documents').where({ tenant_id: 'initech' }).pluck('title')).to.deep.equal(
        [],
      );
    } finally {
      await knex.destroy();
    }
  });

  it('exits 2 with a clear message for bad input, and 1 when the database is unreachable', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['tenants', 'show', "x';drop"], { DATABASE_URL: url }, /not a valid id/],
      [['frobnicate'], { DATABASE_URL: url }, /not a command/],
      [['tenants', 'show'], { DATABASE_URL: url }, /without a tenant id/],
      [
        ['tenants', 'list'],
        {},
        /Pass --database-url or --knexfile, set DATABASE_URL, or set tenancy.database.url/,
      ],
      [['migrate', '--concurrency', 'lots'], { DATABASE_URL: url }, /--concurrency/],
      [['tenants', 'activate', 'acme'], { DATABASE_URL: url }, /TENANT_STATE_INVALID/],
      [['tenants', 'show', 'ghost'], { DATABASE_URL: url }, /TENANT_NOT_FOUND/],
      [
        ['--bogus-flag', 'tenants', 'list'],
        { DATABASE_URL: url },
        /"--bogus-flag" because it is unknown/,
      ],
      [
        ['--config', '/nonexistent/tenancy.yaml', 'tenants', 'list'],
        { DATABASE_URL: url },
        /tenancy config/i,
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = await cli(args, env);
      expect(r.code, args.join(' ')).to.equal(args[0] === '--config' ? 1 : 2);
      expect(r.stderr, args.join(' ')).to.match(message);
    }
    const down = await cli(['tenants', 'list'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    });
    expect(down.code).to.equal(1);
    expect(down.stderr).to.match(/ECONNREFUSED/);
  });
});
