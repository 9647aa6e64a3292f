import { expect } from 'chai';
import request from 'supertest';
import { SubdomainStrategy, TenancyConfigError } from '../../src/index';
import { createApp, type CreateAppOptions } from '../support/create-app';

describe('SubdomainStrategy', () => {
  const base = { strategies: ['subdomain' as const], domain: 'lexigram.dev' };

  it('resolves <tenant>.<domain>, ignoring case and port', async () => {
    const { app } = createApp(base);
    for (const host of ['acme.lexigram.dev', 'ACME.Lexigram.DEV', 'acme.lexigram.dev:8443']) {
      const res = await request(app).get('/').set('Host', host).expect(200);
      expect(res.body).to.include({ tenant: 'acme', source: 'subdomain', trusted: false });
    }
  });

  it('refuses hosts that are not exactly <tenant>.<domain> with 400 HOST_INVALID and no lookup', async () => {
    const { app, store } = createApp(base);
    const hosts = [
      'lexigram.dev', // bare domain
      'a.b.lexigram.dev', // nested
      'acme.lexigram.dev.evil.com', // look-alike suffix
      'acmelexigram.dev', // look-alike without the dot
      'evil.com',
      '127.0.0.1',
      '127.0.0.1:3000',
      '[::1]:3000',
      'xn--80ak6aa92e.com',
      `${'a'.repeat(250)}.lexigram.dev`, // oversized
      'acme_1.lexigram.dev', // not a DNS label character
    ];
    for (const host of hosts) {
      const res = await request(app).get('/').set('Host', host);
      expect([res.status, res.body.code], host).to.deep.equal([400, 'HOST_INVALID']);
    }
    expect(store.findByIdCalls).to.equal(0);
  });

  it('answers 400 TENANT_INVALID for a label that is not a valid tenant id, without a lookup', async () => {
    const { app, store } = createApp(base);
    const res = await request(app).get('/').set('Host', '-acme.lexigram.dev').expect(400);
    expect(res.body.code).to.equal('TENANT_INVALID');
    expect(store.findByIdCalls).to.equal(0);
  });

  it('skips the bare domain and ignored labels when configured to', async () => {
    const { app, store } = createApp({ ...base, bareDomain: 'skip', ignoredSubdomains: ['www'] });
    for (const host of ['lexigram.dev', 'www.lexigram.dev']) {
      const res = await request(app).get('/').set('Host', host).expect(200);
      expect(res.body.tenant).to.equal(null);
    }
    expect(store.findByIdCalls).to.equal(0);
  });

  describe('X-Forwarded-Host', () => {
    /** A request with both headers to an app with `trust proxy` set as given (unset: undefined). */
    async function viaProxy(
      trustProxy: CreateAppOptions['trustProxy'],
      host: string,
      forwarded: string,
      status: number,
    ) {
      const { app, store } = createApp(trustProxy === undefined ? base : { ...base, trustProxy });
      const res = await request(app)
        .get('/')
        .set('Host', host)
        .set('X-Forwarded-Host', forwarded)
        .expect(status);
      return { res, store };
    }

    it('is ignored without trust proxy: the Host header decides', async () => {
      const { res } = await viaProxy(undefined, 'acme.lexigram.dev', 'globex.lexigram.dev', 200);
      expect(res.body.tenant).to.equal('acme');
    });

    it('cannot smuggle a tenant past a foreign Host without trust proxy', async () => {
      const { res, store } = await viaProxy(undefined, 'localhost', 'acme.lexigram.dev', 400);
      expect(res.body.code).to.equal('HOST_INVALID');
      expect(store.findByIdCalls).to.equal(0);
    });

    it('is used when Express trusts the proxy (loopback here)', async () => {
      const { res } = await viaProxy('loopback', 'internal:8080', 'globex.lexigram.dev', 200);
      expect(res.body.tenant).to.equal('globex');
    });

    it('is still held to the exact <tenant>.<domain> form behind a trusted proxy', async () => {
      const { res, store } = await viaProxy(
        true,
        'acme.lexigram.dev',
        'acme.lexigram.dev.evil.com',
        400,
      );
      expect(res.body.code).to.equal('HOST_INVALID');
      expect(store.findByIdCalls).to.equal(0);
    });

    it('is not trusted when the proxy setting does not cover the client address', async () => {
      const { res } = await viaProxy('10.0.0.0/8', 'acme.lexigram.dev', 'globex.lexigram.dev', 200);
      expect(res.body.tenant).to.equal('acme');
    });
  });

  it('refuses a missing or malformed domain at construction', () => {
    expect(() => new SubdomainStrategy({} as never)).to.throw(TenancyConfigError, /no domain/);
    for (const domain of [
      'https://lexigram.dev',
      '.lexigram.dev',
      'lexigram.dev:80',
      '10.1.2.3',
      '',
    ]) {
      expect(() => new SubdomainStrategy({ domain }), domain).to.throw(TenancyConfigError);
    }
  });
});
