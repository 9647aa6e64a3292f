import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import { resolveTenant, tenantHandler } from '../../src/index';
import { jsonErrors, testTenants } from '../support/create-app';

describe('tenantHandler()', () => {
  function app() {
    const a = express();
    a.use(resolveTenant({ store: testTenants(), strategies: ['header'] }));
    a.get(
      '/id',
      tenantHandler((req, res) => {
        res.json({ tenant: req.tenant.id });
      }),
    );
    a.get(
      '/reject',
      tenantHandler(async () => {
        await Promise.resolve();
        throw Object.assign(new Error('boom'), { status: 418, code: 'TEAPOT' });
      }),
    );
    a.use(jsonErrors);
    return a;
  }

  it('returns a named handler and refuses a non-function at factory time', () => {
    expect(tenantHandler(() => undefined).name).to.equal('tenantHandlerMiddleware');
    expect(() => tenantHandler(42 as never)).to.throw(TypeError);
  });

  it('runs the handler with the tenant of the request', async () => {
    const res = await request(app()).get('/id').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.deep.equal({ tenant: 'acme' });
  });

  it('answers 401 TENANT_REQUIRED instead of running the handler when no tenant was resolved', async () => {
    const res = await request(app()).get('/id').expect(401);
    expect(res.body.code).to.equal('TENANT_REQUIRED');
  });

  it('passes a rejected promise of the handler to next(err)', async () => {
    const res = await request(app()).get('/reject').set('X-Tenant-ID', 'acme').expect(418);
    expect(res.body.code).to.equal('TEAPOT');
  });
});
