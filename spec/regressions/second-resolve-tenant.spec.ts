import { expect } from 'chai';
import request from 'supertest';
import { PathStrategy, resolveTenant, type TenantResolutionStrategy } from '../../src/index';
import { HS_SECRET, createApp, echo, hsToken, testTenants } from '../support/create-app';

/**
 * Regression: an app-level resolveTenant() (token chain) and a router-level
 * one (`/orgs/:org`) silently switched the request to the second tenant.
 * A second resolver must agree with the first or refuse.
 */
describe('regression: a second resolveTenant() on a request never switches its tenant', () => {
  const jwt = { algorithms: ['HS256'], secret: HS_SECRET };
  function twoChains(second: TenantResolutionStrategy = new PathStrategy({ prefix: '/' })) {
    return createApp({
      strategies: ['jwt_claim', 'header'],
      jwt,
      routes: (app) => {
        app.use('/orgs', resolveTenant({ store: testTenants(), strategies: [second] }), echo);
        app.use(echo);
      },
    });
  }

  it('answers 403 TENANT_CONFLICT when the router-level chain names another tenant', async () => {
    const { app } = twoChains();
    const res = await request(app)
      .get('/orgs/globex/docs')
      .auth(hsToken({ tid: 'acme', tenants: ['acme', 'globex'] }), { type: 'bearer' })
      .expect(403);
    expect(res.body.code).to.equal('TENANT_CONFLICT');
  });

  it('answers 403 TENANT_CONFLICT for header then path as well (no token involved)', async () => {
    const { app } = twoChains();
    const res = await request(app).get('/orgs/globex/docs').set('X-Tenant-ID', 'acme').expect(403);
    expect(res.body.code).to.equal('TENANT_CONFLICT');
  });

  it('keeps the first tenant, source, user and container when the second chain agrees', async () => {
    const { app } = twoChains();
    const res = await request(app)
      .get('/orgs/acme/docs')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(200);
    expect(res.body).to.include({
      tenant: 'acme',
      source: 'jwt_claim',
      trusted: true,
      user: 'user-1',
      current: 'acme',
      fromContainer: 'acme',
      url: '/docs', // the agreeing path strategy still strips its segment
    });
  });

  it('keeps the first tenant when the second chain names none', async () => {
    const { app } = twoChains();
    const res = await request(app).get('/orgs').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.include({ tenant: 'acme', source: 'header', current: 'acme' });
  });

  it('still runs the second chain alone when the first named no tenant', async () => {
    const { app } = twoChains();
    const res = await request(app).get('/orgs/globex/docs').expect(200);
    expect(res.body).to.include({ tenant: 'globex', source: 'path', current: 'globex' });
  });

  it('answers 403 TENANT_CONFLICT when the second chain verifies another user', async () => {
    const other: TenantResolutionStrategy = {
      name: 'other-user',
      resolve: () => ({ tenantId: 'acme', trusted: true, user: { id: 'mallory', claims: {} } }),
    };
    const { app } = twoChains(other);
    const res = await request(app)
      .get('/orgs/x')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(403);
    expect(res.body.code).to.equal('TENANT_CONFLICT');
  });
});
