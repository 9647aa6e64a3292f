/**
 * Where the tenantry CLI takes its central database from (issue 15): the
 * config file's `tenancy.database.url`, or a knexfile (`--knexfile`, with
 * Knex's environments), next to `--database-url` and `DATABASE_URL`; and one
 * knexfile shared by Knex's CLI and tenantry's.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { spawnCli } from '../support/spawn-cli';
import {
  createScratchDatabase,
  createTestKnex,
  destroyTestKnex,
  testServer,
} from '../support/test-database';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const KNEX_CLI = path.join(ROOT, 'node_modules', 'knex', 'bin', 'cli.js');

/** The tenant ids the central `tenants` table of `database` (in `schema`) holds. */
async function tenantIds(database: string, schema = 'public'): Promise<string[]> {
  const knex = createTestKnex({}, database);
  try {
    return (await knex.withSchema(schema).table('tenants').orderBy('id').pluck('id')) as string[];
  } finally {
    await destroyTestKnex(knex);
  }
}

describe('tenantry CLI: the central database from the config file or a knexfile', function () {
  this.timeout(60_000);
  let dir: string;
  let first: string;
  let second: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tenantry-cli-db-'));
    first = await createScratchDatabase('cli_db');
    second = await createScratchDatabase('cli_db');
  });

  const file = (name: string, text: string) => {
    const full = path.join(dir, name);
    writeFileSync(full, text);
    return full;
  };

  it('takes the database from tenancy.database.url of the --config file', async () => {
    const config = file(
      'url.yaml',
      `tenancy:\n  database:\n    url: ${testServer().urlFor(first)}\n`,
    );
    const created = await spawnCli(['--config', config, 'tenants', 'create', 'from-config']);
    expect(created, created.stderr).to.include({ code: 0 });
    expect(await tenantIds(first)).to.include('from-config');
  });

  it('lets --database-url and DATABASE_URL win over the config file', async () => {
    const config = file(
      'url-first.yaml',
      `tenancy:\n  database:\n    url: ${testServer().urlFor(first)}\n`,
    );
    const bySecond = testServer().urlFor(second);
    expect(
      (
        await spawnCli([
          '--config',
          config,
          '--database-url',
          bySecond,
          'tenants',
          'create',
          'by-flag',
        ])
      ).code,
    ).to.equal(0);
    expect(
      (
        await spawnCli(['--config', config, 'tenants', 'create', 'by-env'], {
          DATABASE_URL: bySecond,
        })
      ).code,
    ).to.equal(0);
    expect(await tenantIds(second)).to.include.members(['by-flag', 'by-env']);
    expect(await tenantIds(first)).not.to.include.members(['by-flag']);
    expect(await tenantIds(first)).not.to.include.members(['by-env']);
  });

  it('refuses a tenancy.database.url that is not a postgres:// URL at load time, without echoing it', async () => {
    const config = file(
      'bad-url.yaml',
      'tenancy:\n  database:\n    url: mysql://app:s3cret@db/app\n',
    );
    const r = await spawnCli(['--config', config, '--json', 'tenants', 'list']);
    expect(r.code).to.equal(1);
    expect(JSON.parse(r.stdout)).to.have.nested.property('error.code', 'TENANCY_CONFIG_INVALID');
    expect(r.stderr).to.match(/tenancy\.database\.url because it is not a postgres:\/\/ URL/);
    expect(r.stdout + r.stderr).not.to.contain('s3cret');
    const typo = file('typo.yaml', 'tenancy:\n  database:\n    uri: postgres://x@y/z\n');
    const t = await spawnCli(['--config', typo, 'tenants', 'list']);
    expect(t.code).to.equal(1);
    expect(t.stderr).to.match(/tenancy\.database\.uri because it is not a known setting/);
  });

  it('takes the database from a knexfile, by environment (--env, else NODE_ENV, else development), with its searchPath', async () => {
    const central = createTestKnex({}, second);
    await central.raw('create schema if not exists central');
    await destroyTestKnex(central);
    const knexfile = file(
      'knexfile.js',
      `module.exports = {
  development: { client: 'pg', connection: ${JSON.stringify(testServer().urlFor(first))} },
  production: {
    client: 'postgresql',
    connection: ${JSON.stringify(testServer().urlFor(second))},
    searchPath: ['central'],
  },
};\n`,
    );
    expect(
      (await spawnCli(['--knexfile', knexfile, 'tenants', 'create', 'dev-one'])).code,
    ).to.equal(0);
    const prod = await spawnCli([
      '--knexfile',
      knexfile,
      '--env',
      'production',
      'tenants',
      'create',
      'prod-one',
    ]);
    expect(prod, prod.stderr).to.include({ code: 0 });
    expect(
      (
        await spawnCli(['--knexfile', knexfile, 'tenants', 'create', 'prod-two'], {
          NODE_ENV: 'production',
        })
      ).code,
    ).to.equal(0);
    expect(await tenantIds(first)).to.include('dev-one');
    expect(await tenantIds(second, 'central')).to.deep.equal(['prod-one', 'prod-two']);
    const esm = file(
      'knexfile-default.js',
      `exports.default = { client: 'pg', connection: { connectionString: ${JSON.stringify(testServer().urlFor(first))} } };\n`,
    );
    expect((await spawnCli(['--knexfile', esm, 'tenants', 'create', 'by-default'])).code).to.equal(
      0,
    );
    expect(await tenantIds(first)).to.include('by-default');
  });

  it('refuses a knexfile it cannot use with TENANCY_CONFIG_INVALID (exit 1), before connecting', async () => {
    const cases: [string, RegExp, string[]?][] = [
      [path.join(dir, 'missing.js'), /does not exist/],
      [
        file('mysql.js', "module.exports = { client: 'mysql2', connection: 'mysql://x@y/z' };\n"),
        /needs PostgreSQL/,
      ],
      [file('noconn.js', "module.exports = { client: 'pg' };\n"), /has no connection/],
      [
        file(
          'envs.js',
          "module.exports = { staging: { client: 'pg', connection: 'postgres://x@y/z' } };\n",
        ),
        /no environment "development" \(it has: staging\)/,
      ],
      [
        file('throws.js', "throw new Error('boom in knexfile');\n"),
        /loading it failed: boom in knexfile/,
      ],
    ];
    for (const [knexfile, message] of cases) {
      const r = await spawnCli(['--knexfile', knexfile, '--json', 'tenants', 'list']);
      expect(r.code, knexfile).to.equal(1);
      expect(JSON.parse(r.stdout), knexfile).to.have.nested.property(
        'error.code',
        'TENANCY_CONFIG_INVALID',
      );
      expect(r.stderr, knexfile).to.match(message);
    }
  });

  it('refuses --database-url with --knexfile, --env without --knexfile, and no database at all (exit 2)', async () => {
    const knexfile = file(
      'one.js',
      "module.exports = { client: 'pg', connection: 'postgres://x@y/z' };\n",
    );
    const both = await spawnCli([
      '--knexfile',
      knexfile,
      '--database-url',
      'postgres://a@b/c',
      'tenants',
      'list',
    ]);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.match(/both --database-url and --knexfile/);
    const env = await spawnCli(['--env', 'production', 'tenants', 'list'], {
      DATABASE_URL: 'postgres://a@b/c',
    });
    expect(env.code).to.equal(2);
    expect(env.stderr).to.match(/--env without --knexfile/);
    const none = await spawnCli(['tenants', 'list']);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/set tenancy\.database\.url in the --config file/);
  });

  it("shares one knexfile with Knex's CLI: knex migrate:latest creates the central tables, tenantry creates tenants in them", async () => {
    const project = mkdtempSync(path.join(dir, 'app-'));
    mkdirSync(path.join(project, 'migrations'));
    mkdirSync(path.join(project, 'node_modules', 'tenantry'), { recursive: true });
    writeFileSync(
      path.join(project, 'node_modules', 'tenantry', 'index.js'),
      `module.exports = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'index.js'))});\n`,
    );
    writeFileSync(
      path.join(project, 'node_modules', 'tenantry', 'package.json'),
      '{ "name": "tenantry", "main": "index.js" }\n',
    );
    for (const pkg of ['knex', 'pg']) {
      symlinkSync(path.join(ROOT, 'node_modules', pkg), path.join(project, 'node_modules', pkg));
    }
    const database = await createScratchDatabase('cli_knexfile');
    writeFileSync(
      path.join(project, 'knexfile.js'),
      `module.exports = { client: 'pg', connection: ${JSON.stringify(testServer().urlFor(database))}, migrations: { directory: './migrations' } };\n`,
    );
    writeFileSync(
      path.join(project, 'migrations', '20250101000000_tenantry.js'),
      "const { migrateCentral } = require('tenantry');\nexports.up = (knex) => migrateCentral(knex);\nexports.down = () => undefined;\n",
    );
    writeFileSync(
      path.join(project, 'migrations', '20250102000000_documents.js'),
      `exports.up = (knex) => knex.schema.createTable('documents', (t) => {
  t.increments('id');
  t.text('tenant_id').notNullable().references('id').inTable('tenants');
});
exports.down = (knex) => knex.schema.dropTable('documents');\n`,
    );
    await promisify(execFile)(
      process.execPath,
      [KNEX_CLI, 'migrate:latest', '--knexfile', 'knexfile.js'],
      {
        cwd: project,
      },
    );
    const r = await spawnCli([
      '--knexfile',
      path.join(project, 'knexfile.js'),
      'tenants',
      'create',
      'acme',
    ]);
    expect(r, r.stderr).to.include({ code: 0 });
    const knex = createTestKnex({}, database);
    try {
      await knex('documents').insert({ tenant_id: 'acme' });
      expect(await knex('documents').pluck('tenant_id')).to.deep.equal(['acme']);
    } finally {
      await destroyTestKnex(knex);
    }
  });
});
