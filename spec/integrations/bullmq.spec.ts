import { expect } from 'chai';
import { Queue, Worker, type Job } from 'bullmq';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import {
  KnexTenantStore,
  TenantManager,
  currentTenant,
  migrateCentral,
  runForTenant,
  runWithTenant,
  tenantLogFields,
  withTenancy,
  type TenancyError,
  type TenancyLogger,
  type TenantKnex,
} from '../../src/index';
import { addTenantJob, tenantJobProcessor, type TenantJob } from '../../src/integrations/bullmq';
import { createTestKnex } from '../support/test-database';

// The machine's Redis (.ci/run starts it when it is down), or TENANTRY_TEST_REDIS_URL.
const redisUrl = new URL(process.env.TENANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = {
  host: redisUrl.hostname,
  port: Number(redisUrl.port || 6379),
  ...(redisUrl.password ? { password: decodeURIComponent(redisUrl.password) } : {}),
  maxRetriesPerRequest: null,
};
const run = randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${run}`;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Note {
  n: number;
}

/** Resolves once `worker` finished (completed or failed) `count` jobs. */
function settled(worker: Worker, count: number) {
  const failures: { job: Job | undefined; error: Error }[] = [];
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const tick = () => {
      done += 1;
      if (done === count) resolve();
    };
    worker.on('completed', tick);
    worker.on('failed', (job, error) => {
      failures.push({ job, error });
      tick();
    });
  });
  return { finished, failures };
}

describe('tenantry/bullmq: tenant jobs on a real BullMQ queue', function () {
  this.timeout(60_000);
  let knex: Knex;
  let db: TenantKnex;
  let store: KnexTenantStore;
  let manager: TenantManager;
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  const queue = (name: string) => {
    const q = new Queue<TenantJob<Note>>(`tenantry-${name}-${run}`, { connection });
    queues.push(q as Queue);
    return q;
  };
  const worker = (q: Queue, processor: (job: Job) => Promise<unknown>, concurrency = 1) => {
    const w = new Worker(q.name, processor, { connection, concurrency });
    workers.push(w);
    return w;
  };

  before(async () => {
    // Fail fast and say why: BullMQ would otherwise retry an absent Redis forever.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(connection.port, connection.host);
      const refuse = (why: string) => {
        socket.destroy();
        reject(
          new Error(
            `Redis is not reachable at ${connection.host}:${connection.port} (${why}). Start redis-server or set TENANTRY_TEST_REDIS_URL.`,
          ),
        );
      };
      socket.setTimeout(2000, () => refuse('timeout'));
      socket.once('error', (e) => refuse(e.message));
      socket.once('connect', () => {
        socket.end();
        resolve();
      });
    });
    const schema = `bullmq_${run}`;
    const plain = createTestKnex({ pool: { min: 0, max: 1 } });
    await plain.raw('create schema ??', [schema]);
    await plain.destroy();
    knex = createTestKnex({ searchPath: [schema], pool: { min: 0, max: 20 } });
    await migrateCentral(knex);
    await knex.schema.createTable('notes', (t) => {
      t.text('tenant_id').notNullable();
      t.text('written_for').notNullable();
      t.integer('n').notNullable();
    });
    db = withTenancy(knex, { tenantTables: ['notes'], sharedTables: ['tenants'] });
    store = new KnexTenantStore(knex);
    manager = new TenantManager({ knex, store, db });
  });

  after(async () => {
    for (const w of workers) await w.close();
    for (const q of queues) {
      await q.obliterate({ force: true });
      await q.close();
    }
  });

  it('runs concurrent jobs of many tenants each in its own tenant, with 0 rows crossing tenants', async () => {
    const tenants = Array.from({ length: 8 }, (_, i) => id(`t${i}`));
    for (const t of tenants) await manager.create({ id: t });
    const perTenant = 20;
    const q = queue('many');
    // Enqueue from inside each tenant's scope, interleaved across tenants.
    await Promise.all(
      tenants.map((t) =>
        runForTenant(store, t, async () => {
          for (let n = 0; n < perTenant; n++) {
            await addTenantJob(q, 'note', { n });
            await pause(Math.random() * 3);
          }
        }),
      ),
    );
    const bleed: string[] = [];
    const w = worker(
      q as Queue,
      tenantJobProcessor(store, async ({ n }: Note, { job, tenant }) => {
        // The tenant scope is the job's, across awaits that interleave with other jobs.
        if (currentTenant().id !== job.data.tenantId || tenant.id !== job.data.tenantId) {
          bleed.push(`job ${job.id}: scope ${currentTenant().id}, payload ${job.data.tenantId}`);
        }
        await db('notes').insert({ written_for: job.data.tenantId, n });
        await pause(Math.random() * 5);
        const visible = (await db('notes').select('tenant_id')) as { tenant_id: string }[];
        for (const row of visible) {
          if (row.tenant_id !== job.data.tenantId) bleed.push(`job ${job.id} saw ${row.tenant_id}`);
        }
        return visible.length;
      }),
      16,
    );
    const { finished, failures } = settled(w, tenants.length * perTenant);
    await finished;
    expect(failures.map((f) => f.error.message)).to.deep.equal([]);
    expect(bleed).to.deep.equal([]);
    const rows = (await knex('notes').select('tenant_id', 'written_for', 'n')) as {
      tenant_id: string;
      written_for: string;
      n: number;
    }[];
    expect(rows).to.have.length(tenants.length * perTenant);
    expect(rows.filter((r) => r.tenant_id !== r.written_for)).to.deep.equal([]);
    for (const t of tenants) {
      const ns = rows.filter((r) => r.tenant_id === t).map((r) => r.n);
      expect(ns, t).to.have.members(Array.from({ length: perTenant }, (_, n) => n));
    }
  });

  it('captures the current tenant into the job data at enqueue', async () => {
    const t = id('capture');
    await manager.create({ id: t });
    const q = queue('capture');
    const job = await runForTenant(store, t, () =>
      addTenantJob(q, 'note', { n: 7 }, { delay: 60_000 }),
    );
    const stored = await Queue.prototype.getJob.call(q, job.id ?? '');
    expect(stored?.data).to.deep.equal({ tenantId: t, data: { n: 7 } });
    expect(stored?.opts.delay).to.equal(60_000);
  });

  it('fails a job of a tenant suspended, archived or deleted since enqueue with its coded error, and never runs the handler', async () => {
    const cases: [string, (t: string) => Promise<unknown>, string, number][] = [
      [id('paused'), (t) => manager.suspend(t, 'unpaid'), 'TENANT_SUSPENDED', 403],
      [id('old'), (t) => manager.archive(t), 'TENANT_SUSPENDED', 403],
      [id('gone'), (t) => manager.delete(t), 'TENANT_NOT_FOUND', 404],
    ];
    const q = queue('refused');
    for (const [t] of cases) {
      await manager.create({ id: t });
      await runForTenant(store, t, () => addTenantJob(q, 'note', { n: 1 }));
    }
    for (const [t, change] of cases) await change(t);
    const warnings: [string, Record<string, unknown> | undefined][] = [];
    const logger: TenancyLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (message, fields) => warnings.push([message, fields]),
      error: () => undefined,
    };
    let ran = 0;
    const w = worker(
      q as Queue,
      tenantJobProcessor(store, () => ran++, { logger }),
    );
    const { finished, failures } = settled(w, cases.length);
    await finished;
    expect(ran).to.equal(0);
    for (const [t, , code, status] of cases) {
      const failure = failures.find((f) => (f.job?.data as TenantJob<Note>).tenantId === t);
      expect(failure?.error, t).to.include({ code, status });
      // What Redis keeps: the failed state and the coded error's message and class.
      const stored = await q.getJob(failure?.job?.id ?? '');
      expect(await stored?.getState()).to.equal('failed');
      expect(stored?.failedReason).to.equal(failure?.error.message);
      expect(stored?.stacktrace?.[0]).to.match(/^Tenant(Suspended|NotFound)Error: /);
      expect(warnings.find(([, f]) => f?.tenantId === t)?.[1]).to.include({
        code,
        jobId: failure?.job?.id,
        jobName: 'note',
      });
    }
    expect(
      await knex('notes').whereIn(
        'tenant_id',
        cases.map(([t]) => t),
      ),
    ).to.deep.equal([]);
  });

  it('fails a job whose payload carries no valid tenantId with 400 TENANT_INVALID', async () => {
    const q = new Queue(`tenantry-forged-${run}`, { connection });
    queues.push(q);
    await q.add('note', { tenantId: "x'; drop table notes; --", data: { n: 1 } });
    await q.add('note', { n: 1 });
    let ran = 0;
    const w = worker(
      q,
      tenantJobProcessor(store, () => ran++),
    );
    const { finished, failures } = settled(w, 2);
    await finished;
    expect(ran).to.equal(0);
    expect(failures.map((f) => (f.error as TenancyError).code)).to.deep.equal([
      'TENANT_INVALID',
      'TENANT_INVALID',
    ]);
  });

  it('puts tenantId, jobId and jobName on log fields inside the handler', async () => {
    const t = id('logs');
    await manager.create({ id: t });
    const q = queue('logs');
    await runForTenant(store, t, () => addTenantJob(q, 'note', { n: 1 }));
    let fields: Record<string, unknown> = {};
    const w = worker(
      q as Queue,
      tenantJobProcessor(store, () => {
        fields = tenantLogFields();
      }),
    );
    const { finished } = settled(w, 1);
    await finished;
    expect(fields).to.include({ tenantId: t, jobName: 'note' });
    expect(fields.jobId).to.be.a('string');
  });

  it('refuses to enqueue outside a tenant scope: 500 TENANT_SCOPE_REQUIRED, nothing reaches Redis', async () => {
    const q = queue('unscoped');
    expect(() => addTenantJob(q, 'note', { n: 1 }))
      .to.throw()
      .with.property('code', 'TENANT_SCOPE_REQUIRED');
    expect(await q.getJobCounts('waiting', 'delayed')).to.deep.equal({ waiting: 0, delayed: 0 });
    // A bare runWithTenant() scope is enough to enqueue; the worker checks the status.
    await runWithTenant(id('bare'), () => addTenantJob(q, 'note', { n: 1 }));
    expect(await q.getJobCounts('waiting')).to.deep.equal({ waiting: 1 });
  });

  it('throws a TypeError for a missing queue, store or handler', () => {
    const bad = null as unknown as Queue;
    expect(() => addTenantJob(bad, 'x', {})).to.throw(TypeError, /needs a BullMQ Queue/);
    expect(() => tenantJobProcessor({} as KnexTenantStore, () => 1)).to.throw(
      TypeError,
      /needs a TenantStore/,
    );
    expect(() => tenantJobProcessor(store, 'run' as unknown as () => void)).to.throw(
      TypeError,
      /needs a function/,
    );
  });
});
