import { expect } from 'chai';
import express, { type Express, type Request } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { Lifecycle, injectable, scoped } from 'tsyringe';
import {
  CachedTenantStore,
  TenancyConfigError,
  TenantForbiddenError,
  loadTenancyConfig,
  resolveTenant,
  tryCurrentTenant,
  type TenantResolutionStrategy,
  type TenantUser,
} from '../../src/index';
import {
  CountingTenantStore,
  HS_SECRET,
  createApp,
  echo,
  hsToken,
  jsonErrors,
  testTenants,
} from '../support/create-app';

const jwt = { algorithms: ['HS256'], secret: HS_SECRET };
const chain = { strategies: ['jwt_claim' as const, 'header' as const], jwt };

const disposed: string[] = [];
@injectable()
@scoped(Lifecycle.ContainerScoped)
class RequestResource {
  readonly tenantId = tryCurrentTenant()?.id ?? 'none';
  dispose(): void {
    disposed.push(this.tenantId);
  }
}

describe('resolveTenant()', () => {
  it('returns a named handler', () => {
    expect(resolveTenant({ store: testTenants() }).name).to.equal('resolveTenantMiddleware');
  });

  describe('chain', () => {
    it('accepts agreeing sources and records the trusted one', async () => {
      const { app } = createApp(chain);
      const res = await request(app)
        .get('/')
        .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
        .set('X-Tenant-ID', 'acme')
        .expect(200);
      expect(res.body).to.include({ tenant: 'acme', source: 'jwt_claim', trusted: true });
    });

    it('falls through to the next strategy when the first names nothing', async () => {
      const { app } = createApp(chain);
      const res = await request(app).get('/').set('X-Tenant-ID', 'globex').expect(200);
      expect(res.body).to.include({
        tenant: 'globex',
        source: 'header',
        trusted: false,
        user: null,
      });
    });

    it('answers 403 TENANT_CONFLICT when the token and the header disagree, without a lookup', async () => {
      const { app, store } = createApp(chain);
      const res = await request(app)
        .get('/')
        .auth(hsToken({ tid: 'acme', tenants: ['acme', 'globex'] }), { type: 'bearer' })
        .set('X-Tenant-ID', 'globex')
        .expect(403);
      expect(res.body.code).to.equal('TENANT_CONFLICT');
      expect(store.findByIdCalls).to.equal(0);
    });

    it('answers 403 TENANT_CONFLICT for host versus header and path versus header (never first-wins)', async () => {
      const sub = createApp({ strategies: ['subdomain', 'header'], domain: 'lexigram.dev' });
      const a = await request(sub.app)
        .get('/')
        .set('Host', 'acme.lexigram.dev')
        .set('X-Tenant-ID', 'globex');
      expect([a.status, a.body.code]).to.deep.equal([403, 'TENANT_CONFLICT']);
      const path = createApp({ strategies: ['header', 'path'] });
      const b = await request(path.app).get('/api/v1/acme/x').set('X-Tenant-ID', 'globex');
      expect([b.status, b.body.code]).to.deep.equal([403, 'TENANT_CONFLICT']);
      expect(sub.store.findByIdCalls + path.store.findByIdCalls).to.equal(0);
    });

    it('runs user-defined strategies, sync or async, trusted or not', async () => {
      const fromQuery: TenantResolutionStrategy = {
        name: 'query',
        resolve: async (req) => {
          await sleep(1);
          const t = req.query.tenant;
          return typeof t === 'string' ? { tenantId: t, trusted: false } : undefined;
        },
      };
      const { app } = createApp({ strategies: [fromQuery, 'header'] });
      const res = await request(app).get('/?tenant=globex').expect(200);
      expect(res.body).to.include({ tenant: 'globex', source: 'query', trusted: false });
      const conflict = await request(app)
        .get('/?tenant=globex')
        .set('X-Tenant-ID', 'acme')
        .expect(403);
      expect(conflict.body.code).to.equal('TENANT_CONFLICT');
      const invalid = await request(app).get('/?tenant=GLOBEX').expect(400);
      expect(invalid.body.code).to.equal('TENANT_INVALID');
    });

    it('passes a TenancyError thrown by a custom strategy to the error handler', async () => {
      const refusing: TenantResolutionStrategy = {
        name: 'refusing',
        resolve: () => {
          throw new TenantForbiddenError('Cannot access anything. Go away.');
        },
      };
      const { app } = createApp({ strategies: [refusing] });
      expect((await request(app).get('/').expect(403)).body.code).to.equal('TENANT_FORBIDDEN');
    });
  });

  describe('warm and async paths', () => {
    it('passes a rejection of an async custom strategy to the error handler', async () => {
      const refusing: TenantResolutionStrategy = {
        name: 'refusing-async',
        resolve: async () => {
          await sleep(1);
          throw new TenantForbiddenError('Cannot access anything. Go away.');
        },
      };
      const { app } = createApp({ strategies: ['header', refusing] });
      const res = await request(app).get('/').set('X-Tenant-ID', 'acme').expect(403);
      expect(res.body.code).to.equal('TENANT_FORBIDDEN');
    });

    it('serves warm requests from a CachedTenantStore without store calls, and refuses cached suspended or unknown tenants', async () => {
      const inner = new CountingTenantStore(testTenants());
      const cached = new CachedTenantStore(inner);
      // Built by hand: createApp() would wrap the cache in a counter and hide its synchronous peek().
      const app = express();
      app.use(resolveTenant({ store: cached, strategies: ['header'] }));
      app.use(echo);
      app.use(jsonErrors);
      await request(app).get('/').set('X-Tenant-ID', 'acme').expect(200);
      await request(app).get('/').set('X-Tenant-ID', 'initech').expect(403);
      await request(app).get('/').set('X-Tenant-ID', 'nobody').expect(404);
      const before = inner.findByIdCalls;
      for (let i = 0; i < 5; i += 1) {
        const ok = await request(app).get('/').set('X-Tenant-ID', 'acme').expect(200);
        expect(ok.body).to.include({ tenant: 'acme', source: 'header' });
        expect(
          (await request(app).get('/').set('X-Tenant-ID', 'initech').expect(403)).body.code,
        ).to.equal('TENANT_SUSPENDED');
        expect(
          (await request(app).get('/').set('X-Tenant-ID', 'nobody').expect(404)).body.code,
        ).to.equal('TENANT_NOT_FOUND');
      }
      expect(inner.findByIdCalls).to.equal(before);
    });
  });

  describe('membership', () => {
    it('allows a client-named tenant listed in the token tenants claim, as untrusted', async () => {
      const { app } = createApp(chain);
      const res = await request(app)
        .get('/')
        .auth(hsToken({ tenants: ['acme', 'globex'] }), { type: 'bearer' })
        .set('X-Tenant-ID', 'globex')
        .expect(200);
      expect(res.body).to.include({
        tenant: 'globex',
        source: 'header',
        trusted: false,
        user: 'user-1',
      });
    });

    it('answers 403 TENANT_FORBIDDEN for a client-named tenant the user is not a member of, without a lookup', async () => {
      const { app, store } = createApp(chain);
      for (const token of [hsToken({ tenants: ['acme'] }), hsToken({})]) {
        const res = await request(app)
          .get('/')
          .auth(token, { type: 'bearer' })
          .set('X-Tenant-ID', 'globex')
          .expect(403);
        expect(res.body.code).to.equal('TENANT_FORBIDDEN');
      }
      expect(store.findByIdCalls).to.equal(0);
    });

    it('also checks a host-named tenant against the token', async () => {
      const { app } = createApp({
        strategies: ['jwt_claim', 'subdomain'],
        jwt,
        domain: 'lexigram.dev',
      });
      const res = await request(app)
        .get('/')
        .set('Host', 'globex.lexigram.dev')
        .auth(hsToken({ tenants: ['acme'] }), { type: 'bearer' })
        .expect(403);
      expect(res.body.code).to.equal('TENANT_FORBIDDEN');
    });

    it('uses the configured claim names for the default check', async () => {
      const { app } = createApp({
        strategies: ['jwt_claim', 'header'],
        jwt: { ...jwt, claim: 'org', tenantsClaim: 'orgs' },
      });
      await request(app)
        .get('/')
        .auth(hsToken({ orgs: ['globex'] }), { type: 'bearer' })
        .set('X-Tenant-ID', 'globex')
        .expect(200);
      const res = await request(app)
        .get('/')
        .auth(hsToken({ tenants: ['globex'] }), { type: 'bearer' })
        .set('X-Tenant-ID', 'globex');
      expect(res.body.code).to.equal('TENANT_FORBIDDEN');
    });

    it('accepts a pluggable async check that receives the user, the tenant id and the request', async () => {
      const calls: Array<[string, string, string]> = [];
      const isMember = async (user: TenantUser, tenantId: string, req: Request) => {
        calls.push([user.id, tenantId, req.path]);
        await sleep(1);
        return tenantId === 'acme';
      };
      const { app } = createApp({ ...chain, isMember });
      await request(app)
        .get('/a')
        .auth(hsToken({}), { type: 'bearer' })
        .set('X-Tenant-ID', 'acme')
        .expect(200);
      const res = await request(app)
        .get('/b')
        .auth(hsToken({}), { type: 'bearer' })
        .set('X-Tenant-ID', 'globex')
        .expect(403);
      expect(res.body.code).to.equal('TENANT_FORBIDDEN');
      expect(calls).to.deep.equal([
        ['user-1', 'acme', '/a'],
        ['user-1', 'globex', '/b'],
      ]);
    });

    it('takes the user from getUser() when no token is involved', async () => {
      const getUser = (req: Request): TenantUser | undefined => {
        const id = req.get('X-Test-User');
        return id === undefined ? undefined : { id, claims: { tenants: ['acme'] } };
      };
      const { app } = createApp({ strategies: ['header'], getUser });
      const ok = await request(app)
        .get('/')
        .set('X-Test-User', 'bob')
        .set('X-Tenant-ID', 'acme')
        .expect(200);
      expect(ok.body).to.include({ tenant: 'acme', user: 'bob' });
      const res = await request(app)
        .get('/')
        .set('X-Test-User', 'bob')
        .set('X-Tenant-ID', 'globex')
        .expect(403);
      expect(res.body.code).to.equal('TENANT_FORBIDDEN');
    });

    it('lets an unauthenticated header name a tenant, marked untrusted', async () => {
      const { app } = createApp(chain);
      const res = await request(app).get('/').set('X-Tenant-ID', 'acme').expect(200);
      expect(res.body).to.include({ tenant: 'acme', trusted: false, user: null });
    });
  });

  describe('store lookup', () => {
    const cases: Array<[string, number, string]> = [
      ['nobody', 404, 'TENANT_NOT_FOUND'],
      ['umbrella', 404, 'TENANT_NOT_FOUND'], // deleted answers like unknown
      ['initech', 403, 'TENANT_SUSPENDED'],
      ['hooli', 403, 'TENANT_SUSPENDED'], // provisioning: not active
    ];
    for (const [id, status, code] of cases) {
      it(`answers ${status} ${code} for tenant "${id}"`, async () => {
        const { app, store } = createApp({ strategies: ['header'] });
        const res = await request(app).get('/').set('X-Tenant-ID', id).expect(status);
        expect(res.body.code).to.equal(code);
        expect(store.lookedUp).to.deep.equal([id]);
      });
    }

    it('answers 503 TENANT_UNAVAILABLE when the store fails', async () => {
      const { app, store } = createApp({ strategies: ['header'] });
      store.failNext = new Error('ECONNREFUSED');
      const res = await request(app).get('/').set('X-Tenant-ID', 'acme').expect(503);
      expect(res.body.code).to.equal('TENANT_UNAVAILABLE');
    });
  });

  describe('no tenant', () => {
    it('continues without a tenant by default', async () => {
      const { app } = createApp({ strategies: ['header'] });
      expect((await request(app).get('/').expect(200)).body).to.include({
        tenant: null,
        current: null,
        fromContainer: null,
      });
    });

    it('answers 401 TENANT_REQUIRED with required: true', async () => {
      const { app } = createApp({ strategies: ['header'], required: true });
      expect((await request(app).get('/').expect(401)).body.code).to.equal('TENANT_REQUIRED');
    });
  });

  describe('request scope', () => {
    it('disposes the per-request child container when the response finishes', async () => {
      disposed.length = 0;
      const { app } = createApp({
        strategies: ['header'],
        routes: (a: Express) =>
          a.get('/resource', (req, res) => {
            res.json({ tenantId: req.container?.resolve(RequestResource).tenantId });
          }),
      });
      const res = await request(app).get('/resource').set('X-Tenant-ID', 'globex').expect(200);
      expect(res.body.tenantId).to.equal('globex');
      for (let i = 0; i < 50 && disposed.length === 0; i += 1) await sleep(2);
      expect(disposed).to.deep.equal(['globex']);
    });

    it('listens for the end of a response only once the container holds something to dispose', async () => {
      disposed.length = 0;
      const { app } = createApp({
        strategies: ['header'],
        routes: (a: Express) =>
          a.get('/listeners', (req, res) => {
            const before = res.listenerCount('close');
            if (req.query.resolve === '1') {
              req.container?.resolve(RequestResource);
              req.container?.resolve(RequestResource); // container-scoped: the same instance
            }
            res.json({ before, after: res.listenerCount('close') });
          }),
      });
      const none = await request(app).get('/listeners').expect(200);
      const plain = await request(app).get('/listeners').set('X-Tenant-ID', 'acme').expect(200);
      expect(plain.body.before).to.equal(none.body.before);
      expect(plain.body.after).to.equal(plain.body.before);
      const holding = await request(app)
        .get('/listeners?resolve=1')
        .set('X-Tenant-ID', 'acme')
        .expect(200);
      expect(holding.body.after).to.equal(holding.body.before + 1);
      for (let i = 0; i < 50 && disposed.length === 0; i += 1) await sleep(2);
      expect(disposed).to.deep.equal(['acme']);
    });

    it('keeps the tenant through async work in the handler and leaves no scope behind', async () => {
      const { app } = createApp({
        strategies: ['header'],
        routes: (a: Express) =>
          a.get('/slow', async (_req, res) => {
            await sleep(5);
            await new Promise((r) => setImmediate(r));
            res.json({ current: tryCurrentTenant()?.id ?? null });
          }),
      });
      expect(
        (await request(app).get('/slow').set('X-Tenant-ID', 'acme').expect(200)).body.current,
      ).to.equal('acme');
      expect(tryCurrentTenant()).to.equal(undefined);
    });
  });

  describe('configuration', () => {
    it('is configured from the loaded resolution section or the whole config', async () => {
      const config = loadTenancyConfig({
        env: {
          TENANCY_RESOLUTION_STRATEGY: 'jwt_claim,path',
          TENANCY_JWT_SECRET: HS_SECRET,
          TENANCY_JWT_ALGORITHMS: 'HS256',
          TENANCY_PATH_PREFIX: '/t',
        },
      });
      for (const c of [config.tenancy.resolution, config]) {
        const { app } = createApp({ config: c, routes: (a: Express) => a.get('/t/docs', echo) });
        const res = await request(app)
          .get('/t/acme/docs')
          .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
          .expect(200);
        expect(res.body).to.include({ tenant: 'acme', source: 'jwt_claim', url: '/t/docs' });
      }
    });

    it('lets explicit options win over the config', async () => {
      const { app } = createApp({
        config: { strategy: 'header', header: 'X-Org' },
        header: 'X-Team',
      });
      expect((await request(app).get('/').set('X-Team', 'acme').expect(200)).body.tenant).to.equal(
        'acme',
      );
    });

    it('refuses bad options at factory time with TenancyConfigError', () => {
      const store = testTenants();
      const cases: Array<[() => unknown, RegExp]> = [
        [() => resolveTenant(undefined as never), /without a tenant store/],
        [() => resolveTenant({} as never), /without a tenant store/],
        [() => resolveTenant({ store, strategies: [] }), /no strategy/],
        [
          () => resolveTenant({ store, strategies: ['cookie' as never] }),
          /"cookie" because it is unknown/,
        ],
        [() => resolveTenant({ store, strategies: ['header', 'header'] }), /twice/],
        [() => resolveTenant({ store, strategies: ['subdomain'] }), /no domain/],
        [() => resolveTenant({ store, strategies: ['jwt_claim'] }), /no jwt settings/],
        [
          () => resolveTenant({ store, strategies: [{ name: '', resolve: () => undefined }] }),
          /TenantResolutionStrategy/,
        ],
        [() => resolveTenant({ store, config: { strategy: 'magic' } }), /"magic"/],
        [() => resolveTenant({ store, isMember: 'yes' as never }), /isMember/],
      ];
      for (const [build, message] of cases) expect(build).to.throw(TenancyConfigError, message);
    });
  });
});
