import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import request from 'supertest';
import {
  InMemoryTenantStore,
  createDatabaseTenantKnex,
  resolveTenant,
  runWithTenant,
  tenancyErrorHandler,
  tenancyTelemetry,
  withTenancy,
  type TenancyMetrics,
  type TenantKnex,
  type TenantStatementEvent,
} from '../../src/index';
import { prometheusTenancyMetrics } from '../../src/telemetry/prometheus-tenancy-metrics';
import { createRowFixture } from '../isolation/support/row-fixture';
import { createScratchDatabase, createTestKnex } from '../support/test-database';
import { eventsOf, registerTracing, type RegisteredTracing } from './support/otel';

/** The value of one series of a prom-client metric, 0 when absent. */
async function series(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find(
    (v) =>
      Object.keys(labels).length === Object.keys(v.labels).length &&
      Object.entries(labels).every(([k, value]) => String(v.labels[k]) === value),
  );
  return match?.value ?? 0;
}

function tenants(): InMemoryTenantStore {
  return new InMemoryTenantStore([
    { id: 'acme', name: 'Acme' },
    { id: 'globex', name: 'Globex', isolation: { tier: 'row' } },
  ]);
}

describe('tracing and metrics (tenancyTelemetry())', function () {
  this.timeout(60_000);
  let knex: Knex;
  let tracing: RegisteredTracing;
  let registry: Registry;
  let db: TenantKnex;

  before(async () => {
    ({ knex } = await createRowFixture());
  });
  beforeEach(() => {
    tracing = registerTracing();
    registry = new Registry();
  });
  afterEach(() => tracing.unregister());

  function appWith(telemetry: ReturnType<typeof tenancyTelemetry>): express.Express {
    db = withTenancy(knex, { tenantTables: ['documents', 'comments'], telemetry });
    const app = express();
    app.use(tracing.requestSpan('GET'));
    app.use(resolveTenant({ store: tenants(), telemetry }));
    app.get('/documents', async (_req, res) => {
      res.json(await db('documents').select('id', 'tenant_id').orderBy('id'));
    });
    app.get('/foreign', async (_req, res) => {
      // A cross-tenant raw statement: refused by the final-SQL verifier.
      res.json(await db.raw("select * from documents where tenant_id = 'globex'"));
    });
    app.use(tenancyErrorHandler());
    return app;
  }

  it('puts tenant.id on each request span and a tenantry.statement event per statement, for two tenants at once', async () => {
    const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
    const app = appWith(telemetry);
    const [acme, globex] = await Promise.all([
      request(app).get('/documents').set('X-Tenant-ID', 'acme'),
      request(app).get('/documents').set('X-Tenant-ID', 'globex'),
    ]);
    expect(acme.status).to.equal(200);
    expect(globex.status).to.equal(200);
    expect(acme.body.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
      'acme',
      'acme',
      'acme',
    ]);
    const spans = tracing.spans();
    expect(spans).to.have.length(2);
    const tenantsSeen = spans.map((s) => s.attributes['tenant.id']).sort();
    expect(tenantsSeen).to.deep.equal(['acme', 'globex']);
    for (const span of spans) {
      const events = eventsOf(span, 'tenantry.statement');
      expect(events).to.have.length(1);
      expect(events[0]).to.deep.equal({
        'tenant.id': span.attributes['tenant.id'],
        'tenantry.scope': 'tenant',
        'tenantry.statement.kind': 'select',
        'tenantry.isolation.mode': 'row',
      });
    }
    for (const tenant of ['acme', 'globex']) {
      expect(
        await series(registry, 'tenantry_tenant_resolved_total', { tenant, source: 'header' }),
      ).to.equal(1);
      expect(
        await series(registry, 'tenantry_statements_total', {
          tenant,
          mode: 'row',
          tier: 'row',
          kind: 'select',
        }),
      ).to.equal(1);
    }
  });

  it('counts statements per tenant and kind, and writes the configured attribute name', async () => {
    const telemetry = tenancyTelemetry({
      tenantAttribute: 'app.tenant',
      metrics: prometheusTenancyMetrics({ registry }),
    });
    const app = appWith(telemetry);
    for (let i = 0; i < 3; i += 1) await request(app).get('/documents').set('X-Tenant-ID', 'acme');
    await request(app).get('/documents').set('X-Tenant-ID', 'globex');
    await tracing.inSpan('job', () =>
      runWithTenant('globex', async () => {
        await db('documents').where({ id: 1 }).update({ views: 5 });
        await db('comments').insert({ id: 99, document_id: 1, body: 'x' });
        await db('comments').where({ id: 99 }).del();
      }),
    );
    const count = (tenant: string, kind: string) =>
      series(registry, 'tenantry_statements_total', { tenant, mode: 'row', tier: 'row', kind });
    expect(await count('acme', 'select')).to.equal(3);
    expect(await count('globex', 'select')).to.equal(1);
    expect(await count('globex', 'update')).to.equal(1);
    expect(await count('globex', 'insert')).to.equal(1);
    expect(await count('globex', 'delete')).to.equal(1);
    expect(await count('acme', 'update')).to.equal(0);
    const job = tracing.spans().find((s) => s.name === 'job');
    expect(job?.attributes['app.tenant']).to.equal('globex');
    expect(job?.attributes['tenant.id']).to.equal(undefined);
    expect(
      eventsOf(job!, 'tenantry.statement').map((e) => e['tenantry.statement.kind']),
    ).to.deep.equal(['update', 'insert', 'delete']);
  });

  it('counts refusals by code: an unknown tenant without its unverified id, a refused cross-tenant statement with its tenant', async () => {
    const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
    const app = appWith(telemetry);
    const unknown = await request(app).get('/documents').set('X-Tenant-ID', 'nope');
    expect(unknown.status).to.equal(404);
    expect(unknown.body.code).to.equal('TENANT_NOT_FOUND');
    const invalid = await request(app).get('/documents').set('X-Tenant-ID', 'x'.repeat(300));
    expect(invalid.status).to.equal(400);
    const foreign = await request(app).get('/foreign').set('X-Tenant-ID', 'acme');
    expect(foreign.status).to.equal(500);
    expect(foreign.body.code).to.equal('UNSAFE_QUERY');

    expect(
      await series(registry, 'tenantry_refusals_total', {
        code: 'TENANT_NOT_FOUND',
        stage: 'resolution',
        tenant: '',
      }),
    ).to.equal(1);
    expect(
      await series(registry, 'tenantry_refusals_total', {
        code: invalid.body.code as string,
        stage: 'resolution',
        tenant: '',
      }),
    ).to.equal(1);
    expect(
      await series(registry, 'tenantry_refusals_total', {
        code: 'UNSAFE_QUERY',
        stage: 'statement',
        tenant: 'acme',
      }),
    ).to.equal(1);
    // The refused statement was not counted as sent.
    expect(
      await series(registry, 'tenantry_statements_total', {
        tenant: 'acme',
        mode: 'row',
        tier: 'row',
        kind: 'select',
      }),
    ).to.equal(0);
    const span = tracing.spans().find((s) => s.attributes['tenant.id'] === 'acme');
    expect(eventsOf(span!, 'tenantry.statement.refused')).to.deep.equal([
      {
        'tenant.id': 'acme',
        'tenantry.scope': 'tenant',
        'tenantry.refusal.code': 'UNSAFE_QUERY',
        'tenantry.isolation.mode': 'row',
      },
    ]);
    const refusedResolution = tracing
      .spans()
      .flatMap((s) => eventsOf(s, 'tenantry.resolution.refused'))
      .map((e) => e['tenantry.refusal.code']);
    expect(refusedResolution).to.include('TENANT_NOT_FOUND');
  });

  it('counts a statement refused for want of a tenant scope (TENANT_SCOPE_REQUIRED) once', async () => {
    const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
    appWith(telemetry);
    let code: unknown;
    await tracing.inSpan('no-tenant', async () => {
      try {
        await db('documents').select('*');
      } catch (error) {
        code = (error as { code?: unknown }).code;
      }
    });
    expect(code).to.equal('TENANT_SCOPE_REQUIRED');
    expect(
      await series(registry, 'tenantry_refusals_total', {
        code: 'TENANT_SCOPE_REQUIRED',
        stage: 'statement',
        tenant: '',
      }),
    ).to.equal(1);
    const span = tracing.spans().find((s) => s.name === 'no-tenant');
    expect(eventsOf(span!, 'tenantry.statement.refused')).to.deep.equal([
      {
        'tenantry.scope': 'none',
        'tenantry.refusal.code': 'TENANT_SCOPE_REQUIRED',
        'tenantry.isolation.mode': 'row',
      },
    ]);
  });

  it('drops or buckets the tenant label (tenantLabel: "none" or a function)', async () => {
    const none = new Registry();
    const bucketed = new Registry();
    const recordBoth: TenancyMetrics[] = [
      prometheusTenancyMetrics({ registry: none, tenantLabel: 'none' }),
      prometheusTenancyMetrics({
        registry: bucketed,
        prefix: 'app_',
        tenantLabel: (id) => (id === 'acme' ? 'enterprise' : 'free'),
      }),
    ];
    const fanOut: TenancyMetrics = {
      statement: (e: TenantStatementEvent) => recordBoth.forEach((m) => m.statement?.(e)),
    };
    db = withTenancy(knex, {
      tenantTables: ['documents'],
      telemetry: tenancyTelemetry({ metrics: fanOut }),
    });
    for (const tenant of ['acme', 'globex', 'globex']) {
      await runWithTenant(tenant, () => db('documents').select('id'));
    }
    expect(
      await series(none, 'tenantry_statements_total', { mode: 'row', tier: 'row', kind: 'select' }),
    ).to.equal(3);
    expect(
      await series(bucketed, 'app_statements_total', {
        tenant: 'enterprise',
        mode: 'row',
        tier: 'row',
        kind: 'select',
      }),
    ).to.equal(1);
    expect(
      await series(bucketed, 'app_statements_total', {
        tenant: 'free',
        mode: 'row',
        tier: 'row',
        kind: 'select',
      }),
    ).to.equal(2);
  });

  it('keeps serving when a metrics method throws, and logs it', async () => {
    const warnings: string[] = [];
    db = withTenancy(knex, {
      tenantTables: ['documents'],
      telemetry: tenancyTelemetry({
        metrics: {
          statement: () => {
            throw new Error('metrics backend down');
          },
        },
        logger: {
          debug: () => undefined,
          info: () => undefined,
          warn: (message: string) => void warnings.push(message),
          error: () => undefined,
        },
      }),
    });
    const rows = await runWithTenant('acme', () => db('documents').select('id'));
    expect(rows).to.have.length(3);
    expect(warnings).to.deep.equal(['tenantry metrics failed']);
  });

  it('writes nothing with telemetry: false', async () => {
    db = withTenancy(knex, { tenantTables: ['documents'], telemetry: false });
    await tracing.inSpan('off', () => runWithTenant('acme', () => db('documents').select('id')));
    const span = tracing.spans().find((s) => s.name === 'off');
    expect(span?.events).to.deep.equal([]);
    expect(span?.attributes).to.deep.equal({});
  });

  it('reports schema-mode statements with mode "schema"', async () => {
    const database = await createScratchDatabase('telemetry_schema');
    const schemaKnex = createTestKnex({}, database);
    await schemaKnex.raw(
      'create schema tenant_acme; create table tenant_acme.documents (id integer); insert into tenant_acme.documents values (1)',
    );
    const sdb = withTenancy(schemaKnex, {
      mode: 'schema',
      tenantTables: ['documents'],
      telemetry: tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) }),
    });
    const rows = await tracing.inSpan('schema-job', () =>
      runWithTenant('acme', () => sdb('documents').select('id')),
    );
    expect(rows).to.deep.equal([{ id: 1 }]);
    expect(
      await series(registry, 'tenantry_statements_total', {
        tenant: 'acme',
        mode: 'schema',
        tier: 'schema',
        kind: 'select',
      }),
    ).to.equal(1);
    const span = tracing.spans().find((s) => s.name === 'schema-job');
    expect(eventsOf(span!, 'tenantry.statement')).to.deep.equal([
      {
        'tenant.id': 'acme',
        'tenantry.scope': 'tenant',
        'tenantry.statement.kind': 'select',
        'tenantry.isolation.mode': 'schema',
      },
    ]);
  });

  describe('database mode', () => {
    let base: Knex;
    const records: Array<{ id: string; database: string }> = [];

    before(async () => {
      base = createTestKnex();
      for (const id of ['dba', 'dbb']) {
        const database = await createScratchDatabase(`telemetry_${id}`);
        const k = createTestKnex({}, database);
        await k.schema.createTable('notes', (t) => t.text('body'));
        await k.destroy();
        records.push({ id, database });
      }
    });

    const record = (i: number) => {
      const r = records[i]!;
      return {
        id: r.id,
        name: r.id,
        status: 'active' as const,
        isolation: { tier: 'database' as const, database: { database: r.database } },
        config: {},
      };
    };

    it('counts statements routed to each tenant database, with their event on the active span', async () => {
      const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
      const tdb = createDatabaseTenantKnex(base, { telemetry });
      try {
        await tracing.inSpan('dba-job', () =>
          runWithTenant(record(0), async () => {
            await tdb('notes').insert({ body: 'a' });
            await tdb('notes').select('*');
          }),
        );
        await runWithTenant(record(1), () => tdb('notes').select('*'));
        const count = (tenant: string, kind: string) =>
          series(registry, 'tenantry_statements_total', {
            tenant,
            mode: 'database',
            tier: 'database',
            kind,
          });
        expect(await count('dba', 'insert')).to.equal(1);
        expect(await count('dba', 'select')).to.equal(1);
        expect(await count('dbb', 'select')).to.equal(1);
        const span = tracing.spans().find((s) => s.name === 'dba-job');
        expect(span?.attributes['tenant.id']).to.equal('dba');
        expect(eventsOf(span!, 'tenantry.statement')).to.have.length(2);
        expect(() => tdb('notes'))
          .to.throw()
          .with.property('code', 'TENANT_SCOPE_REQUIRED');
        expect(
          await series(registry, 'tenantry_refusals_total', {
            code: 'TENANT_SCOPE_REQUIRED',
            stage: 'statement',
            tenant: '',
          }),
        ).to.equal(1);
      } finally {
        await tdb.destroy();
      }
    });

    it('counts pool waits (a busy tenant pool) and budget waits (a full connection budget)', async () => {
      const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
      const tdb = withTenancy(base, {
        mode: 'database',
        telemetry,
        database: { maxConnectionsPerTenant: 1, connectionBudget: 1 },
      });
      try {
        const sleep = () => tdb.raw('select pg_sleep(0.1)');
        await runWithTenant(record(0), () => Promise.all([sleep(), sleep(), sleep()]));
        expect(
          await series(registry, 'tenantry_pool_waits_total', { tenant: 'dba', reason: 'pool' }),
        ).to.be.at.least(2);
        await Promise.all([
          runWithTenant(record(0), () => sleep()),
          runWithTenant(record(1), () => sleep()),
        ]);
        const budget =
          (await series(registry, 'tenantry_pool_waits_total', {
            tenant: 'dba',
            reason: 'budget',
          })) +
          (await series(registry, 'tenantry_pool_waits_total', {
            tenant: 'dbb',
            reason: 'budget',
          }));
        expect(budget).to.be.at.least(1);
        const histogram = await registry.getSingleMetric('tenantry_pool_wait_seconds')!.get();
        const waits = histogram.values.find(
          (v) =>
            (v as { metricName?: string }).metricName === 'tenantry_pool_wait_seconds_count' &&
            v.labels.reason === 'pool',
        );
        expect(waits?.value).to.be.at.least(2);
      } finally {
        await tdb.destroy();
      }
    });
  });
});
