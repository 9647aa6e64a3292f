import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { TenantRequiredError } from '../errors';
import type { TenantRequest } from '../context/tenant-request';

/**
 * A route handler that receives a {@link TenantRequest}: `req.tenant` and
 * `req.container` are not optional.
 */
export type TenantHandler = (req: TenantRequest, res: Response, next: NextFunction) => unknown;

/**
 * The request as a {@link TenantRequest}, or 401 `TENANT_REQUIRED` when no
 * tenant of the current scope was resolved for it (no `resolveTenant()`, no
 * tenant named, or a `req.tenant` left over from another scope). Next to
 * {@link tryTenantRequest}, which answers `undefined` instead.
 *
 * @example
 * ```ts
 * router.get('/docs', (req, res) => {
 *   const { container } = getTenantRequest(req);
 *   res.json(container.resolve(DocumentService).list());
 * });
 * ```
 */
export function getTenantRequest(req: Request): TenantRequest {
  const found = tryTenantRequest(req);
  if (found === undefined) throw new TenantRequiredError();
  return found;
}

/**
 * The request as a {@link TenantRequest}, or `undefined` when it has no
 * active tenant.
 *
 * @example
 * ```ts
 * const tenantReq = tryTenantRequest(req);
 * if (tenantReq) log(tenantReq.tenant.id);
 * ```
 */
export function tryTenantRequest(req: Request): TenantRequest | undefined {
  const { tenant, container } = req;
  if (tenant === undefined || container === undefined || !tenant.isActive()) return undefined;
  return req as TenantRequest;
}

/**
 * Wraps a handler whose `req.tenant` and `req.container` are typed as
 * present — and are, checked at run time: a request without an active tenant
 * goes to `next()` with 401 `TENANT_REQUIRED` instead of reaching it. A
 * handler that throws or returns a rejected promise passes the error to
 * `next(err)`. Put it behind `requireTenant()` (which also re-checks
 * membership); it compiles under `strict` where `req.container.resolve()`
 * on a plain `Request` does not.
 *
 * @example
 * ```ts
 * app.use('/api', requireTenant(), apiRouter);
 * apiRouter.get('/docs', tenantHandler(async (req, res) => {
 *   res.json(await req.container.resolve(DocumentService).list(req.tenant.id));
 * }));
 * ```
 */
export function tenantHandler(handler: TenantHandler): RequestHandler {
  if (typeof handler !== 'function') {
    throw new TypeError('Cannot wrap a tenant handler that is not a function (req, res, next).');
  }
  return function tenantHandlerMiddleware(req: Request, res: Response, next: NextFunction): void {
    let result: unknown;
    try {
      result = handler(getTenantRequest(req), res, next);
    } catch (error) {
      next(error);
      return;
    }
    if (
      typeof result === 'object' &&
      result !== null &&
      typeof (result as { then?: unknown }).then === 'function'
    ) {
      (result as Promise<unknown>).then(undefined, (error: unknown) => next(error));
    }
  };
}
