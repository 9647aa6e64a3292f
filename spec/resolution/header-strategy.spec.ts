import { expect } from 'chai';
import request from 'supertest';
import { HeaderStrategy, TenancyConfigError } from '../../src/index';
import { createApp } from '../support/create-app';

describe('HeaderStrategy', () => {
  it('resolves the tenant from X-Tenant-ID as an untrusted header source', async () => {
    const { app } = createApp({ strategies: ['header'] });
    const res = await request(app).get('/docs').set('X-Tenant-ID', 'acme').expect(200);
    expect(res.body).to.include({
      tenant: 'acme',
      source: 'header',
      trusted: false,
      current: 'acme',
      fromContainer: 'acme',
    });
  });

  it('reads a configured header name, case-insensitively', async () => {
    const { app } = createApp({ strategies: ['header'], header: 'X-Org' });
    const res = await request(app).get('/').set('x-org', 'globex').expect(200);
    expect(res.body.tenant).to.equal('globex');
    const ignored = await request(app).get('/').set('X-Tenant-ID', 'globex').expect(200);
    expect(ignored.body.tenant).to.equal(null);
  });

  it('continues without a tenant when the header is absent', async () => {
    const { app, store } = createApp({ strategies: ['header'] });
    const res = await request(app).get('/').expect(200);
    expect(res.body).to.include({ tenant: null, current: null });
    expect(store.findByIdCalls).to.equal(0);
  });

  it('answers 400 TENANT_INVALID for a repeated header (joined with a comma) without a lookup', async () => {
    const { app, store } = createApp({ strategies: ['header'] });
    const res = await request(app)
      .get('/')
      .set('X-Tenant-ID', ['acme', 'globex'] as unknown as string)
      .expect(400);
    expect(res.body.code).to.equal('TENANT_INVALID');
    expect(store.findByIdCalls).to.equal(0);
  });

  it('refuses a non-header name and the Authorization/Host/Cookie headers at construction', () => {
    expect(() => new HeaderStrategy({ header: 'X Tenant' })).to.throw(
      TenancyConfigError,
      /not an HTTP header name/,
    );
    for (const header of ['Authorization', 'host', 'Cookie']) {
      expect(() => new HeaderStrategy({ header })).to.throw(TenancyConfigError, /dedicated header/);
    }
  });
});
