import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import {
  InMemoryTenantStore,
  resolveTenant,
  runForTenant,
  tenancyErrorHandler,
  type TenantStatus,
} from '../../src/index';

// resolveTenant() had its own copy of the tenant-status check, so HTTP and
// runForTenant() (jobs, scripts) could drift apart; it now calls assertServableTenant(), and this pins it.
describe('resolveTenant() and runForTenant() refuse a tenant alike', () => {
  const statuses: readonly TenantStatus[] = [
    'suspended',
    'archived',
    'provisioning',
    'provisioning_failed',
    'deleted',
  ];
  const store = new InMemoryTenantStore([
    { id: 'acme' },
    ...statuses.map((status) => ({ id: `t-${status.replace('_', '-')}`, status })),
  ]);
  const app = express();
  app.use(resolveTenant({ store, strategies: ['header'] }));
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(tenancyErrorHandler());

  for (const id of ['ghost', ...statuses.map((s) => `t-${s.replace('_', '-')}`)]) {
    it(`gives the same status, code and message for "${id}" over HTTP and in a job`, async () => {
      const http = await request(app).get('/').set('X-Tenant-ID', id);
      let ran = false;
      const job = (await runForTenant(store, id, () => {
        ran = true;
      }).catch((e: unknown) => e)) as { status: number; code: string; message: string };
      expect(ran).to.equal(false);
      expect(http.status).to.be.oneOf([403, 404]);
      expect({ status: http.status, code: http.body.code, detail: http.body.detail }).to.deep.equal(
        { status: job.status, code: job.code, detail: job.message },
      );
    });
  }

  it('serves an active tenant on both paths', async () => {
    await request(app).get('/').set('X-Tenant-ID', 'acme').expect(200);
    expect(await runForTenant(store, 'acme', (t) => t.id)).to.equal('acme');
  });
});
