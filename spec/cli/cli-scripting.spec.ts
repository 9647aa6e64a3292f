import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli as cli, spawnCliOnTerminal, type CliRun } from '../support/spawn-cli';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

const pkg = JSON.parse(
  readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8'),
) as { version: string };

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

function oneLine(r: CliRun): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).to.have.length(1);
  return lines[0] as string;
}

describe('tenantry CLI as a scripting tool', function () {
  this.timeout(90_000);
  let url: string;
  let knex: Knex;
  let migrations: string;

  before(async () => {
    url = testServer().urlFor(await createScratchDatabase('cli_script'));
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    migrations = tempDir({
      '001_notes.js':
        "exports.up = async (k) => { if (process.env.FAIL_MIGRATION) throw new Error('boom in 001.\\nsecond line'); await k.schema.createTable('notes', (t) => t.text('body')); };\n",
    });
  });
  after(() => knex.destroy());

  const schemaEnv = (extra: NodeJS.ProcessEnv = {}) => ({
    DATABASE_URL: url,
    TENANCY_ISOLATION: 'schema',
    TENANCY_SCHEMA_PREFIX: 'envp_',
    TENANTRY_MIGRATIONS_DIR: migrations,
    ...extra,
  });

  it('prints its version with --version (plain and --json), exit 0', async () => {
    const plain = await cli(['--version']);
    expect(plain).to.deep.equal({ code: 0, stdout: `tenantry ${pkg.version}\n`, stderr: '' });
    const json = await cli(['--version', '--json']);
    expect(JSON.parse(json.stdout)).to.deep.equal({ version: pkg.version });
  });

  it('takes the isolation mode and schema prefix from TENANCY_* variables without --config', async () => {
    const created = await cli(['--json', 'tenants', 'create', 'envco'], schemaEnv());
    expect(created.code, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({
      status: 'active',
      isolation: { schema: 'envp_envco' },
    });
    const tables = await knex('information_schema.tables')
      .where({ table_schema: 'envp_envco' })
      .pluck('table_name');
    expect(tables).to.include('notes');
  });

  it('provisions a tenant made with --no-provision, and retries one left provisioning_failed', async () => {
    const made = await cli(['tenants', 'create', 'later', '--no-provision'], schemaEnv());
    expect(made.stdout).to.equal('later\tprovisioning\tlater\n');
    const provisioned = await cli(['tenants', 'provision', 'later'], schemaEnv());
    expect(provisioned).to.include({ code: 0, stdout: 'later\tactive\tlater\n' });

    const failed = await cli(['tenants', 'create', 'flaky'], schemaEnv({ FAIL_MIGRATION: '1' }));
    expect(failed.code).to.equal(1);
    const line = oneLine(failed);
    expect(line).to.match(
      /^tenantry: TENANT_PROVISIONING_FAILED: Cannot provision tenant "flaky" because .*boom in 001\.\\nsecond line\. Fix/,
    );
    expect(line).not.to.match(/\.\./);
    const show = await cli(['--json', 'tenants', 'show', 'flaky'], schemaEnv());
    expect(JSON.parse(show.stdout)).to.include({ status: 'provisioning_failed' });
    const retried = await cli(['tenants', 'provision', 'flaky'], schemaEnv());
    expect(retried).to.include({ code: 0, stdout: 'flaky\tactive\tflaky\n' });
  });

  it('makes migrate and migrate status agree on which tenants are due (a provisioning tenant is in neither)', async () => {
    await cli(['tenants', 'create', 'waiting', '--no-provision'], schemaEnv());
    const status = await cli(['--json', 'migrate', 'status'], schemaEnv());
    expect(status.code, status.stdout).to.equal(0);
    const ids = (JSON.parse(status.stdout) as { tenants: { tenantId: string }[] }).tenants.map(
      (t) => t.tenantId,
    );
    expect(ids).to.not.include('waiting');
    const migrated = await cli(['--json', 'migrate'], schemaEnv());
    expect(migrated.code).to.equal(0);
    const result = JSON.parse(migrated.stdout) as { migrated: string[]; current: string[] };
    expect([...result.migrated, ...result.current].sort()).to.deep.equal([...ids].sort());
  });

  it('shows with --dry-run which tenants would get which migrations, and applies nothing', async () => {
    writeFileSync(
      path.join(migrations, '002_tags.js'),
      "exports.up = (k) => k.schema.createTable('tags', (t) => t.text('n'));\n",
    );
    const dry = await cli(['--json', 'migrate', '--dry-run'], schemaEnv());
    expect(dry.code, dry.stderr).to.equal(0);
    const plan = JSON.parse(dry.stdout) as {
      dryRun: boolean;
      tenants: { tenantId: string; migrations: string[] }[];
    };
    expect(plan.dryRun).to.equal(true);
    expect(plan.tenants.find((t) => t.tenantId === 'envco')?.migrations).to.deep.equal([
      '002_tags.js',
    ]);
    const plain = await cli(['migrate', '--dry-run', '--tenant', 'envco'], schemaEnv());
    expect(plain.stdout).to.equal('would migrate 1 of 1 tenants (dry run)\nenvco\t002_tags.js\n');
    expect((await cli(['migrate', 'status'], schemaEnv())).code).to.equal(3); // still due
    expect((await cli(['migrate'], schemaEnv())).code).to.equal(0);
    expect((await cli(['migrate', 'status'], schemaEnv())).code).to.equal(0);
  });

  it('refuses TypeScript migrations without a loader (exit 1, nothing provisioned), and loads them with one', async () => {
    const ts = tempDir({
      '001_widgets.ts':
        "import type { Knex } from 'knex';\nexport const up = (k: Knex) => k.schema.createTable('widgets', (t) => t.text('n'));\n",
    });
    const env = schemaEnv({ TENANTRY_MIGRATIONS_DIR: ts });
    const refused = await cli(['tenants', 'create', 'tsco'], env);
    expect(refused.code).to.equal(1);
    expect(oneLine(refused)).to.match(
      /TENANCY_CONFIG_INVALID: Cannot load tenant migration "001_widgets.ts" because it is TypeScript and no TypeScript loader is registered\./,
    );
    expect(await knex('tenants').where({ id: 'tsco' }).first()).to.equal(undefined);
    // A minimal loader (what ts-node or tsx register): TypeScript's own transpiler.
    const loader = path.join(tempDir({}), 'loader.cjs');
    writeFileSync(
      loader,
      `const ts = require(${JSON.stringify(require.resolve('typescript'))});
const fs = require('fs');
require.extensions['.ts'] = (module, file) => {
  const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS } });
  module._compile(out.outputText, file);
};\n`,
    );
    const loaded = await cli(['tenants', 'create', 'tsco'], env, ['--require', loader]);
    expect(loaded.code, loaded.stderr).to.equal(0);
    const tables = await knex('information_schema.tables')
      .where({ table_schema: 'envp_tsco' })
      .pluck('table_name');
    expect(tables).to.include('widgets');
  });

  it('prints only JSON on stdout with --json, for every command and every failure', async () => {
    const failing = tempDir({
      '001_bad.js': "exports.up = (k) => k.raw('select * from no_such_table');\n",
    });
    const runs: [string[], NodeJS.ProcessEnv][] = [
      [['tenants', 'list'], schemaEnv()],
      [['tenants', 'show', 'envco'], schemaEnv()],
      [['tenants', 'show', 'ghost'], schemaEnv()],
      [['tenants', 'suspend', 'envco', '--reason', 'audit'], schemaEnv()],
      [['tenants', 'activate', 'envco'], schemaEnv()],
      [['tenants', 'archive', 'nobody'], schemaEnv()],
      [['tenants', 'delete', 'envco', '--purge'], schemaEnv()],
      [['tenants', 'frobnicate', 'x'], schemaEnv()],
      [['--bogus'], schemaEnv()],
      [['tenants', 'create', 'broken'], schemaEnv({ TENANTRY_MIGRATIONS_DIR: failing })],
      [['migrate', 'status'], schemaEnv()],
      [['migrate'], schemaEnv({ TENANTRY_MIGRATIONS_DIR: failing })],
      [['tenants', 'list'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' }],
      [['tenants', 'list'], { ...schemaEnv(), TENANCY_ISOLATION: 'sideways' }],
    ];
    for (const [args, env] of runs) {
      const r = await cli(['--json', ...args], env);
      const label = `${args.join(' ')} -> ${r.code}: ${r.stdout}`;
      const lines = r.stdout.split('\n').filter((l) => l !== '');
      expect(lines, label).to.have.length(1);
      const parsed = JSON.parse(lines[0] as string) as {
        error?: { code: string; exitCode: number };
      };
      if (r.code !== 0 && !(args[0] === 'migrate')) {
        expect(parsed.error, label).to.include({ exitCode: r.code });
      }
    }
  });

  it('asks before a purge on a terminal, and needs --yes otherwise', async () => {
    const env = schemaEnv();
    await cli(['tenants', 'create', 'doomed'], env);
    const refused = await cli(['tenants', 'delete', 'doomed', '--purge'], env);
    expect(refused.code).to.equal(2);
    expect(oneLine(refused)).to.match(/without confirmation .* Pass --yes\.$/);
    expect((await cli(['--json', 'tenants', 'show', 'doomed'], env)).stdout).to.include(
      '"status":"active"',
    );
    const wrong = await spawnCliOnTerminal(
      ['tenants', 'delete', 'doomed', '--purge'],
      env,
      'nope\n',
    );
    expect(wrong.code, wrong.output).to.equal(2);
    expect(wrong.output).to.match(/Type the tenant id to confirm/);
    expect(wrong.output).to.match(/was not confirmed/);
    const typed = await spawnCliOnTerminal(
      ['tenants', 'delete', 'doomed', '--purge'],
      env,
      'doomed\n',
    );
    expect(typed.code, typed.output).to.equal(0);
    expect(typed.output).to.match(/doomed\tdeleted/);
    expect(await knex('tenants').where({ id: 'doomed' }).first()).to.equal(undefined);
    const schemas = await adminQuery(`select 1 from pg_database d where d.datname = $1`, [
      testServer().databaseName,
    ]);
    expect(schemas.rowCount).to.equal(1); // the purge dropped a schema, not the database
    await cli(['tenants', 'create', 'doomed2'], env);
    const yes = await cli(['tenants', 'delete', 'doomed2', '--purge', '--yes'], env);
    expect(yes.code, yes.stderr).to.equal(0);
  });

  it('purges data an earlier tenant left without a record with tenants purge, after which the id is new', async () => {
    const env = schemaEnv();
    await knex.raw('create schema envp_leftover');
    await knex.raw('create table envp_leftover.secrets (body text)');
    const refused = await cli(['tenants', 'create', 'leftover'], env);
    expect(refused.code).to.equal(2);
    expect(oneLine(refused)).to.match(
      /TENANT_STATE_INVALID: Cannot create tenant "leftover" because data of an earlier tenant with this id is left \(schema "envp_leftover"\)/,
    );
    expect((await cli(['tenants', 'purge', 'leftover'], env)).code).to.equal(2); // no --yes
    const purged = await cli(['--json', 'tenants', 'purge', 'leftover', '--yes'], env);
    expect(purged.code, purged.stderr).to.equal(0);
    expect(JSON.parse(purged.stdout)).to.deep.equal({ id: 'leftover', purged: true });
    expect((await cli(['tenants', 'create', 'leftover'], env)).code).to.equal(0);
    const ghost = await cli(['tenants', 'purge', 'ghost', '--yes'], env);
    expect(ghost.code).to.equal(2);
    expect(oneLine(ghost)).to.match(/TENANT_NOT_FOUND/);
  });

  it('prints the usage with --help (exit 0) and exits 3 when a tenant fails to migrate', async () => {
    const help = await cli(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^Usage: tenantry/);
    expect(help.stdout).to.include('tenants provision <id>');
    // A directory that lost the tenants' applied migrations: Knex refuses it per tenant.
    const failing = tempDir({
      '001_bad.js': "exports.up = (k) => k.raw('select * from no_such_table');\n",
    });
    const migrated = await cli(['migrate'], schemaEnv({ TENANTRY_MIGRATIONS_DIR: failing }));
    expect(migrated.code).to.equal(3);
    expect(migrated.stdout).to.match(/^migrated 0, current 0, failed [1-9]/);
    expect(migrated.stdout).to.match(/^FAILED envco: .*missing: 001_notes\.js, 002_tags\.js$/m);
  });

  it('places tenant databases with --database-prefix, --database-host and --database-port in database mode', async () => {
    const env = { DATABASE_URL: url, TENANCY_ISOLATION: 'database' };
    const prefix = `clidb${Date.now().toString(36)}_`;
    const created = await cli(
      ['--json', '--database-prefix', prefix, 'tenants', 'create', 'dbco'],
      env,
    );
    expect(created.code, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({
      isolation: { database: { database: `${prefix}dbco` } },
    });
    const exists = async () =>
      (await adminQuery('select 1 from pg_database where datname = $1', [`${prefix}dbco`]))
        .rowCount;
    expect(await exists()).to.equal(1);
    const purged = await cli(
      ['--database-prefix', prefix, 'tenants', 'delete', 'dbco', '--purge', '--yes'],
      env,
    );
    expect(purged.code, purged.stderr).to.equal(0);
    expect(await exists()).to.equal(0);
    // A server of its own (here the same server under another name and its port). Tenant
    // records may only name configured servers, so the config file declares it.
    const { port } = new URL(url);
    const config = path.join(
      tempDir({
        'tenancy.yaml': `tenancy:\n  isolation:\n    mode: database\n    database:\n      servers:\n        second: { host: localhost, port: ${port || '5432'} }\n`,
      }),
      'tenancy.yaml',
    );
    const placed = await cli(
      [
        '--config',
        config,
        '--json',
        '--database-prefix',
        prefix,
        'tenants',
        'create',
        'placed',
        '--database-host',
        'localhost',
        '--database-port',
        port || '5432',
      ],
      env,
    );
    expect(placed.code, placed.stderr).to.equal(0);
    expect(JSON.parse(placed.stdout)).to.deep.include({
      status: 'active',
      isolation: {
        database: { database: `${prefix}placed`, host: 'localhost', port: Number(port || '5432') },
      },
    });
    const bad: [string[], RegExp][] = [
      [['--database-host', 'evil host;'], /--database-host "evil host;" because/],
      [['--database-port', '99999'], /--database-port "99999" because/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(['tenants', 'create', 'nope', ...args], env);
      expect(r.code).to.equal(2);
      expect(oneLine(r)).to.match(message);
    }
    const rowMode = await cli(['tenants', 'create', 'nope', '--database-host', 'localhost'], {
      DATABASE_URL: url,
    });
    expect(rowMode.code).to.equal(2);
    expect(oneLine(rowMode)).to.match(/because the isolation mode is row/);
    const purgedPlaced = await cli(
      [
        '--config',
        config,
        '--database-prefix',
        prefix,
        'tenants',
        'delete',
        'placed',
        '--purge',
        '--yes',
      ],
      env,
    );
    expect(purgedPlaced.code, purgedPlaced.stderr).to.equal(0);
  });

  it('answers hostile arguments with exit 2 and one escaped line on stderr', async () => {
    const env = schemaEnv();
    const cases: [string[], RegExp][] = [
      [
        ['tenants', 'show', "x';drop table tenants;--"],
        /tenant id "x';drop table tenants;--" because it is not a valid id/,
      ],
      [
        ['tenants', 'show', 'acme\ntenantry: forged line'],
        /tenant id "acme\\ntenantry: forged line"/,
      ],
      [['tenants', 'show', 'a'.repeat(500)], /tenant id "a{70}…"/],
      [['--bogus-flag', 'tenants', 'list'], /option "--bogus-flag" because it is unknown/],
      [['--na\nme', 'tenants', 'list'], /option "--na\\nme" because it is unknown/],
      [['tenants', 'create', 'x', '--name'], /option "--name" because it needs a value/],
      [
        ['tenants', 'list', '--purge'],
        /"--purge" with "tenants list" because that command does not take it/,
      ],
      [['tenants', 'show', 'acme', 'extra'], /extra argument "extra"/],
      [['migrate', 'now'], /extra argument "now"/],
      [['migrate', '--concurrency', '1e3'], /--concurrency "1e3"/],
      [['migrate', '--tenant', 'A B'], /--tenant "A B"/],
      [['tenants', 'suspend', 'acme', '--reason', 'x\ry'], /--reason "x\\ry" because/],
      [['--database-prefix', 'Bad!', 'tenants', 'list'], /--database-prefix "Bad!" because/],
      [['--schema-prefix', "x'; drop", 'tenants', 'list'], /--schema-prefix "x'; drop" because/],
      [['tenants'], /not a command/],
      [[], /without a command/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args, env);
      expect(r.code, JSON.stringify(args)).to.equal(2);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      // `tenantry` alone prints the usage first, then the one-line error.
      expect(lines.at(-1), JSON.stringify(args)).to.match(message);
      if (args.length > 0) expect(lines, JSON.stringify(args)).to.have.length(1);
      expect(r.stdout).to.equal('');
    }
  });

  it('prints an unreachable database as one line naming ECONNREFUSED once (no Knex stack on stderr)', async () => {
    const r = await cli(['tenants', 'list'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    });
    expect(r.code).to.equal(1);
    const line = oneLine(r);
    expect(line).to.match(/^tenantry: connect ECONNREFUSED 127\.0\.0\.1:1\.$/);
    const json = await cli(['--json', 'tenants', 'list'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    });
    expect(JSON.parse(json.stdout)).to.deep.equal({
      error: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1.', exitCode: 1 },
    });
  });

  it('prints a wrapped Node error with its code once and one full stop', async () => {
    const r = await cli(
      ['tenants', 'list'],
      schemaEnv({ TENANTRY_MIGRATIONS_DIR: '/nonexistent/dir' }),
    );
    expect(r.code).to.equal(1);
    const line = oneLine(r);
    expect(line).to.match(
      /^tenantry: ENOENT: no such file or directory, scandir '\/nonexistent\/dir'\.$/,
    );
    expect(line.match(/ENOENT/g)).to.have.length(1);
  });
});
