import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import jsonwebtoken from 'jsonwebtoken';
import { JwtClaimStrategy, type JwtClaimStrategyOptions } from '../../src/index';

interface Pair {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly jwk: Record<string, unknown>;
}

function pair(kid: string): Pair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256' } };
}

function bearer(key: Pair, tenant = 'acme'): Request {
  const token = jsonwebtoken.sign({ sub: 'u1', tid: tenant, aud: 'api' }, key.privateKey, {
    algorithm: 'RS256',
    keyid: key.kid,
    expiresIn: '1h',
  });
  return { headers: { authorization: `Bearer ${token}` } } as unknown as Request;
}

async function refusal(strategy: JwtClaimStrategy, req: Request): Promise<{ code?: string }> {
  try {
    await strategy.resolve(req);
  } catch (error) {
    return error as { code?: string };
  }
  throw new Error('expected the token to be refused');
}

// The warm path of a jwksUri verifier answers from its own copy of jose's key
// choice; these pin that it changes exactly when jose's would.
describe('jwt_claim with jwksUri: warm keys', () => {
  let server: Server;
  let keys: Pair[];
  let fetches: number;
  let url: string;

  beforeEach(async () => {
    fetches = 0;
    server = createServer((_req, res) => {
      fetches += 1;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterEach(() => {
    server.close();
  });

  const strategy = (more: Partial<JwtClaimStrategyOptions> = {}): JwtClaimStrategy =>
    new JwtClaimStrategy({ algorithms: ['RS256'], audience: 'api', jwksUri: url, ...more });

  it('verifies many tokens of a warm key with one fetch', async () => {
    const k1 = pair('k1');
    keys = [k1];
    const s = strategy();
    for (const tenant of ['acme', 'globex', 'acme', 'initech']) {
      expect((await s.resolve(bearer(k1, tenant)))?.tenantId).to.equal(tenant);
    }
    expect(fetches).to.equal(1);
  });

  it('refuses a key removed by a rotation once a new kid made jose refetch, though it was warm', async () => {
    const k1 = pair('k1');
    const k2 = pair('k2');
    keys = [k1];
    const s = strategy({ jwksCooldownMs: 0 });
    expect((await s.resolve(bearer(k1)))?.tenantId).to.equal('acme');
    expect((await s.resolve(bearer(k1)))?.tenantId).to.equal('acme');
    keys = [k2]; // the provider rotated k1 out
    expect((await s.resolve(bearer(k2)))?.tenantId).to.equal('acme');
    expect(fetches).to.equal(2);
    // jose's keys are now the new set, without k1: the warm copy must not answer for it.
    expect((await refusal(s, bearer(k1))).code).to.equal('TOKEN_INVALID');
  });

  it('refetches when jose considers its copy stale (jwksCacheMaxAgeMs), even for a warm key', async () => {
    const k1 = pair('k1');
    keys = [k1];
    const s = strategy({ jwksCacheMaxAgeMs: 50 });
    await s.resolve(bearer(k1));
    await s.resolve(bearer(k1));
    expect(fetches).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    keys = []; // the provider withdrew every key
    expect((await refusal(s, bearer(k1))).code).to.equal('TOKEN_INVALID');
    expect(fetches).to.be.at.least(2);
  });
});
