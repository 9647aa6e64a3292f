import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import Redis from 'ioredis';
import {
  InMemoryTenantStore,
  MemoryNonceStore,
  PropagatedStrategy,
  RedisNonceStore,
  currentTenant,
  propagateTenant,
  propagateTenantJwt,
  requireTenant,
  resolveTenant,
  runWithTenant,
  tenancyErrorHandler,
  type NonceStore,
} from '../../src/index';

// The machine's Redis (.ci/run starts it when it is down), or TENANTRY_TEST_REDIS_URL.
const REDIS_URL = process.env.TENANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = randomBytes(32);
const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);

interface Receiver {
  readonly url: string;
  readonly server: Server;
}

/** One instance of service "billing": trusts only signed propagated tenants, with `nonces`. */
async function billingInstance(
  nonces: NonceStore,
  format: 'hmac' | 'jwt' = 'hmac',
): Promise<Receiver> {
  const app = express();
  app.use(
    resolveTenant({
      store,
      strategies: [new PropagatedStrategy({ secret: SECRET, audience: 'billing', nonces, format })],
    }),
    requireTenant(),
  );
  app.get('/whoami', (_req, res) => {
    res.json({ tenant: currentTenant().id });
  });
  app.use(tenancyErrorHandler());
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function call(
  receiver: Receiver,
  headers: Record<string, string>,
): Promise<{ status: number; body: { tenant?: string; code?: string } }> {
  const res = await fetch(`${receiver.url}/whoami`, { headers });
  return { status: res.status, body: (await res.json()) as { tenant?: string; code?: string } };
}

const closeServer = (r: Receiver) =>
  new Promise<void>((resolve) => r.server.close(() => resolve()));

describe('NonceStore: replay protection shared by several instances', () => {
  const prefix = `tenantry-spec:${randomBytes(4).toString('hex')}:`;
  const clients: Redis[] = [];
  const receivers: Receiver[] = [];
  const sign = propagateTenant({ secret: SECRET, audience: 'billing' });

  function redis(): Redis {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  }

  async function instance(nonces: NonceStore, format?: 'hmac' | 'jwt'): Promise<Receiver> {
    const r = await billingInstance(nonces, format);
    receivers.push(r);
    return r;
  }

  after(async () => {
    await Promise.all(receivers.map(closeServer));
    const [first] = clients;
    if (first !== undefined) {
      const keys = await first.keys(`${prefix}*`);
      if (keys.length > 0) await first.del(...keys);
    }
    for (const c of clients) c.disconnect();
  });

  it('refuses on instance 2 a header instance 1 accepted, when both share a RedisNonceStore (two clients)', async () => {
    const b1 = await instance(new RedisNonceStore({ client: redis(), prefix }));
    const b2 = await instance(new RedisNonceStore({ client: redis(), prefix }));
    const header = runWithTenant('acme', () => sign());

    const first = await call(b1, header);
    expect(first).to.deep.equal({ status: 200, body: { tenant: 'acme' } });
    const replay = await call(b2, header);
    expect([replay.status, replay.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    const again = await call(b1, header);
    expect([again.status, again.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    // A fresh header for another tenant is accepted by either instance.
    const other = await call(
      b2,
      runWithTenant('globex', () => sign()),
    );
    expect(other).to.deep.equal({ status: 200, body: { tenant: 'globex' } });
  });

  it('accepts the replay on instance 2 with per-process MemoryNonceStores (what the shared store prevents)', async () => {
    const b1 = await instance(new MemoryNonceStore());
    const b2 = await instance(new MemoryNonceStore());
    const header = runWithTenant('acme', () => sign());
    expect((await call(b1, header)).status).to.equal(200);
    expect((await call(b2, header)).status).to.equal(200);
    expect((await call(b1, header)).status).to.equal(401);
  });

  it('admits exactly one of many concurrent deliveries of one header across the instances', async () => {
    const b1 = await instance(new RedisNonceStore({ client: redis(), prefix }));
    const b2 = await instance(new RedisNonceStore({ client: redis(), prefix }));
    const header = runWithTenant('acme', () => sign());
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(i % 2 === 0 ? b1 : b2, header)),
    );
    expect(answers.filter((a) => a.status === 200)).to.have.length(1);
    expect(
      answers.filter((a) => a.status === 401 && a.body.code === 'TOKEN_INVALID'),
    ).to.have.length(19);
  });

  it('shares JWT ids (format: "jwt") the same way', async () => {
    const signJwt = propagateTenantJwt({ secret: SECRET, audience: 'billing' });
    const b1 = await instance(new RedisNonceStore({ client: redis(), prefix }), 'jwt');
    const b2 = await instance(new RedisNonceStore({ client: redis(), prefix }), 'jwt');
    const header = await runWithTenant('acme', () => signJwt());
    expect((await call(b1, header)).status).to.equal(200);
    const replay = await call(b2, header);
    expect([replay.status, replay.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
  });

  it('lets Redis expire each nonce shortly after its header expires', async () => {
    const client = redis();
    const nonces = new RedisNonceStore({ client, prefix });
    const now = Date.now();
    expect(await nonces.claim('ttl-check', now + 35_000)).to.equal(true);
    expect(await nonces.claim('ttl-check', now + 35_000)).to.equal(false);
    const ttl = await client.pttl(`${prefix}ttl-check`);
    expect(ttl).to.be.within(30_000, 35_000);
  });

  it('refuses with 503 TENANT_UNAVAILABLE, and keeps serving, when Redis cannot be reached', async () => {
    // A port nothing listens on: every command fails fast.
    const down = new Redis({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    down.on('error', () => undefined);
    clients.push(down);
    const b = await instance(new RedisNonceStore({ client: down, prefix }));
    const header = runWithTenant('acme', () => sign());
    const refused = await call(b, header);
    expect([refused.status, refused.body.code]).to.deep.equal([503, 'TENANT_UNAVAILABLE']);
    const b2 = await instance(new RedisNonceStore({ client: redis(), prefix }));
    expect(
      (
        await call(
          b2,
          runWithTenant('acme', () => sign()),
        )
      ).status,
    ).to.equal(200);
  });

  it('refuses bad options with TypeError', () => {
    for (const bad of [undefined, null, {}, { client: {} }, { client: { set: 1 } }]) {
      expect(() => new RedisNonceStore(bad as never), JSON.stringify(bad)).to.throw(TypeError);
    }
    expect(() => new RedisNonceStore({ client: redis(), prefix: 7 as never })).to.throw(TypeError);
    expect(() => new MemoryNonceStore({ now: 'soon' as never })).to.throw(TypeError);
    expect(
      () => new PropagatedStrategy({ secret: SECRET, audience: 'billing', nonces: {} as never }),
    ).to.throw(TypeError, /claim/);
  });
});
