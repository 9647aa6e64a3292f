import type { TenantRecord, TenantTier } from '../../context/tenant-record';
import { TenantUnavailableError } from '../../errors';
import { quoteInput } from '../../message-text';

/**
 * The tiers a tenant can live on, in order of isolation.
 *
 * @example
 * ```ts
 * TENANT_TIERS.includes('schema'); // true
 * ```
 */
export const TENANT_TIERS: readonly TenantTier[] = Object.freeze(['row', 'schema', 'database']);

/**
 * Whether `value` names a tier (`row`, `schema` or `database`).
 *
 * @example
 * ```ts
 * isTenantTier(process.env.TIER); // narrows to TenantTier
 * ```
 */
export function isTenantTier(value: unknown): value is TenantTier {
  return value === 'row' || value === 'schema' || value === 'database';
}

/**
 * The tier a tenant lives on: its record's `isolation.tier`, or the
 * application's default tier when the record names none. A record naming
 * anything else (a hand-edited row, a bad JSON store) is refused with 503
 * `TENANT_UNAVAILABLE`: it is never served on a guessed tier.
 *
 * @example
 * ```ts
 * tenantTierOf({ id: 'acme', isolation: { tier: 'schema' } }, 'row'); // 'schema'
 * tenantTierOf({ id: 'beta', isolation: {} }, 'row'); // 'row'
 * ```
 */
export function tenantTierOf(
  record: Pick<TenantRecord, 'id'> & { readonly isolation?: TenantRecord['isolation'] | undefined },
  defaultTier: TenantTier,
): TenantTier {
  const tier: unknown = record.isolation?.tier;
  if (tier === undefined || tier === null) return defaultTier;
  if (!isTenantTier(tier)) {
    throw new TenantUnavailableError(
      `Cannot serve tenant ${quoteInput(record.id)} because its record names tier ${quoteInput(String(tier))}, ` +
        'which is not "row", "schema" or "database". Fix isolation.tier in the tenant store.',
    );
  }
  return tier;
}
