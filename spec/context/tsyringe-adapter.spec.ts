import { expect } from 'chai';
import express, { type Express, type Request, type Response } from 'express';
import request from 'supertest';
import {
  Lifecycle,
  injectable,
  container as rootContainer,
  type DependencyContainer,
  type InjectionToken,
} from 'tsyringe';
import {
  TenantContext,
  TenantScopeError,
  createTenantContainer,
  resolveTenant,
  tryCurrentTenant,
} from '../../src/index';
import { jsonErrors, testTenants } from '../support/create-app';

/** tsyringe's private registry of a container, as the adapter reads it. */
function ownTokens(child: DependencyContainer): unknown[] {
  const registry = (
    child as unknown as { _registry: { entries(): Iterable<[unknown, unknown[]]> } }
  )._registry;
  return [...registry.entries()].filter(([, regs]) => regs.length > 0).map(([token]) => token);
}

@injectable()
class Captures {
  constructor(readonly tenant: TenantContext) {}
}

let made = 0;
class PerRequest {
  readonly serial = (made += 1);
  readonly tenantId = tryCurrentTenant()?.id ?? 'none';
}

/** An app on `parent`: GET /twice resolves `token` twice from req.container. */
function appOn(parent: DependencyContainer, token: InjectionToken<PerRequest>): Express {
  const app = express();
  app.use(resolveTenant({ store: testTenants(), container: parent }));
  app.get('/twice', (req: Request, res: Response) => {
    const c = req.container as DependencyContainer;
    const a = c.resolve(token);
    const b = c.resolve(token);
    res.json({ a: a.serial, b: b.serial, tenant: a.tenantId });
  });
  app.use(jsonErrors);
  return app;
}

function fill(parent: DependencyContainer, count: number): void {
  for (let i = 0; i < count; i += 1) {
    if (i % 2 === 0) parent.register(Symbol(`value ${i}`), { useValue: i });
    else
      parent.register(
        Symbol(`class ${i}`),
        { useClass: PerRequest },
        { lifecycle: Lifecycle.Singleton },
      );
  }
}

describe('request containers (the one door to tsyringe internals)', () => {
  let parent: DependencyContainer;
  beforeEach(() => {
    parent = rootContainer.createChildContainer();
  });

  it('finds every internal it touches on this tsyringe version', () => {
    expect(() => resolveTenant({ store: testTenants(), container: parent })).to.not.throw();
  });

  /** A parent whose children lack `field`, as a tsyringe upgrade that dropped it would. */
  function parentWithout(field: string): DependencyContainer {
    const p = rootContainer.createChildContainer();
    const create = p.createChildContainer.bind(p);
    p.createChildContainer = () => {
      const child = create();
      delete (child as unknown as Record<string, unknown>)[field];
      return child;
    };
    return p;
  }

  for (const field of ['_registry', 'disposables', 'disposed']) {
    it(`refuses to start when containers have no ${field} (TENANCY_CONFIG_INVALID naming it)`, () => {
      expect(() => resolveTenant({ store: testTenants(), container: parentWithout(field) }))
        .to.throw()
        .that.satisfies(
          (e: { code?: string; message?: string }) =>
            e.code === 'TENANCY_CONFIG_INVALID' && e.message?.includes(field) === true,
        );
    });
  }

  it('holds only TenantContext and the ContainerScoped tokens, whatever the size of the parent', async () => {
    const scopedToken = Symbol('scoped');
    parent.register(
      scopedToken,
      { useClass: PerRequest },
      { lifecycle: Lifecycle.ContainerScoped },
    );
    fill(parent, 2000);
    // What tsyringe's own child holds (it walks all 2,000+ registrations to find
    // them): the ContainerScoped tokens of the parent, here scopedToken and any
    // the parent copied from the root container when it was created.
    const expected = ownTokens(parent.createChildContainer());
    expect(expected).to.include(scopedToken);
    expect(expected.length).to.be.below(20);
    const app = express();
    app.use(resolveTenant({ store: testTenants(), container: parent }));
    app.get('/tokens', (req: Request, res: Response) => {
      const tokens = ownTokens(req.container as DependencyContainer);
      res.json({
        count: tokens.length,
        same: expected.every((token) => tokens.includes(token)),
        ctx: tokens.includes(TenantContext),
      });
    });
    const res = await request(app).get('/tokens').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.deep.equal({ count: expected.length + 1, same: true, ctx: true });
  });

  it("does not walk the parent's registrations per request, only after they change", async () => {
    fill(parent, 500);
    const registry = (parent as unknown as { _registry: { entries(): unknown } })._registry;
    const entries = registry.entries;
    let walks = 0;
    registry.entries = function counted(this: unknown) {
      walks += 1;
      return entries.call(this);
    };
    const token = Symbol('scoped');
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const app = appOn(parent, token);
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    const before = walks;
    for (let i = 0; i < 5; i += 1) {
      await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    }
    expect(walks - before).to.equal(0);
    parent.register(Symbol('new'), { useValue: 1 });
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    expect(walks - before).to.equal(1);
  });

  it("registers the request's TenantContext on the request container itself, as register() would", async () => {
    const app = express();
    app.use(resolveTenant({ store: testTenants(), container: parent }));
    app.get('/ctx', (req: Request, res: Response) => {
      const c = req.container as DependencyContainer;
      const all = c.resolveAll(TenantContext);
      const own = c.isRegistered(TenantContext, false);
      const parentHasIt = parent.resolve(TenantContext) === req.tenant;
      // A later registration on the request container wins, as tsyringe's registry says.
      const other = new TenantContext({
        tenant: { id: 'other', name: 'Other', status: 'active', isolation: {}, config: {} },
      });
      c.register(TenantContext, { useValue: other });
      res.json({
        own,
        one: all.length === 1 && all[0] === req.tenant,
        parentHasIt,
        replaced: c.resolve(TenantContext) === other,
        child: c.createChildContainer().resolve(TenantContext) === other,
      });
    });
    app.use(jsonErrors);
    const res = await request(app).get('/ctx').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.deep.equal({
      own: true,
      one: true,
      parentHasIt: true,
      replaced: true,
      child: true,
    });
  });

  it('keeps ContainerScoped per request: one instance within a request, a new one per request', async () => {
    const token = Symbol('scoped');
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const app = appOn(parent, token);
    const one = (await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200)).body;
    const two = (await request(app).get('/twice').set('X-Tenant-ID', 'globex').expect(200)).body;
    expect(one.a).to.equal(one.b);
    expect(two.a).to.equal(two.b);
    expect(two.a).to.not.equal(one.a);
    expect([one.tenant, two.tenant]).to.deep.equal(['acme', 'globex']);
  });

  it('keeps ContainerScoped per request for a token registered after resolveTenant() was created', async () => {
    const token = Symbol('late');
    const app = appOn(parent, token);
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const one = (await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200)).body;
    const two = (await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200)).body;
    expect(one.a).to.equal(one.b);
    expect(two.a).to.not.equal(one.a);
  });

  it('follows a ContainerScoped token re-registered as a singleton (no stale copy)', async () => {
    const token = Symbol('changed');
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const app = appOn(parent, token);
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.Singleton });
    const one = (await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200)).body;
    const two = (await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200)).body;
    expect(two.a).to.equal(one.a);
  });

  it('forgets ContainerScoped tokens after parent.reset()', async () => {
    const token = Symbol('reset');
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const app = appOn(parent, token);
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(200);
    parent.reset();
    await request(app).get('/twice').set('X-Tenant-ID', 'acme').expect(500);
  });

  it('shares the other registrations of a token that also has a ContainerScoped one, as tsyringe does', () => {
    const token = Symbol('mixed');
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.Singleton });
    parent.register(token, { useClass: PerRequest }, { lifecycle: Lifecycle.ContainerScoped });
    const ctx = new TenantContext({
      tenant: { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} },
      source: 'header',
    });
    const [s1, c1] = createTenantContainer(ctx, parent).resolveAll<PerRequest>(token);
    const [s2, c2] = createTenantContainer(ctx, parent).resolveAll<PerRequest>(token);
    const [s3, c3] = parent.createChildContainer().resolveAll<PerRequest>(token);
    expect(s1).to.equal(s2).and.to.equal(s3);
    expect(c1).to.not.equal(c2);
    expect(c3).to.not.equal(c1);
  });

  it('refuses a disposed parent as createChildContainer() does', async () => {
    const ctx = new TenantContext({
      tenant: { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} },
      source: 'header',
    });
    createTenantContainer(ctx, parent);
    await parent.dispose();
    expect(() => createTenantContainer(ctx, parent)).to.throw(/disposed/);
  });

  it('makes a singleton of the parent that captured a request tenant fail loudly in the next request', async () => {
    parent.register(Captures, { useClass: Captures }, { lifecycle: Lifecycle.Singleton });
    const app = express();
    app.use(resolveTenant({ store: testTenants(), container: parent }));
    app.get('/capture', (req: Request, res: Response) => {
      const held = (req.container as DependencyContainer).resolve(Captures);
      try {
        res.json({ tenant: held.tenant.id });
      } catch (error) {
        res.status(500).json({ scope: error instanceof TenantScopeError });
      }
    });
    const first = await request(app).get('/capture').set('X-Tenant-ID', 'acme').expect(200);
    expect(first.body).to.deep.equal({ tenant: 'acme' });
    const res = await request(app).get('/capture').set('X-Tenant-ID', 'globex').expect(500);
    expect(res.body).to.deep.equal({ scope: true });
  });
});
