import { expect } from 'chai';
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { container, injectable } from 'tsyringe';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  TenantContext,
  TenantScoped,
  currentTenant,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
} from '../../src/index';
import { HS_SECRET, CountingTenantStore, hsToken } from '../support/create-app';

@injectable()
class Clock {
  tick(): Promise<void> {
    return sleep(Math.floor(Math.random() * 4));
  }
}

@TenantScoped()
@injectable()
class DocumentService {
  constructor(
    readonly tenant: TenantContext,
    readonly clock: Clock,
  ) {}
  async owner(): Promise<string> {
    await this.clock.tick();
    return this.tenant.id;
  }
}

const TENANTS = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
const REQUESTS = 1200;

describe('resolveTenant() under concurrency', () => {
  let server: Server;
  let inner: CountingTenantStore;
  let cached: CachedTenantStore;

  before(async () => {
    inner = new CountingTenantStore(new InMemoryTenantStore(TENANTS.map((id) => ({ id }))));
    inner.delayMs = 3; // a store round trip takes time, so concurrent misses overlap
    cached = new CachedTenantStore(inner, { ttlMs: 60_000 });
    const app = express();
    app.use(
      resolveTenant({
        store: cached,
        strategies: ['jwt_claim', 'header', 'path'],
        jwt: { algorithms: ['HS256'], secret: HS_SECRET },
      }),
    );
    // Path requests arrive as /api/v1/<tenant>/whoami and are stripped to /api/v1/whoami.
    app.get(['/whoami', '/api/v1/whoami'], requireTenant(), async (req, res) => {
      const seen: string[] = [];
      for (let step = 0; step < 3; step += 1) {
        await sleep(Math.floor(Math.random() * 5));
        if (Math.random() < 0.5) await new Promise((r) => setImmediate(r));
        seen.push(
          req.tenant?.id ?? 'none',
          req.container?.resolve(DocumentService).tenant.id ?? 'none',
          container.resolve(DocumentService).tenant.id,
          currentTenant().id,
          await container.resolve(DocumentService).owner(),
        );
      }
      res.json({ seen });
    });
    app.use(tenancyErrorHandler());
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
  });

  after(async () => {
    await new Promise((r) => server.close(r));
  });

  it(`keeps each of ${REQUESTS} interleaved requests over ${TENANTS.length} tenants on its own tenant everywhere`, async function () {
    this.timeout(60_000);
    const { port } = server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    const plan = Array.from({ length: REQUESTS }, (_, i) => ({
      tenant: TENANTS[Math.floor(Math.random() * TENANTS.length)] as string,
      via: (['header', 'path', 'jwt'] as const)[i % 3] as 'header' | 'path' | 'jwt',
    }));
    const mismatches: string[] = [];
    let next = 0;
    // 150 in flight at a time: plenty of interleaving without exhausting sockets on a shared machine.
    const worker = async () => {
      while (next < plan.length) {
        const { tenant, via } = plan[next++] as (typeof plan)[number];
        const url = via === 'path' ? `/api/v1/${tenant}/whoami` : '/whoami';
        let t = request(base).get(url);
        if (via === 'header') t = t.set('X-Tenant-ID', tenant);
        if (via === 'jwt') t = t.set('Authorization', `Bearer ${hsToken({ tid: tenant })}`);
        const res = await t;
        const seen = (res.body as { seen?: string[] }).seen ?? [];
        if (res.status !== 200 || seen.length !== 15 || seen.some((s) => s !== tenant)) {
          mismatches.push(`${via} ${tenant}: ${res.status} ${JSON.stringify(seen)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 150 }, worker));
    expect(mismatches, mismatches.slice(0, 5).join('\n')).to.deep.equal([]);
    // Concurrent misses were coalesced and every later request was a cache hit: one store call per tenant.
    expect(inner.findByIdCalls).to.be.at.most(TENANTS.length);
    expect(cached.stats.storeCalls).to.equal(inner.findByIdCalls);
    expect(cached.stats.hits + cached.stats.coalesced).to.equal(REQUESTS - inner.findByIdCalls);
  });
});
