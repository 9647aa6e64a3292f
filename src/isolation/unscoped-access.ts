import type { Knex } from 'knex';
import { emitTenancyAudit } from '../context/audit';
import { tryCurrentTenant } from '../context/tenant-scope';
import type { UnscopedOptions } from './tenant-knex';

/**
 * The `unscoped({ reason })` of a routing TenantKnex (database mode, tiers):
 * checks the reason, emits the `unscoped_query` audit event (with the
 * current tenant, if any) and hands out the plain base Knex.
 */
export function auditedUnscoped(base: Knex): (opts: UnscopedOptions) => Knex {
  return (opts) => {
    if (typeof opts?.reason !== 'string' || opts.reason.trim() === '') {
      throw new TypeError('db.unscoped({ reason }) needs a non-empty reason for the audit log.');
    }
    const tenantId = tryCurrentTenant()?.id;
    emitTenancyAudit({
      type: 'unscoped_query',
      reason: opts.reason,
      ...(tenantId !== undefined ? { tenantId } : {}),
    });
    return base;
  };
}
