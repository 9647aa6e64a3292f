import { expect } from 'chai';
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';
import request from 'supertest';
import {
  JwtClaimStrategy,
  resolveTenant,
  tenancyErrorHandler,
  type JwtClaimStrategyOptions,
} from '../../src/index';
import { echo, testTenants } from '../support/create-app';

/**
 * The jwt_claim strategy against a real OpenID Provider (npm oidc-provider,
 * on loopback): client-credentials access tokens in JWT format, keys served
 * from the provider's JWKS endpoint, a key rotation without restarting the
 * app, two issuers each with their own keys, and forged tokens.
 */

const AUDIENCE = 'https://api.tenantry.test';
const NAMESPACE = 'https://tenantry.test/claims';
const ORG_IDS: Readonly<Record<string, string>> = { org_9ybsU1dN2dKfDkBi: 'acme' };
const REDIRECT = 'http://127.0.0.1:1/callback';
/** The tenant of each end user signing in with the authorization-code flow. */
const USER_TENANTS: Readonly<Record<string, string>> = { alice: 'acme', bob: 'globex' };

interface SigningKey {
  readonly kid: string;
  readonly jwk: JWK;
  readonly privateKey: KeyObject;
  readonly publicPem: string;
}

function signingKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    jwk,
    privateKey: createPrivateKey({ key: jwk as never, format: 'jwk' }),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** One OpenID Provider on a loopback port; `rotate()` swaps its keys without changing its URL. */
class TestProvider {
  readonly #server: Server;
  #handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  issuer = '';
  jwksUri = '';

  constructor() {
    this.#server = createServer((req, res) => this.#handler(req, res));
  }

  async start(keys: readonly SigningKey[]): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    const { port } = this.#server.address() as AddressInfo;
    this.issuer = `http://127.0.0.1:${port}`;
    this.jwksUri = `${this.issuer}/jwks`;
    this.rotate(keys);
    return this;
  }

  /** Serves a new provider (same issuer) signing with the first key and publishing all of them. */
  rotate(keys: readonly SigningKey[]): void {
    const provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: 'svc-acme',
          client_secret: 'svc-acme-secret-0123456789abcdef',
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
        },
        {
          client_id: 'web',
          client_secret: 'web-secret-0123456789abcdef',
          grant_types: ['authorization_code'],
          response_types: ['code'],
          redirect_uris: [REDIRECT],
        },
        {
          client_id: 'svc-globex',
          client_secret: 'svc-globex-secret-0123456789abcdef',
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
        },
      ],
      jwks: { keys: keys.map((k) => k.jwk) as never },
      ttl: { ClientCredentials: 600 },
      routes: { jwks: '/jwks' },
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: true }, // its login form accepts any login: the spec signs in as alice
        resourceIndicators: {
          enabled: true,
          defaultResource: () => AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'api',
            audience: AUDIENCE,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      extraTokenClaims: (_ctx, token) =>
        'accountId' in token && typeof token.accountId === 'string'
          ? { [NAMESPACE]: { tenant: USER_TENANTS[token.accountId] } }
          : token.clientId === 'svc-acme'
            ? { org_id: 'org_9ybsU1dN2dKfDkBi', [NAMESPACE]: { tenant: 'acme' } }
            : { org_id: 'org_unknown', [NAMESPACE]: { tenant: 'globex', tenants: ['globex'] } },
    });
    this.#handler = provider.callback();
  }

  /** A client-credentials access token (a JWT) issued by this provider. */
  async token(client: 'svc-acme' | 'svc-globex'): Promise<string> {
    const res = await request(this.issuer)
      .post('/token')
      .type('form')
      .send({
        grant_type: 'client_credentials',
        client_id: client,
        client_secret: `${client}-secret-0123456789abcdef`,
        scope: 'api',
        resource: AUDIENCE,
      })
      .expect(200);
    return (res.body as { access_token: string }).access_token;
  }

  /**
   * An authorization-code access token for an end user: /auth, the
   * provider's login and consent pages (submitted as a browser would, with
   * its cookies), the redirect with the code, then /token with PKCE.
   */
  async userToken(login: string): Promise<string> {
    const agent = request.agent(this.issuer);
    const verifier = randomBytes(32).toString('base64url');
    let res = await agent
      .get('/auth')
      .query({
        client_id: 'web',
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid',
        resource: AUDIENCE,
        state: 'state-1',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      })
      .redirects(0);
    let code: string | null = null;
    for (let hop = 0; hop < 10 && code === null; hop += 1) {
      const location = res.headers.location as string | undefined;
      if (location === undefined)
        throw new Error(`no redirect at hop ${hop}: ${res.status} ${res.text}`);
      if (location.startsWith(REDIRECT)) {
        code = new URL(location).searchParams.get('code');
        break;
      }
      const next = new URL(location, this.issuer);
      if (next.pathname.startsWith('/interaction/')) {
        const page = await agent.get(next.pathname).expect(200);
        const prompt = /name="prompt" value="(\w+)"/.exec(page.text)?.[1] ?? 'login';
        res = await agent
          .post(next.pathname)
          .type('form')
          .send(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt })
          .redirects(0);
      } else {
        res = await agent.get(`${next.pathname}${next.search}`).redirects(0);
      }
    }
    if (code === null)
      throw new Error('the authorization-code flow did not end at the redirect URI');
    const token = await request(this.issuer)
      .post('/token')
      .type('form')
      .send({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        client_id: 'web',
        client_secret: 'web-secret-0123456789abcdef',
        code_verifier: verifier,
        resource: AUDIENCE,
      })
      .expect(200);
    return (token.body as { access_token: string }).access_token;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

function header(token: string): { kid?: string; alg?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as {
    kid?: string;
  };
}

function appWith(options: JwtClaimStrategyOptions): Express {
  const app = express();
  app.use(resolveTenant({ store: testTenants(), strategies: [new JwtClaimStrategy(options)] }));
  app.use(echo);
  app.use(tenancyErrorHandler());
  return app;
}

async function forge(
  claims: Record<string, unknown>,
  key: KeyObject,
  kid: string,
  exp: number | string = '5m',
): Promise<string> {
  return new SignJWT({ aud: AUDIENCE, sub: 'forger', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);
}

describe('JwtClaimStrategy with a real OpenID Provider (oidc-provider, JWKS)', function () {
  this.timeout(30_000);
  const keyA1 = signingKey('a-1');
  const keyA2 = signingKey('a-2');
  const keyB = signingKey('b-1');
  const a = new TestProvider();
  const b = new TestProvider();

  before(async () => {
    await a.start([keyA1]);
    await b.start([keyB]);
  });
  after(async () => {
    await a.stop();
    await b.stop();
  });

  function single(extra: Partial<JwtClaimStrategyOptions> = {}): JwtClaimStrategyOptions {
    return {
      algorithms: ['RS256'],
      jwksUri: a.jwksUri,
      issuer: a.issuer,
      audience: AUDIENCE,
      claim: `${NAMESPACE}.tenant`,
      jwksCooldownMs: 0,
      ...extra,
    };
  }

  it('resolves a client-credentials token by its namespaced claim (https://…/claims.tenant)', async () => {
    const token = await a.token('svc-acme');
    expect(header(token)).to.include({ kid: 'a-1', alg: 'RS256' });
    const res = await request(appWith(single()))
      .get('/')
      .auth(token, { type: 'bearer' })
      .expect(200);
    expect(res.body).to.include({
      tenant: 'acme',
      source: 'jwt_claim',
      trusted: true,
      user: 'svc-acme',
    });
  });

  it('resolves an authorization-code token of a signed-in user (login and consent pages, PKCE)', async () => {
    const token = await a.userToken('alice');
    const app = appWith(single());
    const res = await request(app).get('/').auth(token, { type: 'bearer' }).expect(200);
    expect(res.body).to.include({ tenant: 'acme', user: 'alice', trusted: true });
    const bob = await request(app)
      .get('/')
      .auth(await a.userToken('bob'), { type: 'bearer' })
      .expect(200);
    expect(bob.body).to.include({ tenant: 'globex', user: 'bob' });
  });

  it('maps an IdP organisation id to a tenant id with mapTenantId(claimValue, claims)', async () => {
    const seen: unknown[] = [];
    const app = appWith(
      single({
        claim: 'org_id',
        mapTenantId: (value, claims) => {
          seen.push(claims.client_id);
          return typeof value === 'string' ? ORG_IDS[value] : undefined;
        },
      }),
    );
    const res = await request(app)
      .get('/')
      .auth(await a.token('svc-acme'), { type: 'bearer' })
      .expect(200);
    expect(res.body.tenant).to.equal('acme');
    expect(seen).to.deep.equal(['svc-acme']);
    // An org id the map does not know names no tenant: the user is authenticated, no tenant.
    const unknown = await request(app)
      .get('/')
      .auth(await a.token('svc-globex'), { type: 'bearer' })
      .expect(200);
    expect(unknown.body).to.include({ tenant: null, user: 'svc-globex' });
  });

  it('picks up a key rotation through the JWKS without a restart, old tokens still valid', async () => {
    const app = appWith(single());
    const before = await a.token('svc-acme');
    await request(app).get('/').auth(before, { type: 'bearer' }).expect(200);
    a.rotate([keyA2, keyA1]);
    try {
      const after = await a.token('svc-acme');
      expect(header(after).kid).to.equal('a-2');
      const res = await request(app).get('/').auth(after, { type: 'bearer' }).expect(200);
      expect(res.body.tenant).to.equal('acme');
      await request(app).get('/').auth(before, { type: 'bearer' }).expect(200);
    } finally {
      a.rotate([keyA1]);
    }
  });

  it('works from the config file shape (tenancy.resolution.jwt with a list of issuers), membership through a namespaced tenants claim', async () => {
    const app = express();
    app.use(
      resolveTenant({
        store: testTenants(),
        config: {
          strategy: ['jwt_claim', 'header'],
          jwt: {
            algorithms: ['RS256'],
            audience: AUDIENCE,
            claim: 'tid', // absent from these tokens: the header names the tenant
            tenantsClaim: `${NAMESPACE}.tenants`,
            issuer: [
              { issuer: a.issuer, jwksUri: a.jwksUri },
              { issuer: b.issuer, jwksUri: b.jwksUri },
            ],
          },
        },
      }),
    );
    app.use(echo);
    app.use(tenancyErrorHandler());
    const token = await b.token('svc-globex');
    const ok = await request(app)
      .get('/')
      .auth(token, { type: 'bearer' })
      .set('X-Tenant-ID', 'globex')
      .expect(200);
    expect(ok.body).to.include({ tenant: 'globex', source: 'header', user: 'svc-globex' });
    const res = await request(app)
      .get('/')
      .auth(token, { type: 'bearer' })
      .set('X-Tenant-ID', 'acme')
      .expect(403);
    expect(JSON.parse(res.text)).to.include({ code: 'TENANT_FORBIDDEN' });
  });

  describe('several issuers, each verified only by its own keys', () => {
    const app = (): Express =>
      appWith({
        algorithms: ['RS256'],
        audience: AUDIENCE,
        claim: `${NAMESPACE}.tenant`,
        jwksCooldownMs: 0,
        issuer: [
          { issuer: a.issuer, jwksUri: a.jwksUri },
          { issuer: b.issuer, jwksUri: b.jwksUri },
        ],
      });

    it('accepts tokens of each issuer', async () => {
      const acme = await request(app())
        .get('/')
        .auth(await a.token('svc-acme'), { type: 'bearer' })
        .expect(200);
      expect(acme.body.tenant).to.equal('acme');
      const globex = await request(app())
        .get('/')
        .auth(await b.token('svc-globex'), { type: 'bearer' })
        .expect(200);
      expect(globex.body.tenant).to.equal('globex');
    });

    it('answers 401 for a token claiming issuer A but signed with the key of issuer B', async () => {
      for (const kid of ['b-1', 'a-1']) {
        const forged = await forge(
          { iss: a.issuer, [NAMESPACE]: { tenant: 'acme' } },
          keyB.privateKey,
          kid,
        );
        const res = await request(app()).get('/').auth(forged, { type: 'bearer' }).expect(401);
        expect(res.body.code).to.equal('TOKEN_INVALID');
      }
    });

    it('answers 401 for an issuer that is not on the list, without fetching anything', async () => {
      const forged = await forge(
        { iss: 'https://evil.example', [NAMESPACE]: { tenant: 'acme' } },
        keyA1.privateKey,
        'a-1',
      );
      const res = await request(app()).get('/').auth(forged, { type: 'bearer' }).expect(401);
      expect(res.body).to.include({ code: 'TOKEN_INVALID', status: 401 });
      expect(res.body.detail).to.match(/issuer/);
    });
  });

  describe('forged tokens', () => {
    const claims = (): Record<string, unknown> => ({
      iss: a.issuer,
      [NAMESPACE]: { tenant: 'acme' },
    });

    it('accepts a well-formed token signed with the real key (the control case)', async () => {
      const good = await forge(claims(), keyA1.privateKey, 'a-1');
      await request(appWith(single())).get('/').auth(good, { type: 'bearer' }).expect(200);
    });

    it('answers 401 for an unknown kid', async () => {
      const forged = await forge(claims(), keyA1.privateKey, 'no-such-kid');
      const res = await request(appWith(single()))
        .get('/')
        .auth(forged, { type: 'bearer' })
        .expect(401);
      expect(res.body.code).to.equal('TOKEN_INVALID');
    });

    it('answers 401 for alg confusion: HS256 signed with the RSA public key as the secret', async () => {
      const forged = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', kid: 'a-1' })
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(Buffer.from(keyA1.publicPem));
      const res = await request(appWith(single()))
        .get('/')
        .auth(forged, { type: 'bearer' })
        .expect(401);
      expect(res.body.code).to.equal('TOKEN_INVALID');
    });

    it('answers 401 for alg none', async () => {
      const body = Buffer.from(
        JSON.stringify({ ...claims(), aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }),
      ).toString('base64url');
      for (const alg of ['none', 'None', 'NONE']) {
        const head = Buffer.from(JSON.stringify({ alg, kid: 'a-1' })).toString('base64url');
        const res = await request(appWith(single()))
          .get('/')
          .auth(`${head}.${body}.`, { type: 'bearer' })
          .expect(401);
        expect(res.body.code).to.equal('TOKEN_INVALID');
      }
    });

    it('answers 401 TOKEN_EXPIRED for an expired token and for one without exp', async () => {
      const expired = await forge(
        claims(),
        keyA1.privateKey,
        'a-1',
        Math.floor(Date.now() / 1000) - 60,
      );
      const res = await request(appWith(single()))
        .get('/')
        .auth(expired, { type: 'bearer' })
        .expect(401);
      expect(res.body.code).to.equal('TOKEN_EXPIRED');
      const endless = await new SignJWT({ ...claims(), aud: AUDIENCE })
        .setProtectedHeader({ alg: 'RS256', kid: 'a-1' })
        .sign(keyA1.privateKey);
      const none = await request(appWith(single()))
        .get('/')
        .auth(endless, { type: 'bearer' })
        .expect(401);
      expect(none.body.code).to.equal('TOKEN_EXPIRED');
    });

    it('answers 401 for a wrong audience', async () => {
      const forged = await forge(
        { ...claims(), aud: 'https://other.api' },
        keyA1.privateKey,
        'a-1',
      );
      const res = await request(appWith(single()))
        .get('/')
        .auth(forged, { type: 'bearer' })
        .expect(401);
      expect(res.body.code).to.equal('TOKEN_INVALID');
      // and a real token of the provider is refused by an app expecting another audience
      const real = await a.token('svc-acme');
      await request(appWith(single({ audience: 'https://other.api' })))
        .get('/')
        .auth(real, { type: 'bearer' })
        .expect(401);
    });
  });

  describe('when the keys cannot be fetched', () => {
    async function closedPort(): Promise<number> {
      const s = createServer().listen(0, '127.0.0.1');
      await once(s, 'listening');
      const { port } = s.address() as AddressInfo;
      s.close();
      await once(s, 'close');
      return port;
    }

    async function expect503(app: Express, token: string): Promise<void> {
      const res = await request(app).get('/').auth(token, { type: 'bearer' }).expect(503);
      expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(JSON.parse(res.text)).to.include({ code: 'TOKEN_KEYS_UNAVAILABLE', status: 503 });
    }

    it('answers 503 TOKEN_KEYS_UNAVAILABLE problem+json when the JWKS endpoint is down', async () => {
      const port = await closedPort();
      const token = await a.token('svc-acme');
      await expect503(appWith(single({ jwksUri: `http://127.0.0.1:${port}/jwks` })), token);
    });

    it('answers 503 within jwksTimeoutMs when the JWKS endpoint hangs, never a hang', async () => {
      const hang = createServer(() => undefined).listen(0, '127.0.0.1');
      await once(hang, 'listening');
      try {
        const { port } = hang.address() as AddressInfo;
        const started = Date.now();
        await expect503(
          appWith(single({ jwksUri: `http://127.0.0.1:${port}/jwks`, jwksTimeoutMs: 200 })),
          await a.token('svc-acme'),
        );
        expect(Date.now() - started).to.be.below(5_000);
      } finally {
        hang.closeAllConnections();
        hang.close();
      }
    });

    it('answers 503 when the JWKS endpoint answers 500 or something that is not a key set', async () => {
      const broken = createServer((req, res) => {
        if (req.url === '/500') res.writeHead(500).end('oops');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "nope"}');
      }).listen(0, '127.0.0.1');
      await once(broken, 'listening');
      try {
        const { port } = broken.address() as AddressInfo;
        const token = await a.token('svc-acme');
        await expect503(appWith(single({ jwksUri: `http://127.0.0.1:${port}/500` })), token);
        await expect503(appWith(single({ jwksUri: `http://127.0.0.1:${port}/garbage` })), token);
      } finally {
        broken.closeAllConnections();
        broken.close();
      }
    });
  });
});
