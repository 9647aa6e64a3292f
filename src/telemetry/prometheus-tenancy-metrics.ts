/**
 * tenantry/prometheus: tenantry's counters as prom-client metrics.
 *
 * A subpath of its own, so applications without `prom-client` (an optional
 * peer) never load it.
 */
import { Counter, Histogram, register as globalRegistry, type Registry } from 'prom-client';
import type { TenancyMetrics } from './tenancy-metrics';

/**
 * Options of {@link prometheusTenancyMetrics}.
 *
 * @example
 * ```ts
 * const options: PrometheusTenancyMetricsOptions = { registry, prefix: 'app_tenancy_', tenantLabel: 'none' };
 * ```
 */
export interface PrometheusTenancyMetricsOptions {
  /** The registry the metrics are registered in. Default: prom-client's global `register`. */
  readonly registry?: Registry | undefined;
  /** Prefix of every metric name. Default: `tenantry_`. */
  readonly prefix?: string | undefined;
  /**
   * The `tenant` label: `id` (the tenant id: one series per tenant and label
   * combination, so 10,000 tenants make 10,000+ series per counter), `none`
   * (no tenant label: totals only), or a function that maps an id to a
   * bounded bucket (its tier, plan, or a hash modulo N). Default: `id`.
   */
  readonly tenantLabel?: 'id' | 'none' | ((tenantId: string) => string) | undefined;
}

const PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Builds a {@link TenancyMetrics} that counts into prom-client metrics
 * (registered once, here):
 *
 * - `<prefix>tenant_resolved_total{tenant,source}`: requests (and WebSocket
 *   upgrades) that resolved a tenant;
 * - `<prefix>refusals_total{code,stage,tenant}`: refusals by error code;
 *   `stage` is `resolution`, `statement` or `pool`; `tenant` is empty when
 *   unknown, and always for resolution refusals (the id a client sent is
 *   unverified, and would let anyone create series);
 * - `<prefix>statements_total{tenant,mode,tier,kind}`: statements sent;
 * - `<prefix>pool_waits_total{tenant,reason}` and
 *   `<prefix>pool_wait_seconds{reason}` (a histogram, without the tenant
 *   label): database-mode connection waits, `reason` `pool` or `budget`.
 *
 * Bad options, or a registry that already holds these names, throw TypeError.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { prometheusTenancyMetrics } from 'tenantry/prometheus';
 * const registry = new Registry();
 * const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
 * app.get('/metrics', async (_req, res) => {
 *   res.type(registry.contentType).send(await registry.metrics());
 * });
 * ```
 */
export function prometheusTenancyMetrics(
  options: PrometheusTenancyMetricsOptions = {},
): TenancyMetrics {
  const registry = options.registry ?? globalRegistry;
  if (typeof registry?.registerMetric !== 'function') {
    throw new TypeError(
      'Cannot register the tenancy metrics because registry is not a prom-client Registry.',
    );
  }
  const prefix = options.prefix ?? 'tenantry_';
  if (typeof prefix !== 'string' || (prefix !== '' && !PREFIX.test(prefix))) {
    throw new TypeError(
      `Cannot use prefix ${JSON.stringify(String(prefix))} because it is not a Prometheus metric name prefix. Use letters, digits, "_" or ":".`,
    );
  }
  const tenantLabel = options.tenantLabel ?? 'id';
  if (tenantLabel !== 'id' && tenantLabel !== 'none' && typeof tenantLabel !== 'function') {
    throw new TypeError(
      'Cannot use tenantLabel because it is not "id", "none" or a function (tenantId) => string.',
    );
  }
  const withTenant = tenantLabel !== 'none';
  const bucket = typeof tenantLabel === 'function' ? tenantLabel : undefined;
  const tenant = (id: string | undefined): string => {
    if (id === undefined) return '';
    if (bucket === undefined) return id;
    const label = bucket(id);
    return typeof label === 'string' ? label : String(label);
  };
  const labels = (names: string[]): string[] => (withTenant ? [...names, 'tenant'] : names);

  const registered: string[] = [];
  const make = <T extends Counter | Histogram>(create: () => T, name: string): T => {
    if (registry.getSingleMetric(name) !== undefined) {
      for (const done of registered) registry.removeSingleMetric(done);
      throw new TypeError(
        `Cannot register metric "${name}" because the registry already has it. Build prometheusTenancyMetrics() once per registry, or pass another prefix.`,
      );
    }
    const metric = create();
    registered.push(name);
    return metric;
  };
  const resolved = make(
    () =>
      new Counter({
        name: `${prefix}tenant_resolved_total`,
        help: 'Requests and WebSocket upgrades that resolved a tenant.',
        labelNames: labels(['source']),
        registers: [registry],
      }),
    `${prefix}tenant_resolved_total`,
  );
  const refusals = make(
    () =>
      new Counter({
        name: `${prefix}refusals_total`,
        help: 'Requests, statements and connection requests refused, by error code.',
        labelNames: labels(['code', 'stage']),
        registers: [registry],
      }),
    `${prefix}refusals_total`,
  );
  const statements = make(
    () =>
      new Counter({
        name: `${prefix}statements_total`,
        help: 'Statements sent through the tenant-scoped Knex.',
        labelNames: labels(['mode', 'tier', 'kind']),
        registers: [registry],
      }),
    `${prefix}statements_total`,
  );
  const poolWaits = make(
    () =>
      new Counter({
        name: `${prefix}pool_waits_total`,
        help: 'Database-mode connection requests that waited (pool: the tenant pool was busy; budget: the global connection budget was).',
        labelNames: labels(['reason']),
        registers: [registry],
      }),
    `${prefix}pool_waits_total`,
  );
  const poolWaitSeconds = make(
    () =>
      new Histogram({
        name: `${prefix}pool_wait_seconds`,
        help: 'How long database-mode connection requests waited, in seconds.',
        labelNames: ['reason'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
        registers: [registry],
      }),
    `${prefix}pool_wait_seconds`,
  );

  return Object.freeze({
    tenantResolved(event) {
      const values: Record<string, string> = { source: event.source };
      if (withTenant) values.tenant = tenant(event.tenantId);
      resolved.inc(values);
    },
    refused(event) {
      const values: Record<string, string> = { code: event.code, stage: event.stage };
      if (withTenant) values.tenant = tenant(event.tenantId);
      refusals.inc(values);
    },
    statement(event) {
      const values: Record<string, string> = {
        mode: event.mode,
        tier: event.tier,
        kind: event.kind,
      };
      if (withTenant) values.tenant = tenant(event.tenantId);
      statements.inc(values);
    },
    poolWait(event) {
      const values: Record<string, string> = { reason: event.reason };
      if (withTenant) values.tenant = tenant(event.tenantId);
      poolWaits.inc(values);
      poolWaitSeconds.observe({ reason: event.reason }, event.waitMs / 1000);
    },
  } satisfies TenancyMetrics);
}
