import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli as cli } from '../support/spawn-cli';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
}

describe('tenantry CLI: mixed fleets (--tier) and data residency (--region)', function () {
  this.timeout(120_000);
  const run = Date.now().toString(36);
  let args: string[];
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const url = testServer().urlFor(await createScratchDatabase('cli_tiers'));
    const { hostname, port } = new URL(url);
    const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-cli-tiers-'));
    writeFileSync(
      path.join(dir, '001_documents.js'),
      "exports.up = (k) => k.schema.createTable('documents', (t) => { t.increments('id'); t.text('tenant_id'); });\n",
    );
    const config = path.join(dir, 'tenancy.yaml');
    writeFileSync(
      config,
      [
        'tenancy:',
        '  isolation:',
        '    mode: row',
        '    tiers: true',
        '    centralRegion: eu',
        `    schemaPrefix: ct${run}_`,
        '    tenantTables: [documents]',
        '    database:',
        `      prefix: ct${run}_`,
        '      servers:',
        `        eu-1: { host: ${hostname}, port: ${port || 5432}, region: eu }`,
        `        us-1: { host: ${hostname}, port: ${port || 5432}, region: us }`,
        '',
      ].join('\n'),
    );
    args = ['--config', config, '--migrations', dir];
    env = { DATABASE_URL: url };
  });

  it('creates tenants on each tier, lists their tier and migrates the mixed fleet', async () => {
    const shared = await cli([...args, 'migrate'], env);
    expect(shared.code, shared.stderr).to.equal(0);
    for (const [id, extra] of [
      ['free', []],
      ['paid', ['--tier', 'schema']],
      ['ent', ['--tier', 'database', '--database-server', 'eu-1', '--region', 'eu']],
    ] as const) {
      const created = await cli([...args, 'tenants', 'create', id, ...extra], env);
      expect(created.code, created.stderr).to.equal(0);
    }
    const list = await cli([...args, 'tenants', 'list'], env);
    expect(list.stdout).to.equal(
      'ent\tactive\tdatabase\tent\nfree\tactive\trow\tfree\npaid\tactive\tschema\tpaid\n',
    );
    const shown = JSON.parse((await cli([...args, 'tenants', 'show', 'ent'], env)).stdout) as {
      isolation: unknown;
    };
    expect(shown.isolation).to.deep.equal({
      tier: 'database',
      region: 'eu',
      database: { database: `ct${run}_ent`, server: 'eu-1' },
    });
    expect(await databaseExists(`ct${run}_ent`)).to.equal(true);
    const status = await cli([...args, 'migrate', 'status'], env);
    expect(status.code, status.stdout).to.equal(0);
    expect(status.stdout).to.include('*\t001_documents.js\tcurrent');
    expect(status.stdout).to.include('paid\t001_documents.js\tcurrent');
    expect(status.stdout).to.include('ent\t001_documents.js\tcurrent');
    expect(status.stdout).not.to.include('free\t');
    for (const id of ['free', 'paid', 'ent']) {
      const purged = await cli([...args, 'tenants', 'delete', id, '--purge', '--yes'], env);
      expect(purged.code, purged.stderr).to.equal(0);
    }
    expect(await databaseExists(`ct${run}_ent`)).to.equal(false);
  });

  it('refuses a server outside the tenant region (TENANT_REGION_MISMATCH) and creates nothing', async () => {
    const refused = await cli(
      [
        ...args,
        '--json',
        'tenants',
        'create',
        'euus',
        '--tier',
        'database',
        '--database-server',
        'us-1',
        '--region',
        'eu',
      ],
      env,
    );
    expect(refused.code).to.not.equal(0);
    expect(JSON.parse(refused.stdout)).to.have.nested.property(
      'error.code',
      'TENANT_REGION_MISMATCH',
    );
    const shown = await cli([...args, 'tenants', 'show', 'euus'], env);
    expect(shown.code).to.not.equal(0);
    expect(await databaseExists(`ct${run}_euus`)).to.equal(false);
    const rowUs = await cli(
      [...args, '--json', 'tenants', 'create', 'rowus', '--region', 'us'],
      env,
    );
    expect(JSON.parse(rowUs.stdout)).to.have.nested.property(
      'error.code',
      'TENANT_REGION_MISMATCH',
    );
  });

  it('refuses bad --tier, --region and a server for a row-tier tenant as bad usage (exit 2)', async () => {
    const bad = [
      ['tenants', 'create', 'x1', '--tier', 'cluster'],
      ['tenants', 'create', 'x2', '--region', 'eu west'],
      ['tenants', 'create', 'x3', '--database-server', 'eu-1'],
    ];
    for (const argv of bad) {
      const r = await cli([...args, ...argv], env);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).to.equal(2);
    }
    const single = await cli(['tenants', 'create', 'x4', '--tier', 'schema'], env);
    expect(single.code).to.equal(2);
    expect(single.stderr).to.match(/Turn tiers on/);
  });
});
