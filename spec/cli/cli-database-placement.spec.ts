import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli as cli, type CliRun } from '../support/spawn-cli';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

function configFile(yaml: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-cli-placement-'));
  const file = path.join(dir, 'tenancy.yaml');
  writeFileSync(file, yaml);
  return file;
}

function oneLine(r: CliRun): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).to.have.length(1);
  return lines[0] as string;
}

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
}

describe('tenantry CLI: database prefix and server from the config the app reads', function () {
  this.timeout(90_000);
  let url: string;
  let port: string;
  const run = Date.now().toString(36);

  before(async () => {
    url = testServer().urlFor(await createScratchDatabase('cli_placement'));
    port = new URL(url).port || '5432';
  });

  const purge = async (id: string, args: readonly string[], env: NodeJS.ProcessEnv) => {
    const r = await cli([...args, 'tenants', 'delete', id, '--purge', '--yes'], env);
    expect(r.code, r.stderr).to.equal(0);
  };

  it('names tenant databases with tenancy.isolation.database.prefix from --config', async () => {
    const prefix = `cfgp${run}_`;
    const config = configFile(
      `tenancy:\n  isolation:\n    mode: database\n    database:\n      prefix: ${prefix}\n`,
    );
    const env = { DATABASE_URL: url };
    const created = await cli(['--config', config, '--json', 'tenants', 'create', 'pco'], env);
    expect(created.code, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({
      status: 'active',
      isolation: { database: { database: `${prefix}pco` } },
    });
    expect(await databaseExists(`${prefix}pco`)).to.equal(true);
    await purge('pco', ['--config', config], env);
    expect(await databaseExists(`${prefix}pco`)).to.equal(false);
  });

  it('takes the prefix from TENANCY_DB_PREFIX over the file, and --database-prefix over both', async () => {
    const config = configFile(
      `tenancy:\n  isolation:\n    mode: database\n    database:\n      prefix: file${run}_\n`,
    );
    const env = { DATABASE_URL: url, TENANCY_DB_PREFIX: `envp${run}_` };
    const fromEnv = await cli(['--config', config, '--json', 'tenants', 'create', 'eco'], env);
    expect(fromEnv.code, fromEnv.stderr).to.equal(0);
    expect(JSON.parse(fromEnv.stdout)).to.deep.include({
      isolation: { database: { database: `envp${run}_eco` } },
    });
    const flag = ['--config', config, '--database-prefix', `flag${run}_`];
    const fromFlag = await cli([...flag, '--json', 'tenants', 'create', 'fco'], env);
    expect(fromFlag.code, fromFlag.stderr).to.equal(0);
    expect(JSON.parse(fromFlag.stdout)).to.deep.include({
      isolation: { database: { database: `flag${run}_fco` } },
    });
    expect(await databaseExists(`flag${run}_fco`)).to.equal(true);
    await purge('eco', ['--config', config], env);
    await purge('fco', flag, env);
    expect(await databaseExists(`envp${run}_eco`)).to.equal(false);
    expect(await databaseExists(`flag${run}_fco`)).to.equal(false);
  });

  it('refuses a bad configured prefix as a config error (exit 1, like any invalid config) in one escaped line naming the key', async () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ TENANCY_DB_PREFIX: 'Bad-Prefix' }, /tenancy\.isolation\.database\.prefix="Bad-Prefix"/],
      [
        { TENANCY_DB_PREFIX: 'x\ntenantry: forged line' },
        /tenancy\.isolation\.database\.prefix="x\\ntenantry: forged line" because/,
      ],
    ];
    for (const [extra, message] of cases) {
      const r = await cli(['tenants', 'list'], { DATABASE_URL: url, ...extra });
      expect(r.code, r.stderr).to.equal(1);
      expect(oneLine(r)).to.match(/^tenantry: TENANCY_CONFIG_INVALID: Cannot use /);
      expect(oneLine(r)).to.match(message);
      expect(oneLine(r)).not.to.match(/\.\.$/);
    }
  });

  it('places a tenant on a configured server with --database-server, and purges it there', async () => {
    const prefix = `srv${run}_`;
    const config = configFile(
      `tenancy:\n  isolation:\n    mode: database\n    database:\n      prefix: ${prefix}\n      servers:\n        eu1: { host: localhost, port: ${port} }\n`,
    );
    const env = { DATABASE_URL: url };
    const created = await cli(
      ['--config', config, '--json', 'tenants', 'create', 'onsrv', '--database-server', 'eu1'],
      env,
    );
    expect(created.code, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({
      status: 'active',
      isolation: { database: { database: `${prefix}onsrv`, server: 'eu1' } },
    });
    expect(await databaseExists(`${prefix}onsrv`)).to.equal(true);
    await purge('onsrv', ['--config', config], env);
    expect(await databaseExists(`${prefix}onsrv`)).to.equal(false);
  });

  it('refuses --database-server with exit 2 when the name is not configured, and creates nothing', async () => {
    const config = configFile(
      `tenancy:\n  isolation:\n    mode: database\n    database:\n      servers:\n        eu1: { host: localhost, port: ${port} }\n`,
    );
    const env = { DATABASE_URL: url };
    const cases: [string[], RegExp][] = [
      [
        ['--config', config, 'tenants', 'create', 'nope', '--database-server', 'us9'],
        /^tenantry: USAGE: Cannot place a tenant on server "us9" because it is not configured\. Use one of "eu1", or add it to tenancy\.isolation\.database\.servers\.$/,
      ],
      [
        ['tenants', 'create', 'nope', '--database-server', 'eu1'],
        /server "eu1" because it is not configured\. Add it to tenancy\.isolation\.database\.servers in the config file\.$/,
      ],
      [
        ['--config', config, 'tenants', 'create', 'nope', '--database-server', 'eu\n1'],
        /--database-server "eu\\n1" because it is not a server name/,
      ],
      [
        ['--config', config, 'tenants', 'create', 'nope', '--database-server'],
        /option "--database-server" because it needs a value/,
      ],
      [
        [
          '--config',
          config,
          'tenants',
          'create',
          'nope',
          '--database-server',
          'eu1',
          '--database-host',
          'localhost',
        ],
        /--database-server and --database-host\/--database-port together/,
      ],
      [['tenants', 'list', '--database-server', 'eu1'], /does not take it/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args, { ...env, TENANCY_ISOLATION: 'database' });
      expect(r.code, JSON.stringify(args)).to.equal(2);
      expect(oneLine(r), JSON.stringify(args)).to.match(message);
      expect(r.stdout).to.equal('');
    }
    const rowMode = await cli(['tenants', 'create', 'nope', '--database-server', 'eu1'], env);
    expect(rowMode.code).to.equal(2);
    expect(oneLine(rowMode)).to.match(/because the isolation mode is row/);
    const list = await cli(['--json', 'tenants', 'list'], env);
    expect(
      (JSON.parse(list.stdout) as { id: string }[]).map((t) => t.id),
      'no tenant "nope" was created',
    ).to.not.include('nope');
  });

  it('names the Node error of a config file that cannot be read, with its code once', async () => {
    const missing = path.join(tmpdir(), `tenantry-missing-${run}.yaml`);
    const r = await cli(['--json', '--config', missing, 'tenants', 'list'], { DATABASE_URL: url });
    expect(r.code).to.equal(1);
    const line = oneLine(r);
    expect(line).to.match(
      /^tenantry: TENANCY_CONFIG_INVALID: Cannot read tenancy config file ".*" because ENOENT: no such file or directory, open '.*'\. Check the path\.$/,
    );
    expect(line.match(/ENOENT/g)).to.have.length(1);
    const json = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(json.error.code).to.equal('TENANCY_CONFIG_INVALID');
    expect(json.error.message).to.match(/because ENOENT: no such file/);
  });
});
