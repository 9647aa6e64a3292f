import type { Request } from 'express';
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
  /** Claim holding the user's tenant id. Default: `tid`. */
  readonly claim?: string | undefined;
  /** Claim holding an array of the user's tenant ids. Default: `tenants`. */
  readonly tenantsClaim?: string | undefined;
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
  const claim = options.claim ?? 'tid';
  const tenantsClaim = options.tenantsClaim ?? 'tenants';
  return function isClaimMember(user: TenantUser, tenantId: string): boolean {
    if (user.claims[claim] === tenantId) return true;
    const tenants = user.claims[tenantsClaim];
    return Array.isArray(tenants) && tenants.some((t) => t === tenantId);
  };
}
