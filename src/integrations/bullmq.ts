/**
 * tenantry/bullmq: carry the tenant through a BullMQ queue.
 *
 * Only BullMQ's *types* are imported, so this module loads without BullMQ
 * (an optional peer); the functions work on any queue with `add(name, data)`
 * and any job with `data`, `id` and `name`.
 */
import type { Job, JobsOptions } from 'bullmq';
import { runTenantJob, tenantJob, type TenantJob } from '../context/run-for-tenant';
import type { TenantContext } from '../context/tenant-context';
import { TenancyError } from '../errors';
import { toTenancyLogger, withLogFields, type TenancyLoggerInput } from '../logger';
import type { TenantStore } from '../store/tenant-store';

/**
 * The part of a BullMQ `Queue` that {@link addTenantJob} uses: a
 * `Queue<TenantJob<D>>` fits.
 *
 * @example
 * ```ts
 * const queue: TenantJobQueue<{ invoiceId: number }> = new Queue('invoices', { connection });
 * ```
 */
export interface TenantJobQueue<D, J = Job<TenantJob<D>>> {
  /** BullMQ's `Queue.add()`. */
  add(name: string, data: TenantJob<D>, options?: JobsOptions): Promise<J>;
}

/**
 * Enqueues `data` as a job of the current tenant: the payload is
 * `tenantJob(data)`, i.e. `{ tenantId, data }`. Throws 500
 * `TENANT_SCOPE_REQUIRED` outside a tenant scope, before anything reaches
 * Redis (a job enqueued by a request belongs to that request's tenant).
 *
 * @example
 * ```ts
 * import { addTenantJob } from 'tenantry/bullmq';
 * app.post('/invoices/:id/send', async (req, res) => {
 *   await addTenantJob(queue, 'send-invoice', { invoiceId: Number(req.params.id) });
 *   res.status(202).end();
 * });
 * ```
 */
export function addTenantJob<D, J>(
  queue: TenantJobQueue<D, J>,
  name: string,
  data: D,
  options?: JobsOptions,
): Promise<J> {
  if (typeof queue !== 'object' || queue === null || typeof queue.add !== 'function') {
    throw new TypeError('addTenantJob(queue, name, data) needs a BullMQ Queue as queue.');
  }
  const payload = tenantJob(data);
  return options === undefined ? queue.add(name, payload) : queue.add(name, payload, options);
}

/** What a tenant job's handler receives besides its data. */
export interface TenantJobRun<D> {
  /** The BullMQ job (its payload is `{ tenantId, data }`). */
  readonly job: Job<TenantJob<D>>;
  /** The tenant, loaded from the store and checked active. */
  readonly tenant: TenantContext;
}

/** Options of {@link tenantJobProcessor}. */
export interface TenantJobProcessorOptions {
  /**
   * Where a refused job (unknown, suspended, archived or deleted tenant, a
   * payload without a valid `tenantId`) is logged, at `warn`, with the job
   * id and name, the tenant id and the error code. A pino, bunyan, winston or
   * console-style logger.
   * Default: nothing is logged (the job still fails).
   *
   * @example
   * ```ts
   * tenantJobProcessor(store, handler, { logger: pino() });
   * ```
   */
  readonly logger?: TenancyLoggerInput | undefined;
}

/**
 * Builds a BullMQ processor that runs each job in its tenant's scope: the
 * tenant captured by {@link addTenantJob} is loaded from `store` and checked
 * as `resolveTenant()` checks a request (through `runTenantJob`). A job of a
 * tenant suspended, archived or deleted since it was enqueued fails with the
 * coded error (403 `TENANT_SUSPENDED`, 404 `TENANT_NOT_FOUND`; 400
 * `TENANT_INVALID` for a payload without a valid `tenantId`) and `handler`
 * does not run: the worker's `failed` event receives that error, and the
 * job's `failedReason` is its message. Inside `handler`, `withTenancy()`
 * queries are scoped to the job's tenant and `tenantLogFields()` carries
 * `tenantId`, `jobId` and `jobName`.
 *
 * @example
 * ```ts
 * import { Worker } from 'bullmq';
 * import { tenantJobProcessor } from 'tenantry/bullmq';
 * const worker = new Worker(
 *   'invoices',
 *   tenantJobProcessor(store, async ({ invoiceId }: { invoiceId: number }) => {
 *     await db('invoices').where({ id: invoiceId }).update({ sent: true }); // this tenant's row only
 *   }),
 *   { connection },
 * );
 * worker.on('failed', (job, err) => log.warn({ jobId: job?.id, code: (err as TenancyError).code }));
 * ```
 */
export function tenantJobProcessor<D, R>(
  store: TenantStore,
  handler: (data: D, run: TenantJobRun<D>) => R | Promise<R>,
  options: TenantJobProcessorOptions = {},
): (job: Job<TenantJob<D>>) => Promise<R> {
  if (typeof store !== 'object' || store === null || typeof store.findById !== 'function') {
    throw new TypeError('tenantJobProcessor(store, handler) needs a TenantStore as store.');
  }
  if (typeof handler !== 'function') {
    throw new TypeError('tenantJobProcessor(store, handler) needs a function as handler.');
  }
  const logger = toTenancyLogger(options.logger);
  return function tenantJobProcess(job: Job<TenantJob<D>>): Promise<R> {
    const fields = { jobId: job.id, jobName: job.name };
    return withLogFields(fields, () =>
      runTenantJob(store, job.data, (data: D, tenant) => handler(data, { job, tenant })).catch(
        (error: unknown) => {
          if (error instanceof TenancyError) {
            const raw: unknown = (job.data as { tenantId?: unknown } | null)?.tenantId;
            logger.warn('tenant job refused', {
              ...fields,
              tenantId: typeof raw === 'string' ? raw.slice(0, 64) : undefined,
              code: error.code,
            });
          }
          throw error;
        },
      ),
    );
  };
}

export type { TenantJob } from '../context/run-for-tenant';
