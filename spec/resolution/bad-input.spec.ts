import { expect } from 'chai';
import type { Express } from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import type { Test } from 'supertest';
import {
  HS_SECRET,
  createApp,
  hsToken,
  otherRsaKeys,
  rsToken,
  rsaKeys,
  type CountingTenantStore,
} from '../support/create-app';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
const now = () => Math.floor(Date.now() / 1000);

interface Case {
  readonly name: string;
  readonly app: 'rs' | 'hs' | 'host' | 'host-trusting';
  readonly send: (app: Express) => Test;
  readonly status: number;
  readonly code: string;
}

/**
 * Every hostile request must be answered with the right 4xx and code, and
 * must never reach the tenant store.
 */
describe('bad input corpus', () => {
  let apps: Record<Case['app'], { app: Express; store: CountingTenantStore }>;
  let rsPem: string;

  before(() => {
    rsPem = rsaKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    apps = {
      rs: createApp({
        strategies: ['jwt_claim', 'header', 'path'],
        jwt: { algorithms: ['RS256'], publicKey: rsPem },
      }),
      hs: createApp({
        strategies: ['jwt_claim', 'header'],
        jwt: { algorithms: ['HS256'], secret: HS_SECRET },
      }),
      host: createApp({ strategies: ['subdomain'], domain: 'lexigram.dev' }),
      'host-trusting': createApp({
        strategies: ['subdomain'],
        domain: 'lexigram.dev',
        trustProxy: 'loopback',
      }),
    };
  });

  const bearer = (token: () => string) => (app: Express) =>
    request(app).get('/').set('Authorization', `Bearer ${token()}`);
  const header = (value: string) => (app: Express) =>
    request(app).get('/').set('X-Tenant-ID', value);
  const path = (p: string) => (app: Express) => request(app).get(p);
  const host = (h: string, forwarded?: string) => (app: Express) => {
    const t = request(app).get('/').set('Host', h);
    return forwarded === undefined ? t : t.set('X-Forwarded-Host', forwarded);
  };

  const cases: Case[] = [
    // Tokens
    {
      name: 'a token signed with another RSA key (forged)',
      app: 'rs',
      send: bearer(() => rsToken({ tid: 'acme' }, otherRsaKeys().privateKey)),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an alg:none token',
      app: 'rs',
      send: bearer(
        () =>
          `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ tid: 'acme', sub: 'u', exp: now() + 600 })}.`,
      ),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an alg:none token with a stray signature',
      app: 'hs',
      send: bearer(
        () => `${b64url({ alg: 'none' })}.${b64url({ tid: 'acme', exp: now() + 600 })}.c2ln`,
      ),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'HS/RS confusion: HS256 signed with the RSA public key as secret',
      app: 'rs',
      send: bearer(() =>
        jwt.sign({ tid: 'acme', sub: 'u' }, rsPem, { algorithm: 'HS256', expiresIn: '1h' }),
      ),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an HS256 token signed with the wrong secret',
      app: 'hs',
      send: bearer(() =>
        jwt.sign({ tid: 'acme' }, 'x'.repeat(40), { algorithm: 'HS256', expiresIn: '1h' }),
      ),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an HS512 token when only HS256 is allowed',
      app: 'hs',
      send: bearer(() =>
        jwt.sign({ tid: 'acme' }, HS_SECRET, { algorithm: 'HS512', expiresIn: '1h' }),
      ),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'a token whose payload was edited after signing',
      app: 'hs',
      send: bearer(() => {
        const [h, , s] = hsToken({ tid: 'acme' }).split('.');
        return `${h}.${b64url({ tid: 'globex', sub: 'user-1', exp: now() + 600 })}.${s}`;
      }),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an expired token',
      app: 'hs',
      send: bearer(() => hsToken({ tid: 'acme', exp: now() - 5 })),
      status: 401,
      code: 'TOKEN_EXPIRED',
    },
    {
      name: 'a token without exp',
      app: 'hs',
      send: bearer(() => jwt.sign({ tid: 'acme' }, HS_SECRET, { algorithm: 'HS256' })),
      status: 401,
      code: 'TOKEN_EXPIRED',
    },
    {
      name: 'a token not valid yet (nbf)',
      app: 'hs',
      send: bearer(() => hsToken({ tid: 'acme', nbf: now() + 600 })),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'a garbage bearer token',
      app: 'hs',
      send: bearer(() => 'not-a-jwt'),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an empty bearer token',
      app: 'hs',
      send: (app) => request(app).get('/').set('Authorization', 'Bearer'),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'an oversized bearer token',
      app: 'hs',
      send: bearer(() => `${'a'.repeat(9000)}.b.c`),
      status: 401,
      code: 'TOKEN_INVALID',
    },
    {
      name: 'a verified token with an SQL-looking tenant claim',
      app: 'hs',
      send: bearer(() => hsToken({ tid: "acme' OR '1'='1" })),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a verified token with an array tenant claim',
      app: 'hs',
      send: bearer(() => hsToken({ tid: ['acme'] })),
      status: 400,
      code: 'TENANT_INVALID',
    },
    // Tenant ids in a header
    {
      name: 'an upper-case id',
      app: 'rs',
      send: header('ACME'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'an SQL injection',
      app: 'rs',
      send: header("acme'; DROP TABLE tenants;--"),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'an OR 1=1',
      app: 'rs',
      send: header("' OR 1=1 --"),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a 64-character id',
      app: 'rs',
      send: header('a'.repeat(64)),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a 10,000-character id',
      app: 'rs',
      send: header('a'.repeat(10_000)),
      status: 400,
      code: 'TENANT_INVALID',
    },
    { name: 'an empty id', app: 'rs', send: header(''), status: 400, code: 'TENANT_INVALID' },
    {
      name: 'a Latin-1 look-alike (acmé)',
      app: 'rs',
      send: header('acm\u00e9'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a percent-encoded id',
      app: 'rs',
      send: header('%61cme'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a traversal',
      app: 'rs',
      send: header('../globex'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'an id with an inner tab',
      app: 'rs',
      send: header('ac\tme'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a leading hyphen',
      app: 'rs',
      send: header('-acme'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a prototype key',
      app: 'rs',
      send: header('__proto__'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a NoSQL operator',
      app: 'rs',
      send: header('{"$ne":null}'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'two ids in one header',
      app: 'rs',
      send: header('acme,globex'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    // Tenant ids in the path
    {
      name: 'a percent-encoded path segment',
      app: 'rs',
      send: path('/api/v1/%61cme/docs'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a percent-encoded Cyrillic look-alike',
      app: 'rs',
      send: path('/api/v1/%D0%B0cme/docs'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a fullwidth look-alike',
      app: 'rs',
      send: path('/api/v1/%EF%BD%81cme/docs'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'an encoded slash',
      app: 'rs',
      send: path('/api/v1/acme%2F..%2Fglobex/docs'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'a NUL byte',
      app: 'rs',
      send: path('/api/v1/acme%00/docs'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    {
      name: 'an SQL-looking segment',
      app: 'rs',
      send: path("/api/v1/acme'%3B--/docs"),
      status: 400,
      code: 'TENANT_INVALID',
    },
    // Hosts
    {
      name: 'a foreign host',
      app: 'host',
      send: host('evil.com'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a look-alike suffix host',
      app: 'host',
      send: host('acme.lexigram.dev.evil.com'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a look-alike glued host',
      app: 'host',
      send: host('acmelexigram.dev'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a nested subdomain',
      app: 'host',
      send: host('a.b.lexigram.dev'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'the bare domain',
      app: 'host',
      send: host('lexigram.dev'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'an IPv4 host',
      app: 'host',
      send: host('10.0.0.1:8080'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'an IPv6 host',
      app: 'host',
      send: host('[::1]:8080'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a trailing-dot host',
      app: 'host',
      send: host('acme.lexigram.dev.'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a userinfo trick',
      app: 'host',
      send: host('acme.lexigram.dev@evil.com'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a percent-encoded dot',
      app: 'host',
      send: host('acme%2elexigram.dev'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'an oversized host',
      app: 'host',
      send: host(`${'a.'.repeat(140)}lexigram.dev`),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'X-Forwarded-Host without trust proxy',
      app: 'host',
      send: host('localhost', 'acme.lexigram.dev'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'a look-alike X-Forwarded-Host behind a trusted proxy',
      app: 'host-trusting',
      send: host('acme.lexigram.dev', 'acme.lexigram.dev.evil.com'),
      status: 400,
      code: 'HOST_INVALID',
    },
    {
      name: 'an invalid label',
      app: 'host',
      send: host('-acme.lexigram.dev'),
      status: 400,
      code: 'TENANT_INVALID',
    },
    // Mixed sources
    {
      name: 'a valid token and a header naming another tenant',
      app: 'hs',
      send: (app) =>
        request(app)
          .get('/')
          .set('Authorization', `Bearer ${hsToken({ tid: 'acme' })}`)
          .set('X-Tenant-ID', 'globex'),
      status: 403,
      code: 'TENANT_CONFLICT',
    },
    {
      name: 'a token of a non-member naming a tenant by header',
      app: 'hs',
      send: (app) =>
        request(app)
          .get('/')
          .set('Authorization', `Bearer ${hsToken({ tenants: ['acme'] })}`)
          .set('X-Tenant-ID', 'globex'),
      status: 403,
      code: 'TENANT_FORBIDDEN',
    },
  ];

  for (const c of cases) {
    it(`answers ${c.status} ${c.code} to ${c.name}, without touching the store`, async () => {
      const { app, store } = apps[c.app];
      store.reset();
      const res = await c.send(app);
      expect([res.status, res.body.code]).to.deep.equal([c.status, c.code]);
      expect(store.totalCalls).to.equal(0);
    });
  }

  it('still serves a valid request through the same apps (the corpus is not refusing everything)', async () => {
    await request(apps.rs.app)
      .get('/')
      .set('Authorization', `Bearer ${rsToken({ tid: 'acme' })}`)
      .expect(200);
    await request(apps.hs.app).get('/').set('X-Tenant-ID', 'globex').expect(200);
    await request(apps.host.app).get('/').set('Host', 'acme.lexigram.dev').expect(200);
    await request(apps['host-trusting'].app)
      .get('/')
      .set('Host', 'x')
      .set('X-Forwarded-Host', 'globex.lexigram.dev')
      .expect(200);
  });
});
