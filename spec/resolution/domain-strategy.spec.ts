import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import request from 'supertest';
import {
  CachedTenantStore,
  DomainStrategy,
  InMemoryTenantStore,
  KnexTenantStore,
  SubdomainStrategy,
  TenancyConfigError,
  TenantManager,
  migrateCentral,
  normalizeHostname,
  parseResolutionConfig,
  type DomainChallenge,
  type TenantStore,
} from '../../src/index';
import { CountingTenantStore, createApp } from '../support/create-app';
import { createTestKnex } from '../support/test-database';

function tenants(): InMemoryTenantStore {
  return new InMemoryTenantStore([
    {
      id: 'acme',
      domains: [
        { domain: 'app.acme-corp.com', verified: true },
        { domain: 'xn--bcher-kva.example', verified: true },
      ],
    },
    { id: 'globex', domains: [{ domain: 'portal.globex.com', verified: false, token: 't' }] },
    { id: 'initech', status: 'suspended', domains: [{ domain: 'initech.com', verified: true }] },
  ]);
}

describe('custom domains', () => {
  describe('normalizeHostname()', () => {
    const cases: Array<[string, string | undefined]> = [
      ['App.Acme-Corp.COM', 'app.acme-corp.com'],
      ['app.acme-corp.com.', 'app.acme-corp.com'],
      ['bücher.example', 'xn--bcher-kva.example'],
      ['BÜCHER.example', 'xn--bcher-kva.example'],
      ['аpp.acme-corp.com', domainToASCII('аpp.acme-corp.com')], // Cyrillic а: another name
      ['10.0.0.1', undefined],
      ['[::1]', undefined],
      ['app.acme-corp.com:80', undefined],
      ['app..acme-corp.com', undefined],
      ['app_acme.com', undefined],
      ['', undefined],
      ['a'.repeat(300), undefined],
    ];
    for (const [raw, expected] of cases) {
      it(`normalises ${JSON.stringify(raw.slice(0, 40))} to ${JSON.stringify(expected)}`, () => {
        expect(normalizeHostname(raw)).to.equal(expected);
      });
    }
    it('keeps a Cyrillic look-alike apart from the real name', () => {
      expect(normalizeHostname('аpp.acme-corp.com')).to.not.equal('app.acme-corp.com');
      expect(normalizeHostname('аpp.acme-corp.com')).to.match(/^xn--/);
    });
  });

  describe("resolveTenant({ strategies: ['subdomain', 'domain'] })", () => {
    const chain = () =>
      createApp({
        strategies: ['subdomain', 'domain', 'header'],
        domain: 'lexigram.dev',
        store: new CachedTenantStore(tenants()),
      });

    it('resolves a platform subdomain and a verified custom domain in one chain', async () => {
      const { app } = chain();
      const sub = await request(app).get('/').set('Host', 'acme.lexigram.dev').expect(200);
      expect(sub.body).to.include({ tenant: 'acme', source: 'subdomain', trusted: false });
      const custom = await request(app).get('/').set('Host', 'app.acme-corp.com').expect(200);
      expect(custom.body).to.include({ tenant: 'acme', source: 'domain', trusted: false });
    });

    it('normalises case, a trailing dot and the port before the lookup', async () => {
      const { app } = chain();
      for (const host of ['APP.Acme-Corp.com', 'app.acme-corp.com.', 'app.acme-corp.com:8443']) {
        const res = await request(app).get('/').set('Host', host).expect(200);
        expect(res.body.tenant, host).to.equal('acme');
      }
    });

    it('looks an internationalised domain up by its punycode form', async () => {
      const { app } = chain();
      const res = await request(app).get('/').set('Host', 'xn--bcher-kva.example').expect(200);
      expect(res.body.tenant).to.equal('acme');
    });

    it('answers 400 HOST_INVALID for an unverified, unknown or look-alike domain', async () => {
      const { app } = chain();
      for (const host of [
        'portal.globex.com', // added, never verified
        'acme-corp.com',
        'app.acme-corp.com.evil.com',
        'app-acme-corp.com',
        'evil.com',
        domainToASCII('аpp.acme-corp.com'), // Cyrillic look-alike, as a browser sends it
      ]) {
        const res = await request(app).get('/').set('Host', host).expect(400);
        expect(res.body.code, host).to.equal('HOST_INVALID');
      }
    });

    it('still refuses nested and bare platform hosts and IPs', async () => {
      const { app } = chain();
      for (const host of ['a.b.lexigram.dev', 'lexigram.dev', '10.0.0.1', '[::1]']) {
        const res = await request(app).get('/').set('Host', host).expect(400);
        expect(res.body.code, host).to.equal('HOST_INVALID');
      }
    });

    it('answers 403 TENANT_SUSPENDED for the verified domain of a suspended tenant', async () => {
      const { app } = chain();
      const res = await request(app).get('/').set('Host', 'initech.com').expect(403);
      expect(res.body.code).to.equal('TENANT_SUSPENDED');
    });

    it('answers 403 TENANT_CONFLICT when a custom domain and a header disagree', async () => {
      const { app } = chain();
      const res = await request(app)
        .get('/')
        .set('Host', 'app.acme-corp.com')
        .set('X-Tenant-ID', 'globex')
        .expect(403);
      expect(res.body.code).to.equal('TENANT_CONFLICT');
    });

    it('reads X-Forwarded-Host only through trust proxy', async () => {
      const spoofed = createApp({
        strategies: ['subdomain', 'domain'],
        domain: 'lexigram.dev',
        store: tenants(),
      });
      const res = await request(spoofed.app)
        .get('/')
        .set('Host', 'evil.com')
        .set('X-Forwarded-Host', 'app.acme-corp.com')
        .expect(400);
      expect(res.body.code).to.equal('HOST_INVALID');
      const proxied = createApp({
        strategies: ['subdomain', 'domain'],
        domain: 'lexigram.dev',
        store: tenants(),
        trustProxy: 'loopback',
      });
      const ok = await request(proxied.app)
        .get('/')
        .set('Host', 'internal')
        .set('X-Forwarded-Host', 'app.acme-corp.com')
        .expect(200);
      expect(ok.body.tenant).to.equal('acme');
    });

    it('caches domain lookups, unknown domains too', async () => {
      const counting = new CountingTenantStore(tenants());
      const { app } = createApp({
        strategies: ['domain'],
        domain: 'lexigram.dev',
        store: new CachedTenantStore(counting),
      });
      for (let i = 0; i < 3; i += 1) {
        await request(app).get('/').set('Host', 'app.acme-corp.com').expect(200);
        await request(app).get('/').set('Host', 'nobody.example').expect(400);
      }
      expect(counting.domainLookups).to.deep.equal(['app.acme-corp.com', 'nobody.example']);
    });

    it('answers 503 TENANT_UNAVAILABLE when the domain lookup fails, sync or async', async () => {
      const inner = tenants();
      for (const fail of [
        () => Promise.reject(new Error('db down')),
        () => {
          throw new Error('db down, synchronously');
        },
      ]) {
        const broken: TenantStore = {
          findById: (id) => inner.findById(id),
          list: (o) => inner.list(o),
          create: (t) => inner.create(t),
          update: (id, p) => inner.update(id, p),
          remove: (id) => inner.remove(id),
          findByDomain: fail,
        };
        const { app } = createApp({ strategies: ['domain'], store: broken });
        const res = await request(app).get('/').set('Host', 'app.acme-corp.com').expect(503);
        expect(res.body.code).to.equal('TENANT_UNAVAILABLE');
      }
    });

    it('never mutates its options (frozen options are accepted)', () => {
      const options = Object.freeze({
        store: tenants(),
        platformDomains: Object.freeze(['lexigram.dev']),
        unknownHosts: 'skip' as const,
      });
      expect(() => new DomainStrategy(options)).to.not.throw();
      expect(
        () =>
          new SubdomainStrategy(
            Object.freeze({
              domain: Object.freeze(['b.dev', 'a.dev']),
              foreignHosts: 'skip' as const,
            }),
          ),
      ).to.not.throw();
    });

    it('refuses the domain strategy at start-up when the store cannot look domains up', () => {
      const inner = tenants();
      const noDomains: TenantStore = {
        findById: (id) => inner.findById(id),
        list: (o) => inner.list(o),
        create: (t) => inner.create(t),
        update: (id, p) => inner.update(id, p),
        remove: (id) => inner.remove(id),
      };
      expect(() => createApp({ strategies: ['domain'], store: noDomains })).to.throw(
        TenancyConfigError,
        /findByDomain/,
      );
      expect(() => new DomainStrategy({ store: new CachedTenantStore(noDomains) })).to.throw(
        TenancyConfigError,
        /findByDomain/,
      );
    });
  });

  describe('from the config (tenancy.resolution)', () => {
    it('reads strategy domain, a list of domains and foreignHosts, and parses its own output again', () => {
      const parsed = parseResolutionConfig({
        strategy: 'subdomain,domain',
        domain: ['Lexigram.dev', 'lexigram.eu'],
        foreignHosts: 'skip',
      });
      expect(parsed).to.deep.include({
        strategy: ['subdomain', 'domain'],
        domain: 'lexigram.dev',
        domains: ['lexigram.dev', 'lexigram.eu'],
        foreignHosts: 'skip',
      });
      expect(parseResolutionConfig(parsed)).to.deep.equal(parsed);
      expect(() => parseResolutionConfig({ domain: [] })).to.throw(TenancyConfigError, /empty/);
      expect(() => parseResolutionConfig({ foreignHosts: 'maybe' })).to.throw(
        TenancyConfigError,
        /foreignHosts/,
      );
    });

    it('serves both platform domains and custom domains from that config', async () => {
      const { app } = createApp({
        config: {
          strategy: ['subdomain', 'domain'],
          domain: ['lexigram.dev', 'lexigram.eu'],
        },
        store: tenants(),
      });
      await request(app).get('/').set('Host', 'acme.lexigram.eu').expect(200);
      const res = await request(app).get('/').set('Host', 'app.acme-corp.com').expect(200);
      expect(res.body).to.include({ tenant: 'acme', source: 'domain' });
      // a host under a platform domain is never looked up as a custom domain
      await request(app).get('/').set('Host', 'a.b.lexigram.eu').expect(400);
    });
  });

  describe("SubdomainStrategy({ foreignHosts: 'skip', domain: [...] })", () => {
    it('serves several platform domains, the longest match first', async () => {
      const { app } = createApp({
        strategies: [new SubdomainStrategy({ domain: ['lexigram.dev', 'eu.lexigram.dev'] })],
      });
      const a = await request(app).get('/').set('Host', 'acme.lexigram.dev').expect(200);
      expect(a.body.tenant).to.equal('acme');
      const b = await request(app).get('/').set('Host', 'globex.eu.lexigram.dev').expect(200);
      expect(b.body.tenant).to.equal('globex');
    });

    it('skips foreign hosts with skip, refuses them by default', async () => {
      const skip = createApp({
        strategies: [new SubdomainStrategy({ domain: 'lexigram.dev', foreignHosts: 'skip' })],
      });
      const res = await request(skip.app).get('/').set('Host', 'app.acme-corp.com').expect(200);
      expect(res.body.tenant).to.equal(null);
      // nested subdomains of our own domain are refused either way
      await request(skip.app).get('/').set('Host', 'a.b.lexigram.dev').expect(400);
      const refuse = createApp({ strategies: [new SubdomainStrategy({ domain: 'lexigram.dev' })] });
      const bad = await request(refuse.app).get('/').set('Host', 'app.acme-corp.com').expect(400);
      expect(bad.body.code).to.equal('HOST_INVALID');
    });
  });

  describe('TenantManager addDomain / verifyDomain / removeDomain (KnexTenantStore on PostgreSQL)', function () {
    this.timeout(30_000);
    const run = randomBytes(3).toString('hex');
    const acme = `acme-${run}`;
    const globex = `globex-${run}`;
    let knex: Knex;
    let store: CachedTenantStore;
    let published: Map<string, string>;
    let manager: TenantManager;

    before(async () => {
      const plain = createTestKnex();
      await plain.raw('create schema if not exists domains_spec');
      knex = createTestKnex({ searchPath: ['domains_spec'] });
      await migrateCentral(knex);
      store = new CachedTenantStore(new KnexTenantStore(knex));
      published = new Map();
      manager = new TenantManager({
        knex,
        store,
        mode: 'row',
        verifyDomain: (c: DomainChallenge) => published.get(c.recordName) === c.token,
      });
      await manager.create({ id: acme });
      await manager.create({ id: globex });
    });

    function app() {
      return createApp({ strategies: ['domain'], domain: 'lexigram.dev', store }).app;
    }

    it('adds a domain unverified (it does not resolve), verifies it (it resolves), removes it (it stops)', async () => {
      const { challenge, tenant } = await manager.addDomain(acme, `App.${run}.Acme-Corp.com.`);
      const host = `app.${run}.acme-corp.com`;
      expect(challenge).to.include({
        tenantId: acme,
        domain: host,
        recordName: `_tenantry-challenge.${host}`,
      });
      expect(tenant.domains).to.deep.equal([
        { domain: host, verified: false, token: challenge.token },
      ]);
      await request(app()).get('/').set('Host', host).expect(400); // also caches "unknown"

      const refused = await manager.verifyDomain(acme, host).then(
        () => undefined,
        (e: { code?: string; status?: number }) => e,
      );
      expect(refused).to.include({ code: 'DOMAIN_VERIFICATION_FAILED', status: 409 });
      await request(app()).get('/').set('Host', host).expect(400);

      published.set(challenge.recordName, challenge.token);
      const verified = await manager.verifyDomain(acme, host);
      expect(verified.domains?.[0]).to.include({ domain: host, verified: true });
      const res = await request(app()).get('/').set('Host', host).expect(200);
      expect(res.body).to.include({ tenant: acme, source: 'domain' });

      // Another tenant cannot take a verified domain.
      const taken = await manager.addDomain(globex, host).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      expect(taken).to.include({ code: 'TENANT_STATE_INVALID' });

      await manager.removeDomain(acme, host);
      await request(app()).get('/').set('Host', host).expect(400);
      expect(await store.findByDomain(host)).to.equal(undefined);
    });

    it('refuses a domain that is not a DNS name with 400 HOST_INVALID', async () => {
      for (const bad of ['10.0.0.1', 'localhost', 'a..b', 'x y.com']) {
        const error = await manager.addDomain(acme, bad).then(
          () => undefined,
          (e: { code?: string }) => e,
        );
        expect(error, bad).to.include({ code: 'HOST_INVALID' });
      }
    });

    it('finds only verified domains in SQL (findByDomain is a containment query)', async () => {
      const host = `portal.${run}.globex.com`;
      await knex('tenants')
        .where({ id: globex })
        .update({ domains: JSON.stringify([{ domain: host, verified: false, token: 'x' }]) });
      const inner = new KnexTenantStore(knex);
      expect(await inner.findByDomain(host)).to.equal(undefined);
      await knex('tenants')
        .where({ id: globex })
        .update({ domains: JSON.stringify([{ domain: host, verified: true }]) });
      expect((await inner.findByDomain(host))?.id).to.equal(globex);
    });
  });
});
