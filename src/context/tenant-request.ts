import type { Request } from 'express';
import type { DependencyContainer } from 'tsyringe';
import type { TenantContext, TenantUser } from './tenant-context';

// Declaration merging: importing tenantry adds these fields to every Express Request.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request's tenant, set by `resolveTenant()` when a tenant was resolved. */
      tenant?: TenantContext;
      /** The verified user (from the token or the `getUser` option), set by `resolveTenant()`. */
      tenantUser?: TenantUser;
      /** The per-request child container holding the request's `TenantContext`. */
      container?: DependencyContainer;
    }
  }
}

/**
 * A request on which `resolveTenant()` resolved a tenant (what handlers
 * behind `requireTenant()` receive).
 *
 * @example
 * ```ts
 * router.get('/docs', requireTenant(), (req, res) => {
 *   const { tenant, container } = req as TenantRequest;
 *   res.json(container.resolve(DocumentService).list(tenant.id));
 * });
 * ```
 */
export type TenantRequest = Request & {
  readonly tenant: TenantContext;
  readonly container: DependencyContainer;
};
