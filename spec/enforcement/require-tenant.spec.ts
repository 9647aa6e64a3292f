import { expect } from 'chai';
import express, { type Express } from 'express';
import request from 'supertest';
import {
  TenancyConfigError,
  TenantContext,
  currentTenant,
  requireTenant,
  runWithTenant,
  tenancyErrorHandler,
  tryCurrentTenant,
} from '../../src/index';
import { HS_SECRET, createApp, echo, hsToken } from '../support/create-app';

const jwt = { algorithms: ['HS256'], secret: HS_SECRET };

function guarded(
  options: Parameters<typeof requireTenant>[0] = {},
  resolve: Parameters<typeof createApp>[0] = {},
) {
  return createApp({
    strategies: ['jwt_claim', 'header'],
    jwt,
    ...resolve,
    routes: (app: Express) => {
      const api = express.Router();
      api.use(requireTenant(options));
      api.get('/docs', echo);
      app.use('/api', api);
      app.get('/public', echo);
    },
  });
}

describe('requireTenant()', () => {
  it('returns a named handler', () => {
    expect(requireTenant().name).to.equal('requireTenantMiddleware');
  });

  it('answers 401 TENANT_REQUIRED on a guarded router when no tenant was resolved', async () => {
    const { app } = guarded();
    const res = await request(app).get('/api/docs').expect(401);
    expect(res.body.code).to.equal('TENANT_REQUIRED');
    await request(app).get('/public').expect(200);
  });

  it('lets a resolved tenant through', async () => {
    const { app } = guarded();
    const res = await request(app).get('/api/docs').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.include({ tenant: 'acme', current: 'acme' });
  });

  it('answers 401 AUTHENTICATION_REQUIRED with requireUser when the tenant came from a header alone', async () => {
    const { app } = guarded({ requireUser: true });
    const res = await request(app).get('/api/docs').set('X-Tenant-ID', 'acme').expect(401);
    expect(res.body.code).to.equal('AUTHENTICATION_REQUIRED');
    await request(app)
      .get('/api/docs')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(200);
  });

  it('re-checks membership: 403 TENANT_FORBIDDEN even if resolveTenant was configured too loosely', async () => {
    const { app } = guarded({}, { isMember: () => true });
    const res = await request(app)
      .get('/api/docs')
      .auth(hsToken({ tenants: ['acme'] }), { type: 'bearer' })
      .set('X-Tenant-ID', 'globex')
      .expect(403);
    expect(res.body.code).to.equal('TENANT_FORBIDDEN');
    await request(app)
      .get('/api/docs')
      .auth(hsToken({ tenants: ['acme'] }), { type: 'bearer' })
      .set('X-Tenant-ID', 'acme')
      .expect(200);
  });

  it('uses a pluggable membership check', async () => {
    const { app } = guarded(
      { isMember: async (user, tenantId) => user.id === 'admin' || tenantId === 'acme' },
      { isMember: () => true },
    );
    await request(app)
      .get('/api/docs')
      .auth(hsToken({ sub: 'admin' }), { type: 'bearer' })
      .set('X-Tenant-ID', 'globex')
      .expect(200);
    const res = await request(app)
      .get('/api/docs')
      .auth(hsToken({}), { type: 'bearer' })
      .set('X-Tenant-ID', 'globex')
      .expect(403);
    expect(res.body.code).to.equal('TENANT_FORBIDDEN');
  });

  it('does not re-check a tenant taken from the verified token itself', async () => {
    const { app } = guarded({ isMember: () => false });
    await request(app)
      .get('/api/docs')
      .auth(hsToken({ tid: 'globex' }), { type: 'bearer' })
      .expect(200);
  });

  it('fails closed on a req.tenant that is not the active scope', async () => {
    const app = express();
    app.use((req, _res, next) => {
      // A context set by hand, outside runWithTenant(): must not count as a tenant.
      req.tenant = new TenantContext({
        tenant: { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} },
      });
      next();
    });
    app.get('/', requireTenant(), echo);
    app.use(tenancyErrorHandler());
    const res = await request(app).get('/').expect(401);
    expect(res.body.code).to.equal('TENANT_REQUIRED');
  });

  it('lets through a req.tenant set by the app inside a tenant scope it entered itself', async () => {
    const app = express();
    app.use((req, _res, next) => {
      runWithTenant('acme', () => {
        req.tenant = currentTenant();
        next();
      });
    });
    app.get('/', requireTenant(), (req, res) => {
      res.json({ tenant: req.tenant?.id });
    });
    app.use(tenancyErrorHandler());
    const res = await request(app).get('/').expect(200);
    expect(res.body).to.deep.equal({ tenant: 'acme' });
  });

  it('fails closed on a tenant scope entered for another request', async () => {
    // The scope resolveTenant() entered for one request does not admit another
    // request that runs inside it (the scope remembers its request).
    const inner = express();
    inner.get('/scope', (_req, res) => {
      res.json({ current: tryCurrentTenant()?.id ?? null });
    });
    inner.get('/', requireTenant(), echo);
    inner.use(tenancyErrorHandler());
    const { app } = createApp({
      strategies: ['header'],
      routes: (outer: Express) =>
        outer.get('/outer', async (_req, res, next) => {
          try {
            // Requests the handler makes to another app in this process, in its tenant scope.
            const scope = await request(inner).get('/scope');
            const answer = await request(inner).get('/');
            res.status(answer.status).json({ ...answer.body, innerScope: scope.body.current });
          } catch (error) {
            next(error);
          }
        }),
    });
    const res = await request(app).get('/outer').set('X-Tenant-ID', 'acme').expect(401);
    // The inner request does run inside acme's scope, so only the request check refuses it.
    expect(res.body).to.include({ code: 'TENANT_REQUIRED', innerScope: 'acme' });
  });

  it('refuses bad options at factory time', () => {
    expect(() => requireTenant({ requireUser: 'yes' as never })).to.throw(TenancyConfigError);
    expect(() => requireTenant({ isMember: 1 as never })).to.throw(TenancyConfigError);
  });
});
