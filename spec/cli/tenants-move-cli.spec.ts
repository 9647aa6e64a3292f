import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { spawnCli } from '../support/spawn-cli';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

describe('tenantry tenants move', function () {
  this.timeout(120_000);
  let url: string;
  let base: string[];
  const run = randomBytes(3).toString('hex');
  const id = `mv-${run}`;
  const database = `tenant_mv_${run}`;

  before(async () => {
    url = testServer().urlFor(await createScratchDatabase('climove'));
    const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-move-cli-'));
    writeFileSync(
      path.join(dir, '001_notes.js'),
      "exports.up = (k) => k.schema.createTable('notes', (t) => { t.increments('id'); t.text('body'); });\n",
    );
    writeFileSync(
      path.join(dir, 'tenancy.yaml'),
      'tenancy:\n  isolation:\n    mode: schema\n    tiers: true\n    schemaPrefix: mv_\n',
    );
    base = ['--config', path.join(dir, 'tenancy.yaml'), '--migrations', dir];
  });
  after(async () => {
    await adminQuery(`drop database if exists "${database}" with (force)`).catch(() => undefined);
  });

  it('exits 2 for bad move options, before touching anything', async () => {
    const cases: [string[], RegExp][] = [
      [['tenants', 'move', id], /--tier row, schema or database/],
      [['tenants', 'move', id, '--tier', 'cloud'], /--tier row, schema or database/],
      [['tenants', 'move', id, '--tier', 'schema', '--resume'], /Cannot combine/],
      [['tenants', 'move', id, '--rollback', '--cleanup'], /Cannot combine/],
      [['tenants', 'move', id, '--tier', 'row', '--server', 'eu-1'], /needs --tier database/],
      [
        ['tenants', 'move', id, '--resume', '--keep-source'],
        /Cannot combine|--keep-source without --tier/,
      ],
      [['tenants', 'move', id, '--cleanup', '--keep-source'], /--keep-source without --tier/],
    ];
    for (const [args, message] of cases) {
      const r = await spawnCli([...base, ...args], { DATABASE_URL: url });
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(message);
    }
    // With tiers off every tenant lives on the one mode's tier: a move to another tier could not be served.
    const single = await spawnCli([...base, 'tenants', 'move', id, '--tier', 'database'], {
      DATABASE_URL: url,
      TENANCY_ISOLATION_TIERS: 'false',
    });
    expect(single.code, single.stderr).to.equal(2);
    expect(single.stderr).to.match(/Turn tiers on/);
  });

  it('moves a schema tenant to its own database keeping the source, then cleans the source up', async () => {
    const env = { DATABASE_URL: url };
    expect((await spawnCli([...base, 'tenants', 'create', id], env)).code).to.equal(0);
    const moved = await spawnCli(
      [...base, '--json', 'tenants', 'move', id, '--tier', 'database', '--keep-source'],
      env,
    );
    expect(moved.code, moved.stderr).to.equal(0);
    const move = JSON.parse(moved.stdout) as { status: string; step: string };
    expect(move).to.include({ status: 'kept', step: 'switched' });
    const schema = `mv_${id.replace(/-/g, '_')}`;
    const kept = await adminQuery('select 1 from pg_database where datname = $1', [database]);
    expect(kept.rows).to.have.length(1);
    const again = await spawnCli([...base, 'tenants', 'move', id, '--tier', 'schema'], env);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.match(/TENANT_STATE_INVALID/);
    const cleaned = await spawnCli([...base, 'tenants', 'move', id, '--cleanup'], env);
    expect(cleaned.code, cleaned.stderr).to.equal(0);
    expect(cleaned.stdout).to.match(/move succeeded/);
    const show = await spawnCli([...base, '--json', 'tenants', 'show', id], env);
    expect(JSON.parse(show.stdout)).to.deep.include({ status: 'active' });
    const r = await spawnCli([...base, 'tenants', 'move', id, '--resume'], env);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/TENANT_NOT_FOUND/);
    const client = new pg.Client(url);
    await client.connect();
    try {
      const gone = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
      expect(gone.rows, 'the kept source schema is dropped by --cleanup').to.deep.equal([]);
    } finally {
      await client.end();
    }
  });
});
