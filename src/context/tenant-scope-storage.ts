import { AsyncLocalStorage } from 'node:async_hooks';
import type { TenantContext } from './tenant-context';

/**
 * What the AsyncLocalStorage scope holds: a tenant, or an audited system
 * scope. `captured` is a slot the isolation engine fills once per scope (its
 * snapshot of the scope for statements), so each builder does not rebuild it.
 */
export type TenantScopeState =
  | {
      readonly kind: 'tenant';
      readonly context: TenantContext;
      captured: object | undefined;
      /** The HTTP request whose scope this is, when `resolveTenant()` entered it. */
      readonly request: object | undefined;
    }
  | { readonly kind: 'system'; readonly reason: string; captured: object | undefined };

/**
 * The one AsyncLocalStorage of tenantry. It is only ever entered with
 * `run()` (never `enterWith()`), so a scope cannot leak into the caller's
 * continuation or into a concurrent request.
 */
export const tenantScopeStorage = new AsyncLocalStorage<TenantScopeState>();

/** The state of the current scope, if any. */
export function activeScope(): TenantScopeState | undefined {
  return tenantScopeStorage.getStore();
}
