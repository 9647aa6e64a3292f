import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TenantMove, TenantMoveEvent } from '../../../src/index';
import { seedTenant, startMoveFixture, type MoveFixture } from './move-fixture';
import { startLoad, type LoadResult } from './move-load';

describe('TenantManager.move() under concurrent load, across two PostgreSQL servers', function () {
  this.timeout(240_000);
  let f: MoveFixture;
  const t = (name: string) => `${name}-${f.run}`;
  const events: { name: string; event: TenantMoveEvent }[] = [];

  before(async () => {
    f = await startMoveFixture();
    for (const name of ['mover-a', 'mover-b', 'calm-c', 'calm-d'])
      await seedTenant(f, t(name), 300);
    for (const name of [
      'tenant.move_started',
      'tenant.move_checkpoint',
      'tenant.move_succeeded',
      'tenant.move_failed',
    ] as const) {
      f.manager.events.subscribe(name, (event) => {
        events.push({ name, event });
      });
    }
  });
  after(async () => {
    await f?.close();
  });

  async function titlesOf(tenant: string): Promise<Map<string, number>> {
    const res = await fetch(`${f.baseUrl}/tasks`, { headers: { 'x-tenant-id': tenant } });
    expect(res.status).to.equal(200);
    const rows = (await res.json()) as { id: string; title: string; n: number }[];
    return new Map(rows.map((r) => [r.title, r.n]));
  }

  async function idsOf(tenant: string): Promise<Map<string, number>> {
    const res = await fetch(`${f.baseUrl}/tasks`, { headers: { 'x-tenant-id': tenant } });
    const rows = (await res.json()) as { id: string; n: number }[];
    return new Map(rows.map((r) => [r.id, r.n]));
  }

  // The move under load, then every guarantee checked.
  async function moveUnderLoad(
    tenant: string,
    options: Parameters<MoveFixture['manager']['move']>[1],
  ): Promise<{ move: TenantMove; load: LoadResult }> {
    const everyone = ['mover-a', 'mover-b', 'calm-c', 'calm-d'].map(t);
    const load = startLoad(f.baseUrl, everyone);
    await sleep(300);
    let frozenFrom = 0;
    let switchedAt = 0;
    const stopFreeze = f.manager.events.subscribe('tenant.move_checkpoint', ({ step }) => {
      if (step === 'copied') frozenFrom = Date.now();
      if (step === 'switched') switchedAt = Date.now();
    });
    const before = events.length;
    const move = await f.manager.move(tenant, options);
    stopFreeze();
    await sleep(300);
    const result = await load.stop();

    expect(move.status).to.equal('succeeded');
    expect(result.writes).to.be.greaterThan(20);
    expect(result.foreignRows, 'rows of another tenant').to.deep.equal([]);
    expect(result.failures.filter((x) => x.op === 'read')).to.deep.equal([]);
    for (const failure of result.failures) {
      expect(failure.tenant, `only the moving tenant's writes fail: ${failure.body}`).to.equal(
        tenant,
      );
      expect(failure.status, failure.body).to.equal(503);
      expect(JSON.parse(failure.body)).to.include({ code: 'TENANT_UNAVAILABLE' });
      expect(failure.retryAfter).to.equal('1');
      // Only in the freeze (and a request already past its lookup when the switch landed).
      expect(failure.at).to.be.within(frozenFrom, switchedAt + 1000);
    }
    for (const who of everyone) {
      const now = await titlesOf(who);
      const lost = [...(result.written.get(who) ?? [])].filter((title) => !now.has(title));
      expect(lost, `acknowledged writes of ${who} missing`).to.deep.equal([]);
      const ids = await idsOf(who);
      for (const [id, n] of result.updated.get(who) ?? []) {
        expect(ids.get(id), `update of ${who}/${id}`).to.equal(n);
      }
      expect([...now.keys()].filter((k) => k.includes(':seed-'))).to.have.length(300);
    }
    const mine = events.slice(before).filter((e) => e.event.tenant.id === tenant);
    expect(mine[0]?.name).to.equal('tenant.move_started');
    expect(mine.at(-1)?.name).to.equal('tenant.move_succeeded');
    expect(
      mine.filter((e) => e.name === 'tenant.move_checkpoint').map((e) => e.event.step),
    ).to.deep.equal([
      'target_created',
      'capture_installed',
      'copied',
      'frozen',
      'applied',
      'verified',
      'switched',
    ]);
    return { move, load: result };
  }

  it('moves a tenant row → schema: 0 cross-tenant rows, 0 lost writes, reads never fail, writes 503 only in the freeze', async () => {
    const id = t('mover-a');
    const { move } = await moveUnderLoad(id, { tier: 'schema' });
    const record = await f.manager.get(id);
    expect(record).to.deep.include({ status: 'active' });
    expect(record.isolation).to.deep.include({
      tier: 'schema',
      schema: `tenant_${id.replace(/-/g, '_')}`,
    });
    const left = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
    expect(Number(left[0]?.n)).to.equal(0);
    expect(move.checkpoint.freezeMs).to.be.a('number');
    const schemaRows = await f.knex
      .withSchema(record.isolation.schema as string)
      .from('tasks')
      .count({ n: '*' });
    expect(Number(schemaRows[0]?.n)).to.be.greaterThan(300);
    // No capture left behind on the central database.
    const capture = await f.knex.raw(`select 1 from pg_namespace where nspname = 'tenantry_move'`);
    expect(capture.rows).to.deep.equal([]);
  });

  it('moves a tenant row → database on the same server', async () => {
    const id = t('mover-b');
    await moveUnderLoad(id, { tier: 'database' });
    const record = await f.manager.get(id);
    expect(record.isolation.tier).to.equal('database');
    const database = record.isolation.database?.database as string;
    const { rows } = await f.query('main', database, 'select count(*)::int as n from tasks');
    expect(rows[0].n).to.be.greaterThan(300);
    const left = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
    expect(Number(left[0]?.n)).to.equal(0);
  });

  it('moves a tenant schema → database on the second server', async () => {
    const id = t('mover-a');
    const schema = (await f.manager.get(id)).isolation.schema as string;
    await moveUnderLoad(id, { tier: 'database', server: 'second' });
    const record = await f.manager.get(id);
    expect(record.isolation).to.deep.include({ tier: 'database' });
    expect(record.isolation.database).to.deep.include({ server: 'second' });
    const { rows } = await f.query(
      'second',
      record.isolation.database?.database as string,
      'select count(*)::int as n from tasks',
    );
    expect(rows[0].n).to.be.greaterThan(300);
    const gone = await f.knex.raw('select 1 from pg_namespace where nspname = ?', [schema]);
    expect(gone.rows).to.deep.equal([]);
  });

  it('moves a tenant database → database across servers (main → second)', async () => {
    const id = t('mover-b');
    const database = (await f.manager.get(id)).isolation.database?.database as string;
    await moveUnderLoad(id, { tier: 'database', server: 'second' });
    const record = await f.manager.get(id);
    expect(record.isolation.database).to.deep.include({ server: 'second', database });
    const onMain = await f.query(
      'main',
      'postgres',
      'select 1 from pg_database where datname = $1',
      [database],
    );
    expect(onMain.rows, 'the source database is dropped').to.deep.equal([]);
  });

  it('moves a tenant back database → row, stamping the tenant column', async () => {
    const id = t('mover-b');
    const database = (await f.manager.get(id)).isolation.database?.database as string;
    await moveUnderLoad(id, { tier: 'row' });
    const record = await f.manager.get(id);
    expect(record.isolation.tier).to.equal('row');
    const rows = await f.knex('tasks').where({ tenant_id: id }).count({ n: '*' });
    expect(Number(rows[0]?.n)).to.be.greaterThan(300);
    const nulls = await f.knex('tasks').whereNull('tenant_id').count({ n: '*' });
    expect(Number(nulls[0]?.n)).to.equal(0);
    const onSecond = await f.query(
      'second',
      'postgres',
      'select 1 from pg_database where datname = $1',
      [database],
    );
    expect(onSecond.rows).to.deep.equal([]);
  });
});
