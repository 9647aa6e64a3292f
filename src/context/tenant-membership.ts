import type { Request } from 'express';
import { TenancyConfigError } from '../errors';
import { parseClaimPath, readClaim, type ClaimPath } from './claim-path';
import type { TenantUser } from './tenant-context';

/**
 * Decides whether an authenticated user belongs to a tenant. Used by
 * `resolveTenant()` for tenants named by client-influenced sources (header,
 * subdomain, path) and re-checked by `requireTenant()`. May be async (look
 * the membership up in your database).
 *
 * @example
 * ```ts
 * const isMember: TenantMembershipCheck = async (user, tenantId) =>
 *   memberships.exists({ userId: user.id, tenantId });
 * ```
 */
export type TenantMembershipCheck = (
  user: TenantUser,
  tenantId: string,
  req: Request,
) => boolean | Promise<boolean>;

/** Options of {@link claimMembership}. */
export interface ClaimMembershipOptions {
  /** Claim path of the user's tenant id (`tid`, `org.id`, `https://example.com/claims.tenant`). Default: `tid`. */
  readonly claim?: ClaimPath | undefined;
  /** Claim path of an array of the user's tenant ids. Default: `tenants`. */
  readonly tenantsClaim?: ClaimPath | undefined;
  /**
   * Maps each claim value (the tenant claim and every entry of the tenants
   * claim) to a tenant id before comparing, like the jwt_claim strategy's
   * `mapTenantId`. Default: values are compared as they are.
   */
  readonly mapTenantId?:
    | ((claimValue: unknown, claims: Readonly<Record<string, unknown>>) => string | undefined)
    | undefined;
}

/**
 * The default membership check: the user is a member of `tenantId` when the
 * token's tenant claim equals it or its tenants array claim contains it.
 *
 * @example
 * ```ts
 * const isMember = claimMembership({ claim: 'org', tenantsClaim: 'orgs' });
 * isMember({ id: 'u1', claims: { orgs: ['acme'] } }, 'acme', req); // true
 * ```
 */
export function claimMembership(options: ClaimMembershipOptions = {}): TenantMembershipCheck {
  const claim = parseClaimPath(options.claim ?? 'tid');
  const tenantsClaim = parseClaimPath(options.tenantsClaim ?? 'tenants');
  if (claim === undefined || tenantsClaim === undefined) {
    throw new TenancyConfigError(
      'Cannot check membership because claim or tenantsClaim is not a claim path. Use e.g. "tid", "org.id" or "https://example.com/claims.tenants".',
    );
  }
  const map = options.mapTenantId;
  return function isClaimMember(user: TenantUser, tenantId: string): boolean {
    const own = readClaim(user.claims, claim);
    if ((map ? map(own, user.claims) : own) === tenantId) return true;
    const tenants = readClaim(user.claims, tenantsClaim);
    return (
      Array.isArray(tenants) &&
      tenants.some((t: unknown) => (map ? map(t, user.claims) : t) === tenantId)
    );
  };
}
