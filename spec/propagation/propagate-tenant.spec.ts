import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import {
  InMemoryTenantStore,
  PropagatedStrategy,
  currentTenant,
  propagateTenant,
  propagateTenantJwt,
  propagatingFetch,
  requireTenant,
  resolveTenant,
  runWithTenant,
  tenancyErrorHandler,
} from '../../src/index';

const SECRET = randomBytes(32);
const OLD_SECRET = randomBytes(32).toString('base64');

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('propagateTenant() / propagatingFetch() and PropagatedStrategy', () => {
  const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);
  let serviceA: { server: Server; url: string };
  let serviceB: { server: Server; url: string };
  const receivedByB: string[] = [];

  before(async () => {
    // Service B trusts only a signed propagated tenant.
    const b = express();
    b.use((req, _res, next) => {
      const value = req.headers['x-tenant-propagation'];
      if (typeof value === 'string') receivedByB.push(value);
      next();
    });
    b.use(
      resolveTenant({
        store,
        strategies: [new PropagatedStrategy({ secret: [OLD_SECRET, SECRET], audience: 'billing' })],
      }),
      requireTenant(),
    );
    b.get('/whoami', (req, res) => {
      res.json({ tenant: currentTenant().id, source: req.tenant?.source });
    });
    b.use(tenancyErrorHandler());
    serviceB = await listen(b);

    // Service A resolves its own tenant from a header and calls B.
    const billingFetch = propagatingFetch({ secret: SECRET, audience: 'billing' });
    const a = express();
    a.use(resolveTenant({ store }), requireTenant());
    a.get('/via-billing', async (_req, res, next) => {
      try {
        const answer = await billingFetch(`${serviceB.url}/whoami`);
        res.status(answer.status).json(await answer.json());
      } catch (error) {
        next(error);
      }
    });
    a.use(tenancyErrorHandler());
    serviceA = await listen(a);
  });
  after(async () => {
    for (const { server } of [serviceA, serviceB]) {
      server.closeAllConnections(); // fetch keeps connections alive
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("B resolves A's tenant for every call, concurrent tenants included", async () => {
    const tenants = ['acme', 'globex', 'acme', 'globex', 'globex', 'acme'];
    const answers = await Promise.all(
      tenants.map((tenant) => request(serviceA.url).get('/via-billing').set('X-Tenant-ID', tenant)),
    );
    answers.forEach((answer, i) => {
      expect(answer.status).to.equal(200);
      expect(answer.body).to.deep.equal({ tenant: tenants[i], source: 'propagated' });
    });
  });

  it('refuses a replayed header with 401 TOKEN_INVALID', async () => {
    await request(serviceA.url).get('/via-billing').set('X-Tenant-ID', 'acme').expect(200);
    const used = receivedByB[receivedByB.length - 1] as string;
    const replay = await request(serviceB.url).get('/whoami').set('X-Tenant-Propagation', used);
    expect(replay.status).to.equal(401);
    expect(replay.body.code).to.equal('TOKEN_INVALID');
    expect(replay.body.detail).to.match(/used before/);
  });

  it('refuses forged, altered, foreign-audience, wrong-secret, expired and unsigned headers (401 TOKEN_INVALID)', async () => {
    const sign = (opts: { secret?: string | Uint8Array; audience?: string; now?: () => number }) =>
      runWithTenant(
        'acme',
        () =>
          propagateTenant({ secret: SECRET, audience: 'billing', ...opts })()[
            'X-Tenant-Propagation'
          ],
      ) as string;
    const valid = sign({});
    const [v, , issued, nonce, signature] = valid.split('.');
    const forged: [string, string][] = [
      ['random signature', `${v}.acme.${issued}.${nonce}.${randomBytes(32).toString('base64url')}`],
      ['tenant altered', `${v}.globex.${issued}.${nonce}.${signature}`],
      ['time altered', `${v}.acme.${Number(issued) + 1}.${nonce}.${signature}`],
      ['other audience', sign({ audience: 'reports' })],
      ['other secret', sign({ secret: randomBytes(32) })],
      ['expired', sign({ now: () => Date.now() - 60_000 })],
      ['far future', sign({ now: () => Date.now() + 60_000 })],
      ['unsigned', 'acme'],
      ['garbage', 'v1.....'],
      ['oversized', `v1.acme.${'1'.repeat(300)}`],
    ];
    for (const [what, header] of forged) {
      const answer = await request(serviceB.url).get('/whoami').set('X-Tenant-Propagation', header);
      expect(answer.status, what).to.equal(401);
      expect(answer.body.code, what).to.equal('TOKEN_INVALID');
    }
    // The untouched header is still good (none of the above consumed its nonce).
    const ok = await request(serviceB.url).get('/whoami').set('X-Tenant-Propagation', valid);
    expect(ok.status).to.equal(200);
    expect(ok.body.tenant).to.equal('acme');
  });

  it('accepts headers signed with any secret of a rotation', async () => {
    const header = runWithTenant('globex', () =>
      propagateTenant({ secret: OLD_SECRET, audience: 'billing' })(),
    );
    const answer = await request(serviceB.url).get('/whoami').set(header);
    expect(answer.status).to.equal(200);
    expect(answer.body.tenant).to.equal('globex');
  });

  it('never trusts a plain tenant header on B: 401 TENANT_REQUIRED', async () => {
    const answer = await request(serviceB.url).get('/whoami').set('X-Tenant-ID', 'acme');
    expect(answer.status).to.equal(401);
    expect(answer.body.code).to.equal('TENANT_REQUIRED');
  });

  it('rejects a call outside a tenant scope with 500 TENANT_SCOPE_REQUIRED before sending it', async () => {
    const before = receivedByB.length;
    const billingFetch = propagatingFetch({ secret: SECRET, audience: 'billing' });
    const error = await billingFetch(`${serviceB.url}/whoami`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property('code', 'TENANT_SCOPE_REQUIRED');
    expect(receivedByB.length).to.equal(before);
  });

  it('uses a shared nonce store when given one (asynchronous claim)', async () => {
    const claimed = new Set<string>();
    const strategy = new PropagatedStrategy({
      secret: SECRET,
      audience: 'billing',
      nonces: {
        claim: async (nonce) => {
          if (claimed.has(nonce)) return false;
          claimed.add(nonce);
          return true;
        },
      },
    });
    const header = runWithTenant('acme', () =>
      propagateTenant({ secret: SECRET, audience: 'billing' })(),
    );
    const req = { headers: { 'x-tenant-propagation': header['X-Tenant-Propagation'] } } as never;
    expect(await strategy.resolve(req)).to.deep.equal({ tenantId: 'acme', trusted: true });
    const replay = await Promise.resolve(strategy.resolve(req)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(replay).to.have.property('code', 'TOKEN_INVALID');
  });

  describe('bad options', () => {
    it('refuses a short secret, a missing audience and a bad header name (TypeError)', () => {
      expect(() => propagateTenant({ secret: 'short', audience: 'billing' })).to.throw(
        TypeError,
        /32 bytes/,
      );
      expect(() => new PropagatedStrategy({ secret: SECRET, audience: '' })).to.throw(
        TypeError,
        /audience/,
      );
      expect(
        () => new PropagatedStrategy({ secret: SECRET, audience: 'b', header: 'bad header' }),
      ).to.throw(TypeError, /header/);
      expect(() => new PropagatedStrategy({ secret: [], audience: 'b' })).to.throw(TypeError);
      expect(() => new PropagatedStrategy({ secret: SECRET, audience: 'b', maxAgeMs: 0 })).to.throw(
        TypeError,
        /maxAgeMs/,
      );
    });
  });
});

describe("PropagatedStrategy({ format: 'jwt' }) and propagateTenantJwt()", () => {
  const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);
  const strategy = new PropagatedStrategy({ secret: SECRET, audience: 'billing', format: 'jwt' });
  const asReq = (value: string) => ({ headers: { 'x-tenant-propagation': value } }) as never;
  const refusal = (value: string, using = strategy) =>
    Promise.resolve()
      .then(() => using.resolve(asReq(value)))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
  const jwtFor = (
    tenant: string,
    opts: { secret?: Uint8Array; audience?: string; now?: () => number } = {},
  ): Promise<string> =>
    runWithTenant(tenant, async () => {
      const header = await propagateTenantJwt({ secret: SECRET, audience: 'billing', ...opts })();
      return header['X-Tenant-Propagation'] as string;
    });

  it('service B resolves the tenant of a JWT-format call over loopback, and refuses its replay', async () => {
    const seen: string[] = [];
    const b = express();
    b.use((req, _res, next) => {
      seen.push(String(req.headers['x-tenant-propagation']));
      next();
    });
    b.use(resolveTenant({ store, strategies: [strategy] }), requireTenant());
    b.get('/whoami', (_req, res) => {
      res.json({ tenant: currentTenant().id });
    });
    b.use(tenancyErrorHandler());
    const { server, url } = await listen(b);
    try {
      const jwtFetch = propagatingFetch({ secret: SECRET, audience: 'billing', format: 'jwt' });
      const answers = await Promise.all(
        ['acme', 'globex'].map((tenant) =>
          runWithTenant(tenant, async () => (await jwtFetch(`${url}/whoami`)).json()),
        ),
      );
      expect(answers).to.deep.equal([{ tenant: 'acme' }, { tenant: 'globex' }]);
      const replay = await request(url)
        .get('/whoami')
        .set('X-Tenant-Propagation', seen[0] as string);
      expect([replay.status, replay.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses forged, foreign-audience, expired, HMAC-format and alg "none" tokens (401 TOKEN_INVALID)', async () => {
    const valid = await jwtFor('acme');
    const [head, body] = valid.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'tenantry-propagation+jwt' })).toString('base64url')}.${body}.`;
    const swapped = `${head}.${Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(body as string, 'base64url').toString()),
        tid: 'globex',
      }),
    ).toString('base64url')}.${valid.split('.')[2]}`;
    const hmacHeader = runWithTenant(
      'acme',
      () => propagateTenant({ secret: SECRET, audience: 'billing' })()['X-Tenant-Propagation'],
    ) as string;
    const cases: [string, string][] = [
      ['other secret', await jwtFor('acme', { secret: randomBytes(32) })],
      ['other audience', await jwtFor('acme', { audience: 'reports' })],
      ['expired', await jwtFor('acme', { now: () => Date.now() - 120_000 })],
      ['tenant swapped', swapped],
      ['alg none', none],
      ['hmac format', hmacHeader],
      ['garbage', 'a.b.c'],
    ];
    for (const [what, value] of cases) {
      expect(await refusal(value), what).to.have.property('code', 'TOKEN_INVALID');
    }
    expect(await strategy.resolve(asReq(valid))).to.deep.equal({ tenantId: 'acme', trusted: true });
    // The JWT strategy's header is refused by an HMAC-format strategy too.
    const hmacStrategy = new PropagatedStrategy({ secret: SECRET, audience: 'billing' });
    expect(await refusal(await jwtFor('acme'), hmacStrategy)).to.have.property(
      'code',
      'TOKEN_INVALID',
    );
  });

  it('refuses bad options (TypeError)', () => {
    expect(() => propagateTenantJwt({ secret: SECRET, audience: 'b', ttlSeconds: 0 })).to.throw(
      TypeError,
      /ttlSeconds/,
    );
    expect(
      () => new PropagatedStrategy({ secret: SECRET, audience: 'b', format: 'xml' as never }),
    ).to.throw(TypeError, /format/);
    expect(() =>
      propagatingFetch({ secret: SECRET, audience: 'b', format: 'xml' as never }),
    ).to.throw(TypeError, /format/);
  });
});
