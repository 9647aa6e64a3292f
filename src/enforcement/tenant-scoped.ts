import { tryCurrentTenant } from '../context/tenant-scope';
import { TenantScopeError } from '../errors';

type AnyMethod = (...args: never[]) => unknown;

function isAsyncFunction(fn: AnyMethod): boolean {
  const kind = fn.constructor?.name;
  return kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction';
}

function scopeError(owner: string, method: string): TenantScopeError {
  return new TenantScopeError(
    `Cannot call ${owner}.${method}() because no tenant is active. Call it inside a request handled by resolveTenant() or inside runWithTenant().`,
  );
}

function guard<F extends AnyMethod>(fn: F, owner: string, method: string): F {
  const async = isAsyncFunction(fn);
  const guarded = function (this: unknown, ...args: Parameters<F>): unknown {
    if (tryCurrentTenant() === undefined) {
      // An async method must fail like one (a rejected promise), so .catch() handlers see it.
      if (async) return Promise.reject(scopeError(owner, method));
      throw scopeError(owner, method);
    }
    return fn.apply(this, args);
  };
  Object.defineProperty(guarded, 'name', { value: fn.name });
  return guarded as unknown as F;
}

/**
 * Marks a class or a method as tenant-scoped (the seed's `@tenant_scoped()`):
 * calling a scoped method with no active tenant throws `TenantScopeError`
 * (500 `TENANT_SCOPE_REQUIRED`) before the method body runs; async methods
 * return a rejected promise instead. On a class, every prototype method is
 * guarded (not the constructor, getters or setters); the class itself is
 * returned unchanged, so tsyringe metadata keeps working.
 *
 * @example
 * ```ts
 * @TenantScoped()
 * @injectable()
 * class DocumentService {
 *   constructor(private readonly tenant: TenantContext) {}
 *   async list() { ... }
 * }
 *
 * class ReportJob {
 *   @TenantScoped()
 *   run() { ... }
 * }
 * ```
 */
export function TenantScoped(): ClassDecorator & MethodDecorator {
  return function tenantScoped(
    target: object,
    key?: string | symbol,
    descriptor?: PropertyDescriptor,
  ): void | PropertyDescriptor {
    if (key !== undefined && descriptor !== undefined) {
      if (typeof descriptor.value !== 'function') {
        throw new TypeError(
          `Cannot apply @TenantScoped() to ${String(key)} because it is not a method.`,
        );
      }
      const owner = typeof target === 'function' ? target.name : target.constructor.name;
      return { ...descriptor, value: guard(descriptor.value as AnyMethod, owner, String(key)) };
    }
    if (typeof target !== 'function') {
      throw new TypeError('Cannot apply @TenantScoped() here. Use it on a class or a method.');
    }
    const proto = (target as { prototype: object }).prototype;
    for (const name of Reflect.ownKeys(proto)) {
      if (name === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (d === undefined || typeof d.value !== 'function') continue;
      Object.defineProperty(proto, name, {
        ...d,
        value: guard(d.value as AnyMethod, target.name, String(name)),
      });
    }
  } as ClassDecorator & MethodDecorator;
}
