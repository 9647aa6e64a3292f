import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import {
  InMemoryTenantStore,
  TENANT_MOVING_SQLSTATE,
  resolveTenant,
  runForTenant,
  tenancyErrorHandler,
} from '../../src/index';

// A tenant in an online move's write freeze (status `moving`) is served for
// reads; its writes are 503 TENANT_UNAVAILABLE with Retry-After, whether
// resolveTenant() sees the status or the database refuses the write.
describe('regression: writes of a moving tenant are 503 with Retry-After, reads are served', () => {
  const store = new InMemoryTenantStore([
    { id: 'acme', name: 'Acme', status: 'moving' },
    { id: 'beta', name: 'Beta' },
  ]);
  const app = express();
  app.use(resolveTenant({ store, strategies: ['header'] }));
  app.get('/docs', (req, res) => {
    res.json({ tenant: req.tenant?.id });
  });
  app.post('/docs', (_req, res) => {
    res.status(201).end();
  });
  app.post('/raw-refusal', () => {
    // What node-postgres raises when the capture trigger refuses a frozen tenant's write.
    throw Object.assign(new Error('Cannot write rows of tenant "beta" because it is being moved'), {
      code: TENANT_MOVING_SQLSTATE,
    });
  });
  app.use(tenancyErrorHandler());

  it('serves GET for a moving tenant', async () => {
    const res = await request(app).get('/docs').set('X-Tenant-ID', 'acme');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ tenant: 'acme' });
  });

  it('answers POST for a moving tenant 503 TENANT_UNAVAILABLE with Retry-After: 1', async () => {
    const res = await request(app).post('/docs').set('X-Tenant-ID', 'acme');
    expect(res.status).to.equal(503);
    expect(res.headers['retry-after']).to.equal('1');
    expect(JSON.parse(res.text)).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
  });

  it('renders the database refusal (SQLSTATE T1M01) as the same 503, not a 500', async () => {
    const res = await request(app).post('/raw-refusal').set('X-Tenant-ID', 'beta');
    expect(res.status).to.equal(503);
    expect(res.headers['retry-after']).to.equal('1');
    expect(JSON.parse(res.text)).to.include({ code: 'TENANT_UNAVAILABLE' });
  });

  it('lets jobs run for a moving tenant (the database refuses their writes in the freeze)', async () => {
    expect(await runForTenant(store, 'acme', (t) => t.id)).to.equal('acme');
  });
});
