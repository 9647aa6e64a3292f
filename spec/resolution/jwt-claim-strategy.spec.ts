import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { JwtClaimStrategy, TenancyConfigError } from '../../src/index';
import {
  HS_SECRET,
  createApp,
  hsToken,
  otherRsaKeys,
  rsToken,
  rsaKeys,
} from '../support/create-app';

const hs = { algorithms: ['HS256'], secret: HS_SECRET };

describe('JwtClaimStrategy', () => {
  it('resolves the tid claim of a verified HS256 token as a trusted source with the user', async () => {
    const { app } = createApp({ strategies: ['jwt_claim'], jwt: hs });
    const res = await request(app)
      .get('/')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(200);
    expect(res.body).to.include({
      tenant: 'acme',
      source: 'jwt_claim',
      trusted: true,
      user: 'user-1',
      current: 'acme',
    });
  });

  it('verifies RS256 tokens with a PEM public key', async () => {
    const pem = rsaKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const { app } = createApp({
      strategies: ['jwt_claim'],
      jwt: { algorithms: ['RS256'], publicKey: pem },
    });
    const res = await request(app)
      .get('/')
      .set('Authorization', `Bearer ${rsToken({ tid: 'globex' })}`)
      .expect(200);
    expect(res.body).to.include({ tenant: 'globex', trusted: true });
  });

  it('reads a configured claim, e.g. sub for per-tenant machine tokens', async () => {
    const { app } = createApp({ strategies: ['jwt_claim'], jwt: { ...hs, claim: 'sub' } });
    const res = await request(app)
      .get('/')
      .auth(hsToken({ sub: 'globex' }), { type: 'bearer' })
      .expect(200);
    expect(res.body).to.include({ tenant: 'globex', user: 'globex' });
  });

  it('checks audience, issuer and clock tolerance when configured', async () => {
    const { app } = createApp({
      strategies: ['jwt_claim'],
      jwt: { ...hs, audience: 'api', issuer: 'https://id.example', clockTolerance: 30 },
    });
    const good = hsToken({ tid: 'acme' }, { audience: 'api', issuer: 'https://id.example' });
    await request(app).get('/').auth(good, { type: 'bearer' }).expect(200);
    const wrongAud = hsToken({ tid: 'acme' }, { audience: 'admin', issuer: 'https://id.example' });
    expect(
      (await request(app).get('/').auth(wrongAud, { type: 'bearer' }).expect(401)).body.code,
    ).to.equal('TOKEN_INVALID');
    const wrongIss = hsToken({ tid: 'acme' }, { audience: 'api', issuer: 'https://evil.example' });
    expect(
      (await request(app).get('/').auth(wrongIss, { type: 'bearer' }).expect(401)).body.code,
    ).to.equal('TOKEN_INVALID');
    // Expired 10 s ago: inside the 30 s tolerance.
    const justExpired = hsToken(
      { tid: 'acme', exp: Math.floor(Date.now() / 1000) - 10 },
      { audience: 'api', issuer: 'https://id.example' },
    );
    await request(app).get('/').auth(justExpired, { type: 'bearer' }).expect(200);
  });

  it('authenticates a token without a tenant claim: user set, no tenant', async () => {
    const { app, store } = createApp({ strategies: ['jwt_claim'], jwt: hs });
    const res = await request(app).get('/').auth(hsToken({}), { type: 'bearer' }).expect(200);
    expect(res.body).to.include({ tenant: null, user: 'user-1' });
    expect(store.findByIdCalls).to.equal(0);
  });

  it('skips requests without Authorization or with another scheme', async () => {
    const { app } = createApp({ strategies: ['jwt_claim'], jwt: hs });
    expect((await request(app).get('/').expect(200)).body.tenant).to.equal(null);
    expect((await request(app).get('/').auth('user', 'pass').expect(200)).body.user).to.equal(null);
  });

  it('answers 401 TOKEN_EXPIRED for an expired token and for a token without exp', async () => {
    const { app, store } = createApp({ strategies: ['jwt_claim'], jwt: hs });
    const expired = hsToken({ tid: 'acme', exp: Math.floor(Date.now() / 1000) - 60 });
    const noExp = jwt.sign({ sub: 'u', tid: 'acme' }, HS_SECRET, { algorithm: 'HS256' });
    for (const token of [expired, noExp]) {
      const res = await request(app).get('/').auth(token, { type: 'bearer' }).expect(401);
      expect(res.body.code).to.equal('TOKEN_EXPIRED');
    }
    expect(store.findByIdCalls).to.equal(0);
  });

  it('answers 400 TENANT_INVALID when the tenant claim is not a string', async () => {
    const { app } = createApp({ strategies: ['jwt_claim'], jwt: hs });
    const res = await request(app)
      .get('/')
      .auth(hsToken({ tid: 42 }), { type: 'bearer' })
      .expect(400);
    expect(res.body.code).to.equal('TENANT_INVALID');
  });

  describe('refuses unsafe settings at construction', () => {
    const pem = () => rsaKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['no algorithms', () => new JwtClaimStrategy({ secret: HS_SECRET } as never), /allow-list/],
      ['an empty list', () => new JwtClaimStrategy({ algorithms: [], secret: HS_SECRET }), /empty/],
      [
        'alg none',
        () => new JwtClaimStrategy({ algorithms: ['none'], secret: HS_SECRET }),
        /"none"/,
      ],
      [
        'HS and RS mixed',
        () => new JwtClaimStrategy({ algorithms: ['HS256', 'RS256'], secret: HS_SECRET }),
        /Cannot mix/,
      ],
      [
        'RS and ES mixed',
        () => new JwtClaimStrategy({ algorithms: ['RS256', 'ES256'], publicKey: pem() }),
        /Cannot mix/,
      ],
      [
        'an unknown algorithm',
        () => new JwtClaimStrategy({ algorithms: ['HS1'], secret: HS_SECRET }),
        /not supported/,
      ],
      [
        'a short secret',
        () => new JwtClaimStrategy({ algorithms: ['HS256'], secret: 'short' }),
        /shorter than 32/,
      ],
      [
        'HS with a public key',
        () => new JwtClaimStrategy({ algorithms: ['HS256'], publicKey: pem() }),
        /publicKey/,
      ],
      [
        'RS with a secret',
        () => new JwtClaimStrategy({ algorithms: ['RS256'], secret: HS_SECRET }),
        /with a secret/,
      ],
      [
        'both keys',
        () => new JwtClaimStrategy({ algorithms: ['HS256'], secret: HS_SECRET, publicKey: pem() }),
        /exactly one/,
      ],
      ['no key', () => new JwtClaimStrategy({ algorithms: ['HS256'] }), /exactly one/],
      [
        'a non-key PEM',
        () => new JwtClaimStrategy({ algorithms: ['RS256'], publicKey: 'not a key' }),
        /not a PEM/,
      ],
      [
        'a jwksUri over plain http to a remote host',
        () =>
          new JwtClaimStrategy({ algorithms: ['RS256'], jwksUri: 'http://idp.example.com/jwks' }),
        /only https:/,
      ],
      [
        'a jwksUri with credentials',
        () =>
          new JwtClaimStrategy({
            algorithms: ['RS256'],
            jwksUri: 'https://u:p@idp.example.com/jwks',
          }),
        /credentials/,
      ],
      [
        'a jwksUri that is not a URL',
        () => new JwtClaimStrategy({ algorithms: ['RS256'], jwksUri: 'not a url' }),
        /not a URL/,
      ],
      [
        'HS256 with a jwksUri',
        () =>
          new JwtClaimStrategy({ algorithms: ['HS256'], jwksUri: 'https://idp.example.com/jwks' }),
        /JWKS holds public keys/,
      ],
      [
        'a jwksUri and a publicKey',
        () =>
          new JwtClaimStrategy({
            algorithms: ['RS256'],
            jwksUri: 'https://idp.example.com/jwks',
            publicKey: pem(),
          }),
        /exactly one of jwksUri/,
      ],
      [
        'a top-level key next to a list of issuers',
        () =>
          new JwtClaimStrategy({
            algorithms: ['HS256'],
            secret: HS_SECRET,
            issuer: [{ issuer: 'https://a.example', secret: HS_SECRET }],
          }),
        /into each issuer/,
      ],
      [
        'a duplicated issuer',
        () =>
          new JwtClaimStrategy({
            algorithms: ['HS256'],
            issuer: [
              { issuer: 'https://a.example', secret: HS_SECRET },
              { issuer: 'https://a.example', secret: HS_SECRET },
            ],
          }),
        /twice/,
      ],
      [
        'an issuer without keys',
        () =>
          new JwtClaimStrategy({
            algorithms: ['RS256'],
            issuer: [{ issuer: 'https://a.example' }],
          }),
        /exactly one of jwksUri/,
      ],
      [
        'an empty claim path',
        () => new JwtClaimStrategy({ ...hs, claim: 'org..id' }),
        /not a claim path/,
      ],
      [
        'a mapTenantId that is not a function',
        () => new JwtClaimStrategy({ ...hs, mapTenantId: 'acme' as never }),
        /mapTenantId/,
      ],
      [
        'a negative jwksTimeoutMs',
        () =>
          new JwtClaimStrategy({
            algorithms: ['RS256'],
            jwksUri: 'https://idp.example.com/jwks',
            jwksTimeoutMs: -1,
          }),
        /jwksTimeoutMs/,
      ],
      [
        'an EC key for RS256',
        () =>
          new JwtClaimStrategy({
            algorithms: ['RS256'],
            publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
          }),
        /with a ec key/,
      ],
    ];
    for (const [name, build, message] of cases) {
      it(`refuses ${name}`, () => {
        expect(build).to.throw(TenancyConfigError, message);
      });
    }
  });

  it('reads dot-path and namespaced claims, with and without mapTenantId', async () => {
    const nested = createApp({ strategies: ['jwt_claim'], jwt: { ...hs, claim: 'org.slug' } });
    const a = await request(nested.app)
      .get('/')
      .auth(hsToken({ org: { slug: 'acme' } }), { type: 'bearer' })
      .expect(200);
    expect(a.body.tenant).to.equal('acme');
    const namespaced = createApp({
      strategies: ['jwt_claim'],
      jwt: { ...hs, claim: 'https://example.com/claims.tenant' },
    });
    const b = await request(namespaced.app)
      .get('/')
      .auth(hsToken({ 'https://example.com/claims': { tenant: 'globex' } }), { type: 'bearer' })
      .expect(200);
    expect(b.body.tenant).to.equal('globex');
    // the literal key "https://example.com/claims.tenant" is not what that path reads
    const literal = await request(namespaced.app)
      .get('/')
      .auth(hsToken({ 'https://example.com/claims.tenant': 'globex' }), { type: 'bearer' })
      .expect(200);
    expect(literal.body.tenant).to.equal(null);
  });

  it('answers 400 TENANT_INVALID when mapTenantId returns a non-string, 500 TENANT_RESOLUTION_FAILED when it throws', async () => {
    const numeric = createApp({
      strategies: ['jwt_claim'],
      jwt: { ...hs, mapTenantId: () => 42 as unknown as string },
    });
    const a = await request(numeric.app)
      .get('/')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(400);
    expect(a.body.code).to.equal('TENANT_INVALID');
    const throwing = createApp({
      strategies: ['jwt_claim'],
      jwt: {
        ...hs,
        mapTenantId: () => {
          throw new Error('map failed');
        },
      },
    });
    const b = await request(throwing.app)
      .get('/')
      .auth(hsToken({ tid: 'acme' }), { type: 'bearer' })
      .expect(500);
    expect(b.body.code).to.equal('TENANT_RESOLUTION_FAILED');
  });

  it('uses mapTenantId in the default membership check too', async () => {
    const { app } = createApp({
      strategies: ['jwt_claim', 'header'],
      jwt: {
        ...hs,
        claim: 'org',
        tenantsClaim: 'orgs',
        mapTenantId: (v) => (v === 'org_1' ? 'acme' : v === 'org_2' ? 'globex' : undefined),
      },
    });
    const token = hsToken({ orgs: ['org_1', 'org_2'] });
    await request(app)
      .get('/')
      .auth(token, { type: 'bearer' })
      .set('X-Tenant-ID', 'globex')
      .expect(200);
    const res = await request(app)
      .get('/')
      .auth(token, { type: 'bearer' })
      .set('X-Tenant-ID', 'hooli')
      .expect(403);
    expect(res.body.code).to.equal('TENANT_FORBIDDEN');
  });

  it('never mutates its options (deeply frozen options are accepted)', () => {
    const options = Object.freeze({
      algorithms: Object.freeze(['HS256']),
      audience: Object.freeze(['api']),
      issuer: Object.freeze([Object.freeze({ issuer: 'https://a.example', secret: HS_SECRET })]),
      claim: Object.freeze(['org', 'id']),
    });
    expect(() => new JwtClaimStrategy(options)).to.not.throw();
  });

  it('signs with the private key never: a private key given as publicKey only keeps its public half', async () => {
    const strategy = new JwtClaimStrategy({
      algorithms: ['RS256'],
      publicKey: otherRsaKeys().privateKey,
    });
    const { app } = createApp({ strategies: [strategy] });
    const ok = rsToken({ tid: 'acme' }, otherRsaKeys().privateKey);
    expect(
      (await request(app).get('/').auth(ok, { type: 'bearer' }).expect(200)).body.tenant,
    ).to.equal('acme');
  });
});
