import {
  TenancyError,
  TenantInvalidError,
  TenantNotFoundError,
  TenantSuspendedError,
  TenantUnavailableError,
} from '../errors';
import type { TenantStore } from '../store/tenant-store';
import { TenantContext } from './tenant-context';
import { assertValidTenantId, isValidTenantId } from './tenant-id';
import type { TenantRecord } from './tenant-record';
import { currentTenant, runInTenantScope } from './tenant-scope';
import { quoteInput } from '../message-text';

/**
 * Throws what HTTP answers for a tenant that may not be served: 404
 * `TENANT_NOT_FOUND` when unknown or `deleted`, 403 `TENANT_SUSPENDED` for
 * any status but `active` and `moving` (an online move's write freeze, when
 * reads are served). Returns the record otherwise.
 *
 * @example
 * ```ts
 * const tenant = assertServableTenant('acme', await store.findById('acme'));
 * ```
 */
export function assertServableTenant(id: string, record: TenantRecord | undefined): TenantRecord {
  if (record === undefined || record.status === 'deleted') {
    throw new TenantNotFoundError(`Cannot find tenant ${quoteInput(id)}. Check the tenant id.`);
  }
  // `moving`: served; writes are refused during the freeze (503 by resolveTenant, and by the database).
  if (record.status !== 'active' && record.status !== 'moving') {
    throw new TenantSuspendedError(
      `Cannot serve tenant ${quoteInput(id)} because it is ${record.status.replace('_', ' ')}. Contact its administrator.`,
    );
  }
  return record;
}

/**
 * Runs `fn` as tenant `id` after loading its record from `store` and
 * checking it exactly as `resolveTenant()` does for a request: a malformed
 * id is 400 `TENANT_INVALID`, an unknown or deleted tenant 404
 * `TENANT_NOT_FOUND`, a suspended, archived or not yet provisioned one 403
 * `TENANT_SUSPENDED`, a failing store 503 `TENANT_UNAVAILABLE`; `fn` does
 * not run then. This is the entry for jobs, scripts and consumers, where
 * `runWithTenant('acme', …)` would trust the bare id (it checks nothing).
 * A `CachedTenantStore` answers from its cache: a status change is seen once
 * the manager invalidated it (or the TTL passed).
 *
 * @example
 * ```ts
 * await runForTenant(store, job.tenantId, async (tenant) => {
 *   await container.resolve(InvoiceService).send(tenant.id);
 * });
 * ```
 */
export async function runForTenant<T>(
  store: TenantStore,
  id: string,
  fn: (tenant: TenantContext) => T | Promise<T>,
): Promise<T> {
  const valid = assertValidTenantId(id, 'runForTenant() argument');
  let record: TenantRecord | undefined;
  try {
    record = await store.findById(valid);
  } catch (cause) {
    if (cause instanceof TenancyError) throw cause;
    throw new TenantUnavailableError(
      `Cannot look up tenant "${valid}" because the tenant store failed. Retry later.`,
      { cause },
    );
  }
  const context = new TenantContext({
    tenant: assertServableTenant(valid, record),
    source: 'explicit',
    trusted: true,
  });
  return runInTenantScope(context, () => fn(context));
}

/**
 * A job payload that carries its tenant: plain data, safe to serialise
 * (JSON) into any queue. Build it with {@link tenantJob}, run it with
 * {@link runTenantJob}.
 *
 * @example
 * ```ts
 * const job: TenantJob<{ invoiceId: number }> = { tenantId: 'acme', data: { invoiceId: 42 } };
 * ```
 */
export interface TenantJob<T> {
  /** The tenant that was current when the job was enqueued. */
  readonly tenantId: string;
  /** The job's own data. */
  readonly data: T;
}

/**
 * Captures the current tenant into a job payload at enqueue time; throws
 * 500 `TENANT_SCOPE_REQUIRED` outside a tenant scope (a job enqueued by a
 * request always belongs to that request's tenant).
 *
 * @example
 * ```ts
 * await queue.add('send-invoice', tenantJob({ invoiceId: 42 }));
 * ```
 */
export function tenantJob<T>(data: T): TenantJob<T> {
  return { tenantId: currentTenant().id, data };
}

/**
 * Runs a job built by {@link tenantJob} (typically after a trip through a
 * queue as JSON) in its tenant's scope, with the checks of
 * {@link runForTenant}: a job of a tenant suspended, archived or deleted
 * since it was enqueued does not run. A payload without a well-formed
 * `tenantId` is 400 `TENANT_INVALID`.
 *
 * @example
 * ```ts
 * worker.process('send-invoice', (payload) =>
 *   runTenantJob(store, payload, ({ invoiceId }: { invoiceId: number }) => invoices.send(invoiceId)),
 * );
 * ```
 */
export function runTenantJob<T, R>(
  store: TenantStore,
  job: TenantJob<T> | unknown,
  fn: (data: T, tenant: TenantContext) => R | Promise<R>,
): Promise<R> {
  const tenantId =
    typeof job === 'object' && job !== null ? (job as { tenantId?: unknown }).tenantId : undefined;
  if (!isValidTenantId(tenantId)) {
    return Promise.reject(
      new TenantInvalidError(
        'Cannot run the job because its payload carries no valid tenantId. Build payloads with tenantJob().',
      ),
    );
  }
  return runForTenant(store, tenantId, (tenant) => fn((job as TenantJob<T>).data, tenant));
}
