import { expect } from 'chai';
import type { Express } from 'express';
import request from 'supertest';
import { PathStrategy, TenancyConfigError } from '../../src/index';
import { createApp, echo } from '../support/create-app';

describe('PathStrategy', () => {
  it('resolves /api/v1/:tenant/... and strips the tenant segment for downstream routes by default', async () => {
    const { app } = createApp({
      strategies: ['path'],
      routes: (a: Express) => a.get('/api/v1/documents/:docId', echo),
    });
    const res = await request(app).get('/api/v1/acme/documents/42?x=1').expect(200);
    expect(res.body).to.include({
      tenant: 'acme',
      source: 'path',
      trusted: false,
      url: '/api/v1/documents/42?x=1',
      originalUrl: '/api/v1/acme/documents/42?x=1',
    });
    expect(res.body.params).to.deep.equal({ docId: '42' });
  });

  it('leaves the URL alone with stripTenantSegment: false, so routes mount under /api/v1/:tenant', async () => {
    const { app } = createApp({
      strategies: ['path'],
      path: { prefix: '/api/v1', stripTenantSegment: false },
      routes: (a: Express) => a.get('/api/v1/:tenant/documents', echo),
    });
    const res = await request(app).get('/api/v1/globex/documents').expect(200);
    expect(res.body).to.include({ tenant: 'globex', url: '/api/v1/globex/documents' });
    expect(res.body.params).to.deep.equal({ tenant: 'globex' });
  });

  it('uses a configured prefix, including the root prefix', async () => {
    const t = createApp({ strategies: ['path'], path: { prefix: '/t/' } });
    const a = await request(t.app).get('/t/acme/reports').expect(200);
    expect(a.body).to.include({ tenant: 'acme', url: '/t/reports' });
    const root = createApp({ strategies: ['path'], path: { prefix: '/' } });
    const b = await request(root.app).get('/globex').expect(200);
    expect(b.body).to.include({ tenant: 'globex', url: '/' });
  });

  it('names no tenant for paths outside the prefix or for the bare prefix', async () => {
    const { app, store } = createApp({ strategies: ['path'] });
    for (const path of ['/health', '/api/v1', '/api/v1/', '/api/v10/acme', '/api']) {
      const res = await request(app).get(path).expect(200);
      expect(res.body.tenant, path).to.equal(null);
    }
    expect(store.findByIdCalls).to.equal(0);
  });

  it('takes the segment raw: percent-encoded and empty segments are 400 TENANT_INVALID without a lookup', async () => {
    const { app, store } = createApp({ strategies: ['path'] });
    for (const path of [
      '/api/v1/%61cme/docs',
      '/api/v1/acme%2F..%2Fglobex/docs',
      '/api/v1//docs',
      '/api/v1/ACME/docs',
      '/api/v1/acme;drop/docs',
    ]) {
      const res = await request(app).get(path);
      expect([res.status, res.body.code], path).to.deep.equal([400, 'TENANT_INVALID']);
    }
    expect(store.findByIdCalls).to.equal(0);
  });

  it('refuses a prefix with parameters or odd characters at construction', () => {
    expect(() => new PathStrategy({ prefix: '/api/:version' })).to.throw(TenancyConfigError);
    expect(() => new PathStrategy({ prefix: '/api v1' })).to.throw(TenancyConfigError);
  });
});
