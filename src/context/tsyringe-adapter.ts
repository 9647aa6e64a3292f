/**
 * The one door to tsyringe's private internals (tsyringe 4.x, the peer
 * range). Every touch of something tsyringe does not document is here, with
 * a comment saying what it is and why; the rest of tenantry creates request
 * containers through {@link RequestContainerFactory}. {@link checkTsyringeInternals}
 * runs each touch on a scratch container when a factory is prepared (at
 * `resolveTenant()` / first `createTenantContainer()` time), so a tsyringe
 * upgrade that moves one fails at start-up with a message naming it.
 *
 * Why: tsyringe's `createChildContainer()` walks every registration of the
 * parent on each call, to copy the `Lifecycle.ContainerScoped` ones (≈ 9–13 µs
 * per request at 500 registrations, 65–90 µs at 2,000). The factory below
 * does exactly what `createChildContainer()` does — a container whose parent
 * is the same parent, holding fresh copies of the parent's ContainerScoped
 * registrations — but keeps the list of tokens to copy between requests and
 * rebuilds it only when the parent's registry changes. A request then costs
 * the same at 0 or 2,000 registrations (plus one copy per ContainerScoped
 * token, as in tsyringe).
 */
import { Lifecycle, type DependencyContainer, type InjectionToken } from 'tsyringe';
import { TenancyConfigError } from '../errors';

/** A tsyringe registration (`Registry` values): tsyringe exports no type for it. */
interface Registration {
  provider: unknown;
  options: { lifecycle?: Lifecycle };
  instance?: unknown;
}

/** tsyringe's `Registry` (`registry-base.js`): a Map from token to its registrations, last one wins. */
interface Registry {
  entries(): IterableIterator<[InjectionToken<unknown>, Registration[]]>;
  set(token: InjectionToken<unknown>, registration: Registration): void;
  setAll(token: InjectionToken<unknown>, registrations: Registration[]): void;
  clear(): void;
}

/** The private fields of tsyringe's `InternalDependencyContainer` that tenantry reads. */
interface InternalContainer {
  /** Touch 1: the container's own registrations (not its parent's). */
  _registry: Registry;
  /** Touch 2: set by `dispose()`; a disposed parent must not get children. */
  disposed: boolean;
  /** Touch 3: the instances `dispose()` will dispose (a `Set`). */
  disposables: Set<unknown>;
}

/** Touch 4: tsyringe's container class, whose constructor takes the parent container. */
type ContainerClass = new (parent?: DependencyContainer) => DependencyContainer;

/** Creates per-request children of one parent. */
export interface RequestContainerFactory {
  /** A child of the parent with fresh copies of its ContainerScoped registrations (what `createChildContainer()` returns). */
  createChild(): DependencyContainer;
  /**
   * {@link createChild} with `token` registered on the child as `value`
   * (what `child.register(token, { useValue: value })` stores).
   */
  createChildWithValue<T>(token: InjectionToken<T>, value: T): DependencyContainer;
}

const prepared = new WeakMap<DependencyContainer, RequestContainerFactory>();

function internal(container: DependencyContainer): InternalContainer {
  return container as unknown as InternalContainer;
}

/** What tsyringe's `createChildContainer()` does to each registration of a token with a ContainerScoped one. */
function copyForChild(registration: Registration): Registration {
  return registration.options.lifecycle === Lifecycle.ContainerScoped
    ? { provider: registration.provider, options: registration.options }
    : registration;
}

function broken(what: string): never {
  throw new TenancyConfigError(
    `Cannot create per-request containers because tsyringe no longer has ${what}, which ` +
      "tenantry's request containers rely on. Use a tsyringe version in tenantry's peer range (^4.8).",
  );
}

/**
 * Verifies every touch on a scratch child of `parent` (so the parent is not
 * changed): throws `TenancyConfigError` (`TENANCY_CONFIG_INVALID`) naming
 * the first one that is broken.
 */
export function checkTsyringeInternals(parent: DependencyContainer): void {
  const scratch = parent.createChildContainer();
  const inner = internal(scratch) as Partial<InternalContainer>;
  const registry = inner._registry as Partial<Registry> | undefined;
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.entries !== 'function' ||
    typeof registry.set !== 'function' ||
    typeof registry.setAll !== 'function' ||
    typeof registry.clear !== 'function'
  ) {
    broken('a container `_registry` with entries(), set(), setAll() and clear()');
  }
  if (inner.disposed !== false) broken('a `disposed` flag on containers');
  if (!(inner.disposables instanceof Set)) broken('a `disposables` Set on containers');
  const Container = (scratch as { constructor?: unknown }).constructor;
  if (typeof Container !== 'function') broken('a container class');

  class Probe {}
  const token = Symbol('tenantry.probe');
  scratch.register(Probe, { useClass: Probe }, { lifecycle: Lifecycle.ContainerScoped });
  scratch.register(token, { useValue: 'probe' });
  const found = [...(registry as Registry).entries()].find(([key]) => key === Probe)?.[1];
  if (
    !Array.isArray(found) ||
    found.length !== 1 ||
    found[0]?.options?.lifecycle !== Lifecycle.ContainerScoped ||
    (found[0].provider as { useClass?: unknown } | undefined)?.useClass !== Probe
  ) {
    broken('registrations of the shape { provider, options: { lifecycle } } in `_registry`');
  }
  const factory = buildFactory(scratch, Container as ContainerClass);
  const one = factory.createChild();
  const two = factory.createChild();
  if (one.resolve<string>(token) !== 'probe' || !one.isRegistered(token, true)) {
    broken('a container constructor that takes the parent container');
  }
  const valued = factory.createChildWithValue(token, 'own');
  if (valued.resolve<string>(token) !== 'own' || !valued.isRegistered(token, false)) {
    broken('value registrations of the shape { provider: { useValue }, options } in `_registry`');
  }
  if (one.resolve(Probe) !== one.resolve(Probe) || one.resolve(Probe) === two.resolve(Probe)) {
    broken('ContainerScoped copies in a child `_registry`');
  }
  // The registry wrappers must see a registration made after the factory was built.
  class Later {}
  scratch.register(Later, { useClass: Later }, { lifecycle: Lifecycle.ContainerScoped });
  const three = factory.createChild();
  if (three.resolve(Later) === factory.createChild().resolve(Later)) {
    broken('`_registry.set()` as the way registrations are added');
  }
}

function buildFactory(
  parent: DependencyContainer,
  Container: ContainerClass,
): RequestContainerFactory {
  const parentInternal = internal(parent);
  const registry = parentInternal._registry;
  // Touch 1: every change to the parent's own registrations goes through these
  // three methods (register* call set(); clearInstances() calls setAll();
  // reset() calls clear()), so wrapping them on this registry instance tells
  // us when the list of ContainerScoped tokens may have changed.
  let version = 0;
  for (const method of ['set', 'setAll', 'clear'] as const) {
    const original = registry[method] as (...args: unknown[]) => void;
    registry[method] = function changed(this: Registry, ...args: unknown[]): void {
      version += 1;
      original.apply(this, args);
    } as never;
  }
  let builtFor = -1;
  let scoped: (readonly [InjectionToken<unknown>, Registration[]])[] = [];
  const rebuild = (): void => {
    const next: (readonly [InjectionToken<unknown>, Registration[]])[] = [];
    for (const [token, registrations] of registry.entries()) {
      if (registrations.some((r) => r.options.lifecycle === Lifecycle.ContainerScoped)) {
        next.push([token, registrations]);
      }
    }
    scoped = next;
    builtFor = version;
  };
  // What register(token, { useValue }) stores: a value provider, transient.
  const transient = { lifecycle: Lifecycle.Transient };
  const factory: RequestContainerFactory = {
    createChildWithValue<T>(token: InjectionToken<T>, value: T): DependencyContainer {
      const child = factory.createChild();
      // Touch 1: the registration register() would store, without its
      // per-call provider checks (a value provider has nothing to check).
      internal(child)._registry.set(token, { provider: { useValue: value }, options: transient });
      return child;
    },
    createChild(): DependencyContainer {
      // Touch 2: what createChildContainer() checks first.
      if (parentInternal.disposed) {
        throw new Error(
          'This container has been disposed, you cannot interact with a disposed container',
        );
      }
      if (builtFor !== version) rebuild();
      // Touch 4: `new Container(parent)` is what createChildContainer() does.
      const child = new Container(parent);
      const own = internal(child)._registry;
      // Touch 1 again: fresh ContainerScoped copies, the other registrations of
      // the token shared, exactly as createChildContainer() sets them.
      for (let i = 0; i < scoped.length; i += 1) {
        const [token, registrations] = scoped[i] as readonly [
          InjectionToken<unknown>,
          Registration[],
        ];
        own.setAll(token, registrations.map(copyForChild));
      }
      return child;
    },
  };
  return factory;
}

/**
 * The request-container factory of `parent`, prepared (and its touches
 * checked) on first use and kept for the parent's lifetime.
 */
export function requestContainerFactory(parent: DependencyContainer): RequestContainerFactory {
  let factory = prepared.get(parent);
  if (factory === undefined) {
    checkTsyringeInternals(parent);
    factory = buildFactory(
      parent,
      (parent as unknown as { constructor: ContainerClass }).constructor,
    );
    prepared.set(parent, factory);
  }
  return factory;
}

// Touch 3 state: what armAtFirstDisposable() left on a child's `disposables` Set.
const ARMED = Symbol('tenantry.armed');
interface Armed<T> {
  readonly child: DependencyContainer;
  readonly owner: T;
  readonly whenFirst: (child: DependencyContainer, owner: T) => void;
}
type ArmedSet = Set<unknown> & { [ARMED]?: Armed<unknown> };

// One `add` for every armed Set (no closure per request): the first
// disposable added calls the Set's whenFirst, once.
function addAndArm(this: ArmedSet, value: unknown): ArmedSet {
  const armed = this[ARMED];
  if (armed !== undefined && this.size === 0) {
    this[ARMED] = undefined;
    armed.whenFirst(armed.child, armed.owner);
  }
  return Set.prototype.add.call(this, value) as ArmedSet;
}

/**
 * Calls `whenFirst(child, owner)` the first time `child` receives a
 * disposable (an instance with `dispose()`), so a request that creates none
 * pays for no `close` listener and no async `dispose()`. `whenFirst` should
 * be one function made once (it is shared, not bound per call). Returns
 * false (nothing armed) when the container has no `disposables` Set; the
 * caller then always disposes.
 */
export function armAtFirstDisposable<T>(
  child: DependencyContainer,
  owner: T,
  whenFirst: (child: DependencyContainer, owner: T) => void,
): boolean {
  // Touch 3: tsyringe adds each constructed disposable to this Set.
  const disposables = (internal(child) as Partial<InternalContainer>).disposables as
    ArmedSet | undefined;
  if (!(disposables instanceof Set)) return false;
  disposables[ARMED] = { child, owner, whenFirst } as Armed<unknown>;
  disposables.add = addAndArm;
  return true;
}
