import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { TenantContext } from './tenant-context';
import { currentTenant } from './tenant-scope';
import { requestContainerFactory, type RequestContainerFactory } from './tsyringe-adapter';

/**
 * Registers `TenantContext` on a container (default: tsyringe's root
 * container) as a factory that reads the current scope on every resolution,
 * so `container.resolve(DocumentService)` inside a request gets that
 * request's tenant, and outside any scope throws `TenantScopeError`.
 *
 * tenantry calls this for the root container when it is imported; call it
 * again after `container.reset()` or for a container of your own.
 *
 * @example
 * ```ts
 * container.reset();
 * registerTenancy(container);
 * ```
 */
export function registerTenancy(target: DependencyContainer = rootContainer): DependencyContainer {
  // A plain factory (not instanceCachingFactory): caching would pin the first tenant.
  target.register(TenantContext, { useFactory: () => currentTenant() });
  return target;
}

/**
 * Creates the per-request child container: `TenantContext` is registered as
 * the request's own value, so services resolved from it (and everything they
 * depend on) get this tenant. Dispose it when the request ends.
 *
 * @example
 * ```ts
 * const child = createTenantContainer(ctx);
 * const docs = child.resolve(DocumentService);
 * ```
 */
export function createTenantContainer(
  context: TenantContext,
  parent: DependencyContainer = rootContainer,
): DependencyContainer {
  ensureTenancyRegistered(parent);
  return createRequestContainer(context, requestContainerFactory(parent));
}

/** Registers the `TenantContext` factory on `parent` unless it (or an ancestor) has one. Internal. */
export function ensureTenancyRegistered(parent: DependencyContainer): void {
  if (!parent.isRegistered(TenantContext, true)) registerTenancy(parent);
}

/**
 * The per-request child made by `factory` (prepared once, at start-up, for a
 * parent already checked by {@link ensureTenancyRegistered}). Internal.
 */
export function createRequestContainer(
  context: TenantContext,
  factory: RequestContainerFactory,
): DependencyContainer {
  return factory.createChildWithValue(TenantContext, context);
}

registerTenancy(rootContainer);
