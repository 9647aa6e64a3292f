/**
 * The four servers the HTTP benches compare, built alike for the wall-clock
 * bench (`http.bench.ts`) and the instruction-count one
 * (`http-instructions.bench.ts`). Not library code.
 *
 *   A bare     bare Express: the handler builds the service itself;
 *   F floor    the least any design with the same parts must do, by hand: one
 *              AsyncLocalStorage scope, one tsyringe child container holding
 *              the tenant, the service resolved through it, a route check; its
 *              child containers come from a container prepared once that holds
 *              only the app container's ContainerScoped copies;
 *   N naive    the same by hand with the app container's own
 *              `createChildContainer()` per request (walks every registration);
 *   B tenanted resolveTenant() (header strategy, warm CachedTenantStore) +
 *              requireTenant() + the service resolved from `req.container`.
 *
 * Every side gets the same requests (`x-tenant-id: tenant-<n % TENANTS>`).
 */
import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Lifecycle, container, injectable, type DependencyContainer } from 'tsyringe';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  TenantContext,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
} from '../../src/index';

export type Side = 'bare' | 'floor' | 'naive' | 'tenanted';
export const SIDES: readonly Side[] = ['bare', 'floor', 'naive', 'tenanted'];
export const LABEL: Record<Side, string> = {
  bare: 'A bare Express                ',
  floor: 'F floor, by hand              ',
  naive: 'N by hand, createChildContainer',
  tenanted: 'B tenantry chain              ',
};

/** Tenants the requests rotate through. */
export const TENANTS = 100;
/** ContainerScoped registrations among the app container's, when it has any. */
export const CONTAINER_SCOPED = 5;

/** What the handler builds: the same object on every side. */
@injectable()
class Greeting {
  constructor(private readonly tenant?: TenantContext) {}
  body(): { tenant: string; items: number[] } {
    return { tenant: this.tenant?.id ?? 'none', items: [1, 2, 3] };
  }
}

function handler(req: Request, res: Response): void {
  // B, F and N resolve through the request's child container; A builds the service itself.
  const greeting = req.container ? req.container.resolve(Greeting) : new Greeting();
  res.json(greeting.body());
}

class Registered {}

/** The app's container: `size` registrations of the kinds apps have. */
export function appContainer(size: number): DependencyContainer {
  const app = container.createChildContainer();
  for (let i = 0; i < size; i += 1) {
    const token = Symbol(`registration ${i}`);
    if (i < CONTAINER_SCOPED) {
      app.register(token, { useClass: Registered }, { lifecycle: Lifecycle.ContainerScoped });
    } else if (i % 4 === 0) app.register(token, { useValue: i });
    else if (i % 4 === 1) app.register(token, { useClass: Registered });
    else if (i % 4 === 2) app.registerSingleton(token, Registered);
    else app.register(token, { useFactory: () => i });
  }
  return app;
}

export const tenantIds: readonly string[] = Array.from(
  { length: TENANTS },
  (_, i) => `tenant-${i}`,
);

/** The app of one side, its parent container holding `size` registrations. */
export function sideApp(side: Side, size: number): express.Express {
  if (side === 'bare') {
    const bare = express();
    bare.disable('x-powered-by');
    bare.get('/documents', handler);
    return bare;
  }
  const parent = appContainer(size);
  if (side === 'tenanted') {
    const store = new CachedTenantStore(
      new InMemoryTenantStore(tenantIds.map((id) => ({ id, name: id }))),
      { ttlMs: 600_000 },
    );
    const tenanted = express();
    tenanted.disable('x-powered-by');
    tenanted.use(resolveTenant({ store, strategies: ['header'], container: parent }));
    tenanted.get('/documents', requireTenant(), handler);
    tenanted.use(tenancyErrorHandler());
    return tenanted;
  }
  // F and N, by hand. A plain { id } object stands in for TenantContext (no
  // scope check), looked up in a Map (no validation, no store, no cache).
  const floorTenants = new Map(tenantIds.map((id) => [id, { id }]));
  const floorScope = new AsyncLocalStorage<{ id: string }>();
  // F: children of a container prepared once here, holding only the app
  // container's ContainerScoped copies, so a request copies those and nothing
  // else; everything else resolves through it to the app container.
  const prepared = parent.createChildContainer();
  const childOf =
    side === 'floor' ? () => prepared.createChildContainer() : () => parent.createChildContainer();
  const app = express();
  app.disable('x-powered-by');
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const tenant = floorTenants.get(String(req.headers['x-tenant-id']));
    if (tenant === undefined) {
      next();
      return;
    }
    const child = childOf();
    child.register(TenantContext, { useValue: tenant as unknown as TenantContext });
    req.container = child;
    floorScope.run(tenant, next);
  });
  app.get(
    '/documents',
    (req: Request, res: Response, next: NextFunction) => {
      if (req.container === undefined) res.status(401).end();
      else next();
    },
    handler,
  );
  return app;
}
