import { injectable } from 'tsyringe';
import { TenantContext, TenantScoped } from '../src/index';
import { DEFAULT_TENANT_SETTINGS } from './demo-tenants';

/** What `GET /settings` answers. */
export interface OrganizationSettings {
  readonly tenant: { readonly id: string; readonly name: string; readonly status: string };
  /** Application defaults overridden by the tenant's own config. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/**
 * The organization (tenant) endpoints. `@TenantScoped()` makes every method
 * throw `TENANT_SCOPE_REQUIRED` when called outside a tenant scope, so a
 * route mounted by mistake without `resolveTenant()` fails closed.
 */
@TenantScoped()
@injectable()
export class OrganizationController {
  constructor(private readonly tenant: TenantContext) {}

  /** The tenant's settings: defaults, then the tenant's config on top. */
  settings(): OrganizationSettings {
    const record = this.tenant.tenant;
    return {
      tenant: { id: record.id, name: record.name, status: record.status },
      settings: { ...DEFAULT_TENANT_SETTINGS, ...record.config },
    };
  }
}
