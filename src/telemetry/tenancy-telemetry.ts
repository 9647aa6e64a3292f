import type { TenantTier } from '../context/tenant-record';
import {
  silentLogger,
  toTenancyLogger,
  type TenancyLogger,
  type TenancyLoggerInput,
} from '../logger';
import { openTelemetryTrace, type TelemetrySpan } from './opentelemetry-trace';
import type { TenancyMetrics, TenancyRefusalStage } from './tenancy-metrics';

/** Default span attribute that carries the tenant id. */
export const DEFAULT_TENANT_ATTRIBUTE = 'tenant.id';

/**
 * Options of {@link tenancyTelemetry}.
 *
 * @example
 * ```ts
 * const telemetry = tenancyTelemetry({ tenantAttribute: 'app.tenant', tracing: true });
 * ```
 */
export interface TenancyTelemetryOptions {
  /**
   * Write the tenant on the active OpenTelemetry span: the `tenantAttribute`
   * when `resolveTenant()` resolves a tenant, and a `tenantry.statement`
   * event (tenant, statement kind, mode) or `tenantry.statement.refused`
   * event (its code) per scoped statement. Needs `@opentelemetry/api` and a
   * registered tracer provider; without either it costs one check per
   * statement. Default: `true`.
   */
  readonly tracing?: boolean | undefined;
  /** The span attribute (and event attribute) holding the tenant id. Default: `tenant.id`. */
  readonly tenantAttribute?: string | undefined;
  /** Receives the counters (see {@link TenancyMetrics}). Default: none. */
  readonly metrics?: TenancyMetrics | undefined;
  /** Where a throwing metrics method is reported (at `warn`). Default: `silentLogger`. */
  readonly logger?: TenancyLoggerInput | undefined;
}

/**
 * Tracing and metrics settings, made by {@link tenancyTelemetry} and passed
 * as the `telemetry` option of `resolveTenant()` and `withTenancy()` (share
 * one object, so both write the same attribute to the same metrics).
 */
export interface TenancyTelemetry {
  /** Whether spans are written (when OpenTelemetry is there). */
  readonly tracing: boolean;
  /** The span attribute holding the tenant id. */
  readonly tenantAttribute: string;
  /** The metrics sink, if any. */
  readonly metrics: TenancyMetrics | undefined;
  /** Where throwing metrics methods are reported. */
  readonly logger: TenancyLogger;
}

const ATTRIBUTE = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const METRIC_METHODS = ['tenantResolved', 'refused', 'statement', 'poolWait'] as const;

/**
 * Builds the tracing and metrics settings that `resolveTenant({ telemetry })`
 * and `withTenancy(knex, { telemetry })` take. Without a `telemetry` option
 * both trace with the defaults (`tenant.id`, no metrics); `telemetry: false`
 * turns every hook off. Bad options throw TypeError here.
 *
 * @example
 * ```ts
 * import { prometheusTenancyMetrics } from 'tenantry/prometheus';
 * const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
 * app.use(resolveTenant({ store, telemetry }));
 * const db = withTenancy(knex, { tenantTables: ['documents'], telemetry });
 * ```
 */
export function tenancyTelemetry(options: TenancyTelemetryOptions = {}): TenancyTelemetry {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      'Cannot build telemetry because its options are not an object. Pass { metrics, tracing }.',
    );
  }
  const tracing = options.tracing ?? true;
  if (typeof tracing !== 'boolean') {
    throw new TypeError('Cannot use tracing because it is not a boolean. Pass true or false.');
  }
  const tenantAttribute = options.tenantAttribute ?? DEFAULT_TENANT_ATTRIBUTE;
  if (typeof tenantAttribute !== 'string' || !ATTRIBUTE.test(tenantAttribute)) {
    throw new TypeError(
      `Cannot use tenantAttribute ${JSON.stringify(String(tenantAttribute))} because it is not an attribute name. Use letters, digits, "_", "." or "-", e.g. "tenant.id".`,
    );
  }
  const metrics = options.metrics;
  if (metrics !== undefined) {
    if (typeof metrics !== 'object' || metrics === null) {
      throw new TypeError('Cannot use metrics because it is not an object. Pass a TenancyMetrics.');
    }
    for (const name of METRIC_METHODS) {
      const method: unknown = metrics[name];
      if (method !== undefined && typeof method !== 'function') {
        throw new TypeError(`Cannot use metrics.${name} because it is not a function.`);
      }
    }
  }
  return Object.freeze({
    tracing,
    tenantAttribute,
    metrics,
    logger: options.logger === undefined ? silentLogger : toTenancyLogger(options.logger),
  });
}

/** The `telemetry` option of the factories: settings, or `false` for none. */
export type TelemetryOption = TenancyTelemetry | false;

/** What the tenant-scoped Knexes report per statement (a captured scope, structurally). */
export type StatementScope =
  | {
      readonly kind: 'tenant';
      readonly id: string;
      readonly record: {
        readonly isolation?: { readonly tier?: TenantTier | undefined } | undefined;
      };
    }
  | { readonly kind: 'system' }
  | { readonly kind: 'none' };

/** Internal: the hooks the engine calls, built once per factory. */
export interface TelemetryHooks {
  tenantResolved(tenantId: string, source: string): void;
  resolutionRefused(code: string): void;
  statement(scope: StatementScope, mode: TenantTier, method: unknown, sql: unknown): void;
  statementRefused(scope: StatementScope, mode: TenantTier, code: string): void;
  poolWait(tenantId: string, reason: 'pool' | 'budget', waitMs: number): void;
  poolRefused(tenantId: string, code: string): void;
}

const METHOD_KINDS: Readonly<Record<string, string>> = {
  select: 'select',
  first: 'select',
  pluck: 'select',
  insert: 'insert',
  update: 'update',
  counter: 'update',
  del: 'delete',
  upsert: 'insert',
};
// Leading keywords of proven statements: a bounded set, so `kind` is a safe metric label.
const SQL_KINDS = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'with',
  'merge',
  'values',
  'begin',
  'commit',
  'rollback',
  'savepoint',
  'release',
  'set',
  'show',
  'table',
]);

/** A statement's kind from knex's `method`, or from its leading SQL keyword (raw SQL). */
export function statementKind(method: unknown, sql: unknown): string {
  if (typeof method === 'string' && method !== 'raw') {
    const kind = METHOD_KINDS[method];
    if (kind !== undefined) return kind;
  }
  if (typeof sql !== 'string') return 'other';
  const word = /^[\s(]*([A-Za-z]+)/.exec(sql)?.[1]?.toLowerCase();
  return word !== undefined && SQL_KINDS.has(word) ? word : 'other';
}

/**
 * The hooks of one factory, or undefined when nothing would be recorded
 * (`telemetry: false`, or no metrics and no `@opentelemetry/api`), so the
 * engine skips the call entirely.
 */
export function telemetryHooks(option: TelemetryOption | undefined): TelemetryHooks | undefined {
  if (option === false) return undefined;
  if (
    option !== undefined &&
    (typeof option !== 'object' || option === null || typeof option.tracing !== 'boolean')
  ) {
    throw new TypeError(
      'Cannot use telemetry because it is not made by tenancyTelemetry(). Pass tenancyTelemetry({ ... }) or false.',
    );
  }
  const settings = option ?? DEFAULT_TELEMETRY;
  const trace = settings.tracing ? openTelemetryTrace() : undefined;
  const metrics = settings.metrics;
  if (trace === undefined && metrics === undefined) return undefined;
  const attribute = settings.tenantAttribute;
  const logger = settings.logger;
  const recording = (): TelemetrySpan | undefined => {
    if (trace === undefined) return undefined;
    const span = trace.getActiveSpan();
    return span !== undefined && span.isRecording() ? span : undefined;
  };
  const count = <E>(name: (typeof METRIC_METHODS)[number], event: E): void => {
    const method = metrics?.[name] as ((event: E) => void) | undefined;
    if (method === undefined) return;
    try {
      method.call(metrics, event);
    } catch (error) {
      logger.warn('tenantry metrics failed', { metric: name, error });
    }
  };
  const tierOf = (scope: StatementScope, mode: TenantTier): TenantTier =>
    scope.kind === 'tenant' ? (scope.record.isolation?.tier ?? mode) : mode;

  return Object.freeze({
    tenantResolved(tenantId: string, source: string): void {
      recording()?.setAttribute(attribute, tenantId);
      if (metrics !== undefined) count('tenantResolved', { tenantId, source });
    },
    resolutionRefused(code: string): void {
      recording()?.addEvent('tenantry.resolution.refused', { 'tenantry.refusal.code': code });
      count('refused', { code, stage: 'resolution' satisfies TenancyRefusalStage });
    },
    statement(scope: StatementScope, mode: TenantTier, method: unknown, sql: unknown): void {
      // The hot path: with no recording span and no metrics, one check and out.
      const span = recording();
      if (span === undefined && metrics === undefined) return;
      const kind = statementKind(method, sql);
      const tenantId = scope.kind === 'tenant' ? scope.id : undefined;
      if (span !== undefined) {
        const attributes: Record<string, string> = {
          'tenantry.scope': scope.kind,
          'tenantry.statement.kind': kind,
          'tenantry.isolation.mode': mode,
        };
        if (tenantId !== undefined) {
          attributes[attribute] = tenantId;
          span.setAttribute(attribute, tenantId);
        }
        span.addEvent('tenantry.statement', attributes);
      }
      count('statement', { tenantId, scope: scope.kind, mode, tier: tierOf(scope, mode), kind });
    },
    statementRefused(scope: StatementScope, mode: TenantTier, code: string): void {
      const span = recording();
      if (span === undefined && metrics === undefined) return;
      const tenantId = scope.kind === 'tenant' ? scope.id : undefined;
      if (span !== undefined) {
        const attributes: Record<string, string> = {
          'tenantry.scope': scope.kind,
          'tenantry.refusal.code': code,
          'tenantry.isolation.mode': mode,
        };
        if (tenantId !== undefined) attributes[attribute] = tenantId;
        span.addEvent('tenantry.statement.refused', attributes);
      }
      count('refused', { code, stage: 'statement', tenantId });
    },
    poolWait(tenantId: string, reason: 'pool' | 'budget', waitMs: number): void {
      recording()?.addEvent('tenantry.pool.wait', {
        [attribute]: tenantId,
        'tenantry.pool.wait.reason': reason,
        'tenantry.pool.wait.ms': waitMs.toFixed(3),
      });
      count('poolWait', { tenantId, reason, waitMs });
    },
    poolRefused(tenantId: string, code: string): void {
      count('refused', { code, stage: 'pool', tenantId });
    },
  });
}

const DEFAULT_TELEMETRY: TenancyTelemetry = tenancyTelemetry();
