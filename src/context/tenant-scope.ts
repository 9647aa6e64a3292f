import { TenantScopeError } from '../errors';
import { emitTenancyAudit } from './audit';
import { TenantContext } from './tenant-context';
import { assertValidTenantId } from './tenant-id';
import type { TenantRecord } from './tenant-record';
import { activeScope, tenantScopeStorage } from './tenant-scope-storage';
import { quoteInput } from '../message-text';

/** What `runWithTenant()` accepts as the tenant. */
export type TenantLike = TenantContext | TenantRecord | string;

function toContext(tenant: TenantLike): TenantContext {
  if (tenant instanceof TenantContext) return tenant;
  if (typeof tenant === 'string') {
    const id = assertValidTenantId(tenant, 'runWithTenant() argument');
    return new TenantContext({
      tenant: { id, name: id, status: 'active', isolation: {}, config: {} },
      source: 'explicit',
      trusted: true,
    });
  }
  assertValidTenantId(tenant.id, 'tenant record');
  return new TenantContext({ tenant, source: 'explicit', trusted: true });
}

/**
 * Runs `fn` with `tenant` as the current tenant: for jobs, scripts, the CLI
 * and tests. Everything `fn` starts (promises, timers, callbacks) sees the
 * tenant; the caller's own scope is untouched. Nested calls replace the
 * tenant for their inner function only.
 *
 * It checks nothing about the tenant: a string id becomes a minimal
 * `active` record, whether the tenant exists, is suspended, archived or
 * deleted. Use it where the tenant is already checked (tests, code that
 * loaded the record itself); jobs and scripts should use `runForTenant()`
 * (or `runTenantJob()`), which load the record and refuse what HTTP refuses.
 * Pass the record from your tenant store when services need its config or
 * isolation settings.
 *
 * @example
 * ```ts
 * await runWithTenant('acme', async () => {
 *   await container.resolve(DocumentService).list();
 * });
 * ```
 */
export function runWithTenant<T>(tenant: TenantLike, fn: () => T): T {
  return runInTenantScope(toContext(tenant), fn);
}

/**
 * Runs `fn` with `context` as the current tenant: the per-request entry of
 * `resolveTenant()`, without `runWithTenant()`'s argument checks (the context
 * is already built and validated). `request` is the HTTP request the scope
 * was entered for (so a later `resolveTenant()` or `requireTenant()` on the
 * same request finds its tenant without reading the request). Internal.
 */
export function runInTenantScope<T>(context: TenantContext, fn: () => T, request?: object): T {
  return tenantScopeStorage.run({ kind: 'tenant', context, captured: undefined, request }, fn);
}

/**
 * The tenant of `request` in the current scope: the one `resolveTenant()`
 * entered this scope with for that request, or a `request.tenant` that is the
 * current scope's tenant (set by an app inside a scope it entered itself);
 * else `undefined` (no scope, or a stale `request.tenant` from another one:
 * fail closed). Reads nothing of the request when no tenant scope is active.
 * Internal.
 */
export function tenantOfRequest(request: {
  readonly tenant?: TenantContext | undefined;
}): TenantContext | undefined {
  const scope = activeScope();
  if (scope === undefined || scope.kind !== 'tenant') return undefined;
  if (scope.request === request) return scope.context;
  return request.tenant === scope.context ? scope.context : undefined;
}

/**
 * Runs `fn` in an explicit, audited system scope with no tenant: the only
 * way for non-request code to use unscoped queries on tenant tables. An
 * audit event (`system_scope`) is emitted with the reason.
 *
 * @example
 * ```ts
 * await runAsSystem('nightly usage report', () => reports.buildForAllTenants());
 * ```
 */
export function runAsSystem<T>(reason: string, fn: () => T): T {
  if (typeof reason !== 'string' || reason.trim() === '') {
    throw new TypeError('runAsSystem(reason, fn) needs a non-empty reason for the audit log.');
  }
  const outer = activeScope();
  emitTenancyAudit({
    type: 'system_scope',
    reason,
    ...(outer?.kind === 'tenant' ? { tenantId: outer.context.id } : {}),
  });
  return tenantScopeStorage.run({ kind: 'system', reason, captured: undefined }, fn);
}

/**
 * The tenant of the current scope, or a thrown {@link TenantScopeError} when
 * there is none (fail closed).
 *
 * @example
 * ```ts
 * const { id } = currentTenant();
 * ```
 */
export function currentTenant(): TenantContext {
  const scope = activeScope();
  if (scope?.kind === 'tenant') return scope.context;
  throw new TenantScopeError(
    scope?.kind === 'system'
      ? `Cannot read the current tenant because this code runs in a system scope (${quoteInput(scope.reason)}). ` +
          'Use runWithTenant() for per-tenant work.'
      : 'Cannot read the current tenant because no tenant scope is active. ' +
          'Use resolveTenant() for requests or runWithTenant() for jobs and scripts.',
  );
}

/**
 * The tenant of the current scope, or `undefined` when there is none.
 *
 * @example
 * ```ts
 * const tenantId = tryCurrentTenant()?.id ?? 'none';
 * ```
 */
export function tryCurrentTenant(): TenantContext | undefined {
  const scope = activeScope();
  return scope?.kind === 'tenant' ? scope.context : undefined;
}

/**
 * The reason of the current system scope, or `undefined` outside one.
 *
 * @example
 * ```ts
 * if (currentSystemReason()) logger.info('running as system');
 * ```
 */
export function currentSystemReason(): string | undefined {
  const scope = activeScope();
  return scope?.kind === 'system' ? scope.reason : undefined;
}
