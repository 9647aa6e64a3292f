import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ClaimPath } from '../context/claim-path';
import {
  claimMembership,
  type ClaimMembershipOptions,
  type TenantMembershipCheck,
} from '../context/tenant-membership';
import { tenantOfRequest } from '../context/tenant-scope';
import {
  AuthenticationRequiredError,
  TenancyConfigError,
  TenantConflictError,
  TenantForbiddenError,
  TenantRequiredError,
} from '../errors';

/** Options of {@link requireTenant}. */
export interface RequireTenantOptions {
  /**
   * Also demand an authenticated user (`req.tenantUser`): 401
   * `AUTHENTICATION_REQUIRED` otherwise. Use it where a tenant named only by
   * a header, host or path must not be enough. Default: `false`.
   */
  readonly requireUser?: boolean | undefined;
  /**
   * Membership check re-run for an authenticated user when the tenant came
   * from a client-influenced source. Pass the same check you gave
   * `resolveTenant()`: the default is deliberately independent of it (defence
   * in depth), so a too-loose resolver check cannot admit a non-member here.
   * Default: `claimMembership({ claim, tenantsClaim })`.
   */
  readonly isMember?: TenantMembershipCheck | undefined;
  /** Claim path of the user's tenant id, for the default check. Default: `tid`. */
  readonly claim?: ClaimPath | undefined;
  /** Claim path of the user's tenant ids, for the default check. Default: `tenants`. */
  readonly tenantsClaim?: ClaimPath | undefined;
  /**
   * A route parameter that names the tenant (`/api/v1/:tenant` with the path
   * strategy's `stripTenantSegment: false`): it must equal the resolved
   * tenant, else 403 `TENANT_CONFLICT`, so a handler reading
   * `req.params.tenant` never acts for a tenant that was not resolved and
   * checked. Mount the guard on the parameterised path:
   * `app.use('/api/v1/:tenant', requireTenant({ param: 'tenant' }), router)`.
   * Default: none.
   */
  readonly param?: string | undefined;
  /** Maps claim values to tenant ids for the default check (as the jwt_claim `mapTenantId`). Default: none. */
  readonly mapTenantId?: ClaimMembershipOptions['mapTenantId'] | undefined;
}

/**
 * Router-level guard (the seed's TenancyGuard): a request without a resolved
 * tenant is refused with 401 `TENANT_REQUIRED`; an authenticated user who is
 * not a member of a client-named tenant with 403 `TENANT_FORBIDDEN`;
 * optionally an unauthenticated request with 401 `AUTHENTICATION_REQUIRED`.
 * Put it after `resolveTenant()`.
 *
 * @example
 * ```ts
 * app.use(resolveTenant({ store, strategies: ['jwt_claim', 'header'], jwt }));
 * app.use('/api', requireTenant({ requireUser: true }), apiRouter);
 * ```
 */
export function requireTenant(options: RequireTenantOptions = {}): RequestHandler {
  const requireUser = options.requireUser ?? false;
  if (typeof requireUser !== 'boolean') {
    throw new TenancyConfigError(
      'Cannot use requireTenant({ requireUser }) because it is not a boolean.',
    );
  }
  const isMember =
    options.isMember ??
    claimMembership({
      claim: options.claim ?? 'tid',
      tenantsClaim: options.tenantsClaim ?? 'tenants',
      ...(options.mapTenantId !== undefined ? { mapTenantId: options.mapTenantId } : {}),
    });
  if (typeof isMember !== 'function') {
    throw new TenancyConfigError(
      'Cannot use requireTenant({ isMember }) because it is not a function (user, tenantId, req) => boolean.',
    );
  }

  const param = options.param;
  if (param !== undefined && (typeof param !== 'string' || param === '')) {
    throw new TenancyConfigError(
      'Cannot use requireTenant({ param }) because it is not a route parameter name such as "tenant".',
    );
  }

  return function requireTenantMiddleware(req: Request, _res: Response, next: NextFunction): void {
    try {
      // Read from the scope where it can be (each property read of an Express
      // request is a V8 map miss). A context from another scope (a stale
      // req.tenant) does not count: fail closed.
      const tenant = tenantOfRequest(req);
      if (tenant === undefined) throw new TenantRequiredError();
      if (param !== undefined) {
        const named: unknown = (req.params as Record<string, unknown> | undefined)?.[param];
        if (named !== tenant.id) {
          throw new TenantConflictError(
            `Cannot serve this route because its :${param} parameter does not name the resolved tenant "${tenant.id}". Use the tenant's own path.`,
          );
        }
      }
      const user = req.tenantUser;
      if (user === undefined) {
        if (requireUser) throw new AuthenticationRequiredError();
      } else if (!tenant.trusted) {
        const member = isMember(user, tenant.id, req);
        if (typeof member === 'object' && member !== null && typeof member.then === 'function') {
          // Only a literal true admits: a check that answers anything else fails closed.
          member.then((ok) => (ok === true ? next() : next(forbidden(tenant.id))), next);
          return;
        }
        if (member !== true) throw forbidden(tenant.id);
      }
    } catch (error) {
      next(error);
      return;
    }
    next();
  };
}

function forbidden(tenantId: string): TenantForbiddenError {
  return new TenantForbiddenError(
    `Cannot access tenant "${tenantId}" because the user is not a member of it.`,
  );
}
