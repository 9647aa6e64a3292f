import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import {
  MOVE_STEPS,
  TenantMoveError,
  runWithTenant,
  tenantMovingError,
  type TenantMoveEvent,
  type TenantMoveStep,
  type TenantTier,
} from '../../../src/index';
import { startEmbeddedPostgres } from '../../../demo/embedded-postgres';
import { seedTenant, startMoveFixture, type MoveFixture } from './move-fixture';

const CHILD = path.join(__dirname, 'move-child.js');

describe('TenantManager.move() faults: killed, target down, checksum mismatch', function () {
  this.timeout(300_000);
  let f: MoveFixture;
  let n = 0;
  const fresh = async (rows = 200) => {
    n += 1;
    const id = `fault-${n}-${f.run}`;
    await seedTenant(f, id, rows);
    return id;
  };

  before(async () => {
    f = await startMoveFixture();
  });
  after(async () => {
    await f?.close();
  });

  function killedAt(id: string, tier: TenantTier, server: string | undefined, step: string) {
    return new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [CHILD, f.centralUrl, JSON.stringify(f.servers), id, tier, server ?? '-', step],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (signal === 'SIGKILL') resolve(null);
        else reject(new Error(`the mover was not killed at ${step} (exit ${code}): ${err}`));
      });
    });
  }

  async function get(id: string): Promise<{ status: number; titles: string[] }> {
    const res = await fetch(`${f.baseUrl}/tasks`, { headers: { 'x-tenant-id': id } });
    const body = (await res.json()) as { title: string }[];
    return { status: res.status, titles: Array.isArray(body) ? body.map((r) => r.title) : [] };
  }

  async function post(id: string, title: string): Promise<Response> {
    return fetch(`${f.baseUrl}/tasks`, {
      method: 'POST',
      headers: { 'x-tenant-id': id, 'content-type': 'application/json' },
      body: JSON.stringify({ title }),
    });
  }

  async function targetDatabaseExists(id: string): Promise<boolean> {
    const { rows } = await f.query(
      'second',
      'postgres',
      'select 1 from pg_database where datname = $1',
      [`tenant_${id.replace(/-/g, '_')}`],
    );
    return rows.length > 0;
  }

  async function schemaExists(name: string): Promise<boolean> {
    const { rows } = (await f.knex.raw('select 1 from pg_namespace where nspname = ?', [name])) as {
      rows: unknown[];
    };
    return rows.length > 0;
  }

  const killSteps: TenantMoveStep[] = MOVE_STEPS.filter((s) => s !== 'source_removed');

  for (const step of killSteps) {
    it(`resumes a move to the schema tier whose mover was killed after "${step}"`, async () => {
      const id = await fresh();
      await killedAt(id, 'schema', undefined, step);
      const open = await f.manager.moves(id);
      expect(open[0]).to.include({ step, status: 'running' });
      // Killed or not, the tenant is served: reads always, from one side.
      const during = await get(id);
      expect(during.status).to.equal(200);
      expect(during.titles).to.have.length(200);
      const frozen = ['frozen', 'applied', 'verified'].includes(step);
      if (frozen) {
        const refused = await post(id, `${id}:during`);
        expect(refused.status).to.equal(503);
        expect(refused.headers.get('retry-after')).to.equal('1');
        // And at the database, for a writer that has not seen the status yet.
        const record = await f.manager.get(id);
        const project = (await f.knex('projects').where({ tenant_id: id }).first('id')) as {
          id: string;
        };
        const error = await runWithTenant({ ...record, status: 'active' }, () =>
          f.db('tasks').insert({ title: `${id}:stale`, project_id: project.id }),
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((error as { code?: string }).code).to.equal('T1M01');
        expect(tenantMovingError(error)).to.include({ status: 503, code: 'TENANT_UNAVAILABLE' });
      }
      const move = await f.manager.resumeMove(id);
      expect(move).to.include({ status: 'succeeded', step: 'source_removed' });
      const record = await f.manager.get(id);
      expect(record).to.include({ status: 'active' });
      expect(record.isolation.tier).to.equal('schema');
      const after = await get(id);
      expect(after.titles).to.have.length(200);
      const left = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
      expect(Number(left[0]?.n), 'rows left on the source').to.equal(0);
      expect((await post(id, `${id}:after`)).status).to.equal(201);
    });
  }

  for (const step of killSteps.filter((s) => s !== 'switched')) {
    it(`rolls back a move to the second server killed after "${step}": the tenant stays on its source, writable`, async () => {
      const id = await fresh();
      await killedAt(id, 'database', 'second', step);
      const move = await f.manager.rollbackMove(id);
      expect(move.status).to.equal('rolled_back');
      const record = await f.manager.get(id);
      expect(record).to.include({ status: 'active' });
      expect(record.isolation.tier ?? 'row').to.equal('row');
      expect((await get(id)).titles).to.have.length(200);
      expect((await post(id, `${id}:after`)).status).to.equal(201);
      expect(await targetDatabaseExists(id), 'the target database is dropped').to.equal(false);
      expect(await schemaExists('tenantry_move'), 'the capture is removed').to.equal(false);
    });
  }

  it('refuses to roll back a switched move and finishes it on resume instead', async () => {
    const id = await fresh();
    await killedAt(id, 'schema', undefined, 'switched');
    const refused = await f.manager.rollbackMove(id).catch((e: unknown) => e);
    expect(refused).to.include({ code: 'TENANT_STATE_INVALID', status: 409 });
    expect((await f.manager.resumeMove(id)).status).to.equal('succeeded');
  });

  it('rolls back on a checksum mismatch (a target row altered between copy and verify): the tenant ends on its source, served', async () => {
    const id = await fresh();
    const schema = `tenant_${id.replace(/-/g, '_')}`;
    const failed: TenantMoveEvent[] = [];
    const stopFailed = f.manager.events.subscribe('tenant.move_failed', (e) => {
      failed.push(e);
    });
    const stop = f.manager.events.subscribe('tenant.move_checkpoint', async ({ step, tenant }) => {
      if (tenant.id === id && step === 'applied') {
        await f.knex.raw(
          `update ??.tasks set title = title || '!' where id = (select id from ??.tasks limit 1)`,
          [schema, schema],
        );
      }
    });
    const error = await f.manager.move(id, { tier: 'schema' }).catch((e: unknown) => e);
    stop();
    stopFailed();
    expect(error).to.be.instanceOf(TenantMoveError);
    expect(error).to.include({ code: 'TENANT_MOVE_FAILED', status: 500 });
    expect((error as Error).message).to.match(/verification found table tasks different/);
    expect(failed.map((e) => e.rolledBack)).to.deep.equal([true]);
    const record = await f.manager.get(id);
    expect(record.status).to.equal('active');
    expect(record.isolation.tier ?? 'row').to.equal('row');
    expect(await schemaExists(schema), 'the target schema is dropped').to.equal(false);
    expect((await get(id)).titles.filter((t) => t.endsWith('!'))).to.deep.equal([]);
    expect((await post(id, `${id}:after`)).status).to.equal(201);
    expect((await f.manager.moves(id))[0]).to.include({ status: 'rolled_back' });
  });

  it('refuses bad moves with coded errors before touching anything', async () => {
    const id = await fresh(1);
    const bad = async (p: Promise<unknown>) => p.catch((e: unknown) => e);
    expect(await bad(f.manager.move(id, { tier: 'cloud' as TenantTier }))).to.be.instanceOf(
      TypeError,
    );
    expect(await bad(f.manager.move(id, { tier: 'row' }))).to.include({
      code: 'TENANT_STATE_INVALID',
    });
    expect(await bad(f.manager.move(id, { tier: 'database', server: 'nowhere' }))).to.be.instanceOf(
      TypeError,
    );
    expect(await bad(f.manager.move(id, { tier: 'schema', server: 'second' }))).to.be.instanceOf(
      TypeError,
    );
    expect(await bad(f.manager.move(id, { tier: 'schema', drainMs: -1 }))).to.be.instanceOf(
      TypeError,
    );
    expect(await bad(f.manager.resumeMove(id))).to.include({ code: 'TENANT_NOT_FOUND' });
    await f.manager.suspend(id);
    expect(await bad(f.manager.move(id, { tier: 'schema' }))).to.include({
      code: 'TENANT_STATE_INVALID',
    });
    expect(await f.manager.moves(id)).to.deep.equal([]);
  });

  it('refuses to move a region-pinned tenant to storage outside its region (409 TENANT_REGION_MISMATCH), recording nothing', async () => {
    const id = await fresh(1);
    const record = await f.manager.get(id);
    await f.store.update(id, { isolation: { ...record.isolation, region: 'mars' } });
    const bad = async (p: Promise<unknown>) => p.catch((e: unknown) => e);
    // The second server has no region label, so it is outside every region; so is the unlabelled central server.
    expect(await bad(f.manager.move(id, { tier: 'database', server: 'second' }))).to.include({
      status: 409,
      code: 'TENANT_REGION_MISMATCH',
    });
    expect(await bad(f.manager.move(id, { tier: 'schema' }))).to.include({
      code: 'TENANT_REGION_MISMATCH',
    });
    expect(await f.manager.moves(id)).to.deep.equal([]);
    expect(await f.manager.get(id)).to.include({ status: 'active' });
    expect((await get(id)).titles).to.have.length(1);
  });

  it('removes the capture without deadlocking a writer whose transaction holds a source table (regression: 40P01 after the switch)', async () => {
    const id = await fresh(50);
    const other = await fresh(1);
    const project = (await f.knex('projects').where({ tenant_id: other }).first('id')) as {
      id: string;
    };
    let writer: Promise<void> | undefined;
    const off = f.manager.events.subscribe('tenant.move_checkpoint', async ({ step, tenant }) => {
      if (tenant.id !== id || step !== 'switched') return;
      // Another tenant's transaction takes the tasks table (no row, so no trigger yet) and, once the
      // mover is removing the capture, writes a row: the trigger then reads the capture's state.
      let locked!: () => void;
      const ready = new Promise<void>((r) => (locked = r));
      writer = f.knex.transaction(async (trx) => {
        await trx.raw('update tasks set n = n where false');
        locked();
        await new Promise((r) => setTimeout(r, 400));
        await trx('tasks').insert({
          tenant_id: other,
          project_id: project.id,
          title: `${other}:late`,
        });
      });
      await ready;
    });
    try {
      const move = await f.manager.move(id, { tier: 'schema', drainMs: 0 });
      expect(move).to.include({ status: 'succeeded', step: 'source_removed' });
      await writer;
    } finally {
      off();
    }
    const late = await f.knex('tasks').where({ tenant_id: other, title: `${other}:late` });
    expect(late, "the other tenant's write").to.have.length(1);
  });

  it('refuses a TRUNCATE of a table holding a tenant being moved (T1M01, 503), which no row trigger could capture, on a shared and on an own table', async () => {
    const id = await fresh(20);
    const other = await fresh(5);
    const schema = `tenant_${id.replace(/-/g, '_')}`;
    const truncate = (table: string) =>
      f.knex.raw(`truncate ${table} cascade`).then(
        () => undefined,
        (e: unknown) => e,
      );
    const refusals: unknown[] = [];
    const off = f.manager.events.subscribe('tenant.move_checkpoint', async ({ step, tenant }) => {
      if (tenant.id !== id || step !== 'copied') return;
      const record = await f.manager.get(id);
      refusals.push(
        await truncate(record.isolation.tier === 'schema' ? `${schema}.tasks` : 'tasks'),
      );
    });
    try {
      // Row → schema: the source is the shared tables.
      expect(await f.manager.move(id, { tier: 'schema' })).to.include({ status: 'succeeded' });
      // Schema → database: the source is the tenant's own schema.
      expect(await f.manager.move(id, { tier: 'database', server: 'second' })).to.include({
        status: 'succeeded',
      });
    } finally {
      off();
    }
    expect(refusals).to.have.length(2);
    for (const refusal of refusals) {
      expect(refusal).to.include({ code: 'T1M01' });
      expect((refusal as Error).message).to.match(
        /Cannot truncate table tasks because tenant\(s\) .* being moved/,
      );
      expect(tenantMovingError(refusal)).to.include({ status: 503, code: 'TENANT_UNAVAILABLE' });
    }
    expect((await get(id)).titles, 'the moved tenant lost nothing').to.have.length(20);
    expect((await get(other)).titles, 'nor did the tenant sharing the tables').to.have.length(5);
    // Once its moves are done, the tenant leaves nothing in the capture (its triggers on the shared
    // tables stay only while another tenant's move uses them).
    if (await schemaExists('tenantry_move')) {
      const state = (await f.knex.raw('select 1 from tenantry_move.state where tenant = ?', [
        id,
      ])) as {
        rows: unknown[];
      };
      expect(state.rows).to.deep.equal([]);
    }
    expect(await truncate(`${schema}.tasks`))
      .to.have.property('message')
      .that.matches(/does not exist/);
  });

  // Last: it stops the second server.
  it('keeps the tenant served on its source when the target server stops as the copy starts, and rolls back once it is back', async () => {
    const id = await fresh(2000);
    const stop = f.manager.events.subscribe('tenant.move_checkpoint', async ({ step, tenant }) => {
      if (tenant.id === id && step === 'capture_installed') await f.second.stop();
    });
    const error = await f.manager
      .move(id, { tier: 'database', server: 'second' })
      .catch((e: unknown) => e);
    stop();
    expect(error).to.include({ code: 'TENANT_MOVE_FAILED' });
    const record = await f.manager.get(id);
    expect(record).to.include({ status: 'active' });
    expect(record.isolation.tier ?? 'row').to.equal('row');
    expect((await get(id)).titles).to.have.length(2000);
    expect((await post(id, `${id}:while-down`)).status).to.equal(201);
    const open = (await f.manager.moves(id))[0];
    expect(open?.status).to.equal('failed');
    // The server comes back (same port): the rollback drops what the move left there.
    const back = await startEmbeddedPostgres({
      name: path.basename(f.second.dataDir),
      port: f.second.port,
    });
    try {
      const move = await f.manager.rollbackMove(id);
      expect(move.status).to.equal('rolled_back');
      expect(await targetDatabaseExists(id), 'the target database is dropped').to.equal(false);
      expect((await get(id)).titles).to.have.length(2001);
    } finally {
      await back.stop();
    }
  });
  // Last too: it restarts the second server, stops it in the middle of the COPY, and starts it again.
  it('keeps the tenant served on its source when the target server stops in the middle of the COPY, and rolls back once it is back', async () => {
    const id = await fresh(60_000);
    const where = { name: path.basename(f.second.dataDir), port: f.second.port };
    await f.second.stop(); // already stopped by the test before, when the whole file runs
    let up = await startEmbeddedPostgres(where);
    let sawCopy = false;
    let watching: Promise<void> | undefined;
    const off = f.manager.events.subscribe('tenant.move_checkpoint', ({ step, tenant }) => {
      if (tenant.id !== id || step !== 'capture_installed') return;
      // Watch the target for the COPY ... FROM STDIN of this move, then stop the server under it.
      watching = (async () => {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          const active = await f
            .query(
              'second',
              'postgres',
              `select count(*)::int as n from pg_stat_activity
                where state = 'active' and query ilike 'copy %tasks% from stdin%'`,
            )
            .then((r) => (r.rows[0] as { n: number }).n)
            .catch(() => 0);
          if (active > 0) {
            sawCopy = true;
            await up.stop();
            return;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
    });
    const started = Date.now();
    const error = await f.manager
      .move(id, { tier: 'database', server: 'second' })
      .catch((e: unknown) => e);
    off();
    await watching;
    expect(sawCopy, 'the target server was stopped while it ran the COPY').to.equal(true);
    expect(error).to.be.instanceOf(TenantMoveError);
    expect(error).to.include({ code: 'TENANT_MOVE_FAILED' });
    expect((error as Error).message).to.match(/stays on its source/);
    // It fails as soon as the server is gone: no hang on the dead connection or the half-read source COPY.
    expect(Date.now() - started, 'ms from the move to its failure').to.be.below(30_000);
    const record = await f.manager.get(id);
    expect(record).to.include({ status: 'active' });
    expect(record.isolation.tier ?? 'row').to.equal('row');
    const open = (await f.manager.moves(id))[0];
    expect(open).to.include({ status: 'failed', step: 'capture_installed' });
    // Served from the source: every row readable, writes accepted (the capture is gone with the failed move).
    const kept = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
    expect(Number(kept[0]?.n)).to.equal(60_000);
    expect((await post(id, `${id}:while-down`)).status).to.equal(201);
    up = await startEmbeddedPostgres(where);
    try {
      const move = await f.manager.rollbackMove(id);
      expect(move.status).to.equal('rolled_back');
      expect(await targetDatabaseExists(id), 'the half-copied target database is dropped').to.equal(
        false,
      );
      if (await schemaExists('tenantry_move')) {
        const state = (await f.knex.raw('select 1 from tenantry_move.state where tenant = ?', [
          id,
        ])) as { rows: unknown[] };
        expect(state.rows, 'the capture of the tenant is removed').to.deep.equal([]);
      }
      const after = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
      expect(Number(after[0]?.n)).to.equal(60_001);
      expect((await post(id, `${id}:after`)).status).to.equal(201);
    } finally {
      await up.stop();
    }
  });
});
