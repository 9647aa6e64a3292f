import type { TenantRecord, TenantTier } from '../../context/tenant-record';

/**
 * The tier a record lives on: its own `isolation.tier`, else the
 * application's default tier (`isolation.mode`).
 */
export function doctorTierOf(record: TenantRecord, defaultTier: TenantTier): TenantTier {
  return record.isolation.tier ?? defaultTier;
}
