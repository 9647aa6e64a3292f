import { expect } from 'chai';
import knexFactory from 'knex';
import { Registry } from 'prom-client';
import {
  InMemoryTenantStore,
  resolveTenant,
  tenancyTelemetry,
  withTenancy,
  type TenancyTelemetry,
  type TenancyMetrics,
} from '../../src/index';
import { prometheusTenancyMetrics } from '../../src/telemetry/prometheus-tenancy-metrics';
import { statementKind } from '../../src/telemetry/tenancy-telemetry';

describe('tenancyTelemetry() options', () => {
  it('accepts frozen options and returns frozen settings with the documented defaults', () => {
    const telemetry = tenancyTelemetry(Object.freeze({}));
    expect(Object.isFrozen(telemetry)).to.equal(true);
    expect(telemetry).to.include({
      tracing: true,
      tenantAttribute: 'tenant.id',
      metrics: undefined,
    });
  });

  it('throws TypeError at start-up for a bad attribute name, tracing flag or metrics method', () => {
    expect(() => tenancyTelemetry({ tenantAttribute: 'tenant id' })).to.throw(
      TypeError,
      /Cannot use tenantAttribute "tenant id"/,
    );
    expect(() => tenancyTelemetry({ tenantAttribute: '' })).to.throw(TypeError);
    expect(() => tenancyTelemetry({ tracing: 'yes' as unknown as boolean })).to.throw(TypeError);
    expect(() =>
      tenancyTelemetry({ metrics: { statement: 42 } as unknown as TenancyMetrics }),
    ).to.throw(TypeError, /metrics\.statement/);
  });

  it('refuses a telemetry option not made by tenancyTelemetry() in resolveTenant() and withTenancy()', () => {
    const fake = { metrics: {} } as unknown as TenancyTelemetry;
    const knex = knexFactory({ client: 'pg' });
    expect(() => withTenancy(knex, { tenantTables: ['documents'], telemetry: fake })).to.throw(
      TypeError,
      /tenancyTelemetry\(\)/,
    );
    expect(() => resolveTenant({ store: new InMemoryTenantStore([]), telemetry: fake })).to.throw(
      TypeError,
      /tenancyTelemetry\(\)/,
    );
    void knex.destroy();
  });

  it('names statement kinds from knex methods and, for raw SQL, from a bounded set of keywords', () => {
    expect(statementKind('first', 'select 1')).to.equal('select');
    expect(statementKind('del', 'delete from x')).to.equal('delete');
    expect(statementKind('raw', '  (SELECT 1)')).to.equal('select');
    expect(statementKind('raw', 'WITH a AS (select 1) select * from a')).to.equal('with');
    expect(statementKind(undefined, 'BEGIN;')).to.equal('begin');
    expect(statementKind('raw', 'frobnicate everything')).to.equal('other');
    expect(statementKind(undefined, undefined)).to.equal('other');
  });
});

describe('prometheusTenancyMetrics() options', () => {
  it('throws TypeError for a bad prefix, tenantLabel or registry', () => {
    expect(() =>
      prometheusTenancyMetrics({ registry: new Registry(), prefix: 'bad-prefix' }),
    ).to.throw(TypeError, /prefix "bad-prefix"/);
    expect(() =>
      prometheusTenancyMetrics({
        registry: new Registry(),
        tenantLabel: 'all' as unknown as 'id',
      }),
    ).to.throw(TypeError, /tenantLabel/);
    expect(() => prometheusTenancyMetrics({ registry: {} as unknown as Registry })).to.throw(
      TypeError,
      /Registry/,
    );
  });

  it('refuses to register twice in one registry and leaves the registry as it was', async () => {
    const registry = new Registry();
    prometheusTenancyMetrics({ registry });
    const before = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(() => prometheusTenancyMetrics({ registry })).to.throw(TypeError, /already has it/);
    expect((await registry.getMetricsAsJSON()).map((m) => m.name)).to.deep.equal(before);
    // Another prefix registers beside it.
    prometheusTenancyMetrics({ registry, prefix: 'other_' });
    expect((await registry.getMetricsAsJSON()).length).to.equal(before.length * 2);
  });
});
