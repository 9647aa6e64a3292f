/**
 * An audit event: something crossed the tenant wall on purpose (a system
 * scope, an unscoped query) and says why.
 */
export interface TenancyAuditEvent {
  /** What happened. */
  readonly type: 'system_scope' | 'unscoped_query' | 'raw_query_allowed';
  /** The reason the caller gave. Always non-empty. */
  readonly reason: string;
  /** The tenant active at the time, if any. */
  readonly tenantId?: string | undefined;
  /** When it happened. */
  readonly at: Date;
  /** Extra detail (e.g. the SQL of an unscoped statement). */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

/** A function that receives audit events. */
export type TenancyAuditListener = (event: TenancyAuditEvent) => void;

const listeners = new Set<TenancyAuditListener>();

/**
 * Subscribes to audit events; returns the function that unsubscribes.
 * Listeners must not throw: an exception is swallowed so that auditing can
 * never change what the audited code does.
 *
 * @example
 * ```ts
 * const stop = onTenancyAudit((e) => logger.warn('tenancy audit', { ...e }));
 * ```
 */
export function onTenancyAudit(listener: TenancyAuditListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** Emits an audit event to every listener. Internal to tenantry. */
export function emitTenancyAudit(event: Omit<TenancyAuditEvent, 'at'>): void {
  const full: TenancyAuditEvent = Object.freeze({ ...event, at: new Date() });
  for (const listener of listeners) {
    try {
      listener(full);
    } catch {
      // An audit sink that throws must not change the outcome of the audited work.
    }
  }
}
