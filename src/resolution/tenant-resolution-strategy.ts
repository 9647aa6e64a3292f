import type { Request } from 'express';
import type { TenantUser } from '../context/tenant-context';

/**
 * What one strategy found on a request.
 *
 * @example
 * ```ts
 * const found: TenantResolution = { tenantId: 'acme', trusted: false };
 * ```
 */
export interface TenantResolution {
  /**
   * The tenant id the request names, exactly as sent (the chain validates it
   * against `TENANT_ID_PATTERN` before any lookup). Omit when the strategy
   * found only a user (e.g. a token without a tenant claim).
   */
  readonly tenantId?: string | undefined;
  /**
   * Whether the id comes from a verified source (a signed token). Header,
   * host and path are client-influenced: `false`.
   */
  readonly trusted: boolean;
  /** The authenticated user, if the strategy verified one. */
  readonly user?: TenantUser | undefined;
  /**
   * Called once the chain accepted the tenant, before downstream handlers
   * run (the path strategy uses it to strip the tenant segment).
   */
  readonly accept?: ((req: Request) => void) | undefined;
}

/**
 * A way to find the tenant of a request. Built-in: `HeaderStrategy`,
 * `JwtClaimStrategy`, `SubdomainStrategy`, `PathStrategy`. Return
 * `undefined` when the request does not use this strategy; throw a
 * `TenancyError` when it uses it wrongly, e.g. a forged token: a request is
 * refused rather than silently resolved by another strategy. Anything else
 * thrown or rejected (a bug) is refused too, as 500
 * `TENANT_RESOLUTION_FAILED`; it never crashes the process.
 *
 * @example
 * ```ts
 * const cookieStrategy: TenantResolutionStrategy = {
 *   name: 'cookie',
 *   resolve: (req) => {
 *     const id = parseCookies(req.headers.cookie).tenant;
 *     return id === undefined ? undefined : { tenantId: id, trusted: false };
 *   },
 * };
 * app.use(resolveTenant({ store, strategies: ['jwt_claim', cookieStrategy] }));
 * ```
 */
export interface TenantResolutionStrategy {
  /** The source name recorded on the TenantContext (`header`, `jwt_claim`, ...). */
  readonly name: string;
  /** Finds the tenant (and/or user) named by `req`. */
  resolve(req: Request): TenantResolution | undefined | Promise<TenantResolution | undefined>;
}
