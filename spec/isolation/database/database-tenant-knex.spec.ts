import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import knexFactory from 'knex';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import {
  createDatabaseTenantKnex,
  runAsSystem,
  runWithTenant,
  TenancyError,
  TenantScopeError,
  TenantUnavailableError,
  onTenancyAudit,
  withTenancy,
  type DatabaseTenantKnex,
  type TenancyAuditEvent,
  type TenantRecord,
} from '../../../src/index';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresServer,
} from '../../../demo/embedded-postgres';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  testServer,
} from '../../support/test-database';

const run = randomBytes(3).toString('hex');

function tenant(id: string, database: TenantRecord['isolation']['database']): TenantRecord {
  return { id, name: id, status: 'active', isolation: database ? { database } : {}, config: {} };
}

async function openConnections(prefix: string): Promise<number> {
  const { rows } = await adminQuery(
    `select count(*)::int as n from pg_stat_activity where application_name like $1`,
    [`tenantry:${prefix}%`],
  );
  return (rows[0] as { n: number }).n;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

describe('createDatabaseTenantKnex() (database isolation mode)', function () {
  this.timeout(120_000);
  let base: Knex;
  const dbs: TenantRecord[] = [];

  before(async () => {
    base = createTestKnex();
    for (const name of ['a', 'b', 'c']) {
      const database = await createScratchDatabase(`dbmode_${name}`);
      const k = createTestKnex({}, database);
      await k.schema.createTable('notes', (t) => t.text('body'));
      await k('notes').insert({ body: `note of ${name}` });
      await k.destroy();
      dbs.push(tenant(`r${run}-${name}`, { database }));
    }
  });

  it('runs every builder, raw statement and transaction in the current tenant database', async () => {
    const db = createDatabaseTenantKnex(base);
    try {
      for (const [i, record] of dbs.entries()) {
        const bodies = await runWithTenant(record, () => db('notes').pluck('body'));
        expect(bodies).to.deep.equal([`note of ${['a', 'b', 'c'][i]}`]);
        const raw = await runWithTenant(record, () => db.raw('select current_database() as d'));
        expect((raw as { rows: { d: string }[] }).rows[0]?.d).to.equal(
          record.isolation.database?.database,
        );
        await runWithTenant(record, () =>
          db.transaction(async (trx) => {
            await trx('notes').insert({ body: 'in trx' });
          }),
        );
      }
      const counts = await Promise.all(
        dbs.map((r) => runWithTenant(r, () => db('notes').count({ n: '*' }).first())),
      );
      expect(counts.map((c) => Number(c?.n))).to.deep.equal([2, 2, 2]);
    } finally {
      await db.destroy();
    }
  });

  it('keeps the tenant captured when the builder was created, even if it runs outside the scope', async () => {
    const db = createDatabaseTenantKnex(base);
    try {
      const [a, b] = [dbs[0]!, dbs[1]!];
      const builder = runWithTenant(a, () => db.select(db.raw('current_database() as d')));
      const rows = (await runWithTenant(b, () => builder)) as { d: string }[];
      expect(rows[0]?.d).to.equal(a.isolation.database?.database);
    } finally {
      await db.destroy();
    }
  });

  it('throws TENANT_SCOPE_REQUIRED with no tenant (and in a system scope) before any connection opens', async () => {
    const db = createDatabaseTenantKnex(base);
    try {
      expect(() => db('notes'))
        .to.throw(TenantScopeError)
        .with.property('code', 'TENANT_SCOPE_REQUIRED');
      expect(() => db.raw('select 1')).to.throw(TenantScopeError);
      expect(() => db.schema).to.throw(TenantScopeError);
      expect(() => runAsSystem('spec', () => db('notes'))).to.throw(/system scope/);
      expect(db.tenantPools.stats()).to.include({ pools: 0, connections: 0 });
    } finally {
      await db.destroy();
    }
  });

  it('is what withTenancy(knex, { mode: "database" }) returns, with tenancy info and an audited unscoped()', async () => {
    const db = withTenancy(base, { mode: 'database', sharedTables: ['tenants'] });
    const events: TenancyAuditEvent[] = [];
    const stop = onTenancyAudit((e) => events.push(e));
    try {
      expect(db.tenancy.mode).to.equal('database');
      expect(db.tenancy.sharedTables).to.deep.equal(['tenants']);
      const d = await runWithTenant(dbs[2]!, () => db.raw('select current_database() as d'));
      expect((d as { rows: { d: string }[] }).rows[0]?.d).to.equal(
        dbs[2]!.isolation.database?.database,
      );
      const central = await runWithTenant(dbs[2]!, () =>
        db.unscoped({ reason: 'spec: central lookup' }).raw('select current_database() as d'),
      );
      expect((central as { rows: { d: string }[] }).rows[0]?.d).to.equal(testServer().databaseName);
      expect(events.map((e) => [e.type, e.tenantId])).to.deep.equal([
        ['unscoped_query', dbs[2]!.id],
      ]);
      expect(() => db.unscoped({ reason: ' ' })).to.throw(TypeError);
    } finally {
      stop();
      await db.destroy();
    }
  });

  it('destroy() closes every tenant pool it opened and leaves the base knex the user passed in open', async () => {
    const own = createTestKnex({ pool: { min: 0, max: 2 } });
    const db = withTenancy(own, { mode: 'database' }) as DatabaseTenantKnex;
    await Promise.all(dbs.map((r) => runWithTenant(r, () => db.raw('select 1'))));
    expect(await openConnections(`r${run}-`)).to.equal(dbs.length);
    await db.destroy();
    expect(await openConnections(`r${run}-`)).to.equal(0);
    expect(db.tenantPools.stats()).to.include({ pools: 0, connections: 0 });
    const error = await runWithTenant(dbs[0]!, async () => db.raw('select 1')).catch(
      (e: unknown) => e,
    );
    expect(error).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
    // The base knex keeps working, and destroying it stays the caller's job.
    const { rows } = (await own.raw('select current_database() as d')) as { rows: { d: string }[] };
    expect(rows[0]?.d).to.equal(testServer().databaseName);
    expect(db.unscoped({ reason: 'spec: after destroy' })).to.equal(own);
    await db.destroy();
    await own.destroy();
  });

  it('is not thenable, so awaiting the instance itself sends nothing', async () => {
    const db = createDatabaseTenantKnex(base);
    try {
      expect(await Promise.resolve(db)).to.equal(db);
    } finally {
      await db.destroy();
    }
  });

  it('answers 503 TENANT_UNAVAILABLE for a tenant whose database is missing while others keep working (HTTP)', async () => {
    const db = createDatabaseTenantKnex(base);
    const records = new Map<string, TenantRecord>([
      ['good', dbs[0]!],
      ['gone', tenant(`r${run}-gone`, { database: `tenantry_missing_${run}` })],
    ]);
    const app = express();
    app.get('/t/:key', async (req, res) => {
      const record = records.get(req.params.key)!;
      const rows = await runWithTenant(record, () => db('notes').select('body'));
      res.json(rows);
    });
    app.use(
      (err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        const e = err instanceof TenancyError ? err : undefined;
        res.status(e?.status ?? 500).json({ code: e?.code ?? 'INTERNAL' });
      },
    );
    try {
      const [gone, good] = await Promise.all([
        request(app).get('/t/gone'),
        request(app).get('/t/good'),
      ]);
      expect(gone.status).to.equal(503);
      expect(gone.body).to.deep.equal({ code: 'TENANT_UNAVAILABLE' });
      expect(good.status).to.equal(200);
      expect((await request(app).get('/t/good')).status).to.equal(200);
      expect((await request(app).get('/t/gone')).status).to.equal(503);
      // A failed connect gives its budget slot back.
      expect(db.tenantPools.stats().connections).to.be.at.most(1);
    } finally {
      await db.destroy();
    }
  });

  describe('with 60 tenant databases and a budget of 6 connections', () => {
    const many: TenantRecord[] = [];
    before(async function () {
      this.timeout(180_000);
      const names = Array.from({ length: 60 }, (_, i) => i);
      await inBatches(names, 4, async (i) => {
        const database = await createScratchDatabase(`fleet${i}`);
        many.push(tenant(`f${run}-${i}`, { database }));
      });
    });

    it('serves every tenant its own database and never opens more than the budget (pg_stat_activity)', async () => {
      let closedPools = 0;
      const db = createDatabaseTenantKnex(base, {
        database: { connectionBudget: 6, maxConnectionsPerTenant: 2, maxPools: 20 },
        logger: {
          debug: (message: string) => {
            if (message === 'closing tenant pool') closedPools += 1;
          },
          info() {},
          warn() {},
          error() {},
        },
      });
      let observedMax = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          observedMax = Math.max(observedMax, await openConnections(`f${run}`));
          await sleep(5);
        }
      })();
      try {
        const jobs = Array.from({ length: 360 }, (_, i) => many[(i * 7) % many.length]!);
        const results = await Promise.all(
          jobs.map((record) =>
            runWithTenant(record, async () => {
              const r = (await db.raw('select current_database() as d, pg_sleep(0.002) as s')) as {
                rows: { d: string }[];
              };
              return [record.isolation.database?.database, r.rows[0]?.d];
            }),
          ),
        );
        for (const [expected, actual] of results) expect(actual).to.equal(expected);
        const stats = db.tenantPools.stats();
        expect(stats.peakConnections).to.be.at.most(6);
        expect(stats.peakConnections).to.be.at.least(2);
        expect(stats.pools).to.be.at.most(20);
        // A burst over more tenants than maxPools: each pool opens and closes about once
        // (closing pools under builders already handed out made them thrash: 700 closings).
        expect(closedPools).to.be.at.most(2 * many.length);
      } finally {
        polling = false;
        await poller;
        await db.destroy();
      }
      expect(observedMax).to.be.greaterThan(0);
      expect(observedMax).to.be.at.most(6);
      expect(await openConnections(`f${run}`)).to.equal(0);
    });

    it('closes idle pools after poolIdleMillis and gives their connections back', async () => {
      const db = createDatabaseTenantKnex(base, {
        database: { connectionBudget: 4, poolIdleMillis: 100 },
      });
      try {
        await Promise.all(many.slice(0, 4).map((r) => runWithTenant(r, () => db.raw('select 1'))));
        expect(db.tenantPools.stats().pools).to.equal(4);
        let stats = db.tenantPools.stats();
        for (let i = 0; i < 50 && (stats.pools > 0 || stats.connections > 0); i++) {
          await sleep(50);
          stats = db.tenantPools.stats();
        }
        expect(stats).to.include({ pools: 0, connections: 0 });
      } finally {
        await db.destroy();
      }
    });
  });

  it('rejects bad options at creation with TypeError', () => {
    expect(() => createDatabaseTenantKnex(base, { database: { connectionBudget: 0 } })).to.throw(
      TypeError,
    );
    expect(() => createDatabaseTenantKnex(base, { database: { databasePrefix: 'x;' } })).to.throw(
      TypeError,
    );
  });

  describe('on a second PostgreSQL server', () => {
    let second: EmbeddedPostgresServer;
    let onSecond: TenantRecord;
    before(async function () {
      this.timeout(120_000);
      second = await startEmbeddedPostgres({ name: 'second-pg' });
      const admin = knexFactory({ client: 'pg', connection: second.url, pool: { min: 0, max: 1 } });
      await admin.raw(`drop database if exists tenantry_second_${run}`);
      await admin.raw(`create database tenantry_second_${run}`);
      await admin.destroy();
      process.env[`TENANTRY_SPEC_SECOND_PW_${run}`] = 'postgres';
      onSecond = tenant(`s${run}`, {
        server: 'second',
        database: `tenantry_second_${run}`,
        user: 'postgres',
        passwordRef: `TENANTRY_SPEC_SECOND_PW_${run}`,
      });
    });
    after(async function () {
      this.timeout(60_000);
      delete process.env[`TENANTRY_SPEC_SECOND_PW_${run}`];
      await second?.stop();
    });

    /** The second server is configured by name; secrets named TENANTRY_SPEC_* may be resolved. */
    const placed = (extra: Record<string, unknown> = {}): DatabaseTenantKnex =>
      createDatabaseTenantKnex(base, {
        database: {
          servers: { second: { host: '127.0.0.1', port: second.port } },
          passwordRefs: { prefix: 'TENANTRY_SPEC_' },
          ...extra,
        },
      });

    it('places tenants on different servers from their records, with the password from passwordRef', async () => {
      const db = placed();
      try {
        const port = async (r: TenantRecord) =>
          (
            (await runWithTenant(r, () => db.raw(`select current_setting('port')::int as p`))) as {
              rows: { p: number }[];
            }
          ).rows[0]?.p;
        expect(await port(onSecond)).to.equal(second.port);
        expect(await port(dbs[0]!)).to.equal(
          Number(new URL(testServer().databaseUrl).port || 5432),
        );
      } finally {
        await db.destroy();
      }
    });

    it('answers TENANT_UNAVAILABLE when the password secret is missing', async () => {
      const db = placed();
      try {
        const noSecret = tenant(`n${run}`, {
          ...onSecond.isolation.database!,
          passwordRef: `TENANTRY_SPEC_UNSET_${run}`,
        });
        const error = await runWithTenant(noSecret, () => db.raw('select 1')).catch(
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(TenantUnavailableError);
        expect(error).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
      } finally {
        await db.destroy();
      }
    });

    it('answers TENANT_UNAVAILABLE for tenants on a server that went down; tenants elsewhere keep working', async () => {
      const db = placed({ connectTimeoutMillis: 1000 });
      try {
        await runWithTenant(onSecond, () => db.raw('select 1'));
        await second.stop();
        for (let i = 0; i < 2; i++) {
          const error = await runWithTenant(onSecond, () => db.raw('select 1')).catch(
            (e: unknown) => e,
          );
          expect(error).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
        }
        const ok = await runWithTenant(dbs[1]!, () => db('notes').count({ n: '*' }).first());
        expect(Number(ok?.n)).to.be.greaterThan(0);
      } finally {
        await db.destroy();
      }
    });
  });
});
